/* Listening sockets passed by systemd socket activation (or any launcher
 * following the same convention): LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES,
 * descriptors from 3.  No libsystemd needed. */
#ifndef KS_SDLISTEN_H
#define KS_SDLISTEN_H

#include <stddef.h>

/* Read and unset the LISTEN_* variables.  Returns the number of sockets
 * passed (0 when not socket-activated, or when LISTEN_PID names another
 * process), or -1 after logging if the variables are malformed or a passed
 * descriptor is not a listening Unix stream socket. */
int ks_sd_listen_init(void);

/* Take the passed socket for a role ("client" or "admin"): the one whose
 * LISTEN_FDNAMES entry is `role`, else (no names, or only systemd's default
 * names) the one bound to unix_path.  On success stores the bound path in
 * bound (size boundlen) and returns the descriptor (CLOEXEC, non-blocking);
 * returns -1 if none was passed for this role. */
int ks_sd_listen_take(const char *role, const char *unix_path, char *bound, size_t boundlen);

/* Once every role has been taken: a passed socket nobody took is a
 * configuration mistake.  Logs it, closes them all and returns -1; else 0. */
int ks_sd_listen_finish(void);

#endif
