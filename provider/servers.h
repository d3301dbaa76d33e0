/* The list of keystore servers a provider talks to (`server =` /
 * KEYSTORE_SERVER: several addresses separated by commas and/or
 * whitespace), which one an operation goes to, and the per-process backoff
 * from servers that failed.  client.c asks here where to connect; the
 * connections themselves stay in client.c. */
#ifndef KEYSTORE_SERVERS_H
#define KEYSTORE_SERVERS_H

#include "provider.h"

#include <stddef.h>

/* Backoff from a failed server: 50 ms doubling to 5 s, each delay drawn
 * between half and all of it (jitter, so processes do not retry in step). */
#define KS_BACKOFF_MIN_MS 50
#define KS_BACKOFF_MAX_MS 5000

/* A key that a server did not have (or had a different one of) is asked
 * about again on that server after this long, not on every operation. */
#define KS_KEY_RECHECK_MS 2000

struct ks_key_st;

/* Parse the list; tcp: entries take their pinned key from a "@KEY" suffix,
 * else default_pubkey.  Returns 1, or 0 with an error raised. */
int ks_servers_configure(KS_PROVCTX *pc, const char *list, const char *default_pubkey);
void ks_servers_free(KS_PROVCTX *pc);

size_t ks_servers_count(const KS_PROVCTX *pc);
const char *ks_servers_addr(const KS_PROVCTX *pc, int i);
const char *ks_servers_pubkey(const KS_PROVCTX *pc, int i);

/* Where a new connection starts looking: the next server in rotation from
 * a random per-process offset, so threads and processes spread out. */
int ks_servers_home(KS_PROVCTX *pc);

/* The first server from `start` on that is not in `tried` and may be
 * used now: healthy, or its backoff delay has passed (then this caller is
 * the one that tries it: the others keep skipping it meanwhile).  -1 if
 * none.  *usable receives how many servers the operation could still try,
 * this one included (the share of the deadline this attempt gets). */
int ks_servers_pick(KS_PROVCTX *pc, int start, unsigned tried, int *usable);

/* A connection to server i failed (reason KS_R_*, msg for the person), or
 * it answered. */
void ks_servers_failed(KS_PROVCTX *pc, int i, int reason, const char *msg);
void ks_servers_ok(KS_PROVCTX *pc, int i);

/* Raise one error per server not in `tried` that was skipped because of
 * its backoff (its last failure, and when it is tried next).  Returns how
 * many were raised. */
int ks_servers_raise_skipped(KS_PROVCTX *pc, unsigned tried);

/* Whether key k may be used on server i: 1 yes (its own server, or that
 * server's public key for the name was checked equal), -1 checked recently
 * and not (*reason and msg say why), 0 not known yet: ask with GetKey and
 * record the verdict with ks_servers_key_checked (which returns what
 * ks_servers_key_state would now). */
enum { KS_KEYCHK_SAME = 1, KS_KEYCHK_ABSENT, KS_KEYCHK_DIFFERENT };
int ks_servers_key_state(KS_PROVCTX *pc, const struct ks_key_st *k, int i, int *reason,
                         char *msg, size_t msglen);
int ks_servers_key_checked(KS_PROVCTX *pc, struct ks_key_st *k, int i, int verdict,
                           int *reason, char *msg, size_t msglen);

#endif
