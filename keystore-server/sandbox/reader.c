/* The configuration reader's confinement; see reader.h. */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Keep at most the two read-only-relevant capabilities the process has. */
static int keep_read_caps(char *err, size_t errlen)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    unsigned keep = CAP_TO_MASK(CAP_DAC_READ_SEARCH) | CAP_TO_MASK(CAP_DAC_OVERRIDE);

    if (syscall(SYS_capget, &hdr, data) != 0) {
        snprintf(err, errlen, "capget: %s", strerror(errno));
        return -1;
    }
    /* both are in the first 32 capabilities */
    data[0].permitted &= keep;
    data[0].effective &= keep;
    data[0].inheritable = 0;
    data[1].permitted = data[1].effective = data[1].inheritable = 0;
    if (syscall(SYS_capset, &hdr, data) != 0) {
        snprintf(err, errlen, "capset: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static const int READER_ALLOW[] = {
    /* reading files and the name service (getpwnam reads /etc/passwd) */
    SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
    SCMP_SYS(statx), SCMP_SYS(lseek), SCMP_SYS(getdents64), SCMP_SYS(fcntl),
    /* memory */
    SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect),
    SCMP_SYS(madvise), SCMP_SYS(futex),
    /* waiting for the next request, exit */
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(restart_syscall), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(getpid), SCMP_SYS(getppid), SCMP_SYS(gettid),
    SCMP_SYS(clock_gettime), SCMP_SYS(getrandom), SCMP_SYS(exit), SCMP_SYS(exit_group),
};

int ks_confine_reader(int sock_fd, int with_seccomp, char *err, size_t errlen)
{
    const scmp_datum_t wflags = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND;
    scmp_filter_ctx ctx;
    size_t i;
    int rc;

    if (geteuid() == 0 && keep_read_caps(err, errlen) != 0)
        return -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
        return -1;
    }
    if (!with_seccomp)
        return 0;
    ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL) {
        snprintf(err, errlen, "seccomp_init failed");
        return -1;
    }
    rc = 0;
    for (i = 0; rc == 0 && i < sizeof(READER_ALLOW) / sizeof(READER_ALLOW[0]); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, READER_ALLOW[i], 0);
    /* open read-only only: no flag that writes, creates or truncates */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, wflags, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(open), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, wflags, 0));
    /* writes only to the socket (replies) and stderr */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sock_fd));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)STDERR_FILENO));
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        snprintf(err, errlen, "installing the reader's seccomp filter failed: %s", strerror(-rc));
        return -1;
    }
    return 0;
}
