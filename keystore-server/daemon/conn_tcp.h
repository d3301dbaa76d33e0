/* The server side of the TCP secure channel (docs/protocol.md) for one
 * connection: the handshake frame, then decrypting requests and
 * encrypting replies around ks_handle_frame. */
#ifndef KS_CONN_TCP_H
#define KS_CONN_TCP_H

#include <stdint.h>

#include "common/config.h"

struct ks_conn;
struct ks_tcp;

/* Set up a freshly accepted TCP connection (TCP_NODELAY, peer address,
 * handshake state).  0 or -1 after logging. */
int ks_conn_tcp_init(struct ks_conn *c);

/* Handle one complete frame (header at frame - 4).  Queues the reply and
 * may set c->closing.  Returns 0, or -1 to close at once without a reply
 * (a frame that fails authentication, or out of memory). */
int ks_conn_tcp_frame(const struct ks_config *cfg, struct ks_conn *c, const uint8_t *frame,
                      uint32_t len);

/* Wipe and free the channel state. */
void ks_conn_tcp_free(struct ks_tcp *t);

#endif
