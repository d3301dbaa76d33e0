/* The provider's side of the keystore connection: one connection per thread
 * and per process, opened lazily, retried once after a transport failure. */
#ifndef KEYSTORE_CLIENT_H
#define KEYSTORE_CLIENT_H

#include "provider.h"

int ks_client_init(KS_PROVCTX *pc);
void ks_client_cleanup(KS_PROVCTX *pc);

/* Send req (its id is assigned here) and wait for a reply whose body is
 * `expect`.  op ("sign", "decrypt", ...) and key name only shape messages.
 * Returns 1 with *resp (free with ks_client_free_response) or 0 with an
 * error raised; *server_code, if not NULL, receives the server's error code
 * (ERROR_NONE for transport failures). */
int ks_client_call(KS_PROVCTX *pc, Keystore__Request *req,
                   Keystore__Response__BodyCase expect, const char *op,
                   const char *keyname, Keystore__Response **resp,
                   Keystore__ErrorCode *server_code);

/* The same for an operation with key k: on a server other than the one k
 * was loaded from, the server's public key for k's name is checked first
 * (and the request goes elsewhere if it differs). */
struct ks_key_st;
int ks_client_call_key(KS_PROVCTX *pc, struct ks_key_st *k, Keystore__Request *req,
                       Keystore__Response__BodyCase expect, const char *op,
                       Keystore__Response **resp, Keystore__ErrorCode *server_code);

/* Index (servers.h) of the server this thread's last answer came from, -1 none. */
int ks_client_server(KS_PROVCTX *pc);

/* Wipes replies that may carry secrets (plaintext, shared secrets) before freeing. */
void ks_client_free_response(Keystore__Response *resp);

/* The frame limit the server announced, connecting first if needed;
 * 0 with an error raised if the server cannot be reached. */
size_t ks_client_max_frame(KS_PROVCTX *pc);

#endif
