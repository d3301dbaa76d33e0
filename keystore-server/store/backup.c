/* Backup archives of the key directory; see backup.h. */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "generation.h"
#include "keydir.h"
#include "manifest.h"
#include "masterkey.h"
#include "sealed_file.h"
#include "wire.h"

#define MAGIC "KSBACKUP"
#define HEADER 56
#define VERSION 1
#define ATTEMPTS 100
#define MANIFEST_MAX ((size_t)64 * 1024 * 1024)

struct buf {
    uint8_t *p;
    size_t len, cap;
    uint32_t count;
};

struct entry {
    char name[KS_MF_NAME_MAX];
    const uint8_t *data;
    size_t len;
};

static void put_be64(uint8_t *p, uint64_t v)
{
    ks_put_be32(p, (uint32_t)(v >> 32));
    ks_put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p)
{
    return ((uint64_t)ks_get_be32(p) << 32) | ks_get_be32(p + 4);
}

static int put(struct buf *b, const void *data, size_t len)
{
    if (len > KS_BACKUP_MAX - b->len)
        return -1;
    if (b->len + len > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 65536;
        uint8_t *p;

        while (cap < b->len + len)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

static int add_file(struct buf *b, const char *name, const uint8_t *data, size_t len)
{
    uint8_t nl = (uint8_t)strlen(name), l4[4];

    ks_put_be32(l4, (uint32_t)len);
    if (put(b, &nl, 1) != 0 || put(b, name, nl) != 0 || put(b, l4, 4) != 0 ||
        put(b, data, len) != 0)
        return -1;
    b->count++;
    return 0;
}

static size_t max_len(const char *f)
{
    size_t n = strlen(f);

    return n > 4 && strcmp(f + n - 4, ".key") == 0 ? KS_KEYFILE_MAX : KS_CERTFILE_MAX;
}

/* One attempt: 1 with a consistent set in b, 0 to try again, -1 error. */
static int snapshot(int kfd, const char *key_dir, struct buf *b, uint64_t *gen, char *why,
                    size_t whylen)
{
    uint8_t *mfile = NULL, *again = NULL, *data, hash[KS_FILE_HASH_LEN];
    size_t mlen, alen, len, i;
    struct ks_manifest mf = { 0 };
    char err[512];
    int rc = -1;

    b->len = 0;
    b->count = 0;
    if (ks_read_file_at(kfd, KS_MANIFEST_FILE, MANIFEST_MAX, &mfile, &mlen, err,
                        sizeof(err)) != 0) {
        snprintf(why, whylen, "cannot read %s/%s: %s%s", key_dir, KS_MANIFEST_FILE, err,
                 errno == ENOENT ? " (start keystored once: it writes the manifest)" : "");
        return -1;
    }
    if (ks_manifest_parse(mfile, mlen, &mf, err, sizeof(err)) != KS_MF_OK) {
        snprintf(why, whylen, "%s/%s: %s", key_dir, KS_MANIFEST_FILE, err);
        goto out;
    }
    if (add_file(b, KS_MANIFEST_FILE, mfile, mlen) != 0)
        goto nomem;
    for (i = 0; i < mf.n; i++) {
        const char *f = mf.e[i].file;
        int optional, r;

        if (i > 0 && strcmp(f, mf.e[i - 1].file) == 0)
            continue;
        if (ks_read_file_at(kfd, f, max_len(f), &data, &len, err, sizeof(err)) != 0) {
            ks_manifest_vouches(&mf, f, NULL, NULL, &optional);
            if (errno == ENOENT && optional)
                continue;   /* a write the manifest allows to be absent */
            if (errno == ENOENT) {
                rc = 0;   /* a delete in progress: its manifest follows */
                goto out;
            }
            snprintf(why, whylen, "%s/%s: %s", key_dir, f, err);
            goto out;
        }
        ks_file_hash(data, len, hash);
        if (!ks_manifest_vouches(&mf, f, hash, NULL, NULL)) {
            free(data);
            rc = 0;   /* replaced since the manifest was read */
            goto out;
        }
        r = add_file(b, f, data, len);
        free(data);
        if (r != 0)
            goto nomem;
    }
    /* the same manifest after reading every file: nothing was committed meanwhile */
    if (ks_read_file_at(kfd, KS_MANIFEST_FILE, MANIFEST_MAX, &again, &alen, err,
                        sizeof(err)) != 0 || alen != mlen || memcmp(again, mfile, mlen) != 0) {
        rc = 0;
        goto out;
    }
    *gen = mf.gen;
    rc = 1;
    goto out;
nomem:
    snprintf(why, whylen, "the archive would exceed %zu MiB or memory ran out",
             KS_BACKUP_MAX >> 20);
out:
    free(mfile);
    free(again);
    ks_manifest_free(&mf);
    return rc;
}

static int write_archive(const char *path, const struct buf *b, uint64_t gen)
{
    size_t len = HEADER + b->len + KS_SEAL_TAG_LEN, off = 0;
    uint8_t *file = malloc(len);
    int fd = -1;

    if (file == NULL) {
        ks_log("error: out of memory for the archive");
        return -1;
    }
    memcpy(file, MAGIC, 8);
    ks_put_be32(file + 8, VERSION);
    ks_put_be32(file + 12, b->count);
    put_be64(file + 16, gen);
    put_be64(file + 24, (uint64_t)time(NULL));
    randombytes_buf(file + 32, KS_SEAL_NONCE_LEN);
    if (ks_master_seal(b->p, b->len, file, HEADER, file + 32, file + HEADER) != 0) {
        ks_log("error: cannot seal the archive with the master key");
        goto fail;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        ks_log("error: cannot create %s: %s%s", path, strerror(errno),
               errno == EEXIST ? " (a backup never overwrites a file)" : "");
        goto fail;
    }
    while (off < len) {
        ssize_t w = write(fd, file + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            ks_log("error: writing %s: %s", path, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        ks_log("error: cannot sync %s: %s", path, strerror(errno));
        goto fail;
    }
    free(file);
    return 0;
fail:
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    free(file);
    return -1;
}

int ks_backup_write(const char *key_dir, const char *out_path)
{
    struct buf b = { 0 };
    char why[1024] = "";
    uint64_t gen = 0;
    int kfd, i, r = 0, rc = -1;

    kfd = open(key_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (kfd < 0) {
        ks_log("error: cannot open key directory %s: %s", key_dir, strerror(errno));
        return -1;
    }
    for (i = 0; i < ATTEMPTS && (r = snapshot(kfd, key_dir, &b, &gen, why, sizeof(why))) == 0;
         i++) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };

        nanosleep(&ts, NULL);   /* the server is writing: let it finish */
    }
    close(kfd);
    if (r == 0)
        ks_log("error: the key directory %s kept changing during %d attempts to copy it; "
               "try again when fewer keys are being created or deleted", key_dir, ATTEMPTS);
    else if (r < 0)
        ks_log("error: %s", why);
    else if (write_archive(out_path, &b, gen) == 0) {
        ks_log("wrote backup %s: %u file%s (manifest included), manifest generation %llu, "
               "sealed under the master key", out_path, b.count, b.count == 1 ? "" : "s",
               (unsigned long long)gen);
        rc = 0;
    }
    free(b.p);
    return rc;
}

/* ---- restore ------------------------------------------------------------ */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static const struct entry *find(const struct entry *e, size_t n, const char *name)
{
    struct entry key = { 0 };

    snprintf(key.name, sizeof(key.name), "%s", name);
    return bsearch(&key, e, n, sizeof(*e), by_name);
}

/* Read and authenticate the archive; *body and *e point into it. */
static int read_archive(const char *path, uint8_t **body, struct entry **ents, size_t *nents,
                        uint64_t *gen)
{
    uint8_t *file = NULL, *pt = NULL;
    struct entry *e = NULL;
    size_t got = 0, len, off = 0, i, count;
    struct stat st;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ks_log("error: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (size_t)st.st_size < HEADER + KS_SEAL_TAG_LEN ||
        (uint64_t)st.st_size > HEADER + KS_BACKUP_MAX + KS_SEAL_TAG_LEN) {
        ks_log("error: %s is not a keystore backup (not a regular file, or of impossible size)",
               path);
        close(fd);
        return -1;
    }
    len = (size_t)st.st_size;
    if ((file = malloc(len)) == NULL || (pt = malloc(len - HEADER - KS_SEAL_TAG_LEN + 1)) == NULL) {
        ks_log("error: out of memory for %s", path);
        goto fail;
    }
    while (got < len) {
        ssize_t r = read(fd, file + got, len - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ks_log("error: reading %s: %s", path, r < 0 ? strerror(errno) : "file shrank");
            goto fail;
        }
        got += (size_t)r;
    }
    if (memcmp(file, MAGIC, 8) != 0 || ks_get_be32(file + 8) != VERSION) {
        ks_log("error: %s is not a version %d keystore backup", path, VERSION);
        goto fail;
    }
    if (ks_master_unseal(file + HEADER, len - HEADER, file, HEADER, file + 32, pt) != 0) {
        ks_log("error: %s does not authenticate under the master key (damaged, tampered "
               "with, or made with another master key): nothing was restored", path);
        goto fail;
    }
    count = ks_get_be32(file + 12);
    *gen = get_be64(file + 16);
    len -= HEADER + KS_SEAL_TAG_LEN;   /* now the body's length */
    if (count == 0 || count > len / 6 || (e = calloc(count, sizeof(*e))) == NULL) {
        ks_log("error: %s: bad file count %zu", path, count);
        goto fail;
    }
    for (i = 0; i < count; i++) {
        size_t nl, fl;

        if (len - off < 1 || (nl = pt[off]) == 0 || nl >= KS_MF_NAME_MAX ||
            len - off - 1 < nl + 4) {
            ks_log("error: %s: file %zu is truncated", path, i);
            goto fail;
        }
        memcpy(e[i].name, pt + off + 1, nl);
        e[i].name[nl] = '\0';
        fl = ks_get_be32(pt + off + 1 + nl);
        if (len - off - 1 - nl - 4 < fl || memchr(e[i].name, '\0', nl) != NULL ||
            ks_keydir_name_class(e[i].name) != KS_NAME_FINAL || fl > max_len(e[i].name)) {
            ks_log("error: %s: file %zu ('%s') is truncated or not a key directory file", path,
                   i, e[i].name);
            goto fail;
        }
        e[i].data = pt + off + 1 + nl + 4;
        e[i].len = fl;
        off += 1 + nl + 4 + fl;
    }
    if (off != len) {
        ks_log("error: %s: %zu bytes after the last file", path, len - off);
        goto fail;
    }
    qsort(e, count, sizeof(*e), by_name);
    for (i = 1; i < count; i++)
        if (strcmp(e[i].name, e[i - 1].name) == 0) {
            ks_log("error: %s holds %s twice", path, e[i].name);
            goto fail;
        }
    close(fd);
    free(file);
    *body = pt;
    *ents = e;
    *nents = count;
    return 0;
fail:
    close(fd);
    free(file);
    free(pt);
    free(e);
    return -1;
}

/* The archive's manifest vouches for every file in it, every file it
 * requires is there, and every key unseals. */
static int check_archive(const char *path, const struct entry *e, size_t n,
                         struct ks_manifest *mf, uint64_t hdr_gen)
{
    const struct entry *me = find(e, n, KS_MANIFEST_FILE);
    char why[256];
    size_t i;

    if (me == NULL) {
        ks_log("error: %s holds no manifest", path);
        return -1;
    }
    if (ks_manifest_parse(me->data, me->len, mf, why, sizeof(why)) != KS_MF_OK ||
        mf->gen != hdr_gen) {
        ks_log("error: the manifest in %s: %s", path,
               mf->gen != hdr_gen ? "generation differs from the archive's" : why);
        return -1;
    }
    for (i = 0; i < n; i++) {
        uint8_t hash[KS_FILE_HASH_LEN], *der;
        size_t fl = strlen(e[i].name), derlen;
        struct ks_keyfile_meta meta;

        if (strcmp(e[i].name, KS_MANIFEST_FILE) == 0)
            continue;
        ks_file_hash(e[i].data, e[i].len, hash);
        if (!ks_manifest_vouches(mf, e[i].name, hash, NULL, NULL)) {
            ks_log("error: %s: its manifest does not vouch for %s", path, e[i].name);
            return -1;
        }
        if (fl > 4 && strcmp(e[i].name + fl - 4, ".key") == 0) {
            char stem[KS_MF_NAME_MAX];

            snprintf(stem, sizeof(stem), "%.*s", (int)(fl - 4), e[i].name);
            if (ks_unseal_key(stem, e[i].data, e[i].len, &meta, &der, &derlen, why,
                              sizeof(why)) != KS_UNSEAL_OK) {
                ks_log("error: %s: %s does not unseal", path, e[i].name);
                return -1;
            }
            sodium_free(der);
        }
    }
    for (i = 0; i < mf->n; i++) {
        int optional;

        ks_manifest_vouches(mf, mf->e[i].file, NULL, NULL, &optional);
        if (!optional && find(e, n, mf->e[i].file) == NULL) {
            ks_log("error: %s lacks %s, which its manifest lists", path, mf->e[i].file);
            return -1;
        }
    }
    return 0;
}

static void tmp_name(const char *f, char *out, size_t outlen)
{
    size_t n = strlen(f);

    if (n > 4 && strcmp(f + n - 4, ".crt") == 0)
        snprintf(out, outlen, ".%.*s.crt.tmp", (int)(n - 4), f);
    else
        snprintf(out, outlen, ".%.*s.tmp", (int)(n > 4 ? n - 4 : n), f);
}

static int commit_manifest(int kfd, struct ks_manifest *m, uint64_t gen)
{
    char err[512];

    m->gen = gen;
    if (ks_manifest_write(kfd, m, err, sizeof(err)) != 0 ||
        ks_generation_set(gen, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return -1;
    }
    return 0;
}

static int replace_files(int kfd, const char *key_dir, const struct entry *e, size_t n,
                         const struct ks_manifest *mf, const struct ks_manifest *cur,
                         uint64_t gen)
{
    struct ks_manifest u = { 0 }, fin = { 0 };
    char err[512], tmp[KS_MF_NAME_MAX + 16];
    uint8_t hash[KS_FILE_HASH_LEN];
    size_t i;
    int rc = -1;

    /* 1. a manifest vouching for both the current and the restored files */
    for (i = 0; cur != NULL && i < cur->n; i++)
        if (ks_manifest_add(&u, cur->e[i].file, cur->e[i].hash, cur->e[i].flags) != 0)
            goto nomem;
    for (i = 0; i < mf->n; i++)
        if (ks_manifest_add(&u, mf->e[i].file, mf->e[i].hash, KS_MF_OPTIONAL) != 0)
            goto nomem;
    if (commit_manifest(kfd, &u, gen) != 0)
        goto out;
    /* 2. the files */
    for (i = 0; i < n; i++) {
        if (strcmp(e[i].name, KS_MANIFEST_FILE) == 0)
            continue;
        tmp_name(e[i].name, tmp, sizeof(tmp));
        if (ks_write_file_atomic_at(kfd, e[i].name, tmp, e[i].data, e[i].len, err,
                                    sizeof(err)) != 0) {
            ks_log("error: %s/%s: %s", key_dir, e[i].name, err);
            goto out;
        }
        ks_file_hash(e[i].data, e[i].len, hash);
        if (ks_manifest_add(&fin, e[i].name, hash, 0) != 0)
            goto nomem;
    }
    /* 3. current files the archive does not have */
    for (i = 0; cur != NULL && i < cur->n; i++)
        if (find(e, n, cur->e[i].file) == NULL && ks_unlink_at(kfd, cur->e[i].file) != 0 &&
            errno != ENOENT) {
            ks_log("error: cannot remove %s/%s: %s", key_dir, cur->e[i].file, strerror(errno));
            goto out;
        }
    if (ks_sync_dir(kfd) != 0) {
        ks_log("error: cannot sync %s: %s", key_dir, strerror(errno));
        goto out;
    }
    /* 4. the archive's set, one generation further */
    if (commit_manifest(kfd, &fin, gen + 1) != 0)
        goto out;
    rc = 0;
    goto out;
nomem:
    ks_log("error: out of memory");
out:
    ks_manifest_free(&u);
    ks_manifest_free(&fin);
    return rc;
}

int ks_backup_restore(const char *in_path, const char *key_dir, const char *counter_cfg,
                      int allow_rollback)
{
    struct ks_manifest mf = { 0 }, cur = { 0 };
    char def[4200], why[256];
    uint8_t *body = NULL;
    struct entry *e = NULL;
    uint64_t agen, counter, at, next;
    enum ks_mf_status cst = KS_MF_MISSING;
    size_t n = 0;
    int kfd = -1, rc = -1;

    if (key_dir == NULL || in_path == NULL)   /* (and gcc's -fsanitize build wants to know) */
        return -1;
    if (read_archive(in_path, &body, &e, &n, &agen) != 0 ||
        check_archive(in_path, e, n, &mf, agen) != 0)
        goto out;
    if (ks_generation_open(ks_generation_default(key_dir, counter_cfg, def, sizeof(def)),
                           &counter) != 0)
        goto out;
    if (mkdir(key_dir, 0700) == 0)
        ks_log("created key directory %s", key_dir);
    kfd = open(key_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (kfd < 0) {
        ks_log("error: cannot open key directory %s: %s", key_dir, strerror(errno));
        goto out;
    }
    cst = ks_manifest_read(kfd, &cur, why, sizeof(why));
    if (cst != KS_MF_OK && cst != KS_MF_MISSING)
        ks_log("warning: the current manifest of %s is unusable (%s): restoring over it",
               key_dir, why);
    at = counter;
    if (cst == KS_MF_OK && cur.gen > at)
        at = cur.gen;
    if (agen < at && !allow_rollback) {
        ks_log("error: %s is generation %llu but the key directory %s is at generation %llu: "
               "restoring it is a rollback (keys deleted since come back, keys created, "
               "rotated or given certificates since are lost or go back). Nothing was "
               "replaced. If that is what you want, run the restore again with "
               "--allow-rollback (the rollback counter is advanced, never lowered)",
               in_path, (unsigned long long)agen, key_dir, (unsigned long long)at);
        goto out;
    }
    next = (agen > at ? agen : at) + 1;
    if (replace_files(kfd, key_dir, e, n, &mf, cst == KS_MF_OK ? &cur : NULL, next) != 0)
        goto out;
    ks_log("restored %s into %s: %zu file%s, archive generation %llu, now generation %llu%s",
           in_path, key_dir, n, n == 1 ? "" : "s", (unsigned long long)agen,
           (unsigned long long)(next + 1), agen < at ? " (a rollback, as allowed)" : "");
    rc = 0;
out:
    if (kfd >= 0)
        close(kfd);
    ks_manifest_free(&mf);
    ks_manifest_free(&cur);
    free(body);
    free(e);
    return rc;
}
