/* Audit log: one line per request and per TCP handshake, written with a
 * single write(2) on an O_APPEND descriptor opened before confinement:
 *   TIME conn=N id=IDENTITY peer=ADDR op=OP key=NAME result=RESULT latency_us=N
 * It never contains key material, digests, signatures or plaintext. */
#ifndef KS_AUDIT_H
#define KS_AUDIT_H

#include <stdint.h>

#include "common/config.h"
#include "session.h"
#include "wire.h"

/* Open cfg->audit_log ("stderr" or a path; "" = off).  0 or -1 after logging. */
int ks_audit_open(const struct ks_config *cfg);
void ks_audit_close(void);

/* Monotonic nanoseconds, for latency. */
int64_t ks_audit_clock(void);

/* One request: operation and key from req, result from resp. */
void ks_audit_request(const struct ks_session *s, const Keystore__Request *req,
                      const Keystore__Response *resp, int64_t start);

/* Anything else (a TCP handshake): op and result as given. */
void ks_audit_event(const struct ks_session *s, const char *op, const char *result, int64_t start);

#endif
