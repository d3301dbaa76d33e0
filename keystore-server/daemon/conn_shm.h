/* The server side of the shared-memory fast path (layout and rules:
 * proto/shm_ring.h, docs/protocol.md "Shared-memory rings").  Everything in
 * the mapping is written by the client at any moment: each request is copied
 * out (its length read once, bounded) before it is parsed, no index read from
 * the mapping is trusted, and a worker serves at most a small budget of
 * requests per visit before it returns to epoll. */
#ifndef KS_CONN_SHM_H
#define KS_CONN_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "conn.h"
#include "keystore.pb-c.h"

/* Requests served per connection per visit. */
#define KS_SHM_BUDGET 8

/* recv(2) for a Unix connection before its Hello: also takes the descriptors
 * sent with SCM_RIGHTS, keeping the first in c->shm_fd and closing the rest. */
ssize_t ks_conn_shm_recv(struct ks_conn *c, uint8_t *buf, size_t len);

/* After Hello was answered into hr: map the rings if the client offered them
 * and they pass every check (fills hr->shm, or hr->shm_refused and a log line).
 * The received descriptor is closed either way. */
void ks_conn_shm_accept(const struct ks_config *cfg, struct ks_conn *c, Keystore__HelloReply *hr);

/* Serve up to KS_SHM_BUDGET requests from the rings; *served counts them.
 * KS_CONN_CLOSE on a protocol violation (logged) or a closing request. */
enum ks_conn_state ks_conn_shm_serve(const struct ks_config *cfg, struct ks_conn *c, int64_t now,
                                     int *served);

/* 1 if a request is waiting in the ring (an index moved). */
int ks_conn_shm_pending(const struct ks_conn *c);

/* The worker says whether it may block in epoll_wait (then a client rings
 * the socket after queueing a request). */
void ks_conn_shm_sleeping(struct ks_conn *c, int sleeping);

/* Unmap, close the descriptor; wipes what is ours. */
void ks_conn_shm_free(struct ks_conn *c);

#endif
