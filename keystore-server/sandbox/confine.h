/* Confinement of the serving process: seccomp filter, chroot into
 * cfg->jail and dropping to cfg->user (see the config keys user, jail,
 * seccomp).  Called by main() after every file, socket and key is open and
 * loaded, right before serving; after it returns the process must not need
 * the file system: the key directory is reached through ks_store_dir_fd()
 * (openat/renameat/unlinkat/fsync relative to it), the worker threads already
 * exist (parked; they were created by ks_serve_prepare), and shutdown is
 * driven by a SIGTERM/SIGINT handler that writes an eventfd (no sigwait).
 * Returns 0, or -1 after logging (keystored then exits). */
#ifndef KS_CONFINE_H
#define KS_CONFINE_H

#include "common/config.h"

/* Fork the file helper (sandbox/broker.h), which will hold the key
 * directory.  Call at start-up after the configuration is read and before
 * any secret is loaded or any thread exists.  Returns 0 or -1 after logging. */
int ks_confine_start(const struct ks_config *cfg);

/* Hand the key directory to the file helper, chroot into cfg->jail and drop to cfg->user (as root; otherwise logs
 * what it could not apply).  Call before any worker thread exists. */
int ks_confine_jail(const struct ks_config *cfg);

/* mkdir -p for the jail (the jail 0555, parents 0755); 0 or -1 logged.
 * Also used by the catalogue agent, which may start before ks_confine_jail. */
int ks_confine_make_jail(const char *dir);

/* The seccomp filter on every thread; call after the last thread is made. */
int ks_confine_syscalls(const struct ks_config *cfg);

/* 1 once the process is confined (chroot, or the seccomp filter, which
 * does not allow unlink): main() then no longer touches paths outside the
 * jail (socket files are not unlinked at exit; the next start removes them). */
int ks_confined(void);

#endif
