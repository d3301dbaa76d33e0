/* The provider context shared by every algorithm implementation. */
#ifndef KEYSTORE_PROVIDER_H
#define KEYSTORE_PROVIDER_H

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <pthread.h>

#include "wire.h"

/* Everything we fetch from the child library context must come from another
 * provider: our own algorithms are mirrored there too and would recurse. */
#define KS_CHILD_PROPQ "provider!=keystore"

#define KS_ADDR_MAX 256
/* `server` may list several addresses (servers.h) */
#define KS_SERVER_LIST_MAX 4096
#define KS_MAX_SERVERS 16

struct ks_conn;
struct ks_servers;

typedef struct ks_provctx_st {
    const OSSL_CORE_HANDLE *handle;
    OSSL_LIB_CTX *libctx;           /* child of the application's context */
    char server[KS_SERVER_LIST_MAX]; /* "unix:/path", "tcp:HOST:PORT", or a list */
    struct ks_servers *servers;     /* the list parsed, and its backoff state */
    /* TCP only: pinned server key (base64/hex) and this client's key file */
    char server_pubkey[KS_ADDR_MAX];
    char client_key[KS_ADDR_MAX];
    int timeout_ms;                 /* per send/receive on the server connection */
    int shm;                        /* offer the shared-memory rings to a unix: server */

    OSSL_FUNC_core_new_error_fn *core_new_error;
    OSSL_FUNC_core_set_error_debug_fn *core_set_error_debug;
    OSSL_FUNC_core_vset_error_fn *core_vset_error;

    /* Connections: one per thread (and per process after fork), all kept
     * on a list so teardown can close them. */
    pthread_key_t conn_key;
    int conn_key_set;
    pthread_mutex_t conn_lock;
    struct ks_conn *conns;
} KS_PROVCTX;

/* Put the other providers first in the default context for later fetches
 * (ephemeral ECDHE keys must not be generated in the server). */
void ks_prefer_other_providers(void);

/* Reads an RSA "pad-mode" parameter given as a number or a name into *pad
 * (-1 for an unknown name).  Returns 0 only if the parameter is malformed. */
int ks_rsa_pad_from_param(const OSSL_PARAM *p, int *pad);

extern const OSSL_DISPATCH ks_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH ks_rsapss_keymgmt_functions[];
extern const OSSL_DISPATCH ks_ec_keymgmt_functions[];
extern const OSSL_DISPATCH ks_ed25519_keymgmt_functions[];
extern const OSSL_DISPATCH ks_ed448_keymgmt_functions[];
extern const OSSL_DISPATCH ks_x25519_keymgmt_functions[];
extern const OSSL_DISPATCH ks_x448_keymgmt_functions[];
extern const OSSL_DISPATCH ks_ecdh_keyexch_functions[];
extern const OSSL_DISPATCH ks_x25519_keyexch_functions[];
extern const OSSL_DISPATCH ks_x448_keyexch_functions[];
extern const OSSL_DISPATCH ks_rsa_signature_functions[];
extern const OSSL_DISPATCH ks_ecdsa_signature_functions[];
extern const OSSL_DISPATCH ks_ed25519_signature_functions[];
extern const OSSL_DISPATCH ks_ed448_signature_functions[];
extern const OSSL_DISPATCH ks_rsa_asym_cipher_functions[];
extern const OSSL_DISPATCH ks_store_functions[];
extern const OSSL_DISPATCH ks_ref_pem_encoder_functions[];
extern const OSSL_DISPATCH ks_ref_der_encoder_functions[];
extern const OSSL_DISPATCH ks_ref_text_encoder_functions[];
extern const OSSL_DISPATCH ks_ref_pem_decoder_functions[];
extern const OSSL_DISPATCH ks_ref_der_decoder_functions[];

#endif
