/* Start-up load and reload of the policy files and certificates; see reload.h. */
#include "reload.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "confhelper.h"
#include "ops/acl.h"
#include "ops/stats.h"
#include "sdnotify.h"
#include "store/keytable.h"
#include "tcp_identity.h"

static const struct ks_config *cfg;
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

struct staged {
    struct ks_acl *acl;
    struct ks_clients *clients;
    struct ks_cert_update *certs;
    size_t certs_changed;
};

static int take_file(const struct ks_conf_file *f, const char *what, char *err, size_t errlen)
{
    if (f->status == KS_CONF_OK)
        return 0;
    snprintf(err, errlen, "%s: %s", what, f->status == KS_CONF_ERROR ? f->data :
             "the configuration reader does not know this file");
    return -1;
}

/* Read and parse everything into st; nothing is published. */
static int stage(struct staged *st, int with_certs, char *err, size_t errlen)
{
    struct ks_conf_files f;
    int rc = -1;

    memset(st, 0, sizeof(*st));
    if (ks_confhelper_fetch(&f, err, errlen) != 0)
        return -1;
    if (cfg->acl[0] != '\0') {
        if (take_file(&f.acl, "access list", err, errlen) != 0)
            goto out;
        st->acl = ks_acl_parse(cfg->acl, f.acl.data, f.acl.len, f.names.data, NULL, err, errlen);
        if (st->acl == NULL)
            goto out;
    }
    if (cfg->listen_tcp[0] != '\0') {
        if (take_file(&f.clients, "authorized clients", err, errlen) != 0)
            goto out;
        st->clients = ks_clients_parse(cfg->authorized_clients, f.clients.data, f.clients.len,
                                       err, errlen);
        if (st->clients == NULL)
            goto out;
    }
    if (with_certs && ks_store_certs_prepare(&st->certs, &st->certs_changed, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    ks_conf_files_free(&f);
    if (rc != 0) {
        ks_acl_free(st->acl);
        ks_clients_free(st->clients);
        memset(st, 0, sizeof(*st));
    }
    return rc;
}

/* Publish: each swap is atomic for the requests that use it, and the
 * three follow each other under reload_lock. */
static void commit(struct staged *st, char *msg, size_t msglen)
{
    size_t nrules = ks_acl_rule_count(st->acl), nclients = ks_clients_count(st->clients);
    int n = 0;

    msg[0] = '\0';
    if (cfg->acl[0] != '\0') {
        ks_acl_install(st->acl);
        n += snprintf(msg + n, msglen - (size_t)n, "access list %s: %zu rule%s; ", cfg->acl,
                      nrules, nrules == 1 ? "" : "s");
    }
    if (cfg->listen_tcp[0] != '\0' && (size_t)n < msglen) {
        ks_clients_install(st->clients);
        n += snprintf(msg + n, msglen - (size_t)n, "%zu authorized TCP client%s in %s; ",
                      nclients, nclients == 1 ? "" : "s", cfg->authorized_clients);
    }
    ks_store_certs_commit(st->certs);
    if ((size_t)n < msglen)
        snprintf(msg + n, msglen - (size_t)n, "%zu certificate chain%s changed", st->certs_changed,
                 st->certs_changed == 1 ? "" : "s");
}

int ks_reload_initial(const struct ks_config *c)
{
    char err[KS_CONF_PATH_MAX + 512];
    struct staged st;
    size_t nrules, nclients;

    cfg = c;
    if (stage(&st, 0, err, sizeof(err)) != 0) {
        ks_log("error: %s", err);
        return -1;
    }
    nrules = ks_acl_rule_count(st.acl);
    nclients = ks_clients_count(st.clients);
    if (st.acl != NULL) {
        ks_acl_install(st.acl);
        ks_log("access list %s: %zu rule%s; anything not listed is denied", cfg->acl, nrules,
               nrules == 1 ? "" : "s");
    } else {
        ks_log("no access list (acl) in the configuration: only uid 0 may use keys on the "
               "client socket, TCP clients none; grant others with an acl file");
    }
    if (cfg->listen_tcp[0] != '\0') {
        ks_clients_install(st.clients);
        ks_log("%zu authorized TCP client%s in %s", nclients, nclients == 1 ? "" : "s",
               cfg->authorized_clients);
    }
    return 0;
}

int ks_reload_run(const char *trigger, char *msg, size_t msglen)
{
    char err[KS_CONF_PATH_MAX + 512];
    struct staged st;
    struct timespec ts;
    int rc;

    pthread_mutex_lock(&reload_lock);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ks_sd_notify("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading (%s)",
                 (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, trigger);
    rc = stage(&st, 1, err, sizeof(err));
    if (rc == 0) {
        commit(&st, msg, msglen);
        ks_log("reload (%s): %s", trigger, msg);
        ks_stats_reload(1, msg);
        ks_sd_notify("READY=1\nSTATUS=serving %zu keys; reloaded", ks_store_count());
    } else {
        snprintf(msg, msglen, "%s", err);
        ks_log("error: reload (%s) refused: %s; the previous configuration stays in force",
               trigger, err);
        ks_stats_reload(0, err);
        ks_sd_notify("READY=1\nSTATUS=serving %zu keys; last reload refused: %.200s",
                     ks_store_count(), err);
    }
    pthread_mutex_unlock(&reload_lock);
    return rc;
}
