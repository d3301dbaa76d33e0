/* Unix listening sockets; see server.h. */
#include "server.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "sdlisten.h"

#define LISTEN_BACKLOG 1024

/* socket_group (a name or a number) -> gid; -1 (after logging the fix
 * unless quiet). */
static int resolve_group(const char *name, gid_t *gid, int quiet)
{
    struct group *gr;
    char *end;
    unsigned long n;

    if (name[0] >= '0' && name[0] <= '9') {
        errno = 0;
        n = strtoul(name, &end, 10);
        if (errno == 0 && *end == '\0' && n < 0xffffffffUL) {
            *gid = (gid_t)n;
            return 0;
        }
    }
    errno = 0;
    gr = getgrnam(name);
    if (gr == NULL) {
        if (quiet)
            return -1;
        ks_log("error: socket_group '%s' does not exist%s%s: create it (systemd-sysusers does, "
               "from keystored.sysusers; or: groupadd --system %s) or set socket_group to an "
               "existing group", name, errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "",
               name);
        return -1;
    }
    *gid = gr->gr_gid;
    return 0;
}

/* A socket passed by socket activation (sdlisten.c): systemd created the
 * file and its permissions (SocketMode=) and keeps it across restarts, so it
 * is never unlinked here.  The admin socket must still be owner-only. */
static int adopt(struct ks_listener *l, const char *addr, int fd, const char *bound,
                 mode_t mode, const char *group, int is_admin)
{
    struct stat st;

    l->fd = fd;
    l->inherited = 1;
    snprintf(l->path, sizeof(l->path), "%s", bound);
    if (stat(bound, &st) != 0) {
        ks_log("error: socket activation: cannot check %s: %s", bound, strerror(errno));
        goto fail;
    }
    if (is_admin && (st.st_mode & 077) != 0) {
        ks_log("error: socket activation: admin socket %s has mode %04o; it must be 0600 "
               "(SocketMode=0600 in keystored-admin.socket)", bound,
               (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    if (strcmp(bound, addr + 5) != 0)
        ks_log("warning: socket activation: %s socket is %s, the configuration says %s; "
               "using %s", is_admin ? "admin" : "client", bound, addr, bound);
    if (!is_admin && (st.st_mode & 07777) != mode)
        ks_log("note: client socket %s has mode %04o from systemd (SocketMode=), "
               "socket_mode %04o is not applied", bound, (unsigned)(st.st_mode & 07777),
               (unsigned)mode);
    if (!is_admin && group != NULL) {
        gid_t gid;

        if (resolve_group(group, &gid, 1) == 0 && st.st_gid != gid)
            ks_log("note: client socket %s has group %u from systemd (SocketGroup=), "
                   "socket_group %s is not applied", bound, (unsigned)st.st_gid, group);
    }
    ks_log("listening on unix:%s (%s socket from socket activation, mode %04o)", bound,
           is_admin ? "admin" : "client", (unsigned)(st.st_mode & 07777));
    return 0;
fail:
    ks_listener_close(l, 0);
    return -1;
}

/* An existing socket file is stale unless a server answers on it. */
static int remove_stale(const char *path)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, r;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        ks_log("error: cannot check %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        ks_log("error: %s exists and is not a socket; remove it or configure another path", path);
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ks_log("error: socket: %s", strerror(errno));
        return -1;
    }
    r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    close(fd);
    if (r == 0) {
        ks_log("error: another server is already listening on %s; stop it first", path);
        return -1;
    }
    if (unlink(path) != 0) {
        ks_log("error: cannot remove stale socket %s: %s", path, strerror(errno));
        return -1;
    }
    ks_log("removed stale socket %s", path);
    return 0;
}

int ks_listener_open(struct ks_listener *l, const char *addr, mode_t mode, const char *group,
                     int is_admin)
{
    struct sockaddr_un sun;
    const char *path = addr + 5;   /* config.c checked the "unix:/" prefix and length */
    gid_t gid = (gid_t)-1;
    mode_t old;
    int r;

    l->kind = KS_ITEM_LISTENER;
    l->fd = -1;
    l->is_admin = is_admin;
    l->inherited = 0;
    l->is_tcp = 0;
    l->path[0] = '\0';
    if (strncmp(addr, "unix:/", 6) != 0 || strlen(path) >= sizeof(sun.sun_path)) {
        ks_log("error: unsupported socket address %s (use unix:/absolute/path)", addr);
        return -1;
    }
    {
        char bound[sizeof(sun.sun_path)];
        int fd = ks_sd_listen_take(is_admin ? "admin" : "client", path, bound, sizeof(bound));

        if (fd >= 0)
            return adopt(l, addr, fd, bound, mode, group, is_admin);
    }
    if (group != NULL && resolve_group(group, &gid, 0) != 0)
        return -1;
    if (remove_stale(path) != 0)
        return -1;
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        ks_log("error: socket: %s", strerror(errno));
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    /* Create the file owner-only, then widen: never briefly more open than `mode`. */
    old = umask(0177);
    r = bind(l->fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (r != 0) {
        ks_log("error: cannot bind %s: %s%s", path, strerror(errno),
               errno == ENOENT ? " (create the directory first)" : "");
        goto fail;
    }
    snprintf(l->path, sizeof(l->path), "%s", path);
    /* the group first: the file is still 0600 while it changes hands */
    if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0) {
        ks_log("error: cannot give %s to group %s (socket_group): %s%s", path, group,
               strerror(errno), errno == EPERM ? " (keystored is not root and not a member of "
               "that group: set socket_group to one of its groups)" : "");
        goto fail;
    }
    if (chmod(path, mode) != 0) {
        ks_log("error: cannot chmod %04o %s: %s", (unsigned)mode, path, strerror(errno));
        goto fail;
    }
    if (listen(l->fd, LISTEN_BACKLOG) != 0) {
        ks_log("error: cannot listen on %s: %s", path, strerror(errno));
        goto fail;
    }
    if (gid != (gid_t)-1)
        ks_log("listening on %s (%s socket, mode %04o, group %s)", addr,
               is_admin ? "admin" : "client", (unsigned)mode, group);
    else
        ks_log("listening on %s (%s socket, mode %04o)", addr, is_admin ? "admin" : "client",
               (unsigned)mode);
    return 0;
fail:
    ks_listener_close(l, 1);
    return -1;
}

void ks_listener_close(struct ks_listener *l, int unlink_file)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (unlink_file && !l->is_tcp && !l->inherited && l->path[0] != '\0' &&
        unlink(l->path) != 0 && errno != ENOENT)
        ks_log("warning: cannot remove socket %s: %s", l->path, strerror(errno));
    l->path[0] = '\0';
}
