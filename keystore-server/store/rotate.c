/* Master-key rotation and its recovery; see rotate.h for the scheme. */
#include "rotate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "catalogue.h"
#include "generation.h"
#include "keytable.h"
#include "manifest.h"
#include "masterkey.h"
#include "sealed_file.h"

#define STAGED_KEY "master.key"
#define PATHMAX 4096

/* The key directory's owner: staged files are given to it, so the file
 * helper (which runs as that user) can read them once moved in. */
static uid_t dir_uid = (uid_t)-1;
static gid_t dir_gid = (gid_t)-1;

struct paths {
    char stage[PATHMAX];      /* KEY_DIR.rotate */
    char old[PATHMAX];        /* MASTER.old */
    char tmp[PATHMAX];        /* DIR/.MASTER.rtmp, write_at's temporary for MASTER */
    char dir[PATHMAX];        /* the directory of MASTER */
    char base[PATHMAX];       /* MASTER's file name */
};

static int make_paths(struct paths *p, const char *master_path, const char *key_dir)
{
    char c1[PATHMAX], c2[PATHMAX];

    snprintf(c1, sizeof(c1), "%s", master_path);
    snprintf(c2, sizeof(c2), "%s", master_path);
    snprintf(p->dir, sizeof(p->dir), "%s", dirname(c1));
    snprintf(p->base, sizeof(p->base), "%s", basename(c2));
    if ((size_t)snprintf(p->stage, sizeof(p->stage), "%s.rotate", key_dir) >= sizeof(p->stage) ||
        (size_t)snprintf(p->old, sizeof(p->old), "%s.old", master_path) >= sizeof(p->old) ||
        strlen(p->base) > KS_MF_NAME_MAX ||
        (size_t)snprintf(p->tmp, sizeof(p->tmp), "%s/.%s.rtmp", p->dir, p->base)
            >= sizeof(p->tmp)) {
        ks_log("error: key_dir or master_key path too long");
        return -1;
    }
    return 0;
}

static int sync_path_dir(const char *path)
{
    char copy[PATHMAX];
    int fd, r;

    snprintf(copy, sizeof(copy), "%s", path);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    r = fsync(fd);
    close(fd);
    return r;
}

/* Exactly KS_MASTER_KEY_LEN bytes of a key file into buf; 0, or -1 (errno). */
static int read_key_bytes(int dirfd, const char *path, unsigned char buf[KS_MASTER_KEY_LEN])
{
    unsigned char tmp[KS_MASTER_KEY_LEN + 1];
    ssize_t n;
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return -1;
    do
        n = read(fd, tmp, sizeof(tmp));
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n != KS_MASTER_KEY_LEN) {
        sodium_memzero(tmp, sizeof(tmp));
        errno = EINVAL;
        return -1;
    }
    memcpy(buf, tmp, KS_MASTER_KEY_LEN);
    sodium_memzero(tmp, sizeof(tmp));
    return 0;
}

/* dirfd/name <- buf: NAME.tmp-style temporary (O_EXCL, 0600), fsync,
 * rename.  The directory is synced by the caller. */
static int write_at(int dirfd, const char *name, const uint8_t *buf, size_t len,
                    char *err, size_t errlen)
{
    char tmp[KS_MF_NAME_MAX + 8];
    size_t off = 0;
    int fd;

    snprintf(tmp, sizeof(tmp), ".%s.rtmp", name);
    (void)unlinkat(dirfd, tmp, 0);
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (dir_uid != (uid_t)-1 && fchown(fd, dir_uid, dir_gid) != 0) {
        snprintf(err, errlen, "cannot chown %s: %s", tmp, strerror(errno));
        close(fd);
        return -1;
    }
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, name, strerror(errno));
        return -1;
    }
    return 0;
}

/* Remove every file in the staging directory, then the directory. */
static int remove_stage(const char *stage)
{
    struct dirent *de;
    int fd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW), dfd;
    DIR *d;

    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    dfd = dup(fd);
    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        if (dfd >= 0)
            close(dfd);
        close(fd);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(fd, de->d_name, 0) != 0) {
            ks_log("error: cannot remove %s/%s: %s", stage, de->d_name, strerror(errno));
            closedir(d);
            close(fd);
            return -1;
        }
    }
    closedir(d);
    close(fd);
    if (rmdir(stage) != 0 || sync_path_dir(stage) != 0) {
        ks_log("error: cannot remove %s: %s", stage, strerror(errno));
        return -1;
    }
    return 0;
}

/* After the switch: move the staged files into the key directory (the
 * manifest last: until it moves, the old manifest, under the old key,
 * cannot open, and recovery keeps moving), then remove the staging
 * directory and MASTER.old.  Idempotent. */
static int roll_forward(const struct paths *p, const char *key_dir)
{
    struct dirent *de;
    int sfd, kfd, dfd, rc = -1;
    DIR *d;

    sfd = open(p->stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    kfd = open(key_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (sfd < 0 || kfd < 0) {
        ks_log("error: cannot open %s: %s", sfd < 0 ? p->stage : key_dir, strerror(errno));
        goto out;
    }
    dfd = dup(sfd);
    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        ks_log("error: cannot list %s: %s", p->stage, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        goto out;
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        if ((de->d_name[0] == '.' && strcmp(de->d_name, KS_CAT_STATE_FILE) != 0) ||
            strcmp(de->d_name, STAGED_KEY) == 0)
            continue;   /* ".", "..", the manifest (below), leftover temporaries */
        if (renameat(sfd, de->d_name, kfd, de->d_name) != 0) {
            ks_log("error: cannot move %s/%s into %s: %s", p->stage, de->d_name, key_dir,
                   strerror(errno));
            closedir(d);
            goto out;
        }
    }
    closedir(d);
    if (fsync(kfd) != 0 ||
        (renameat(sfd, KS_MANIFEST_FILE, kfd, KS_MANIFEST_FILE) != 0 && errno != ENOENT) ||
        fsync(kfd) != 0) {
        ks_log("error: cannot move the new manifest into %s: %s", key_dir, strerror(errno));
        goto out;
    }
    /* the staged key goes last: a staging directory without it is empty */
    if (remove_stage(p->stage) != 0)
        goto out;
    if (unlink(p->old) != 0 && errno != ENOENT) {
        ks_log("error: cannot remove %s: %s", p->old, strerror(errno));
        goto out;
    }
    (void)sync_path_dir(p->old);
    rc = 0;
out:
    if (sfd >= 0)
        close(sfd);
    if (kfd >= 0)
        close(kfd);
    return rc;
}

int ks_rotation_recover(const char *master_path, const char *key_dir, const char *counter_cfg)
{
    unsigned char cur[KS_MASTER_KEY_LEN], staged[KS_MASTER_KEY_LEN];
    char def[PATHMAX + 16];
    struct paths p;
    uint64_t gen;
    int sfd, switched;

    /* the lock first: never recover under a running rotation or server */
    if (make_paths(&p, master_path, key_dir) != 0 ||
        ks_generation_open(ks_generation_default(key_dir, counter_cfg, def, sizeof(def)),
                           &gen) != 0)
        return -1;
    (void)unlink(p.tmp);   /* never the commit point: the rename is */
    sfd = open(p.stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (sfd < 0) {
        if (errno != ENOENT) {
            ks_log("error: cannot open %s: %s", p.stage, strerror(errno));
            return -1;
        }
        /* no staging: at most the last step (removing MASTER.old) is left */
        if (unlink(p.old) == 0) {
            ks_log("finished an interrupted master-key rotation: removed %s", p.old);
            (void)sync_path_dir(p.old);
        }
        return 0;
    }
    switched = read_key_bytes(sfd, STAGED_KEY, staged) == 0 &&
               read_key_bytes(AT_FDCWD, master_path, cur) == 0 &&
               sodium_memcmp(staged, cur, KS_MASTER_KEY_LEN) == 0;
    close(sfd);
    sodium_memzero(staged, sizeof(staged));
    sodium_memzero(cur, sizeof(cur));
    if (switched) {
        ks_log("master-key rotation was interrupted after the switch to the new key: "
               "finishing it (moving %s into %s)", p.stage, key_dir);
        return roll_forward(&p, key_dir);
    }
    ks_log("master-key rotation was interrupted before the switch: rolling it back (the "
           "master key %s stays; removing %s)", master_path, p.stage);
    if (remove_stage(p.stage) != 0)
        return -1;
    if (unlink(p.old) != 0 && errno != ENOENT) {
        ks_log("error: cannot remove %s: %s", p.old, strerror(errno));
        return -1;
    }
    return 0;
}

/* Re-seal (keys, the catalogue state) or copy (certificates) every file of mf into sfd; the
 * new manifest gets their new hashes. */
static int stage_files(int kfd, int sfd, const struct ks_manifest *mf, struct ks_manifest *nm,
                       const char *key_dir)
{
    char err[512], why[256];
    size_t i;

    for (i = 0; i < mf->n; i++) {
        const char *f = mf->e[i].file;
        size_t n = strlen(f);
        int is_key = n > 4 && strcmp(f + n - 4, ".key") == 0;
        uint8_t *buf, *out = NULL, hash[KS_FILE_HASH_LEN];
        size_t len;
        int r;

        if (i > 0 && strcmp(f, mf->e[i - 1].file) == 0)
            continue;
        if (ks_read_file_at(kfd, f, is_key ? KS_KEYFILE_MAX : KS_CERTFILE_MAX, &buf, &len,
                            err, sizeof(err)) != 0) {
            if (errno == ENOENT)
                continue;   /* listed, absent: the fresh manifest forgets it too */
            ks_log("error: %s/%s: %s", key_dir, f, err);
            return -1;
        }
        ks_file_hash(buf, len, hash);
        if (!ks_manifest_vouches(mf, f, hash, NULL, NULL)) {
            ks_log("error: %s/%s changed during the rotation (is a keystored running?)",
                   key_dir, f);
            free(buf);
            return -1;
        }
        if (is_key) {
            char stem[KS_MF_NAME_MAX];

            snprintf(stem, sizeof(stem), "%.*s", (int)(n - 4), f);
            r = ks_reseal_key(stem, buf, len, &out, why, sizeof(why));
            free(buf);
            if (r != 0) {
                ks_log("error: cannot re-seal %s/%s: %s", key_dir, f,
                       r == -1 ? why : "internal error");
                return -1;
            }
            buf = out;
        } else if (strcmp(f, KS_CAT_STATE_FILE) == 0) {
            r = ks_catalogue_state_reseal(buf, len, &out, why, sizeof(why));
            free(buf);
            if (r != 0) {
                ks_log("error: cannot re-seal %s/%s: %s", key_dir, f,
                       r == -1 ? why : "internal error");
                return -1;
            }
            buf = out;
        }
        ks_file_hash(buf, len, hash);
        r = write_at(sfd, f, buf, len, err, sizeof(err));
        free(buf);
        if (r != 0 || ks_manifest_add(nm, f, hash, 0) != 0) {
            ks_log("error: staging %s: %s", f, r != 0 ? err : "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The commit point: MASTER.old = the old key (a hard link), then the new
 * key written beside MASTER and renamed over it. */
static int switch_master(const struct paths *p, const char *master_path,
                         const unsigned char key[KS_MASTER_KEY_LEN])
{
    char err[512] = "cannot sync its directory";
    int dfd;

    if (link(master_path, p->old) != 0) {
        ks_log("error: cannot link %s to %s: %s", master_path, p->old, strerror(errno));
        return -1;
    }
    dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        ks_log("error: cannot open %s: %s", p->dir, strerror(errno));
        return -1;
    }
    if (fsync(dfd) != 0 || write_at(dfd, p->base, key, KS_MASTER_KEY_LEN, err, sizeof(err)) != 0 ||
        fsync(dfd) != 0) {
        ks_log("error: replacing %s: %s", master_path, err);
        close(dfd);
        return -1;
    }
    close(dfd);
    return 0;
}

int ks_rotate_master_key(const char *master_path, const char *key_dir, const char *counter_cfg,
                         const char *new_path)
{
    unsigned char newkey[KS_MASTER_KEY_LEN], oldkey[KS_MASTER_KEY_LEN];
    struct ks_manifest mf = { 0 }, nm = { 0 };
    char why[256], err[512];
    struct paths p;
    int sfd = -1, rc = -1, same;

    if (make_paths(&p, master_path, key_dir) != 0 ||
        ks_rotation_recover(master_path, key_dir, counter_cfg) != 0)
        return -1;
    /* the old key opens the store as a start would: counter, manifest, keys */
    if (ks_master_load(master_path) != 0 || ks_store_open(key_dir, counter_cfg) != 0)
        goto out;
    if (ks_master_load_next(new_path) != 0)
        goto out;
    if (read_key_bytes(AT_FDCWD, new_path, newkey) != 0 ||
        read_key_bytes(AT_FDCWD, master_path, oldkey) != 0) {
        ks_log("error: cannot read %s or %s again: %s", new_path, master_path, strerror(errno));
        goto out;
    }
    same = sodium_memcmp(newkey, oldkey, KS_MASTER_KEY_LEN) == 0;
    sodium_memzero(oldkey, sizeof(oldkey));
    if (same) {
        ks_log("error: %s is the current master key; make a new one with: keystored "
               "--gen-master-key PATH", new_path);
        goto out;
    }
    if (ks_manifest_read(ks_store_dir_fd(), &mf, why, sizeof(why)) != KS_MF_OK) {
        ks_log("error: cannot read the manifest of %s: %s", key_dir, why);
        goto out;
    }
    if (mkdir(p.stage, 0700) != 0 ||
        (sfd = open(p.stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        ks_log("error: cannot create %s: %s", p.stage, strerror(errno));
        goto out;
    }
    /* 1. stage: the new key first (recovery compares it with MASTER), the
     *    files, the new manifest under the new key; all durable */
    if (write_at(sfd, STAGED_KEY, newkey, sizeof(newkey), err, sizeof(err)) != 0) {
        ks_log("error: %s/%s: %s", p.stage, STAGED_KEY, err);
        goto out;
    }
    {   /* the key files (not the staged master key) go to the directory owner */
        struct stat st;

        if (fstat(ks_store_dir_fd(), &st) == 0 && geteuid() == 0) {
            dir_uid = st.st_uid;
            dir_gid = st.st_gid;
        }
    }
    if (stage_files(ks_store_dir_fd(), sfd, &mf, &nm, key_dir) != 0)
        goto out;
    nm.gen = mf.gen + 1;
    ks_master_switch();   /* from here on seal under the new key */
    if (ks_manifest_write(sfd, &nm, err, sizeof(err)) != 0) {
        ks_log("error: %s/%s: %s", p.stage, KS_MANIFEST_FILE, err);
        goto out;
    }
    if (fsync(sfd) != 0 || sync_path_dir(p.stage) != 0) {
        ks_log("error: cannot sync %s: %s", p.stage, strerror(errno));
        goto out;
    }
    /* 2. the switch (commit point), 3. move in and clean up */
    dir_uid = (uid_t)-1;   /* the master key stays root's */
    dir_gid = (gid_t)-1;
    if (switch_master(&p, master_path, newkey) != 0)
        goto out;
    ks_log("switched the master key %s to the new key (the old one is %s until the "
           "rotation completes)", master_path, p.old);
    if (roll_forward(&p, key_dir) != 0)
        goto out;
    if (ks_generation_set(nm.gen, err, sizeof(err)) != 0) {
        ks_log("error: %s (the next start catches the counter up)", err);
        goto out;
    }
    ks_log("rotated the master key: %zu file%s re-sealed or carried under the new key, "
           "manifest generation %llu; %s is the new master key (back it up), the old one is "
           "no longer needed except for backups made with it", nm.n, nm.n == 1 ? "" : "s",
           (unsigned long long)nm.gen, master_path);
    rc = 0;
out:
    if (sfd >= 0)
        close(sfd);
    sodium_memzero(newkey, sizeof(newkey));
    ks_manifest_free(&mf);
    ks_manifest_free(&nm);
    ks_store_close();
    ks_master_unload();
    return rc;
}
