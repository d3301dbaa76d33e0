/* The server side of the TCP secure channel (docs/protocol.md) for one
 * connection: the handshake frame, key confirmation, then decrypting
 * requests and encrypting replies around ks_handle_frame. */
#ifndef KS_CONN_TCP_H
#define KS_CONN_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

struct ks_conn;
struct ks_tcp;

/* Set up a freshly accepted TCP connection (peer address, the
 * max_unauthenticated_per_address count, TCP_NODELAY).  0 or -1 after
 * logging; on -1 the caller frees c (which releases what was counted). */
int ks_conn_tcp_init(const struct ks_config *cfg, struct ks_conn *c, int64_t now);

/* Largest frame body accepted now: exactly message 1 before the handshake,
 * then min(max_frame, 65519) + 16. */
size_t ks_conn_tcp_max_len(const struct ks_config *cfg, const struct ks_tcp *t);

/* Called as soon as a frame header is in: -1 (logged) if the first frame
 * does not have message 1's length, so nothing is buffered for it. */
int ks_conn_tcp_header(struct ks_conn *c, uint32_t len);

/* 1 (and a log line) if the connection is not established handshake_timeout
 * seconds after accept. */
int ks_conn_tcp_timed_out(const struct ks_config *cfg, const struct ks_conn *c, int64_t now);

/* Handle one complete frame (header at frame - 4).  Queues the reply and
 * may set c->closing.  Returns 0, or -1 to close at once without a reply
 * (a frame that fails authentication, or out of memory). */
int ks_conn_tcp_frame(const struct ks_config *cfg, struct ks_conn *c, const uint8_t *frame,
                      uint32_t len);

/* Wipe and free the channel state. */
void ks_conn_tcp_free(struct ks_tcp *t);

#endif
