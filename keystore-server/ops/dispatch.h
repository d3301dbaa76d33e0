/* Request handling: one frame in, one Response out.  Transport-agnostic so
 * the same code serves the client and admin sockets. */
#ifndef KS_OPS_H
#define KS_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arena.h"
#include "config.h"
#include "keystore.h"
#include "wire.h"

#define KS_SERVER_VERSION "keystored 0.1.0"

/* What the server knows about the peer of one connection. */
struct ks_session {
    unsigned long id;          /* connection number, for logs */
    int is_admin;              /* accepted on the admin socket */
    uid_t uid;                 /* SO_PEERCRED */
    gid_t gid;
    pid_t pid;
    int hello_done;
    char client_name[64];      /* sanitized Hello.client_name */
    /* Identity for access control, limits and the audit log (acl.h):
     * Unix peers by uid/gids, TCP peers by their authorized-clients name. */
    int is_tcp;
    char tcp_client[65];       /* set once the TCP handshake has succeeded */
    char peer[64];             /* TCP: "ADDR:PORT"; Unix: "" */
    gid_t groups[32];          /* SO_PEERGROUPS (supplementary groups) */
    int ngroups;
    char limit_id[80];         /* counted in max_connections_per_client; "" = not */
};

enum ks_after {
    KS_KEEP_OPEN = 0,
    KS_CLOSE_AFTER_REPLY,      /* protocol violation: send the reply, then close */
};

/* Handle one frame.  resp must be KEYSTORE__RESPONSE__INIT; everything it
 * points to is allocated in arena (free it after packing).  The reply is
 * guaranteed to fit in cfg->max_frame. */
enum ks_after ks_handle_frame(const struct ks_config *cfg, struct ks_session *s,
                              const uint8_t *frame, size_t len,
                              struct ks_arena *arena, Keystore__Response *resp);

/* ---- shared by the ops_*.c files ---- */

struct ks_op {
    const struct ks_config *cfg;
    struct ks_session *s;
    struct ks_arena *arena;
    Keystore__Response *resp;
    const char *name;          /* operation name for logs, e.g. "Sign" */
};

/* Set an Error body (and log it). */
void ks_op_error(struct ks_op *op, Keystore__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Look up a key, or reply ERROR_NO_SUCH_KEY / ERROR_BAD_REQUEST and return NULL. */
struct ks_key *ks_op_key(struct ks_op *op, const char *name);

/* KeyInfo for k allocated in the arena (NULL on allocation failure). */
Keystore__KeyInfo *ks_op_keyinfo(struct ks_op *op, const struct ks_key *k);
void ks_op_reply_key(struct ks_op *op, const struct ks_key *k);

/* Fetch a digest by name, or reply ERROR_BAD_PARAMETER and return NULL.
 * what is e.g. "digest" or "OAEP digest" for the message. */
EVP_MD *ks_op_fetch_md(struct ks_op *op, const char *name, const char *what);

/* "PADDING_OAEP" etc., for messages. */
const char *ks_padding_name(Keystore__Padding p);

void ks_op_get_key(struct ks_op *op, const Keystore__GetKeyRequest *r);
void ks_op_list_keys(struct ks_op *op, const Keystore__ListKeysRequest *r);
void ks_op_sign(struct ks_op *op, const Keystore__SignRequest *r);
void ks_op_decrypt(struct ks_op *op, const Keystore__DecryptRequest *r);
void ks_op_generate(struct ks_op *op, const Keystore__GenerateKeyRequest *r);
void ks_op_import(struct ks_op *op, const Keystore__ImportKeyRequest *r);
void ks_op_delete(struct ks_op *op, const Keystore__DeleteKeyRequest *r);
void ks_op_attach_cert(struct ks_op *op, const Keystore__AttachCertRequest *r);

#endif
