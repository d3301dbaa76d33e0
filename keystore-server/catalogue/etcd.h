/* A small client of etcd v3's JSON gateway (/v3/kv/range, /v3/kv/txn,
 * /v3/watch), on libcurl and json-c.  Used only by the catalogue agent
 * (daemon/catalogue_agent.c), the process that may open network sockets;
 * it never sees a master key or a plaintext key, only sealed records.
 *
 * Every key this client touches is PREFIX + "keys/" + NAME.  Endpoints are
 * tried in order, starting with the last one that answered; a failure
 * message names etcd and every endpoint tried, for the operator. */
#ifndef KS_ETCD_H
#define KS_ETCD_H

#include <stddef.h>
#include <stdint.h>

#define KS_ETCD_MAX_ENDPOINTS 8
#define KS_ETCD_MAX_VALUE (17u * 1024 * 1024)

struct ks_etcd_opts {
    char endpoints[KS_ETCD_MAX_ENDPOINTS][256];
    int nendpoints;
    char prefix[256];
    /* TLS and credentials: read before confinement, kept in memory */
    uint8_t *cacert, *cert, *key;
    size_t cacert_len, cert_len, key_len;
    char user[128];
    char password[256];
    /* endpoints given by host name, resolved once before confinement
     * (etcd_resolve.c): curl's CURLOPT_RESOLVE lines HOST:PORT:ADDR[,ADDR] */
    char resolve[KS_ETCD_MAX_ENDPOINTS][512];
    int nresolve;
};

/* Before confinement (the confined agent reads no /etc/hosts and no
 * resolv.conf): every endpoint whose host is a name, not an IP address, is
 * looked up now and pinned to the addresses found, for the process's life.
 * The URL keeps the name, so TLS still checks the certificate against it.
 * 0, or -1 with err naming the endpoint. */
int ks_etcd_resolve(struct ks_etcd_opts *o, char *err, size_t errlen);

struct ks_etcd;

struct ks_etcd *ks_etcd_new(const struct ks_etcd_opts *o);
void ks_etcd_free(struct ks_etcd *e);

/* One key-value seen in a range or a watch: name is the part after
 * PREFIX "keys/" (not checked here: the key process checks everything);
 * deleted = 1 for a DELETE event (value empty). */
typedef int (*ks_etcd_kv_fn)(void *arg, const char *name, size_t namelen, const uint8_t *value,
                             size_t vlen, uint64_t mod_rev, int deleted);

/* Every record under the prefix; *rev = the store's revision of that view.
 * 0, or -1 with err. */
int ks_etcd_range_all(struct ks_etcd *e, ks_etcd_kv_fn fn, void *arg, uint64_t *rev,
                      char *err, size_t errlen);

/* txn(compare mod_revision(PREFIX keys/NAME) == expect, put value).
 * Returns 1 put (*rev = the new revision), 0 the compare failed (another
 * writer), -1 etcd unreachable or refusing (err names the endpoints). */
int ks_etcd_txn_put(struct ks_etcd *e, const char *name, uint64_t expect, const uint8_t *value,
                    size_t vlen, uint64_t *rev, char *err, size_t errlen);

/* Watch the prefix from revision start, calling fn for each event, until
 * the stream ends or fails (returns -1 with err) or fn returns non-zero
 * (returns that).  *last = the highest revision delivered. */
int ks_etcd_watch(struct ks_etcd *e, uint64_t start, ks_etcd_kv_fn fn, void *arg,
                  uint64_t *last, char *err, size_t errlen);

/* Watch liveness (a member frozen, or cut off from its cluster, keeps a
 * watch open with nothing in it): another thread, with its own handle,
 * probes the member the watch is on and ends the watch if it fails.
 * endpoint: the member e last used (the watch's).  probe: a count-only
 * linearizable range of the prefix on endpoint i, which needs the cluster's
 * quorum; 0, or -1 with the reason in err.  abort_watch: the running watch
 * of e returns -1 with why as its error (within about a second); safe from
 * any thread. */
int ks_etcd_endpoint(const struct ks_etcd *e);
int ks_etcd_probe(struct ks_etcd *e, int i, char *err, size_t errlen);
void ks_etcd_abort_watch(struct ks_etcd *e, const char *why);

#endif
