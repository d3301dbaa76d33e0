/* Confinement of the serving process, applied once everything it needs is
 * open (see confine.h).  Order matters:
 *   1. look up the service user while /etc/passwd is reachable;
 *   2. hand the key directory to that user (it must keep writing key files);
 *   3. chroot into the empty jail;
 *   4. drop to the user (after chroot: chroot needs root);
 *   (main creates the worker threads here)
 *   5. seccomp last, so the calls above need not be in the allowlist.
 * Started as a normal user, keystored applies what it can (seccomp) and says
 * what it could not. */
#include "confine.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "jail.h"
#include "seccomp_filter.h"
#include "store/keytable.h"

static int confined;

int ks_confined(void)
{
    return confined;
}

/* mkdir -p for the jail: parents 0755, the jail itself 0555 (nobody writes). */
static int make_jail(const char *dir)
{
    char path[KS_CONF_PATH_MAX];
    size_t i;

    if (access(dir, F_OK) == 0)
        return 0;
    snprintf(path, sizeof(path), "%s", dir);
    for (i = 1; path[i] != '\0'; i++) {
        if (path[i] != '/')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            ks_log("error: cannot create %s for the jail: %s", path, strerror(errno));
            return -1;
        }
        path[i] = '/';
    }
    if (mkdir(dir, 0555) != 0 && errno != EEXIST) {
        ks_log("error: cannot create jail %s: %s", dir, strerror(errno));
        return -1;
    }
    if (chmod(dir, 0555) != 0) {
        ks_log("error: chmod 0555 %s: %s", dir, strerror(errno));
        return -1;
    }
    ks_log("created empty jail directory %s", dir);
    return 0;
}

int ks_confine_jail(const struct ks_config *cfg)
{
    char err[512];
    struct ks_identity id;

    if (geteuid() != 0) {
        ks_log("warning: not started as root (uid %u): no chroot into %s and no switch to "
               "user %s; only the seccomp filter and the memory protections apply",
               (unsigned)geteuid(), cfg->jail, cfg->user);
        return 0;
    }
    if (ks_lookup_user(cfg->user, &id, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return -1;
    }
    /* the key directory stays writable for the user, through its descriptor */
    if (fchown(ks_store_dir_fd(), id.uid, id.gid) != 0) {
        ks_log("error: cannot give key directory %s to user %s: %s", cfg->key_dir,
               id.name, strerror(errno));
        return -1;
    }
    if (make_jail(cfg->jail) != 0)
        return -1;
    if (ks_enter_jail(cfg->jail, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return -1;
    }
    confined = 1;
    if (ks_drop_privileges(&id, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return -1;
    }
    ks_log("confined: chroot %s, running as %s (uid %u, gid %u), only CAP_IPC_LOCK kept",
           cfg->jail, id.name, (unsigned)id.uid, (unsigned)id.gid);
    return 0;
}

int ks_confine_syscalls(const struct ks_config *cfg)
{
    char err[512];

    if (!cfg->seccomp) {
        ks_log("warning: seccomp disabled by configuration (seccomp = no)");
        return 0;
    }
    if (ks_seccomp_install(ks_store_dir_fd(), err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return -1;
    }
    /* unlink(2) of the socket files at exit would now be fatal too */
    confined = 1;
    ks_log("seccomp filter installed: unlisted system calls kill the process");
    return 0;
}
