/* This process's id without a system call per use.
 *
 * Code that must notice a fork (a connection or a ring inherited by a child
 * is the parent's, never the child's) compared getpid() on every operation:
 * on a machine where a system call costs a microsecond that was several per
 * signature.  The pid is cached in a page marked MADV_WIPEONFORK, which the
 * kernel hands to any child (fork, or clone without CLONE_VM, with or
 * without pthread_atfork handlers running) filled with zeroes, so the child
 * sees no cached pid and asks the kernel again.  Where the kernel lacks
 * MADV_WIPEONFORK (before Linux 4.14) every call is getpid(). */
#ifndef KS_SELFPID_H
#define KS_SELFPID_H

#include <sys/types.h>

pid_t ks_self_pid(void);

#endif
