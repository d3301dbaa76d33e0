/* The server's own control operations (Status, Reload): the daemon layer
 * registers how a reload is done, since reading configuration files is its
 * business (daemon/reload.c); ops/ only answers the request. */
#ifndef KS_CONTROL_H
#define KS_CONTROL_H

#include <stddef.h>

/* Performs a reload; returns 0 with what changed in msg, or -1 with what
 * was wrong (FILE:LINE: problem).  Called from a worker thread. */
typedef int (*ks_reload_fn)(const char *trigger, char *msg, size_t msglen);

void ks_control_set_reloader(ks_reload_fn fn);

/* Worker threads, reported by Status. */
void ks_control_set_workers(unsigned n);

#endif
