/* One client connection: non-blocking framing, request processing and
 * buffered replies.  A connection is only ever touched by the worker
 * thread that owns it. */
#ifndef KS_CONN_H
#define KS_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "conn_buf.h"

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
/* The epoll events the connection wants now (EPOLLIN and/or EPOLLOUT). */
uint32_t ks_conn_wanted_events(const struct ks_conn *c);

/* 1 (and a log line) if the connection exceeded idle or frame timeouts. */
int ks_conn_timed_out(const struct ks_config *cfg, const struct ks_conn *c, int64_t now);

#endif
