/* Listening sockets and the worker threads that serve them. */
#ifndef KS_SERVER_H
#define KS_SERVER_H

#include <sys/types.h>

#include "common/config.h"

/* Kinds of objects registered in the workers' epoll sets. */
enum { KS_ITEM_LISTENER = 1, KS_ITEM_CONN, KS_ITEM_STOP };

struct ks_listener {
    int kind;            /* KS_ITEM_LISTENER */
    int fd;
    int is_admin;
    int is_tcp;          /* listener_tcp.c: path holds "tcp:ADDR:PORT" */
    int inherited;       /* passed by socket activation: never unlinked */
    char path[108];
};

/* Listen on one "tcp:HOST:PORT" / "tcp:[V6]:PORT" (port 0: any free port,
 * logged).  Returns 0 or -1 after logging. */
int ks_listener_open_tcp(struct ks_listener *l, const char *addr);

/* Bind and listen on "unix:/path" with exactly `mode` and, unless group is
 * NULL, that group (a name or a number), or use the socket
 * passed for this role by socket activation (ks_sd_listen_init first).  A stale socket file
 * is removed first; a live server on it, or a non-socket file, is an error.
 * Returns 0 or -1 after logging. */
int ks_listener_open(struct ks_listener *l, const char *addr, mode_t mode, const char *group,
                     int is_admin);

/* Close, and unlink the socket file if unlink_file (not possible once
 * chrooted; a stale file is removed by the next start). */
void ks_listener_close(struct ks_listener *l, int unlink_file);

/* Block SIGTERM/SIGINT/SIGHUP (and ignore SIGPIPE) in the calling thread,
 * before any thread exists; ks_serve_run unblocks them in the main thread
 * only.  A signal during start-up thus waits and still shuts down cleanly. */
int ks_block_signals(void);

/* Create the stop eventfd, the epoll sets and cfg->workers threads (256 KiB
 * stacks).  The threads wait at a gate and serve nobody until ks_serve_run,
 * so confinement can happen in between and still cover every thread.
 * Returns 0 or -1 after logging (nothing is left running). */
int ks_serve_prepare(const struct ks_config *cfg, struct ks_listener *ls, int nls);

/* Open the gate and serve until SIGTERM/SIGINT; then stop and join the
 * workers and close their connections.  Returns 0 on a clean shutdown. */
int ks_serve_run(const struct ks_config *cfg);

/* Stop and join prepared workers (for start-up failures after prepare). */
void ks_serve_stop(void);

#endif
