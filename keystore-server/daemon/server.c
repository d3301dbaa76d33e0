/* Worker threads: each has its own epoll set containing both listeners
 * (EPOLLEXCLUSIVE, so one worker wakes per connection attempt) and the
 * connections it owns.  Accepted connections are handed out round robin so
 * every core serves traffic even when one worker does all the accepting. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_limit.h"
#include "common/log.h"
#include "conn.h"
#include "conn_shm.h"
#include "conn_tcp.h"
#include "ops/control.h"
#include "ops/prepared.h"
#include "ops/stats.h"
#include "reload.h"
#include "sandbox/harden.h"
#include "sdnotify.h"
#include "store/keytable.h"
#include "shm_ring.h"
#include "wire.h"

#define WORKER_STACK (256 * 1024)   /* mlockall pins every stack: keep them small */
#define MAX_EVENTS 64
#define ACCEPTS_PER_WAKEUP 64
#define SWEEP_MS 250                /* how often timeouts are checked */
#define SHM_SLICE_US 5               /* rings polled this long between two epoll_wait(0) while spinning */
#define BUSY_YIELD_US 20             /* a sched_yield this long: the core is wanted, stop spinning */

struct worker {
    int index;
    int epfd;
    pthread_t thread;
    int started;
    const struct ks_config *cfg;
    struct ks_listener *listeners;
    int nlisteners;
    struct ks_conn *conns;          /* owned connections (this thread only) */
    pthread_mutex_t inbox_lock;     /* connections handed over by other workers */
    struct ks_conn *inbox;
    int listeners_paused;           /* out of descriptors: listeners removed for a while */
    int64_t paused_at;
    int64_t alive_us;               /* last pass through the loop (systemd watchdog) */
    int nshm;                       /* owned connections on shared-memory rings */
    int yield_first;                /* a client shares our core: hand it over at once */
};

static struct worker *workers;
static int nworkers;
static int stop_fd = -1;
static int reload_fd = -1;          /* SIGHUP: the main thread reloads */
static int stop_item = KS_ITEM_STOP;
static volatile sig_atomic_t stop_signal;
static int workers_exited;
static int64_t watchdog_next_us;

/* Workers wait here until ks_serve_run: they must exist before confinement
 * (the seccomp filter then covers them and no thread is created later), but
 * must not serve anyone before it. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;
static pthread_attr_t thread_attr;
static int thread_attr_ok;
static unsigned long next_conn_id;
static int active_conns;            /* Unix sockets: max_connections */
static int active_tcp_conns;        /* TCP: max_tcp_connections, a budget of its own */
static unsigned next_worker;

/* Milliseconds; never 0 (0 means "unset" in struct ks_conn). */
static int64_t mono_now(void)
{
    return ks_mono_us() / 1000 + 1;
}

static void list_insert(struct ks_conn **head, struct ks_conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    *head = c;
}

static void list_remove(struct ks_conn **head, struct ks_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static enum ks_conn_kind conn_kind(const struct ks_conn *c)
{
    return c->s.is_tcp ? KS_CONNK_TCP : c->s.is_admin ? KS_CONNK_ADMIN : KS_CONNK_CLIENT;
}

/* The budget a connection counts in: TCP peers never use up Unix slots. */
static int *budget(int is_tcp)
{
    return is_tcp ? &active_tcp_conns : &active_conns;
}

static void free_conn(struct ks_conn *c)
{
    int *b = budget(c->s.is_tcp);

    ks_conn_free(c);
    __atomic_sub_fetch(b, 1, __ATOMIC_RELAXED);
}

static void close_conn(struct worker *w, struct ks_conn *c)
{
    if (c->shm_counted)
        w->nshm--;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    list_remove(&w->conns, c);
    ks_stats_conn_close(conn_kind(c));
    free_conn(c);
}

/* Give a freshly accepted connection to the next worker in turn. */
static void hand_out(struct ks_conn *c)
{
    unsigned i = __atomic_fetch_add(&next_worker, 1, __ATOMIC_RELAXED) % (unsigned)nworkers;
    struct worker *t = &workers[i];
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    c->events = EPOLLIN;
    /* Publish in the inbox before the fd can fire in t's epoll set: t drains
     * its inbox (under this lock) before handling any event. */
    pthread_mutex_lock(&t->inbox_lock);
    list_insert(&t->inbox, c);
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        ks_log("conn %lu: cannot register with worker %d: %s; closing", c->s.id, i,
               strerror(errno));
        list_remove(&t->inbox, c);
        pthread_mutex_unlock(&t->inbox_lock);
        ks_stats_conn_close(conn_kind(c));
        free_conn(c);
        return;
    }
    pthread_mutex_unlock(&t->inbox_lock);
}

/* Unix peers: who they are (SO_PEERCRED, SO_PEERGROUPS) and their limit. */
static int unix_peer(struct worker *w, struct ks_listener *l, struct ks_conn *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    char id[32];

    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ks_log("refusing a connection on %s: cannot read peer credentials: %s", l->path,
               strerror(errno));
        return -1;
    }
    c->s.uid = cred.uid;
    c->s.gid = cred.gid;
    c->s.pid = cred.pid;
    len = sizeof(c->s.groups);
    /* supplementary groups for gid: rules; too many to fit means primary only */
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, c->s.groups, &len) == 0)
        c->s.ngroups = (int)(len / sizeof(gid_t));
    snprintf(id, sizeof(id), "uid:%u", (unsigned)cred.uid);
    if (!l->is_admin && ks_limit_acquire(&c->s, id, w->cfg->max_connections_per_client) != 0) {
        ks_log("refusing a connection on %s from uid %u pid %d: max_connections_per_client "
               "(%d) reached", l->path, (unsigned)cred.uid, (int)cred.pid,
               w->cfg->max_connections_per_client);
        return -1;
    }
    return 0;
}

static void new_connection(struct worker *w, struct ks_listener *l, int fd)
{
    struct ks_conn *c;
    unsigned long id;
    int *b = budget(l->is_tcp);
    int max = l->is_tcp ? w->cfg->max_tcp_connections : w->cfg->max_connections;
    int64_t now = mono_now();

    if (__atomic_add_fetch(b, 1, __ATOMIC_RELAXED) > max) {
        __atomic_sub_fetch(b, 1, __ATOMIC_RELAXED);
        ks_log("refusing a connection on %s: %s (%d) reached", l->path,
               l->is_tcp ? "max_tcp_connections" : "max_connections", max);
        close(fd);
        return;
    }
    id = __atomic_add_fetch(&next_conn_id, 1, __ATOMIC_RELAXED);
    c = ks_conn_new(fd, l->is_admin, id, now);
    if (c == NULL) {
        ks_log("refusing a connection on %s: out of memory", l->path);
        close(fd);
        __atomic_sub_fetch(b, 1, __ATOMIC_RELAXED);
        return;
    }
    c->s.is_tcp = l->is_tcp;
    /* TCP peers are identified by the handshake (conn_tcp.c) */
    if ((l->is_tcp ? ks_conn_tcp_init(w->cfg, c, now) : unix_peer(w, l, c)) != 0) {
        free_conn(c);   /* closes fd */
        return;
    }
    ks_stats_conn_open(conn_kind(c));
    hand_out(c);
}

/* Out of descriptors: the level-triggered listeners would wake us forever,
 * so stop watching them for a second (sweep_timeouts resumes them). */
static void pause_listeners(struct worker *w)
{
    int i;

    if (w->listeners_paused)
        return;
    ks_log("worker %d: out of file descriptors; not accepting for a second (raise the open "
           "files limit, e.g. LimitNOFILE, or lower max_connections)", w->index);
    for (i = 0; i < w->nlisteners; i++)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listeners[i].fd, NULL);
    w->listeners_paused = 1;
    w->paused_at = mono_now();
}

static int watch_listeners(struct worker *w)
{
    struct epoll_event ev;
    int i;

    for (i = 0; i < w->nlisteners; i++) {
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.ptr = &w->listeners[i];
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listeners[i].fd, &ev) != 0 && errno != EEXIST) {
            ks_log("error: worker %d: epoll_ctl(listener %s): %s", w->index,
                   w->listeners[i].path, strerror(errno));
            return -1;
        }
    }
    w->listeners_paused = 0;
    return 0;
}

static void accept_ready(struct worker *w, struct ks_listener *l)
{
    int i;

    for (i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd >= 0) {
            new_connection(w, l, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EMFILE || errno == ENFILE) {
            pause_listeners(w);
            return;
        }
        ks_log("accept on %s: %s", l->path, strerror(errno));
        return;
    }
}

static void drain_inbox(struct worker *w)
{
    struct ks_conn *c;

    pthread_mutex_lock(&w->inbox_lock);
    while ((c = w->inbox) != NULL) {
        list_remove(&w->inbox, c);
        list_insert(&w->conns, c);
    }
    pthread_mutex_unlock(&w->inbox_lock);
}

static void conn_event(struct worker *w, struct ks_conn *c, uint32_t ev, int64_t now)
{
    enum ks_conn_state st = KS_CONN_OK;
    uint32_t want;

    if (ev & EPOLLERR)
        st = KS_CONN_CLOSE;
    if (st == KS_CONN_OK && (ev & (EPOLLIN | EPOLLHUP)))
        st = ks_conn_readable(w->cfg, c, now);
    if (st == KS_CONN_OK && (ev & EPOLLOUT))
        st = ks_conn_writable(w->cfg, c, now);
    if (st != KS_CONN_OK) {
        close_conn(w, c);
        return;
    }
    if (c->shm != NULL && !c->shm_counted) {
        c->shm_counted = 1;
        w->nshm++;
    }
    want = ks_conn_wanted_events(c);
    if (want != c->events) {
        struct epoll_event e;

        memset(&e, 0, sizeof(e));
        e.events = want;
        e.data.ptr = c;
        if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &e) != 0) {
            ks_log("conn %lu: epoll_ctl: %s; closing", c->s.id, strerror(errno));
            close_conn(w, c);
            return;
        }
        c->events = want;
    }
}

/* Serve every ring of this worker's connections once (each up to its
 * budget, so one client cannot hold the worker); returns requests served. */
static int shm_poll(struct worker *w, int64_t now)
{
    struct ks_conn *c, *next;
    int total = 0, served;

    if (w->nshm == 0)
        return 0;
    for (c = w->conns; c != NULL; c = next) {
        next = c->next;
        if (c->shm == NULL)
            continue;
        if (ks_conn_shm_serve(w->cfg, c, now, &served) != KS_CONN_OK) {
            close_conn(w, c);
            continue;
        }
        total += served;
    }
    return total;
}

static int shm_any_pending(struct worker *w)
{
    struct ks_conn *c;

    if (w->nshm == 0)
        return 0;
    for (c = w->conns; c != NULL; c = c->next)
        if (ks_conn_shm_pending(c))
            return 1;
    return 0;
}

/* Before blocking in epoll_wait: tell every ring's client to ring the
 * socket, then look once more (a request published before the client saw
 * the flag would otherwise wait for the next wake-up).  1 if one is there. */
static int shm_prepare_sleep(struct worker *w)
{
    struct ks_conn *c;

    for (c = w->conns; c != NULL; c = c->next)
        ks_conn_shm_sleeping(c, 1);
    ks_shm_fence();
    return shm_any_pending(w);
}

static void shm_awake(struct worker *w)
{
    struct ks_conn *c;

    for (c = w->conns; c != NULL; c = c->next)
        ks_conn_shm_sleeping(c, 0);
}

static void sweep_timeouts(struct worker *w, int64_t now)
{
    struct ks_conn *c = w->conns, *next;

    if (w->listeners_paused && now - w->paused_at >= 1000)
        watch_listeners(w);

    for (; c != NULL; c = next) {
        next = c->next;
        if (ks_conn_timed_out(w->cfg, c, now))
            close_conn(w, c);
    }
}

/* systemd watchdog: ping at half the interval, but only while every
 * worker still comes round its loop (a wedged worker stops the pings and
 * systemd restarts the service). */
static void watchdog_tick(void)
{
    int64_t half = ks_sd_watchdog_half_us(), now, next;
    int i;

    if (half == 0)
        return;
    now = ks_mono_us();
    next = __atomic_load_n(&watchdog_next_us, __ATOMIC_RELAXED);
    if (now < next)
        return;
    for (i = 0; i < nworkers; i++)
        if (now - __atomic_load_n(&workers[i].alive_us, __ATOMIC_RELAXED) > half)
            return;
    if (__atomic_compare_exchange_n(&watchdog_next_us, &next, now + half, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        ks_sd_notify("WATCHDOG=1");
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[MAX_EVENTS];
    int64_t last_sweep, spin_until = 0;

    /* this thread's DRBGs, created now (before seccomp) with the reseed interval */
    if (ks_rng_set_reseed(w->cfg->rng_reseed_seconds) != 0)
        return NULL;

    pthread_mutex_lock(&gate_lock);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    last_sweep = mono_now();
    __atomic_store_n(&w->alive_us, ks_mono_us(), __ATOMIC_RELAXED);

    for (;;) {
        int n, i;
        int64_t now;

        /* After serving a request, poll for a while before sleeping: a client
         * that sends its next request within spin_us is served without the
         * cross-core wake-up that dominates a small operation's latency.
         * sched_yield lets a client that shares this core run meanwhile. */
        if (spin_until != 0) {
            int64_t t0 = ks_mono_us(), t1;

            /* the rings first, without a system call for a slice: epoll_wait
             * costs more than that where system calls are dear (unless the
             * client shares our core: then it needs the core, not a poll) */
            while (!w->yield_first && w->nshm > 0 && !shm_any_pending(w)
                   && ks_mono_us() - t0 < SHM_SLICE_US)
                ks_shm_pause();
            n = epoll_wait(w->epfd, evs, MAX_EVENTS, 0);
            /* requests in shared memory need no wake-up while we spin: they
             * are served below, with the timeouts swept as after any event */
            if (n == 0 && !shm_any_pending(w)) {
                if (ks_mono_us() >= spin_until) {
                    spin_until = 0;
                    continue;
                }
                /* A yield that kept us off the core for long: another thread
                 * wanted it.  If a request came meanwhile, that was our
                 * client on this core: yield at once next time.  If not, the
                 * machine is busy and spinning on would take its time, so
                 * sleep until woken. */
                t1 = ks_mono_us();
                sched_yield();
                if (ks_mono_us() - t1 <= BUSY_YIELD_US)
                    w->yield_first = 0;
                else if (shm_any_pending(w))
                    w->yield_first = 1;
                else
                    spin_until = 0;
                continue;
            }
        } else if (w->nshm > 0 && shm_prepare_sleep(w)) {
            shm_awake(w);
            n = 0;
        } else {
            n = epoll_wait(w->epfd, evs, MAX_EVENTS, SWEEP_MS);
            if (w->nshm > 0)
                shm_awake(w);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ks_log("error: worker %d: epoll_wait: %s; the worker stops", w->index, strerror(errno));
            break;
        }
        drain_inbox(w);
        now = mono_now();
        for (i = 0; i < n; i++) {
            int kind = *(int *)evs[i].data.ptr;

            if (kind == KS_ITEM_STOP)
                goto out;
            if (kind == KS_ITEM_LISTENER)
                accept_ready(w, evs[i].data.ptr);
            else
                conn_event(w, evs[i].data.ptr, evs[i].events, now);
        }
        if (shm_poll(w, now) > 0)
            n = n > 0 ? n : 1;
        if (n > 0 && w->cfg->spin_us > 0)
            spin_until = ks_mono_us() + w->cfg->spin_us;
        if (now - last_sweep >= SWEEP_MS) {
            sweep_timeouts(w, now);
            ks_prep_sweep();   /* release contexts of keys deleted meanwhile */
            last_sweep = now;
            __atomic_store_n(&w->alive_us, ks_mono_us(), __ATOMIC_RELAXED);
            watchdog_tick();
        }
    }
out:
    ks_prep_thread_free();
    __atomic_add_fetch(&workers_exited, 1, __ATOMIC_RELAXED);
    return NULL;
}

static int worker_init(struct worker *w, int index, const struct ks_config *cfg,
                       struct ks_listener *ls, int nls)
{
    struct epoll_event ev;

    memset(w, 0, sizeof(*w));
    w->index = index;
    w->cfg = cfg;
    w->listeners = ls;
    w->nlisteners = nls;
    pthread_mutex_init(&w->inbox_lock, NULL);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        ks_log("error: epoll_create1: %s", strerror(errno));
        return -1;
    }
    if (watch_listeners(w) != 0)
        return -1;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;   /* level-triggered and never read: wakes every worker */
    ev.data.ptr = &stop_item;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, stop_fd, &ev) != 0) {
        ks_log("error: epoll_ctl(stop): %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void worker_cleanup(struct worker *w)
{
    struct ks_conn *c;

    drain_inbox(w);
    while ((c = w->conns) != NULL)
        close_conn(w, c);
    if (w->epfd >= 0)
        close(w->epfd);
    w->epfd = -1;
}

/* TCP slots only count when a TCP listener is configured. */
static int tcp_budget(const struct ks_config *cfg)
{
    return cfg->listen_tcp[0] != '\0' ? cfg->max_tcp_connections : 0;
}

/* Every connection costs a descriptor: use the hard limit and say if it is short. */
static void check_fd_limit(const struct ks_config *cfg)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)cfg->max_connections + (rlim_t)tcp_budget(cfg) + 64)
        ks_log("warning: the open files limit (%llu) is below max_connections (%d) + "
               "max_tcp_connections (%d) + 64; raise it (ulimit -n, LimitNOFILE) or lower them",
               (unsigned long long)rl.rlim_cur, cfg->max_connections, tcp_budget(cfg));
}

int ks_block_signals(void)
{
    struct sigaction sa;
    sigset_t set;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0) {
        ks_log("error: cannot ignore SIGPIPE: %s", strerror(errno));
        return -1;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        ks_log("error: cannot block termination signals");
        return -1;
    }
    return 0;
}

/* Async-signal-safe: wake the main thread, which reloads. */
static void on_reload_signal(int sig)
{
    uint64_t one = 1;
    int saved = errno;

    (void)sig;
    if (write(reload_fd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow from signals */
    }
    errno = saved;
}

/* Async-signal-safe: record the signal and wake every worker. */
static void on_stop_signal(int sig)
{
    uint64_t one = 1;
    int saved = errno;

    stop_signal = sig;
    if (write(stop_fd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow from signals; nothing else to do */
    }
    errno = saved;
}

static void open_gate(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

void ks_serve_stop(void)
{
    uint64_t one = 1;
    int i;

    if (workers == NULL)
        return;
    if (write(stop_fd, &one, sizeof(one)) != sizeof(one))
        ks_log("warning: cannot signal the workers to stop: %s", strerror(errno));
    open_gate();
    for (i = 0; i < nworkers; i++)
        if (workers[i].started)
            pthread_join(workers[i].thread, NULL);
    for (i = 0; i < nworkers; i++)
        worker_cleanup(&workers[i]);
    free(workers);
    workers = NULL;
    if (thread_attr_ok)
        pthread_attr_destroy(&thread_attr);
    thread_attr_ok = 0;
    close(stop_fd);
    stop_fd = -1;
    if (reload_fd >= 0)
        close(reload_fd);
    reload_fd = -1;
}

int ks_serve_prepare(const struct ks_config *cfg, struct ks_listener *ls, int nls)
{
    int i;

    check_fd_limit(cfg);
    stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    reload_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd < 0 || reload_fd < 0) {
        ks_log("error: eventfd: %s", strerror(errno));
        if (stop_fd >= 0)
            close(stop_fd);
        if (reload_fd >= 0)
            close(reload_fd);
        stop_fd = reload_fd = -1;
        return -1;
    }
    nworkers = cfg->workers;
    workers = calloc((size_t)nworkers, sizeof(*workers));
    if (workers == NULL) {
        ks_log("error: out of memory for %d workers", nworkers);
        close(stop_fd);
        stop_fd = -1;
        return -1;
    }
    for (i = 0; i < nworkers; i++)
        workers[i].epfd = -1;
    if (pthread_attr_init(&thread_attr) != 0) {
        ks_log("error: pthread_attr_init failed");
        goto fail;
    }
    thread_attr_ok = 1;
    if (pthread_attr_setstacksize(&thread_attr, WORKER_STACK) != 0) {
        ks_log("error: cannot set the worker stack size to %d bytes", WORKER_STACK);
        goto fail;
    }
    for (i = 0; i < nworkers; i++)
        if (worker_init(&workers[i], i, cfg, ls, nls) != 0)
            goto fail;
    for (i = 0; i < nworkers; i++) {
        int e = pthread_create(&workers[i].thread, &thread_attr, worker_main, &workers[i]);

        if (e != 0) {
            ks_log("error: cannot start worker thread %d: %s", i, strerror(e));
            goto fail;
        }
        workers[i].started = 1;
    }
    return 0;
fail:
    ks_serve_stop();
    return -1;
}

/* The main thread after start-up: reload on SIGHUP until told to stop
 * (or until every worker has stopped on its own). */
static void main_loop(void)
{
    struct pollfd p[2];
    char msg[1024];
    uint64_t v;

    for (;;) {
        if (__atomic_load_n(&workers_exited, __ATOMIC_RELAXED) == nworkers)
            return;
        p[0] = (struct pollfd){ stop_fd, POLLIN, 0 };
        p[1] = (struct pollfd){ reload_fd, POLLIN, 0 };
        if (poll(p, 2, 1000) < 0)
            continue;   /* EINTR: a signal handler ran */
        if (p[0].revents != 0)
            return;
        if (p[1].revents != 0 && read(reload_fd, &v, sizeof(v)) == sizeof(v))
            ks_reload_run("SIGHUP", msg, sizeof(msg));
    }
}

int ks_serve_run(const struct ks_config *cfg)
{
    struct sigaction sa;
    sigset_t set;
    int i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        ks_log("error: cannot install the SIGTERM/SIGINT handler: %s", strerror(errno));
        ks_serve_stop();
        return -1;
    }
    sa.sa_handler = on_reload_signal;
    if (sigaction(SIGHUP, &sa, NULL) != 0) {
        ks_log("error: cannot install the SIGHUP handler: %s", strerror(errno));
        ks_serve_stop();
        return -1;
    }
    ks_control_set_reloader(ks_reload_run);
    ks_control_set_workers((unsigned)nworkers);
    ks_stats_start();
    ks_log("serving with %d worker%s, max_connections %d, max_frame %zu", nworkers,
           nworkers == 1 ? "" : "s", cfg->max_connections, cfg->max_frame);
    if (cfg->listen_tcp[0] != '\0')
        ks_log("TCP: max_tcp_connections %d, max_unauthenticated_per_address %d, "
               "handshake_timeout %d s, tcp_max_clock_skew %d s, rekey after %ld frames or %d s",
               cfg->max_tcp_connections, cfg->max_unauthenticated_per_address,
               cfg->handshake_timeout, cfg->tcp_max_clock_skew, cfg->tcp_rekey_frames,
               cfg->tcp_rekey_seconds);
    open_gate();
    /* the listeners accept (the kernel queues connections) and the keys are loaded */
    ks_sd_notify("READY=1\nSTATUS=serving %zu keys with %d worker%s", ks_store_count(), nworkers,
                 nworkers == 1 ? "" : "s");
    /* Only this thread takes the signals (workers inherited the blocked mask);
     * one that arrived during start-up is delivered now. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    main_loop();
    if (stop_signal != 0)
        ks_sd_notify("STOPPING=1");
    for (i = 0; i < nworkers; i++) {
        if (workers[i].started) {
            pthread_join(workers[i].thread, NULL);
            workers[i].started = 0;
        }
    }
    if (stop_signal != 0)
        ks_log("received %s, shutting down", stop_signal == SIGTERM ? "SIGTERM" : "SIGINT");
    else
        ks_log("error: the workers stopped unexpectedly; shutting down");
    ks_serve_stop();
    return stop_signal != 0 ? 0 : -1;
}
