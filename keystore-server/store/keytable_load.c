/* Loading the key directory at start-up (ks_store_open): every key file and
 * chain the manifest vouches for, into the table; see keytable_int.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <sodium.h>

#include "catalogue.h"
#include "certchain.h"
#include "common/log.h"
#include "generation.h"
#include "keyload.h"
#include "keytable_int.h"
#include "manifest.h"
#include "masterkey.h"
#include "sealed_file.h"
#include "secure_heap.h"

/* While kt_load_all runs, in its thread only: the decoders, and one locked
 * buffer every key is unsealed into (keyload.h, ks_unseal_key_into). */
static __thread struct ks_loader *loader;
static __thread uint8_t *unseal_buf;

/* Carry a vouched file that did not load (its hash stays in the manifest). */
static void carry(const char *fname, const uint8_t hash[KS_FILE_HASH_LEN])
{
    if (ks_manifest_add(&kt_carried, fname, hash, 0) != 0)
        ks_log("warning: out of memory: %s/%s will not be in the manifest", kt_dir_path, fname);
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

    if (ks_read_file_at(kt_dir_fd, crtf, KS_CERTFILE_MAX, &buf, &len, err, sizeof(err)) != 0) {
        if (errno != ENOENT)
            ks_log("warning: %s/%s: %s; key %s is loaded without its certificates",
                   kt_dir_path, crtf, err, k->name);
        return 0;
    }
    ks_file_hash(buf, len, hash);
    if (mf != NULL && !ks_manifest_vouches(mf, crtf, hash, NULL, NULL)) {
        ks_log("error: refusing %s/%s: the manifest does not vouch for it (an old or foreign "
               "certificate chain); key %s is loaded without certificates. Attach the right "
               "chain with 'keystorectl attach-cert %s CERT.pem' (which replaces the file)",
               kt_dir_path, crtf, k->name, k->name);
        carry_named(mf, crtf);
        free(buf);
        return 0;
    }
    if (ks_cert_split(buf, len, &certs, &n) != 0) {
        ks_log("warning: %s/%s is not a list of DER certificates; key %s is loaded "
               "without its certificates", kt_dir_path, crtf, k->name);
        free(buf);
        return 1;
    }
    if (ks_cert_chain_check(k->pkey, k->name, certs, n, 0, &bad, why, sizeof(why)) != 0) {
        ks_log("warning: %s/%s: %s; key %s is loaded without its certificates",
               kt_dir_path, crtf, why, k->name);
        ERR_clear_error();
    } else if (kt_copy_certs(k, certs, n) != 0) {
        ks_log("warning: out of memory loading %s/%s", kt_dir_path, crtf);
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
struct ks_key *kt_load_key_image(const char *name, const char *fname, uint8_t *file,
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
        ks_log("error: skipping key %s: %s/%s %s", name, kt_dir_path, fname, why);
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
               "parse (%s)%s", name, kt_dir_path, fname, ks_ossl_reason(why, sizeof(why)),
               ks_secure_heap_size() > 0 && CRYPTO_secure_used() + 65536 >
               ks_secure_heap_size() ? "; the secure heap looks full: raise "
               "secure_heap_mb" : "");
        return NULL;
    }
    k = kt_key_new(name, pkey, meta.created, meta.usage, why, sizeof(why));
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
        kt_table_put(k);
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
        kt_table_put(k);
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
        ks_log("warning: skipping %s/%s: name too long for a key", kt_dir_path, fname);
        return 0;
    }
    memcpy(name, fname, flen - 4);
    name[flen - 4] = '\0';
    if (!ks_valid_key_name(name)) {
        ks_log("warning: skipping %s/%s: '%s' is not a valid key name", kt_dir_path, fname, name);
        return 0;
    }
    if (ks_read_file_at(kt_dir_fd, fname, KS_KEYFILE_MAX, &file, &filelen, err, sizeof(err)) != 0) {
        ks_log("error: skipping key %s: %s/%s: %s", name, kt_dir_path, fname, err);
        return 0;
    }
    ks_file_hash(file, filelen, hash);
    kt_file_names(name, keyf, keytmp, crtf, crttmp);
    if (mf != NULL && !ks_manifest_vouches(mf, fname, hash, NULL, NULL)) {
        int named;

        ks_manifest_vouches(mf, fname, NULL, &named, NULL);
        ks_log("error: refusing %s/%s: the manifest (generation %llu) does not vouch for it: "
               "%s. Key %s is %s. If this file is the one you want, restore the key directory "
               "and %s together from one backup; otherwise move the file out of the key "
               "directory", kt_dir_path, fname, (unsigned long long)mf->gen,
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
    k = kt_load_key_image(name, fname, file, filelen, &auth_failed, &authentic);
    if (k == NULL) {
        /* authentic but unusable now (a full secure heap?): stays vouched for */
        if (authentic) {
            uint8_t *c;
            size_t clen;

            carry(fname, hash);
            if (ks_read_file_at(kt_dir_fd, crtf, KS_CERTFILE_MAX, &c, &clen, err,
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
    kt_key_take_stem(k);
    family_insert(k);
    return 1;
}

/* Leftovers of interrupted writes are never valid data. */
static void remove_temp_file(const char *fname)
{
    size_t n = strlen(fname);

    if (fname[0] == '.' && n > 4 && strcmp(fname + n - 4, ".tmp") == 0) {
        if (unlinkat(kt_dir_fd, fname, 0) == 0)
            ks_log("removed stale temporary file %s/%s", kt_dir_path, fname);
        else
            ks_log("warning: cannot remove stale temporary file %s/%s: %s",
                   kt_dir_path, fname, strerror(errno));
    }
}

/* A NAME.crt whose key file is absent: refused loudly unless vouched for,
 * removed if it is. */
static void check_orphan_cert(const char *fname, const struct ks_manifest *mf)
{
    char key[KS_MF_NAME_MAX], err[256];
    uint8_t *buf, hash[KS_FILE_HASH_LEN];
    size_t len, n = strlen(fname);
    struct stat st;

    snprintf(key, sizeof(key), "%.*s.key", (int)(n - 4), fname);
    if (fstatat(kt_dir_fd, key, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return;   /* looked at with its key */
    if (mf == NULL || ks_read_file_at(kt_dir_fd, fname, KS_CERTFILE_MAX, &buf, &len, err,
                                      sizeof(err)) != 0)
        return;
    ks_file_hash(buf, len, hash);
    free(buf);
    if (!ks_manifest_vouches(mf, fname, hash, NULL, NULL)) {
        ks_log("error: refusing %s/%s: the manifest does not vouch for it and no key file "
               "goes with it (left from a deleted key, or copied in); move it out of the key "
               "directory", kt_dir_path, fname);
        return;
    }
    /* Vouched, its key gone: a delete stopped between the two unlinks.  The
     * next manifest forgets it, so finish the delete now (left in place it
     * would be refused as a stray file at every later start). */
    if (unlinkat(kt_dir_fd, fname, 0) == 0)
        ks_log("removed %s/%s: its key file is gone (a delete interrupted by a crash)",
               kt_dir_path, fname);
    else
        ks_log("warning: cannot remove %s/%s, whose key file is gone (a delete interrupted "
               "by a crash): %s; remove it by hand", kt_dir_path, fname, strerror(errno));
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
            fstatat(kt_dir_fd, mf->e[i].file, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
            ks_log("warning: %s/%s is in the manifest but missing (removed by hand, or a "
                   "delete interrupted by a crash): it is forgotten", kt_dir_path, mf->e[i].file);
    }
}

/* Read the manifest and check it against the counter.  *mf is NULL-able:
 * returns 0 with *have = 0 on a first start, 1 with the manifest, -1 after
 * logging why the store must not open. */
static int open_manifest(uint64_t counter, struct ks_manifest *mf, int *have)
{
    char why[256];
    enum ks_mf_status st = ks_manifest_read(kt_dir_fd, mf, why, sizeof(why));

    *have = 0;
    if (st == KS_MF_MISSING) {
        if (counter > 0) {
            ks_log("error: %s/%s is missing but the rollback counter %s says generation %llu: "
                   "the key directory was replaced or its manifest deleted. Restore the key "
                   "directory from the backup that goes with the counter; only if you are sure "
                   "every file in it is the one you want, remove %s to accept it as it is",
                   kt_dir_path, KS_MANIFEST_FILE, ks_generation_path(),
                   (unsigned long long)counter, ks_generation_path());
            return -1;
        }
        return 0;
    }
    if (st != KS_MF_OK) {
        ks_log("error: cannot use the manifest %s/%s: %s%s", kt_dir_path, KS_MANIFEST_FILE, why,
               st == KS_MF_AUTH ? ": wrong master key? Check master_key in the config" : "");
        return -1;
    }
    if (mf->gen < counter) {
        ks_log("error: the manifest %s/%s is generation %llu but the rollback counter %s says "
               "%llu: the key directory was rolled back (an old backup or copy put in place). "
               "Restore the current key directory; to go back to an old backup on purpose, "
               "restore %s from the same backup", kt_dir_path, KS_MANIFEST_FILE,
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

int kt_load_all(uint64_t counter)
{
    struct dirent *de;
    unsigned loaded = 0, auth_failed = 0, skipped = 0;
    struct ks_manifest mf = { 0 };
    char err[512];
    int fd, have, held, rc = -1;
    DIR *d;

    if (open_manifest(counter, &mf, &have) != 0)
        return -1;
    kt_generation = have ? mf.gen : counter;
    /* Without them (out of memory) every key takes the general, slower path. */
    loader = ks_loader_new();
    unseal_buf = sodium_malloc(KS_KEYFILE_MAX);
    held = ks_master_hold() == 0;
    fd = dup(kt_dir_fd);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        ks_log("error: cannot list key directory %s: %s", kt_dir_path, strerror(errno));
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
        ks_log("error: reading key directory %s: %s", kt_dir_path, strerror(errno));
        closedir(d);
        goto out;
    }
    closedir(d);
    if (loaded == 0 && auth_failed > 0) {
        ks_log("error: cannot unseal any key: wrong master key? (%u key file%s in %s failed "
               "authentication). Check master_key in the config; if the key files really are "
               "damaged, move them out of the key directory", auth_failed,
               auth_failed == 1 ? "" : "s", kt_dir_path);
        goto out;
    }
    if (have)
        report_missing(&mf);
    if (kt_load_catalogue_state(counter, have ? &mf : NULL) != 0)
        goto out;
    /* A clean manifest of what is here now: collapses writes in progress. */
    if (kt_commit(NULL, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        goto out;
    }
    if (!have)
        ks_log("created the manifest %s/%s (generation %llu) for the %u key%s found: from now "
               "on only files it vouches for are loaded (rollback counter %s)", kt_dir_path,
               KS_MANIFEST_FILE, (unsigned long long)kt_generation, loaded, loaded == 1 ? "" : "s",
               ks_generation_path());
    ks_log("loaded %u key%s from %s%s (manifest generation %llu)", loaded, loaded == 1 ? "" : "s",
           kt_dir_path, auth_failed + skipped > 0 ? " (some files were skipped, see above)" : "",
           (unsigned long long)kt_generation);
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
