/* Certificate reload (keystorectl reload, SIGHUP): every key's NAME.crt read
 * again, checked, then published or dropped as a whole; see keytable.h and
 * keytable_int.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "certchain.h"
#include "common/log.h"
#include "keytable_int.h"
#include "sealed_file.h"

struct cert_change {
    struct ks_key *old;      /* referenced: published only if still current */
    struct ks_key *fresh;
};

struct ks_cert_update {
    struct cert_change *v;
    size_t n;
};

static int same_chain(const struct ks_key *k, const struct ks_cert *certs, size_t n)
{
    size_t i;

    if (k->ncerts != n)
        return 0;
    for (i = 0; i < n; i++)
        if (k->certs[i].len != certs[i].len || memcmp(k->certs[i].der, certs[i].der, certs[i].len) != 0)
            return 0;
    return 1;
}

/* The chain NAME.crt holds now (none if the file is absent); 1 changed, 0 same, -1 error. */
static int reread_chain(struct ks_key *k, struct ks_key **fresh, char *err, size_t errlen)
{
    char keyf[80], keytmp[80], crtf[80], crttmp[80], why[512];
    struct ks_cert *certs = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, n = 0, bad;
    int rc = -1;

    *fresh = NULL;
    kt_file_names(k->name, keyf, keytmp, crtf, crttmp);
    if (ks_read_file_at(kt_dir_fd, crtf, KS_CERTFILE_MAX, &buf, &len, why, sizeof(why)) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "%s/%s: %s", kt_dir_path, crtf, why);
            return -1;
        }
    } else if (ks_cert_split(buf, len, &certs, &n) != 0) {
        snprintf(err, errlen, "%s/%s is not a list of DER certificates", kt_dir_path, crtf);
        goto out;
    } else if (ks_cert_chain_check(k->pkey, k->name, certs, n, 0, &bad, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s/%s: %s", kt_dir_path, crtf, why);
        ERR_clear_error();
        goto out;
    }
    if (same_chain(k, certs, n)) {
        rc = 0;
        goto out;
    }
    /* The manifest vouches only for chains the server itself wrote: a file
     * changed behind its back must not be attached by a reload (it would
     * bypass the manifest), so it fails the reload instead. */
    snprintf(err, errlen, "%s/%s differs from the chain attached to key %s and is not vouched "
             "for by the key directory's manifest; attach certificates with keystorectl "
             "attach-cert", kt_dir_path, crtf, k->name);
    goto out;
out:
    free(certs);
    free(buf);
    return rc;
}

void ks_store_certs_discard(struct ks_cert_update *u)
{
    size_t i;

    if (u == NULL)
        return;
    for (i = 0; i < u->n; i++) {
        ks_key_put(u->v[i].old);
        kt_key_free(u->v[i].fresh);
    }
    free(u->v);
    free(u);
}

int ks_store_certs_prepare(struct ks_cert_update **out, size_t *changed, char *err, size_t errlen)
{
    struct ks_cert_update *u = calloc(1, sizeof(*u));
    struct ks_key **all = NULL;
    size_t i, n = 0;

    *out = NULL;
    *changed = 0;
    if (u == NULL)
        goto oom;
    /* a snapshot of the entries; the files are read without the table lock */
    all = kt_table_snapshot(&n);
    if (all == NULL || (u->v = calloc(n ? n : 1, sizeof(*u->v))) == NULL)
        goto oom;
    for (i = 0; i < n; i++) {
        struct ks_key *fresh;
        int r = reread_chain(all[i], &fresh, err, errlen);

        if (r < 0)
            goto fail;
        if (r == 1) {
            u->v[u->n].old = all[i];
            u->v[u->n].fresh = fresh;
            u->n++;
            all[i] = NULL;   /* the reference moved into u */
        }
    }
    for (i = 0; i < n; i++)
        ks_key_put(all[i]);
    free(all);
    *changed = u->n;
    *out = u;
    return 0;
oom:
    snprintf(err, errlen, "out of memory reloading the certificates");
fail:
    for (i = 0; i < n; i++)
        ks_key_put(all[i]);
    free(all);
    ks_store_certs_discard(u);
    return -1;
}

void ks_store_certs_commit(struct ks_cert_update *u)
{
    char why[512];
    size_t i;

    if (u == NULL)
        return;
    pthread_mutex_lock(&kt_write_lock);
    for (i = 0; i < u->n; i++) {
        struct ks_key *cur = ks_store_get(u->v[i].old->name);

        if (cur == u->v[i].old) {
            kt_uncarry(u->v[i].fresh->name);
            kt_table_put(u->v[i].fresh);
            u->v[i].fresh = NULL;
        }
        ks_key_put(cur);
    }
    /* An admin asked for the reload: from now on the manifest vouches for
     * the chains it published (and no longer for the ones they replace). */
    if (u->n > 0 && kt_commit(NULL, why, sizeof(why)) != 0)
        ks_log("error: certificates reloaded but %s", why);
    pthread_mutex_unlock(&kt_write_lock);
    ks_store_certs_discard(u);
}
