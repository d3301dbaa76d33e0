/* Handshake timestamps per client key; see tcp_replay.h.  The table holds
 * only authorized keys (checked before), so it is as small as
 * authorized_clients; one mutex, taken once per handshake.
 *
 * One client (say nginx's workers sharing a key) opens connections
 * concurrently, so its messages 1 can arrive slightly out of order: a plain
 * "newer than the last" would refuse a genuine one.  Each key keeps the
 * RECENT newest accepted timestamps and a floor, the newest one it forgot;
 * a timestamp is accepted iff it is above the floor and not among those
 * kept.  Every timestamp ever accepted is either kept or at most the floor,
 * so none is accepted twice. */
#include "tcp_replay.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RECENT 32

struct seen {
    uint8_t pk[KS_X25519_LEN];
    uint8_t floor[KS_TAI64N_LEN];          /* all zero: nothing forgotten yet */
    uint8_t recent[RECENT][KS_TAI64N_LEN];
    int nrecent;
};

/* Accept ts for e if never accepted before (see the top comment). */
static int remember(struct seen *e, const uint8_t ts[KS_TAI64N_LEN])
{
    int i, oldest = 0;

    if (memcmp(ts, e->floor, KS_TAI64N_LEN) <= 0)
        return -1;
    for (i = 0; i < e->nrecent; i++) {
        if (memcmp(ts, e->recent[i], KS_TAI64N_LEN) == 0)
            return -1;
        if (memcmp(e->recent[i], e->recent[oldest], KS_TAI64N_LEN) < 0)
            oldest = i;
    }
    if (e->nrecent < RECENT) {
        memcpy(e->recent[e->nrecent++], ts, KS_TAI64N_LEN);
        return 0;
    }
    /* forget the oldest kept one; it, and everything below it, is refused */
    if (memcmp(ts, e->recent[oldest], KS_TAI64N_LEN) < 0)
        return -1;
    memcpy(e->floor, e->recent[oldest], KS_TAI64N_LEN);
    memcpy(e->recent[oldest], ts, KS_TAI64N_LEN);
    return 0;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen *table;
static size_t n, cap;
static int64_t start_ns;

void ks_tcp_replay_start(void)
{
    start_ns = ks_wall_ns();
}

enum ks_ts_verdict ks_tcp_replay_check(const uint8_t pk[KS_X25519_LEN],
                                       const uint8_t ts[KS_TAI64N_LEN], int64_t now_ns,
                                       int64_t max_skew_ns, int64_t *delta_ms)
{
    enum ks_ts_verdict v = KS_TS_FRESH;
    struct seen *e = NULL;
    int64_t t;
    size_t i;

    *delta_ms = 0;
    if (ks_tai64n_to_unix_ns(ts, &t) != 0)
        return KS_TS_INVALID;
    *delta_ms = (t - now_ns) / 1000000;
    if (t < now_ns - max_skew_ns || t > now_ns + max_skew_ns)
        return KS_TS_SKEW;
    /* no memory survives a restart: anything stamped before it may have
     * been accepted by the previous instance */
    if (t < start_ns)
        return KS_TS_BEFORE_START;
    pthread_mutex_lock(&lock);
    for (i = 0; i < n; i++)
        if (memcmp(table[i].pk, pk, KS_X25519_LEN) == 0)
            e = &table[i];
    if (e == NULL) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct seen *nt = realloc(table, ncap * sizeof(*nt));

            if (nt == NULL) {
                v = KS_TS_REPLAYED;   /* cannot remember it: refuse rather than risk a replay */
                goto out;
            }
            table = nt;
            cap = ncap;
        }
        e = &table[n++];
        memset(e, 0, sizeof(*e));
        memcpy(e->pk, pk, KS_X25519_LEN);
    }
    /* big-endian labels: byte order is time order */
    if (remember(e, ts) != 0)
        v = KS_TS_REPLAYED;
out:
    pthread_mutex_unlock(&lock);
    return v;
}
