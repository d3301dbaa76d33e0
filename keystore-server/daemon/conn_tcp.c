/* TCP connections: handshake and frame protection; see conn_tcp.h. */
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

struct ks_tcp {
    int established;
    struct ks_hs hs;
    struct ks_sec sec;
    uint8_t client_pk[32];      /* to re-check after a reload of the client list */
    unsigned clients_gen;
};

void ks_conn_tcp_free(struct ks_tcp *t)
{
    if (t == NULL)
        return;
    sodium_memzero(t, sizeof(*t));
    free(t);
}

int ks_conn_tcp_init(struct ks_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int one = 1, port = 0;

    c->s.is_tcp = 1;
    c->s.uid = (uid_t)-1;   /* never matches a uid: rule in the access list */
    c->s.gid = (gid_t)-1;
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        ks_log("conn %lu: setsockopt(TCP_NODELAY): %s; closing", c->s.id, strerror(errno));
        return -1;
    }
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
    c->tcp = calloc(1, sizeof(*c->tcp));
    if (c->tcp == NULL) {
        ks_log("conn %lu: out of memory for a TCP connection; closing", c->s.id);
        return -1;
    }
    return 0;
}

/* Queue a plaintext handshake frame. */
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

static int handshake(const struct ks_config *cfg, struct ks_conn *c, const uint8_t *msg1,
                     uint32_t len)
{
    struct ks_tcp *t = c->tcp;
    uint8_t cpk[32], msg2[KS_HS2_LEN];
    char cpk64[KS_PUBKEY_B64_LEN + 1];
    char name[KS_CLIENT_NAME_MAX + 1];
    const char *result;
    int64_t t0 = ks_audit_clock();
    unsigned gen = ks_clients_generation();   /* before the lookup: a reload in between is re-checked */
    int status;

    if (len != KS_HS1_LEN) {
        ks_log("conn %lu from %s: first frame is %u bytes, not a keystore TCP handshake "
               "(%d bytes); closing", c->s.id, c->s.peer, len, KS_HS1_LEN);
        ks_audit_event(&c->s, "handshake", "not-a-handshake", t0);
        return -1;
    }
    if (ks_hs_server_read(&t->hs, ks_tcp_identity_server_sk(), ks_tcp_identity_server_pk(), msg1, cpk) != 0) {
        /* unauthenticated notice: we share no key with this peer */
        ks_log("conn %lu from %s: handshake does not decrypt with this server's key (the "
               "client pinned another server public key, or the message was altered); closing",
               c->s.id, c->s.peer);
        status = KS_HS_UNDECRYPTABLE;
        result = "refused-wrong-server-key";
    } else if (!ks_tcp_identity_client_name(cpk, name)) {
        ks_pubkey_format(cpk, cpk64);
        ks_log("conn %lu from %s: client key %s is not in %s; refusing (add 'NAME %s' there "
               "to allow it)", c->s.id, c->s.peer, cpk64, cfg->authorized_clients, cpk64);
        status = KS_HS_UNKNOWN_CLIENT;
        result = "refused-unknown-client-key";
    } else {
        char id[80];

        snprintf(c->s.tcp_client, sizeof(c->s.tcp_client), "%s", name);
        snprintf(id, sizeof(id), "tcp:%s", name);
        if (ks_limit_acquire(&c->s, id, cfg->max_connections_per_client) != 0) {
            ks_log("conn %lu from %s: tcp client '%s' already has max_connections_per_client "
                   "(%d) connections; refusing", c->s.id, c->s.peer, name,
                   cfg->max_connections_per_client);
            status = KS_HS_BUSY;
            result = "refused-too-many-connections";
        } else {
            status = KS_HS_ACCEPT;
            result = "ok";
        }
    }
    if (ks_hs_server_reply(&t->hs, status, msg2, &t->sec) != 0) {
        ks_log("conn %lu from %s: handshake key agreement failed; closing", c->s.id, c->s.peer);
        return -1;
    }
    ks_audit_event(&c->s, "handshake", result, t0);
    if (queue_plain(c, msg2, sizeof(msg2)) != 0) {
        ks_log("conn %lu: out of memory queueing a reply; closing the connection", c->s.id);
        return -1;
    }
    if (status != KS_HS_ACCEPT) {
        c->closing = 1;
        return 0;
    }
    t->established = 1;
    memcpy(t->client_pk, cpk, sizeof(t->client_pk));
    t->clients_gen = gen;
    ks_log("conn %lu: tcp client '%s' authenticated from %s", c->s.id, c->s.tcp_client,
           c->s.peer);
    return 0;
}

/* After a reload of authorized_clients: 1 if this connection's client is
 * still listed under the same name, 0 if it was removed (or renamed). */
static int still_authorized(struct ks_tcp *t, const struct ks_session *s)
{
    char name[KS_CLIENT_NAME_MAX + 1];
    unsigned gen = ks_clients_generation();

    if (gen == t->clients_gen)
        return 1;
    if (!ks_tcp_identity_client_name(t->client_pk, name) || strcmp(name, s->tcp_client) != 0)
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
    uint8_t *pt, *packed = NULL, *dst;
    size_t size;
    int rc = -1;

    if (!t->established)
        return handshake(cfg, c, frame, len);
    if (len < KS_SEC_TAG || (pt = malloc(len - KS_SEC_TAG + 1)) == NULL) {
        ks_log("conn %lu: cannot take a %u-byte encrypted frame; closing", c->s.id, len);
        return -1;
    }
    if (ks_sec_open(&t->sec, frame - KS_FRAME_HEADER, frame, len, pt) != 0) {
        /* no reply: an attacker learns nothing, and the stream is unusable */
        ks_log("conn %lu: tcp client '%s' from %s: a frame failed authentication (altered, "
               "replayed or reordered in transit); closing without a reply", c->s.id,
               c->s.tcp_client, c->s.peer);
        ks_audit_event(&c->s, "frame", "refused-bad-authentication", ks_audit_clock());
        free(pt);
        return -1;
    }
    if (!still_authorized(t, &c->s)) {
        ks_log("conn %lu: tcp client '%s' from %s is no longer in %s (reloaded); closing",
               c->s.id, c->s.tcp_client, c->s.peer, cfg->authorized_clients);
        ks_audit_event(&c->s, "frame", "refused-client-removed", ks_audit_clock());
        sodium_memzero(pt, len - KS_SEC_TAG);
        free(pt);
        return -1;
    }
    after = ks_handle_frame(cfg, &c->s, pt, len - KS_SEC_TAG, &arena, &resp);
    sodium_memzero(pt, len - KS_SEC_TAG);   /* requests may carry secrets (imports) */
    free(pt);
    size = keystore__response__get_packed_size(&resp);
    packed = malloc(size + 1);
    dst = ks_conn_out_reserve(c, KS_FRAME_HEADER + size + KS_SEC_TAG);
    if (packed == NULL || dst == NULL) {
        ks_log("conn %lu: out of memory queueing a reply; closing the connection", c->s.id);
        goto out;
    }
    keystore__response__pack(&resp, packed);
    if (ks_sec_seal(&t->sec, packed, size, dst) != 0) {
        ks_log("conn %lu: encrypting a reply failed; closing the connection", c->s.id);
        goto out;
    }
    c->out_len += KS_FRAME_HEADER + size + KS_SEC_TAG;
    if (after == KS_CLOSE_AFTER_REPLY)
        c->closing = 1;
    rc = 0;
out:
    if (packed != NULL) {
        sodium_memzero(packed, size);   /* replies may carry plaintext */
        free(packed);
    }
    ks_arena_free(&arena);
    return rc;
}
