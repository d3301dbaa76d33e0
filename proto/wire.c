/* Client-side framing and transport helpers; see wire.h. */
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define SETERR(...) do { if (err != NULL && errlen > 0) snprintf(err, errlen, __VA_ARGS__); } while (0)

void ks_put_be32(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

uint32_t ks_get_be32(const uint8_t in[4])
{
    return ((uint32_t)in[0] << 24) | ((uint32_t)in[1] << 16) |
           ((uint32_t)in[2] << 8) | (uint32_t)in[3];
}

int ks_valid_key_name(const char *name)
{
    size_t n;

    if (name == NULL || name[0] == '\0' || name[0] == '.')
        return 0;
    for (n = 0; name[n] != '\0'; n++) {
        char c = name[n];

        if (n >= KS_MAX_KEY_NAME)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int ks_parse_uri(const char *uri, char *out, char *err, size_t errlen)
{
    const char *p;

    if (uri == NULL || strncmp(uri, KS_URI_SCHEME, strlen(KS_URI_SCHEME)) != 0) {
        SETERR("not a keystore URI (expected keystore:NAME): %s", uri ? uri : "(null)");
        return 0;
    }
    p = uri + strlen(KS_URI_SCHEME);
    if (strncmp(p, "name=", 5) == 0)
        p += 5;
    if (!ks_valid_key_name(p)) {
        SETERR("malformed keystore URI '%s': the key name must be 1-%d characters "
               "of A-Z a-z 0-9 . _ - and not start with '.'", uri, KS_MAX_KEY_NAME);
        return 0;
    }
    strcpy(out, p);
    return 1;
}

static int set_timeouts(int fd, int timeout_ms)
{
    struct timeval tv;

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
        return -1;
    return 0;
}

int ks_connect(const char *addr, int timeout_ms, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    const char *path;
    int fd;

    if (addr == NULL || strncmp(addr, "unix:", 5) != 0) {
        SETERR("unsupported keystore server address '%s' (expected unix:/path/to/socket)",
               addr ? addr : "(null)");
        return -1;
    }
    path = addr + 5;
    if (path[0] == '\0' || strlen(path) >= sizeof(sun.sun_path)) {
        SETERR("bad keystore server address '%s': socket path empty or longer than %zu bytes",
               addr, sizeof(sun.sun_path) - 1);
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        SETERR("keystore server unreachable at %s: socket: %s", addr, strerror(errno));
        return -1;
    }
    /* before connect: a server whose backlog is full makes connect wait */
    if (set_timeouts(fd, timeout_ms) != 0) {
        SETERR("keystore server at %s: setting socket timeouts: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        SETERR("keystore server unreachable at %s: %s", addr,
               errno == EAGAIN ? "timed out waiting for the server to accept" : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Per thread: a connection is never shared between threads (client.c). */
static __thread long long io_deadline_us;

void ks_io_set_deadline(long long deadline_us)
{
    io_deadline_us = deadline_us;
}

int ks_io_remaining_ms(int default_ms)
{
    long long left;

    if (io_deadline_us == 0)
        return default_ms;
    left = io_deadline_us - ks_mono_us();
    if (left <= 0)
        return 0;
    return left >= 1000LL * 3600 * 24 ? 1000 * 3600 * 24 : (int)((left + 999) / 1000);
}

/* With a deadline set: wait until fd is ready for events or the deadline
 * passes (-1, errno EAGAIN, as a socket timeout reports it). */
static int wait_ready(int fd, short events)
{
    struct pollfd p = { .fd = fd, .events = events };

    for (;;) {
        int ms = ks_io_remaining_ms(0), r;

        if (ms == 0) {
            errno = EAGAIN;
            return -1;
        }
        r = poll(&p, 1, ms);
        if (r > 0)
            return 0;   /* ready, or an error the next call reports */
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* recv/sendmsg that never wait past the thread's deadline: without one,
 * a blocking call (bounded by the socket's timeouts); with one, a
 * non-blocking try first (a reply that is already there costs no poll),
 * then poll until ready or the deadline. */
static ssize_t recv_bounded(int fd, uint8_t *p, size_t n)
{
    for (;;) {
        ssize_t r = recv(fd, p, n, io_deadline_us != 0 ? MSG_DONTWAIT : 0);

        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (io_deadline_us == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return -1;
        if (wait_ready(fd, POLLIN) != 0)
            return -1;
    }
}

static ssize_t sendmsg_bounded(int fd, const struct msghdr *mh)
{
    for (;;) {
        ssize_t w = sendmsg(fd, mh, MSG_NOSIGNAL | (io_deadline_us != 0 ? MSG_DONTWAIT : 0));

        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (io_deadline_us == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return -1;
        if (wait_ready(fd, POLLOUT) != 0)
            return -1;
    }
}

/* Returns 1 on success, 0 on clean EOF before any byte, -1 on error. */
static int read_all(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = recv_bounded(fd, p + got, n - got);

        if (r < 0)
            return -1;
        if (r == 0) {
            errno = ECONNRESET;
            return got == 0 ? 0 : -1;
        }
        got += (size_t)r;
    }
    return 1;
}

static const char *io_reason(void)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return "timed out waiting for the server";
    return strerror(errno);
}

/* Header and body leave in one sendmsg: two sends would wake the server
 * twice (and cost a cross-core wake-up each) for one request. */
int ks_write_frame(int fd, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    uint8_t hdr[KS_FRAME_HEADER];
    struct iovec iov[2];
    struct msghdr mh;
    size_t total, sent = 0;

    if (len > KS_ABS_MAX_FRAME) {
        SETERR("request of %zu bytes exceeds the protocol limit", len);
        return -1;
    }
    ks_put_be32(hdr, (uint32_t)len);
    total = sizeof(hdr) + len;
    while (sent < total) {
        ssize_t w;

        memset(&mh, 0, sizeof(mh));
        if (sent < sizeof(hdr)) {
            iov[0].iov_base = hdr + sent;
            iov[0].iov_len = sizeof(hdr) - sent;
            iov[1].iov_base = (void *)buf;
            iov[1].iov_len = len;
            mh.msg_iovlen = len > 0 ? 2 : 1;
        } else {
            iov[0].iov_base = (void *)(buf + (sent - sizeof(hdr)));
            iov[0].iov_len = total - sent;
            mh.msg_iovlen = 1;
        }
        mh.msg_iov = iov;
        w = sendmsg_bounded(fd, &mh);
        if (w < 0) {
            SETERR("sending to keystore server: %s", io_reason());
            return -1;
        }
        sent += (size_t)w;
    }
    return 0;
}

int ks_read_frame(int fd, size_t max_frame, uint8_t **out, size_t *outlen,
                  char *err, size_t errlen)
{
    uint8_t hdr[KS_FRAME_HEADER];
    uint32_t len;
    uint8_t *buf;
    int r;

    *out = NULL;
    *outlen = 0;
    r = read_all(fd, hdr, sizeof(hdr));
    if (r == 0) {
        SETERR("keystore server closed the connection");
        return -1;
    }
    if (r < 0) {
        SETERR("receiving from keystore server: %s", io_reason());
        return -1;
    }
    len = ks_get_be32(hdr);
    if (len == 0 || len > max_frame) {
        SETERR("keystore server sent a frame of %u bytes (limit %zu): protocol error", len, max_frame);
        return -1;
    }
    buf = malloc(len);
    if (buf == NULL) {
        SETERR("out of memory for a %u-byte reply", len);
        return -1;
    }
    if (read_all(fd, buf, len) != 1) {
        SETERR("receiving from keystore server: %s", io_reason());
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

/* Unpacks a reply frame and checks it answers REQ; the one decoder of both
 * transports (socket frames here, shared-memory rings in shm.c). */
int ks_decode_reply(const Keystore__Request *req, const uint8_t *frame, size_t len,
                    Keystore__Response **resp, char *err, size_t errlen)
{
    *resp = keystore__response__unpack(NULL, len, frame);
    if (*resp == NULL) {
        SETERR("keystore server sent a reply that does not decode: protocol error");
        return -1;
    }
    if ((*resp)->id != req->id) {
        SETERR("keystore server answered request %llu with id %llu: protocol error",
               (unsigned long long)req->id, (unsigned long long)(*resp)->id);
        keystore__response__free_unpacked(*resp, NULL);
        *resp = NULL;
        return -1;
    }
    return 0;
}

int ks_call_io(const struct ks_io *io, size_t max_frame, const Keystore__Request *req,
               Keystore__Response **resp, char *err, size_t errlen)
{
    size_t len = keystore__request__get_packed_size(req);
    uint8_t stackbuf[4096];
    uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
    uint8_t *in = NULL;
    size_t inlen;
    int rc = -1;

    *resp = NULL;
    if (buf == NULL) {
        SETERR("out of memory for a %zu-byte request", len);
        return -1;
    }
    if (len > max_frame) {
        SETERR("request of %zu bytes exceeds the server's frame limit of %zu bytes", len, max_frame);
        goto out;
    }
    keystore__request__pack(req, buf);
    if (io->write_frame(io->ctx, buf, len, err, errlen) != 0)
        goto out;
    if (io->fd >= 0)
        ks_spin_wait(io->fd);
    if (io->read_frame(io->ctx, max_frame, &in, &inlen, err, errlen) != 0)
        goto out;
    if (ks_decode_reply(req, in, inlen, resp, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    if (in != NULL) {
        /* replies may carry plaintext (decrypt): wipe before freeing */
        explicit_bzero(in, inlen);
        free(in);
    }
    explicit_bzero(buf, len);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

static int fd_write(void *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    return ks_write_frame(*(int *)ctx, buf, len, err, errlen);
}

static int fd_read(void *ctx, size_t max_frame, uint8_t **out, size_t *outlen,
                   char *err, size_t errlen)
{
    return ks_read_frame(*(int *)ctx, max_frame, out, outlen, err, errlen);
}

int ks_call(int fd, size_t max_frame, const Keystore__Request *req,
            Keystore__Response **resp, char *err, size_t errlen)
{
    struct ks_io io = { fd_write, fd_read, &fd, fd };

    return ks_call_io(&io, max_frame, req, resp, err, errlen);
}

int ks_hello(int fd, const char *client_name, size_t *server_max_frame,
             char *err, size_t errlen)
{
    struct ks_io io = { fd_write, fd_read, &fd, fd };

    return ks_hello_io(&io, client_name, server_max_frame, err, errlen);
}

int ks_hello_io(const struct ks_io *io, const char *client_name, size_t *server_max_frame,
                char *err, size_t errlen)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__Hello hello = KEYSTORE__HELLO__INIT;
    Keystore__Response *resp = NULL;
    int rc = -1;

    hello.version = KS_PROTOCOL_VERSION;
    hello.client_name = (char *)client_name;
    req.id = 1;
    req.body_case = KEYSTORE__REQUEST__BODY_HELLO;
    req.hello = &hello;
    if (ks_call_io(io, KS_DEFAULT_MAX_FRAME, &req, &resp, err, errlen) != 0)
        return -1;
    rc = ks_hello_check(resp, server_max_frame, err, errlen);
    keystore__response__free_unpacked(resp, NULL);
    return rc;
}

int ks_hello_check(const Keystore__Response *resp, size_t *server_max_frame, char *err,
                   size_t errlen)
{
    size_t mf;

    if (resp->body_case == KEYSTORE__RESPONSE__BODY_ERROR && resp->error != NULL) {
        SETERR("keystore server refused the connection: %s", resp->error->message);
        return -1;
    }
    if (resp->body_case != KEYSTORE__RESPONSE__BODY_HELLO || resp->hello == NULL) {
        SETERR("keystore server answered Hello with something else: protocol error");
        return -1;
    }
    if (resp->hello->version != KS_PROTOCOL_VERSION) {
        SETERR("keystore server speaks protocol version %u, this client speaks %u",
               resp->hello->version, KS_PROTOCOL_VERSION);
        return -1;
    }
    mf = resp->hello->max_frame;
    if (mf < KS_MIN_MAX_FRAME)
        mf = KS_MIN_MAX_FRAME;
    if (mf > KS_ABS_MAX_FRAME)
        mf = KS_ABS_MAX_FRAME;
    if (server_max_frame != NULL)
        *server_max_frame = mf;
    return 0;
}

const char *ks_error_code_name(Keystore__ErrorCode code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&keystore__error_code__descriptor, code);

    return v != NULL ? v->name : "ERROR_UNKNOWN";
}

const char *ks_key_type_name(Keystore__KeyType type)
{
    switch (type) {
    case KEYSTORE__KEY_TYPE__KEY_TYPE_RSA: return "RSA";
    case KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS: return "RSA-PSS";
    case KEYSTORE__KEY_TYPE__KEY_TYPE_EC: return "EC";
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519: return "ED25519";
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED448: return "ED448";
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X25519: return "X25519";
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X448: return "X448";
    default: return "unknown";
    }
}

static const char *const usage_names[] = { "sign", "decrypt", "derive" };

int ks_usage_parse(const char *text, uint32_t *usage, char *err, size_t errlen)
{
    const char *p = text;

    *usage = 0;
    if (text == NULL || *text == '\0') {
        snprintf(err, errlen, "empty key usage: use sign, decrypt or sign,decrypt");
        return -1;
    }
    while (*p != '\0') {
        size_t n = strcspn(p, ","), i;

        for (i = 0; i < sizeof(usage_names) / sizeof(usage_names[0]); i++)
            if (strlen(usage_names[i]) == n && strncmp(p, usage_names[i], n) == 0)
                break;
        if (i == sizeof(usage_names) / sizeof(usage_names[0])) {
            snprintf(err, errlen, "unknown usage '%.*s' in '%.64s': use sign, decrypt or "
                     "sign,decrypt (derive for key agreement)", (int)(n > 32 ? 32 : n), p, text);
            return -1;
        }
        *usage |= 1u << i;
        p += n;
        if (*p == ',' && *++p == '\0') {
            snprintf(err, errlen, "key usage '%.64s' ends with a comma", text);
            return -1;
        }
    }
    return 0;
}

const char *ks_usage_format(uint32_t usage, char buf[KS_USAGE_TEXT_MAX])
{
    size_t i, off = 0;

    buf[0] = '\0';
    for (i = 0; i < sizeof(usage_names) / sizeof(usage_names[0]); i++)
        if (usage & (1u << i))
            off += (size_t)snprintf(buf + off, KS_USAGE_TEXT_MAX - off, "%s%s",
                                    off > 0 ? "," : "", usage_names[i]);
    if (off == 0)
        snprintf(buf, KS_USAGE_TEXT_MAX, "none");
    return buf;
}
