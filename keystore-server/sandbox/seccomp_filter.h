/* keystored's system call allowlist (seccomp), shared by the server and by
 * tests/seccomp_test.c, which proves that it kills forbidden calls. */
#ifndef KEYSTORE_SANDBOX_SECCOMP_H
#define KEYSTORE_SANDBOX_SECCOMP_H

#include <stddef.h>

/* Sets PR_SET_NO_NEW_PRIVS and installs the server's filter on every thread
 * of the process (TSYNC).  Any call outside the list kills the whole process
 * (SCMP_ACT_KILL_PROCESS); no call in it takes a path.  Returns 0, or -1
 * with a message in err. */
int ks_seccomp_install(char *err, size_t errlen);

/* The file helper's filter (one thread): its request loop, and on dirfd only
 * the two opens store/keydir.c makes (O_RDONLY|O_CLOEXEC|O_NOFOLLOW, and
 * O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC|O_NOFOLLOW mode 0600), unlinkat and
 * renameat within it.  Returns 0, or -1 with a message in err. */
int ks_seccomp_install_files(int dirfd, char *err, size_t errlen);

/* The catalogue agent's filter (network only, no files), on all its threads. */
int ks_seccomp_install_agent(char *err, size_t errlen);

#endif
