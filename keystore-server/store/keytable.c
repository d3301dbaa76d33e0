/* Key table and key directory: the entries, the table, the manifest (commit),
 * open and close; see keytable.h, keytable_int.h and sealed_file.h.  The rest
 * is beside it: keytable_load.c (start-up), keytable_write.c (add, delete,
 * certificates, versions), keytable_sync.c (catalogue = etcd) and
 * keytable_certs.c (certificate reload). */
#include "keytable.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "catalogue.h"
#include "common/log.h"
#include "generation.h"
#include "keydir.h"
#include "keyload.h"
#include "keytable_int.h"
#include "manifest.h"

#define INITIAL_BUCKETS 1024

int kt_dir_fd = -1;
char kt_dir_path[4096];

/* The generation of the last manifest written (kt_write_lock), and the entries
 * of vouched files that did not load (a full secure heap, a chain that does
 * not match): every manifest keeps them, so they stay vouched for. */
uint64_t kt_generation;
struct ks_manifest kt_carried;

/* Readers (every operation) take table_lock shared; publishing a new table
 * state takes it exclusively for a few pointer moves only. */
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ks_key **buckets;
static size_t nbuckets;
static size_t nkeys;

/* Serializes mutations (file writes + table updates) so that the "exists?"
 * check and the write cannot race between two admins. */
pthread_mutex_t kt_write_lock = PTHREAD_MUTEX_INITIALIZER;

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

void kt_key_free(struct ks_key *k)
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
        kt_key_free(k);
}

void kt_key_ref(struct ks_key *k)
{
    __atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
}

void ks_key_hold(struct ks_key *k)
{
    kt_key_ref(k);
}

/* Bumped under table_lock by every kt_table_put and kt_table_remove. */
static uint64_t changes;

uint64_t ks_store_changes(void)
{
    return __atomic_load_n(&changes, __ATOMIC_ACQUIRE);
}

int kt_copy_certs(struct ks_key *k, const struct ks_cert *certs, size_t n)
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
            return -1;   /* kt_key_free releases what was copied */
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
struct ks_key *kt_key_new(const char *name, EVP_PKEY *pkey, uint64_t created,
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

/* A new entry (refs = 1) that is a copy of `from` with another chain (the
 * EVP_PKEY is shared), without a family (the caller's: family_set); NULL
 * if out of memory. */
struct ks_key *kt_key_copy(const struct ks_key *from, const struct ks_cert *certs,
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
    if (kt_copy_certs(k, certs, ncerts) != 0 || EVP_PKEY_up_ref(from->pkey) != 1) {
        kt_key_free(k);
        return NULL;
    }
    k->pkey = from->pkey;
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
void kt_table_put(struct ks_key *k)
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

struct ks_key *kt_table_remove(const char *name)
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
        kt_key_ref(k);
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

/* A snapshot of the entries, each referenced (the caller puts them and
 * frees the array): *n of them, or NULL if out of memory. */
struct ks_key **kt_table_snapshot(size_t *n)
{
    struct ks_key **all;
    size_t i, cap;

    *n = 0;
    pthread_rwlock_rdlock(&table_lock);
    cap = nkeys;
    all = calloc(cap ? cap : 1, sizeof(*all));
    if (all != NULL) {
        for (i = 0; i < nbuckets; i++) {
            struct ks_key *k;

            for (k = buckets[i]; k != NULL && *n < cap; k = k->next) {
                kt_key_ref(k);
                all[(*n)++] = k;
            }
        }
    }
    pthread_rwlock_unlock(&table_lock);
    return all;
}

/* ---- the manifest (callers hold kt_write_lock, or are single-threaded) */

void kt_file_names(const char *name, char *keyf, char *keytmp, char *crtf, char *crttmp)
{
    /* names (and version stems) are at most 64 characters, buffers are 80 */
    snprintf(keyf, 80, "%.*s.key", KS_MAX_KEY_NAME, name);
    snprintf(keytmp, 80, ".%.*s.tmp", KS_MAX_KEY_NAME, name);
    snprintf(crtf, 80, "%.*s.crt", KS_MAX_KEY_NAME, name);
    snprintf(crttmp, 80, ".%.*s.crt.tmp", KS_MAX_KEY_NAME, name);
}

/* The stem of version v's files: NAME (version 1, so stores from before
 * versions need no migration) or NAME.vN. */
void kt_version_stem(const char *name, uint32_t v, char stem[80])
{
    if (v <= 1)
        snprintf(stem, 80, "%s", name);
    else
        snprintf(stem, 80, "%s.v%u", name, (unsigned)v);
}

void kt_version_file_names(const struct ks_key *k, char *keyf, char *keytmp, char *crtf,
                           char *crttmp)
{
    char stem[80];

    kt_version_stem(k->name, k->version, stem);
    kt_file_names(stem, keyf, keytmp, crtf, crttmp);
}

/* Version N of stem "NAME.vN" (N >= 2, no leading zero; name gets NAME),
 * or 1 with name = stem. */
uint32_t kt_stem_version(const char *stem, char name[KS_MAX_KEY_NAME + 1])
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
void kt_key_take_stem(struct ks_key *k)
{
    char name[KS_MAX_KEY_NAME + 1];

    k->version = kt_stem_version(k->name, name);
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

int kt_foreach_family_file(const struct ks_key *head, kt_family_file_fn *fn, void *arg)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80];
    size_t i;
    int r;

    for (i = 0; i <= head->nolder; i++) {
        const struct ks_key *v = i < head->nolder ? head->older[i] : head;

        kt_version_file_names(v, keyf, keytmp, crtf, crttmp);
        if ((r = fn(v, keyf, 1, v->key_hash, 1, arg)) != 0 ||
            (r = fn(v, crtf, 0, v->crt_hash, v->has_crt, arg)) != 0)
            return r;
    }
    return 0;
}

static int add_file_entry(const struct ks_key *v, const char *fname, int is_key,
                          const uint8_t *hash, int present, void *arg)
{
    (void)v;
    (void)is_key;
    return present && ks_manifest_add(arg, fname, hash, 0) != 0;
}

static int add_key_entries(const struct ks_key *k, void *arg)
{
    return kt_foreach_family_file(k, add_file_entry, arg);
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
    return family && kt_stem_version(s, name) > 1 && strcmp(name, stem) == 0;
}

/* Drop carried entries of stem (a key version whose files are replaced),
 * or with family set of every version of key `stem` (replaced or deleted). */
void kt_uncarry_files(const char *stem, int family)
{
    size_t i, j = 0;

    for (i = 0; i < kt_carried.n; i++)
        if (!file_of(kt_carried.e[i].file, stem, family))
            kt_carried.e[j++] = kt_carried.e[i];
    kt_carried.n = j;
}

void kt_uncarry(const char *name)
{
    kt_uncarry_files(name, 1);
}

/* Commit the table (plus extra entries: writes in progress) as the next
 * generation: the manifest first, then the counter, so that after a crash
 * the manifest is at most one generation ahead of the counter (accepted at
 * start) and never behind it. */
int kt_commit(const struct ks_manifest *extra, char *err, size_t errlen)
{
    struct ks_manifest m = { 0 };
    char why[512];
    size_t i;
    int rc = -1, failed;

    m.gen = kt_generation + 1;
    failed = ks_store_foreach(add_key_entries, &m);
    for (i = 0; !failed && i < kt_carried.n; i++)
        failed = ks_manifest_add(&m, kt_carried.e[i].file, kt_carried.e[i].hash,
                                 kt_carried.e[i].flags);
    for (i = 0; !failed && extra != NULL && i < extra->n; i++)
        failed = ks_manifest_add(&m, extra->e[i].file, extra->e[i].hash, extra->e[i].flags);
    if (!failed && kt_cat_listed)
        failed = ks_manifest_add(&m, KS_CAT_STATE_FILE, kt_cat_hash, 0);
    if (failed) {
        snprintf(err, errlen, "out of memory for the manifest of %s", kt_dir_path);
        goto out;
    }
    if (ks_manifest_write(kt_dir_fd, &m, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot write the manifest of %s: %s", kt_dir_path, why);
        goto out;
    }
    kt_generation = m.gen;
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

/* fsync the key directory (after unlinks); 0, or -1 with err. */
int kt_fsync_dir(char *err, size_t errlen)
{
    if (ks_sync_dir(kt_dir_fd) != 0) {
        snprintf(err, errlen, "cannot sync key directory %s: %s", kt_dir_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- open and close --------------------------------------------------- */

int ks_store_open(const char *key_dir, const char *counter_path)
{
    char def[4200];
    uint64_t counter;
    struct stat st;

    snprintf(kt_dir_path, sizeof(kt_dir_path), "%s", key_dir);
    counter_path = ks_generation_default(key_dir, counter_path, def, sizeof(def));
    if (mkdir(key_dir, 0700) == 0)
        ks_log("created key directory %s", key_dir);
    else if (errno != EEXIST) {
        ks_log("error: cannot create key directory %s: %s", key_dir, strerror(errno));
        return -1;
    }
    kt_dir_fd = open(key_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (kt_dir_fd < 0) {
        ks_log("error: cannot open key directory %s: %s", key_dir, strerror(errno));
        return -1;
    }
    if (fstat(kt_dir_fd, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        ks_log("warning: key directory %s is writable by group or others (mode %04o); "
               "fix with: chmod 700 %s", key_dir, (unsigned)(st.st_mode & 07777), key_dir);
    if (ks_generation_open(counter_path, &counter) != 0)
        return -1;
    if (table_init() != 0) {
        ks_log("error: out of memory for the key table");
        return -1;
    }
    if (kt_load_all(counter) != 0)
        return -1;
    if (ks_catalogue_enabled())
        ks_store_catalogue_flush();   /* a first start's state at once (keytable_sync.c) */
    return 0;
}

int ks_store_dir_fd(void)
{
    return kt_dir_fd;
}

void ks_store_release_dir(void)
{
    if (kt_dir_fd >= 0)
        close(kt_dir_fd);
    kt_dir_fd = -1;
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
    ks_manifest_free(&kt_carried);
    ks_generation_close();
    if (kt_dir_fd >= 0)
        close(kt_dir_fd);
    kt_dir_fd = -1;
}
