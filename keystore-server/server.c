/* Worker threads: each has its own epoll set containing both listeners
 * (EPOLLEXCLUSIVE, so one worker wakes per connection attempt) and the
 * connections it owns.  Accepted connections are handed out round robin so
 * every core serves traffic even when one worker does all the accepting. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

#define WORKER_STACK (256 * 1024)   /* mlockall pins every stack: keep them small */
#define MAX_EVENTS 64
#define ACCEPTS_PER_WAKEUP 64

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
    int spare_fd;                   /* released to shed connections at EMFILE */
    time_t last_fd_warning;
};

static struct worker *workers;
static int nworkers;
static int stop_fd = -1;
static int stop_item = KS_ITEM_STOP;
static unsigned long next_conn_id;
static int active_conns;
static unsigned next_worker;

static time_t mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
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

static void close_conn(struct worker *w, struct ks_conn *c)
{
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    list_remove(&w->conns, c);
    ks_conn_free(c);
    __atomic_sub_fetch(&active_conns, 1, __ATOMIC_RELAXED);
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
        ks_conn_free(c);
        __atomic_sub_fetch(&active_conns, 1, __ATOMIC_RELAXED);
        return;
    }
    pthread_mutex_unlock(&t->inbox_lock);
}

static void new_connection(struct worker *w, struct ks_listener *l, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct ks_conn *c;
    unsigned long id;

    if (__atomic_add_fetch(&active_conns, 1, __ATOMIC_RELAXED) > w->cfg->max_connections) {
        __atomic_sub_fetch(&active_conns, 1, __ATOMIC_RELAXED);
        ks_log("refusing a connection on %s: max_connections (%d) reached", l->path,
               w->cfg->max_connections);
        close(fd);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ks_log("refusing a connection on %s: cannot read peer credentials: %s", l->path,
               strerror(errno));
        goto fail;
    }
    id = __atomic_add_fetch(&next_conn_id, 1, __ATOMIC_RELAXED);
    c = ks_conn_new(fd, l->is_admin, id, mono_now());
    if (c == NULL) {
        ks_log("refusing a connection on %s: out of memory", l->path);
        goto fail;
    }
    c->s.uid = cred.uid;
    c->s.gid = cred.gid;
    c->s.pid = cred.pid;
    hand_out(c);
    return;
fail:
    close(fd);
    __atomic_sub_fetch(&active_conns, 1, __ATOMIC_RELAXED);
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
        if ((errno == EMFILE || errno == ENFILE) && w->spare_fd >= 0) {
            /* Out of descriptors: accept and drop one with the spare fd, or the
             * level-triggered listener would wake us forever. */
            time_t now = mono_now();

            if (now != w->last_fd_warning)
                ks_log("refusing connections on %s: out of file descriptors (raise the "
                       "open files limit, e.g. LimitNOFILE, or lower max_connections)", l->path);
            w->last_fd_warning = now;
            close(w->spare_fd);
            fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                close(fd);
            w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
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

static void conn_event(struct worker *w, struct ks_conn *c, uint32_t ev, time_t now)
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

static void sweep_timeouts(struct worker *w, time_t now)
{
    struct ks_conn *c = w->conns, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        if (ks_conn_timed_out(w->cfg, c, now))
            close_conn(w, c);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[MAX_EVENTS];
    time_t last_sweep = mono_now();

    for (;;) {
        int n = epoll_wait(w->epfd, evs, MAX_EVENTS, 1000), i;
        time_t now;

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
        if (now != last_sweep) {
            sweep_timeouts(w, now);
            last_sweep = now;
        }
    }
out:
    return NULL;
}

static int worker_init(struct worker *w, int index, const struct ks_config *cfg,
                       struct ks_listener *ls, int nls)
{
    struct epoll_event ev;
    int i;

    memset(w, 0, sizeof(*w));
    w->index = index;
    w->cfg = cfg;
    w->listeners = ls;
    w->nlisteners = nls;
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pthread_mutex_init(&w->inbox_lock, NULL);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        ks_log("error: epoll_create1: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < nls; i++) {
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ev.data.ptr = &ls[i];
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, ls[i].fd, &ev) != 0) {
            ks_log("error: epoll_ctl(listener %s): %s", ls[i].path, strerror(errno));
            return -1;
        }
    }
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
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    pthread_mutex_destroy(&w->inbox_lock);
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
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)cfg->max_connections + 64)
        ks_log("warning: the open files limit (%llu) is below max_connections (%d) + 64; "
               "raise it (ulimit -n, LimitNOFILE) or lower max_connections",
               (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

static void wait_for_signal(void)
{
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            ks_log("SIGHUP ignored: configuration reload is not supported; restart instead");
            continue;
        }
        ks_log("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        return;
    }
}

int ks_serve(const struct ks_config *cfg, struct ks_listener *ls, int nls)
{
    pthread_attr_t attr;
    uint64_t one = 1;
    int i, rc = -1;

    check_fd_limit(cfg);
    stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd < 0) {
        ks_log("error: eventfd: %s", strerror(errno));
        return -1;
    }
    nworkers = cfg->workers;
    workers = calloc((size_t)nworkers, sizeof(*workers));
    if (workers == NULL) {
        ks_log("error: out of memory for %d workers", nworkers);
        goto out_fd;
    }
    for (i = 0; i < nworkers; i++)
        workers[i].epfd = workers[i].spare_fd = -1;
    if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, WORKER_STACK) != 0) {
        ks_log("error: cannot set the worker stack size");
        goto out_workers;
    }
    for (i = 0; i < nworkers; i++) {
        if (worker_init(&workers[i], i, cfg, ls, nls) != 0)
            goto out_threads;
    }
    for (i = 0; i < nworkers; i++) {
        int e = pthread_create(&workers[i].thread, &attr, worker_main, &workers[i]);

        if (e != 0) {
            ks_log("error: cannot start worker thread %d: %s", i, strerror(e));
            goto out_threads;
        }
        workers[i].started = 1;
    }
    ks_log("serving with %d worker%s, max_connections %d, max_frame %zu", nworkers,
           nworkers == 1 ? "" : "s", cfg->max_connections, cfg->max_frame);
    wait_for_signal();
    rc = 0;
out_threads:
    if (write(stop_fd, &one, sizeof(one)) != sizeof(one))
        ks_log("warning: cannot signal the workers to stop: %s", strerror(errno));
    for (i = 0; i < nworkers; i++)
        if (workers[i].started)
            pthread_join(workers[i].thread, NULL);
    for (i = 0; i < nworkers; i++)
        worker_cleanup(&workers[i]);
    pthread_attr_destroy(&attr);
out_workers:
    free(workers);
    workers = NULL;
out_fd:
    close(stop_fd);
    stop_fd = -1;
    return rc;
}
