/* Client channels: unix sockets as before, TCP with the secure handshake. */
#include "channel.h"
#include "shm.h"
#include "shm_ring.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#define SETERR(...) do { if (err != NULL && errlen > 0) snprintf(err, errlen, __VA_ARGS__); } while (0)
#define HS_REPLY_MAX 4096   /* bound on what we accept as a handshake reply */

int ks_addr_is_tcp(const char *addr)
{
    return addr != NULL && strncmp(addr, "tcp:", 4) == 0;
}

int ks_addr_is_tcp_valid(const char *addr)
{
    char host[256], port[8];

    return ks_parse_tcp_addr(addr, host, sizeof(host), port, sizeof(port), NULL, 0) == 0;
}

int ks_parse_tcp_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen,
                      char *err, size_t errlen)
{
    const char *p = addr + 4, *h, *colon;
    size_t hl;

    if (!ks_addr_is_tcp(addr))
        goto bad;
    if (*p == '[') {
        h = p + 1;
        colon = strchr(h, ']');
        if (colon == NULL || colon[1] != ':')
            goto bad;
        hl = (size_t)(colon - h);
        colon++;
    } else {
        h = p;
        colon = strrchr(p, ':');
        if (colon == NULL || memchr(p, ':', (size_t)(colon - p)) != NULL)
            goto bad;   /* an IPv6 address needs brackets */
        hl = (size_t)(colon - h);
    }
    if (hl == 0 || hl >= hostlen || strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) > 65535)
        goto bad;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
bad:
    SETERR("bad keystore TCP address '%s' (expected tcp:HOST:PORT or tcp:[IPV6]:PORT)", addr);
    return -1;
}

static int set_timeouts(int fd, int timeout_ms)
{
    struct timeval tv;

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
        return -1;
    return 0;
}

static int tcp_connect(const char *addr, int timeout_ms, char *err, size_t errlen)
{
    char host[256], port[8];
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, e, one = 1, saved = 0;

    if (ks_parse_tcp_addr(addr, host, sizeof(host), port, sizeof(port), err, errlen) != 0)
        return -1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    e = getaddrinfo(host, port, &hints, &res);
    if (e != 0) {
        SETERR("keystore server unreachable at %s: cannot resolve %s: %s", addr, host,
               gai_strerror(e));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        /* SO_SNDTIMEO also bounds connect() */
        if (set_timeouts(fd, timeout_ms) == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        SETERR("keystore server unreachable at %s: %s", addr,
               saved == EINPROGRESS ? "connection timed out" : strerror(saved));
        return -1;
    }
    /* requests are small and latency-bound: do not wait to coalesce them */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        SETERR("keystore server at %s: setsockopt(TCP_NODELAY): %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int unix_write(void *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    return ks_write_frame(((struct ks_chan *)ctx)->fd, buf, len, err, errlen);
}

static int unix_read(void *ctx, size_t max_frame, uint8_t **out, size_t *outlen,
                     char *err, size_t errlen)
{
    return ks_read_frame(((struct ks_chan *)ctx)->fd, max_frame, out, outlen, err, errlen);
}

/* Milliseconds of the monotonic clock (the rekey schedule). */
static int64_t now_ms(void)
{
    return ks_mono_us() / 1000;
}

static int sec_write(void *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    struct ks_chan *ch = ctx;
    size_t total = KS_FRAME_HEADER + len + KS_SEC_TAG;
    uint8_t *frame, marker[KS_FRAME_HEADER + KS_SEC_TAG];
    int rc;

    if (len == 0 || len > KS_TCP_MAX_PLAINTEXT) {
        SETERR("request of %zu bytes exceeds the TCP channel's limit of %d bytes", len,
               KS_TCP_MAX_PLAINTEXT);
        return -1;
    }
    /* our sending key is due for Rekey(): tell the server first */
    if (ks_sec_rekey_due(&ch->sec, now_ms())) {
        if (ks_sec_seal_rekey(&ch->sec, marker, now_ms()) != 0) {
            SETERR("rekeying the keystore TCP channel failed");
            return -1;
        }
        if (ks_write_frame(ch->fd, marker + KS_FRAME_HEADER, KS_SEC_TAG, err, errlen) != 0)
            return -1;
    }
    frame = malloc(total);
    if (frame == NULL) {
        SETERR("out of memory for a %zu-byte request", len);
        return -1;
    }
    if (ks_sec_seal(&ch->sec, buf, len, frame) != 0) {
        SETERR("encrypting a request failed (too many frames on one connection?)");
        free(frame);
        return -1;
    }
    rc = ks_write_frame(ch->fd, frame + KS_FRAME_HEADER, len + KS_SEC_TAG, err, errlen);
    free(frame);   /* ciphertext only: nothing to wipe */
    return rc;
}

static int sec_read(void *ctx, size_t max_frame, uint8_t **out, size_t *outlen,
                    char *err, size_t errlen)
{
    struct ks_chan *ch = ctx;
    uint8_t *ct = NULL, *pt;
    size_t ctlen;
    int r;

    *out = NULL;
    *outlen = 0;
    if (max_frame > KS_TCP_MAX_PLAINTEXT)
        max_frame = KS_TCP_MAX_PLAINTEXT;
    for (;;) {
        if (ks_read_frame(ch->fd, max_frame + KS_SEC_TAG, &ct, &ctlen, err, errlen) != 0)
            return -1;
        if (ctlen < KS_SEC_TAG || (pt = malloc(ctlen - KS_SEC_TAG + 1)) == NULL) {
            SETERR("keystore server sent a %zu-byte encrypted frame: protocol error", ctlen);
            free(ct);
            return -1;
        }
        r = ks_sec_open(&ch->sec, ct, ctlen, pt);
        free(ct);
        if (r < 0) {
            SETERR("a reply from the keystore server failed authentication (tampered, replayed "
                   "or reordered on the network): connection dropped");
            free(pt);
            return -1;
        }
        if (r == 0)
            break;
        free(pt);   /* a rekey marker: the server's next frame uses the new key */
    }
    *out = pt;
    *outlen = ctlen - KS_SEC_TAG;
    return 0;
}

/* KEYSTORE_REKEY_FRAMES: rekey our sending key after this many frames
 * instead of KS_REKEY_FRAMES_DEFAULT (tests force frequent rekeys). */
static uint64_t rekey_frames(void)
{
    const char *v = secure_getenv("KEYSTORE_REKEY_FRAMES");   /* not for set-user-ID programs */
    char *end = NULL;
    unsigned long long n;

    if (v == NULL || *v == '\0')
        return KS_REKEY_FRAMES_DEFAULT;
    n = strtoull(v, &end, 10);
    return end != NULL && *end == '\0' && n > 0 ? (uint64_t)n : KS_REKEY_FRAMES_DEFAULT;
}

/* Handshake; on failure explains what the operator should check. */
static int handshake(struct ks_chan *ch, const char *addr, const struct ks_chan_opts *o,
                     enum ks_chan_failure *why, char *err, size_t errlen)
{
    uint8_t csk[32], cpk[32], spk[32], msg1[KS_HS1_LEN], ts[KS_TAI64N_LEN], sts[KS_TAI64N_LEN];
    uint8_t *msg2 = NULL;
    char cpk64[KS_PUBKEY_B64_LEN + 1], kerr[KS_ERRLEN];
    struct ks_noise_hs hs;
    size_t len = 0;
    int64_t server_ns = 0;
    int st, rc = -1;

    memset(&hs, 0, sizeof(hs));
    *why = KS_CHAN_CONFIG;       /* until the first byte is sent: this client's settings */
    if (o == NULL || o->server_pubkey == NULL || o->server_pubkey[0] == '\0') {
        SETERR("keystore server %s is a TCP address, so its public key must be pinned: set "
               "server_public_key in the provider's openssl.cnf section or KEYSTORE_SERVER_PUBKEY "
               "(keystored prints it at start-up)", addr);
        return -1;
    }
    if (ks_pubkey_parse(o->server_pubkey, spk) != 0) {
        SETERR("the pinned keystore server public key '%.80s' is not 44 base64 or 64 hex "
               "characters", o->server_pubkey);
        return -1;
    }
    if (o->client_key_path == NULL || o->client_key_path[0] == '\0') {
        SETERR("keystore server %s is a TCP address, so a client key is needed: set client_key "
               "in the provider's openssl.cnf section or KEYSTORE_CLIENT_KEY (create one with "
               "keystorectl client-keygen NAME -o FILE)", addr);
        return -1;
    }
    if (ks_keyfile_read(o->client_key_path, csk, cpk, kerr, sizeof(kerr)) != 0) {
        SETERR("keystore client key: %s", kerr);
        return -1;
    }
    ks_pubkey_format(cpk, cpk64);
    ks_tai64n_now(ts);
    if (ks_hs_client_start(&hs, csk, spk, ts, msg1) != 0) {
        SETERR("keystore TCP handshake with %s: key agreement failed (is the pinned server "
               "key a valid X25519 key?)", addr);
        goto out;
    }
    *why = KS_CHAN_UNREACHABLE;
    if (ks_write_frame(ch->fd, msg1, sizeof(msg1), err, errlen) != 0)
        goto out;
    if (ks_read_frame(ch->fd, HS_REPLY_MAX, &msg2, &len, kerr, sizeof(kerr)) != 0) {
        SETERR("keystore server at %s closed the connection during the TCP handshake (%s): "
               "most likely the pinned server public key is not this server's (compare it "
               "with the key keystored prints at start-up), or the server speaks another "
               "channel version", addr, kerr);
        goto out;
    }
    *why = KS_CHAN_PROTOCOL;
    if (len != KS_HS2_LEN && len != KS_HS_NOTICE_LEN) {
        SETERR("keystore server at %s sent a %zu-byte handshake reply (expected %d): not a "
               "keystored TCP listener of this version?", addr, len, KS_HS2_LEN);
        goto out;
    }
    st = ks_hs_client_finish(&hs, msg2, len, &ch->sec, sts);
    switch (st) {
    case KS_HS_ACCEPT:
        ks_sec_set_rekey(&ch->sec, rekey_frames(), (int64_t)KS_REKEY_SECONDS_DEFAULT * 1000,
                         now_ms());
        rc = 0;
        break;
    case KS_HS_UNKNOWN_CLIENT:
        *why = KS_CHAN_REFUSED;
        SETERR("keystore server at %s refused this client: its public key %s (from %s) is "
               "not in the server's authorized clients file; add a line 'NAME %s' there",
               addr, cpk64, o->client_key_path, cpk64);
        break;
    case KS_HS_BUSY:
        *why = KS_CHAN_REFUSED;
        SETERR("keystore server at %s refused this client (key %s): it already has "
               "max_connections_per_client connections open", addr, cpk64);
        break;
    case KS_HS_STALE:
        *why = KS_CHAN_REFUSED;
        ks_tai64n_to_unix_ns(sts, &server_ns);
        SETERR("keystore server at %s refused our handshake timestamp: this host's clock "
               "differs from the server's by %.1f s (more than its tcp_max_clock_skew, or the "
               "server restarted less than that ago and our clock is behind); synchronize "
               "the clocks (NTP)", addr, (double)(ks_wall_ns() - server_ns) / 1e9);
        break;
    case KS_HS_UNDECRYPTABLE:
        *why = KS_CHAN_AUTH;
        SETERR("keystore server at %s could not decrypt our handshake: the pinned server "
               "public key is not this server's; compare it with the key keystored prints at "
               "start-up", addr);
        break;
    default:
        *why = KS_CHAN_AUTH;
        SETERR("keystore server at %s failed to prove that it holds the pinned server key: "
               "wrong server_public_key/KEYSTORE_SERVER_PUBKEY, or someone in between; "
               "refusing to use it", addr);
        break;
    }
out:
    ks_noise_hs_wipe(&hs);
    sodium_memzero(csk, sizeof(csk));
    free(msg2);
    return rc;
}

struct ks_chan *ks_chan_connect(const char *addr, const struct ks_chan_opts *opts,
                                int timeout_ms, char *err, size_t errlen)
{
    enum ks_chan_failure why;

    return ks_chan_connect_ex(addr, opts, timeout_ms, &why, err, errlen);
}

struct ks_chan *ks_chan_connect_ex(const char *addr, const struct ks_chan_opts *opts,
                                   int timeout_ms, enum ks_chan_failure *why,
                                   char *err, size_t errlen)
{
    struct ks_chan *ch = calloc(1, sizeof(*ch));

    *why = KS_CHAN_UNREACHABLE;
    if (ch == NULL) {
        SETERR("out of memory for a keystore connection");
        return NULL;
    }
    ch->io.ctx = ch;
    ch->io.fd = -1;
    if (ks_addr_is_tcp(addr)) {
        ch->fd = tcp_connect(addr, timeout_ms, err, errlen);
        if (ch->fd < 0 && !ks_addr_is_tcp_valid(addr))
            *why = KS_CHAN_CONFIG;
        if (ch->fd < 0 || handshake(ch, addr, opts, why, err, errlen) != 0) {
            ks_chan_close(ch);
            return NULL;
        }
        ch->secure = 1;
        ch->io.fd = ch->fd;
        ch->io.write_frame = sec_write;
        ch->io.read_frame = sec_read;
    } else {
        ch->fd = ks_connect(addr, timeout_ms, err, errlen);
        if (ch->fd < 0) {
            ks_chan_close(ch);
            return NULL;
        }
        ch->io.fd = ch->fd;
        ch->io.write_frame = unix_write;
        ch->io.read_frame = unix_read;
        ch->want_shm = opts != NULL && opts->shm;
    }
    return ch;
}

int ks_chan_call(struct ks_chan *ch, size_t max_frame, const Keystore__Request *req,
                 Keystore__Response **resp, char *err, size_t errlen)
{
    if (ch->shm != NULL)
        return ks_shm_call(ch->shm, ch->fd, max_frame, req, resp, err, errlen);
    return ks_call_io(&ch->io, max_frame, req, resp, err, errlen);
}

/* Unix: offer the rings; a server that does not map them (an older one,
 * shared_memory = no, a frame limit above the ring) keeps the socket path. */
int ks_chan_hello(struct ks_chan *ch, const char *client_name, size_t *server_max_frame,
                  char *err, size_t errlen)
{
    struct ks_shm *m;
    int accepted;

    if (!ch->want_shm || ch->secure)
        return ks_hello_io(&ch->io, client_name, server_max_frame, err, errlen);
    m = ks_shm_create(KS_SHM_DEFAULT_RING, NULL, 0);
    if (m == NULL)   /* no memfd here (old kernel, seccomp): the socket works */
        return ks_hello_io(&ch->io, client_name, server_max_frame, err, errlen);
    if (ks_shm_hello(ch->fd, m, client_name, server_max_frame, &accepted, err, errlen) != 0) {
        ks_shm_free(m);
        return -1;
    }
    if (accepted)
        ch->shm = m;
    else
        ks_shm_free(m);
    return 0;
}

void ks_chan_close(struct ks_chan *ch)
{
    if (ch == NULL)
        return;
    ks_shm_free(ch->shm);
    if (ch->fd >= 0)
        close(ch->fd);
    sodium_memzero(ch, sizeof(*ch));
    free(ch);
}
