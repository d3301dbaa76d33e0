/* The catalogue agent (catalogue = etcd): the one keystored process that
 * opens network sockets.  Forked right after the configuration is read,
 * before the master key or any key is in memory, it chroots into the jail,
 * becomes `user` with no capability and installs its own seccomp filter
 * (sandbox/seccomp_filter.c: sockets, no file at all).  It holds only
 * sealed records: it relays the key process's transactions to etcd and
 * streams every record under the prefix to it (a range read, then a watch
 * from that revision; again after any break, so a replica that was away
 * catches up). */
#include "catalogue.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "catalogue/etcd.h"
#include "catalogue_wire.h"
#include "common/log.h"
#include "common/readfile.h"
#include "sandbox/confine.h"
#include "sandbox/jail.h"
#include "sandbox/seccomp_filter.h"

static struct ks_etcd_opts opts;
static int events_fd = -1;

static int read_secret_file(const char *path, uint8_t **out, size_t *len, const char *what)
{
    char err[512], *buf;

    *out = NULL;
    *len = 0;
    if (path[0] == '\0')
        return 0;
    if (ks_read_conf_file(path, &buf, len, err, sizeof(err)) != 0) {
        ks_log("error: catalogue agent: %s (%s)", err, what);
        return -1;
    }
    *out = (uint8_t *)buf;
    return 0;
}

static int load_opts(const struct ks_config *cfg)
{
    char copy[sizeof(cfg->catalogue_endpoints)], *tok, *save = NULL, err[600];
    uint8_t *pw;
    size_t pwlen;
    int i;

    snprintf(copy, sizeof(copy), "%s", cfg->catalogue_endpoints);
    for (tok = strtok_r(copy, " \t", &save); tok != NULL && opts.nendpoints < KS_ETCD_MAX_ENDPOINTS;
         tok = strtok_r(NULL, " \t", &save))
        snprintf(opts.endpoints[opts.nendpoints++], sizeof(opts.endpoints[0]), "%s", tok);
    if (ks_etcd_resolve(&opts, err, sizeof(err)) != 0) {
        ks_log("error: catalogue agent: %s (names are resolved once, at start: the confined "
               "agent cannot read /etc/hosts or resolv.conf)", err);
        return -1;
    }
    for (i = 0; i < opts.nresolve; i++)
        ks_log("catalogue agent: etcd host resolved once, at start: %s (HOST:PORT:ADDRESSES; "
               "restart keystored when its addresses change)", opts.resolve[i]);
    snprintf(opts.prefix, sizeof(opts.prefix), "%s", cfg->catalogue_prefix);
    snprintf(opts.user, sizeof(opts.user), "%s", cfg->catalogue_user);
    if (read_secret_file(cfg->catalogue_cacert, &opts.cacert, &opts.cacert_len,
                         "catalogue_cacert") != 0 ||
        read_secret_file(cfg->catalogue_cert, &opts.cert, &opts.cert_len, "catalogue_cert") != 0 ||
        read_secret_file(cfg->catalogue_key, &opts.key, &opts.key_len, "catalogue_key") != 0 ||
        read_secret_file(cfg->catalogue_password_file, &pw, &pwlen,
                         "catalogue_password_file") != 0)
        return -1;
    if (pw != NULL) {
        while (pwlen > 0 && (pw[pwlen - 1] == '\n' || pw[pwlen - 1] == '\r'))
            pwlen--;
        if (pwlen >= sizeof(opts.password)) {
            ks_log("error: catalogue agent: %s holds more than %zu bytes",
                   cfg->catalogue_password_file, sizeof(opts.password) - 1);
            sodium_memzero(pw, pwlen);
            free(pw);
            return -1;
        }
        memcpy(opts.password, pw, pwlen);
        sodium_memzero(pw, pwlen);
        free(pw);
    }
    return 0;
}

/* ---- the event stream ------------------------------------------------- */

static int forward(void *arg, const char *name, size_t namelen, const uint8_t *value, size_t vlen,
                   uint64_t mod_rev, int deleted)
{
    struct ks_catw_msg m = { 0 };

    (void)arg;
    if (namelen == 0 || namelen >= sizeof(m.name))
        return 0;   /* no key name can be that: not ours to pass on */
    memcpy(m.name, name, namelen);
    m.name[namelen] = '\0';
    if (memchr(m.name, '\0', namelen) != NULL)
        return 0;
    m.type = deleted ? 'D' : 'P';
    m.rev = mod_rev;
    m.data = value;
    m.len = vlen;
    /* the key process gone: this process has nothing left to do */
    if (ks_catw_send(events_fd, &m) != 0)
        _exit(0);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Log why this replica is not in step with etcd, and tell the key process
 * (its status shows it): "WHAT (ERR); THEN". */
static void report_problem(const char *what, const char *err, const char *then)
{
    char text[1024];
    struct ks_catw_msg m = { .type = 'E', .data = (const uint8_t *)text };

    ks_log("warning: catalogue: %s (%s); %s", what, err, then);
    snprintf(text, sizeof(text), "%s (%s); %s", what, err, then);
    m.len = strlen(text);
    if (ks_catw_send(events_fd, &m) != 0)
        _exit(0);   /* the key process is gone */
}

/* The watch's member is probed every PROBE_MS; PROBE_FAILURES failures in
 * a row end the watch, and the watch thread moves to the next member. */
#define PROBE_MS 2000
#define PROBE_FAILURES 2

static int watching;   /* the watch thread is in ks_etcd_watch (atomic) */

static void *probe_thread(void *arg)
{
    struct ks_etcd *w = arg, *p = ks_etcd_new(&opts);
    char err[2048], why[600];
    int fails = 0, i;

    if (p == NULL) {
        ks_log("error: catalogue agent: out of memory");
        _exit(1);
    }
    for (;;) {
        sleep_ms(PROBE_MS);
        if (!__atomic_load_n(&watching, __ATOMIC_ACQUIRE)) {
            fails = 0;
            continue;
        }
        i = ks_etcd_endpoint(w);
        if (ks_etcd_probe(p, i, err, sizeof(err)) == 0) {
            fails = 0;
            continue;
        }
        if (++fails < PROBE_FAILURES)
            continue;
        fails = 0;
        snprintf(why, sizeof(why), "%s did not answer a quorum read %d times in a row (%.300s): "
                 "it is hung or cut off from its cluster", opts.endpoints[i], PROBE_FAILURES, err);
        ks_etcd_abort_watch(w, why);
    }
    return NULL;
}

static void *watch_thread(void *arg)
{
    struct ks_etcd *e = arg;
    char err[2048], last_err[2048] = "";
    long backoff = 100;

    for (;;) {
        struct ks_catw_msg s = { .type = 'S' };
        uint64_t rev, last;
        int rc;

        if (ks_etcd_range_all(e, forward, NULL, &rev, err, sizeof(err)) != 0) {
            if (strcmp(err, last_err) != 0)
                report_problem("etcd unreachable", err,
                               "serving the local key directory until it is back");
            snprintf(last_err, sizeof(last_err), "%s", err);
            sleep_ms(backoff);
            backoff = backoff < 2000 ? backoff * 2 : 2000;
            continue;
        }
        if (last_err[0] != '\0')
            ks_log("catalogue: etcd reachable again (revision %llu)", (unsigned long long)rev);
        last_err[0] = '\0';
        backoff = 100;
        s.rev = rev;
        if (ks_catw_send(events_fd, &s) != 0)
            _exit(0);
        __atomic_store_n(&watching, 1, __ATOMIC_RELEASE);
        rc = ks_etcd_watch(e, rev + 1, forward, NULL, &last, err, sizeof(err));
        __atomic_store_n(&watching, 0, __ATOMIC_RELEASE);
        if (rc < 0) {
            report_problem("the etcd watch stopped", err, "reconnecting");
            snprintf(last_err, sizeof(last_err), "%s", err);
        }
    }
    return NULL;
}

/* ---- transactions ------------------------------------------------------- */

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A leader election makes members refuse writes for a moment: retry for a
 * few seconds before telling the admin etcd is unavailable. */
static void serve_txn(struct ks_etcd *e, int fd, const struct ks_catw_msg *m)
{
    struct ks_catw_msg r = { .type = 'R' };
    char err[2048], msg[2300];
    long deadline = now_ms() + 4000;
    uint64_t rev = 0;
    int rc;

    for (;;) {
        rc = ks_etcd_txn_put(e, m->name, m->rev, m->data, m->len, &rev, err, sizeof(err));
        if (rc >= 0 || now_ms() > deadline)
            break;
        sleep_ms(200);
    }
    r.status = rc == 1 ? 1 : rc == 0 ? 0 : 2;
    r.rev = rev;
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "etcd is unavailable (%s)", err);
        r.data = (const uint8_t *)msg;
        r.len = strlen(msg) > 1000 ? 1000 : strlen(msg);
    }
    if (ks_catw_send(fd, &r) != 0)
        _exit(0);
}

static int agent_main(const struct ks_config *cfg, int req_fd, int ev_fd, pid_t server)
{
    struct ks_identity id;
    struct ks_etcd *e, *w;
    pthread_t t, pt;
    char err[512];
    int root = geteuid() == 0;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != server)
        return 1;
    (void)prctl(PR_SET_NAME, "keystored-cat", 0, 0, 0);
    events_fd = ev_fd;
    tzset();
    if (load_opts(cfg) != 0)
        return 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        ks_log("error: catalogue agent: libcurl failed to initialize");
        return 1;
    }
    if (root) {
        if (ks_lookup_user(cfg->user, &id, err, sizeof(err)) != 0 ||
            ks_confine_make_jail(cfg->jail) != 0 || ks_enter_jail(cfg->jail, err, sizeof(err)) != 0 ||
            ks_drop_privileges(&id, err, sizeof(err)) != 0 ||
            ks_clear_capabilities(err, sizeof(err)) != 0) {
            ks_log("error: catalogue agent: %s", err);
            return 1;
        }
    }
    e = ks_etcd_new(&opts);
    w = ks_etcd_new(&opts);
    if (e == NULL || w == NULL || pthread_create(&t, NULL, watch_thread, w) != 0 ||
        pthread_create(&pt, NULL, probe_thread, w) != 0) {
        ks_log("error: catalogue agent: cannot start");
        return 1;
    }
    if (cfg->seccomp && ks_seccomp_install_agent(err, sizeof(err)) != 0) {
        ks_log("error: catalogue agent: %s", err);
        return 1;
    }
    ks_log("catalogue agent: etcd %s, prefix %s; %s%s", cfg->catalogue_endpoints,
           cfg->catalogue_prefix, root ? "chroot, unprivileged user, no capabilities, " : "",
           cfg->seccomp ? "seccomp (network only, no files)" : "no seccomp (seccomp = no)");
    for (;;) {
        struct ks_catw_msg m;
        uint8_t *frame;
        int rc = ks_catw_recv(req_fd, &frame, &m, -1);

        if (rc == -3)
            return 0;   /* the key process stopped */
        if (rc != 0 || m.type != 'T') {
            ks_log("error: catalogue agent: malformed request from the key process");
            free(frame);
            return 1;
        }
        serve_txn(e, req_fd, &m);
        free(frame);
    }
}

int ks_catalogue_agent_start(const struct ks_config *cfg, int *req_fd, int *ev_fd)
{
    pid_t server = getpid(), pid;
    int rq[2], ev[2];

    *req_fd = *ev_fd = -1;
    if (!cfg->catalogue)
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, rq) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ev) != 0) {
        ks_log("error: cannot create the catalogue agent's sockets: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        ks_log("error: cannot fork the catalogue agent: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        close(rq[0]);
        close(ev[0]);
        {
            unsigned lo = (unsigned)(rq[1] < ev[1] ? rq[1] : ev[1]);
            unsigned hi = (unsigned)(rq[1] < ev[1] ? ev[1] : rq[1]);

            /* nothing of the server's but stderr and these two sockets */
            if ((lo > 3 && close_range(3, lo - 1, 0) != 0) ||
                (hi > lo + 1 && close_range(lo + 1, hi - 1, 0) != 0) ||
                close_range(hi + 1, ~0U, 0) != 0)
                _exit(1);
        }
        _exit(agent_main(cfg, rq[1], ev[1], server));
    }
    close(rq[1]);
    close(ev[1]);
    *req_fd = rq[0];
    *ev_fd = ev[0];
    return 0;
}
