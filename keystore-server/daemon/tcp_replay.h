/* Freshness of TCP handshake message 1 (docs/protocol.md, "Replayed
 * message 1"): its TAI64N timestamp must be newer than the last one
 * accepted for that client key (allowing concurrent connections to arrive
 * out of order, never twice the same: tcp_replay.c), not older than this
 * server's start, and within tcp_max_clock_skew of our clock.  Shared by
 * all workers. */
#ifndef KS_TCP_REPLAY_H
#define KS_TCP_REPLAY_H

#include <stdint.h>

#include "secure.h"

enum ks_ts_verdict {
    KS_TS_FRESH = 0,
    KS_TS_REPLAYED,        /* already accepted for this key, or older than it remembers */
    KS_TS_BEFORE_START,    /* older than this server's start: maybe recorded earlier */
    KS_TS_SKEW,            /* too far from our clock either way */
    KS_TS_INVALID,         /* not a TAI64N label */
};

/* Remember the start time (wall clock); called once at start-up. */
void ks_tcp_replay_start(void);

/* Check ts for client key pk at wall time now_ns; a fresh one becomes the
 * new high-water mark for pk.  *delta_ms receives ts - now. */
enum ks_ts_verdict ks_tcp_replay_check(const uint8_t pk[KS_X25519_LEN],
                                       const uint8_t ts[KS_TAI64N_LEN], int64_t now_ns,
                                       int64_t max_skew_ns, int64_t *delta_ms);

#endif
