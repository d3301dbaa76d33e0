/* The key process's side of the catalogue; see catalogue.h. */
#include "catalogue.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue_wire.h"
#include "common/log.h"
#include "ops/catalogue_status.h"
#include "store/catalogue.h"
#include "store/keytable.h"

/* the agent answers within its own 4 s retry budget plus one request */
#define TXN_TIMEOUT_MS 10000

static int req_fd = -1, ev_fd = -1;
static pthread_mutex_t req_lock = PTHREAD_MUTEX_INITIALIZER;

/* The store's hook (store/catalogue.h), called with its write lock held. */
static int put_record(const char *name, uint64_t expect, const uint8_t *rec, size_t len,
                      uint64_t *rev, char *err, size_t errlen)
{
    struct ks_catw_msg m = { .type = 'T', .rev = expect, .data = rec, .len = len }, r;
    uint8_t *frame = NULL;
    int rc;

    snprintf(m.name, sizeof(m.name), "%s", name);
    pthread_mutex_lock(&req_lock);
    if (ks_catw_send(req_fd, &m) != 0) {
        pthread_mutex_unlock(&req_lock);
        snprintf(err, errlen, "the catalogue agent process is gone (see the log): etcd cannot "
                 "be reached");
        return -1;
    }
    rc = ks_catw_recv(req_fd, &frame, &r, TXN_TIMEOUT_MS);
    pthread_mutex_unlock(&req_lock);
    if (rc != 0 || r.type != 'R' || r.status > 2) {
        free(frame);
        snprintf(err, errlen, "no answer from the catalogue agent about etcd (%s)",
                 rc == -2 ? "timeout" : "it is gone or sent something malformed");
        return -1;
    }
    *rev = r.rev;
    if (r.status == 2)
        snprintf(err, errlen, "%.*s", (int)(r.len < 1500 ? r.len : 1500), (const char *)r.data);
    free(frame);
    return r.status == 1 ? 1 : r.status == 0 ? 0 : -1;
}

int ks_catalogue_start(const struct ks_config *cfg)
{
    if (ks_catalogue_agent_start(cfg, &req_fd, &ev_fd) != 0)
        return -1;
    if (req_fd >= 0) {
        ks_catalogue_enable(put_record, cfg->catalogue_prefix);
        ks_catstat_enable();
    }
    return 0;
}

static void *events_thread(void *arg)
{
    int synced = 0;

    (void)arg;
    for (;;) {
        struct ks_catw_msg m;
        uint8_t *frame;
        int rc = ks_catw_recv(ev_fd, &frame, &m, -1);

        if (rc != 0) {
            char why[200];

            snprintf(why, sizeof(why), "the agent process %s; changes made on other replicas no "
                     "longer arrive here (restart keystored)",
                     rc == -3 ? "is gone" : "sent a malformed message");
            ks_log("error: catalogue: %s", why);
            ks_catstat_problem(why);
            return NULL;
        }
        switch (m.type) {
        case 'P':
            ks_store_apply_remote(m.name, m.rev, m.data, m.len);
            ks_catstat_record(m.rev);
            break;
        case 'D':
            /* only a sealed tombstone can delete a key: anyone can delete in etcd */
            ks_log("warning: catalogue: the record of key %.64s was deleted in etcd (revision "
                   "%llu) without a tombstone; this replica keeps the key (delete keys with "
                   "keystorectl delete)", m.name, (unsigned long long)m.rev);
            break;
        case 'S':
            if (!synced)
                ks_log("catalogue: in step with etcd at revision %llu, watching for changes",
                       (unsigned long long)m.rev);
            synced = 1;
            ks_catstat_in_step(m.rev);
            /* keys from before catalogue = etcd, now that etcd's are known */
            ks_store_catalogue_upload();
            break;
        case 'E': {
            char raw[1024], why[1024];

            /* the agent's own words, bounded and printable only */
            snprintf(raw, sizeof(raw), "%.*s", (int)(m.len < sizeof(raw) ? m.len : sizeof(raw) - 1),
                     (const char *)m.data);
            ks_log_sanitize(raw, why, sizeof(why));
            ks_catstat_problem(why);
            break;
        }
        default:
            ks_log("error: catalogue: unexpected message from the agent; ignored");
            break;
        }
        free(frame);
        /* the applied state is written once the pending records are in */
        {
            struct pollfd pfd = { ev_fd, POLLIN, 0 };

            if (poll(&pfd, 1, 0) == 0)
                ks_store_catalogue_flush();
        }
    }
}

int ks_catalogue_thread_start(void)
{
    pthread_t t;

    if (ev_fd < 0)
        return 0;
    if (pthread_create(&t, NULL, events_thread, NULL) != 0) {
        ks_log("error: cannot start the catalogue thread");
        return -1;
    }
    pthread_detach(t);
    return 0;
}
