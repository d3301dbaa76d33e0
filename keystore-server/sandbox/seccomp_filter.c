/* The syscall allowlists.  Every entry says why it is needed; anything not
 * listed kills the process.  The server's list has no call that takes a
 * path: after confinement it reaches no file at all (the key directory
 * belongs to the file helper, see store/keydir.h), so "..", symlinks,
 * /proc magic links, hard links, O_PATH and openat2 have nothing to work
 * on.  Threads are started before the filter is installed, so clone/clone3
 * are not needed.  No call may create executable memory. */
#include "seccomp_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

struct allowed {
    int nr;
    const char *why;
};

#define A(name, why) { SCMP_SYS(name), why }
static const struct allowed ALLOW[] = {
    /* memory: malloc, OpenSSL's secure heap and sodium_malloc guard pages;
     * mmap and mprotect are added without PROT_EXEC (common_rules) */
    A(brk, "malloc"), A(munmap, "free"),
    A(mremap, "realloc of large blocks (keeps the protection)"),
    A(madvise, "free, sodium_malloc (MADV_DONTDUMP)"),
    A(mlock, "sodium_malloc locks its pages"), A(munlock, "sodium_free"),
    /* sockets and the event loop */
    A(read, "socket reads"), A(write, "socket writes, log lines to stderr"),
    A(readv, "socket reads"), A(writev, "stderr log lines (stdio)"),
    A(recvfrom, "socket reads"), A(sendto, "socket writes"),
    /* no sendmsg: SCM_RIGHTS would hand the audit log's descriptor to a
     * colluding client outside every filter; recvmsg (for the memfd of the
     * shared-memory rings) only with fixed flags, below */
    A(accept4, "new clients"), A(accept, "new clients"),
    A(getsockopt, "SO_PEERCRED, SO_PEERGROUPS: who the client is"),
    A(setsockopt, "TCP_NODELAY on accepted TCP clients"), A(shutdown, "closing clients"),
    A(getsockname, "logging"), A(getpeername, "TCP peer address for logs and the audit log"),
    A(close, "closing clients and files"),
    A(epoll_wait, "event loop"), A(epoll_pwait, "event loop"),
    A(epoll_ctl, "event loop"), A(poll, "waiting on sockets"),
    A(ppoll, "waiting on sockets"), A(eventfd2, "waking workers"),
    A(fstat, "stdio"),
    /* the rollback counter: a descriptor opened before confinement (store/generation.c) */
    A(pwrite64, "the rollback counter"), A(fdatasync, "the rollback counter"),
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

/* What the file helper (sandbox/broker.c) needs besides its dirfd rules. */
static const struct allowed FILES_ALLOW[] = {
    A(read, "requests from the server, key files"), A(recvfrom, "requests from the server"),
    A(write, "replies, new key files, log lines"), A(sendto, "replies to the server"),
    A(close, "files"), A(fsync, "durable key files and directory"), A(fstat, "file sizes"),
    A(brk, "malloc"), A(munmap, "free"), A(mremap, "realloc"), A(madvise, "free"),
    A(clock_gettime, "glibc"), A(getpid, "glibc"), A(rt_sigreturn, "signals"),
    A(rt_sigprocmask, "abort()"), A(tgkill, "abort()"), A(exit, "exit"), A(exit_group, "exit"),
};

/* The catalogue agent (daemon/catalogue_agent.c): libcurl speaking HTTP(S)
 * to etcd, relaying to the key process on its two sockets.  No call that
 * takes a path succeeds (openat fails with EACCES, below), so it reaches no
 * file, least of all the key directory. */
static const struct allowed AGENT_ALLOW[] = {
    A(read, "sockets"), A(write, "sockets, log lines"), A(readv, "sockets"),
    A(writev, "log lines"), A(recvfrom, "HTTP replies, key process requests"),
    A(sendto, "HTTP requests, records to the key process"),
    A(recvmsg, "libcurl"), A(sendmsg, "libcurl"),
    A(connect, "etcd endpoints"), A(getsockopt, "libcurl: SO_ERROR after connect"),
    A(setsockopt, "TCP_NODELAY, keepalive"), A(getsockname, "libcurl"),
    A(getpeername, "libcurl"), A(shutdown, "closing connections"), A(close, "sockets"),
    A(poll, "libcurl waits"), A(ppoll, "libcurl waits"),
    A(pipe2, "libcurl wakeups"), A(eventfd2, "libcurl wakeups"),
    A(fstat, "stdio"), A(brk, "malloc"), A(munmap, "free"), A(mremap, "realloc"),
    A(madvise, "free"), A(futex, "the two threads"), A(nanosleep, "back-off"),
    A(clock_nanosleep, "back-off"), A(clock_gettime, "timeouts"),
    A(gettimeofday, "log timestamps"), A(getrandom, "TLS"), A(getpid, "OpenSSL"),
    A(gettid, "glibc"), A(rseq, "glibc threads"), A(set_robust_list, "glibc threads"),
    A(restart_syscall, "interrupted sleeps"), A(rt_sigreturn, "signals"),
    A(rt_sigprocmask, "abort()"), A(rt_sigaction, "libcurl ignores SIGPIPE"),
    A(tgkill, "abort()"), A(exit, "thread exit"), A(exit_group, "exit"),
    A(sched_yield, "locks"), A(uname, "libcurl"),
};
#undef A

static int add_list(scmp_filter_ctx ctx, const struct allowed *list, size_t n)
{
    size_t i;
    int rc = 0;

    for (i = 0; rc == 0 && i < n; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, list[i].nr, 0);
    return rc;
}

/* mmap/mprotect without PROT_EXEC (W^X: injected code cannot make its own
 * machine code runnable); fstatat only as glibc's fstat (AT_EMPTY_PATH). */
static int common_rules(scmp_filter_ctx ctx)
{
    int rc;

    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                          SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                              SCMP_A3(SCMP_CMP_EQ, AT_EMPTY_PATH));
    return rc;
}

static scmp_filter_ctx start(char *err, size_t errlen)
{
    scmp_filter_ctx ctx;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
        return NULL;
    }
    ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL)
        snprintf(err, errlen, "seccomp_init failed (is seccomp enabled in this kernel?)");
    return ctx;
}

static int finish(scmp_filter_ctx ctx, int rc, char *err, size_t errlen)
{
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        snprintf(err, errlen, "installing the seccomp filter failed: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

int ks_seccomp_install(char *err, size_t errlen)
{
    scmp_filter_ctx ctx = start(err, errlen);
    int rc;

    if (ctx == NULL)
        return -1;
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0)
        rc = add_list(ctx, ALLOW, sizeof(ALLOW) / sizeof(ALLOW[0]));
    if (rc == 0)
        rc = common_rules(ctx);
    /* fcntl only to read flags: F_SETFL could clear the audit log's O_APPEND */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                              SCMP_A1(SCMP_CMP_EQ, F_GETFL));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                              SCMP_A1(SCMP_CMP_EQ, F_GETFD));
    /* the shared-memory rings (daemon/conn_shm.c): is a received descriptor
     * a sealed memfd; receive it (non-blocking, close-on-exec) with Hello */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                              SCMP_A1(SCMP_CMP_EQ, F_GET_SEALS));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(recvmsg), 1,
                              SCMP_A2(SCMP_CMP_EQ, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    return finish(ctx, rc, err, errlen);
}

int ks_seccomp_install_files(int dirfd, char *err, size_t errlen)
{
    const scmp_datum_t d = (scmp_datum_t)dirfd;
    scmp_filter_ctx ctx = start(err, errlen);
    int rc;

    if (ctx == NULL)
        return -1;
    rc = add_list(ctx, FILES_ALLOW, sizeof(FILES_ALLOW) / sizeof(FILES_ALLOW[0]));
    if (rc == 0)
        rc = common_rules(ctx);
    /* exactly store/keydir.c's two opens, relative to the key directory */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 2, SCMP_A0(SCMP_CMP_EQ, d),
                              SCMP_A2(SCMP_CMP_EQ, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 3, SCMP_A0(SCMP_CMP_EQ, d),
                              SCMP_A2(SCMP_CMP_EQ, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
                                      O_NOFOLLOW),
                              SCMP_A3(SCMP_CMP_EQ, 0600));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unlinkat), 2, SCMP_A0(SCMP_CMP_EQ, d),
                              SCMP_A2(SCMP_CMP_EQ, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(renameat), 2, SCMP_A0(SCMP_CMP_EQ, d),
                              SCMP_A2(SCMP_CMP_EQ, d));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(renameat2), 3, SCMP_A0(SCMP_CMP_EQ, d),
                              SCMP_A2(SCMP_CMP_EQ, d), SCMP_A4(SCMP_CMP_EQ, 0));
    return finish(ctx, rc, err, errlen);
}

int ks_seccomp_install_agent(char *err, size_t errlen)
{
    scmp_filter_ctx ctx = start(err, errlen);
    int rc, fam;

    if (ctx == NULL)
        return -1;
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0)
        rc = add_list(ctx, AGENT_ALLOW, sizeof(AGENT_ALLOW) / sizeof(AGENT_ALLOW[0]));
    if (rc == 0)
        rc = common_rules(ctx);
    /* TCP (and libcurl's wakeup socketpair) only */
    for (fam = 0; rc == 0 && fam < 3; fam++) {
        static const int families[3] = { AF_INET, AF_INET6, AF_UNIX };

        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[fam]));
    }
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
                              SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    /* non-blocking connects: F_GETFL/F_SETFL, F_GETFD/F_SETFD */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                              SCMP_A1(SCMP_CMP_LE, F_SETFL));
    /* a library looking for a file (a name lookup, OpenSSL's CA directory
     * for an unknown issuer) gets EACCES, not a killed agent */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(newfstatat), 1,
                              SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(stat), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(lstat), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(statx), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(access), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(faccessat), 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(faccessat2), 0);
    return finish(ctx, rc, err, errlen);
}
