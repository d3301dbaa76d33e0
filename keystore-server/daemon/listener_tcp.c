/* TCP listening sockets for remote clients; see server.h.  Every TCP
 * connection must complete the secure handshake (conn_tcp.c) first. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "common/log.h"

#define LISTEN_BACKLOG 1024

/* The address actually bound (port 0 picks one), as tcp:ADDR:PORT. */
static void bound_name(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "tcp:%s:%d", host, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "tcp:[%s]:%d", host,
                 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    }
}

int ks_listener_open_tcp(struct ks_listener *l, const char *addr)
{
    char host[256], port[8], err[256];
    struct addrinfo hints, *res = NULL;
    int one = 1, e;

    l->kind = KS_ITEM_LISTENER;
    l->fd = -1;
    l->is_admin = 0;
    l->is_tcp = 1;
    snprintf(l->path, sizeof(l->path), "%s", addr);
    if (ks_parse_tcp_addr(addr, host, sizeof(host), port, sizeof(port), err, sizeof(err)) != 0) {
        ks_log("error: listen_tcp: %s", err);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    e = getaddrinfo(host, port, &hints, &res);
    if (e != 0) {
        ks_log("error: listen_tcp %s: cannot resolve %s: %s", addr, host, gai_strerror(e));
        return -1;
    }
    l->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        ks_log("error: listen_tcp %s: socket: %s", addr, strerror(errno));
        goto fail;
    }
    /* restart without waiting for TIME_WAIT; an IPv6 listener is IPv6 only
     * so tcp:[::]:P and tcp:0.0.0.0:P can both be configured */
    if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (res->ai_family == AF_INET6 &&
         setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
        ks_log("error: listen_tcp %s: setsockopt: %s", addr, strerror(errno));
        goto fail;
    }
    if (bind(l->fd, res->ai_addr, res->ai_addrlen) != 0) {
        ks_log("error: listen_tcp: cannot bind %s: %s", addr, strerror(errno));
        goto fail;
    }
    if (listen(l->fd, LISTEN_BACKLOG) != 0) {
        ks_log("error: listen_tcp: cannot listen on %s: %s", addr, strerror(errno));
        goto fail;
    }
    freeaddrinfo(res);
    bound_name(l->fd, l->path, sizeof(l->path));
    ks_log("listening on %s (TCP, encrypted and authenticated clients only)", l->path);
    return 0;
fail:
    freeaddrinfo(res);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    return -1;
}
