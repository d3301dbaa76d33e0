/* Rollback counter file; see generation.h. */
#include "generation.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"

#define SLOT 32

static int counter_fd = -1;
static char counter_path[4096];

static void slot_encode(uint64_t gen, uint8_t out[SLOT])
{
    int i;

    memset(out, 0, SLOT);
    for (i = 0; i < 8; i++)
        out[i] = (uint8_t)(gen >> (56 - 8 * i));
    crypto_generichash(out + 16, 16, out, 16, NULL, 0);
}

/* 1 and *gen if the slot is intact. */
static int slot_decode(const uint8_t in[SLOT], uint64_t *gen)
{
    uint8_t sum[16];
    int i;

    crypto_generichash(sum, sizeof(sum), in, 16, NULL, 0);
    if (sodium_memcmp(sum, in + 16, sizeof(sum)) != 0 || !sodium_is_zero(in + 8, 8))
        return 0;
    *gen = 0;
    for (i = 0; i < 8; i++)
        *gen = (*gen << 8) | in[i];
    return 1;
}

static void sync_parent(const char *path)
{
    char copy[4096];
    int fd;

    snprintf(copy, sizeof(copy), "%s", path);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int ks_generation_open(const char *path, uint64_t *gen)
{
    uint8_t buf[2 * SLOT];
    struct stat st;
    uint64_t g;
    ssize_t n;
    int created = 0, i;

    *gen = 0;
    if (counter_fd >= 0 && strcmp(path, counter_path) == 0)
        goto read;   /* already open and locked (store/rotate.c recovered first) */
    ks_generation_close();
    snprintf(counter_path, sizeof(counter_path), "%s", path);
    counter_fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (counter_fd < 0 && errno == ENOENT) {
        counter_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        created = counter_fd >= 0;
    }
    if (counter_fd < 0) {
        ks_log("error: cannot open the rollback counter %s: %s (set rollback_counter in the "
               "config to a file outside key_dir that keystored may create)", path,
               strerror(errno));
        return -1;
    }
    if (fstat(counter_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ks_log("error: the rollback counter %s is not a regular file", path);
        return -1;
    }
    /* One writer of the key directory at a time: a running server holds the
     * lock for its lifetime, so an offline rotation or restore (store/rotate.c,
     * store/backup.c) cannot run under it, nor a second server. */
    if (flock(counter_fd, LOCK_EX | LOCK_NB) != 0) {
        ks_log("error: the rollback counter %s is locked by another process: a keystored "
               "(or a keystored --rotate-master-key / --restore) is using this key directory; "
               "stop it first", path);
        if (errno != EWOULDBLOCK)
            ks_log("error: flock %s: %s", path, strerror(errno));
        close(counter_fd);
        counter_fd = -1;
        return -1;
    }
    if ((st.st_mode & 077) != 0)
        ks_log("warning: the rollback counter %s is accessible by group or others (mode %04o); "
               "fix with: chmod 600 %s", path, (unsigned)(st.st_mode & 07777), path);
    if (created) {
        sync_parent(path);
        ks_log("created the rollback counter %s", path);
        return 0;
    }
read:
    n = pread(counter_fd, buf, sizeof(buf), 0);
    if (n < 0) {
        ks_log("error: reading the rollback counter %s: %s", path, strerror(errno));
        return -1;
    }
    for (i = 0; i < 2; i++)
        if ((size_t)n >= (size_t)(i + 1) * SLOT && slot_decode(buf + i * SLOT, &g) && g > *gen)
            *gen = g;
    if (n > 0 && *gen == 0)
        ks_log("warning: the rollback counter %s holds no valid generation (%zd bytes); "
               "treating it as new", path, n);
    return 0;
}

const char *ks_generation_default(const char *key_dir, const char *cfg_path, char *buf,
                                  size_t buflen)
{
    if (cfg_path != NULL && cfg_path[0] != '\0')
        return cfg_path;
    snprintf(buf, buflen, "%s.generation", key_dir);
    return buf;
}

int ks_generation_set(uint64_t gen, char *err, size_t errlen)
{
    uint8_t slot[SLOT];
    off_t off = (off_t)(gen % 2) * SLOT;
    ssize_t w;

    slot_encode(gen, slot);
    do
        w = pwrite(counter_fd, slot, sizeof(slot), off);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)sizeof(slot)) {
        snprintf(err, errlen, "cannot write the rollback counter %s: %s", counter_path,
                 w < 0 ? strerror(errno) : "short write");
        return -1;
    }
    if (fdatasync(counter_fd) != 0) {
        snprintf(err, errlen, "cannot sync the rollback counter %s: %s", counter_path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

const char *ks_generation_path(void)
{
    return counter_path;
}

void ks_generation_close(void)
{
    if (counter_fd >= 0)
        close(counter_fd);
    counter_fd = -1;
}
