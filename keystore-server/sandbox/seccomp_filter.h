/* keystored's system call allowlist (seccomp), shared by the server and by
 * tests/seccomp_test.c, which proves that it kills forbidden calls. */
#ifndef KEYSTORE_SANDBOX_SECCOMP_H
#define KEYSTORE_SANDBOX_SECCOMP_H

#include <stddef.h>

/* Sets PR_SET_NO_NEW_PRIVS and installs the filter on every thread of the
 * process (TSYNC).  Any call outside the list kills the whole process
 * (SCMP_ACT_KILL_PROCESS).  keydir_fd is the only directory the server may
 * still create, rename or remove files in (openat/renameat/unlinkat are
 * allowed relative to it alone); -1 allows none.  Returns 0, or -1 with a
 * message in err. */
int ks_seccomp_install(int keydir_fd, char *err, size_t errlen);

#endif
