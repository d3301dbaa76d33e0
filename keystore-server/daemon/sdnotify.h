/* systemd's readiness protocol (sd_notify(3)) without libsystemd: one
 * datagram per message to $NOTIFY_SOCKET.  The socket is created and
 * connected before confinement (the path is outside the jail); afterwards
 * only send(2), i.e. sendto, is needed, which the seccomp filter allows. */
#ifndef KS_SDNOTIFY_H
#define KS_SDNOTIFY_H

#include <stdint.h>

/* Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID.  Returns 0 (also when
 * not run by systemd) or -1 after logging a malformed variable. */
int ks_sd_notify_init(void);

/* Send "A=B\nC=D" (no-op without NOTIFY_SOCKET).  Never blocks. */
void ks_sd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Half the watchdog interval in microseconds, or 0 without a watchdog. */
int64_t ks_sd_watchdog_half_us(void);

void ks_sd_notify_close(void);

#endif
