/* Frame decoding, Hello and dispatch to the handlers; see dispatch.h. */
#include "dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <sodium.h>

#include "acl.h"
#include "audit.h"
#include "common/log.h"
#include "handlers.h"
#include "op.h"
#include "stats.h"
#include "usage.h"

/* Largest reply this connection carries: max_frame, and over TCP one Noise
 * transport message's plaintext at most. */
static size_t reply_limit(const struct ks_op *op)
{
    return op->s->is_tcp && op->cfg->max_frame > KS_TCP_MAX_PLAINTEXT ? KS_TCP_MAX_PLAINTEXT
                                                                      : op->cfg->max_frame;
}

static enum ks_after do_hello(struct ks_op *op, const Keystore__Hello *h)
{
    Keystore__HelloReply *hr;

    if (h->version != KS_PROTOCOL_VERSION) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_UNSUPPORTED_VERSION,
                    "client speaks protocol version %u but this server speaks version %d; "
                    "upgrade the older side", h->version, KS_PROTOCOL_VERSION);
        return KS_CLOSE_AFTER_REPLY;
    }
    ks_log_sanitize(h->client_name, op->s->client_name, sizeof(op->s->client_name));
    op->s->hello_done = 1;
    op->s->shm_ring_size = h->shm_ring_size;
    hr = ks_arena_alloc(op->arena, sizeof(*hr));
    if (hr == NULL)
        return KS_CLOSE_AFTER_REPLY;
    keystore__hello_reply__init(hr);
    hr->version = KS_PROTOCOL_VERSION;
    hr->server_version = (char *)KS_SERVER_VERSION;
    hr->max_frame = (uint32_t)reply_limit(op);
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_HELLO;
    op->resp->hello = hr;
    if (op->s->is_tcp)
        ks_log("conn %lu tcp client '%s' from %s: hello from '%s' over TCP", op->s->id,
               op->s->tcp_client, op->s->peer, op->s->client_name);
    else
        ks_log("conn %lu uid %u gid %u pid %d: hello from '%s' on the %s socket", op->s->id,
               (unsigned)op->s->uid, (unsigned)op->s->gid, (int)op->s->pid, op->s->client_name,
               op->s->is_admin ? "admin" : "client");
    return KS_KEEP_OPEN;
}

/* Returns 1 if the peer may run an admin-only operation, else replies. */
static int admin_allowed(struct ks_op *op, int client_may)
{
    if (op->s->is_admin || client_may)
        return 1;
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_PERMISSION_DENIED,
                "%s is an admin operation: use the admin socket%s", op->name,
                strcmp(op->name, "GenerateKey") == 0 ?
                " (or set allow_client_generate = yes in the server configuration)" : "");
    return 0;
}

/* A key operation needs the key's fixed usage and the access list.  The
 * usage comes first, so no grant can widen it, but only for a peer that may
 * use the key for something: to anyone else a key that exists must answer
 * like one that does not, and the access list's refusal (given before any
 * lookup) is that answer. */
static int key_op_permitted(struct ks_op *op, uint32_t usage, int acl_op, const char *key,
                            uint32_t version)
{
    if (!ks_acl_visible(op->s, key))
        return ks_acl_permit(op, acl_op, key);
    return ks_usage_permit(op, usage, key, version) && ks_acl_permit(op, acl_op, key);
}

static void dispatch(struct ks_op *op, const Keystore__Request *req)
{
    /* The oneof members share storage; protobuf-c always allocates the
     * selected one, but a NULL here must not crash the server. */
    if (req->body_case != KEYSTORE__REQUEST__BODY__NOT_SET && req->hello == NULL) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST, "request body is missing");
        return;
    }
    switch (req->body_case) {
    case KEYSTORE__REQUEST__BODY_HELLO:
        op->name = "Hello";
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST,
                    "Hello was already received on this connection");
        break;
    case KEYSTORE__REQUEST__BODY_GET_KEY:
        op->name = "GetKey";
        ks_op_get_key(op, req->get_key);
        break;
    case KEYSTORE__REQUEST__BODY_LIST_KEYS:
        op->name = "ListKeys";
        ks_op_list_keys(op, req->list_keys);
        break;
    case KEYSTORE__REQUEST__BODY_SIGN:
        op->name = "Sign";
        if (key_op_permitted(op, KS_USAGE_SIGN, KS_ACL_SIGN, req->sign->key, req->sign->version))
            ks_op_sign(op, req->sign);
        break;
    case KEYSTORE__REQUEST__BODY_DECRYPT:
        op->name = "Decrypt";
        if (key_op_permitted(op, KS_USAGE_DECRYPT, KS_ACL_DECRYPT, req->decrypt->key,
                             req->decrypt->version))
            ks_op_decrypt(op, req->decrypt);
        break;
    case KEYSTORE__REQUEST__BODY_DERIVE:
        op->name = "Derive";
        if (key_op_permitted(op, KS_USAGE_DERIVE, KS_ACL_DERIVE, req->derive->key,
                             req->derive->version))
            ks_op_derive(op, req->derive);
        break;
    case KEYSTORE__REQUEST__BODY_GENERATE_KEY:
        op->name = "GenerateKey";
        if (admin_allowed(op, op->cfg->allow_client_generate))
            ks_op_generate(op, req->generate_key);
        break;
    case KEYSTORE__REQUEST__BODY_IMPORT_KEY:
        op->name = "ImportKey";
        if (admin_allowed(op, 0))
            ks_op_import(op, req->import_key);
        break;
    case KEYSTORE__REQUEST__BODY_DELETE_KEY:
        op->name = "DeleteKey";
        if (admin_allowed(op, 0))
            ks_op_delete(op, req->delete_key);
        break;
    case KEYSTORE__REQUEST__BODY_ATTACH_CERT:
        op->name = "AttachCert";
        if (admin_allowed(op, 0))
            ks_op_attach_cert(op, req->attach_cert);
        break;
    case KEYSTORE__REQUEST__BODY_ROTATE:
        op->name = "RotateKey";
        if (admin_allowed(op, 0))
            ks_op_rotate(op, req->rotate);
        break;
    case KEYSTORE__REQUEST__BODY_RETIRE:
        op->name = "RetireKey";
        if (admin_allowed(op, 0))
            ks_op_retire(op, req->retire);
        break;
    case KEYSTORE__REQUEST__BODY_STATUS:
        op->name = "Status";
        if (admin_allowed(op, 0))
            ks_op_status(op, req->status);
        break;
    case KEYSTORE__REQUEST__BODY_RELOAD:
        op->name = "Reload";
        if (admin_allowed(op, 0))
            ks_op_reload(op, req->reload);
        break;
    default:
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST,
                    "the request has no body this server knows (is the client newer than "
                    "the server?)");
        break;
    }
}

/* Wipe secrets that arrived in the request before protobuf-c frees it. */
static void wipe_request(Keystore__Request *req)
{
    if (req->body_case == KEYSTORE__REQUEST__BODY_IMPORT_KEY && req->import_key != NULL &&
        req->import_key->private_key_der.data != NULL)
        sodium_memzero(req->import_key->private_key_der.data, req->import_key->private_key_der.len);
}

/* Replace the body by an error when it cannot be sent as built. */
static void ensure_sendable(struct ks_op *op)
{
    size_t size;

    if (op->arena->failed) {
        ks_log("conn %lu: %s: out of memory building the reply", op->s->id, op->name);
        ks_op_out_of_memory(op);
        return;
    }
    if (op->resp->body_case == KEYSTORE__RESPONSE__BODY__NOT_SET) {
        /* every path sets a body; this is a bug, not a client problem */
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_INTERNAL, "the server produced no reply");
        return;
    }
    size = keystore__response__get_packed_size(op->resp);
    if (size > reply_limit(op))
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_TOO_LARGE,
                    "the reply would be %zu bytes, more than the connection's limit of %zu "
                    "(max_frame; over TCP at most %d, one Noise message)%s", size,
                    reply_limit(op), KS_TCP_MAX_PLAINTEXT,
                    op->s->is_tcp ? "" : "; raise max_frame in the server configuration");
}

/* Counters and latency for keystorectl status / metrics (stats.c). */
static void record(const Keystore__Request *req, const Keystore__Response *resp,
                   long long start_us)
{
    const char *key;
    enum ks_op_kind kind = ks_op_kind_of(req, &key);
    Keystore__ErrorCode result = KEYSTORE__ERROR_CODE__ERROR_NONE;
    long long us = ks_mono_us() - start_us;

    if (resp->body_case == KEYSTORE__RESPONSE__BODY_ERROR && resp->error != NULL)
        result = resp->error->code;
    ks_stats_record(kind, key, result, us > 0 ? (uint64_t)us : 0);
}

enum ks_after ks_handle_frame(const struct ks_config *cfg, struct ks_session *s,
                              const uint8_t *frame, size_t len,
                              struct ks_arena *arena, Keystore__Response *resp)
{
    struct ks_op op = { cfg, s, arena, resp, "request" };
    enum ks_after after = KS_KEEP_OPEN;
    int64_t t0 = ks_audit_clock();
    long long start_us = ks_mono_us();
    ProtobufCAllocator in_arena;
    Keystore__Request *req;

    /* unpacked into the arena: no malloc per field, wiped with the reply */
    ks_arena_protobuf(arena, &in_arena);
    req = keystore__request__unpack(&in_arena, len, frame);
    if (req == NULL) {
        resp->id = 0;
        ks_op_error(&op, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST,
                    "a %zu-byte frame does not decode as a keystore Request: protocol error", len);
        ks_audit_request(s, NULL, resp, t0);
        record(NULL, resp, start_us);
        return KS_CLOSE_AFTER_REPLY;
    }
    resp->id = req->id;
    if (!s->hello_done) {
        if (req->body_case == KEYSTORE__REQUEST__BODY_HELLO && req->hello != NULL) {
            op.name = "Hello";
            after = do_hello(&op, req->hello);
        } else {
            ks_op_error(&op, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST,
                        "first request must be Hello");
            after = KS_CLOSE_AFTER_REPLY;
        }
    } else {
        dispatch(&op, req);
    }
    wipe_request(req);
    ERR_clear_error();   /* nothing from this request leaks into the next */
    ensure_sendable(&op);
    ks_audit_request(s, req, resp, t0);
    record(req, resp, start_us);
    return after;   /* req goes with the arena */
}
