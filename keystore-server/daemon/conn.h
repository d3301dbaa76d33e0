/* One client connection: non-blocking framing, request processing and
 * buffered replies.  A connection is only ever touched by the worker
 * thread that owns it. */
#ifndef KS_CONN_H
#define KS_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "ops.h"

/* Where replies go: send(2) on fd unless a sink is set (the fuzz harness
 * collects them in memory).  Same contract as send: bytes taken or -1. */
typedef ssize_t (*ks_conn_sink)(void *arg, const uint8_t *buf, size_t len);

struct ks_conn {
    int kind;                 /* KS_ITEM_CONN; first so epoll data can be typed */
    int fd;
    struct ks_session s;
    uint8_t *in;              /* received, unprocessed bytes [0, in_len) */
    size_t in_len, in_cap;
    uint8_t *out;             /* replies not yet sent [out_off, out_len) */
    size_t out_off, out_len, out_cap;
    int64_t last_request;      /* monotonic ms: accept or last complete frame */
    int64_t partial_since;     /* when the pending partial frame started, 0 if none */
    int eof;                  /* peer shut down its sending side */
    int closing;              /* protocol error: reply, then close */
    uint32_t events;          /* epoll interest currently registered */
    ks_conn_sink sink;        /* NULL: send on fd */
    void *sink_arg;
    struct ks_tcp *tcp;       /* TCP secure channel state (conn_tcp.c); NULL on Unix sockets */
    struct ks_conn *prev, *next;  /* the owning worker's list */
};

/* Result of an event handler. */
enum ks_conn_state { KS_CONN_OK = 0, KS_CONN_CLOSE };

struct ks_conn *ks_conn_new(int fd, int is_admin, unsigned long id, int64_t now);
void ks_conn_free(struct ks_conn *c);   /* closes fd, wipes buffers */

/* Handle readiness; they read, process complete frames, and send. */
enum ks_conn_state ks_conn_readable(const struct ks_config *cfg, struct ks_conn *c, int64_t now);
enum ks_conn_state ks_conn_writable(const struct ks_config *cfg, struct ks_conn *c, int64_t now);

/* What ks_conn_readable does with bytes from recv(2), for bytes handed in
 * by a caller without a socket (the fuzz harness): len 0 means the peer
 * closed.  *taken receives how many bytes were buffered (fewer than len
 * while complete frames wait for their replies to drain). */
enum ks_conn_state ks_conn_feed(const struct ks_config *cfg, struct ks_conn *c,
                                const uint8_t *data, size_t len, size_t *taken, int64_t now);
/* Room for need more bytes at c->out + c->out_len (the caller fills them
 * and advances out_len), or NULL when out of memory. */
uint8_t *ks_conn_out_reserve(struct ks_conn *c, size_t need);

/* The epoll events the connection wants now (EPOLLIN and/or EPOLLOUT). */
uint32_t ks_conn_wanted_events(const struct ks_conn *c);

/* 1 (and a log line) if the connection exceeded idle or frame timeouts. */
int ks_conn_timed_out(const struct ks_config *cfg, const struct ks_conn *c, int64_t now);

#endif
