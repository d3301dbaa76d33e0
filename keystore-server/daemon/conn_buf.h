/* The state of one client connection and its reply buffer: what both the
 * framing (conn.c) and the TCP channel (conn_tcp.c) work on, kept below
 * both so neither includes the other's header for it. */
#ifndef KS_CONN_BUF_H
#define KS_CONN_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ops/session.h"

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
    int shm_fd;               /* memfd received with Hello, -1 if none (conn_shm.c) */
    uint8_t *shm;             /* the mapped rings once accepted, else NULL */
    size_t shm_len;
    uint32_t shm_ring;
    uint32_t shm_req_tail;    /* our own indices: never read back from shared memory */
    uint32_t shm_rep_head;
    int shm_counted;          /* counted in its worker's shared-memory connections */
    struct ks_conn *prev, *next;  /* the owning worker's list */
};

/* Room for need more bytes at c->out + c->out_len (the caller fills them
 * and advances out_len), or NULL when out of memory. */
uint8_t *ks_conn_out_reserve(struct ks_conn *c, size_t need);

/* Wipe (buffers may hold plaintext) and free *buf of cap bytes; NULLs it. */
void ks_conn_wipe_free(uint8_t **buf, size_t cap);

#endif
