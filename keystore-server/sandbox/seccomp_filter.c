/* The syscall allowlist.  Every entry says why keystored needs it; anything
 * not listed kills the process.  Threads are started before the filter is
 * installed, so clone/clone3 are not needed; files are reachable only through
 * the key directory's descriptor, opened before chroot. */
#include "seccomp_filter.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

struct allowed {
    int nr;
    const char *why;
};

#define A(name, why) { SCMP_SYS(name), why }
static const struct allowed ALLOW[] = {
    /* memory: malloc, OpenSSL's secure heap and sodium_malloc guard pages */
    A(brk, "malloc"), A(mmap, "malloc, thread stacks"), A(munmap, "free"),
    A(mremap, "realloc of large blocks"), A(mprotect, "sodium guard pages"),
    A(madvise, "free, sodium_malloc (MADV_DONTDUMP)"),
    A(mlock, "sodium_malloc locks its pages"), A(munlock, "sodium_free"),
    /* sockets and the event loop */
    A(read, "socket reads"), A(write, "socket writes, log lines to stderr"),
    A(readv, "socket reads"), A(writev, "stderr log lines (stdio)"),
    A(recvfrom, "socket reads"), A(sendto, "socket writes"),
    A(recvmsg, "socket reads"), A(sendmsg, "socket writes"),
    A(accept4, "new clients"), A(accept, "new clients"),
    A(getsockopt, "SO_PEERCRED, SO_PEERGROUPS: who the client is"),
    A(setsockopt, "TCP_NODELAY on accepted TCP clients"), A(shutdown, "closing clients"),
    A(getsockname, "logging"), A(getpeername, "TCP peer address for logs and the audit log"),
    A(close, "closing clients and files"),
    A(epoll_wait, "event loop"), A(epoll_pwait, "event loop"),
    A(epoll_ctl, "event loop"), A(poll, "waiting on sockets"),
    A(ppoll, "waiting on sockets"), A(fcntl, "non-blocking sockets"),
    A(eventfd2, "waking workers"),
    /* key directory: atomic writes of sealed key files (dirfd-restricted below) */
    A(fsync, "durable key files"), A(fdatasync, "durable key files"),
    A(pwrite64, "the rollback counter (store/generation.c; fd opened before confinement)"),
    A(fstat, "stdio and file sizes"), A(newfstatat, "fstat on glibc 2.33+"),
    A(lseek, "stdio"), A(ftruncate, "key files"),
    /* threads, time and randomness */
    A(futex, "locks and condition variables"), A(sched_yield, "spinning before sleeping"),
    A(nanosleep, "back-off"), A(clock_nanosleep, "back-off"),
    A(clock_gettime, "timeouts, audit latency"), A(gettimeofday, "log timestamps"),
    A(getrandom, "OpenSSL and libsodium reseed from the kernel: there is no /dev in the jail"),
    A(getpid, "OpenSSL fork detection"), A(gettid, "logging"),
    A(rseq, "glibc thread start-up"), A(set_robust_list, "glibc threads"),
    A(restart_syscall, "interrupted sleeps"),
    /* signals and exit */
    A(rt_sigreturn, "signal handlers (SIGTERM)"), A(rt_sigprocmask, "signal masks, abort()"),
    A(rt_sigaction, "abort()"), A(tgkill, "abort() raises SIGABRT"),
    A(exit, "thread exit"), A(exit_group, "process exit"),
};
#undef A

int ks_seccomp_install(int keydir_fd, char *err, size_t errlen)
{
    scmp_filter_ctx ctx;
    size_t i;
    int rc;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
        return -1;
    }
    ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL) {
        snprintf(err, errlen, "seccomp_init failed (is seccomp enabled in this kernel?)");
        return -1;
    }
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    for (i = 0; rc == 0 && i < sizeof(ALLOW) / sizeof(ALLOW[0]); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, ALLOW[i].nr, 0);
    if (rc == 0 && keydir_fd >= 0) {
        /* files only inside the key directory, by its descriptor */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)keydir_fd));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unlinkat), 1,
                                  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)keydir_fd));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(renameat), 2,
                                  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)keydir_fd),
                                  SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)keydir_fd));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(renameat2), 2,
                                  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)keydir_fd),
                                  SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)keydir_fd));
    }
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        snprintf(err, errlen, "installing the seccomp filter failed: %s", strerror(-rc));
        return -1;
    }
    return 0;
}
