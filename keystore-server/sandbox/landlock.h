/* Landlock, the kernel's unprivileged file system (and TCP) sandbox: a
 * second layer under the chroot and the seccomp filter, applied where the
 * kernel offers it. */
#ifndef KEYSTORE_SANDBOX_LANDLOCK_H
#define KEYSTORE_SANDBOX_LANDLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Landlock ABI version of the running kernel, or 0 if it has none (or it is
 * disabled, or a filter such as systemd's SystemCallFilter refuses it). */
int ks_landlock_abi(void);

/* Restrict the calling thread (and the threads it creates later) for good:
 * no file system access at all, except, if dirfd >= 0, these rights beneath
 * dirfd: reading and writing regular files, creating them, removing them
 * (LANDLOCK_ACCESS_FS_ READ_FILE/WRITE_FILE/MAKE_REG/REMOVE_FILE; no
 * truncation, no symlinks, no directories, no devices).  No TCP bind or
 * connect where the ABI knows them (4+).  Sets PR_SET_NO_NEW_PRIVS.
 * Returns the ABI used (> 0), 0 if Landlock is not available (nothing is
 * changed; the caller logs it), or -1 with a message in err. */
int ks_landlock_restrict(int dirfd, char *err, size_t errlen);

#endif
