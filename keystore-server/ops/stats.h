/* Health and metrics counters for `keystorectl status` / `metrics`.
 *
 * Operations are counted per thread (each worker writes only its own
 * slot, with relaxed atomics: no lock and no shared cache line on the
 * request path); ks_stats_fill merges the slots when asked.  Latencies go
 * into a log-bucketed histogram per operation: four buckets per power of
 * two of microseconds, so p50/p99 are within about 12%. */
#ifndef KS_STATS_H
#define KS_STATS_H

#include <stdint.h>

#include "common/arena.h"
#include "wire.h"

enum ks_op_kind {
    KS_OPK_HELLO, KS_OPK_GET_KEY, KS_OPK_LIST_KEYS, KS_OPK_SIGN, KS_OPK_DECRYPT,
    KS_OPK_DERIVE, KS_OPK_GENERATE, KS_OPK_IMPORT, KS_OPK_DELETE, KS_OPK_ATTACH_CERT, KS_OPK_STATUS,
    KS_OPK_RELOAD, KS_OPK_ROTATE, KS_OPK_RETIRE, KS_OPK_UNKNOWN, KS_OPK_UNDECODABLE, KS_OPK_N
};

enum ks_conn_kind { KS_CONNK_CLIENT, KS_CONNK_ADMIN, KS_CONNK_TCP, KS_CONNK_N };

/* The operation of a request ("sign", as in the audit log) and the key it
 * names (or NULL).  req NULL: a frame that did not decode. */
enum ks_op_kind ks_op_kind_of(const Keystore__Request *req, const char **key);
const char *ks_op_kind_name(enum ks_op_kind k);

/* Start of the uptime. */
void ks_stats_start(void);

/* One finished request; result is ERROR_NONE for success. */
void ks_stats_record(enum ks_op_kind op, const char *key, Keystore__ErrorCode result,
                     uint64_t latency_us);

void ks_stats_conn_open(enum ks_conn_kind k);
void ks_stats_conn_close(enum ks_conn_kind k);

/* The outcome of a reload (message: what changed, or what was wrong). */
void ks_stats_reload(int ok, const char *message);

/* Fill a StatusResponse, allocated in the arena.  0 or -1 (out of memory). */
int ks_stats_fill(struct ks_arena *a, Keystore__StatusResponse *out, uint64_t keys,
                  uint32_t workers);

#endif
