/* catalogue = etcd, the key table's side (store/catalogue.h has the records):
 * publishing a key's record before a local change (kt_publish_family),
 * applying the records of other replicas (ks_store_apply_remote), and the
 * applied state, KEY_DIR/.catalogue, vouched for by the manifest; see
 * keytable_int.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "catalogue.h"
#include "certchain.h"
#include "common/log.h"
#include "generation.h"
#include "keytable_int.h"
#include "manifest.h"
#include "sealed_file.h"

/* The hash of KEY_DIR/.catalogue (catalogue = etcd: what this replica has
 * applied) when every manifest lists it: an old copy put back is refused
 * like an old key file.  Set at start-up and by flush_catalogue. */
uint8_t kt_cat_hash[KS_FILE_HASH_LEN];
int kt_cat_listed;

/* ---- the applied catalogue state, vouched for by the manifest ---------- */

/* Write the applied state if it changed, as certificates are written: a
 * manifest accepting the current and the new file, the file, then a
 * manifest with the new one only; kill -9 anywhere leaves a vouched file.
 * kt_write_lock held.  0, or -1 with err. */
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
    if (kt_commit(&extra, err, errlen) != 0)
        goto out;
    if (ks_write_file_atomic_at(kt_dir_fd, KS_CAT_STATE_FILE, KS_CAT_STATE_TMP, file, len, why,
                                sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot write %s/%s: %s", kt_dir_path, KS_CAT_STATE_FILE, why);
        goto out;
    }
    memcpy(kt_cat_hash, hash, sizeof(hash));
    kt_cat_listed = 1;
    ks_catalogue_state_written(tag);
    /* the old file is no longer vouched for; failing here leaves both */
    rc = kt_commit(NULL, err, errlen);
out:
    ks_manifest_free(&extra);
    free(file);
    return rc;
}

/* The end of a mutation: with catalogue = etcd its record moved this
 * replica's applied state, written now that its files are in place (a
 * crash before: the replica applies its own record again, harmlessly). */
void kt_write_unlock(void)
{
    char err[4608];   /* the key directory's path and why */

    if (ks_catalogue_enabled() && flush_catalogue(err, sizeof(err)) != 0)
        ks_log("error: catalogue: %s (the applied state is written with the next change)", err);
    pthread_mutex_unlock(&kt_write_lock);
}

static int mark_one(const struct ks_key *k, void *arg)
{
    size_t *n = arg;

    if (ks_catalogue_mark_joining(k->name) != 0)
        return 1;
    (*n)++;
    return 0;
}

/* The first start with catalogue = etcd on this key directory: its keys
 * are from before, shared once in step with etcd (ks_store_catalogue_upload);
 * the state is written at once (ks_store_open), so that the next start is
 * never a first one. */
static int mark_joining(void)
{
    size_t n = 0;

    if (ks_store_foreach(mark_one, &n) != 0) {
        ks_log("error: out of memory for the catalogue state");
        return -1;
    }
    ks_catalogue_touch();
    if (n > 0)
        ks_log("catalogue: first start with catalogue = etcd on %s: its %zu key%s are shared "
               "once this replica is in step with etcd (a name etcd has for another key stays "
               "this replica's own, not shared)", kt_dir_path, n, n == 1 ? "" : "s");
    return 0;
}

/* Start-up, before the first commit: take KEY_DIR/.catalogue if the
 * manifest mf (NULL on a first start) vouches for it.  With catalogue off
 * the manifest's entry is kept as it is.  0, or -1 (logged): do not start. */
int kt_load_catalogue_state(uint64_t counter, const struct ks_manifest *mf)
{
    uint8_t *file = NULL, hash[KS_FILE_HASH_LEN];
    char why[256], remedy[9000];   /* two paths */
    int vouched, rc = -1;
    size_t len, i, count;
    const char *cp = ks_generation_path();

    for (i = 0; mf != NULL && i < mf->n; i++)
        if (strcmp(mf->e[i].file, KS_CAT_STATE_FILE) == 0 &&
            (mf->e[i].flags & KS_MF_OPTIONAL) == 0) {
            memcpy(kt_cat_hash, mf->e[i].hash, sizeof(kt_cat_hash));
            kt_cat_listed = 1;
        }
    snprintf(remedy, sizeof(remedy), "This replica would apply again records from etcd it has "
             "already refused (an old key put back). Put the current file back; if the key "
             "directory was restored on purpose, restore the key directory and %s together from "
             "one backup; to start with an empty catalogue state, remove %s/%s and %s", cp,
             kt_dir_path, KS_CAT_STATE_FILE, cp);
    if (ks_read_file_at(kt_dir_fd, KS_CAT_STATE_FILE, KS_CAT_STATE_MAX, &file, &len, why,
                        sizeof(why)) != 0) {
        if (errno != ENOENT) {
            ks_log("error: cannot read %s/%s: %s", kt_dir_path, KS_CAT_STATE_FILE, why);
            return -1;
        }
        if (!ks_catalogue_enabled())
            return 0;
        if (!kt_cat_listed)
            return mark_joining();   /* nothing ever written: a first start */
        if (counter > 0) {
            ks_log("error: %s/%s is missing but the manifest (generation %llu) lists it. %s",
                   kt_dir_path, KS_CAT_STATE_FILE, (unsigned long long)mf->gen, remedy);
            return -1;
        }
        ks_log("warning: %s/%s is missing and the rollback counter %s is new: starting with an "
               "empty catalogue state (an old record replayed into etcd is accepted once more, "
               "until newer ones arrive)", kt_dir_path, KS_CAT_STATE_FILE, cp);
        kt_cat_listed = 0;
        return 0;
    }
    ks_file_hash(file, len, hash);
    vouched = mf != NULL && ks_manifest_vouches(mf, KS_CAT_STATE_FILE, hash, NULL, NULL);
    if (!ks_catalogue_enabled()) {
        if (vouched) {
            memcpy(kt_cat_hash, hash, sizeof(hash));
            kt_cat_listed = 1;
        }
        free(file);
        return 0;   /* kept as the manifest has it, for when catalogue = etcd is back */
    }
    /* only a listed (required) entry refuses: an optional one alone is a
     * first write in progress over a file an older keystored left */
    if (!vouched && kt_cat_listed && counter > 0) {
        ks_log("error: refusing %s/%s: the manifest (generation %llu) does not vouch for it (an "
               "old copy put back?). %s", kt_dir_path, KS_CAT_STATE_FILE,
               (unsigned long long)mf->gen, remedy);
        goto out;
    }
    if (!vouched)
        ks_log("catalogue: taking %s/%s, which the manifest did not list (%s): from now on "
               "only the file it vouches for is loaded", kt_dir_path, KS_CAT_STATE_FILE,
               kt_cat_listed ? "the rollback counter is new" : "written by an older keystored");
    if (ks_catalogue_state_parse(file, len, &count, why, sizeof(why)) != 0) {
        if (vouched) {
            ks_log("error: cannot use %s/%s, which the manifest vouches for: %s. Check "
                   "master_key in the config; %s", kt_dir_path, KS_CAT_STATE_FILE, why, remedy);
            goto out;
        }
        ks_log("warning: %s/%s: %s: starting with an empty catalogue state (an old record "
               "replayed into etcd is accepted once more, until newer ones arrive)", kt_dir_path,
               KS_CAT_STATE_FILE, why);
        kt_cat_listed = 0;
        rc = 0;
        goto out;
    }
    memcpy(kt_cat_hash, hash, sizeof(hash));
    kt_cat_listed = 1;
    ks_log("catalogue: applied state of %zu keys loaded from %s/%s", count, kt_dir_path,
           KS_CAT_STATE_FILE);
    rc = 0;
out:
    free(file);
    return rc;
}

void ks_store_catalogue_flush(void)
{
    char err[4608];

    pthread_mutex_lock(&kt_write_lock);
    if (flush_catalogue(err, sizeof(err)) != 0)
        ks_log("error: catalogue: %s", err);
    pthread_mutex_unlock(&kt_write_lock);
}

/* ---- the catalogue record of a key (catalogue = etcd) ------------------ */

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
                                        int present, const struct kt_cat_change *ch, size_t nch,
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
    if (ks_read_file_at(kt_dir_fd, fname, max, &ff->bufs[ff->n], &f->len, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot read %s/%s for the catalogue: %s", kt_dir_path, fname, why);
        return KS_STORE_INTERNAL;
    }
    f->data = ff->bufs[ff->n++];
    ks_file_hash(f->data, f->len, h);
    if (memcmp(h, hash, KS_FILE_HASH_LEN) != 0) {
        snprintf(err, errlen, "%s/%s is not the file key %s version %u was loaded from (changed "
                 "behind keystored's back): it is not published to the catalogue; restart "
                 "keystored (the manifest then refuses it) or put the right file back",
                 kt_dir_path, fname, v->name, (unsigned)v->version);
        return KS_STORE_INTERNAL;
    }
    return KS_STORE_OK;
}

struct gather {
    struct family_files *ff;
    const struct kt_cat_change *ch;
    size_t nch;
    char *err;
    size_t errlen;
    enum ks_store_status st;
};

static int gather_one(const struct ks_key *v, const char *fname, int is_key,
                      const uint8_t *hash, int present, void *arg)
{
    struct gather *g = arg;

    g->st = gather_file(g->ff, v, fname, is_key ? KS_KEYFILE_MAX : KS_CERTFILE_MAX, hash,
                        present, g->ch, g->nch, g->err, g->errlen);
    return g->st != KS_STORE_OK;
}

/* Publish the record of key `name` as it will be once the caller's change
 * is made: every version of head's family (head NULL: the tombstone) with
 * its key file and chain, as on disk unless ch has the file.  The one place
 * records are made, so that every write sends the whole family.  `what`
 * ends the message of a conflict ("nothing was retired").  kt_write_lock held;
 * KS_STORE_OK or the status for the caller to return (err set). */
enum ks_store_status kt_publish_family(const char *name, int created,
                                       const struct ks_key *head,
                                       const struct kt_cat_change *ch, size_t nch,
                                       const char *what, char *err, size_t errlen)
{
    struct family_files *ff = calloc(1, sizeof(*ff));
    struct gather g = { ff, ch, nch, err, errlen, KS_STORE_OK };
    enum ks_store_status st;
    size_t i;
    int pr;

    if (ff == NULL) {
        snprintf(err, errlen, "out of memory");
        return KS_STORE_INTERNAL;
    }
    if (head != NULL)
        kt_foreach_family_file(head, gather_one, &g);
    st = g.st;
    if (st == KS_STORE_OK) {
        pr = ks_catalogue_publish(name, created, ff->f, ff->n, err, errlen);
        if (pr == 0 && ks_catalogue_is_joining(name))
            snprintf(err, errlen, "key '%s' is from before catalogue = etcd and not shared: etcd "
                     "has another key, or a deletion, of that name; %s (it can be used and "
                     "deleted on this replica only)", name, what);
        else if (pr == 0)
            snprintf(err, errlen, "key '%s' was changed on another replica meanwhile; %s: try "
                     "again", name, what);
        st = pr == 1 ? KS_STORE_OK : pr == 0 ? KS_STORE_CONFLICT : KS_STORE_UNAVAILABLE;
    }
    for (i = 0; i < ff->n; i++)
        free(ff->bufs[i]);
    free(ff);
    return st;
}

/* ---- the catalogue (catalogue = etcd) ---------------------------------- */

/* Drop key `name` (every version) here after its tombstone, in delete's
 * order: older versions first, then the current one.  kt_write_lock held. */
static int apply_tombstone(const char *name, char *err, size_t errlen)
{
    struct ks_key *k = ks_store_get(name);
    int rc;

    if (k == NULL)
        return 0;
    rc = kt_unlink_versions(k, err, errlen) == 0 && kt_unlink_version(k, err, errlen) == 0 ? 0 : -1;
    ks_key_put(k);
    if (rc != 0)
        return -1;
    ks_key_put(kt_table_remove(name));
    kt_uncarry(name);
    if (kt_fsync_dir(err, errlen) != 0 || kt_commit(NULL, err, errlen) != 0)
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
        v = kt_stem_version(stem, base);
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

    kt_version_stem(name, v, stem);
    kt_file_names(stem, keyf, keytmp, crtf, crttmp);
    for (i = 0; i < kt_carried.n; i++)
        if (strcmp(kt_carried.e[i].file, keyf) == 0)
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
        rv->k = kt_key_copy(old, old->certs, old->ncerts);
        if (rv->k == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    rv->fresh = 1;
    kt_version_stem(name, rv->version, stem);
    copy = malloc(rv->key->len > 0 ? rv->key->len : 1);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(copy, rv->key->data, rv->key->len);
    k = kt_load_key_image(stem, rv->key->name, copy, rv->key->len, &auth_failed, &authentic);
    if (k == NULL) {
        snprintf(err, errlen, "its %s does not unseal or parse (see above)", rv->key->name);
        return -1;
    }
    rv->k = k;
    kt_key_take_stem(k);
    memcpy(k->key_hash, kh, sizeof(kh));
    if (rv->crt == NULL)
        return 0;
    if (ks_cert_split(rv->crt->data, rv->crt->len, &certs, &n) != 0 ||
        ks_cert_chain_check(k->pkey, k->name, certs, n, 0, &bad, why, sizeof(why)) != 0 ||
        kt_copy_certs(k, certs, n) != 0) {
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
        kt_version_file_names(rv[i].k, keyf, keytmp, crtf, crttmp);
        if (ks_manifest_add(&extra, keyf, rv[i].k->key_hash, KS_MF_OPTIONAL) != 0 ||
            (rv[i].crt != NULL &&
             ks_manifest_add(&extra, crtf, rv[i].k->crt_hash, KS_MF_OPTIONAL) != 0)) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    if (kt_commit(&extra, err, errlen) != 0)
        goto out;
    for (i = 0; i < n; i++) {
        if (!rv[i].fresh)
            continue;
        kt_version_file_names(rv[i].k, keyf, keytmp, crtf, crttmp);
        if (ks_write_file_atomic_at(kt_dir_fd, keyf, keytmp, rv[i].key->data, rv[i].key->len, why,
                                    sizeof(why)) != 0 ||
            (rv[i].crt != NULL &&
             ks_write_file_atomic_at(kt_dir_fd, crtf, crttmp, rv[i].crt->data, rv[i].crt->len, why,
                                     sizeof(why)) != 0)) {
            snprintf(err, errlen, "cannot write it to %s: %s", kt_dir_path, why);
            goto out;
        }
        if (rv[i].crt == NULL && ks_unlink_at(kt_dir_fd, crtf) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "cannot remove %s/%s: %s", kt_dir_path, crtf, strerror(errno));
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
 * is kept or compared (its versions are gone, not retired).  kt_write_lock
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
    kt_uncarry(name);
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
        if (kt_unlink_version(v, err, errlen) != 0)
            goto out;
        if (!renew) {
            ret[nret].version = v->version;
            ret[nret++].when = (uint64_t)time(NULL);
        }
        removed = 1;
    }
    if (removed && kt_fsync_dir(err, errlen) != 0)
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
    kt_table_put(top);
    {
        char why[512];

        if (kt_commit(NULL, why, sizeof(why)) != 0)
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

struct match {
    const struct ks_cat_record *r;
    size_t nfiles;
};

/* 0 if fname is in the record with this hash (or absent from both) */
static int match_one(const struct ks_key *v, const char *fname, int is_key, const uint8_t *hash,
                     int present, void *arg)
{
    struct match *mt = arg;
    uint8_t h[KS_FILE_HASH_LEN];
    size_t m;

    (void)v;
    (void)is_key;
    if (!present)
        return 0;
    mt->nfiles++;
    for (m = 0; m < mt->r->n && strcmp(mt->r->f[m].name, fname) != 0; m++)
        ;
    if (m == mt->r->n)
        return 1;
    ks_file_hash(mt->r->f[m].data, mt->r->f[m].len, h);
    return memcmp(h, hash, sizeof(h)) != 0;
}

/* 1 if record r holds exactly the files of head's family. */
static int family_matches(const struct ks_key *head, const struct ks_cat_record *r)
{
    struct match mt = { r, 0 };

    return kt_foreach_family_file(head, match_one, &mt) == 0 && mt.nfiles == r->n;
}

static void log_not_shared(const char *name, const char *why)
{
    ks_log("error: catalogue: key %s here is from before catalogue = etcd, and %s: this "
           "replica keeps its own key %s, not shared (the other replicas use etcd's). To use "
           "etcd's here instead: keystorectl delete %s on this replica (a key not shared is "
           "deleted here only), then restart keystored", name, why, name, name);
}

/* A record of a name whose key here is from before catalogue = etcd
 * (kt_write_lock held): the same key is adopted; another key of the name,
 * or its deletion (a tombstone says nothing of the key it deleted: this one
 * may be it, a compromised key put back into the fleet), is refused, and
 * the key stays this replica's own.  1: not a key here any more (forgotten:
 * apply as usual), 0 adopted, -1 refused. */
static int apply_to_joining(const char *name, uint64_t mod_rev, const struct ks_cat_record *r)
{
    struct ks_key *head = ks_store_get(name);
    char why[200];
    int same;

    if (head == NULL) {
        ks_catalogue_forget(name);
        return 1;
    }
    same = r->n > 0 && family_matches(head, r);
    ks_key_put(head);
    if (same) {
        ks_catalogue_applied(name, r->seq, mod_rev, r->inc);
        ks_log("catalogue: key %s (from before catalogue = etcd) is the key etcd has: shared "
               "(etcd revision %llu)", name, (unsigned long long)mod_rev);
        return 0;
    }
    snprintf(why, sizeof(why), r->n == 0 ? "etcd deleted a key of that name (revision %llu), "
             "which may have been this one" : "etcd has another key of that name (or other versions "
             "or certificates of it; revision %llu)",
             (unsigned long long)mod_rev);
    log_not_shared(name, why);
    ks_catalogue_joining_refused(name, 1);
    return -1;
}

void ks_store_catalogue_upload(void)
{
    struct ks_cat_name *names;
    char err[4700];
    size_t n, i;

    pthread_mutex_lock(&kt_write_lock);
    names = ks_catalogue_joining(&n);
    pthread_mutex_unlock(&kt_write_lock);
    for (i = 0; i < n; i++) {
        const char *name = names[i].s;
        enum ks_store_status st;
        struct ks_key *head;
        int noted;

        pthread_mutex_lock(&kt_write_lock);
        if (!ks_catalogue_is_joining(name)) {   /* adopted, or deleted, meanwhile */
            pthread_mutex_unlock(&kt_write_lock);
            continue;
        }
        head = ks_store_get(name);
        if (head == NULL) {
            ks_catalogue_forget(name);
            pthread_mutex_unlock(&kt_write_lock);
            continue;
        }
        st = kt_publish_family(name, 1, head, NULL, 0, "it is not shared yet", err, sizeof(err));
        ks_key_put(head);
        noted = ks_catalogue_joining_refused(name, 0);   /* logged when etcd's record came */
        /* the state is written once, after the loop (two manifests per key
         * would make a directory of many keys take hours); a crash before
         * that: the next start's sync finds these records, the same keys,
         * and adopts them */
        pthread_mutex_unlock(&kt_write_lock);
        if (st == KS_STORE_OK)
            ks_log("catalogue: key %s (from before catalogue = etcd) uploaded to etcd: the other "
                   "replicas use it from now on", name);
        else if (st == KS_STORE_CONFLICT && !noted)
            log_not_shared(name, "etcd has another key, or a deletion, of that name");
        else if (st != KS_STORE_CONFLICT)
            ks_log("error: catalogue: key %s (from before catalogue = etcd) is not shared yet: "
                   "%s; it is tried again when this replica is next in step with etcd", name,
                   err);
    }
    if (n > 0)
        ks_store_catalogue_flush();
    free(names);
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
    pthread_mutex_lock(&kt_write_lock);
    ks_catalogue_saw_revision(mod_rev);
    if (ks_catalogue_is_joining(name) && (rc = apply_to_joining(name, mod_rev, &r)) <= 0) {
        pthread_mutex_unlock(&kt_write_lock);
        ks_catalogue_record_free(&r);
        return rc;
    }
    chk = ks_catalogue_check(name, r.seq, &applied);
    if (chk < 0) {
        pthread_mutex_unlock(&kt_write_lock);
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
        pthread_mutex_unlock(&kt_write_lock);
        ks_catalogue_record_free(&r);
        return 0;
    }
    /* a newer sequence of an older incarnation: a record of a key deleted
     * since (its records carry their own sequences, all below the new key's) */
    renew = ks_catalogue_check_incarnation(name, r.inc, &local_inc);
    if (renew < 0) {
        pthread_mutex_unlock(&kt_write_lock);
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
    pthread_mutex_unlock(&kt_write_lock);
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
