/* chroot into an empty directory and drop to an unprivileged user. */
#ifndef KEYSTORE_SANDBOX_JAIL_H
#define KEYSTORE_SANDBOX_JAIL_H

#include <stddef.h>
#include <sys/types.h>

struct ks_identity {
    uid_t uid;
    gid_t gid;
    char name[64];
};

/* Looks the user up while /etc/passwd is still reachable.  Returns 0 or -1
 * with a message ("user 'x' does not exist: create it with useradd ..."). */
int ks_lookup_user(const char *user, struct ks_identity *id, char *err, size_t errlen);

/* The jail must be an existing, empty directory owned by root and writable
 * by nobody else, so that the confined server can create nothing in it.
 * chdir + chroot + chdir("/").  Returns 0 or -1 with a message. */
int ks_enter_jail(const char *dir, char *err, size_t errlen);

/* setgroups(none), setresgid, setresuid, each checked, keeping only
 * CAP_IPC_LOCK (so locked memory can still grow), then proves that root
 * cannot be regained.  Returns 0 or -1 with a message. */
int ks_drop_privileges(const struct ks_identity *id, char *err, size_t errlen);

/* Drop every capability of the calling thread (after ks_drop_privileges,
 * for a process that locks no memory).  Returns 0 or -1 with a message. */
int ks_clear_capabilities(char *err, size_t errlen);

#endif
