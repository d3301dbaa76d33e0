/* catalogue = etcd, the key process's side (docs/scaling.md): the agent
 * process (catalogue_agent.c) that talks to etcd, the store's hook that
 * sends it transactions, and the thread that applies what etcd holds. */
#ifndef KS_DAEMON_CATALOGUE_H
#define KS_DAEMON_CATALOGUE_H

#include "common/config.h"

/* Fork the agent (catalogue_agent.c); without catalogue = etcd nothing.
 * Call right after the configuration is read (no secret in memory, one
 * thread).  *req_fd / *ev_fd: the key process's ends.  0 or -1 logged. */
int ks_catalogue_agent_start(const struct ks_config *cfg, int *req_fd, int *ev_fd);

/* Key process: start the agent and register the store's hook. */
int ks_catalogue_start(const struct ks_config *cfg);

/* The thread applying records from etcd; create it before the seccomp
 * filter (no thread is created after it).  0 or -1 logged. */
int ks_catalogue_thread_start(void);

#endif
