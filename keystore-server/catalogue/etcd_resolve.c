/* Endpoints by host name, resolved before confinement; see etcd.h. */
#include "etcd.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* "http(s)://HOST:PORT" -> host, port; 0, 1 (an IP literal: nothing to do), -1. */
static int split(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *rest = strstr(url, "://"), *colon;
    unsigned char addr[16];

    if (rest == NULL)
        return -1;
    rest += 3;
    if (rest[0] == '[')
        return 1;   /* [IPv6]:PORT */
    colon = strrchr(rest, ':');
    if (colon == NULL || colon == rest || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        (size_t)(colon - rest) >= hostlen || strlen(colon + 1) >= portlen)
        return -1;
    snprintf(host, hostlen, "%.*s", (int)(colon - rest), rest);
    snprintf(port, portlen, "%s", colon + 1);
    return inet_pton(AF_INET, host, addr) == 1 ? 1 : 0;
}

int ks_etcd_resolve(struct ks_etcd_opts *o, char *err, size_t errlen)
{
    int i;

    o->nresolve = 0;
    for (i = 0; i < o->nendpoints; i++) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *a;
        char host[256], port[8], *line = o->resolve[o->nresolve];
        size_t n;
        int rc = split(o->endpoints[i], host, sizeof(host), port, sizeof(port)), g;

        if (rc == 1)
            continue;
        if (rc < 0) {
            snprintf(err, errlen, "etcd endpoint %s is not http(s)://HOST:PORT", o->endpoints[i]);
            return -1;
        }
        g = getaddrinfo(host, port, &hints, &res);
        if (g != 0) {
            snprintf(err, errlen, "cannot resolve the host of etcd endpoint %s: %s",
                     o->endpoints[i], gai_strerror(g));
            return -1;
        }
        n = (size_t)snprintf(line, sizeof(o->resolve[0]), "%s:%s:", host, port);
        for (a = res; a != NULL && n < sizeof(o->resolve[0]) - 50; a = a->ai_next) {
            char ip[INET6_ADDRSTRLEN];
            const void *p = a->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;

            if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
                inet_ntop(a->ai_family, p, ip, sizeof(ip)) == NULL || strstr(line, ip) != NULL)
                continue;
            n += (size_t)snprintf(line + n, sizeof(o->resolve[0]) - n, "%s%s%s%s",
                                  line[n - 1] == ':' ? "" : ",", a->ai_family == AF_INET6 ? "[" : "",
                                  ip, a->ai_family == AF_INET6 ? "]" : "");
        }
        freeaddrinfo(res);
        if (line[n - 1] == ':') {
            snprintf(err, errlen, "the host of etcd endpoint %s has no IPv4 or IPv6 address",
                     o->endpoints[i]);
            return -1;
        }
        o->nresolve++;
    }
    return 0;
}
