/* TCP connections: handshake, key confirmation and frame protection; see
 * conn_tcp.h and docs/protocol.md.  A connection goes through three states:
 * waiting for message 1, waiting for key confirmation (message 2 sent; the
 * client's first transport frame must decrypt), established.  Until it is
 * established it counts only against max_unauthenticated_per_address and
 * handshake_timeout, never against its client's limits, and nothing is
 * audited as that client. */
#include "conn_tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "client_limit.h"
#include "common/log.h"
#include "conn_buf.h"
#include "ops/audit.h"
#include "ops/dispatch.h"
#include "secure.h"
#include "tcp_identity.h"
#include "tcp_replay.h"

enum tcp_state { WAIT_MSG1 = 0, WAIT_CONFIRM, ESTABLISHED };

struct ks_tcp {
    enum tcp_state state;
    struct ks_noise_hs hs;
    struct ks_sec sec;
    char claimed[KS_CLIENT_NAME_MAX + 1];   /* from message 1, until confirmed */
    char addr[KS_LIMIT_ADDR_MAX];           /* source IP, counted while unauthenticated */
    int addr_counted;
    int64_t accepted_at;                    /* monotonic ms */
    int64_t hs_audit_t0;                    /* audit clock at message 1 */
    uint8_t client_pk[32];                  /* re-checked after a reload of the client list */
    unsigned clients_gen;
};

static void release_addr(struct ks_tcp *t)
{
    if (t->addr_counted)
        ks_limit_addr_release(t->addr);
    t->addr_counted = 0;
}

void ks_conn_tcp_free(struct ks_tcp *t)
{
    if (t == NULL)
        return;
    release_addr(t);
    sodium_memzero(t, sizeof(*t));
    free(t);
}

/* At most one "per-address limit" line a second, with the count since the
 * last: a flood must not fill the log. */
static void log_addr_refusal(const char *addr, int max)
{
    static int64_t last_ms;
    static unsigned long suppressed;
    int64_t now = ks_mono_us() / 1000, prev = __atomic_load_n(&last_ms, __ATOMIC_RELAXED);

    if (now - prev < 1000 ||
        !__atomic_compare_exchange_n(&last_ms, &prev, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&suppressed, 1, __ATOMIC_RELAXED);
        return;
    }
    ks_log("refusing a TCP connection from %s: max_unauthenticated_per_address (%d) reached "
           "(%lu more refused since the last such line)", addr, max,
           __atomic_exchange_n(&suppressed, 0, __ATOMIC_RELAXED));
}

int ks_conn_tcp_init(const struct ks_config *cfg, struct ks_conn *c, int64_t now)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int one = 1, port = 0;

    c->s.is_tcp = 1;
    c->s.uid = (uid_t)-1;   /* never matches a uid: rule in the access list */
    c->s.gid = (gid_t)-1;
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            snprintf(c->s.peer, sizeof(c->s.peer), "%s:%d", host, port);
        } else if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(c->s.peer, sizeof(c->s.peer), "[%s]:%d", host, port);
        }
    }
    if (ks_limit_addr_acquire(host, cfg->max_unauthenticated_per_address) != 0) {
        log_addr_refusal(host, cfg->max_unauthenticated_per_address);
        return -1;
    }
    c->tcp = calloc(1, sizeof(*c->tcp));
    if (c->tcp == NULL) {
        ks_limit_addr_release(host);
        ks_log("conn %lu: out of memory for a TCP connection; closing", c->s.id);
        return -1;
    }
    snprintf(c->tcp->addr, sizeof(c->tcp->addr), "%s", host);
    c->tcp->addr_counted = 1;
    c->tcp->accepted_at = now;
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        ks_log("conn %lu: setsockopt(TCP_NODELAY): %s; closing", c->s.id, strerror(errno));
        return -1;   /* the caller frees c and with it the count */
    }
    return 0;
}

size_t ks_conn_tcp_max_len(const struct ks_config *cfg, const struct ks_tcp *t)
{
    size_t pt = cfg->max_frame < KS_TCP_MAX_PLAINTEXT ? cfg->max_frame : KS_TCP_MAX_PLAINTEXT;

    return t->state == WAIT_MSG1 ? KS_HS1_LEN : pt + KS_SEC_TAG;
}

int ks_conn_tcp_header(struct ks_conn *c, uint32_t len)
{
    if (c->tcp->state != WAIT_MSG1 || len == KS_HS1_LEN)
        return 0;
    ks_log("conn %lu from %s: first frame announces %u bytes, not a keystore TCP handshake "
           "(version 2: %d bytes); closing", c->s.id, c->s.peer, len, KS_HS1_LEN);
    ks_audit_event(&c->s, "handshake", "not-a-handshake", ks_audit_clock());
    return -1;
}

int ks_conn_tcp_timed_out(const struct ks_config *cfg, const struct ks_conn *c, int64_t now)
{
    if (c->tcp == NULL || c->tcp->state == ESTABLISHED ||
        now - c->tcp->accepted_at < (int64_t)cfg->handshake_timeout * 1000)
        return 0;
    ks_log("conn %lu from %s did not complete the handshake within %d s "
           "(handshake_timeout); closing", c->s.id, c->s.peer, cfg->handshake_timeout);
    return 1;
}

/* Queue one frame: header and body. */
static int queue_plain(struct ks_conn *c, const uint8_t *msg, size_t len)
{
    uint8_t *dst = ks_conn_out_reserve(c, KS_FRAME_HEADER + len);

    if (dst == NULL)
        return -1;
    ks_put_be32(dst, (uint32_t)len);
    memcpy(dst + KS_FRAME_HEADER, msg, len);
    c->out_len += KS_FRAME_HEADER + len;
    return 0;
}

static const char *ts_reason(enum ks_ts_verdict v)
{
    switch (v) {
    case KS_TS_REPLAYED: return "refused-replayed-handshake";
    case KS_TS_BEFORE_START: return "refused-handshake-before-start";
    case KS_TS_SKEW: return "refused-clock-skew";
    default: return "refused-bad-timestamp";
    }
}

/* Message 1: decrypt, look the key up, check freshness; answer with
 * message 2.  Nothing is counted or audited as the client yet. */
static int handshake(const struct ks_config *cfg, struct ks_conn *c, const uint8_t *msg1)
{
    struct ks_tcp *t = c->tcp;
    uint8_t cpk[32], ts[KS_TAI64N_LEN], msg2[KS_HS2_LEN], notice = KS_HS_UNDECRYPTABLE;
    char cpk64[KS_PUBKEY_B64_LEN + 1], id[80], namebuf[KS_CLIENT_NAME_MAX + 1];
    const char *name, *result = "refused";
    unsigned gen = ks_clients_generation();   /* before the lookup: a reload in between is re-checked */
    enum ks_ts_verdict v;
    int64_t delta_ms = 0;
    int status;

    t->hs_audit_t0 = ks_audit_clock();
    if (ks_hs_server_read(&t->hs, ks_tcp_identity_server_sk(), msg1, cpk, ts) != 0) {
        /* unauthenticated notice: we share no key with this peer */
        ks_log("conn %lu from %s: handshake does not decrypt with this server's key (the "
               "client pinned another server public key, speaks another channel version, or "
               "the message was altered); closing", c->s.id, c->s.peer);
        ks_audit_event(&c->s, "handshake", "refused-wrong-server-key", t->hs_audit_t0);
        if (queue_plain(c, &notice, 1) != 0)
            return -1;
        c->closing = 1;
        return 0;
    }
    name = ks_tcp_identity_client_name(cpk, namebuf) ? namebuf : NULL;
    if (name == NULL) {
        ks_pubkey_format(cpk, cpk64);
        ks_log("conn %lu from %s: client key %s is not in %s; refusing (add 'NAME %s' there "
               "to allow it)", c->s.id, c->s.peer, cpk64, cfg->authorized_clients, cpk64);
        status = KS_HS_UNKNOWN_CLIENT;
        result = "refused-unknown-client-key";
    } else if ((v = ks_tcp_replay_check(cpk, ts, ks_wall_ns(),
                                        (int64_t)cfg->tcp_max_clock_skew * 1000000000,
                                        &delta_ms)) != KS_TS_FRESH) {
        if (v == KS_TS_REPLAYED)
            ks_log("conn %lu from %s: handshake timestamp %+.3f s from now was already used "
                   "for tcp client '%s' (a replayed message 1); refusing", c->s.id, c->s.peer,
                   (double)delta_ms / 1000, name);
        else if (v == KS_TS_BEFORE_START)
            ks_log("conn %lu from %s: handshake timestamp %+.3f s from now is older than "
                   "this server's start (a message 1 recorded before a restart, or tcp client "
                   "'%s' has a clock behind ours); refusing", c->s.id, c->s.peer,
                   (double)delta_ms / 1000, name);
        else
            ks_log("conn %lu from %s: handshake timestamp of tcp client '%s' is %+.3f s from "
                   "our clock, beyond tcp_max_clock_skew (%d s); refusing (synchronize the "
                   "clocks)", c->s.id, c->s.peer, name, (double)delta_ms / 1000,
                   cfg->tcp_max_clock_skew);
        status = KS_HS_STALE;
        result = ts_reason(v);
    } else {
        snprintf(id, sizeof(id), "tcp:%s", name);
        if (ks_limit_full(id, cfg->max_connections_per_client)) {
            ks_log("conn %lu from %s: tcp client '%s' already has max_connections_per_client "
                   "(%d) connections; refusing", c->s.id, c->s.peer, name,
                   cfg->max_connections_per_client);
            status = KS_HS_BUSY;
            result = "refused-too-many-connections";
        } else {
            status = KS_HS_ACCEPT;
            snprintf(t->claimed, sizeof(t->claimed), "%s", name);
            memcpy(t->client_pk, cpk, sizeof(t->client_pk));
            t->clients_gen = gen;
        }
    }
    if (ks_hs_server_reply(&t->hs, status, msg2, &t->sec) != 0) {
        ks_log("conn %lu from %s: handshake key agreement failed; closing", c->s.id, c->s.peer);
        return -1;
    }
    if (queue_plain(c, msg2, sizeof(msg2)) != 0) {
        ks_log("conn %lu: out of memory queueing a reply; closing the connection", c->s.id);
        return -1;
    }
    if (status != KS_HS_ACCEPT) {
        ks_audit_event(&c->s, "handshake", result, t->hs_audit_t0);
        c->closing = 1;
        return 0;
    }
    ks_sec_set_rekey(&t->sec, (uint64_t)cfg->tcp_rekey_frames,
                     (int64_t)cfg->tcp_rekey_seconds * 1000, ks_mono_us() / 1000);
    t->state = WAIT_CONFIRM;
    return 0;
}

/* Seal resp (after a rekey marker if our sending key is due) into the output. */
static int queue_sealed(struct ks_conn *c, const Keystore__Response *resp)
{
    struct ks_tcp *t = c->tcp;
    size_t size = keystore__response__get_packed_size(resp);
    uint8_t *packed = malloc(size + 1), *dst;
    int64_t now = ks_mono_us() / 1000;
    int rc = -1;

    if (packed == NULL)
        goto out;
    keystore__response__pack(resp, packed);
    if (ks_sec_rekey_due(&t->sec, now)) {
        dst = ks_conn_out_reserve(c, KS_FRAME_HEADER + KS_SEC_TAG);
        if (dst == NULL || ks_sec_seal_rekey(&t->sec, dst, now) != 0)
            goto out;
        c->out_len += KS_FRAME_HEADER + KS_SEC_TAG;
    }
    dst = ks_conn_out_reserve(c, KS_FRAME_HEADER + size + KS_SEC_TAG);
    if (dst == NULL || ks_sec_seal(&t->sec, packed, size, dst) != 0)
        goto out;
    c->out_len += KS_FRAME_HEADER + size + KS_SEC_TAG;
    rc = 0;
out:
    if (packed != NULL) {
        sodium_memzero(packed, size);   /* replies may carry plaintext */
        free(packed);
    }
    if (rc != 0)
        ks_log("conn %lu: out of memory or encryption failure queueing a reply; closing the "
               "connection", c->s.id);
    return rc;
}

/* The first transport frame decrypted: the client holds the session keys,
 * so it is who message 1 said.  Only now is it counted and audited. */
static int confirmed(const struct ks_config *cfg, struct ks_conn *c, const uint8_t *pt,
                     size_t ptlen)
{
    struct ks_tcp *t = c->tcp;
    Keystore__Response resp = KEYSTORE__RESPONSE__INIT;
    Keystore__Error e = KEYSTORE__ERROR__INIT;
    Keystore__Request *req;
    char id[80], msg[200];

    release_addr(t);
    snprintf(c->s.tcp_client, sizeof(c->s.tcp_client), "%s", t->claimed);
    snprintf(id, sizeof(id), "tcp:%s", t->claimed);
    t->state = ESTABLISHED;
    if (ks_limit_acquire(&c->s, id, cfg->max_connections_per_client) == 0) {
        ks_audit_event(&c->s, "handshake", "ok", t->hs_audit_t0);
        ks_log("conn %lu: tcp client '%s' authenticated from %s", c->s.id, c->s.tcp_client,
               c->s.peer);
        return 0;
    }
    /* another connection of this client confirmed first and took the slot */
    ks_log("conn %lu from %s: tcp client '%s' already has max_connections_per_client (%d) "
           "connections; refusing", c->s.id, c->s.peer, t->claimed,
           cfg->max_connections_per_client);
    ks_audit_event(&c->s, "handshake", "refused-too-many-connections", t->hs_audit_t0);
    snprintf(msg, sizeof(msg), "tcp client '%s' already has max_connections_per_client (%d) "
             "connections open", t->claimed, cfg->max_connections_per_client);
    req = ptlen > 0 ? keystore__request__unpack(NULL, ptlen, pt) : NULL;
    resp.id = req != NULL ? req->id : 0;
    if (req != NULL)
        keystore__request__free_unpacked(req, NULL);
    e.code = KEYSTORE__ERROR_CODE__ERROR_PERMISSION_DENIED;
    e.message = msg;
    resp.body_case = KEYSTORE__RESPONSE__BODY_ERROR;
    resp.error = &e;
    c->closing = 1;
    return queue_sealed(c, &resp) == 0 ? 1 : -1;
}

/* After a reload of authorized_clients: 1 if this connection's client is
 * still listed under the same name, 0 if it was removed (or renamed). */
static int still_authorized(struct ks_tcp *t)
{
    char name[KS_CLIENT_NAME_MAX + 1];
    unsigned gen = ks_clients_generation();

    if (gen == t->clients_gen)
        return 1;
    if (!ks_tcp_identity_client_name(t->client_pk, name) || strcmp(name, t->claimed) != 0)
        return 0;
    t->clients_gen = gen;
    return 1;
}

int ks_conn_tcp_frame(const struct ks_config *cfg, struct ks_conn *c, const uint8_t *frame,
                      uint32_t len)
{
    struct ks_tcp *t = c->tcp;
    Keystore__Response resp = KEYSTORE__RESPONSE__INIT;
    struct ks_arena arena = KS_ARENA_INIT;
    enum ks_after after;
    uint8_t *pt;
    int r, rc = -1;

    if (t->state == WAIT_MSG1)
        return handshake(cfg, c, frame);   /* the length was checked on the header */
    if (len < KS_SEC_TAG || (pt = malloc(len - KS_SEC_TAG + 1)) == NULL) {
        ks_log("conn %lu: cannot take a %u-byte encrypted frame; closing", c->s.id, len);
        return -1;
    }
    r = ks_sec_open(&t->sec, frame, len, pt);
    if (r < 0) {
        /* no reply: an attacker learns nothing, and the stream is unusable */
        if (t->state == WAIT_CONFIRM)
            ks_log("conn %lu from %s: the first frame after the handshake does not decrypt "
                   "(no key confirmation: a replayed or forged message 1?); closing",
                   c->s.id, c->s.peer);
        else
            ks_log("conn %lu: tcp client '%s' from %s: a frame failed authentication (altered, "
                   "replayed or reordered in transit); closing without a reply", c->s.id,
                   c->s.tcp_client, c->s.peer);
        ks_audit_event(&c->s, t->state == WAIT_CONFIRM ? "handshake" : "frame",
                       t->state == WAIT_CONFIRM ? "refused-no-key-confirmation"
                                                : "refused-bad-authentication",
                       ks_audit_clock());
        free(pt);
        return -1;
    }
    if (!still_authorized(t)) {
        ks_log("conn %lu: tcp client '%s' from %s is no longer in %s (reloaded); closing",
               c->s.id, t->claimed, c->s.peer, cfg->authorized_clients);
        ks_audit_event(&c->s, "frame", "refused-client-removed", ks_audit_clock());
        sodium_memzero(pt, len - KS_SEC_TAG);
        free(pt);
        return -1;
    }
    if (t->state == WAIT_CONFIRM) {
        int cr = confirmed(cfg, c, pt, r == 0 ? len - KS_SEC_TAG : 0);

        if (cr != 0) {
            sodium_memzero(pt, len - KS_SEC_TAG);
            free(pt);
            return cr < 0 ? -1 : 0;
        }
    }
    if (r == 1) {
        free(pt);   /* a rekey marker: the client's next frame uses its new key */
        return 0;
    }
    after = ks_handle_frame(cfg, &c->s, pt, len - KS_SEC_TAG, &arena, &resp);
    sodium_memzero(pt, len - KS_SEC_TAG);   /* requests may carry secrets (imports) */
    free(pt);
    if (queue_sealed(c, &resp) != 0)
        goto out;
    if (after == KS_CLOSE_AFTER_REPLY)
        c->closing = 1;
    rc = 0;
out:
    ks_arena_free(&arena);
    return rc;
}
