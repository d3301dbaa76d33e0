/* Per-thread operation counters and latency histograms; see stats.h. */
#include "stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"   /* KS_SERVER_VERSION */

#define MAX_SLOTS 272               /* workers (<= 256) plus the main thread and spares */
#define MAP_SIZE 512                /* (key, op, result) counters per thread */
#define MAP_FILL 384                /* beyond this, new keys count as "_other" */
#define MAX_RESULT 32               /* ErrorCode values tracked exactly */
#define NOCT 26                     /* octaves of microseconds: up to 2^26 us (67 s) */
#define NBUCKETS (4 + (NOCT - 2) * 4)
#define OTHER_KEY "_other"

/* Map entries: state 0 free, 1 being written, 2 ready (release/acquire). */
struct entry {
    int state;
    uint8_t op;
    uint8_t result;
    char key[KS_MAX_KEY_NAME + 1];
    uint64_t count;
};

struct slot {
    struct entry map[MAP_SIZE];
    int used;
    uint64_t hist[KS_OPK_N][NBUCKETS];
    uint64_t sum_us[KS_OPK_N];
};

static struct slot *slots[MAX_SLOTS];
static int nslots;
static struct slot shared_slot;     /* threads beyond MAX_SLOTS or without memory */
static __thread struct slot *my_slot;

static uint64_t conn_open[KS_CONNK_N], conn_accepted[KS_CONNK_N];
static time_t start_time;
static int64_t start_mono_us;

static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t reloads_ok, reloads_refused;
static time_t last_reload_time;
static int last_reload_ok;
static char last_reload_msg[512];

static const char *const OP_NAMES[KS_OPK_N] = {
    "hello", "get_key", "list_keys", "sign", "decrypt", "derive", "generate", "import", "delete",
    "attach_cert", "status", "reload", "rotate", "retire", "unknown", "undecodable",
};
static const char *const CONN_NAMES[KS_CONNK_N] = { "client", "admin", "tcp" };

const char *ks_op_kind_name(enum ks_op_kind k)
{
    return k < KS_OPK_N ? OP_NAMES[k] : "unknown";
}

enum ks_op_kind ks_op_kind_of(const Keystore__Request *req, const char **key)
{
    *key = NULL;
    if (req == NULL)
        return KS_OPK_UNDECODABLE;
    if (req->hello == NULL)            /* oneof members share storage */
        return KS_OPK_UNKNOWN;
    switch (req->body_case) {
    case KEYSTORE__REQUEST__BODY_HELLO: return KS_OPK_HELLO;
    case KEYSTORE__REQUEST__BODY_GET_KEY: *key = req->get_key->name; return KS_OPK_GET_KEY;
    case KEYSTORE__REQUEST__BODY_SIGN: *key = req->sign->key; return KS_OPK_SIGN;
    case KEYSTORE__REQUEST__BODY_DECRYPT: *key = req->decrypt->key; return KS_OPK_DECRYPT;
    case KEYSTORE__REQUEST__BODY_DERIVE: *key = req->derive->key; return KS_OPK_DERIVE;
    case KEYSTORE__REQUEST__BODY_LIST_KEYS: return KS_OPK_LIST_KEYS;
    case KEYSTORE__REQUEST__BODY_GENERATE_KEY: *key = req->generate_key->name; return KS_OPK_GENERATE;
    case KEYSTORE__REQUEST__BODY_IMPORT_KEY: *key = req->import_key->name; return KS_OPK_IMPORT;
    case KEYSTORE__REQUEST__BODY_DELETE_KEY: *key = req->delete_key->name; return KS_OPK_DELETE;
    case KEYSTORE__REQUEST__BODY_ATTACH_CERT: *key = req->attach_cert->name; return KS_OPK_ATTACH_CERT;
    case KEYSTORE__REQUEST__BODY_STATUS: return KS_OPK_STATUS;
    case KEYSTORE__REQUEST__BODY_RELOAD: return KS_OPK_RELOAD;
    case KEYSTORE__REQUEST__BODY_ROTATE: *key = req->rotate->name; return KS_OPK_ROTATE;
    case KEYSTORE__REQUEST__BODY_RETIRE: *key = req->retire->name; return KS_OPK_RETIRE;
    default: return KS_OPK_UNKNOWN;
    }
}

void ks_stats_start(void)
{
    start_time = time(NULL);
    start_mono_us = ks_mono_us();
}

/* 0..3 exact; then four buckets per octave [2^o, 2^(o+1)). */
static int bucket_of(uint64_t us)
{
    int o;

    if (us < 4)
        return (int)us;
    o = 63 - __builtin_clzll(us);
    if (o >= NOCT)
        return NBUCKETS - 1;
    return 4 + (o - 2) * 4 + (int)((us >> (o - 2)) & 3);
}

/* Exclusive upper bound of bucket i in microseconds (the last is open). */
static uint64_t bucket_upper(int i)
{
    int o, sub;

    if (i < 4)
        return (uint64_t)i + 1;
    o = 2 + (i - 4) / 4;
    sub = (i - 4) % 4;
    return (uint64_t)(5 + sub) << (o - 2);
}

static uint64_t bucket_lower(int i)
{
    return i == 0 ? 0 : bucket_upper(i - 1);
}

static struct slot *get_slot(void)
{
    struct slot *s;
    int i;

    if (my_slot != NULL)
        return my_slot;
    s = calloc(1, sizeof(*s));
    i = __atomic_fetch_add(&nslots, 1, __ATOMIC_ACQ_REL);
    if (s == NULL || i >= MAX_SLOTS) {
        free(s);
        s = &shared_slot;
    } else {
        __atomic_store_n(&slots[i], s, __ATOMIC_RELEASE);
    }
    my_slot = s;
    return s;
}

static uint32_t entry_hash(const char *key, int op, int result)
{
    uint32_t h = 2166136261u ^ (uint32_t)(op * 131 + result);

    for (; *key != '\0'; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    return h;
}

/* The counter for (key, op, result); NULL when the map is full.  Writers
 * may share a slot (shared_slot), so claiming an entry is a CAS. */
static uint64_t *counter(struct slot *s, const char *key, int op, int result, int reserved)
{
    uint32_t i = entry_hash(key, op, result) & (MAP_SIZE - 1);
    unsigned probes;

    for (probes = 0; probes < MAP_SIZE; probes++, i = (i + 1) & (MAP_SIZE - 1)) {
        struct entry *e = &s->map[i];
        int st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE), zero = 0;

        if (st == 0) {
            if (!reserved && __atomic_load_n(&s->used, __ATOMIC_RELAXED) >= MAP_FILL)
                return NULL;
            if (!__atomic_compare_exchange_n(&e->state, &zero, 1, 0, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE)) {
                st = zero;
            } else {
                __atomic_add_fetch(&s->used, 1, __ATOMIC_RELAXED);
                e->op = (uint8_t)op;
                e->result = (uint8_t)result;
                snprintf(e->key, sizeof(e->key), "%s", key);
                __atomic_store_n(&e->state, 2, __ATOMIC_RELEASE);
                return &e->count;
            }
        }
        while (st == 1)   /* another writer is filling it in: a few stores */
            st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
        if (e->op == op && e->result == result && strcmp(e->key, key) == 0)
            return &e->count;
    }
    return NULL;
}

void ks_stats_record(enum ks_op_kind op, const char *key, Keystore__ErrorCode result,
                     uint64_t latency_us)
{
    struct slot *s = get_slot();
    uint64_t *c;
    int r = (int)result < MAX_RESULT && (int)result >= 0 ? (int)result : MAX_RESULT - 1;

    /* only valid names become labels: a refused request may carry anything */
    if (key == NULL || !ks_valid_key_name(key))
        key = "";
    c = counter(s, key, (int)op, r, 0);
    if (c == NULL)   /* a few (op, result) pairs in practice: the reserved room holds them */
        c = counter(s, OTHER_KEY, (int)op, r, 1);
    if (c != NULL)
        __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->hist[op][bucket_of(latency_us)], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->sum_us[op], latency_us, __ATOMIC_RELAXED);
}

void ks_stats_conn_open(enum ks_conn_kind k)
{
    __atomic_add_fetch(&conn_open[k], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&conn_accepted[k], 1, __ATOMIC_RELAXED);
}

void ks_stats_conn_close(enum ks_conn_kind k)
{
    __atomic_sub_fetch(&conn_open[k], 1, __ATOMIC_RELAXED);
}

void ks_stats_reload(int ok, const char *message)
{
    pthread_mutex_lock(&reload_lock);
    if (ok)
        reloads_ok++;
    else
        reloads_refused++;
    last_reload_time = time(NULL);
    last_reload_ok = ok;
    snprintf(last_reload_msg, sizeof(last_reload_msg), "%s", message);
    pthread_mutex_unlock(&reload_lock);
}

/* ---- merging ---------------------------------------------------------- */

struct merged {
    const char *key;
    int op, result;
    uint64_t count;
};

static int merge_entries(struct ks_arena *a, Keystore__StatusResponse *out, uint64_t *errors)
{
    size_t cap = 0, n = 0, i, j = 0, hsize, *index;
    struct merged *m;
    int k, ns = __atomic_load_n(&nslots, __ATOMIC_ACQUIRE);
    struct slot *all[MAX_SLOTS + 1];
    int nall = 0;

    for (k = 0; k < ns && k < MAX_SLOTS; k++) {
        struct slot *s = __atomic_load_n(&slots[k], __ATOMIC_ACQUIRE);

        if (s != NULL)
            all[nall++] = s;
    }
    all[nall++] = &shared_slot;
    cap = (size_t)nall * MAP_SIZE;
    for (hsize = 1; hsize < 2 * cap; hsize *= 2)
        ;
    m = ks_arena_alloc(a, cap * sizeof(*m));
    index = ks_arena_alloc(a, hsize * sizeof(*index));   /* 0 = empty, else entry + 1 */
    if (m == NULL || index == NULL)
        return -1;
    /* merged through a hash table: many workers' entries stay cheap to merge */
    for (k = 0; k < nall; k++) {
        for (i = 0; i < MAP_SIZE; i++) {
            const struct entry *e = &all[k]->map[i];
            uint64_t c;
            size_t h;

            if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != 2)
                continue;
            c = __atomic_load_n(&e->count, __ATOMIC_RELAXED);
            h = entry_hash(e->key, e->op, e->result) & (hsize - 1);
            for (; index[h] != 0; h = (h + 1) & (hsize - 1)) {
                j = index[h] - 1;
                if (m[j].op == e->op && m[j].result == e->result && strcmp(m[j].key, e->key) == 0)
                    break;
            }
            if (index[h] == 0) {
                j = n;
                index[h] = n + 1;
                m[n].key = e->key;
                m[n].op = e->op;
                m[n].result = e->result;
                m[n].count = 0;
                n++;
            }
            m[j].count += c;
        }
    }
    out->operations = ks_arena_alloc(a, (n ? n : 1) * sizeof(*out->operations));
    if (out->operations == NULL)
        return -1;
    *errors = 0;
    for (i = 0; i < n; i++) {
        Keystore__OperationCount *oc = ks_arena_alloc(a, sizeof(*oc));

        if (oc == NULL)
            return -1;
        keystore__operation_count__init(oc);
        oc->key = ks_arena_printf(a, "%s", m[i].key);
        oc->op = (char *)ks_op_kind_name((enum ks_op_kind)m[i].op);
        oc->result = m[i].result == 0 ? (char *)"ok" :
                     (char *)ks_error_code_name((Keystore__ErrorCode)m[i].result);
        oc->count = m[i].count;
        if (oc->key == NULL)
            return -1;
        if (m[i].result != 0)
            *errors += m[i].count;
        out->operations[i] = oc;
    }
    out->n_operations = n;

    /* latency: merge the histograms per operation */
    out->latency = ks_arena_alloc(a, KS_OPK_N * sizeof(*out->latency));
    if (out->latency == NULL)
        return -1;
    for (k = 0; k < KS_OPK_N; k++) {
        uint64_t h[NBUCKETS], total = 0, sum = 0, cum = 0;
        Keystore__OperationLatency *l;
        int b, o, s;

        memset(h, 0, sizeof(h));
        for (s = 0; s < nall; s++) {
            for (b = 0; b < NBUCKETS; b++)
                h[b] += __atomic_load_n(&all[s]->hist[k][b], __ATOMIC_RELAXED);
            sum += __atomic_load_n(&all[s]->sum_us[k], __ATOMIC_RELAXED);
        }
        for (b = 0; b < NBUCKETS; b++)
            total += h[b];
        if (total == 0)
            continue;
        l = ks_arena_alloc(a, sizeof(*l));
        if (l == NULL)
            return -1;
        keystore__operation_latency__init(l);
        l->op = (char *)ks_op_kind_name((enum ks_op_kind)k);
        l->count = total;
        l->sum_us = sum;
        /* cumulative counts at the octave boundaries 1, 2, 4, ... 2^NOCT us */
        l->bucket_le_us = ks_arena_alloc(a, (NOCT + 1) * sizeof(uint64_t));
        l->bucket_count = ks_arena_alloc(a, (NOCT + 1) * sizeof(uint64_t));
        if (l->bucket_le_us == NULL || l->bucket_count == NULL)
            return -1;
        for (o = 0, b = 0; o <= NOCT; o++) {
            uint64_t le = (uint64_t)1 << o;

            while (b < NBUCKETS - 1 && bucket_upper(b) <= le)
                cum += h[b++];
            l->bucket_le_us[o] = le;
            l->bucket_count[o] = cum;
        }
        l->n_bucket_le_us = l->n_bucket_count = NOCT + 1;
        /* quantiles: linear within the bucket that holds the rank */
        for (s = 0; s < 2; s++) {
            uint64_t rank = s == 0 ? (total + 1) / 2 : total - total / 100, c = 0, q = 0;

            for (b = 0; b < NBUCKETS; b++) {
                if (c + h[b] >= rank) {
                    uint64_t lo = bucket_lower(b), hi = b == NBUCKETS - 1 ? lo * 2 : bucket_upper(b);

                    q = lo + (hi - lo) * (rank - c) / h[b];
                    break;
                }
                c += h[b];
            }
            if (s == 0)
                l->p50_us = q;
            else
                l->p99_us = q;
        }
        out->latency[out->n_latency++] = l;
    }
    return 0;
}

int ks_stats_fill(struct ks_arena *a, Keystore__StatusResponse *out, uint64_t keys,
                  uint32_t workers)
{
    int k;

    out->server_version = (char *)KS_SERVER_VERSION;
    out->start_time = (uint64_t)start_time;
    out->uptime_seconds = (uint64_t)((ks_mono_us() - start_mono_us) / 1000000);
    out->keys = keys;
    out->workers = workers;
    out->connections = ks_arena_alloc(a, KS_CONNK_N * sizeof(*out->connections));
    if (out->connections == NULL)
        return -1;
    for (k = 0; k < KS_CONNK_N; k++) {
        Keystore__ConnectionCount *cc = ks_arena_alloc(a, sizeof(*cc));

        if (cc == NULL)
            return -1;
        keystore__connection_count__init(cc);
        cc->kind = (char *)CONN_NAMES[k];
        cc->open = __atomic_load_n(&conn_open[k], __ATOMIC_RELAXED);
        cc->accepted = __atomic_load_n(&conn_accepted[k], __ATOMIC_RELAXED);
        out->connections[k] = cc;
    }
    out->n_connections = KS_CONNK_N;
    if (merge_entries(a, out, &out->errors) != 0)
        return -1;
    pthread_mutex_lock(&reload_lock);
    out->reloads = reloads_ok;
    out->reloads_refused = reloads_refused;
    out->last_reload_time = (uint64_t)last_reload_time;
    out->last_reload_ok = last_reload_ok;
    out->last_reload_message = ks_arena_printf(a, "%s", last_reload_msg);
    pthread_mutex_unlock(&reload_lock);
    return out->last_reload_message != NULL ? 0 : -1;
}
