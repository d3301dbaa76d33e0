/* Key table and key directory; see keytable.h and sealed_file.h. */
#include "keytable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "catalogue.h"
#include "certchain.h"
#include "common/log.h"
#include "generation.h"
#include "keyload.h"
#include "manifest.h"
#include "masterkey.h"
#include "sealed_file.h"
#include "secure_heap.h"

#define INITIAL_BUCKETS 1024

static int dir_fd = -1;
static char dir_path[4096];

/* The generation of the last manifest written (write_lock), and the entries
 * of vouched files that did not load (a full secure heap, a chain that does
 * not match): every manifest keeps them, so they stay vouched for. */
static uint64_t generation;
static struct ks_manifest carried;

/* The hash of KEY_DIR/.catalogue (catalogue = etcd: what this replica has
 * applied) when every manifest lists it: an old copy put back is refused
 * like an old key file.  Set at start-up and by flush_catalogue. */
static uint8_t cat_hash[KS_FILE_HASH_LEN];
static int cat_listed;

/* While load_all runs, in its thread only: the decoders, and one locked
 * buffer every key is unsealed into (keyload.h, ks_unseal_key_into). */
static __thread struct ks_loader *loader;
static __thread uint8_t *unseal_buf;

/* Readers (every operation) take table_lock shared; publishing a new table
 * state takes it exclusively for a few pointer moves only. */
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ks_key **buckets;
static size_t nbuckets;
static size_t nkeys;

/* Serializes mutations (file writes + table updates) so that the "exists?"
 * check and the write cannot race between two admins. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

/* ---- entries ---------------------------------------------------------- */

static void key_free(struct ks_key *k)
{
    size_t i;

    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    for (i = 0; i < k->ncerts; i++)
        free(k->certs[i].der);
    free(k->certs);
    for (i = 0; i < k->nolder; i++)
        ks_key_put(k->older[i]);
    free(k->older);
    free(k->retired);
    free(k);
}

void ks_key_put(struct ks_key *k)
{
    if (k != NULL && __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0)
        key_free(k);
}

static void key_ref(struct ks_key *k)
{
    __atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
}

void ks_key_hold(struct ks_key *k)
{
    key_ref(k);
}

/* Bumped under table_lock by every table_put and table_remove. */
static uint64_t changes;

uint64_t ks_store_changes(void)
{
    return __atomic_load_n(&changes, __ATOMIC_ACQUIRE);
}

static int copy_certs(struct ks_key *k, const struct ks_cert *certs, size_t n)
{
    size_t i;

    k->ncerts = 0;
    k->certs = NULL;
    if (n == 0)
        return 0;
    k->certs = calloc(n, sizeof(*k->certs));
    if (k->certs == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        k->certs[i].der = malloc(certs[i].len);
        if (k->certs[i].der == NULL)
            return -1;   /* key_free releases what was copied */
        memcpy(k->certs[i].der, certs[i].der, certs[i].len);
        k->certs[i].len = certs[i].len;
        k->ncerts = i + 1;
    }
    return 0;
}

/* A blank entry (refs = 1) with its name and spki_len bytes of spki (0:
 * none stored) after it, in the same allocation; NULL if out of memory or
 * too long. */
static struct ks_key *key_alloc(const char *name, const uint8_t *spki, size_t spki_len)
{
    size_t nlen = strlen(name);
    struct ks_key *k;

    if (nlen > KS_MAX_KEY_NAME || spki_len > UINT32_MAX ||
        (k = calloc(1, sizeof(*k) + nlen + 1 + spki_len)) == NULL)
        return NULL;
    memcpy(k->name, name, nlen + 1);
    if (spki_len > 0) {
        k->spki = (uint8_t *)k->name + nlen + 1;
        memcpy(k->spki, spki, spki_len);
    }
    k->spki_len = (uint32_t)spki_len;
    k->group = "";
    k->refs = 1;
    k->version = 1;
    return k;
}

/* New entry with refs = 1 holding its own reference to pkey. */
static struct ks_key *key_new(const char *name, EVP_PKEY *pkey, uint64_t created,
                              uint32_t usage, char *why, size_t whylen)
{
    char group[KS_GROUP_MAX];
    const struct ks_spki_prefix *prefix;
    const char *canon;
    Keystore__KeyType type;
    unsigned bits;
    uint8_t *spki;
    size_t spki_len;
    struct ks_key *k;

    if (ks_pkey_describe(pkey, &type, &bits, group, why, whylen) != 0)
        return NULL;
    if (ks_spki_of(pkey, type, group, &prefix, &spki, &spki_len) != 0 ||
        spki_len > UINT32_MAX) {
        snprintf(why, whylen, "cannot encode the public key");
        ERR_clear_error();
        free(spki);
        return NULL;
    }
    k = key_alloc(name, spki, spki != NULL ? spki_len : 0);
    free(spki);
    if (k == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (EVP_PKEY_up_ref(pkey) != 1) {
        snprintf(why, whylen, "EVP_PKEY_up_ref failed");
        free(k);
        return NULL;
    }
    k->spki_prefix = prefix;
    k->spki_len = (uint32_t)spki_len;
    /* the static string of ks_canonical_group, which describe copied */
    canon = ks_canonical_group(group);
    k->group = canon != NULL ? canon : "";
    k->type = type;
    k->bits = bits;
    k->pkey = pkey;
    k->created = created;
    k->usage = usage;
    return k;
}

int ks_key_spki(const struct ks_key *k, uint8_t *out)
{
    if (k->spki_prefix != NULL)
        return ks_spki_write(k->spki_prefix, k->pkey, out, k->spki_len);
    memcpy(out, k->spki, k->spki_len);
    return 0;
}

/* ---- table (callers hold the appropriate locks) ---------------------- */

static struct ks_key **find_slot(const char *name)
{
    struct ks_key **pp = &buckets[hash_name(name) & (nbuckets - 1)];

    for (; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0)
            return pp;
    return pp;
}

static int table_init(void)
{
    buckets = calloc(INITIAL_BUCKETS, sizeof(*buckets));
    if (buckets == NULL)
        return -1;
    nbuckets = INITIAL_BUCKETS;
    nkeys = 0;
    return 0;
}

/* Keep chains short: double the buckets when the load factor passes 1.
 * Failure to grow only costs speed. */
static void table_maybe_grow(void)
{
    struct ks_key **nb;
    size_t i, n = nbuckets * 2;

    if (nkeys <= nbuckets)
        return;
    nb = calloc(n, sizeof(*nb));
    if (nb == NULL)
        return;
    for (i = 0; i < nbuckets; i++) {
        struct ks_key *k = buckets[i], *next;

        for (; k != NULL; k = next) {
            size_t b = hash_name(k->name) & (n - 1);

            next = k->next;
            k->next = nb[b];
            nb[b] = k;
        }
    }
    free(buckets);
    buckets = nb;
    nbuckets = n;
}

/* Insert k (table takes its reference) replacing any entry of that name. */
static void table_put(struct ks_key *k)
{
    struct ks_key **slot, *old;

    pthread_rwlock_wrlock(&table_lock);
    slot = find_slot(k->name);
    old = *slot;
    if (old != NULL) {
        k->next = old->next;
        *slot = k;
    } else {
        k->next = NULL;
        *slot = k;
        nkeys++;
        table_maybe_grow();
    }
    __atomic_add_fetch(&changes, 1, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&table_lock);
    ks_key_put(old);
}

static struct ks_key *table_remove(const char *name)
{
    struct ks_key **slot, *k;

    pthread_rwlock_wrlock(&table_lock);
    slot = find_slot(name);
    k = *slot;
    if (k != NULL) {
        *slot = k->next;
        k->next = NULL;
        nkeys--;
        __atomic_add_fetch(&changes, 1, __ATOMIC_RELEASE);
    }
    pthread_rwlock_unlock(&table_lock);
    return k;   /* caller owns the table's reference */
}

struct ks_key *ks_store_get(const char *name)
{
    struct ks_key *k;

    if (!ks_valid_key_name(name))
        return NULL;
    pthread_rwlock_rdlock(&table_lock);
    k = *find_slot(name);
    if (k != NULL)
        key_ref(k);
    pthread_rwlock_unlock(&table_lock);
    return k;
}

int ks_store_foreach(int (*fn)(const struct ks_key *k, void *arg), void *arg)
{
    size_t i;
    int r = 0;

    pthread_rwlock_rdlock(&table_lock);
    for (i = 0; i < nbuckets && r == 0; i++) {
        const struct ks_key *k;

        for (k = buckets[i]; k != NULL && r == 0; k = k->next)
            r = fn(k, arg);
    }
    pthread_rwlock_unlock(&table_lock);
    return r;
}

size_t ks_store_count(void)
{
    size_t n;

    pthread_rwlock_rdlock(&table_lock);
    n = nkeys;
    pthread_rwlock_unlock(&table_lock);
    return n;
}

/* ---- the manifest (callers hold write_lock, or are single-threaded) --- */

static void file_names(const char *name, char *keyf, char *keytmp, char *crtf, char *crttmp)
{
    /* names (and version stems) are at most 64 characters, buffers are 80 */
    snprintf(keyf, 80, "%.*s.key", KS_MAX_KEY_NAME, name);
    snprintf(keytmp, 80, ".%.*s.tmp", KS_MAX_KEY_NAME, name);
    snprintf(crtf, 80, "%.*s.crt", KS_MAX_KEY_NAME, name);
    snprintf(crttmp, 80, ".%.*s.crt.tmp", KS_MAX_KEY_NAME, name);
}

struct mf_build {
    struct ks_manifest *m;
    int failed;
};

/* The stem of version v's files: NAME (version 1, so stores from before
 * versions need no migration) or NAME.vN. */
static void version_stem(const char *name, uint32_t v, char stem[80])
{
    if (v <= 1)
        snprintf(stem, 80, "%s", name);
    else
        snprintf(stem, 80, "%s.v%u", name, (unsigned)v);
}

static void version_file_names(const struct ks_key *k, char *keyf, char *keytmp, char *crtf,
                               char *crttmp)
{
    char stem[80];

    version_stem(k->name, k->version, stem);
    file_names(stem, keyf, keytmp, crtf, crttmp);
}

/* Version N of stem "NAME.vN" (N >= 2, no leading zero; name gets NAME),
 * or 1 with name = stem. */
static uint32_t stem_version(const char *stem, char name[KS_MAX_KEY_NAME + 1])
{
    const char *d = strrchr(stem, '.');
    unsigned long v = 0;
    size_t i;

    snprintf(name, KS_MAX_KEY_NAME + 1, "%s", stem);
    if (d == NULL || d == stem || d[1] != 'v' || d[2] < '1' || d[2] > '9' || strlen(d + 2) > 9)
        return 1;
    for (i = 2; d[i] != '\0'; i++) {
        if (d[i] < '0' || d[i] > '9')
            return 1;
        v = v * 10 + (unsigned long)(d[i] - '0');
    }
    if (v < 2)
        return 1;
    name[d - stem] = '\0';
    if (!ks_valid_key_name(name)) {
        snprintf(name, KS_MAX_KEY_NAME + 1, "%s", stem);
        return 1;
    }
    return (uint32_t)v;
}

/* An entry loaded from the files of stem NAME.vN (its name so far): takes
 * version N and name NAME, in place (never longer than the stem). */
static void key_take_stem(struct ks_key *k)
{
    char name[KS_MAX_KEY_NAME + 1];

    k->version = stem_version(k->name, name);
    memcpy(k->name, name, strlen(name) + 1);
}

int ks_key_name_reserved(const char *name)
{
    const char *d = strrchr(name, '.');
    size_t i;

    if (d == NULL || d == name || d[1] != 'v' || d[2] == '\0')
        return 0;
    for (i = 2; d[i] != '\0'; i++)
        if (d[i] < '0' || d[i] > '9')
            return 0;
    return 1;
}

static int add_version_entries(const struct ks_key *k, struct mf_build *b)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80];

    version_file_names(k, keyf, keytmp, crtf, crttmp);
    if (ks_manifest_add(b->m, keyf, k->key_hash, 0) != 0 ||
        (k->has_crt && ks_manifest_add(b->m, crtf, k->crt_hash, 0) != 0))
        b->failed = 1;
    return b->failed;
}

static int add_key_entries(const struct ks_key *k, void *arg)
{
    struct mf_build *b = arg;
    size_t i;

    for (i = 0; i < k->nolder && !b->failed; i++)
        add_version_entries(k->older[i], b);
    if (!b->failed)
        add_version_entries(k, b);
    return b->failed;
}

/* 1 if fname is a key or certificate file of stem (any version of key
 * `stem` if family is set). */
static int file_of(const char *fname, const char *stem, int family)
{
    char s[KS_MF_NAME_MAX], name[KS_MAX_KEY_NAME + 1];
    size_t n = strlen(fname);

    if (n <= 4 || n - 4 >= sizeof(s) ||
        (strcmp(fname + n - 4, ".key") != 0 && strcmp(fname + n - 4, ".crt") != 0))
        return 0;
    snprintf(s, sizeof(s), "%.*s", (int)(n - 4), fname);
    if (strcmp(s, stem) == 0)
        return 1;
    return family && stem_version(s, name) > 1 && strcmp(name, stem) == 0;
}

/* Drop carried entries of stem (a key version whose files are replaced),
 * or with family set of every version of key `stem` (replaced or deleted). */
static void uncarry_files(const char *stem, int family)
{
    size_t i, j = 0;

    for (i = 0; i < carried.n; i++)
        if (!file_of(carried.e[i].file, stem, family))
            carried.e[j++] = carried.e[i];
    carried.n = j;
}

static void uncarry(const char *name)
{
    uncarry_files(name, 1);
}

/* Commit the table (plus extra entries: writes in progress) as the next
 * generation: the manifest first, then the counter, so that after a crash
 * the manifest is at most one generation ahead of the counter (accepted at
 * start) and never behind it. */
static int commit(const struct ks_manifest *extra, char *err, size_t errlen)
{
    struct ks_manifest m = { 0 };
    struct mf_build b = { &m, 0 };
    char why[512];
    size_t i;
    int rc = -1;

    m.gen = generation + 1;
    ks_store_foreach(add_key_entries, &b);
    for (i = 0; !b.failed && i < carried.n; i++)
        b.failed = ks_manifest_add(&m, carried.e[i].file, carried.e[i].hash, carried.e[i].flags);
    for (i = 0; !b.failed && extra != NULL && i < extra->n; i++)
        b.failed = ks_manifest_add(&m, extra->e[i].file, extra->e[i].hash, extra->e[i].flags);
    if (!b.failed && cat_listed)
        b.failed = ks_manifest_add(&m, KS_CAT_STATE_FILE, cat_hash, 0);
    if (b.failed) {
        snprintf(err, errlen, "out of memory for the manifest of %s", dir_path);
        goto out;
    }
    if (ks_manifest_write(dir_fd, &m, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot write the manifest of %s: %s", dir_path, why);
        goto out;
    }
    generation = m.gen;
    /* The manifest is the commit point; a counter left behind only weakens
     * rollback detection until the next write, so say it loudly. */
    if (ks_generation_set(m.gen, why, sizeof(why)) != 0)
        ks_log("error: %s: until it is fixed, an old copy of the key directory would not be "
               "detected", why);
    rc = 0;
out:
    ks_manifest_free(&m);
    return rc;
}

/* ---- loading ---------------------------------------------------------- */

/* Carry a vouched file that did not load (its hash stays in the manifest). */
static void carry(const char *fname, const uint8_t hash[KS_FILE_HASH_LEN])
{
    if (ks_manifest_add(&carried, fname, hash, 0) != 0)
        ks_log("warning: out of memory: %s/%s will not be in the manifest", dir_path, fname);
}

/* A refused file keeps the current entries of its name: putting the right
 * file back must work after any number of restarts. */
static void carry_named(const struct ks_manifest *mf, const char *fname)
{
    size_t i;

    for (i = 0; i < mf->n; i++)
        if (strcmp(mf->e[i].file, fname) == 0 && (mf->e[i].flags & KS_MF_OPTIONAL) == 0)
            carry(fname, mf->e[i].hash);
}

/* Attach NAME.crt if present, vouched for and consistent; problems only cost
 * the chain.  Returns 1 if a vouched file is present (hash in *hash). */
static int load_cert_file(struct ks_key *k, const char *crtf, const struct ks_manifest *mf,
                          uint8_t hash[KS_FILE_HASH_LEN])
{
    char err[256], why[512];
    struct ks_cert *certs;
    uint8_t *buf;
    size_t len, n, bad;

    if (ks_read_file_at(dir_fd, crtf, KS_CERTFILE_MAX, &buf, &len, err, sizeof(err)) != 0) {
        if (errno != ENOENT)
            ks_log("warning: %s/%s: %s; key %s is loaded without its certificates",
                   dir_path, crtf, err, k->name);
        return 0;
    }
    ks_file_hash(buf, len, hash);
    if (mf != NULL && !ks_manifest_vouches(mf, crtf, hash, NULL, NULL)) {
        ks_log("error: refusing %s/%s: the manifest does not vouch for it (an old or foreign "
               "certificate chain); key %s is loaded without certificates. Attach the right "
               "chain with 'keystorectl attach-cert %s CERT.pem' (which replaces the file)",
               dir_path, crtf, k->name, k->name);
        carry_named(mf, crtf);
        free(buf);
        return 0;
    }
    if (ks_cert_split(buf, len, &certs, &n) != 0) {
        ks_log("warning: %s/%s is not a list of DER certificates; key %s is loaded "
               "without its certificates", dir_path, crtf, k->name);
        free(buf);
        return 1;
    }
    if (ks_cert_chain_check(k->pkey, k->name, certs, n, 0, &bad, why, sizeof(why)) != 0) {
        ks_log("warning: %s/%s: %s; key %s is loaded without its certificates",
               dir_path, crtf, why, k->name);
        ERR_clear_error();
    } else if (copy_certs(k, certs, n) != 0) {
        ks_log("warning: out of memory loading %s/%s", dir_path, crtf);
    }
    free(certs);
    free(buf);
    return 1;
}

/* A version 1 file predates usages: the key keeps everything its type could
 * do then (RSA sign and decrypt; EC sign, key agreement came later), so that an upgrade breaks no TLS server or
 * decrypting client; the operator is told how to narrow it. */
static void legacy_usage(struct ks_key *k)
{
    char u[KS_USAGE_TEXT_MAX];

    /* ECDH came after version 1 files: an old EC key signs only */
    k->usage = ks_usage_possible(k->type) & (KS_USAGE_SIGN | KS_USAGE_DECRYPT);
    if (k->usage == 0)
        k->usage = ks_usage_possible(k->type);
    if (k->usage == KS_USAGE_SIGN)
        ks_log("warning: key %s was sealed before key usages existed (key file version 1): "
               "it keeps sign; nothing to do, its type has no other usage", k->name);
    else
        ks_log("warning: key %s was sealed before key usages existed (key file version 1): "
               "it keeps %s, all its type allows, so a decrypt grant is also a sign grant; to "
               "narrow it, replace it by a key made with 'keystorectl generate|import NAME "
               "--usage sign' (or decrypt) and delete this one", k->name,
               ks_usage_format(k->usage, u));
}

/* Unseal and parse one key file image (freed here).  Returns the new entry,
 * or NULL (logged) with *auth_failed set if it does not authenticate and
 * *authentic set if it does but cannot be used now. */
static struct ks_key *load_key_image(const char *name, const char *fname, uint8_t *file,
                                     size_t filelen, int *auth_failed, int *authentic)
{
    char why[512];
    size_t derlen;
    uint8_t *der = NULL;
    struct ks_keyfile_meta meta;
    EVP_PKEY *pkey;
    struct ks_key *k;
    enum ks_unseal_status st;

    *auth_failed = 0;
    *authentic = 0;
    if (unseal_buf != NULL) {
        der = unseal_buf;
        st = ks_unseal_key_into(name, file, filelen, &meta, der, KS_KEYFILE_MAX, &derlen,
                                why, sizeof(why));
    } else {
        st = ks_unseal_key(name, file, filelen, &meta, &der, &derlen, why, sizeof(why));
    }
    free(file);
    if (st != KS_UNSEAL_OK) {
        if (st == KS_UNSEAL_INTERNAL)
            snprintf(why, sizeof(why), "internal error while unsealing");
        ks_log("error: skipping key %s: %s/%s %s", name, dir_path, fname, why);
        *auth_failed = st == KS_UNSEAL_AUTH;
        return NULL;
    }
    *authentic = 1;
    pkey = ks_loader_decode(loader, meta.key_type, der, derlen);
    if (der == unseal_buf)
        sodium_memzero(der, derlen);   /* the plaintext PKCS#8 */
    else
        sodium_free(der);   /* wipes it */
    if (pkey == NULL) {
        ks_log("error: skipping key %s: %s/%s authenticates but the key inside does not "
               "parse (%s)%s", name, dir_path, fname, ks_ossl_reason(why, sizeof(why)),
               ks_secure_heap_size() > 0 && CRYPTO_secure_used() + 65536 >
               ks_secure_heap_size() ? "; the secure heap looks full: raise "
               "secure_heap_mb" : "");
        return NULL;
    }
    k = key_new(name, pkey, meta.created, meta.usage, why, sizeof(why));
    EVP_PKEY_free(pkey);
    if (k == NULL) {
        ks_log("error: skipping key %s: %s", name, why);
        return NULL;
    }
    if ((uint32_t)k->type != meta.key_type) {
        ks_log("error: skipping key %s: the file header says type %u but the key is %s",
               name, meta.key_type, ks_key_type_name(k->type));
        ks_key_put(k);
        return NULL;
    }
    if (meta.version == 1) {
        legacy_usage(k);
    } else if (ks_usage_check(k->type, k->usage, why, sizeof(why)) != 0) {
        /* only a master-key holder could have sealed this */
        ks_log("error: skipping key %s: its sealed usage is invalid: %s", name, why);
        ks_key_put(k);
        return NULL;
    }
    return k;
}

/* Loading only (single-threaded, nothing published yet): file version k
 * into its key's family; the highest version is the current one. */
static void family_insert(struct ks_key *k)
{
    struct ks_key *cur = ks_store_get(k->name), **v;
    size_t i;

    if (cur == NULL) {
        table_put(k);
        return;
    }
    v = realloc(cur->older, (cur->nolder + 1) * sizeof(*v));
    if (v == NULL) {
        ks_log("error: out of memory: version %u of key %s is not loaded", (unsigned)k->version,
               k->name);
        ks_key_put(cur);
        ks_key_put(k);
        return;
    }
    cur->older = v;
    if (k->version > cur->version) {
        /* k becomes current: it takes cur's older versions, then cur */
        k->older = cur->older;
        k->nolder = cur->nolder;
        cur->older = NULL;
        cur->nolder = 0;
        k->older[k->nolder++] = cur;   /* the reference from ks_store_get */
        table_put(k);
        return;
    }
    for (i = cur->nolder; i > 0 && cur->older[i - 1]->version > k->version; i--)
        cur->older[i] = cur->older[i - 1];
    cur->older[i] = k;
    cur->nolder++;
    ks_key_put(cur);
}

/* Load NAME.key (fname) if the manifest (NULL: first start) vouches for it.
 * Returns 1 loaded, 0 skipped or refused (logged), -1 authentication
 * failure (logged). */
static int load_one(const char *fname, const struct ks_manifest *mf)
{
    char name[KS_MAX_KEY_NAME + 1], err[256];
    char keyf[80], keytmp[80], crtf[80], crttmp[80];
    uint8_t hash[KS_FILE_HASH_LEN], crt_hash[KS_FILE_HASH_LEN];
    size_t flen = strlen(fname), filelen;
    uint8_t *file = NULL;
    struct ks_key *k;
    int auth_failed, authentic;

    if (flen - 4 > KS_MAX_KEY_NAME) {
        ks_log("warning: skipping %s/%s: name too long for a key", dir_path, fname);
        return 0;
    }
    memcpy(name, fname, flen - 4);
    name[flen - 4] = '\0';
    if (!ks_valid_key_name(name)) {
        ks_log("warning: skipping %s/%s: '%s' is not a valid key name", dir_path, fname, name);
        return 0;
    }
    if (ks_read_file_at(dir_fd, fname, KS_KEYFILE_MAX, &file, &filelen, err, sizeof(err)) != 0) {
        ks_log("error: skipping key %s: %s/%s: %s", name, dir_path, fname, err);
        return 0;
    }
    ks_file_hash(file, filelen, hash);
    file_names(name, keyf, keytmp, crtf, crttmp);
    if (mf != NULL && !ks_manifest_vouches(mf, fname, hash, NULL, NULL)) {
        int named;

        ks_manifest_vouches(mf, fname, NULL, &named, NULL);
        ks_log("error: refusing %s/%s: the manifest (generation %llu) does not vouch for it: "
               "%s. Key %s is %s. If this file is the one you want, restore the key directory "
               "and %s together from one backup; otherwise move the file out of the key "
               "directory", dir_path, fname, (unsigned long long)mf->gen,
               named ? "it is not the current file of that key (an old copy put back?)"
                     : "no current key has that name (a deleted key put back, or a copy from "
                       "elsewhere?)",
               name, named ? "not loaded until its current file is put back" : "not loaded",
               ks_generation_path());
        carry_named(mf, fname);
        if (named)
            carry_named(mf, crtf);
        free(file);
        return 0;
    }
    k = load_key_image(name, fname, file, filelen, &auth_failed, &authentic);
    if (k == NULL) {
        /* authentic but unusable now (a full secure heap?): stays vouched for */
        if (authentic) {
            uint8_t *c;
            size_t clen;

            carry(fname, hash);
            if (ks_read_file_at(dir_fd, crtf, KS_CERTFILE_MAX, &c, &clen, err,
                                sizeof(err)) == 0) {
                ks_file_hash(c, clen, crt_hash);
                if (mf == NULL || ks_manifest_vouches(mf, crtf, crt_hash, NULL, NULL))
                    carry(crtf, crt_hash);
                free(c);
            }
        }
        return auth_failed ? -1 : 0;
    }
    memcpy(k->key_hash, hash, sizeof(hash));
    k->has_crt = load_cert_file(k, crtf, mf, k->crt_hash);
    /* NAME.vN.key is version N of key NAME (sealed under the stem) */
    key_take_stem(k);
    family_insert(k);
    return 1;
}

/* Leftovers of interrupted writes are never valid data. */
static void remove_temp_file(const char *fname)
{
    size_t n = strlen(fname);

    if (fname[0] == '.' && n > 4 && strcmp(fname + n - 4, ".tmp") == 0) {
        if (unlinkat(dir_fd, fname, 0) == 0)
            ks_log("removed stale temporary file %s/%s", dir_path, fname);
        else
            ks_log("warning: cannot remove stale temporary file %s/%s: %s",
                   dir_path, fname, strerror(errno));
    }
}

/* A NAME.crt whose key file is absent: refused loudly unless vouched for. */
static void check_orphan_cert(const char *fname, const struct ks_manifest *mf)
{
    char key[KS_MF_NAME_MAX], err[256];
    uint8_t *buf, hash[KS_FILE_HASH_LEN];
    size_t len, n = strlen(fname);
    struct stat st;

    snprintf(key, sizeof(key), "%.*s.key", (int)(n - 4), fname);
    if (fstatat(dir_fd, key, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return;   /* looked at with its key */
    if (mf == NULL || ks_read_file_at(dir_fd, fname, KS_CERTFILE_MAX, &buf, &len, err,
                                      sizeof(err)) != 0)
        return;
    ks_file_hash(buf, len, hash);
    free(buf);
    if (!ks_manifest_vouches(mf, fname, hash, NULL, NULL))
        ks_log("error: refusing %s/%s: the manifest does not vouch for it and no key file "
               "goes with it (left from a deleted key, or copied in); move it out of the key "
               "directory", dir_path, fname);
}

/* Listed, required, but absent: say so (the next manifest forgets them). */
static void report_missing(const struct ks_manifest *mf)
{
    size_t i;

    for (i = 0; i < mf->n; i++) {
        struct stat st;
        int optional;

        if (i > 0 && strcmp(mf->e[i].file, mf->e[i - 1].file) == 0)
            continue;
        ks_manifest_vouches(mf, mf->e[i].file, NULL, NULL, &optional);
        if (!optional && strcmp(mf->e[i].file, KS_CAT_STATE_FILE) != 0 &&   /* see below */
            fstatat(dir_fd, mf->e[i].file, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
            ks_log("warning: %s/%s is in the manifest but missing (removed by hand, or a "
                   "delete interrupted by a crash): it is forgotten", dir_path, mf->e[i].file);
    }
}

/* Read the manifest and check it against the counter.  *mf is NULL-able:
 * returns 0 with *have = 0 on a first start, 1 with the manifest, -1 after
 * logging why the store must not open. */
static int open_manifest(uint64_t counter, struct ks_manifest *mf, int *have)
{
    char why[256];
    enum ks_mf_status st = ks_manifest_read(dir_fd, mf, why, sizeof(why));

    *have = 0;
    if (st == KS_MF_MISSING) {
        if (counter > 0) {
            ks_log("error: %s/%s is missing but the rollback counter %s says generation %llu: "
                   "the key directory was replaced or its manifest deleted. Restore the key "
                   "directory from the backup that goes with the counter; only if you are sure "
                   "every file in it is the one you want, remove %s to accept it as it is",
                   dir_path, KS_MANIFEST_FILE, ks_generation_path(),
                   (unsigned long long)counter, ks_generation_path());
            return -1;
        }
        return 0;
    }
    if (st != KS_MF_OK) {
        ks_log("error: cannot use the manifest %s/%s: %s%s", dir_path, KS_MANIFEST_FILE, why,
               st == KS_MF_AUTH ? ": wrong master key? Check master_key in the config" : "");
        return -1;
    }
    if (mf->gen < counter) {
        ks_log("error: the manifest %s/%s is generation %llu but the rollback counter %s says "
               "%llu: the key directory was rolled back (an old backup or copy put in place). "
               "Restore the current key directory; to go back to an old backup on purpose, "
               "restore %s from the same backup", dir_path, KS_MANIFEST_FILE,
               (unsigned long long)mf->gen, ks_generation_path(), (unsigned long long)counter,
               ks_generation_path());
        ks_manifest_free(mf);
        return -1;
    }
    if (counter == 0)
        ks_log("warning: the rollback counter %s is new but the key directory has a manifest "
               "(generation %llu): taking it; if the counter was removed on purpose this is "
               "expected", ks_generation_path(), (unsigned long long)mf->gen);
    else if (mf->gen > counter + 1)
        ks_log("warning: the rollback counter %s (%llu) is behind the manifest (%llu): taking "
               "the manifest and catching the counter up", ks_generation_path(),
               (unsigned long long)counter, (unsigned long long)mf->gen);
    *have = 1;
    return 0;
}

/* ---- the applied catalogue state, vouched for by the manifest ---------- */

/* Write the applied state if it changed, as certificates are written: a
 * manifest accepting the current and the new file, the file, then a
 * manifest with the new one only; kill -9 anywhere leaves a vouched file.
 * write_lock held.  0, or -1 with err. */
static int flush_catalogue(char *err, size_t errlen)
{
    struct ks_manifest extra = { 0 };
    uint8_t *file, hash[KS_FILE_HASH_LEN];
    char why[256];
    uint64_t tag;
    size_t len;
    int r, rc = -1;

    r = ks_catalogue_state_image(&file, &len, &tag, err, errlen);
    if (r <= 0)
        return r;
    ks_file_hash(file, len, hash);
    if (ks_manifest_add(&extra, KS_CAT_STATE_FILE, hash, KS_MF_OPTIONAL) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (commit(&extra, err, errlen) != 0)
        goto out;
    if (ks_write_file_atomic_at(dir_fd, KS_CAT_STATE_FILE, KS_CAT_STATE_TMP, file, len, why,
                                sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot write %s/%s: %s", dir_path, KS_CAT_STATE_FILE, why);
        goto out;
    }
    memcpy(cat_hash, hash, sizeof(hash));
    cat_listed = 1;
    ks_catalogue_state_written(tag);
    /* the old file is no longer vouched for; failing here leaves both */
    rc = commit(NULL, err, errlen);
out:
    ks_manifest_free(&extra);
    free(file);
    return rc;
}

/* The end of a mutation: with catalogue = etcd its record moved this
 * replica's applied state, written now that its files are in place (a
 * crash before: the replica applies its own record again, harmlessly). */
static void write_unlock(void)
{
    char err[4608];   /* the key directory's path and why */

    if (ks_catalogue_enabled() && flush_catalogue(err, sizeof(err)) != 0)
        ks_log("error: catalogue: %s (the applied state is written with the next change)", err);
    pthread_mutex_unlock(&write_lock);
}

/* Start-up, before the first commit: take KEY_DIR/.catalogue if the
 * manifest mf (NULL on a first start) vouches for it.  With catalogue off
 * the manifest's entry is kept as it is.  0, or -1 (logged): do not start. */
static int load_catalogue_state(uint64_t counter, const struct ks_manifest *mf)
{
    uint8_t *file = NULL, hash[KS_FILE_HASH_LEN];
    char why[256], remedy[9000];   /* two paths */
    int vouched, rc = -1;
    size_t len, i, count;
    const char *cp = ks_generation_path();

    for (i = 0; mf != NULL && i < mf->n; i++)
        if (strcmp(mf->e[i].file, KS_CAT_STATE_FILE) == 0 &&
            (mf->e[i].flags & KS_MF_OPTIONAL) == 0) {
            memcpy(cat_hash, mf->e[i].hash, sizeof(cat_hash));
            cat_listed = 1;
        }
    snprintf(remedy, sizeof(remedy), "This replica would apply again records from etcd it has "
             "already refused (an old key put back). Put the current file back; if the key "
             "directory was restored on purpose, restore the key directory and %s together from "
             "one backup; to start with an empty catalogue state, remove %s/%s and %s", cp,
             dir_path, KS_CAT_STATE_FILE, cp);
    if (ks_read_file_at(dir_fd, KS_CAT_STATE_FILE, KS_CAT_STATE_MAX, &file, &len, why,
                        sizeof(why)) != 0) {
        if (errno != ENOENT) {
            ks_log("error: cannot read %s/%s: %s", dir_path, KS_CAT_STATE_FILE, why);
            return -1;
        }
        if (!ks_catalogue_enabled() || !cat_listed)
            return 0;   /* nothing applied yet (or a first write in progress) */
        if (counter > 0) {
            ks_log("error: %s/%s is missing but the manifest (generation %llu) lists it. %s",
                   dir_path, KS_CAT_STATE_FILE, (unsigned long long)mf->gen, remedy);
            return -1;
        }
        ks_log("warning: %s/%s is missing and the rollback counter %s is new: starting with an "
               "empty catalogue state (an old record replayed into etcd is accepted once more, "
               "until newer ones arrive)", dir_path, KS_CAT_STATE_FILE, cp);
        cat_listed = 0;
        return 0;
    }
    ks_file_hash(file, len, hash);
    vouched = mf != NULL && ks_manifest_vouches(mf, KS_CAT_STATE_FILE, hash, NULL, NULL);
    if (!ks_catalogue_enabled()) {
        if (vouched) {
            memcpy(cat_hash, hash, sizeof(hash));
            cat_listed = 1;
        }
        free(file);
        return 0;   /* kept as the manifest has it, for when catalogue = etcd is back */
    }
    /* only a listed (required) entry refuses: an optional one alone is a
     * first write in progress over a file an older keystored left */
    if (!vouched && cat_listed && counter > 0) {
        ks_log("error: refusing %s/%s: the manifest (generation %llu) does not vouch for it (an "
               "old copy put back?). %s", dir_path, KS_CAT_STATE_FILE,
               (unsigned long long)mf->gen, remedy);
        goto out;
    }
    if (!vouched)
        ks_log("catalogue: taking %s/%s, which the manifest did not list (%s): from now on "
               "only the file it vouches for is loaded", dir_path, KS_CAT_STATE_FILE,
               cat_listed ? "the rollback counter is new" : "written by an older keystored");
    if (ks_catalogue_state_parse(file, len, &count, why, sizeof(why)) != 0) {
        if (vouched) {
            ks_log("error: cannot use %s/%s, which the manifest vouches for: %s. Check "
                   "master_key in the config; %s", dir_path, KS_CAT_STATE_FILE, why, remedy);
            goto out;
        }
        ks_log("warning: %s/%s: %s: starting with an empty catalogue state (an old record "
               "replayed into etcd is accepted once more, until newer ones arrive)", dir_path,
               KS_CAT_STATE_FILE, why);
        cat_listed = 0;
        rc = 0;
        goto out;
    }
    memcpy(cat_hash, hash, sizeof(hash));
    cat_listed = 1;
    ks_log("catalogue: applied state of %zu keys loaded from %s/%s", count, dir_path,
           KS_CAT_STATE_FILE);
    rc = 0;
out:
    free(file);
    return rc;
}

static int load_all(uint64_t counter)
{
    struct dirent *de;
    unsigned loaded = 0, auth_failed = 0, skipped = 0;
    struct ks_manifest mf = { 0 };
    char err[512];
    int fd, have, held, rc = -1;
    DIR *d;

    if (open_manifest(counter, &mf, &have) != 0)
        return -1;
    generation = have ? mf.gen : counter;
    /* Without them (out of memory) every key takes the general, slower path. */
    loader = ks_loader_new();
    unseal_buf = sodium_malloc(KS_KEYFILE_MAX);
    held = ks_master_hold() == 0;
    fd = dup(dir_fd);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        ks_log("error: cannot list key directory %s: %s", dir_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        int r;

        if (de->d_name[0] == '.') {
            remove_temp_file(de->d_name);
            continue;
        }
        if (n > 4 && strcmp(de->d_name + n - 4, ".crt") == 0) {
            check_orphan_cert(de->d_name, have ? &mf : NULL);
            continue;
        }
        if (n <= 4 || strcmp(de->d_name + n - 4, ".key") != 0)
            continue;
        r = load_one(de->d_name, have ? &mf : NULL);
        if (r == 1)
            loaded++;
        else if (r < 0)
            auth_failed++;
        else
            skipped++;
    }
    if (errno != 0) {
        ks_log("error: reading key directory %s: %s", dir_path, strerror(errno));
        closedir(d);
        goto out;
    }
    closedir(d);
    if (loaded == 0 && auth_failed > 0) {
        ks_log("error: cannot unseal any key: wrong master key? (%u key file%s in %s failed "
               "authentication). Check master_key in the config; if the key files really are "
               "damaged, move them out of the key directory", auth_failed,
               auth_failed == 1 ? "" : "s", dir_path);
        goto out;
    }
    if (have)
        report_missing(&mf);
    if (load_catalogue_state(counter, have ? &mf : NULL) != 0)
        goto out;
    /* A clean manifest of what is here now: collapses writes in progress. */
    if (commit(NULL, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        goto out;
    }
    if (!have)
        ks_log("created the manifest %s/%s (generation %llu) for the %u key%s found: from now "
               "on only files it vouches for are loaded (rollback counter %s)", dir_path,
               KS_MANIFEST_FILE, (unsigned long long)generation, loaded, loaded == 1 ? "" : "s",
               ks_generation_path());
    ks_log("loaded %u key%s from %s%s (manifest generation %llu)", loaded, loaded == 1 ? "" : "s",
           dir_path, auth_failed + skipped > 0 ? " (some files were skipped, see above)" : "",
           (unsigned long long)generation);
    rc = 0;
out:
    if (held)
        ks_master_release();
    ks_loader_free(loader);
    loader = NULL;
    sodium_free(unseal_buf);   /* wipes it */
    unseal_buf = NULL;
    ks_manifest_free(&mf);
    return rc;
}

int ks_store_open(const char *key_dir, const char *counter_path)
{
    char def[4200];
    uint64_t counter;
    struct stat st;

    snprintf(dir_path, sizeof(dir_path), "%s", key_dir);
    counter_path = ks_generation_default(key_dir, counter_path, def, sizeof(def));
    if (mkdir(key_dir, 0700) == 0)
        ks_log("created key directory %s", key_dir);
    else if (errno != EEXIST) {
        ks_log("error: cannot create key directory %s: %s", key_dir, strerror(errno));
        return -1;
    }
    dir_fd = open(key_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        ks_log("error: cannot open key directory %s: %s", key_dir, strerror(errno));
        return -1;
    }
    if (fstat(dir_fd, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        ks_log("warning: key directory %s is writable by group or others (mode %04o); "
               "fix with: chmod 700 %s", key_dir, (unsigned)(st.st_mode & 07777), key_dir);
    if (ks_generation_open(counter_path, &counter) != 0)
        return -1;
    if (table_init() != 0) {
        ks_log("error: out of memory for the key table");
        return -1;
    }
    return load_all(counter);
}

void ks_store_catalogue_flush(void)
{
    char err[4608];

    pthread_mutex_lock(&write_lock);
    if (flush_catalogue(err, sizeof(err)) != 0)
        ks_log("error: catalogue: %s", err);
    pthread_mutex_unlock(&write_lock);
}

int ks_store_dir_fd(void)
{
    return dir_fd;
}

void ks_store_release_dir(void)
{
    if (dir_fd >= 0)
        close(dir_fd);
    dir_fd = -1;
}

void ks_store_close(void)
{
    size_t i;

    pthread_rwlock_wrlock(&table_lock);
    for (i = 0; i < nbuckets; i++) {
        struct ks_key *k = buckets[i], *next;

        for (; k != NULL; k = next) {
            next = k->next;
            ks_key_put(k);
        }
    }
    free(buckets);
    buckets = NULL;
    nbuckets = nkeys = 0;
    pthread_rwlock_unlock(&table_lock);
    ks_manifest_free(&carried);
    ks_generation_close();
    if (dir_fd >= 0)
        close(dir_fd);
    dir_fd = -1;
}

/* ---- mutations -------------------------------------------------------- */
/* With catalogue = etcd every mutation first publishes the key's record as
 * it will be (publish_family); etcd refusing it changes nothing here.
 * Write order (write_lock held), so that kill -9 anywhere leaves the old or
 * the new state and a store that starts:
 *   add:    manifest+counter with NAME.key optional, then NAME.key;
 *   delete: unlink NAME.key and NAME.crt, then manifest+counter (a crash in
 *           between: the listed file is missing, reported and forgotten);
 *   certs:  manifest+counter accepting the old and the new NAME.crt, the
 *           file, then manifest+counter with the new one only. */

static int fsync_dir(char *err, size_t errlen)
{
    if (ks_sync_dir(dir_fd) != 0) {
        snprintf(err, errlen, "cannot sync key directory %s: %s", dir_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the catalogue record of a key (catalogue = etcd) ------------------ */

/* A file of the record that is not on disk yet (the caller's change):
 * data NULL means the file goes (a chain removed). */
struct cat_change {
    const char *file;
    const uint8_t *data;
    size_t len;
};

struct family_files {
    struct ks_cat_file f[KS_CAT_MAX_FILES];
    uint8_t *bufs[KS_CAT_MAX_FILES];
    size_t n;
};

/* Add file fname of version v to the record: the change if the caller has
 * one for it, else (if present) the file on disk, which must be the one
 * the entry was loaded from (hash): a file changed behind keystored's back
 * is not sent to every replica. */
static enum ks_store_status gather_file(struct family_files *ff, const struct ks_key *v,
                                        const char *fname, size_t max, const uint8_t *hash,
                                        int present, const struct cat_change *ch, size_t nch,
                                        char *err, size_t errlen)
{
    uint8_t h[KS_FILE_HASH_LEN];
    struct ks_cat_file *f;
    char why[256];
    size_t i;

    for (i = 0; i < nch && strcmp(ch[i].file, fname) != 0; i++)
        ;
    if (i < nch ? ch[i].data == NULL : !present)
        return KS_STORE_OK;
    if (ff->n == KS_CAT_MAX_FILES) {
        snprintf(err, errlen, "key '%s' has more files than a catalogue record holds (%d): "
                 "retire old versions first (keystorectl retire %s --version N)", v->name,
                 KS_CAT_MAX_FILES, v->name);
        return KS_STORE_REFUSED;
    }
    f = &ff->f[ff->n];
    snprintf(f->name, sizeof(f->name), "%s", fname);
    if (i < nch) {
        f->data = ch[i].data;
        f->len = ch[i].len;
        ff->n++;
        return KS_STORE_OK;
    }
    if (ks_read_file_at(dir_fd, fname, max, &ff->bufs[ff->n], &f->len, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot read %s/%s for the catalogue: %s", dir_path, fname, why);
        return KS_STORE_INTERNAL;
    }
    f->data = ff->bufs[ff->n++];
    ks_file_hash(f->data, f->len, h);
    if (memcmp(h, hash, KS_FILE_HASH_LEN) != 0) {
        snprintf(err, errlen, "%s/%s is not the file key %s version %u was loaded from (changed "
                 "behind keystored's back): it is not published to the catalogue; restart "
                 "keystored (the manifest then refuses it) or put the right file back",
                 dir_path, fname, v->name, (unsigned)v->version);
        return KS_STORE_INTERNAL;
    }
    return KS_STORE_OK;
}

/* Publish the record of key `name` as it will be once the caller's change
 * is made: every version of head's family (head NULL: the tombstone) with
 * its key file and chain, as on disk unless ch has the file.  The one place
 * records are made, so that every write sends the whole family.  `what`
 * ends the message of a conflict ("nothing was retired").  write_lock held;
 * KS_STORE_OK or the status for the caller to return (err set). */
static enum ks_store_status publish_family(const char *name, int created,
                                           const struct ks_key *head,
                                           const struct cat_change *ch, size_t nch,
                                           const char *what, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80];
    struct family_files *ff = calloc(1, sizeof(*ff));
    enum ks_store_status st = KS_STORE_OK;
    size_t i;
    int pr;

    if (ff == NULL) {
        snprintf(err, errlen, "out of memory");
        return KS_STORE_INTERNAL;
    }
    for (i = 0; head != NULL && i <= head->nolder && st == KS_STORE_OK; i++) {
        const struct ks_key *v = i < head->nolder ? head->older[i] : head;

        version_file_names(v, keyf, keytmp, crtf, crttmp);
        st = gather_file(ff, v, keyf, KS_KEYFILE_MAX, v->key_hash, 1, ch, nch, err, errlen);
        if (st == KS_STORE_OK)
            st = gather_file(ff, v, crtf, KS_CERTFILE_MAX, v->crt_hash, v->has_crt, ch, nch,
                             err, errlen);
    }
    if (st == KS_STORE_OK) {
        pr = ks_catalogue_publish(name, created, ff->f, ff->n, err, errlen);
        if (pr == 0)
            snprintf(err, errlen, "key '%s' was changed on another replica meanwhile; %s: try "
                     "again", name, what);
        st = pr == 1 ? KS_STORE_OK : pr == 0 ? KS_STORE_CONFLICT : KS_STORE_UNAVAILABLE;
    }
    for (i = 0; i < ff->n; i++)
        free(ff->bufs[i]);
    free(ff);
    return st;
}

enum ks_store_status ks_store_add(const char *name, EVP_PKEY *pkey, uint32_t usage,
                                  struct ks_key **out, char *err, size_t errlen)
{
    struct ks_keyfile_meta meta;
    char keyf[80], keytmp[80], crtf[80], crttmp[80], why[512];
    uint8_t *der = NULL, *file = NULL;
    size_t derlen, filelen;
    struct ks_key *k = NULL, *existing;
    struct ks_manifest extra = { 0 };
    enum ks_store_status rc = KS_STORE_INTERNAL;

    if (out != NULL)
        *out = NULL;
    k = key_new(name, pkey, (uint64_t)time(NULL), usage, why, sizeof(why));
    if (k == NULL) {
        snprintf(err, errlen, "%s", why);
        return KS_STORE_INTERNAL;
    }
    if (ks_usage_check(k->type, usage, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "key %s: %s", name, why);
        ks_key_put(k);
        return KS_STORE_INTERNAL;
    }
    meta.version = KS_KEYFILE_VERSION;
    meta.key_type = (uint32_t)k->type;
    meta.created = k->created;
    meta.usage = usage;
    if (ks_pkey_to_pkcs8(pkey, &der, &derlen) != 0) {
        snprintf(err, errlen, "cannot encode key %s as PKCS#8 (%s)", name,
                 ks_ossl_reason(why, sizeof(why)));
        ks_key_put(k);
        return KS_STORE_INTERNAL;
    }
    if (ks_seal_key(name, &meta, der, derlen, &file, &filelen) != 0) {
        snprintf(err, errlen, "cannot seal key %s with the master key", name);
        goto out;
    }
    ks_file_hash(file, filelen, k->key_hash);
    file_names(name, keyf, keytmp, crtf, crttmp);
    if (ks_manifest_add(&extra, keyf, k->key_hash, KS_MF_OPTIONAL) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    pthread_mutex_lock(&write_lock);
    existing = ks_store_get(name);
    if (existing != NULL) {
        ks_key_put(existing);
        write_unlock();
        snprintf(err, errlen, "a key named '%s' already exists", name);
        rc = KS_STORE_EXISTS;
        goto out;
    }
    /* The catalogue first: one replica wins a name, and an etcd that does
     * not take the write leaves this replica unchanged too. */
    if (ks_catalogue_enabled()) {
        struct cat_change ch = { keyf, file, filelen };

        rc = publish_family(name, 1, k, &ch, 1, "no key was made", err, errlen);
        if (rc != KS_STORE_OK) {
            write_unlock();
            if (rc == KS_STORE_CONFLICT) {
                snprintf(err, errlen, "a key named '%s' already exists (another replica "
                         "created it; the catalogue in etcd has it)", name);
                rc = KS_STORE_EXISTS;
            }
            goto out;
        }
        rc = KS_STORE_INTERNAL;
    }
    /* A .crt left behind by a manual key file deletion must not attach to the new key. */
    if (ks_unlink_at(dir_fd, crtf) != 0 && errno != ENOENT) {
        write_unlock();
        snprintf(err, errlen, "cannot remove old %s/%s: %s", dir_path, crtf, strerror(errno));
        goto out;
    }
    uncarry(name);
    if (commit(&extra, err, errlen) != 0) {
        write_unlock();
        goto out;
    }
    if (ks_write_file_atomic_at(dir_fd, keyf, keytmp, file, filelen, why, sizeof(why)) != 0) {
        write_unlock();
        snprintf(err, errlen, "cannot store key %s in %s: %s", name, dir_path, why);
        goto out;
    }
    if (out != NULL) {
        key_ref(k);
        *out = k;
    }
    table_put(k);
    k = NULL;
    write_unlock();
    EVP_PKEY_free(pkey);   /* the entry holds its own reference */
    rc = KS_STORE_OK;
out:
    if (rc != KS_STORE_OK)
        ks_key_put(k);
    ks_manifest_free(&extra);
    sodium_free(der);
    free(file);
    return rc;
}

/* Unlink the files of one version (write_lock held); 0 or -1 with err. */
static int unlink_version(const struct ks_key *v, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80];

    version_file_names(v, keyf, keytmp, crtf, crttmp);
    if (ks_unlink_at(dir_fd, keyf) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot delete %s/%s: %s", dir_path, keyf, strerror(errno));
        return -1;
    }
    if (ks_unlink_at(dir_fd, crtf) != 0 && errno != ENOENT)
        ks_log("warning: key %s version %u: %s/%s could not be removed: %s", v->name,
               (unsigned)v->version, dir_path, crtf, strerror(errno));
    return 0;
}

static int unlink_versions(const struct ks_key *head, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < head->nolder; i++)
        if (unlink_version(head->older[i], err, errlen) != 0)
            return -1;
    return 0;
}

enum ks_store_status ks_store_delete(const char *name, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80];
    struct ks_key *k;

    if (!ks_valid_key_name(name)) {
        snprintf(err, errlen, "no key named '%s'", name);
        return KS_STORE_NO_SUCH_KEY;
    }
    file_names(name, keyf, keytmp, crtf, crttmp);
    pthread_mutex_lock(&write_lock);
    k = ks_store_get(name);
    if (k == NULL) {
        write_unlock();
        snprintf(err, errlen, "no key named '%s'", name);
        return KS_STORE_NO_SUCH_KEY;
    }
    /* the tombstone first: an etcd that refuses it leaves every version here */
    if (ks_catalogue_enabled()) {
        enum ks_store_status pst = publish_family(name, 0, NULL, NULL, 0, "nothing was deleted",
                                                  err, errlen);

        if (pst != KS_STORE_OK) {
            ks_key_put(k);
            write_unlock();
            return pst;
        }
    }
    /* older versions first: a crash part way leaves the key with fewer
     * versions, never an old version back as the current one */
    if (unlink_versions(k, err, errlen) != 0) {
        ks_key_put(k);
        write_unlock();
        return KS_STORE_INTERNAL;
    }
    version_file_names(k, keyf, keytmp, crtf, crttmp);
    ks_key_put(k);
    if (ks_unlink_at(dir_fd, keyf) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot delete %s/%s: %s", dir_path, keyf, strerror(errno));
        write_unlock();
        return KS_STORE_INTERNAL;
    }
    /* From here the key is gone on disk: drop it from memory whatever happens. */
    ks_key_put(table_remove(name));
    uncarry(name);
    if (ks_unlink_at(dir_fd, crtf) != 0 && errno != ENOENT)
        ks_log("warning: key %s deleted but %s/%s could not be removed: %s",
               name, dir_path, crtf, strerror(errno));
    if (fsync_dir(err, errlen) != 0 || commit(NULL, err, errlen) != 0) {
        write_unlock();
        return KS_STORE_INTERNAL;
    }
    write_unlock();
    return KS_STORE_OK;
}

/* A new entry (refs = 1) that is a copy of `from` with another chain (the
 * EVP_PKEY is shared), without a family (the caller's: family_set); NULL
 * if out of memory. */
static struct ks_key *key_copy(const struct ks_key *from, const struct ks_cert *certs,
                               size_t ncerts)
{
    struct ks_key *k = key_alloc(from->name, from->spki, from->spki != NULL ? from->spki_len : 0);
    uint8_t *spki;

    if (k == NULL)
        return NULL;
    spki = k->spki;
    *k = *from;          /* not the name, a flexible array member */
    k->spki = spki;      /* its own copy, if stored */
    k->refs = 1;
    k->next = NULL;
    k->certs = NULL;
    k->ncerts = 0;
    k->pkey = NULL;
    k->older = NULL;
    k->nolder = 0;
    k->retired = NULL;
    k->nretired = 0;
    if (copy_certs(k, certs, ncerts) != 0 || EVP_PKEY_up_ref(from->pkey) != 1) {
        key_free(k);
        return NULL;
    }
    k->pkey = from->pkey;
    return k;
}

/* Give head (fresh, without a family) the versions of from's family:
 * without version `drop` (0: none), with `put` (referenced here) instead of
 * its version or added, and from's retired list plus `ret` (NULL: none). */
static int family_set(struct ks_key *head, const struct ks_key *from, uint32_t drop,
                      struct ks_key *put, const struct ks_key_retired *ret)
{
    size_t i, n = 0, placed = put == NULL || put->version == head->version;

    head->older = calloc(from->nolder + 1, sizeof(*head->older));
    head->retired = calloc(from->nretired + 1, sizeof(*head->retired));
    if (head->older == NULL || head->retired == NULL)
        return -1;
    for (i = 0; i < from->nolder; i++) {
        struct ks_key *v = from->older[i];

        if (v->version == drop || v->version == head->version)
            continue;
        if (!placed && put->version <= v->version) {
            head->older[n++] = put;
            placed = 1;
            if (put->version == v->version)
                continue;
        }
        head->older[n++] = v;
    }
    if (!placed)
        head->older[n++] = put;
    for (i = 0; i < n; i++)
        key_ref(head->older[i]);
    head->nolder = n;
    memcpy(head->retired, from->retired, from->nretired * sizeof(*head->retired));
    head->nretired = from->nretired;
    if (ret != NULL)
        head->retired[head->nretired++] = *ret;
    return 0;
}

/* Is v a version in head's family (head itself included)? */
static int in_family(const struct ks_key *head, const struct ks_key *v)
{
    size_t i;

    if (head == v)
        return 1;
    for (i = 0; i < head->nolder; i++)
        if (head->older[i] == v)
            return 1;
    return 0;
}

enum ks_store_status ks_store_set_certs(const struct ks_key *expected,
                                        const struct ks_cert *certs, size_t ncerts,
                                        struct ks_key **out, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80], why[512], stem[80];
    struct ks_key *cur, *k, *head = NULL;
    struct ks_manifest extra = { 0 };
    uint8_t *blob = NULL;
    size_t i, total = 0;
    int hrc;
    enum ks_store_status rc = KS_STORE_INTERNAL;

    *out = NULL;
    version_file_names(expected, keyf, keytmp, crtf, crttmp);
    for (i = 0; i < ncerts; i++)
        total += certs[i].len;
    blob = malloc(total > 0 ? total : 1);
    k = key_copy(expected, certs, ncerts);
    if (blob == NULL || k == NULL) {
        snprintf(err, errlen, "out of memory");
        free(blob);
        key_free(k);
        return KS_STORE_INTERNAL;
    }
    for (total = 0, i = 0; i < ncerts; i++) {
        memcpy(blob + total, certs[i].der, certs[i].len);
        total += certs[i].len;
    }
    k->has_crt = ncerts > 0;
    if (ncerts > 0)
        ks_file_hash(blob, total, k->crt_hash);

    pthread_mutex_lock(&write_lock);
    cur = ks_store_get(expected->name);
    if (cur == NULL || !in_family(cur, expected)) {
        ks_key_put(cur);
        write_unlock();
        snprintf(err, errlen, "key '%s' version %u was deleted, retired or replaced meanwhile",
                 expected->name, (unsigned)expected->version);
        rc = KS_STORE_NO_SUCH_KEY;
        goto out;
    }
    /* The new current entry: k itself, or a copy of cur with k in its family. */
    if (cur == expected) {
        head = k;
        hrc = family_set(head, cur, 0, NULL, NULL);
    } else {
        head = key_copy(cur, cur->certs, cur->ncerts);
        hrc = head == NULL || family_set(head, cur, 0, k, NULL) != 0 ? -1 : 0;
    }
    ks_key_put(cur);
    if (hrc != 0) {
        write_unlock();
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (ks_catalogue_enabled()) {
        struct cat_change ch = { crtf, ncerts > 0 ? blob : NULL, total };
        enum ks_store_status pst = publish_family(expected->name, 0, head, &ch, 1,
                                                  "its certificates were not changed", err,
                                                  errlen);

        if (pst != KS_STORE_OK) {
            write_unlock();
            rc = pst;
            goto out;
        }
    }
    /* Either file may be current until the new one is in place. */
    version_stem(expected->name, expected->version, stem);
    uncarry_files(stem, 0);
    if ((ncerts > 0 && ks_manifest_add(&extra, crtf, k->crt_hash,
                                       expected->has_crt ? 0 : KS_MF_OPTIONAL) != 0) ||
        (ncerts == 0 && expected->has_crt &&
         ks_manifest_add(&extra, crtf, expected->crt_hash, KS_MF_OPTIONAL) != 0)) {
        write_unlock();
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (commit(&extra, err, errlen) != 0) {
        write_unlock();
        goto out;
    }
    if (ncerts == 0) {
        if (ks_unlink_at(dir_fd, crtf) != 0 && errno != ENOENT) {
            write_unlock();
            snprintf(err, errlen, "cannot remove %s/%s: %s", dir_path, crtf, strerror(errno));
            goto out;
        }
    } else if (ks_write_file_atomic_at(dir_fd, crtf, crttmp, blob, total, why, sizeof(why)) != 0) {
        write_unlock();
        snprintf(err, errlen, "cannot store certificates of key %s in %s: %s",
                 expected->name, dir_path, why);
        goto out;
    }
    key_ref(k);
    *out = k;
    if (head != k)
        ks_key_put(k);     /* head's family holds it */
    table_put(head);
    k = head = NULL;
    /* Only the new chain from now on; failing here leaves both vouched for. */
    if (commit(NULL, why, sizeof(why)) != 0)
        ks_log("warning: %s", why);
    write_unlock();
    rc = KS_STORE_OK;
out:
    if (head != NULL && head != k)
        key_free(head);
    if (k != NULL)
        key_free(k);
    ks_manifest_free(&extra);
    free(blob);
    return rc;
}

/* ---- the catalogue (catalogue = etcd) ---------------------------------- */

/* Drop key `name` (every version) here after its tombstone, in delete's
 * order: older versions first, then the current one.  write_lock held. */
static int apply_tombstone(const char *name, char *err, size_t errlen)
{
    struct ks_key *k = ks_store_get(name);
    int rc;

    if (k == NULL)
        return 0;
    rc = unlink_versions(k, err, errlen) == 0 && unlink_version(k, err, errlen) == 0 ? 0 : -1;
    ks_key_put(k);
    if (rc != 0)
        return -1;
    ks_key_put(table_remove(name));
    uncarry(name);
    if (fsync_dir(err, errlen) != 0 || commit(NULL, err, errlen) != 0)
        return -1;
    return 1;
}

/* One version of key `name` in a record. */
struct rec_version {
    uint32_t version;
    const struct ks_cat_file *key, *crt;
    struct ks_key *k;      /* its entry (referenced), without a family */
    int fresh;             /* its files differ from this replica's: write them */
};

/* Sort the files of record r into the versions of key `name`, lowest
 * first: NAME.key/NAME.crt are version 1, NAME.vN.key/NAME.vN.crt version
 * N.  0, or -1 with err (a chain without its key, a file twice). */
static int record_versions(const char *name, const struct ks_cat_record *r,
                           struct rec_version *rv, size_t *nrv, char *err, size_t errlen)
{
    char stem[KS_MF_NAME_MAX], base[KS_MAX_KEY_NAME + 1];
    size_t i, j, n;

    *nrv = 0;
    for (i = 0; i < r->n; i++) {
        const struct ks_cat_file *f = &r->f[i];
        int is_key;
        uint32_t v;

        n = strlen(f->name);
        is_key = n > 4 && strcmp(f->name + n - 4, ".key") == 0;
        if (n <= 4 || (!is_key && strcmp(f->name + n - 4, ".crt") != 0)) {
            ks_log("warning: catalogue: key %s: ignoring file %s (not a file this keystored "
                   "knows)", name, f->name);
            continue;
        }
        snprintf(stem, sizeof(stem), "%.*s", (int)(n - 4), f->name);
        v = stem_version(stem, base);
        if (strcmp(base, name) != 0) {
            ks_log("warning: catalogue: key %s: ignoring file %s (not a file this keystored "
                   "knows)", name, f->name);
            continue;
        }
        if (f->len > (is_key ? KS_KEYFILE_MAX : KS_CERTFILE_MAX)) {
            snprintf(err, errlen, "its %s is too large", f->name);
            return -1;
        }
        for (j = 0; j < *nrv && rv[j].version != v; j++)
            ;
        if (j == *nrv) {
            memset(&rv[j], 0, sizeof(rv[j]));
            rv[j].version = v;
            (*nrv)++;   /* r->n <= KS_CAT_MAX_FILES, the size of rv */
        }
        if (is_key ? rv[j].key != NULL : rv[j].crt != NULL) {
            snprintf(err, errlen, "it holds %s twice", f->name);
            return -1;
        }
        if (is_key)
            rv[j].key = f;
        else
            rv[j].crt = f;
    }
    for (i = 0; i < *nrv; i++)
        if (rv[i].key == NULL) {
            snprintf(err, errlen, "it holds %s without its key file", rv[i].crt->name);
            return -1;
        }
    if (*nrv == 0) {
        snprintf(err, errlen, "it holds no key file of key %s", name);
        return -1;
    }
    for (i = 1; i < *nrv; i++)
        for (j = i; j > 0 && rv[j - 1].version > rv[j].version; j--) {
            struct rec_version t = rv[j];

            rv[j] = rv[j - 1];
            rv[j - 1] = t;
        }
    return 0;
}

/* Version v of cur's family (cur included), or NULL. */
static struct ks_key *family_version(const struct ks_key *cur, uint32_t v)
{
    size_t i;

    if (cur->version == v)
        return (struct ks_key *)cur;
    for (i = 0; i < cur->nolder; i++)
        if (cur->older[i]->version == v)
            return cur->older[i];
    return NULL;
}

/* Is version v's key file vouched for but not loaded (carried)? */
static int version_carried(const char *name, uint32_t v)
{
    char stem[80], keyf[80], keytmp[80], crtf[80], crttmp[80];
    size_t i;

    version_stem(name, v, stem);
    file_names(stem, keyf, keytmp, crtf, crttmp);
    for (i = 0; i < carried.n; i++)
        if (strcmp(carried.e[i].file, keyf) == 0)
            return 1;
    return 0;
}

/* Versions never go backwards: a record may not make a version below the
 * current one current, nor bring back one retired here (a version below
 * the current one that this replica does not hold).  Sequence numbers stop
 * old records of this family; this stops any other authentic record. */
static int check_versions(const struct ks_key *cur, const struct rec_version *rv, size_t n,
                          char *err, size_t errlen)
{
    size_t i;

    if (rv[n - 1].version < cur->version) {
        snprintf(err, errlen, "it would make version %u current, below this replica's current "
                 "version %u (a key's versions never go back)", (unsigned)rv[n - 1].version,
                 (unsigned)cur->version);
        return -1;
    }
    for (i = 0; i < n; i++)
        if (rv[i].version < cur->version && family_version(cur, rv[i].version) == NULL &&
            !version_carried(cur->name, rv[i].version)) {
            snprintf(err, errlen, "it would bring back version %u, retired here (a retired "
                     "version never comes back)", (unsigned)rv[i].version);
            return -1;
        }
    return 0;
}

/* The entry of version rv: this replica's own (old) if the files are the
 * same, else the record's key file unsealed under its own stem (NAME.vN:
 * one version's file in place of another's fails) with its chain checked
 * against that key.  Without a family either way.  0, or -1 with err. */
static int record_entry(const char *name, struct rec_version *rv, const struct ks_key *old,
                        char *err, size_t errlen)
{
    uint8_t kh[KS_FILE_HASH_LEN], ch[KS_FILE_HASH_LEN], *copy;
    struct ks_cert *certs = NULL;
    char stem[80], why[512];
    struct ks_key *k;
    size_t n, bad;
    int auth_failed, authentic;

    ks_file_hash(rv->key->data, rv->key->len, kh);
    if (rv->crt != NULL)
        ks_file_hash(rv->crt->data, rv->crt->len, ch);
    if (old != NULL && memcmp(old->key_hash, kh, sizeof(kh)) == 0 &&
        old->has_crt == (rv->crt != NULL) &&
        (rv->crt == NULL || memcmp(old->crt_hash, ch, sizeof(ch)) == 0)) {
        rv->k = key_copy(old, old->certs, old->ncerts);
        if (rv->k == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    rv->fresh = 1;
    version_stem(name, rv->version, stem);
    copy = malloc(rv->key->len > 0 ? rv->key->len : 1);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(copy, rv->key->data, rv->key->len);
    k = load_key_image(stem, rv->key->name, copy, rv->key->len, &auth_failed, &authentic);
    if (k == NULL) {
        snprintf(err, errlen, "its %s does not unseal or parse (see above)", rv->key->name);
        return -1;
    }
    rv->k = k;
    key_take_stem(k);
    memcpy(k->key_hash, kh, sizeof(kh));
    if (rv->crt == NULL)
        return 0;
    if (ks_cert_split(rv->crt->data, rv->crt->len, &certs, &n) != 0 ||
        ks_cert_chain_check(k->pkey, k->name, certs, n, 0, &bad, why, sizeof(why)) != 0 ||
        copy_certs(k, certs, n) != 0) {
        ERR_clear_error();
        free(certs);
        snprintf(err, errlen, "its %s is not a chain for key %s version %u", rv->crt->name,
                 name, (unsigned)rv->version);
        return -1;
    }
    free(certs);
    k->has_crt = 1;
    memcpy(k->crt_hash, ch, sizeof(ch));
    return 0;
}

/* Write the files of fresh versions, after a manifest that accepts them
 * (and the old ones) as optional; remove the chains they lack. */
static int write_versions(const struct rec_version *rv, size_t n, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80], why[512];
    struct ks_manifest extra = { 0 };
    size_t i;
    int rc = -1;

    for (i = 0; i < n; i++) {
        if (!rv[i].fresh)
            continue;
        version_file_names(rv[i].k, keyf, keytmp, crtf, crttmp);
        if (ks_manifest_add(&extra, keyf, rv[i].k->key_hash, KS_MF_OPTIONAL) != 0 ||
            (rv[i].crt != NULL &&
             ks_manifest_add(&extra, crtf, rv[i].k->crt_hash, KS_MF_OPTIONAL) != 0)) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    if (commit(&extra, err, errlen) != 0)
        goto out;
    for (i = 0; i < n; i++) {
        if (!rv[i].fresh)
            continue;
        version_file_names(rv[i].k, keyf, keytmp, crtf, crttmp);
        if (ks_write_file_atomic_at(dir_fd, keyf, keytmp, rv[i].key->data, rv[i].key->len, why,
                                    sizeof(why)) != 0 ||
            (rv[i].crt != NULL &&
             ks_write_file_atomic_at(dir_fd, crtf, crttmp, rv[i].crt->data, rv[i].crt->len, why,
                                     sizeof(why)) != 0)) {
            snprintf(err, errlen, "cannot write it to %s: %s", dir_path, why);
            goto out;
        }
        if (rv[i].crt == NULL && ks_unlink_at(dir_fd, crtf) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "cannot remove %s/%s: %s", dir_path, crtf, strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    ks_manifest_free(&extra);
    return rc;
}

/* Make this replica's family of key `name` exactly record r's: the new and
 * changed versions written (manifest first, as a local write), the versions
 * the record lacks removed (retired on another replica: they become
 * RETIRED here too), the highest version current; then the manifest of the
 * new state.  Every key file unseals under its own stem and every chain
 * fits its version's key before anything is written.  renew: r is a new
 * key under the old name (a higher incarnation): nothing of the old family
 * is kept or compared (its versions are gone, not retired).  write_lock
 * held. */
static int apply_files(const char *name, const struct ks_cat_record *r, int renew, char *err,
                       size_t errlen)
{
    struct rec_version *rv = calloc(KS_CAT_MAX_FILES, sizeof(*rv));
    struct ks_key *cur = NULL, *top = NULL;
    struct ks_key_retired *ret = NULL;
    size_t nrv = 0, i, nret = 0, same = 0;
    int rc = -1, removed = 0;

    if (rv == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (record_versions(name, r, rv, &nrv, err, errlen) != 0)
        goto out;
    cur = ks_store_get(name);
    if (cur != NULL && !renew && check_versions(cur, rv, nrv, err, errlen) != 0)
        goto out;
    for (i = 0; i < nrv; i++) {
        if (record_entry(name, &rv[i],
                         cur != NULL && !renew ? family_version(cur, rv[i].version) : NULL,
                         err, errlen) != 0)
            goto out;
        same += !rv[i].fresh;
    }
    if (cur != NULL && same == nrv && nrv == cur->nolder + 1) {
        rc = 0;   /* this replica has this family already */
        goto out;
    }
    /* the new current entry takes the others as its older versions */
    top = rv[nrv - 1].k;
    ret = calloc((cur != NULL ? cur->nretired + cur->nolder : 0) + 1, sizeof(*ret));
    top->older = calloc(nrv, sizeof(*top->older));
    if (ret == NULL || top->older == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (cur != NULL && !renew) {
        memcpy(ret, cur->retired, cur->nretired * sizeof(*ret));
        nret = cur->nretired;
    }
    uncarry(name);
    if (write_versions(rv, nrv, err, errlen) != 0)
        goto out;
    /* versions the record lacks were retired (or, renew, deleted with the
     * old key): their files go, oldest first */
    for (i = 0; cur != NULL && i <= cur->nolder; i++) {
        const struct ks_key *v = i < cur->nolder ? cur->older[i] : cur;
        size_t j;

        for (j = 0; j < nrv && rv[j].version != v->version; j++)
            ;
        if (j < nrv)
            continue;
        if (unlink_version(v, err, errlen) != 0)
            goto out;
        if (!renew) {
            ret[nret].version = v->version;
            ret[nret++].when = (uint64_t)time(NULL);
        }
        removed = 1;
    }
    if (removed && fsync_dir(err, errlen) != 0)
        goto out;
    for (i = 0; i + 1 < nrv; i++) {
        top->older[i] = rv[i].k;
        rv[i].k = NULL;
    }
    top->nolder = nrv - 1;
    top->retired = ret;
    top->nretired = nret;
    ret = NULL;
    rv[nrv - 1].k = NULL;
    table_put(top);
    {
        char why[512];

        if (commit(NULL, why, sizeof(why)) != 0)
            ks_log("warning: %s", why);
    }
    rc = 1;
out:
    for (i = 0; i < nrv; i++)
        if (rv[i].k != NULL)
            ks_key_put(rv[i].k);
    free(rv);
    free(ret);
    ks_key_put(cur);
    return rc;
}

int ks_store_apply_remote(const char *name, uint64_t mod_rev, const uint8_t *rec, size_t len)
{
    struct ks_cat_record r;
    char why[4700];   /* paths of up to 4 KiB */
    uint64_t applied, local_inc;
    int rc, chk, renew;

    if (!ks_valid_key_name(name)) {
        ks_log("error: catalogue: refusing a record from etcd (revision %llu): not a valid "
               "key name", (unsigned long long)mod_rev);
        return -1;
    }
    if (ks_catalogue_open(name, rec, len, &r, why, sizeof(why)) != 0) {
        ks_log("error: catalogue: refusing the record of key %s from etcd (revision %llu): %s",
               name, (unsigned long long)mod_rev, why);
        return -1;
    }
    pthread_mutex_lock(&write_lock);
    ks_catalogue_saw_revision(mod_rev);
    chk = ks_catalogue_check(name, r.seq, &applied);
    if (chk < 0) {
        pthread_mutex_unlock(&write_lock);
        ks_log("error: catalogue: refusing the record of key %s from etcd (revision %llu): its "
               "sequence %llu is older than the %llu this replica applied: an old record put "
               "back (replayed or rolled back); the key stays as it is", name,
               (unsigned long long)mod_rev, (unsigned long long)r.seq,
               (unsigned long long)applied);
        ks_catalogue_record_free(&r);
        return -1;
    }
    if (chk == 0) {
        ks_catalogue_applied(name, r.seq, mod_rev, r.inc);
        pthread_mutex_unlock(&write_lock);
        ks_catalogue_record_free(&r);
        return 0;
    }
    /* a newer sequence of an older incarnation: a record of a key deleted
     * since (its records carry their own sequences, all below the new key's) */
    renew = ks_catalogue_check_incarnation(name, r.inc, &local_inc);
    if (renew < 0) {
        pthread_mutex_unlock(&write_lock);
        ks_log("error: catalogue: refusing the record of key %s from etcd (revision %llu): its "
               "incarnation %llu is older than this replica's %llu: a record of a key deleted "
               "since, put back; the key stays as it is", name, (unsigned long long)mod_rev,
               (unsigned long long)r.inc, (unsigned long long)local_inc);
        ks_catalogue_record_free(&r);
        return -1;
    }
    rc = r.n == 0 ? apply_tombstone(name, why, sizeof(why))
                  : apply_files(name, &r, renew, why, sizeof(why));
    if (rc >= 0)
        ks_catalogue_applied(name, r.seq, mod_rev, r.inc);
    pthread_mutex_unlock(&write_lock);
    if (rc < 0)
        ks_log("error: catalogue: refusing the record of key %s from etcd (revision %llu): %s",
               name, (unsigned long long)mod_rev, why);
    else if (rc > 0 && renew && r.n > 0)
        ks_log("catalogue: key %s made again on another replica (incarnation %llu, this "
               "replica had %llu): the old key is gone here, every version (etcd revision %llu)",
               name, (unsigned long long)r.inc, (unsigned long long)local_inc,
               (unsigned long long)mod_rev);
    else if (rc > 0)
        ks_log("catalogue: key %s %s (etcd revision %llu)", name,
               r.n == 0 ? "deleted on another replica" : "updated from the catalogue",
               (unsigned long long)mod_rev);
    ks_catalogue_record_free(&r);
    return rc > 0 ? 1 : rc;
}

/* ---- certificate reload ----------------------------------------------- */

struct cert_change {
    struct ks_key *old;      /* referenced: published only if still current */
    struct ks_key *fresh;
};

struct ks_cert_update {
    struct cert_change *v;
    size_t n;
};

static int same_chain(const struct ks_key *k, const struct ks_cert *certs, size_t n)
{
    size_t i;

    if (k->ncerts != n)
        return 0;
    for (i = 0; i < n; i++)
        if (k->certs[i].len != certs[i].len || memcmp(k->certs[i].der, certs[i].der, certs[i].len) != 0)
            return 0;
    return 1;
}

/* The chain NAME.crt holds now (none if the file is absent); 1 changed, 0 same, -1 error. */
static int reread_chain(struct ks_key *k, struct ks_key **fresh, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80], why[512];
    struct ks_cert *certs = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, n = 0, bad;
    int rc = -1;

    *fresh = NULL;
    file_names(k->name, keyf, keytmp, crtf, crttmp);
    if (ks_read_file_at(dir_fd, crtf, KS_CERTFILE_MAX, &buf, &len, why, sizeof(why)) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "%s/%s: %s", dir_path, crtf, why);
            return -1;
        }
    } else if (ks_cert_split(buf, len, &certs, &n) != 0) {
        snprintf(err, errlen, "%s/%s is not a list of DER certificates", dir_path, crtf);
        goto out;
    } else if (ks_cert_chain_check(k->pkey, k->name, certs, n, 0, &bad, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s/%s: %s", dir_path, crtf, why);
        ERR_clear_error();
        goto out;
    }
    if (same_chain(k, certs, n)) {
        rc = 0;
        goto out;
    }
    /* The manifest vouches only for chains the server itself wrote: a file
     * changed behind its back must not be attached by a reload (it would
     * bypass the manifest), so it fails the reload instead. */
    snprintf(err, errlen, "%s/%s differs from the chain attached to key %s and is not vouched "
             "for by the key directory's manifest; attach certificates with keystorectl "
             "attach-cert", dir_path, crtf, k->name);
    goto out;
out:
    free(certs);
    free(buf);
    return rc;
}

void ks_store_certs_discard(struct ks_cert_update *u)
{
    size_t i;

    if (u == NULL)
        return;
    for (i = 0; i < u->n; i++) {
        ks_key_put(u->v[i].old);
        key_free(u->v[i].fresh);
    }
    free(u->v);
    free(u);
}

int ks_store_certs_prepare(struct ks_cert_update **out, size_t *changed, char *err, size_t errlen)
{
    struct ks_cert_update *u = calloc(1, sizeof(*u));
    struct ks_key **all = NULL;
    size_t i, n = 0, cap;

    *out = NULL;
    *changed = 0;
    if (u == NULL)
        goto oom;
    /* a snapshot of the entries; the files are read without the table lock */
    pthread_rwlock_rdlock(&table_lock);
    cap = nkeys;
    all = calloc(cap ? cap : 1, sizeof(*all));
    if (all != NULL) {
        for (i = 0; i < nbuckets; i++) {
            struct ks_key *k;

            for (k = buckets[i]; k != NULL && n < cap; k = k->next) {
                key_ref(k);
                all[n++] = k;
            }
        }
    }
    pthread_rwlock_unlock(&table_lock);
    if (all == NULL || (u->v = calloc(n ? n : 1, sizeof(*u->v))) == NULL)
        goto oom;
    for (i = 0; i < n; i++) {
        struct ks_key *fresh;
        int r = reread_chain(all[i], &fresh, err, errlen);

        if (r < 0)
            goto fail;
        if (r == 1) {
            u->v[u->n].old = all[i];
            u->v[u->n].fresh = fresh;
            u->n++;
            all[i] = NULL;   /* the reference moved into u */
        }
    }
    for (i = 0; i < n; i++)
        ks_key_put(all[i]);
    free(all);
    *changed = u->n;
    *out = u;
    return 0;
oom:
    snprintf(err, errlen, "out of memory reloading the certificates");
fail:
    for (i = 0; i < n; i++)
        ks_key_put(all[i]);
    free(all);
    ks_store_certs_discard(u);
    return -1;
}

void ks_store_certs_commit(struct ks_cert_update *u)
{
    char why[512];
    size_t i;

    if (u == NULL)
        return;
    pthread_mutex_lock(&write_lock);
    for (i = 0; i < u->n; i++) {
        struct ks_key *cur = ks_store_get(u->v[i].old->name);

        if (cur == u->v[i].old) {
            uncarry(u->v[i].fresh->name);
            table_put(u->v[i].fresh);
            u->v[i].fresh = NULL;
        }
        ks_key_put(cur);
    }
    /* An admin asked for the reload: from now on the manifest vouches for
     * the chains it published (and no longer for the ones they replace). */
    if (u->n > 0 && commit(NULL, why, sizeof(why)) != 0)
        ks_log("error: certificates reloaded but %s", why);
    pthread_mutex_unlock(&write_lock);
    ks_store_certs_discard(u);
}

/* ---- versions --------------------------------------------------------- */

struct ks_key *ks_store_get_version(const char *name, uint32_t version,
                                    enum ks_store_status *st, uint32_t *current,
                                    uint64_t *retired_on)
{
    struct ks_key *head = ks_store_get(name), *k = NULL;
    size_t i;

    *st = KS_STORE_OK;
    *current = 0;
    *retired_on = 0;
    if (head == NULL) {
        *st = KS_STORE_NO_SUCH_KEY;
        return NULL;
    }
    *current = head->version;
    if (version == 0 || version == head->version)
        return head;
    for (i = 0; i < head->nolder && k == NULL; i++)
        if (head->older[i]->version == version) {
            k = head->older[i];
            key_ref(k);
        }
    if (k == NULL) {
        /* versions are made in order: one below the current that is gone was retired */
        *st = version < head->version ? KS_STORE_RETIRED : KS_STORE_NO_SUCH_VERSION;
        for (i = 0; i < head->nretired; i++)
            if (head->retired[i].version == version)
                *retired_on = head->retired[i].when;
    }
    ks_key_put(head);
    return k;
}

struct ks_key *ks_store_current_of(const struct ks_key *k)
{
    struct ks_key *head = ks_store_get(k->name);

    if (head != NULL && !in_family(head, k)) {
        ks_key_put(head);
        return NULL;
    }
    return head;
}

/* Write order (write_lock held), as for add: manifest + counter with
 * NAME.vN.key optional, then the file, then the table; kill -9 anywhere
 * leaves the old current version or the new one. */
enum ks_store_status ks_store_rotate(const char *name, EVP_PKEY *pkey, uint32_t usage,
                                     struct ks_key **out, char *err, size_t errlen)
{
    struct ks_keyfile_meta meta;
    char keyf[80], keytmp[80], crtf[80], crttmp[80], stem[80], why[512];
    uint8_t *der = NULL, *file = NULL;
    size_t derlen, filelen;
    struct ks_key *k = NULL, *cur = NULL, *bare = NULL;
    struct ks_manifest extra = { 0 };
    enum ks_store_status rc = KS_STORE_INTERNAL;

    if (out != NULL)
        *out = NULL;
    k = key_new(name, pkey, (uint64_t)time(NULL), usage, why, sizeof(why));
    if (k == NULL) {
        snprintf(err, errlen, "%s", why);
        return KS_STORE_INTERNAL;
    }
    if (ks_usage_check(k->type, usage, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "key %s: %s", name, why);
        ks_key_put(k);
        return KS_STORE_REFUSED;
    }
    if (ks_pkey_to_pkcs8(pkey, &der, &derlen) != 0) {
        snprintf(err, errlen, "cannot encode key %s as PKCS#8 (%s)", name,
                 ks_ossl_reason(why, sizeof(why)));
        ks_key_put(k);
        return KS_STORE_INTERNAL;
    }
    pthread_mutex_lock(&write_lock);
    cur = ks_store_get(name);
    if (cur == NULL) {
        snprintf(err, errlen, "no key named '%s'", name);
        rc = KS_STORE_NO_SUCH_KEY;
        goto unlock;
    }
    if (ks_catalogue_enabled() && cur->nolder + 1 >= KS_CAT_MAX_VERSIONS) {
        /* one record carries the whole family */
        snprintf(err, errlen, "key '%s' has %u versions, the most one catalogue record "
                 "carries (catalogue = etcd): retire old versions first (keystorectl retire "
                 "%s --version %u)", name, (unsigned)cur->nolder + 1, name,
                 (unsigned)(cur->nolder > 0 ? cur->older[0]->version : cur->version));
        rc = KS_STORE_REFUSED;
        goto unlock;
    }
    k->version = cur->version + 1;
    version_stem(name, k->version, stem);
    if (k->version == 0 || strlen(stem) > KS_MAX_KEY_NAME) {
        snprintf(err, errlen, "key name '%s' is too long for versions: %s must fit in %d "
                 "characters", name, stem, KS_MAX_KEY_NAME);
        rc = KS_STORE_REFUSED;
        goto unlock;
    }
    meta.version = KS_KEYFILE_VERSION;
    meta.key_type = (uint32_t)k->type;
    meta.created = k->created;
    meta.usage = usage;
    /* sealed under the stem: a version file renamed to another version fails */
    if (ks_seal_key(stem, &meta, der, derlen, &file, &filelen) != 0) {
        snprintf(err, errlen, "cannot seal key %s with the master key", stem);
        goto unlock;
    }
    ks_file_hash(file, filelen, k->key_hash);
    file_names(stem, keyf, keytmp, crtf, crttmp);
    bare = key_copy(cur, cur->certs, cur->ncerts);
    if (bare == NULL || family_set(k, cur, 0, bare, NULL) != 0 ||
        ks_manifest_add(&extra, keyf, k->key_hash, KS_MF_OPTIONAL) != 0) {
        snprintf(err, errlen, "out of memory");
        goto unlock;
    }
    /* etcd first: the other replicas get the new version, or nothing changes here */
    if (ks_catalogue_enabled()) {
        struct cat_change ch = { keyf, file, filelen };

        rc = publish_family(name, 0, k, &ch, 1, "no new version was made", err, errlen);
        if (rc != KS_STORE_OK)
            goto unlock;
        rc = KS_STORE_INTERNAL;
    }
    /* a .crt left behind by hand must not attach to the new version */
    if (ks_unlink_at(dir_fd, crtf) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove old %s/%s: %s", dir_path, crtf, strerror(errno));
        goto unlock;
    }
    uncarry_files(stem, 0);
    if (commit(&extra, err, errlen) != 0)
        goto unlock;
    if (ks_write_file_atomic_at(dir_fd, keyf, keytmp, file, filelen, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot store key %s version %u in %s: %s", name,
                 (unsigned)k->version, dir_path, why);
        goto unlock;
    }
    if (out != NULL) {
        key_ref(k);
        *out = k;
    }
    table_put(k);
    k = NULL;
    /* the manifest now requires the new file */
    if (commit(NULL, why, sizeof(why)) != 0)
        ks_log("warning: %s", why);
    EVP_PKEY_free(pkey);   /* the entry holds its own reference */
    rc = KS_STORE_OK;
unlock:
    write_unlock();
    ks_key_put(cur);
    if (bare != NULL)
        ks_key_put(bare);   /* k's family holds its own reference */
    ks_key_put(k);
    ks_manifest_free(&extra);
    sodium_free(der);
    free(file);
    return rc;
}

/* Write order (write_lock held), as for delete: unlink the version's files,
 * then the table, then manifest + counter (a crash in between: a listed file
 * is missing, reported and forgotten; the version stays retired). */
enum ks_store_status ks_store_retire(const char *name, uint32_t version,
                                     struct ks_key **out, char *err, size_t errlen)
{
    struct ks_key *cur, *v = NULL, *head = NULL;
    struct ks_key_retired r;
    size_t i;
    enum ks_store_status rc = KS_STORE_INTERNAL;

    if (out != NULL)
        *out = NULL;
    pthread_mutex_lock(&write_lock);
    cur = ks_store_get(name);
    if (cur == NULL) {
        snprintf(err, errlen, "no key named '%s'", name);
        rc = KS_STORE_NO_SUCH_KEY;
        goto unlock;
    }
    if (version == cur->version) {
        snprintf(err, errlen, "version %u is the current version of key '%s': rotate first "
                 "(keystorectl rotate %s), then retire it", (unsigned)version, name, name);
        rc = KS_STORE_REFUSED;
        goto unlock;
    }
    for (i = 0; i < cur->nolder; i++)
        if (cur->older[i]->version == version)
            v = cur->older[i];
    if (v == NULL) {
        snprintf(err, errlen, "key '%s' has no version %u to retire (%s; the current version "
                 "is %u)", name, (unsigned)version,
                 version < cur->version ? "it was retired already" : "no such version",
                 (unsigned)cur->version);
        rc = version < cur->version ? KS_STORE_RETIRED : KS_STORE_NO_SUCH_VERSION;
        goto unlock;
    }
    r.version = version;
    r.when = (uint64_t)time(NULL);
    head = key_copy(cur, cur->certs, cur->ncerts);
    if (head == NULL || family_set(head, cur, version, NULL, &r) != 0) {
        snprintf(err, errlen, "out of memory");
        goto unlock;
    }
    if (ks_catalogue_enabled()) {
        rc = publish_family(name, 0, head, NULL, 0, "nothing was retired", err, errlen);
        if (rc != KS_STORE_OK)
            goto unlock;
        rc = KS_STORE_INTERNAL;
    }
    if (unlink_version(v, err, errlen) != 0)
        goto unlock;
    /* From here the version is gone on disk: drop it from memory whatever happens. */
    {
        char stem[80];

        version_stem(name, version, stem);
        uncarry_files(stem, 0);
    }
    if (out != NULL) {
        key_ref(head);
        *out = head;
    }
    table_put(head);
    head = NULL;
    if (fsync_dir(err, errlen) != 0 || commit(NULL, err, errlen) != 0)
        goto unlock;
    rc = KS_STORE_OK;
unlock:
    write_unlock();
    if (head != NULL)
        key_free(head);
    ks_key_put(cur);
    return rc;
}
