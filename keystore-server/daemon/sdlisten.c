/* Socket activation; see sdlisten.h.  The protocol is systemd's
 * sd_listen_fds(3): if LISTEN_PID is our pid, LISTEN_FDS descriptors starting
 * at 3 are open listening sockets, and LISTEN_FDNAMES (optional) names them,
 * colon-separated, as set by FileDescriptorName= in the .socket units. */
#include "sdlisten.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

#define SD_FIRST_FD 3
#define SD_MAX_FDS 16

struct passed {
    int fd;                      /* -1 once taken */
    char name[64];               /* "" if none was given */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static struct passed passed[SD_MAX_FDS];
static int npassed;

static int parse_int(const char *s, long *out)
{
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtol(s, &end, 10);
    return (errno != 0 || *end != '\0') ? -1 : 0;
}

static int int_sockopt(int fd, int opt)
{
    int v = -1;
    socklen_t len = sizeof(v);

    if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) != 0)
        return -1;
    return v;
}

/* Describe one passed descriptor, or explain why it cannot be used. */
static int inspect(int fd, struct passed *p)
{
    struct sockaddr_un sun;
    socklen_t len = sizeof(sun);
    int flags;

    if (fcntl(fd, F_GETFD) < 0) {
        ks_log("error: socket activation: descriptor %d is not open (LISTEN_FDS too large?)", fd);
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    if (getsockname(fd, (struct sockaddr *)&sun, &len) != 0 || sun.sun_family != AF_UNIX ||
        int_sockopt(fd, SO_TYPE) != SOCK_STREAM) {
        ks_log("error: socket activation: descriptor %d is not a Unix stream socket "
               "(use ListenStream=/path in the .socket unit)", fd);
        return -1;
    }
    if (int_sockopt(fd, SO_ACCEPTCONN) != 1) {
        ks_log("error: socket activation: descriptor %d is not listening (Accept=no is "
               "required in the .socket unit)", fd);
        return -1;
    }
    if (len <= offsetof(struct sockaddr_un, sun_path) || sun.sun_path[0] == '\0') {
        ks_log("error: socket activation: descriptor %d is an unnamed or abstract socket; "
               "keystored needs a socket file", fd);
        return -1;
    }
    snprintf(p->path, sizeof(p->path), "%.*s", (int)sizeof(sun.sun_path), sun.sun_path);
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        (flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        ks_log("error: socket activation: fcntl on descriptor %d: %s", fd, strerror(errno));
        return -1;
    }
    p->fd = fd;
    return 0;
}

static void close_all(void)
{
    int i;

    for (i = 0; i < npassed; i++)
        if (passed[i].fd >= 0)
            close(passed[i].fd);
    npassed = 0;
}

int ks_sd_listen_init(void)
{
    const char *spid = getenv("LISTEN_PID"), *sfds = getenv("LISTEN_FDS");
    const char *snames = getenv("LISTEN_FDNAMES");
    char names[SD_MAX_FDS * 64 + 1];
    char *tok, *save = NULL;
    long pid, n;
    int i;

    npassed = 0;
    if (spid == NULL || sfds == NULL)
        return 0;
    if (parse_int(spid, &pid) != 0 || parse_int(sfds, &n) != 0) {
        ks_log("error: socket activation: malformed LISTEN_PID=%s or LISTEN_FDS=%s", spid, sfds);
        return -1;
    }
    if (pid != (long)getpid()) {
        /* meant for another process (a parent that exec'd us without
         * clearing them): not ours, leave the descriptors alone */
        ks_log("ignoring LISTEN_FDS: LISTEN_PID=%ld is not this process (%ld)", pid,
               (long)getpid());
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        return 0;
    }
    if (n < 1 || n > SD_MAX_FDS) {
        ks_log("error: socket activation: LISTEN_FDS=%ld, expected 1 to %d sockets", n,
               SD_MAX_FDS);
        return -1;
    }
    names[0] = '\0';
    if (snames != NULL)
        snprintf(names, sizeof(names), "%s", snames);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");

    for (i = 0; i < n; i++) {
        passed[i].fd = -1;
        passed[i].name[0] = '\0';
    }
    npassed = (int)n;
    tok = strtok_r(names, ":", &save);
    for (i = 0; i < n && tok != NULL; i++, tok = strtok_r(NULL, ":", &save))
        snprintf(passed[i].name, sizeof(passed[i].name), "%s", tok);
    for (i = 0; i < n; i++) {
        if (inspect(SD_FIRST_FD + i, &passed[i]) != 0) {
            close_all();
            return -1;
        }
        ks_log("socket activation: received %s%s%s on descriptor %d", passed[i].path,
               passed[i].name[0] != '\0' ? " named " : "", passed[i].name, SD_FIRST_FD + i);
    }
    return (int)n;
}

/* systemd's default name when FileDescriptorName= is not set is the socket
 * unit's name (e.g. "keystored.socket"): treat that as no name. */
static int is_role_name(const char *name)
{
    return strcmp(name, "client") == 0 || strcmp(name, "admin") == 0;
}

int ks_sd_listen_take(const char *role, const char *unix_path, char *bound, size_t boundlen)
{
    int i, fd;

    for (i = 0; i < npassed; i++)
        if (passed[i].fd >= 0 && strcmp(passed[i].name, role) == 0)
            goto found;
    for (i = 0; i < npassed; i++)
        if (passed[i].fd >= 0 && !is_role_name(passed[i].name) && unix_path != NULL &&
            strcmp(passed[i].path, unix_path) == 0)
            goto found;
    return -1;
found:
    fd = passed[i].fd;
    passed[i].fd = -1;
    snprintf(bound, boundlen, "%s", passed[i].path);
    return fd;
}

int ks_sd_listen_finish(void)
{
    int i, left = 0;

    for (i = 0; i < npassed; i++) {
        if (passed[i].fd < 0)
            continue;
        ks_log("error: socket activation: nothing in the configuration uses %s%s%s "
               "(descriptor %d); name it FileDescriptorName=client or admin, or make "
               "socket/admin_socket in the config the same path", passed[i].path,
               passed[i].name[0] != '\0' ? " named " : "", passed[i].name, SD_FIRST_FD + i);
        left++;
    }
    if (left > 0) {
        close_all();
        return -1;
    }
    npassed = 0;
    return 0;
}
