/* sd_notify without libsystemd; see sdnotify.h. */
#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"

static int notify_fd = -1;
static int64_t watchdog_half_us;

static int parse_u64(const char *s, unsigned long long *out)
{
    char *end;

    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0' ? 0 : -1;
}

int ks_sd_notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET"), *wd = getenv("WATCHDOG_USEC");
    const char *wpid = getenv("WATCHDOG_PID");
    struct sockaddr_un sa;
    socklen_t salen;
    unsigned long long v, pid;
    size_t n;

    if (wd != NULL && (wpid == NULL || (parse_u64(wpid, &pid) == 0 && pid == (unsigned long long)getpid()))) {
        if (parse_u64(wd, &v) != 0 || v == 0) {
            ks_log("error: WATCHDOG_USEC='%.40s' is not a number of microseconds", wd);
            return -1;
        }
        watchdog_half_us = (int64_t)(v / 2);
    }
    if (path == NULL || path[0] == '\0')
        return 0;
    n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path)) {
        ks_log("error: NOTIFY_SOCKET='%.60s' is neither an absolute path nor an abstract "
               "socket (@name)", path);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (notify_fd < 0 || connect(notify_fd, (struct sockaddr *)&sa, salen) != 0) {
        ks_log("error: cannot connect to NOTIFY_SOCKET %s: %s", path, strerror(errno));
        if (notify_fd >= 0)
            close(notify_fd);
        notify_fd = -1;
        return -1;
    }
    if (watchdog_half_us > 0)
        ks_log("systemd watchdog: pinging every %lld ms", (long long)(watchdog_half_us / 1000));
    return 0;
}

void ks_sd_notify(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    int n;

    if (notify_fd < 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1;
    /* MSG_NOSIGNAL: a gone systemd must not kill us; a full queue drops the
     * message (the next one follows) rather than stall a worker */
    if (send(notify_fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* nothing useful to do: systemd is not listening */
    }
}

int64_t ks_sd_watchdog_half_us(void)
{
    return notify_fd >= 0 ? watchdog_half_us : 0;
}

void ks_sd_notify_close(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
}
