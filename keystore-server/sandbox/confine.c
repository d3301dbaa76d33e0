/* Confinement of the serving process, applied once everything it needs is
 * open (see confine.h).  Order matters:
 *   0. (at start-up, before any secret exists) fork the file helper;
 *   1. look up the service user while /etc/passwd is reachable;
 *   2. hand the key directory to that user (it must keep writing key files);
 *   3. pass the key directory to the file helper and close it here: from
 *      now on the server reaches no file at all;
 *   4. chroot into the empty jail;
 *   5. drop to the user (after chroot: chroot needs root);
 *   6. Landlock without any file right, inherited by the threads;
 *   (main creates the worker threads here)
 *   7. seccomp last, so the calls above need not be in the allowlist.
 * Started as a normal user, keystored applies what it can (file helper,
 * Landlock, seccomp) and says what it could not. */
#include "confine.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "common/log.h"
#include "jail.h"
#include "landlock.h"
#include "seccomp_filter.h"
#include "store/keytable.h"

static int confined;

int ks_confined(void)
{
    return confined;
}

/* mkdir -p for the jail: parents 0755, the jail itself 0555 (nobody writes). */
int ks_confine_make_jail(const char *dir)
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

int ks_confine_start(const struct ks_config *cfg)
{
    return ks_broker_start(cfg);
}

/* The key directory leaves this process for the file helper. */
static int hand_off_key_dir(void)
{
    if (!ks_broker_started())
        return 0;   /* a harness without the helper keeps its descriptor */
    if (ks_broker_handoff(ks_store_dir_fd()) != 0)
        return -1;
    ks_store_release_dir();
    return 0;
}

/* No file system for this process and its future threads. */
static int landlock_nothing(const char **what)
{
    char err[512];
    int abi = ks_landlock_restrict(-1, err, sizeof(err));

    if (abi < 0) {
        ks_log("error: %s", err);
        return -1;
    }
    if (abi == 0)
        ks_log("warning: Landlock is not available in this kernel (or refused by a system "
               "call filter): the chroot and the seccomp filter still apply");
    *what = abi > 0 ? ", Landlock: no file access" : ", no Landlock";
    return 0;
}

int ks_confine_jail(const struct ks_config *cfg)
{
    char err[512];
    const char *ll = "";
    struct ks_identity id;

    if (geteuid() != 0) {
        ks_log("warning: not started as root (uid %u): no chroot into %s and no switch to "
               "user %s; only the file helper, Landlock, the seccomp filter and the memory "
               "protections apply", (unsigned)geteuid(), cfg->jail, cfg->user);
        if (hand_off_key_dir() != 0 || landlock_nothing(&ll) != 0)
            return -1;
        return 0;
    }
    if (ks_lookup_user(cfg->user, &id, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return -1;
    }
    /* the key directory stays writable for the user, in the file helper */
    if (fchown(ks_store_dir_fd(), id.uid, id.gid) != 0) {
        ks_log("error: cannot give key directory %s to user %s: %s", cfg->key_dir,
               id.name, strerror(errno));
        return -1;
    }
    if (hand_off_key_dir() != 0)
        return -1;
    if (ks_confine_make_jail(cfg->jail) != 0)
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
    if (landlock_nothing(&ll) != 0)
        return -1;
    ks_log("confined: chroot %s, running as %s (uid %u, gid %u), only CAP_IPC_LOCK kept%s%s",
           cfg->jail, id.name, (unsigned)id.uid, (unsigned)id.gid, ll,
           ks_broker_started() ? ", key directory in the file helper" : "");
    return 0;
}

int ks_confine_syscalls(const struct ks_config *cfg)
{
    char err[512];

    if (!cfg->seccomp) {
        ks_log("warning: seccomp disabled by configuration (seccomp = no)");
        return 0;
    }
    if (ks_seccomp_install(err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return -1;
    }
    /* unlink(2) of the socket files at exit would now be fatal too */
    confined = 1;
    ks_log("seccomp filter installed: unlisted system calls kill the process");
    return 0;
}
