/* Key directory file operations, directly or through the file helper; see
 * keydir.h.  The name check sits in the functions that touch the file
 * system, so the helper process enforces it whatever the server sends. */
#include "keydir.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "sealed_file.h"
#include "wire.h"

/* ---- the names ---------------------------------------------------------- */

/* PREFIX NAME SUFFIX, NAME a valid key name (no '/', no leading '.').
 * A new kind of file in the key directory is one more line here.  Key
 * versions need none: version N of key K is K.vN.key / K.vN.crt (temporary
 * .K.vN.tmp, .K.vN.crt.tmp), and "K.vN" is itself a valid key name. */
static const struct {
    const char *prefix, *suffix;
    enum ks_name_class cls;
} NAME_PATTERNS[] = {
    { "", ".key", KS_NAME_FINAL },
    { "", ".crt", KS_NAME_FINAL },
    { ".", ".tmp", KS_NAME_TEMP },
    { ".", ".crt.tmp", KS_NAME_TEMP },
};

/* Names that are not per key. */
static const struct {
    const char *name;
    enum ks_name_class cls;
} FIXED_NAMES[] = {
    { ".manifest", KS_NAME_FINAL },       /* the rollback manifest (store/manifest.c) */
    { ".manifest.tmp", KS_NAME_TEMP },
    /* catalogue = etcd: what this replica applied (store/catalogue.c); its
     * temporary file .catalogue.tmp is a NAME_PATTERNS name, written under
     * the store's write lock like every other */
    { ".catalogue", KS_NAME_FINAL },
};

enum ks_name_class ks_keydir_name_class(const char *fname)
{
    char name[KS_MAX_KEY_NAME + 1];
    size_t i, n = fname != NULL ? strnlen(fname, 256) : 0;

    for (i = 0; n > 0 && i < sizeof(FIXED_NAMES) / sizeof(FIXED_NAMES[0]); i++)
        if (strcmp(fname, FIXED_NAMES[i].name) == 0)
            return FIXED_NAMES[i].cls;

    for (i = 0; i < sizeof(NAME_PATTERNS) / sizeof(NAME_PATTERNS[0]); i++) {
        size_t pl = strlen(NAME_PATTERNS[i].prefix), sl = strlen(NAME_PATTERNS[i].suffix);

        if (n <= pl + sl || n - pl - sl > KS_MAX_KEY_NAME ||
            strncmp(fname, NAME_PATTERNS[i].prefix, pl) != 0 ||
            strcmp(fname + n - sl, NAME_PATTERNS[i].suffix) != 0)
            continue;
        memcpy(name, fname + pl, n - pl - sl);
        name[n - pl - sl] = '\0';
        if (ks_valid_key_name(name))
            return NAME_PATTERNS[i].cls;
    }
    return KS_NAME_REFUSED;
}

static int refuse_name(const char *fname, char *err, size_t errlen)
{
    snprintf(err, errlen, "'%.80s' is not a file name keystored uses in its key directory "
             "(store/keydir.c lists them)", fname);
    errno = EPERM;
    return -1;
}

/* ---- the operations, on the directory itself ------------------------------- */

static int read_direct(int dirfd, const char *fname, size_t maxlen,
                       uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    struct stat st;
    uint8_t *buf;
    size_t got = 0;
    int fd, e;

    *out = NULL;
    if (ks_keydir_name_class(fname) != KS_NAME_FINAL)
        return refuse_name(fname, err, errlen);
    fd = openat(dirfd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        e = errno;
        snprintf(err, errlen, "cannot open: %s", strerror(e));
        errno = e;
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if ((uint64_t)st.st_size > maxlen) {
        snprintf(err, errlen, "file is %lld bytes, more than the limit of %zu",
                 (long long)st.st_size, maxlen);
        close(fd);
        errno = EFBIG;
        return -1;
    }
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "read error: %s", r < 0 ? strerror(errno) : "file shrank");
            free(buf);
            close(fd);
            errno = EIO;
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *outlen = got;
    return 0;
}

/* 0 in the file helper, which never runs as root (and whose seccomp filter
 * has no geteuid); see write_direct. */
static int may_chown = 1;

static int write_direct(int dirfd, const char *fname, const char *tmpname,
                        const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    struct stat st;
    size_t off = 0;
    int fd;

    if (ks_keydir_name_class(fname) != KS_NAME_FINAL)
        return refuse_name(fname, err, errlen);
    if (ks_keydir_name_class(tmpname) != KS_NAME_TEMP)
        return refuse_name(tmpname, err, errlen);
    fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) {
        /* Left by a crash; writers are serialized, so nobody else owns it. */
        if (unlinkat(dirfd, tmpname, 0) == 0)
            fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmpname, strerror(errno));
        return -1;
    }
    /* root writing (start-up, an offline restore): the file belongs to the
     * directory's owner, so the file helper (running as that user) can read it */
    if (may_chown && geteuid() == 0 && (fstat(dirfd, &st) != 0 || fchown(fd, st.st_uid, st.st_gid) != 0)) {
        snprintf(err, errlen, "cannot give %s to the key directory's owner: %s", tmpname,
                 strerror(errno));
        goto fail;
    }
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(err, errlen, "writing %s: %s", tmpname, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "fsync %s: %s", tmpname, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "closing %s: %s", tmpname, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (renameat(dirfd, tmpname, dirfd, fname) != 0) {
        snprintf(err, errlen, "renaming %s to %s: %s", tmpname, fname, strerror(errno));
        goto fail;
    }
    if (fsync(dirfd) != 0) {
        snprintf(err, errlen, "%s written but the key directory could not be synced: %s",
                 fname, strerror(errno));
        return -1;
    }
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlinkat(dirfd, tmpname, 0);
    return -1;
}

static int unlink_direct(int dirfd, const char *fname, char *err, size_t errlen)
{
    if (ks_keydir_name_class(fname) == KS_NAME_REFUSED)
        return refuse_name(fname, err, errlen);
    if (unlinkat(dirfd, fname, 0) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- requests to the file helper --------------------------------------------- */

enum { OP_READ = 1, OP_WRITE, OP_UNLINK, OP_SYNC };
#define NAME_MAX_LEN 255
#define MSG_MAX 512

struct request {
    uint32_t op;
    uint32_t name_len, tmp_len;
    uint32_t data_len;          /* WRITE: bytes that follow; READ: the size limit */
};

struct reply {
    int32_t err;                /* 0 or an errno value */
    uint32_t msg_len, data_len;
};

static int broker_fd = -1;
static pthread_mutex_t broker_lock = PTHREAD_MUTEX_INITIALIZER;

void ks_keydir_use_broker(int fd)
{
    broker_fd = fd;
}

static int send_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;

    while (len > 0) {
        ssize_t w = send(fd, b, len, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        len -= (size_t)w;
    }
    return 0;
}

/* 0 done, -1 error or end of stream before len bytes */
static int recv_all(int fd, void *p, size_t len)
{
    uint8_t *b = p;

    while (len > 0) {
        ssize_t r = recv(fd, b, len, 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        len -= (size_t)r;
    }
    return 0;
}

static int call(uint32_t op, const char *name, const char *tmp, const uint8_t *data,
                size_t data_len, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    struct request rq = { op, 0, 0, (uint32_t)data_len };
    struct reply rp;
    char msg[MSG_MAX + 1];
    uint8_t *buf = NULL;
    int rc = -1, e = EIO;

    rq.name_len = name != NULL ? (uint32_t)strnlen(name, NAME_MAX_LEN + 1) : 0;
    rq.tmp_len = tmp != NULL ? (uint32_t)strnlen(tmp, NAME_MAX_LEN + 1) : 0;
    if (rq.name_len > NAME_MAX_LEN || rq.tmp_len > NAME_MAX_LEN || data_len > KS_CERTFILE_MAX) {
        snprintf(err, errlen, "file name or contents too long for the key directory");
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&broker_lock);
    if (send_all(broker_fd, &rq, sizeof(rq)) != 0 ||
        send_all(broker_fd, name != NULL ? name : "", rq.name_len) != 0 ||
        send_all(broker_fd, tmp != NULL ? tmp : "", rq.tmp_len) != 0 ||
        (op == OP_WRITE && send_all(broker_fd, data, data_len) != 0) ||
        recv_all(broker_fd, &rp, sizeof(rp)) != 0) {
        snprintf(err, errlen, "the key directory's file helper process is gone: restart keystored");
        goto out;
    }
    /* the helper is less trusted than nothing: bound what it sends back */
    if (rp.msg_len > MSG_MAX || rp.data_len > (op == OP_READ ? data_len : 0) ||
        recv_all(broker_fd, msg, rp.msg_len) != 0 ||
        (rp.data_len > 0 && (buf = malloc(rp.data_len)) == NULL) ||
        (rp.data_len > 0 && recv_all(broker_fd, buf, rp.data_len) != 0)) {
        snprintf(err, errlen, "bad reply from the key directory's file helper: restart keystored");
        free(buf);
        buf = NULL;
        goto out;
    }
    msg[rp.msg_len] = '\0';
    if (rp.err != 0) {
        snprintf(err, errlen, "%s", msg);
        e = rp.err;
        goto out;
    }
    if (op == OP_READ) {
        *out = buf != NULL ? buf : malloc(1);
        *outlen = rp.data_len;
        buf = NULL;
        if (*out == NULL) {
            snprintf(err, errlen, "out of memory");
            e = ENOMEM;
            goto out;
        }
    }
    rc = 0;
out:
    pthread_mutex_unlock(&broker_lock);
    free(buf);
    if (rc != 0)
        errno = e;
    return rc;
}

int ks_read_file_at(int dirfd, const char *fname, size_t maxlen,
                    uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    if (broker_fd < 0)
        return read_direct(dirfd, fname, maxlen, out, outlen, err, errlen);
    if (maxlen > KS_CERTFILE_MAX)
        maxlen = KS_CERTFILE_MAX;
    return call(OP_READ, fname, NULL, NULL, maxlen, out, outlen, err, errlen);
}

int ks_write_file_atomic_at(int dirfd, const char *fname, const char *tmpname,
                            const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    if (broker_fd < 0)
        return write_direct(dirfd, fname, tmpname, buf, len, err, errlen);
    return call(OP_WRITE, fname, tmpname, buf, len, NULL, NULL, err, errlen);
}

int ks_unlink_at(int dirfd, const char *fname)
{
    char err[MSG_MAX];

    if (broker_fd < 0)
        return unlink_direct(dirfd, fname, err, sizeof(err));
    return call(OP_UNLINK, fname, NULL, NULL, 0, NULL, NULL, err, sizeof(err));
}

int ks_sync_dir(int dirfd)
{
    char err[MSG_MAX];

    if (broker_fd < 0)
        return fsync(dirfd);
    return call(OP_SYNC, NULL, NULL, NULL, 0, NULL, NULL, err, sizeof(err));
}

/* ---- the file helper's loop ------------------------------------------------- */

static int answer(int sock, int err, const char *msg, const uint8_t *data, size_t len)
{
    struct reply rp = { err, 0, (uint32_t)len };

    rp.msg_len = err != 0 ? (uint32_t)strnlen(msg, MSG_MAX) : 0;
    if (send_all(sock, &rp, sizeof(rp)) != 0 || send_all(sock, msg, rp.msg_len) != 0 ||
        send_all(sock, data, len) != 0)
        return -1;
    return 0;
}

/* One request; 1 answered, 0 end of stream, -1 malformed or broken. */
static int serve_one(int sock, int dirfd)
{
    struct request rq;
    char name[NAME_MAX_LEN + 1], tmp[NAME_MAX_LEN + 1], msg[MSG_MAX] = "";
    uint8_t *data = NULL, *out = NULL;
    size_t outlen = 0;
    ssize_t r;
    int rc = -1, e = 0;

    do
        r = recv(sock, &rq, sizeof(rq), MSG_WAITALL);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    if (r != (ssize_t)sizeof(rq) || rq.op < OP_READ || rq.op > OP_SYNC ||
        rq.name_len > NAME_MAX_LEN || rq.tmp_len > NAME_MAX_LEN || rq.data_len > KS_CERTFILE_MAX ||
        recv_all(sock, name, rq.name_len) != 0 || recv_all(sock, tmp, rq.tmp_len) != 0) {
        ks_log("error: file helper: malformed request from the server; stopping");
        return -1;
    }
    name[rq.name_len] = '\0';
    tmp[rq.tmp_len] = '\0';
    if (rq.op == OP_WRITE) {
        data = malloc(rq.data_len > 0 ? rq.data_len : 1);
        if (data == NULL || recv_all(sock, data, rq.data_len) != 0) {
            ks_log("error: file helper: cannot receive %u bytes from the server; stopping",
                   rq.data_len);
            free(data);
            return -1;
        }
    }
    /* a NUL inside a name would make the check and the call see different names */
    if (strlen(name) != rq.name_len || strlen(tmp) != rq.tmp_len) {
        errno = EPERM;
        snprintf(msg, sizeof(msg), "file name with a NUL byte refused");
        e = EPERM;
    } else {
        switch (rq.op) {
        case OP_READ:
            r = read_direct(dirfd, name, rq.data_len, &out, &outlen, msg, sizeof(msg));
            break;
        case OP_WRITE:
            r = write_direct(dirfd, name, tmp, data, rq.data_len, msg, sizeof(msg));
            break;
        case OP_UNLINK:
            r = unlink_direct(dirfd, name, msg, sizeof(msg));
            break;
        default:
            r = fsync(dirfd);
            if (r != 0)
                snprintf(msg, sizeof(msg), "%s", strerror(errno));
            break;
        }
        e = r != 0 ? (errno != 0 ? errno : EIO) : 0;
    }
    if (e == EPERM && rq.op != OP_SYNC)
        ks_log("warning: file helper: refused %s", msg);
    rc = answer(sock, e, msg, out, e == 0 ? outlen : 0) == 0 ? 1 : -1;
    free(out);
    free(data);
    return rc;
}

int ks_keydir_serve(int sock, int dirfd)
{
    int r;

    may_chown = 0;
    while ((r = serve_one(sock, dirfd)) > 0)
        ;
    return r;
}
