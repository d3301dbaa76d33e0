/* The file helper process; see broker.h. */
#include "broker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "jail.h"
#include "landlock.h"
#include "seccomp_filter.h"
#include "store/keydir.h"

static int server_end = -1;

int ks_broker_started(void)
{
    return server_end >= 0;
}

static int recv_dirfd(int sock)
{
    char byte, ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { &byte, 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl, .msg_controllen = sizeof(ctl) };
    struct cmsghdr *c;
    int fd;

    if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) != 1)
        return -1;
    c = CMSG_FIRSTHDR(&mh);
    if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int)))
        return -1;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

/* As root: the key directory becomes the root of the helper's file system,
 * then the server's user without any capability. */
static int confine_helper(const struct ks_config *cfg, const struct ks_identity *id, int dirfd,
                          char *what, size_t whatlen)
{
    char err[512];
    int abi;

    what[0] = '\0';
    if (id != NULL) {
        if (fchdir(dirfd) != 0 || chroot(".") != 0) {
            ks_log("error: file helper: chroot into the key directory: %s", strerror(errno));
            return -1;
        }
        if (ks_drop_privileges(id, err, sizeof(err)) != 0 ||
            ks_clear_capabilities(err, sizeof(err)) != 0) {
            ks_log("error: file helper: %s", err);
            return -1;
        }
        snprintf(what, whatlen, "chroot %s, user %s, no capabilities, ", cfg->key_dir, id->name);
    }
    abi = ks_landlock_restrict(dirfd, err, sizeof(err));
    if (abi < 0) {
        ks_log("error: file helper: %s", err);
        return -1;
    }
    snprintf(what + strlen(what), whatlen - strlen(what), "%s", abi > 0 ?
             "Landlock (the key directory's files only), " : "no Landlock (not in this kernel), ");
    if (cfg->seccomp) {
        if (ks_seccomp_install_files(dirfd, err, sizeof(err)) != 0) {
            ks_log("error: file helper: %s", err);
            return -1;
        }
        snprintf(what + strlen(what), whatlen - strlen(what), "seccomp");
    } else {
        snprintf(what + strlen(what), whatlen - strlen(what), "no seccomp (seccomp = no)");
    }
    return 0;
}

static int helper_main(const struct ks_config *cfg, int sock, pid_t server)
{
    struct ks_identity id;
    char err[512], what[KS_CONF_PATH_MAX + 512];
    int root = geteuid() == 0, dirfd;

    /* never outlive the server, never hold what it opens later */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != server)
        return 1;
    (void)prctl(PR_SET_NAME, "keystored-files", 0, 0, 0);
    if ((sock > 3 && close_range(3, (unsigned)sock - 1, 0) != 0) ||
        close_range((unsigned)sock + 1, ~0U, 0) != 0) {
        ks_log("error: file helper: close_range: %s", strerror(errno));
        return 1;
    }
    /* log lines carry a UTC time stamp, and glibc reads the time zone file on
     * its first conversion, even for gmtime_r: do it while it is reachable */
    tzset();
    /* /etc/passwd is still reachable now */
    if (root && ks_lookup_user(cfg->user, &id, err, sizeof(err)) != 0) {
        ks_log("error: file helper: %s", err);
        return 1;
    }
    dirfd = recv_dirfd(sock);
    if (dirfd < 0)
        return 0;   /* the server stopped before confinement */
    if (confine_helper(cfg, root ? &id : NULL, dirfd, what, sizeof(what)) != 0)
        return 1;
    if (send(sock, "1", 1, MSG_NOSIGNAL) != 1)
        return 1;
    ks_log("file helper confined: %s", what);
    return ks_keydir_serve(sock, dirfd) == 0 ? 0 : 1;
}

int ks_broker_start(const struct ks_config *cfg)
{
    pid_t server = getpid(), pid;
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        ks_log("error: cannot create the file helper's socket: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        ks_log("error: cannot fork the file helper: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        _exit(helper_main(cfg, sv[1], server));
    }
    close(sv[1]);
    server_end = sv[0];
    return 0;
}

int ks_broker_handoff(int dirfd)
{
    char byte = 'd', ack = 0, ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { &byte, 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl, .msg_controllen = sizeof(ctl) };
    struct cmsghdr *c;
    ssize_t r;

    memset(ctl, 0, sizeof(ctl));
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &dirfd, sizeof(int));
    if (sendmsg(server_end, &mh, MSG_NOSIGNAL) != 1) {
        ks_log("error: the file helper is gone (%s): see its messages above", strerror(errno));
        return -1;
    }
    do
        r = recv(server_end, &ack, 1, 0);
    while (r < 0 && errno == EINTR);
    if (r != 1 || ack != '1') {
        ks_log("error: the file helper could not confine itself to the key directory: "
               "see its messages above");
        return -1;
    }
    ks_keydir_use_broker(server_end);
    return 0;
}
