/* Master key creation; see masterkey_gen.h. */
#include "masterkey_gen.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

static int fsync_parent_dir(const char *path)
{
    char copy[4096];
    int fd, r;

    if (strlen(path) >= sizeof(copy))
        return -1;
    strcpy(copy, path);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    r = fsync(fd);
    close(fd);
    return r;
}

int ks_master_key_generate(const char *path, char *err, size_t errlen)
{
    unsigned char key[KS_MASTER_KEY_LEN];
    size_t off = 0;
    int fd;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            snprintf(err, errlen, "%s already exists: refusing to overwrite a master key "
                     "(keys sealed with it would be lost)", path);
        else
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    /* umask may have removed bits but never adds them; make 0600 exact */
    if (fchmod(fd, 0600) != 0) {
        snprintf(err, errlen, "cannot chmod %s: %s", path, strerror(errno));
        goto fail;
    }
    randombytes_buf(key, sizeof(key));
    while (off < sizeof(key)) {
        ssize_t w = write(fd, key + off, sizeof(key) - off);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    sodium_memzero(key, sizeof(key));
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "fsync %s: %s", path, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "closing %s: %s", path, strerror(errno));
        goto fail;
    }
    if (fsync_parent_dir(path) != 0) {
        snprintf(err, errlen, "%s was written but its directory could not be synced: %s",
                 path, strerror(errno));
        return -1;
    }
    return 0;
fail:
    sodium_memzero(key, sizeof(key));
    if (fd >= 0)
        close(fd);
    unlink(path);
    return -1;
}
