/* Reading the policy files (access list, authorized TCP clients) and the
 * certificate chains, at start-up and on reload (SIGHUP, keystorectl
 * reload).  Everything is read and parsed into new structures first; only
 * if all of it is valid are they swapped in, so a configuration with an
 * error is refused whole and the previous one stays in force.
 * keystored.conf itself is not read again (sockets, paths and limits need
 * a restart). */
#ifndef KS_RELOAD_H
#define KS_RELOAD_H

#include <stddef.h>

#include "common/config.h"

/* Start-up: the first load (through the configuration reader, as reloads
 * are).  Returns 0, or -1 after logging FILE:LINE: problem. */
int ks_reload_initial(const struct ks_config *cfg);

/* A reload; 0 with what changed in msg, -1 with what was wrong.  Logged,
 * counted for keystorectl status, announced to systemd (RELOADING=1, then
 * READY=1).  Serialized: concurrent triggers run one after the other. */
int ks_reload_run(const char *trigger, char *msg, size_t msglen);

#endif
