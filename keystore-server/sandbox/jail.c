/* Filesystem and user confinement for keystored; see jail.h. */
#include "jail.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int ks_lookup_user(const char *user, struct ks_identity *id, char *err, size_t errlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int rc;

    rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "user '%s' does not exist: create it (useradd --system "
                 "--no-create-home --shell /usr/sbin/nologin %s) or set 'user' in the config",
                 user, user);
        return -1;
    }
    if (pw.pw_uid == 0) {
        snprintf(err, errlen, "user '%s' is root: keystored must drop to an unprivileged user", user);
        return -1;
    }
    id->uid = pw.pw_uid;
    id->gid = pw.pw_gid;
    snprintf(id->name, sizeof(id->name), "%s", user);
    return 0;
}

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int empty = 1;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

int ks_enter_jail(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        snprintf(err, errlen, "jail directory %s: %s (create it empty: mkdir -m 0555 %s)",
                 dir, strerror(errno), dir);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "jail %s is not a directory", dir);
        return -1;
    }
    if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        snprintf(err, errlen, "jail %s must be owned by root and writable by nobody else "
                 "(chown root: %s && chmod 0555 %s)", dir, dir, dir);
        return -1;
    }
    if (dir_is_empty(dir) != 1) {
        snprintf(err, errlen, "jail %s must be an empty directory", dir);
        return -1;
    }
    if (chdir(dir) != 0 || chroot(dir) != 0 || chdir("/") != 0) {
        snprintf(err, errlen, "chroot into %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Keep exactly one capability, CAP_IPC_LOCK: with mlockall(MCL_FUTURE) every
 * later allocation is locked, and without the capability it would count
 * against RLIMIT_MEMLOCK (often 8 MiB, and not raisable where the service
 * lacks CAP_SYS_RESOURCE), so malloc would start failing after the drop. */
static int keep_only_ipc_lock(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof(data));
    data[CAP_TO_INDEX(CAP_IPC_LOCK)].permitted = CAP_TO_MASK(CAP_IPC_LOCK);
    data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective = CAP_TO_MASK(CAP_IPC_LOCK);
    return (int)syscall(SYS_capset, &hdr, data);
}

int ks_clear_capabilities(char *err, size_t errlen)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) != 0) {
        snprintf(err, errlen, "capset(no capabilities): %s", strerror(errno));
        return -1;
    }
    return 0;
}

int ks_drop_privileges(const struct ks_identity *id, char *err, size_t errlen)
{
    if (setgroups(0, NULL) != 0) {
        snprintf(err, errlen, "setgroups: %s", strerror(errno));
        return -1;
    }
    if (setresgid(id->gid, id->gid, id->gid) != 0) {
        snprintf(err, errlen, "setresgid(%u): %s", (unsigned)id->gid, strerror(errno));
        return -1;
    }
    /* keep the permitted set across setresuid just long enough to trim it */
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "prctl(PR_SET_KEEPCAPS): %s", strerror(errno));
        return -1;
    }
    if (setresuid(id->uid, id->uid, id->uid) != 0) {
        snprintf(err, errlen, "setresuid(%u): %s", (unsigned)id->uid, strerror(errno));
        return -1;
    }
    if (keep_only_ipc_lock() != 0) {
        snprintf(err, errlen, "capset(CAP_IPC_LOCK only): %s", strerror(errno));
        return -1;
    }
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
        snprintf(err, errlen, "prctl(PR_SET_KEEPCAPS, 0): %s", strerror(errno));
        return -1;
    }
    /* a drop that can be undone is no drop */
    if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0) {
        snprintf(err, errlen, "privilege drop to %s did not stick", id->name);
        return -1;
    }
    return 0;
}
