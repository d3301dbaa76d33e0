/* Landlock rulesets for the server and the file helper; see landlock.h.
 * Debian 12's kernel headers stop at ABI 2, so the later rights and the
 * longer ruleset attribute are spelled out here (values from the kernel's
 * include/uapi/linux/landlock.h). */
#include "landlock.h"

#include <errno.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FS_TRUNCATE (1ULL << 14)    /* ABI 3 */
#define FS_IOCTL_DEV (1ULL << 15)   /* ABI 5 */
#define NET_BIND_TCP (1ULL << 0)    /* ABI 4 */
#define NET_CONNECT_TCP (1ULL << 1)
#define SCOPE_SIGNAL (1ULL << 1)    /* ABI 6 */

/* struct landlock_ruleset_attr as of ABI 6; older kernels get a prefix. */
struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

int ks_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

    return v > 0 ? (int)v : 0;
}

static uint64_t fs_rights(int abi)
{
    uint64_t r = (1ULL << 13) - 1;   /* ABI 1: EXECUTE .. MAKE_SYM */

    if (abi >= 2)
        r |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        r |= FS_TRUNCATE;
    if (abi >= 5)
        r |= FS_IOCTL_DEV;
    return r;
}

int ks_landlock_restrict(int dirfd, char *err, size_t errlen)
{
    struct ruleset_attr attr = { 0, 0, 0 };
    struct landlock_path_beneath_attr rule;
    size_t attr_len = sizeof(attr.handled_access_fs);
    int abi = ks_landlock_abi(), rs;

    if (abi == 0)
        return 0;
    attr.handled_access_fs = fs_rights(abi);
    if (abi >= 4) {
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP;
        attr_len = 2 * sizeof(uint64_t);
    }
    if (abi >= 6) {
        attr.scoped = SCOPE_SIGNAL;
        attr_len = sizeof(attr);
    }
    rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_len, 0);
    if (rs < 0) {
        snprintf(err, errlen, "landlock_create_ruleset (ABI %d): %s", abi, strerror(errno));
        return -1;
    }
    if (dirfd >= 0) {
        rule.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                              LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REMOVE_FILE;
        rule.parent_fd = dirfd;
        if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
            snprintf(err, errlen, "landlock_add_rule (key directory): %s", strerror(errno));
            close(rs);
            return -1;
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
        snprintf(err, errlen, "landlock_restrict_self: %s", strerror(errno));
        close(rs);
        return -1;
    }
    close(rs);
    return abi;
}
