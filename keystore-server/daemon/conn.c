/* Connection framing and buffering; see conn.h. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "client_limit.h"
#include "common/log.h"
#include "conn_shm.h"
#include "conn_tcp.h"
#include "ops/dispatch.h"
#include "server.h"

#define IN_INITIAL 4096
/* Stop reading new requests while this much reply data is unsent, so a
 * client that pipelines without reading cannot make us buffer without bound. */
#define OUT_HIGH_WATER (256 * 1024)

struct ks_conn *ks_conn_new(int fd, int is_admin, unsigned long id, int64_t now)
{
    struct ks_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->kind = KS_ITEM_CONN;
    c->fd = fd;
    c->shm_fd = -1;
    c->s.id = id;
    c->s.is_admin = is_admin;
    c->last_request = now;
    return c;
}

void ks_conn_free(struct ks_conn *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    ks_limit_release(&c->s);
    ks_conn_tcp_free(c->tcp);
    ks_conn_shm_free(c);
    ks_conn_wipe_free(&c->in, c->in_cap);
    ks_conn_wipe_free(&c->out, c->out_cap);
    free(c);
}

static size_t out_pending(const struct ks_conn *c)
{
    return c->out_len - c->out_off;
}

/* Length of the frame at the head of the input, or 0 if the header is incomplete. */
static uint32_t head_len(const struct ks_conn *c)
{
    return c->in_len >= KS_FRAME_HEADER ? ks_get_be32(c->in) : 0;
}

static int has_complete_frame(const struct ks_conn *c)
{
    uint32_t len = head_len(c);

    return len > 0 && c->in_len >= KS_FRAME_HEADER + (size_t)len;
}

uint32_t ks_conn_wanted_events(const struct ks_conn *c)
{
    uint32_t ev = 0;

    if (!c->eof && !c->closing && out_pending(c) < OUT_HIGH_WATER)
        ev |= EPOLLIN;
    if (out_pending(c) > 0)
        ev |= EPOLLOUT;
    return ev;
}

/* Largest frame body accepted now (TCP: conn_tcp.c decides). */
static size_t frame_limit(const struct ks_config *cfg, const struct ks_conn *c)
{
    return c->tcp != NULL ? ks_conn_tcp_max_len(cfg, c->tcp) : cfg->max_frame;
}

/* Append one packed reply frame to the output buffer. */
static int queue_reply(struct ks_conn *c, const Keystore__Response *resp)
{
    size_t size = keystore__response__get_packed_size(resp);
    size_t need = KS_FRAME_HEADER + size;

    if (ks_conn_out_reserve(c, need) == NULL)
        return -1;
    ks_put_be32(c->out + c->out_len, (uint32_t)size);
    keystore__response__pack(resp, c->out + c->out_len + KS_FRAME_HEADER);
    c->out_len += need;
    return 0;
}

/* Drop the processed frame at the head of the input and wipe its bytes. */
static void consume(struct ks_conn *c, size_t n)
{
    size_t rest = c->in_len - n;

    memmove(c->in, c->in + n, rest);
    sodium_memzero(c->in + rest, n);
    c->in_len = rest;
}

static enum ks_conn_state process_frames(const struct ks_config *cfg, struct ks_conn *c, int64_t now)
{
    while (!c->closing && out_pending(c) < OUT_HIGH_WATER && c->in_len >= KS_FRAME_HEADER) {
        uint32_t len = head_len(c);
        Keystore__Response resp = KEYSTORE__RESPONSE__INIT;
        struct ks_arena arena = KS_ARENA_INIT;
        enum ks_after after;
        int r;

        /* TCP: a first frame that is not a handshake is refused on its header */
        if (c->tcp != NULL && ks_conn_tcp_header(c, len) != 0)
            return KS_CONN_CLOSE;
        if (len == 0 || len > frame_limit(cfg, c)) {
            /* no reply: the peer is not speaking our framing */
            if (len == 0)
                ks_log("conn %lu uid %u pid %d: empty frame (length 0); closing the connection",
                       c->s.id, (unsigned)c->s.uid, (int)c->s.pid);
            else
                ks_log("conn %lu uid %u pid %d: frame of %u bytes exceeds limit of %zu; "
                       "closing the connection", c->s.id, (unsigned)c->s.uid, (int)c->s.pid,
                       len, frame_limit(cfg, c));
            return KS_CONN_CLOSE;
        }
        if (c->in_len < KS_FRAME_HEADER + (size_t)len)
            break;
        if (c->tcp != NULL) {
            /* handshake, or decrypt / handle / encrypt (conn_tcp.c) */
            if (ks_conn_tcp_frame(cfg, c, c->in + KS_FRAME_HEADER, len) != 0)
                return KS_CONN_CLOSE;
            consume(c, KS_FRAME_HEADER + (size_t)len);
            c->last_request = now;
            c->partial_since = 0;
            continue;
        }
        after = ks_handle_frame(cfg, &c->s, c->in + KS_FRAME_HEADER, len, &arena, &resp);
        if (resp.body_case == KEYSTORE__RESPONSE__BODY_HELLO && resp.hello != NULL)
            ks_conn_shm_accept(cfg, c, resp.hello);
        r = queue_reply(c, &resp);
        ks_arena_free(&arena);
        consume(c, KS_FRAME_HEADER + (size_t)len);
        c->last_request = now;
        c->partial_since = 0;
        if (r != 0) {
            ks_log("conn %lu: out of memory queueing a reply; closing the connection", c->s.id);
            return KS_CONN_CLOSE;
        }
        if (after == KS_CLOSE_AFTER_REPLY)
            c->closing = 1;
        if (c->shm != NULL) {
            /* from now on requests come through the rings; the socket
             * carries doorbell bytes only */
            sodium_memzero(c->in, c->in_cap);
            c->in_len = 0;
            break;
        }
    }
    if (c->closing) {
        /* nothing more is read or answered on this connection */
        sodium_memzero(c->in, c->in_cap);
        c->in_len = 0;
    }
    if (c->in_len == 0) {
        ks_conn_wipe_free(&c->in, c->in_cap);
        c->in_cap = 0;
        c->partial_since = 0;
    } else if (!has_complete_frame(c) && c->partial_since == 0) {
        c->partial_since = now;
    }
    return KS_CONN_OK;
}

static enum ks_conn_state flush_out(struct ks_conn *c)
{
    while (out_pending(c) > 0) {
        ssize_t w = c->sink != NULL
                    ? c->sink(c->sink_arg, c->out + c->out_off, out_pending(c))
                    : send(c->fd, c->out + c->out_off, out_pending(c), MSG_NOSIGNAL | MSG_DONTWAIT);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return KS_CONN_OK;
            if (errno != EPIPE && errno != ECONNRESET)
                ks_log("conn %lu: send: %s; closing the connection", c->s.id, strerror(errno));
            return KS_CONN_CLOSE;
        }
        c->out_off += (size_t)w;
    }
    /* everything sent: wipe (replies may carry plaintext) and release */
    ks_conn_wipe_free(&c->out, c->out_cap);
    c->out_cap = c->out_len = c->out_off = 0;
    return KS_CONN_OK;
}

/* Common tail of both handlers: answer what we can, send, decide about closing. */
static enum ks_conn_state progress(const struct ks_config *cfg, struct ks_conn *c, int64_t now)
{
    if (process_frames(cfg, c, now) != KS_CONN_OK || flush_out(c) != KS_CONN_OK)
        return KS_CONN_CLOSE;
    /* replies can free up room for more pipelined requests already buffered */
    while (!c->closing && has_complete_frame(c) && out_pending(c) < OUT_HIGH_WATER) {
        if (process_frames(cfg, c, now) != KS_CONN_OK || flush_out(c) != KS_CONN_OK)
            return KS_CONN_CLOSE;
        if (out_pending(c) > 0)
            break;   /* socket full: wait for EPOLLOUT */
    }
    if (out_pending(c) == 0 && (c->closing || (c->eof && !has_complete_frame(c))))
        return KS_CONN_CLOSE;
    return KS_CONN_OK;
}

/* Make room to receive: a small buffer until the frame length is known,
 * then exactly one (bounded) frame's worth. */
static int ensure_in_space(const struct ks_config *cfg, struct ks_conn *c)
{
    size_t want = IN_INITIAL;
    uint32_t len = head_len(c);
    uint8_t *nb;

    /* never more than the largest frame allowed now (a TCP peer before the
     * handshake gets room for message 1 only) */
    if (KS_FRAME_HEADER + frame_limit(cfg, c) < want)
        want = KS_FRAME_HEADER + frame_limit(cfg, c);

    if (c->in_len >= KS_FRAME_HEADER && len > 0 && len <= frame_limit(cfg, c) &&
        KS_FRAME_HEADER + (size_t)len > want)
        want = KS_FRAME_HEADER + (size_t)len;
    if (c->in_cap >= want)
        return 0;   /* room to read, or full of complete frames to process first */
    nb = malloc(want);
    if (nb == NULL)
        return -1;
    if (c->in_len > 0)
        memcpy(nb, c->in, c->in_len);
    ks_conn_wipe_free(&c->in, c->in_cap);
    c->in = nb;
    c->in_cap = want;
    return 0;
}

/* Account for r bytes just placed after c->in_len (0: the peer closed). */
static void received(struct ks_conn *c, size_t r)
{
    if (r == 0) {
        c->eof = 1;
        if (c->in_len > 0 && !has_complete_frame(c) && !c->closing)
            ks_log("conn %lu: peer closed in the middle of a frame", c->s.id);
    } else {
        c->in_len += r;
    }
}

/* A connection on the rings: the socket only rings the doorbell (any bytes)
 * or reports the client's end. */
static enum ks_conn_state shm_readable(const struct ks_config *cfg, struct ks_conn *c, int64_t now)
{
    uint8_t bell[256];
    int served, i;

    if (flush_out(c) != KS_CONN_OK)   /* the HelloReply may still be queued */
        return KS_CONN_CLOSE;
    for (i = 0; i < 4; i++) {
        ssize_t r = recv(c->fd, bell, sizeof(bell), MSG_DONTWAIT);

        if (r == 0)
            return KS_CONN_CLOSE;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return KS_CONN_CLOSE;
        }
        if ((size_t)r < sizeof(bell))
            break;
    }
    if (ks_conn_shm_serve(cfg, c, now, &served) != KS_CONN_OK)
        return KS_CONN_CLOSE;
    return flush_out(c);
}

enum ks_conn_state ks_conn_readable(const struct ks_config *cfg, struct ks_conn *c, int64_t now)
{
    ssize_t r;

    if (c->shm != NULL)
        return shm_readable(cfg, c, now);
    if (c->eof || c->closing)
        return progress(cfg, c, now);
    if (ensure_in_space(cfg, c) != 0) {
        ks_log("conn %lu: out of memory for a receive buffer; closing the connection", c->s.id);
        return KS_CONN_CLOSE;
    }
    if (c->in_len < c->in_cap) {
        do {
            /* until Hello, a Unix peer may send the memfd of its rings */
            if (!c->s.hello_done && c->tcp == NULL && c->sink == NULL && cfg->shared_memory)
                r = ks_conn_shm_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
            else
                r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                if (errno != ECONNRESET)
                    ks_log("conn %lu: recv: %s; closing the connection", c->s.id, strerror(errno));
                return KS_CONN_CLOSE;
            }
        } else {
            received(c, (size_t)r);
        }
    }
    return progress(cfg, c, now);
}

enum ks_conn_state ks_conn_feed(const struct ks_config *cfg, struct ks_conn *c,
                                const uint8_t *data, size_t len, size_t *taken, int64_t now)
{
    size_t n = 0;

    *taken = 0;
    if (c->eof || c->closing)
        return progress(cfg, c, now);
    if (ensure_in_space(cfg, c) != 0) {
        ks_log("conn %lu: out of memory for a receive buffer; closing the connection", c->s.id);
        return KS_CONN_CLOSE;
    }
    if (len == 0) {
        received(c, 0);
    } else if (c->in_len < c->in_cap) {
        n = c->in_cap - c->in_len < len ? c->in_cap - c->in_len : len;
        memcpy(c->in + c->in_len, data, n);
        received(c, n);
    }
    *taken = n;
    return progress(cfg, c, now);
}

enum ks_conn_state ks_conn_writable(const struct ks_config *cfg, struct ks_conn *c, int64_t now)
{
    if (flush_out(c) != KS_CONN_OK)
        return KS_CONN_CLOSE;
    return progress(cfg, c, now);
}

int ks_conn_timed_out(const struct ks_config *cfg, const struct ks_conn *c, int64_t now)
{
    if (ks_conn_tcp_timed_out(cfg, c, now))
        return 1;
    if (c->partial_since != 0 && now - c->partial_since >= (int64_t)cfg->frame_timeout * 1000) {
        ks_log("conn %lu uid %u pid %d: a partial frame was not completed within %d s; "
               "closing the connection", c->s.id, (unsigned)c->s.uid, (int)c->s.pid,
               cfg->frame_timeout);
        return 1;
    }
    if (now - c->last_request >= (int64_t)cfg->idle_timeout * 1000) {
        ks_log("conn %lu uid %u pid %d: no complete request for %d s; closing the connection",
               c->s.id, (unsigned)c->s.uid, (int)c->s.pid, cfg->idle_timeout);
        return 1;
    }
    return 0;
}
