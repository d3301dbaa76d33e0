/* Request handling: one frame in, one Response out.  Transport-agnostic so
 * the same code serves the client and admin sockets. */
#ifndef KS_DISPATCH_H
#define KS_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/arena.h"
#include "common/config.h"
#include "session.h"
#include "wire.h"

#define KS_SERVER_VERSION "keystored 0.1.0"

enum ks_after {
    KS_KEEP_OPEN = 0,
    KS_CLOSE_AFTER_REPLY,      /* protocol violation: send the reply, then close */
};

/* Handle one frame.  resp must be KEYSTORE__RESPONSE__INIT; everything it
 * points to is allocated in arena (free it after packing).  The reply is
 * guaranteed to fit in cfg->max_frame. */
enum ks_after ks_handle_frame(const struct ks_config *cfg, struct ks_session *s,
                              const uint8_t *frame, size_t len,
                              struct ks_arena *arena, Keystore__Response *resp);

#endif
