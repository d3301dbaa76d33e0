/* The context of one request and the helpers every operation handler uses
 * to reply: below both dispatch.c and the handlers, so a request's path
 * only ever goes down (dispatch -> handler -> op helpers -> store). */
#ifndef KS_OP_H
#define KS_OP_H

#include <openssl/evp.h>

#include "common/arena.h"
#include "common/config.h"
#include "session.h"
#include "store/keytable.h"
#include "wire.h"

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

/* The same, but a key the caller may not see (visible 0) gets exactly the
 * reply of a key that does not exist. */
struct ks_key *ks_op_key_if(struct ks_op *op, const char *name, int visible);

/* Version `version` (0: current) of a key the caller may see, or reply
 * ERROR_NO_SUCH_KEY (also for a version that never existed) or
 * ERROR_KEY_RETIRED ("... reload the application to use version N") and
 * return NULL.  A key the caller may not see (visible 0) answers like a
 * missing one. */
struct ks_key *ks_op_key_version(struct ks_op *op, const char *name, uint32_t version,
                                 int visible);

/* KeyInfo for k allocated in the arena (NULL on allocation failure); its
 * versions list is that of k's current entry `head` (k itself if current). */
Keystore__KeyInfo *ks_op_keyinfo(struct ks_op *op, const struct ks_key *k);
Keystore__KeyInfo *ks_op_keyinfo_of(struct ks_op *op, const struct ks_key *k,
                                    const struct ks_key *head);
void ks_op_reply_key(struct ks_op *op, const struct ks_key *k);
void ks_op_reply_key_of(struct ks_op *op, const struct ks_key *k, const struct ks_key *head);

/* Fetch a digest by name, or reply ERROR_BAD_PARAMETER and return NULL.
 * what is e.g. "digest" or "OAEP digest" for the message. */
EVP_MD *ks_op_fetch_md(struct ks_op *op, const char *name, const char *what);

/* "PADDING_OAEP" etc., for messages. */
const char *ks_padding_name(Keystore__Padding p);

/* Replace the reply by the preallocated "out of memory" error. */
void ks_op_out_of_memory(struct ks_op *op);

#endif
