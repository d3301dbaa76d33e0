/* max_connections_per_client: open connections per identity ("uid:N",
 * "tcp:NAME"), shared by all workers. */
#ifndef KS_CLIENT_LIMIT_H
#define KS_CLIENT_LIMIT_H

#include "ops/session.h"

/* Count s under id if below max (0 = unlimited; nothing counted).
 * Returns 0, or -1 if the client already has max connections. */
int ks_limit_acquire(struct ks_session *s, const char *id, int max);

/* 1 if id already has max connections (a peek: nothing is counted). */
int ks_limit_full(const char *id, int max);

/* Uncount s (no-op if it was not counted). */
void ks_limit_release(struct ks_session *s);

/* Unauthenticated TCP connections per source address (IP, no port):
 * count one if below max (0, else -1); release when it authenticates or
 * closes. */
#define KS_LIMIT_ADDR_MAX 48
int ks_limit_addr_acquire(const char *addr, int max);
void ks_limit_addr_release(const char *addr);

#endif
