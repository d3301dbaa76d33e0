/* etcd v3 JSON gateway client; see etcd.h.  One struct ks_etcd per thread. */
#include "etcd.h"
#include "etcd_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <sodium.h>

#define RESPONSE_MAX (64u * 1024 * 1024)
#define CONNECT_TIMEOUT_MS 500L
#define REQUEST_TIMEOUT_MS 3000L

struct ks_etcd {
    const struct ks_etcd_opts *o;
    CURL *curl;
    int cur;                      /* the endpoint that answered last (atomic: probed) */
    int abort;                    /* ks_etcd_abort_watch: end the watch (atomic) */
    char abort_why[600];          /* written before abort is set */
    char token[512];              /* etcd auth token, "" without user */
    struct curl_slist *resolve;   /* host names pinned before confinement */
};

struct buf {
    char *p;
    size_t len, cap;
};

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    size_t len = size * n;
    char *np;

    if (len > RESPONSE_MAX - b->len)
        return 0;   /* curl fails the transfer */
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;

        np = realloc(b->p, cap);
        if (np == NULL)
            return 0;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return len;
}

struct ks_etcd *ks_etcd_new(const struct ks_etcd_opts *o)
{
    struct ks_etcd *e = calloc(1, sizeof(*e));
    int i;

    if (e == NULL)
        return NULL;
    e->o = o;
    e->curl = curl_easy_init();
    if (e->curl == NULL) {
        free(e);
        return NULL;
    }
    for (i = 0; i < o->nresolve; i++) {
        struct curl_slist *l = curl_slist_append(e->resolve, o->resolve[i]);

        if (l == NULL) {
            ks_etcd_free(e);
            return NULL;
        }
        e->resolve = l;
    }
    return e;
}

void ks_etcd_free(struct ks_etcd *e)
{
    if (e == NULL)
        return;
    curl_easy_cleanup(e->curl);
    curl_slist_free_all(e->resolve);
    sodium_memzero(e->token, sizeof(e->token));
    free(e);
}

static char *b64(const uint8_t *p, size_t len)
{
    size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(n);

    if (s != NULL)
        sodium_bin2base64(s, n, p, len, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

/* "key" and "range_end" of the fleet's prefix into a range or watch request
 * (left out if out of memory: etcd then refuses the request) */
static void add_prefix_range(const struct ks_etcd_opts *o, json_object *obj)
{
    char k[300], *key, *end;
    size_t n;

    snprintf(k, sizeof(k), "%skeys/", o->prefix);
    n = strlen(k);
    key = b64((const uint8_t *)k, n);
    k[n - 1]++;   /* "keys/" -> "keys0": the end of the prefix range */
    end = b64((const uint8_t *)k, n);
    if (key != NULL && end != NULL) {
        json_object_object_add(obj, "key", json_object_new_string(key));
        json_object_object_add(obj, "range_end", json_object_new_string(end));
    }
    free(key);
    free(end);
}

static void setup(struct ks_etcd *e, const char *url, const char *body, struct curl_slist **hdr,
                  long timeout_ms)
{
    CURL *c = e->curl;
    char auth[600];

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");   /* loopback and cluster peers: never a proxy */
    if (e->resolve != NULL)
        curl_easy_setopt(c, CURLOPT_RESOLVE, e->resolve);
    if (e->o->cacert != NULL) {
        struct curl_blob b = { e->o->cacert, e->o->cacert_len, CURL_BLOB_NOCOPY };

        /* that CA only: not also the system's bundle and directory, which the
         * confined agent cannot read anyway (an unknown issuer made OpenSSL
         * stat /etc/ssl/certs/HASH.0, which the agent's filter killed) */
        curl_easy_setopt(c, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
    }
    if (e->o->cert != NULL) {
        struct curl_blob b = { e->o->cert, e->o->cert_len, CURL_BLOB_NOCOPY };

        curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &b);
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (e->o->key != NULL) {
        struct curl_blob b = { e->o->key, e->o->key_len, CURL_BLOB_NOCOPY };

        curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &b);
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    }
    *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (e->token[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: %s", e->token);
        *hdr = curl_slist_append(*hdr, auth);
        sodium_memzero(auth, sizeof(auth));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdr);
}

static void add_why(char *err, size_t errlen, const char *endpoint, const char *why)
{
    size_t n = strlen(err);

    if (n < errlen)
        snprintf(err + n, errlen - n, "%s%s: %s", n > 0 ? "; " : "", endpoint, why);
}

/* One POST to endpoint i; parsed JSON reply or NULL with the reason added to err. */
static json_object *post_one(struct ks_etcd *e, int i, const char *path, const char *body,
                             char *err, size_t errlen)
{
    char url[400], why[300];
    struct curl_slist *hdr = NULL;
    struct buf b = { 0 };
    json_object *j = NULL;
    long status = 0;
    CURLcode rc;

    snprintf(url, sizeof(url), "%s%s", e->o->endpoints[i], path);
    setup(e, url, body, &hdr, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &b);
    rc = curl_easy_perform(e->curl);
    curl_slist_free_all(hdr);
    curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        add_why(err, errlen, e->o->endpoints[i], curl_easy_strerror(rc));
        goto out;
    }
    j = ks_etcd_json_reply(b.p, b.len, status, why, sizeof(why));
    if (j == NULL)
        add_why(err, errlen, e->o->endpoints[i], why);
out:
    free(b.p);
    return j;
}

/* With catalogue_user: a token from /v3/auth/authenticate on endpoint i. */
static int authenticate(struct ks_etcd *e, int i, char *err, size_t errlen)
{
    json_object *req, *j;
    int rc = -1;

    if (e->o->user[0] == '\0')
        return 0;
    req = json_object_new_object();
    json_object_object_add(req, "name", json_object_new_string(e->o->user));
    json_object_object_add(req, "password", json_object_new_string(e->o->password));
    e->token[0] = '\0';
    j = post_one(e, i, "/v3/auth/authenticate", json_object_to_json_string(req), err, errlen);
    json_object_put(req);
    if (j != NULL && ks_etcd_json_token(j, e->token, sizeof(e->token)) == 0) {
        rc = 0;
    } else if (j != NULL) {
        add_why(err, errlen, e->o->endpoints[i], "no token in the authentication reply");
    }
    json_object_put(j);
    return rc;
}

/* POST to each endpoint in turn, starting with the last that answered. */
static json_object *post(struct ks_etcd *e, const char *path, const char *body, char *err,
                         size_t errlen)
{
    int k;

    err[0] = '\0';
    for (k = 0; k < e->o->nendpoints; k++) {
        int i = (e->cur + k) % e->o->nendpoints;
        json_object *j;

        if (authenticate(e, i, err, errlen) != 0)
            continue;
        j = post_one(e, i, path, body, err, errlen);
        if (j != NULL) {
            __atomic_store_n(&e->cur, i, __ATOMIC_RELAXED);
            err[0] = '\0';
            return j;
        }
    }
    return NULL;
}

int ks_etcd_range_all(struct ks_etcd *e, ks_etcd_kv_fn fn, void *arg, uint64_t *rev,
                      char *err, size_t errlen)
{
    json_object *req = json_object_new_object(), *j;
    int rc;

    add_prefix_range(e->o, req);
    j = post(e, "/v3/kv/range", json_object_to_json_string(req), err, errlen);
    json_object_put(req);
    if (j == NULL)
        return -1;
    rc = ks_etcd_json_range(j, e->o->prefix, fn, arg, rev);
    json_object_put(j);
    return rc == 0 ? 0 : -1;
}

int ks_etcd_txn_put(struct ks_etcd *e, const char *name, uint64_t expect, const uint8_t *value,
                    size_t vlen, uint64_t *rev, char *err, size_t errlen)
{
    json_object *req = json_object_new_object(), *cmp = json_object_new_object(), *arr, *put,
                *op, *j;
    char k[400], num[24], *kb, *vb;
    int rc;

    snprintf(k, sizeof(k), "%skeys/%s", e->o->prefix, name);
    kb = b64((const uint8_t *)k, strlen(k));
    vb = b64(value, vlen);
    if (kb == NULL || vb == NULL) {
        snprintf(err, errlen, "out of memory");
        free(kb);
        free(vb);
        json_object_put(req);
        json_object_put(cmp);
        return -1;
    }
    /* mod_revision 0 = the key does not exist: a create has one winner */
    snprintf(num, sizeof(num), "%llu", (unsigned long long)expect);
    json_object_object_add(cmp, "key", json_object_new_string(kb));
    json_object_object_add(cmp, "target", json_object_new_string("MOD"));
    json_object_object_add(cmp, "result", json_object_new_string("EQUAL"));
    json_object_object_add(cmp, "mod_revision", json_object_new_string(num));
    arr = json_object_new_array();
    json_object_array_add(arr, cmp);
    json_object_object_add(req, "compare", arr);
    put = json_object_new_object();
    json_object_object_add(put, "key", json_object_new_string(kb));
    json_object_object_add(put, "value", json_object_new_string(vb));
    op = json_object_new_object();
    json_object_object_add(op, "request_put", put);
    arr = json_object_new_array();
    json_object_array_add(arr, op);
    json_object_object_add(req, "success", arr);
    free(kb);
    free(vb);
    j = post(e, "/v3/kv/txn", json_object_to_json_string(req), err, errlen);
    json_object_put(req);
    if (j == NULL)
        return -1;
    rc = ks_etcd_json_txn(j, rev);
    json_object_put(j);
    return rc;
}

/* ---- watch -------------------------------------------------------------- */

static size_t watch_data(char *data, size_t size, size_t n, void *arg)
{
    return ks_etcd_watch_feed(arg, data, size * n) == 0 ? size * n : 0;
}

/* called about once a second while the watch waits: nonzero ends it */
static int watch_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
                          curl_off_t uln)
{
    (void)dlt;
    (void)dln;
    (void)ult;
    (void)uln;
    return __atomic_load_n(&((struct ks_etcd *)arg)->abort, __ATOMIC_ACQUIRE);
}

int ks_etcd_endpoint(const struct ks_etcd *e)
{
    return __atomic_load_n(&e->cur, __ATOMIC_RELAXED);
}

void ks_etcd_abort_watch(struct ks_etcd *e, const char *why)
{
    snprintf(e->abort_why, sizeof(e->abort_why), "%s", why);
    __atomic_store_n(&e->abort, 1, __ATOMIC_RELEASE);
}

int ks_etcd_probe(struct ks_etcd *e, int i, char *err, size_t errlen)
{
    json_object *req = json_object_new_object(), *j;

    err[0] = '\0';
    /* a token is a member's own (simple tokens): ask again on another */
    if (i != e->cur || e->token[0] == '\0') {
        e->cur = i;
        if (authenticate(e, i, err, errlen) != 0) {
            e->token[0] = '\0';
            json_object_put(req);
            return -1;
        }
    }
    add_prefix_range(e->o, req);
    json_object_object_add(req, "count_only", json_object_new_boolean(1));
    j = post_one(e, i, "/v3/kv/range", json_object_to_json_string(req), err, errlen);
    json_object_put(req);
    if (j == NULL) {
        e->token[0] = '\0';
        return -1;
    }
    json_object_put(j);
    return 0;
}

int ks_etcd_watch(struct ks_etcd *e, uint64_t start, ks_etcd_kv_fn fn, void *arg,
                  uint64_t *last, char *err, size_t errlen)
{
    json_object *req = json_object_new_object(), *cr = json_object_new_object();
    struct ks_etcd_watch_parser w = { .prefix = e->o->prefix, .fn = fn, .arg = arg,
                                      .last = start > 0 ? start - 1 : 0 };
    struct curl_slist *hdr = NULL;
    char url[400], num[24];
    int i = e->cur;
    CURLcode rc;

    err[0] = '\0';
    if (authenticate(e, i, err, errlen) != 0) {
        __atomic_store_n(&e->cur, (i + 1) % e->o->nendpoints, __ATOMIC_RELAXED);
        json_object_put(req);
        json_object_put(cr);
        return -1;
    }
    snprintf(num, sizeof(num), "%llu", (unsigned long long)start);
    add_prefix_range(e->o, cr);
    json_object_object_add(cr, "start_revision", json_object_new_string(num));
    json_object_object_add(req, "create_request", cr);
    snprintf(url, sizeof(url), "%s/v3/watch", e->o->endpoints[i]);
    setup(e, url, json_object_to_json_string(req), &hdr, 0L);
    /* a member that loses its cluster's leader (a minority) ends the watch
     * ("no leader") instead of keeping it open with nothing in it */
    hdr = curl_slist_append(hdr, "Grpc-Metadata-hasleader: true");
    curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, hdr);
    __atomic_store_n(&e->abort, 0, __ATOMIC_RELAXED);
    curl_easy_setopt(e->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e->curl, CURLOPT_XFERINFOFUNCTION, watch_progress);
    curl_easy_setopt(e->curl, CURLOPT_XFERINFODATA, e);
    /* a member that vanishes without closing (a partition) is noticed by keepalives */
    curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPIDLE, 2L);
    curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPINTVL, 1L);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, watch_data);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &w);
    rc = curl_easy_perform(e->curl);
    curl_slist_free_all(hdr);
    json_object_put(req);
    ks_etcd_watch_parser_free(&w);
    *last = w.last;
    if (w.stop)
        return w.stop;
    if (rc == CURLE_ABORTED_BY_CALLBACK && __atomic_load_n(&e->abort, __ATOMIC_ACQUIRE))
        snprintf(err, errlen, "%s", e->abort_why);
    else
        snprintf(err, errlen, "%s: %s", e->o->endpoints[i],
                 w.failed ? w.why : rc != CURLE_OK ? curl_easy_strerror(rc) : "the watch stream ended");
    /* next time another member */
    __atomic_store_n(&e->cur, (i + 1) % e->o->nendpoints, __ATOMIC_RELAXED);
    return -1;
}
