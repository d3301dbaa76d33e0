/* Logging to stderr, one line per event, prefixed "keystored: " (after a
 * UTC timestamp unless systemd's journal reads stderr and stamps lines).
 * Lines are written with a single write(2) so concurrent workers never
 * interleave.  Never pass key material to these functions. */
#ifndef KS_LOG_H
#define KS_LOG_H

#include <stddef.h>

void ks_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Decide whether lines carry a UTC timestamp (not when systemd's journal,
 * which stamps them itself, reads stderr: JOURNAL_STREAM).  Called at
 * start-up; ks_log calls it on first use otherwise. */
void ks_log_init(void);

/* Copy at most outlen-1 printable ASCII characters of an untrusted string
 * (client names, key names from requests) so a peer cannot forge log lines. */
void ks_log_sanitize(const char *in, char *out, size_t outlen);

/* Pop the OpenSSL error queue of this thread into buf as a readable reason
 * ("unknown" if empty) and clear the rest of the queue. */
const char *ks_ossl_reason(char *buf, size_t len);

#endif
