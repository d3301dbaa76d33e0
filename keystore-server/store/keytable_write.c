/* The admin mutations of the key table: add, delete, attach certificates,
 * and key versions (rotate, retire); see keytable_int.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "catalogue.h"
#include "common/log.h"
#include "keytable_int.h"
#include "manifest.h"
#include "sealed_file.h"

/* ---- mutations -------------------------------------------------------- */
/* With catalogue = etcd every mutation first publishes the key's record as
 * it will be (kt_publish_family); etcd refusing it changes nothing here.
 * Write order (kt_write_lock held), so that kill -9 anywhere leaves the old or
 * the new state and a store that starts:
 *   add:    manifest+counter with NAME.key optional, then NAME.key;
 *   delete: unlink NAME.key and NAME.crt, then manifest+counter (a crash in
 *           between: the listed file is missing, reported and forgotten);
 *   certs:  manifest+counter accepting the old and the new NAME.crt, the
 *           file, then manifest+counter with the new one only. */

/* A new entry for pkey (*k) and its PKCS#8 encoding (*der, *derlen, which
 * the caller sodium_frees): KS_STORE_OK, usage_rc if the key type cannot
 * have that usage, KS_STORE_INTERNAL; with err. */
static enum ks_store_status new_entry(const char *name, EVP_PKEY *pkey, uint32_t usage,
                                      enum ks_store_status usage_rc, struct ks_key **k,
                                      uint8_t **der, size_t *derlen, char *err, size_t errlen)
{
    char why[512];

    *der = NULL;
    *k = kt_key_new(name, pkey, (uint64_t)time(NULL), usage, why, sizeof(why));
    if (*k == NULL) {
        snprintf(err, errlen, "%s", why);
        return KS_STORE_INTERNAL;
    }
    if (ks_usage_check((*k)->type, usage, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "key %s: %s", name, why);
        ks_key_put(*k);
        *k = NULL;
        return usage_rc;
    }
    if (ks_pkey_to_pkcs8(pkey, der, derlen) != 0) {
        snprintf(err, errlen, "cannot encode key %s as PKCS#8 (%s)", name,
                 ks_ossl_reason(why, sizeof(why)));
        ks_key_put(*k);
        *k = NULL;
        return KS_STORE_INTERNAL;
    }
    return KS_STORE_OK;
}

/* Seal a new entry's PKCS#8 under stem (NAME, or NAME.vN for a version:
 * a version file renamed to another version then fails).  0 or -1 (err). */
static int seal_entry(const char *stem, const struct ks_key *k, const uint8_t *der,
                      size_t derlen, uint8_t **file, size_t *filelen, char *err, size_t errlen)
{
    struct ks_keyfile_meta meta;

    meta.version = KS_KEYFILE_VERSION;
    meta.key_type = (uint32_t)k->type;
    meta.created = k->created;
    meta.usage = k->usage;
    if (ks_seal_key(stem, &meta, der, derlen, file, filelen) != 0) {
        snprintf(err, errlen, "cannot seal key %s with the master key", stem);
        return -1;
    }
    return 0;
}

enum ks_store_status ks_store_add(const char *name, EVP_PKEY *pkey, uint32_t usage,
                                  struct ks_key **out, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80], why[512];
    uint8_t *der = NULL, *file = NULL;
    size_t derlen, filelen;
    struct ks_key *k = NULL, *existing;
    struct ks_manifest extra = { 0 };
    enum ks_store_status rc = KS_STORE_INTERNAL;

    if (out != NULL)
        *out = NULL;
    /* a usage the type cannot have was refused before this (ops/usage.c) */
    rc = new_entry(name, pkey, usage, KS_STORE_INTERNAL, &k, &der, &derlen, err, errlen);
    if (rc != KS_STORE_OK)
        return rc;
    rc = KS_STORE_INTERNAL;
    if (seal_entry(name, k, der, derlen, &file, &filelen, err, errlen) != 0)
        goto out;
    ks_file_hash(file, filelen, k->key_hash);
    kt_file_names(name, keyf, keytmp, crtf, crttmp);
    if (ks_manifest_add(&extra, keyf, k->key_hash, KS_MF_OPTIONAL) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    pthread_mutex_lock(&kt_write_lock);
    existing = ks_store_get(name);
    if (existing != NULL) {
        ks_key_put(existing);
        kt_write_unlock();
        snprintf(err, errlen, "a key named '%s' already exists", name);
        rc = KS_STORE_EXISTS;
        goto out;
    }
    /* The catalogue first: one replica wins a name, and an etcd that does
     * not take the write leaves this replica unchanged too. */
    if (ks_catalogue_enabled()) {
        struct kt_cat_change ch = { keyf, file, filelen };

        rc = kt_publish_family(name, 1, k, &ch, 1, "no key was made", err, errlen);
        if (rc != KS_STORE_OK) {
            kt_write_unlock();
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
    if (ks_unlink_at(kt_dir_fd, crtf) != 0 && errno != ENOENT) {
        kt_write_unlock();
        snprintf(err, errlen, "cannot remove old %s/%s: %s", kt_dir_path, crtf, strerror(errno));
        goto out;
    }
    kt_uncarry(name);
    if (kt_commit(&extra, err, errlen) != 0) {
        kt_write_unlock();
        goto out;
    }
    if (ks_write_file_atomic_at(kt_dir_fd, keyf, keytmp, file, filelen, why, sizeof(why)) != 0) {
        kt_write_unlock();
        snprintf(err, errlen, "cannot store key %s in %s: %s", name, kt_dir_path, why);
        goto out;
    }
    if (out != NULL) {
        kt_key_ref(k);
        *out = k;
    }
    kt_table_put(k);
    k = NULL;
    kt_write_unlock();
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

/* Unlink the files of one version (kt_write_lock held); 0 or -1 with err. */
int kt_unlink_version(const struct ks_key *v, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80];

    kt_version_file_names(v, keyf, keytmp, crtf, crttmp);
    if (ks_unlink_at(kt_dir_fd, keyf) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot delete %s/%s: %s", kt_dir_path, keyf, strerror(errno));
        return -1;
    }
    if (ks_unlink_at(kt_dir_fd, crtf) != 0 && errno != ENOENT)
        ks_log("warning: key %s version %u: %s/%s could not be removed: %s", v->name,
               (unsigned)v->version, kt_dir_path, crtf, strerror(errno));
    return 0;
}

int kt_unlink_versions(const struct ks_key *head, char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < head->nolder; i++)
        if (kt_unlink_version(head->older[i], err, errlen) != 0)
            return -1;
    return 0;
}

enum ks_store_status ks_store_delete(const char *name, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80];
    struct ks_key *k;
    int joining;

    if (!ks_valid_key_name(name)) {
        snprintf(err, errlen, "no key named '%s'", name);
        return KS_STORE_NO_SUCH_KEY;
    }
    kt_file_names(name, keyf, keytmp, crtf, crttmp);
    pthread_mutex_lock(&kt_write_lock);
    k = ks_store_get(name);
    if (k == NULL) {
        kt_write_unlock();
        snprintf(err, errlen, "no key named '%s'", name);
        return KS_STORE_NO_SUCH_KEY;
    }
    /* the tombstone first: an etcd that refuses it leaves every version here
     * (a key from before catalogue = etcd, not shared, has none to publish) */
    joining = ks_catalogue_enabled() && ks_catalogue_is_joining(name);
    if (ks_catalogue_enabled() && !joining) {
        enum ks_store_status pst = kt_publish_family(name, 0, NULL, NULL, 0, "nothing was deleted",
                                                     err, errlen);

        if (pst != KS_STORE_OK) {
            ks_key_put(k);
            kt_write_unlock();
            return pst;
        }
    }
    /* older versions first: a crash part way leaves the key with fewer
     * versions, never an old version back as the current one */
    if (kt_unlink_versions(k, err, errlen) != 0) {
        ks_key_put(k);
        kt_write_unlock();
        return KS_STORE_INTERNAL;
    }
    kt_version_file_names(k, keyf, keytmp, crtf, crttmp);
    ks_key_put(k);
    if (ks_unlink_at(kt_dir_fd, keyf) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot delete %s/%s: %s", kt_dir_path, keyf, strerror(errno));
        kt_write_unlock();
        return KS_STORE_INTERNAL;
    }
    /* From here the key is gone on disk: drop it from memory whatever happens. */
    ks_key_put(kt_table_remove(name));
    kt_uncarry(name);
    if (ks_unlink_at(kt_dir_fd, crtf) != 0 && errno != ENOENT)
        ks_log("warning: key %s deleted but %s/%s could not be removed: %s",
               name, kt_dir_path, crtf, strerror(errno));
    if (joining)
        ks_catalogue_forget(name);   /* etcd's key of the name applies at the next start */
    if (kt_fsync_dir(err, errlen) != 0 || kt_commit(NULL, err, errlen) != 0) {
        kt_write_unlock();
        return KS_STORE_INTERNAL;
    }
    kt_write_unlock();
    return KS_STORE_OK;
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
        kt_key_ref(head->older[i]);
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
    kt_version_file_names(expected, keyf, keytmp, crtf, crttmp);
    for (i = 0; i < ncerts; i++)
        total += certs[i].len;
    blob = malloc(total > 0 ? total : 1);
    k = kt_key_copy(expected, certs, ncerts);
    if (blob == NULL || k == NULL) {
        snprintf(err, errlen, "out of memory");
        free(blob);
        kt_key_free(k);
        return KS_STORE_INTERNAL;
    }
    for (total = 0, i = 0; i < ncerts; i++) {
        memcpy(blob + total, certs[i].der, certs[i].len);
        total += certs[i].len;
    }
    k->has_crt = ncerts > 0;
    if (ncerts > 0)
        ks_file_hash(blob, total, k->crt_hash);

    pthread_mutex_lock(&kt_write_lock);
    cur = ks_store_get(expected->name);
    if (cur == NULL || !in_family(cur, expected)) {
        ks_key_put(cur);
        kt_write_unlock();
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
        head = kt_key_copy(cur, cur->certs, cur->ncerts);
        hrc = head == NULL || family_set(head, cur, 0, k, NULL) != 0 ? -1 : 0;
    }
    ks_key_put(cur);
    if (hrc != 0) {
        kt_write_unlock();
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (ks_catalogue_enabled()) {
        struct kt_cat_change ch = { crtf, ncerts > 0 ? blob : NULL, total };
        enum ks_store_status pst = kt_publish_family(expected->name, 0, head, &ch, 1,
                                                     "its certificates were not changed", err,
                                                     errlen);

        if (pst != KS_STORE_OK) {
            kt_write_unlock();
            rc = pst;
            goto out;
        }
    }
    /* Either file may be current until the new one is in place. */
    kt_version_stem(expected->name, expected->version, stem);
    kt_uncarry_files(stem, 0);
    if ((ncerts > 0 && ks_manifest_add(&extra, crtf, k->crt_hash,
                                       expected->has_crt ? 0 : KS_MF_OPTIONAL) != 0) ||
        (ncerts == 0 && expected->has_crt &&
         ks_manifest_add(&extra, crtf, expected->crt_hash, KS_MF_OPTIONAL) != 0)) {
        kt_write_unlock();
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (kt_commit(&extra, err, errlen) != 0) {
        kt_write_unlock();
        goto out;
    }
    if (ncerts == 0) {
        if (ks_unlink_at(kt_dir_fd, crtf) != 0 && errno != ENOENT) {
            kt_write_unlock();
            snprintf(err, errlen, "cannot remove %s/%s: %s", kt_dir_path, crtf, strerror(errno));
            goto out;
        }
    } else if (ks_write_file_atomic_at(kt_dir_fd, crtf, crttmp, blob, total, why,
                                       sizeof(why)) != 0) {
        kt_write_unlock();
        snprintf(err, errlen, "cannot store certificates of key %s in %s: %s",
                 expected->name, kt_dir_path, why);
        goto out;
    }
    kt_key_ref(k);
    *out = k;
    if (head != k)
        ks_key_put(k);     /* head's family holds it */
    kt_table_put(head);
    k = head = NULL;
    /* Only the new chain from now on; failing here leaves both vouched for. */
    if (kt_commit(NULL, why, sizeof(why)) != 0)
        ks_log("warning: %s", why);
    kt_write_unlock();
    rc = KS_STORE_OK;
out:
    if (head != NULL && head != k)
        kt_key_free(head);
    if (k != NULL)
        kt_key_free(k);
    ks_manifest_free(&extra);
    free(blob);
    return rc;
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
            kt_key_ref(k);
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

/* Write order (kt_write_lock held), as for add: manifest + counter with
 * NAME.vN.key optional, then the file, then the table; kill -9 anywhere
 * leaves the old current version or the new one. */
enum ks_store_status ks_store_rotate(const char *name, EVP_PKEY *pkey, uint32_t usage,
                                     struct ks_key **out, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80], stem[80], why[512];
    uint8_t *der = NULL, *file = NULL;
    size_t derlen, filelen;
    struct ks_key *k = NULL, *cur = NULL, *bare = NULL;
    struct ks_manifest extra = { 0 };
    enum ks_store_status rc = KS_STORE_INTERNAL;

    if (out != NULL)
        *out = NULL;
    rc = new_entry(name, pkey, usage, KS_STORE_REFUSED, &k, &der, &derlen, err, errlen);
    if (rc != KS_STORE_OK)
        return rc;
    rc = KS_STORE_INTERNAL;
    pthread_mutex_lock(&kt_write_lock);
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
    kt_version_stem(name, k->version, stem);
    if (k->version == 0 || strlen(stem) > KS_MAX_KEY_NAME) {
        snprintf(err, errlen, "key name '%s' is too long for versions: %s must fit in %d "
                 "characters", name, stem, KS_MAX_KEY_NAME);
        rc = KS_STORE_REFUSED;
        goto unlock;
    }
    if (seal_entry(stem, k, der, derlen, &file, &filelen, err, errlen) != 0)
        goto unlock;
    ks_file_hash(file, filelen, k->key_hash);
    kt_file_names(stem, keyf, keytmp, crtf, crttmp);
    bare = kt_key_copy(cur, cur->certs, cur->ncerts);
    if (bare == NULL || family_set(k, cur, 0, bare, NULL) != 0 ||
        ks_manifest_add(&extra, keyf, k->key_hash, KS_MF_OPTIONAL) != 0) {
        snprintf(err, errlen, "out of memory");
        goto unlock;
    }
    /* etcd first: the other replicas get the new version, or nothing changes here */
    if (ks_catalogue_enabled()) {
        struct kt_cat_change ch = { keyf, file, filelen };

        rc = kt_publish_family(name, 0, k, &ch, 1, "no new version was made", err, errlen);
        if (rc != KS_STORE_OK)
            goto unlock;
        rc = KS_STORE_INTERNAL;
    }
    /* a .crt left behind by hand must not attach to the new version */
    if (ks_unlink_at(kt_dir_fd, crtf) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove old %s/%s: %s", kt_dir_path, crtf, strerror(errno));
        goto unlock;
    }
    kt_uncarry_files(stem, 0);
    if (kt_commit(&extra, err, errlen) != 0)
        goto unlock;
    if (ks_write_file_atomic_at(kt_dir_fd, keyf, keytmp, file, filelen, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot store key %s version %u in %s: %s", name,
                 (unsigned)k->version, kt_dir_path, why);
        goto unlock;
    }
    if (out != NULL) {
        kt_key_ref(k);
        *out = k;
    }
    kt_table_put(k);
    k = NULL;
    /* the manifest now requires the new file */
    if (kt_commit(NULL, why, sizeof(why)) != 0)
        ks_log("warning: %s", why);
    EVP_PKEY_free(pkey);   /* the entry holds its own reference */
    rc = KS_STORE_OK;
unlock:
    kt_write_unlock();
    ks_key_put(cur);
    if (bare != NULL)
        ks_key_put(bare);   /* k's family holds its own reference */
    ks_key_put(k);
    ks_manifest_free(&extra);
    sodium_free(der);
    free(file);
    return rc;
}

/* Write order (kt_write_lock held), as for delete: unlink the version's files,
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
    pthread_mutex_lock(&kt_write_lock);
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
    head = kt_key_copy(cur, cur->certs, cur->ncerts);
    if (head == NULL || family_set(head, cur, version, NULL, &r) != 0) {
        snprintf(err, errlen, "out of memory");
        goto unlock;
    }
    if (ks_catalogue_enabled()) {
        rc = kt_publish_family(name, 0, head, NULL, 0, "nothing was retired", err, errlen);
        if (rc != KS_STORE_OK)
            goto unlock;
        rc = KS_STORE_INTERNAL;
    }
    if (kt_unlink_version(v, err, errlen) != 0)
        goto unlock;
    /* From here the version is gone on disk: drop it from memory whatever happens. */
    {
        char stem[80];

        kt_version_stem(name, version, stem);
        kt_uncarry_files(stem, 0);
    }
    if (out != NULL) {
        kt_key_ref(head);
        *out = head;
    }
    kt_table_put(head);
    head = NULL;
    if (kt_fsync_dir(err, errlen) != 0 || kt_commit(NULL, err, errlen) != 0)
        goto unlock;
    rc = KS_STORE_OK;
unlock:
    kt_write_unlock();
    if (head != NULL)
        kt_key_free(head);
    ks_key_put(cur);
    return rc;
}
