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

#include "certchain.h"
#include "common/log.h"
#include "sealed_file.h"
#include "secure_heap.h"

#define INITIAL_BUCKETS 1024

static int dir_fd = -1;
static char dir_path[4096];

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
    free(k->spki);
    for (i = 0; i < k->ncerts; i++)
        free(k->certs[i].der);
    free(k->certs);
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

/* New entry with refs = 1 holding its own reference to pkey. */
static struct ks_key *key_new(const char *name, EVP_PKEY *pkey, uint64_t created,
                              char *why, size_t whylen)
{
    struct ks_key *k = calloc(1, sizeof(*k));
    unsigned char *p;
    int len;

    if (k == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    k->refs = 1;
    snprintf(k->name, sizeof(k->name), "%s", name);
    if (ks_pkey_describe(pkey, &k->type, &k->bits, k->group, why, whylen) != 0) {
        free(k);
        return NULL;
    }
    len = i2d_PUBKEY(pkey, NULL);
    if (len <= 0 || (k->spki = malloc((size_t)len)) == NULL) {
        snprintf(why, whylen, "cannot encode the public key");
        ERR_clear_error();
        free(k);
        return NULL;
    }
    p = k->spki;
    if (i2d_PUBKEY(pkey, &p) != len) {
        snprintf(why, whylen, "cannot encode the public key");
        ERR_clear_error();
        free(k->spki);
        free(k);
        return NULL;
    }
    k->spki_len = (size_t)len;
    if (EVP_PKEY_up_ref(pkey) != 1) {
        snprintf(why, whylen, "EVP_PKEY_up_ref failed");
        free(k->spki);
        free(k);
        return NULL;
    }
    k->pkey = pkey;
    k->created = created;
    return k;
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

/* ---- loading ---------------------------------------------------------- */

static void file_names(const char *name, char *keyf, char *keytmp, char *crtf, char *crttmp)
{
    /* names are at most 64 characters, buffers are 80 */
    snprintf(keyf, 80, "%s.key", name);
    snprintf(keytmp, 80, ".%s.tmp", name);
    snprintf(crtf, 80, "%s.crt", name);
    snprintf(crttmp, 80, ".%s.crt.tmp", name);
}

/* Attach NAME.crt if present and consistent; problems only cost the chain. */
static void load_cert_file(struct ks_key *k, const char *crtf)
{
    char err[256], why[512];
    struct ks_cert *certs;
    uint8_t *buf;
    size_t len, n, bad;

    if (ks_read_file_at(dir_fd, crtf, KS_CERTFILE_MAX, &buf, &len, err, sizeof(err)) != 0) {
        if (errno != ENOENT)
            ks_log("warning: %s/%s: %s; key %s is loaded without its certificates",
                   dir_path, crtf, err, k->name);
        return;
    }
    if (ks_cert_split(buf, len, &certs, &n) != 0) {
        ks_log("warning: %s/%s is not a list of DER certificates; key %s is loaded "
               "without its certificates", dir_path, crtf, k->name);
    } else if (ks_cert_chain_check(k->pkey, k->name, certs, n, 0, &bad, why, sizeof(why)) != 0) {
        ks_log("warning: %s/%s: %s; key %s is loaded without its certificates",
               dir_path, crtf, why, k->name);
        ERR_clear_error();
    } else if (copy_certs(k, certs, n) != 0) {
        ks_log("warning: out of memory loading %s/%s", dir_path, crtf);
    }
    free(certs);
    free(buf);
}

/* Returns 1 loaded, 0 skipped (logged), -1 authentication failure (logged). */
static int load_one(const char *fname)
{
    char name[KS_MAX_KEY_NAME + 1], why[512], err[256];
    char keyf[80], keytmp[80], crtf[80], crttmp[80];
    size_t flen = strlen(fname), filelen, derlen;
    uint8_t *file = NULL, *der = NULL;
    uint32_t file_type;
    uint64_t created;
    EVP_PKEY *pkey;
    struct ks_key *k;
    enum ks_unseal_status st;

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
    st = ks_unseal_key(name, file, filelen, &file_type, &created, &der, &derlen, why, sizeof(why));
    free(file);
    if (st != KS_UNSEAL_OK) {
        if (st == KS_UNSEAL_INTERNAL)
            snprintf(why, sizeof(why), "internal error while unsealing");
        ks_log("error: skipping key %s: %s/%s %s", name, dir_path, fname, why);
        return st == KS_UNSEAL_AUTH ? -1 : 0;
    }
    pkey = ks_pkey_from_der(der, derlen);
    sodium_free(der);   /* wipes the plaintext PKCS#8 */
    if (pkey == NULL) {
        ks_log("error: skipping key %s: %s/%s authenticates but the key inside does not "
               "parse (%s)%s", name, dir_path, fname, ks_ossl_reason(why, sizeof(why)),
               ks_secure_heap_size() > 0 && CRYPTO_secure_used() + 65536 >
               ks_secure_heap_size() ? "; the secure heap looks full: raise "
               "secure_heap_mb" : "");
        return 0;
    }
    k = key_new(name, pkey, created, why, sizeof(why));
    EVP_PKEY_free(pkey);
    if (k == NULL) {
        ks_log("error: skipping key %s: %s", name, why);
        return 0;
    }
    if ((uint32_t)k->type != file_type) {
        ks_log("error: skipping key %s: the file header says type %u but the key is %s",
               name, file_type, ks_key_type_name(k->type));
        ks_key_put(k);
        return 0;
    }
    file_names(name, keyf, keytmp, crtf, crttmp);
    load_cert_file(k, crtf);
    table_put(k);
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

static int load_all(void)
{
    struct dirent *de;
    unsigned loaded = 0, auth_failed = 0, skipped = 0;
    int fd = dup(dir_fd);
    DIR *d;

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        ks_log("error: cannot list key directory %s: %s", dir_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        int r;

        if (de->d_name[0] == '.') {
            remove_temp_file(de->d_name);
            continue;
        }
        if (n <= 4 || strcmp(de->d_name + n - 4, ".key") != 0)
            continue;
        r = load_one(de->d_name);
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
        return -1;
    }
    closedir(d);
    if (loaded == 0 && auth_failed > 0) {
        ks_log("error: cannot unseal any key: wrong master key? (%u key file%s in %s failed "
               "authentication). Check master_key in the config; if the key files really are "
               "damaged, move them out of the key directory", auth_failed,
               auth_failed == 1 ? "" : "s", dir_path);
        return -1;
    }
    ks_log("loaded %u key%s from %s%s", loaded, loaded == 1 ? "" : "s", dir_path,
           auth_failed + skipped > 0 ? " (some files were skipped, see above)" : "");
    return 0;
}

int ks_store_open(const char *key_dir)
{
    struct stat st;

    snprintf(dir_path, sizeof(dir_path), "%s", key_dir);
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
    if (table_init() != 0) {
        ks_log("error: out of memory for the key table");
        return -1;
    }
    return load_all();
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
    if (dir_fd >= 0)
        close(dir_fd);
    dir_fd = -1;
}

/* ---- mutations -------------------------------------------------------- */

static int fsync_dir(char *err, size_t errlen)
{
    if (ks_sync_dir(dir_fd) != 0) {
        snprintf(err, errlen, "cannot sync key directory %s: %s", dir_path, strerror(errno));
        return -1;
    }
    return 0;
}

enum ks_store_status ks_store_add(const char *name, EVP_PKEY *pkey,
                                  struct ks_key **out, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80], why[512];
    uint8_t *der = NULL, *file = NULL;
    size_t derlen, filelen;
    struct ks_key *k = NULL, *existing;
    enum ks_store_status rc = KS_STORE_INTERNAL;

    if (out != NULL)
        *out = NULL;
    k = key_new(name, pkey, (uint64_t)time(NULL), why, sizeof(why));
    if (k == NULL) {
        snprintf(err, errlen, "%s", why);
        return KS_STORE_INTERNAL;
    }
    if (ks_pkey_to_pkcs8(pkey, &der, &derlen) != 0) {
        snprintf(err, errlen, "cannot encode key %s as PKCS#8 (%s)", name,
                 ks_ossl_reason(why, sizeof(why)));
        ks_key_put(k);
        return KS_STORE_INTERNAL;
    }
    if (ks_seal_key(name, (uint32_t)k->type, k->created, der, derlen, &file, &filelen) != 0) {
        snprintf(err, errlen, "cannot seal key %s with the master key", name);
        goto out;
    }
    file_names(name, keyf, keytmp, crtf, crttmp);
    pthread_mutex_lock(&write_lock);
    existing = ks_store_get(name);
    if (existing != NULL) {
        ks_key_put(existing);
        pthread_mutex_unlock(&write_lock);
        snprintf(err, errlen, "a key named '%s' already exists", name);
        rc = KS_STORE_EXISTS;
        goto out;
    }
    /* A .crt left behind by a manual key file deletion must not attach to the new key. */
    if (ks_unlink_at(dir_fd, crtf) != 0 && errno != ENOENT) {
        pthread_mutex_unlock(&write_lock);
        snprintf(err, errlen, "cannot remove old %s/%s: %s", dir_path, crtf, strerror(errno));
        goto out;
    }
    if (ks_write_file_atomic_at(dir_fd, keyf, keytmp, file, filelen, why, sizeof(why)) != 0) {
        pthread_mutex_unlock(&write_lock);
        snprintf(err, errlen, "cannot store key %s in %s: %s", name, dir_path, why);
        goto out;
    }
    if (out != NULL) {
        key_ref(k);
        *out = k;
    }
    table_put(k);
    k = NULL;
    pthread_mutex_unlock(&write_lock);
    EVP_PKEY_free(pkey);   /* the entry holds its own reference */
    rc = KS_STORE_OK;
out:
    if (rc != KS_STORE_OK)
        ks_key_put(k);
    sodium_free(der);
    free(file);
    return rc;
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
        pthread_mutex_unlock(&write_lock);
        snprintf(err, errlen, "no key named '%s'", name);
        return KS_STORE_NO_SUCH_KEY;
    }
    ks_key_put(k);
    if (ks_unlink_at(dir_fd, keyf) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot delete %s/%s: %s", dir_path, keyf, strerror(errno));
        pthread_mutex_unlock(&write_lock);
        return KS_STORE_INTERNAL;
    }
    /* From here the key is gone on disk: drop it from memory whatever happens. */
    ks_key_put(table_remove(name));
    if (ks_unlink_at(dir_fd, crtf) != 0 && errno != ENOENT)
        ks_log("warning: key %s deleted but %s/%s could not be removed: %s",
               name, dir_path, crtf, strerror(errno));
    if (fsync_dir(err, errlen) != 0) {
        pthread_mutex_unlock(&write_lock);
        return KS_STORE_INTERNAL;
    }
    pthread_mutex_unlock(&write_lock);
    return KS_STORE_OK;
}

/* Fill the blank entry k as a copy of expected with another chain (the
 * EVP_PKEY is shared).  On failure k is left for key_free. */
static int key_with_certs(struct ks_key *k, const struct ks_key *expected,
                          const struct ks_cert *certs, size_t ncerts)
{
    *k = *expected;
    k->refs = 1;
    k->next = NULL;
    k->certs = NULL;
    k->ncerts = 0;
    k->pkey = NULL;
    k->spki = malloc(expected->spki_len);
    if (k->spki == NULL || copy_certs(k, certs, ncerts) != 0 ||
        EVP_PKEY_up_ref(expected->pkey) != 1)
        return -1;
    k->pkey = expected->pkey;
    memcpy(k->spki, expected->spki, expected->spki_len);
    return 0;
}

enum ks_store_status ks_store_set_certs(const struct ks_key *expected,
                                        const struct ks_cert *certs, size_t ncerts,
                                        struct ks_key **out, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80], why[512];
    struct ks_key *cur, *k;
    uint8_t *blob = NULL;
    size_t i, total = 0;
    enum ks_store_status rc = KS_STORE_INTERNAL;

    *out = NULL;
    file_names(expected->name, keyf, keytmp, crtf, crttmp);
    for (i = 0; i < ncerts; i++)
        total += certs[i].len;
    blob = malloc(total > 0 ? total : 1);
    k = calloc(1, sizeof(*k));
    if (blob == NULL || k == NULL) {
        snprintf(err, errlen, "out of memory");
        free(blob);
        free(k);
        return KS_STORE_INTERNAL;
    }
    for (total = 0, i = 0; i < ncerts; i++) {
        memcpy(blob + total, certs[i].der, certs[i].len);
        total += certs[i].len;
    }
    if (key_with_certs(k, expected, certs, ncerts) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    pthread_mutex_lock(&write_lock);
    cur = ks_store_get(expected->name);
    if (cur != expected) {
        ks_key_put(cur);
        pthread_mutex_unlock(&write_lock);
        snprintf(err, errlen, "key '%s' was deleted or replaced meanwhile", expected->name);
        rc = KS_STORE_NO_SUCH_KEY;
        goto out;
    }
    ks_key_put(cur);
    if (ncerts == 0) {
        if (ks_unlink_at(dir_fd, crtf) != 0 && errno != ENOENT) {
            pthread_mutex_unlock(&write_lock);
            snprintf(err, errlen, "cannot remove %s/%s: %s", dir_path, crtf, strerror(errno));
            goto out;
        }
    } else if (ks_write_file_atomic_at(dir_fd, crtf, crttmp, blob, total, why, sizeof(why)) != 0) {
        pthread_mutex_unlock(&write_lock);
        snprintf(err, errlen, "cannot store certificates of key %s in %s: %s",
                 expected->name, dir_path, why);
        goto out;
    }
    key_ref(k);
    *out = k;
    table_put(k);
    k = NULL;
    pthread_mutex_unlock(&write_lock);
    rc = KS_STORE_OK;
out:
    if (k != NULL)
        key_free(k);
    free(blob);
    return rc;
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
    *fresh = calloc(1, sizeof(**fresh));
    if (*fresh == NULL || key_with_certs(*fresh, k, certs, n) != 0) {
        snprintf(err, errlen, "out of memory reloading %s/%s", dir_path, crtf);
        key_free(*fresh);
        *fresh = NULL;
        goto out;
    }
    rc = 1;
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
    size_t i;

    if (u == NULL)
        return;
    pthread_mutex_lock(&write_lock);
    for (i = 0; i < u->n; i++) {
        struct ks_key *cur = ks_store_get(u->v[i].old->name);

        if (cur == u->v[i].old) {
            table_put(u->v[i].fresh);
            u->v[i].fresh = NULL;
        }
        ks_key_put(cur);
    }
    pthread_mutex_unlock(&write_lock);
    ks_store_certs_discard(u);
}
