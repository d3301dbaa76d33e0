/* Server list, rotation and backoff; see servers.h.
 *
 * The backoff state is per process and shared by its threads (one mutex).
 * A forked child must not inherit it (nor a mutex another thread of the
 * parent held at fork time), so the state records its pid and a child that
 * finds its parent's state makes a fresh one on first use, as client.c does
 * with connections.  The parent's copy is left alone in the child (another
 * thread of the child may still be reading it): one small leak per fork. */
#include "servers.h"
#include "errors.h"
#include "key.h"
#include "selfpid.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct srv_conf {
    char addr[KS_ADDR_MAX];
    char pubkey[KS_ADDR_MAX];       /* tcp: pinned server key, "" for unix: */
};

struct srv_dyn {
    int backoff_ms;                 /* 0: healthy */
    long long next_try_us;          /* ks_mono_us() time it may be tried again */
    int reason;                     /* last failure, KS_R_* */
    char msg[KS_ERRLEN];
};

struct srv_proc {
    pid_t pid;
    pthread_mutex_t lock;
    unsigned offset;                /* random, per process */
    unsigned next;                  /* rotation counter */
    struct srv_dyn d[KS_MAX_SERVERS];
};

struct ks_servers {
    size_t n;
    struct srv_conf conf[KS_MAX_SERVERS];
    struct srv_proc *proc;          /* atomic: this process's state */
};

static int is_sep(char c)
{
    return c == ',' || isspace((unsigned char)c);
}

int ks_servers_configure(KS_PROVCTX *pc, const char *list, const char *default_pubkey)
{
    struct ks_servers *sv = calloc(1, sizeof(*sv));
    const char *p = list;

    if (sv == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "out of memory for the keystore server list");
        return 0;
    }
    while (*p != '\0') {
        const char *start, *at;
        size_t len, alen;
        struct srv_conf *c;

        while (is_sep(*p))
            p++;
        if (*p == '\0')
            break;
        for (start = p; *p != '\0' && !is_sep(*p); p++)
            ;
        len = (size_t)(p - start);
        if (sv->n == KS_MAX_SERVERS) {
            KS_RAISE(pc, KS_R_BAD_SETTING, "keystore server list '%.200s' has more than %d "
                     "addresses", list, KS_MAX_SERVERS);
            goto err;
        }
        c = &sv->conf[sv->n];
        /* "tcp:HOST:PORT@KEY": that server's own pinned key ('@' appears in
         * no tcp: address; a unix: path is taken whole) */
        at = strncmp(start, "tcp:", 4) == 0 ? memchr(start, '@', len) : NULL;
        alen = at != NULL ? (size_t)(at - start) : len;
        if (alen >= sizeof(c->addr)
            || (at != NULL && len - alen - 1 >= sizeof(c->pubkey))) {
            KS_RAISE(pc, KS_R_BAD_SETTING, "keystore server address '%.*s' is longer than %zu bytes",
                     (int)(len > 200 ? 200 : len), start, sizeof(c->addr) - 1);
            goto err;
        }
        memcpy(c->addr, start, alen);
        c->addr[alen] = '\0';
        if (at != NULL) {
            memcpy(c->pubkey, at + 1, len - alen - 1);
            c->pubkey[len - alen - 1] = '\0';
            if (c->pubkey[0] == '\0') {
                KS_RAISE(pc, KS_R_BAD_SETTING, "keystore server '%s': nothing after '@' (expected "
                         "tcp:HOST:PORT@SERVER_PUBLIC_KEY)", c->addr);
                goto err;
            }
        } else if (strncmp(c->addr, "tcp:", 4) == 0) {
            snprintf(c->pubkey, sizeof(c->pubkey), "%s", default_pubkey);
        }
        sv->n++;
    }
    if (sv->n == 0) {
        KS_RAISE(pc, KS_R_BAD_SETTING, "the keystore server setting '%.200s' names no address",
                 list);
        goto err;
    }
    pc->servers = sv;
    return 1;
err:
    free(sv);
    return 0;
}

void ks_servers_free(KS_PROVCTX *pc)
{
    struct ks_servers *sv = pc->servers;

    if (sv == NULL)
        return;
    if (sv->proc != NULL && sv->proc->pid == ks_self_pid()) {
        (void)pthread_mutex_destroy(&sv->proc->lock);
        free(sv->proc);
    }
    free(sv);
    pc->servers = NULL;
}

size_t ks_servers_count(const KS_PROVCTX *pc)
{
    return pc->servers->n;
}

const char *ks_servers_addr(const KS_PROVCTX *pc, int i)
{
    return pc->servers->conf[i].addr;
}

const char *ks_servers_pubkey(const KS_PROVCTX *pc, int i)
{
    return pc->servers->conf[i].pubkey;
}

/* This process's state, made on first use (and anew in a forked child).
 * NULL only if memory runs out: then every server counts as healthy. */
static struct srv_proc *proc_get(KS_PROVCTX *pc)
{
    struct ks_servers *sv = pc->servers;
    pid_t me = ks_self_pid();

    for (;;) {
        struct srv_proc *p = __atomic_load_n(&sv->proc, __ATOMIC_ACQUIRE), *np;

        if (p != NULL && p->pid == me)
            return p;
        if ((np = calloc(1, sizeof(*np))) == NULL)
            return NULL;
        if (pthread_mutex_init(&np->lock, NULL) != 0) {
            free(np);
            return NULL;
        }
        np->pid = me;
        np->offset = sv->n > 1 ? randombytes_uniform((uint32_t)sv->n) : 0;
        if (__atomic_compare_exchange_n(&sv->proc, &p, np, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return np;
        /* another thread of this process got there first */
        (void)pthread_mutex_destroy(&np->lock);
        free(np);
    }
}

int ks_servers_home(KS_PROVCTX *pc)
{
    struct srv_proc *p = proc_get(pc);
    unsigned k;

    if (pc->servers->n == 1 || p == NULL)
        return 0;
    k = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
    return (int)((p->offset + k) % pc->servers->n);
}

int ks_servers_pick(KS_PROVCTX *pc, int start, unsigned tried, int *usable)
{
    struct srv_proc *p = proc_get(pc);
    size_t n = pc->servers->n, j;
    long long now = ks_mono_us();
    int pick = -1, count = 0;

    if (p != NULL && pthread_mutex_lock(&p->lock) != 0)
        p = NULL;
    for (j = 0; j < n; j++) {
        int i = (int)((start + j) % n);
        struct srv_dyn *d = p != NULL ? &p->d[i] : NULL;

        if (tried & (1u << i))
            continue;
        if (d != NULL && d->backoff_ms != 0 && now < d->next_try_us)
            continue;
        count++;
        if (pick < 0) {
            pick = i;
            /* the one probe of a failed server until its next delay ends */
            if (d != NULL && d->backoff_ms != 0)
                d->next_try_us = now + (long long)d->backoff_ms * 1000;
        }
    }
    if (p != NULL)
        (void)pthread_mutex_unlock(&p->lock);
    *usable = count;
    return pick;
}

void ks_servers_failed(KS_PROVCTX *pc, int i, int reason, const char *msg)
{
    struct srv_proc *p = proc_get(pc);
    struct srv_dyn *d;
    int delay;

    if (p == NULL || pthread_mutex_lock(&p->lock) != 0)
        return;
    d = &p->d[i];
    d->backoff_ms = d->backoff_ms == 0 ? KS_BACKOFF_MIN_MS
                    : d->backoff_ms >= KS_BACKOFF_MAX_MS / 2 ? KS_BACKOFF_MAX_MS
                    : d->backoff_ms * 2;
    delay = d->backoff_ms / 2 + (int)randombytes_uniform((uint32_t)d->backoff_ms / 2 + 1);
    d->next_try_us = ks_mono_us() + (long long)delay * 1000;
    d->reason = reason;
    snprintf(d->msg, sizeof(d->msg), "%s", msg);
    (void)pthread_mutex_unlock(&p->lock);
}

void ks_servers_ok(KS_PROVCTX *pc, int i)
{
    struct srv_proc *p = proc_get(pc);

    /* the common case, a healthy server, takes no lock */
    if (p == NULL || __atomic_load_n(&p->d[i].backoff_ms, __ATOMIC_RELAXED) == 0)
        return;
    if (pthread_mutex_lock(&p->lock) != 0)
        return;
    p->d[i].backoff_ms = 0;
    p->d[i].next_try_us = 0;
    (void)pthread_mutex_unlock(&p->lock);
}

int ks_servers_raise_skipped(KS_PROVCTX *pc, unsigned tried)
{
    struct srv_proc *p = proc_get(pc);
    size_t i;
    int raised = 0;

    if (p == NULL || pthread_mutex_lock(&p->lock) != 0)
        return 0;
    for (i = 0; i < pc->servers->n; i++) {
        struct srv_dyn *d = &p->d[i];
        long long left = (d->next_try_us - ks_mono_us() + 999) / 1000;

        if ((tried & (1u << i)) || d->backoff_ms == 0)
            continue;
        KS_RAISE(pc, d->reason, "%s (not tried again for %lld ms: the provider backs off from a "
                 "server that failed, %d ms to %d s)", d->msg, left > 0 ? left : 0,
                 KS_BACKOFF_MIN_MS, KS_BACKOFF_MAX_MS / 1000);
        raised++;
    }
    (void)pthread_mutex_unlock(&p->lock);
    return raised;
}

static void key_verdict_msg(KS_PROVCTX *pc, const KS_KEY *k, int i, int verdict, int *reason,
                            char *msg, size_t msglen)
{
    const char *from = k->origin >= 0 ? ks_servers_addr(pc, k->origin) : "another server";

    if (verdict == KS_KEYCHK_DIFFERENT) {
        *reason = KS_R_KEY_MISMATCH;
        snprintf(msg, msglen, "keystore server at %s holds a different key named '%s' than the "
                 "one loaded from %s (another public key): not used there", ks_servers_addr(pc, i),
                 k->name, from);
    } else {
        *reason = KS_R_NO_SUCH_KEY;
        snprintf(msg, msglen, "keystore server at %s has no key '%s' for this client (the key was "
                 "loaded from %s)", ks_servers_addr(pc, i), k->name, from);
    }
}

int ks_servers_key_state(KS_PROVCTX *pc, const KS_KEY *k, int i, int *reason, char *msg,
                         size_t msglen)
{
    long long until;

    if (i == k->origin || (__atomic_load_n(&k->servers_ok, __ATOMIC_ACQUIRE) & (1u << i)))
        return 1;
    until = __atomic_load_n(&k->servers_bad_until[i], __ATOMIC_ACQUIRE);
    if (until == 0 || ks_mono_us() >= until)
        return 0;
    key_verdict_msg(pc, k, i, __atomic_load_n(&k->servers_bad_why[i], __ATOMIC_RELAXED), reason,
                    msg, msglen);
    return -1;
}

int ks_servers_key_checked(KS_PROVCTX *pc, KS_KEY *k, int i, int verdict, int *reason, char *msg,
                           size_t msglen)
{
    if (verdict == KS_KEYCHK_SAME) {
        __atomic_or_fetch(&k->servers_ok, 1u << i, __ATOMIC_RELEASE);
        return 1;
    }
    __atomic_store_n(&k->servers_bad_why[i], verdict, __ATOMIC_RELAXED);
    __atomic_store_n(&k->servers_bad_until[i], ks_mono_us() + KS_KEY_RECHECK_MS * 1000LL,
                     __ATOMIC_RELEASE);
    key_verdict_msg(pc, k, i, verdict, reason, msg, msglen);
    return -1;
}
