/* Listening sockets and the worker threads that serve them. */
#ifndef KS_SERVER_H
#define KS_SERVER_H

#include <sys/types.h>

#include "config.h"

/* Kinds of objects registered in the workers' epoll sets. */
enum { KS_ITEM_LISTENER = 1, KS_ITEM_CONN, KS_ITEM_STOP };

struct ks_listener {
    int kind;            /* KS_ITEM_LISTENER */
    int fd;
    int is_admin;
    char path[108];
};

/* Bind and listen on "unix:/path" with exactly `mode`.  A stale socket file
 * is removed first; a live server on it, or a non-socket file, is an error.
 * Returns 0 or -1 after logging. */
int ks_listener_open(struct ks_listener *l, const char *addr, mode_t mode, int is_admin);

/* Close and unlink the socket file. */
void ks_listener_close(struct ks_listener *l);

/* Block SIGTERM/SIGINT (and ignore SIGPIPE) in the calling thread, before
 * any thread exists, so that only ks_serve's sigwait sees them. */
int ks_block_signals(void);

/* Start cfg->workers threads, serve until SIGTERM/SIGINT, stop them.
 * Returns 0 on a clean shutdown, -1 if the workers could not start. */
int ks_serve(const struct ks_config *cfg, struct ks_listener *ls, int nls);

#endif
