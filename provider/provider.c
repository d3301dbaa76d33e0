/* Provider entry point: configuration, algorithm tables, teardown. */
#include "provider.h"
#include "client.h"
#include "errors.h"
#include "servers.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define KS_PROPS "provider=keystore"

/* Names shared by keymgmts and the key-reference encoders/decoders, which
 * libcrypto matches by key type name. */
#define KS_N_RSA "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define KS_N_RSAPSS "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10"
#define KS_N_EC "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define KS_N_ED25519 "ED25519:1.3.101.112"
#define KS_N_ED448 "ED448:1.3.101.113"
#define KS_N_X25519 "X25519:1.3.101.110"
#define KS_N_X448 "X448:1.3.101.111"

static const OSSL_ALGORITHM keymgmt_algs[] = {
    { KS_N_RSA, KS_PROPS, ks_rsa_keymgmt_functions, "keystore RSA key" },
    { KS_N_RSAPSS, KS_PROPS, ks_rsapss_keymgmt_functions, "keystore RSA-PSS key" },
    { KS_N_EC, KS_PROPS, ks_ec_keymgmt_functions, "keystore EC key" },
    { KS_N_ED25519, KS_PROPS, ks_ed25519_keymgmt_functions, "keystore Ed25519 key" },
    { KS_N_ED448, KS_PROPS, ks_ed448_keymgmt_functions, "keystore Ed448 key" },
    { KS_N_X25519, KS_PROPS, ks_x25519_keymgmt_functions, "keystore X25519 key" },
    { KS_N_X448, KS_PROPS, ks_x448_keymgmt_functions, "keystore X448 key" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM signature_algs[] = {
    { "RSA:rsaEncryption:1.2.840.113549.1.1.1", KS_PROPS, ks_rsa_signature_functions,
      "RSA signatures in the keystore server" },
    { "ECDSA", KS_PROPS, ks_ecdsa_signature_functions, "ECDSA in the keystore server" },
    { "ED25519:1.3.101.112", KS_PROPS, ks_ed25519_signature_functions,
      "Ed25519 in the keystore server" },
    { "ED448:1.3.101.113", KS_PROPS, ks_ed448_signature_functions,
      "Ed448 in the keystore server" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM keyexch_algs[] = {
    { "ECDH", KS_PROPS, ks_ecdh_keyexch_functions, "ECDH in the keystore server" },
    { KS_N_X25519, KS_PROPS, ks_x25519_keyexch_functions, "X25519 in the keystore server" },
    { KS_N_X448, KS_PROPS, ks_x448_keyexch_functions, "X448 in the keystore server" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM asym_cipher_algs[] = {
    { "RSA:rsaEncryption:1.2.840.113549.1.1.1", KS_PROPS, ks_rsa_asym_cipher_functions,
      "RSA decryption in the keystore server" },
    { NULL, NULL, NULL, NULL }
};

#define KS_ENC(names, props, fns) { names, KS_PROPS "," props, fns, "keystore key reference" }
#define KS_ENC_ALL(props, fns) \
    KS_ENC(KS_N_RSA, props, fns), KS_ENC(KS_N_RSAPSS, props, fns), KS_ENC(KS_N_EC, props, fns), \
    KS_ENC(KS_N_ED25519, props, fns), KS_ENC(KS_N_ED448, props, fns), \
    KS_ENC(KS_N_X25519, props, fns), KS_ENC(KS_N_X448, props, fns)

/* PEM: what PEM_write_bio_PrivateKey asks for.  DER: i2d_PrivateKey tries
 * "type-specific" first; not "PrivateKeyInfo", which PKCS#8 and PKCS#12
 * code would parse as a real PKCS#8 structure. */
static const OSSL_ALGORITHM encoder_algs[] = {
    KS_ENC_ALL("output=pem,structure=PrivateKeyInfo", ks_ref_pem_encoder_functions),
    KS_ENC_ALL("output=der,structure=type-specific", ks_ref_der_encoder_functions),
    KS_ENC_ALL("output=text", ks_ref_text_encoder_functions),
    { NULL, NULL, NULL, NULL }
};

#define KS_DEC(names) \
    { names, KS_PROPS ",input=der,structure=KeystoreKeyReference", ks_ref_der_decoder_functions, \
      "keystore key reference" }

static const OSSL_ALGORITHM decoder_algs[] = {
    /* Named "DER" like OpenSSL's pem2der, so PEM input reaches it. */
    { "DER", KS_PROPS ",input=pem", ks_ref_pem_decoder_functions, "keystore key reference PEM" },
    KS_DEC(KS_N_RSA), KS_DEC(KS_N_RSAPSS), KS_DEC(KS_N_EC), KS_DEC(KS_N_ED25519),
    KS_DEC(KS_N_ED448), KS_DEC(KS_N_X25519), KS_DEC(KS_N_X448),
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM store_algs[] = {
    { "keystore", KS_PROPS, ks_store_functions, "keystore:NAME key URIs" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *ks_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT: return keymgmt_algs;
    case OSSL_OP_SIGNATURE: return signature_algs;
    case OSSL_OP_ASYM_CIPHER: return asym_cipher_algs;
    case OSSL_OP_KEYEXCH: return keyexch_algs;
    case OSSL_OP_STORE: return store_algs;
    case OSSL_OP_ENCODER: return encoder_algs;
    case OSSL_OP_DECODER: return decoder_algs;
    default: return NULL;
    }
}

static const OSSL_PARAM *ks_gettable_params(void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
        OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
        OSSL_PARAM_END
    };

    (void)provctx;
    return params;
}

static int ks_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    (void)provctx;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, "keystore"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, KEYSTORE_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL
        && !OSSL_PARAM_set_utf8_ptr(p, "keystore " KEYSTORE_VERSION " built against " OPENSSL_VERSION_TEXT))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL
        && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

/* With keystore activated before default (its -provider given first, or
 * listed first in openssl.cnf, against the docs) our keymgmts come first in
 * the default context's list, so fetches without a property query ("EC" for
 * an ephemeral ECDHE key, libssl's TLS group check) would get our
 * public-only keymgmt.  The provider list is a name-sorted stack that is
 * only re-sorted by a lookup; looking ourselves up puts "default" (and
 * "base", "fips") before "keystore" for every operation fetched from then
 * on, which is what opening a key (URI or reference file) precedes.  Nothing
 * else changes.  An SSL_CTX made before any key is opened is caught by
 * ks_get_capabilities. */
void ks_prefer_other_providers(void)
{
    (void)OSSL_PROVIDER_available(NULL, "keystore");
}

/* Whether a fetch of key management NAME without a property query, in the
 * default library context, returns ours (the keystore instance PC). */
static int our_keymgmt_wins(KS_PROVCTX *pc, const char *name)
{
    EVP_KEYMGMT *km;
    int ours;

    ERR_set_mark();
    km = EVP_KEYMGMT_fetch(NULL, name, NULL);
    ours = km != NULL && OSSL_PROVIDER_get0_provider_ctx(EVP_KEYMGMT_get0_provider(km)) == pc;
    EVP_KEYMGMT_free(km);
    ERR_pop_to_mark();
    return ours;
}

/* libssl asks each provider for its "TLS-GROUP" capability when it makes an
 * SSL_CTX, and keeps a group only if fetching the group's key management
 * without a property query returns the provider that named it.  When that
 * fetch returns our public-only keymgmt (keystore activated before default,
 * and no keystore key opened since, which re-orders them), X25519, X448 and
 * every EC group would go without a word, leaving FFDHE alone: fail the
 * SSL_CTX with the remedy instead.  Checked in the default library context,
 * where openssl.cnf and -provider load us; we name no groups ourselves. */
static int ks_get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb,
                               void *arg)
{
    static const char *const shadowed[] = { "X25519", "EC", "X448" };
    KS_PROVCTX *pc = provctx;
    size_t i;

    (void)cb;
    (void)arg;
    if (strcmp(capability, "TLS-GROUP") != 0)
        return 1;
    for (i = 0; i < sizeof(shadowed) / sizeof(shadowed[0]); i++) {
        if (our_keymgmt_wins(pc, shadowed[i])) {
            KS_RAISE(pc, KS_R_PROVIDER_ORDER,
                     "TLS would offer no X25519, X448 or EC groups, only FFDHE: the keystore "
                     "provider's %s key management comes before the default provider's; activate "
                     "default first (-provider default -provider keystore, or default listed "
                     "before keystore in openssl.cnf's provider section)", shadowed[i]);
            return 0;
        }
    }
    return 1;
}

static const OSSL_ITEM *ks_get_reason_strings(void *provctx)
{
    (void)provctx;
    return ks_reason_strings();
}

static void ks_teardown(void *provctx)
{
    KS_PROVCTX *pc = provctx;

    if (pc == NULL)
        return;
    ks_client_cleanup(pc);
    ks_servers_free(pc);
    OSSL_LIB_CTX_free(pc->libctx);
    free(pc);
}

static const OSSL_DISPATCH provider_functions[] = {
    { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))ks_teardown },
    { OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))ks_gettable_params },
    { OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))ks_get_params },
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))ks_query },
    { OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))ks_get_reason_strings },
    { OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))ks_get_capabilities },
    { 0, NULL }
};

/* Copy one setting: the environment variable wins over openssl.cnf. */
static int set_param(KS_PROVCTX *pc, char *dst, size_t dstlen, const char *cfg,
                     const char *envname, const char *dflt, const char *what)
{
    const char *v = dflt, *env = secure_getenv(envname);

    if (cfg != NULL && cfg[0] != '\0')
        v = cfg;
    if (env != NULL && env[0] != '\0')
        v = env;
    if (strlen(v) >= dstlen) {
        KS_RAISE(pc, KS_R_INVALID_PARAMETER, "keystore %s is longer than %zu bytes", what,
                 dstlen - 1);
        return 0;
    }
    strcpy(dst, v);
    return 1;
}

/* I/O timeout: "timeout" (KEYSTORE_TIMEOUT), whole seconds 1..KS_MAX_TIMEOUT_S,
 * default KS_IO_TIMEOUT_MS.  A malformed value is an error, not a default. */
#define KS_MAX_TIMEOUT_S 3600
static int set_timeout(KS_PROVCTX *pc, const char *cfg)
{
    const char *v = cfg, *from = "the 'timeout' setting of the keystore provider section";
    const char *env = secure_getenv("KEYSTORE_TIMEOUT"), *s;
    long t = 0;

    if (env != NULL && env[0] != '\0') {
        v = env;
        from = "KEYSTORE_TIMEOUT";
    }
    pc->timeout_ms = KS_IO_TIMEOUT_MS;
    if (v == NULL || v[0] == '\0')
        return 1;
    for (s = v; *s >= '0' && *s <= '9' && t <= KS_MAX_TIMEOUT_S; s++)
        t = t * 10 + (*s - '0');
    if (*s != '\0' || t < 1 || t > KS_MAX_TIMEOUT_S) {
        KS_RAISE(pc, KS_R_INVALID_PARAMETER, "%s is '%.40s': expected whole seconds from 1 to %d",
                 from, v, KS_MAX_TIMEOUT_S);
        return 0;
    }
    pc->timeout_ms = (int)t * 1000;
    return 1;
}

/* The shared-memory fast path to a local server: "shm" (KEYSTORE_SHM, which
 * wins), yes/no, 1/0, on/off; default yes.  A malformed value is an error. */
static int set_shm(KS_PROVCTX *pc, const char *cfg)
{
    const char *v = cfg, *from = "the 'shm' setting of the keystore provider section";
    const char *env = secure_getenv("KEYSTORE_SHM");

    if (env != NULL && env[0] != '\0') {
        v = env;
        from = "KEYSTORE_SHM";
    }
    pc->shm = 1;
    if (v == NULL || v[0] == '\0' || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0
        || strcmp(v, "on") == 0)
        return 1;
    if (strcmp(v, "no") == 0 || strcmp(v, "0") == 0 || strcmp(v, "off") == 0) {
        pc->shm = 0;
        return 1;
    }
    KS_RAISE(pc, KS_R_INVALID_PARAMETER, "%s is '%.40s': expected yes or no", from, v);
    return 0;
}

/* "server" (KEYSTORE_SERVER: one address or several, servers.h), "timeout"
 * (KEYSTORE_TIMEOUT), "shm" (KEYSTORE_SHM), and for tcp:
 * servers "server_public_key" (KEYSTORE_SERVER_PUBKEY) and "client_key"
 * (KEYSTORE_CLIENT_KEY). */
static int configure_server(KS_PROVCTX *pc, OSSL_FUNC_core_get_params_fn *get_params)
{
    const char *server = NULL, *pubkey = NULL, *ckey = NULL, *timeout = NULL, *shm = NULL;
    OSSL_PARAM params[6];

    if (get_params != NULL) {
        params[0] = OSSL_PARAM_construct_utf8_ptr("server", (char **)&server, 0);
        params[1] = OSSL_PARAM_construct_utf8_ptr("server_public_key", (char **)&pubkey, 0);
        params[2] = OSSL_PARAM_construct_utf8_ptr("client_key", (char **)&ckey, 0);
        params[3] = OSSL_PARAM_construct_utf8_ptr("timeout", (char **)&timeout, 0);
        params[4] = OSSL_PARAM_construct_utf8_ptr("shm", (char **)&shm, 0);
        params[5] = OSSL_PARAM_construct_end();
        if (!get_params(pc->handle, params)) {
            KS_RAISE(pc, KS_R_INTERNAL, "cannot read the keystore provider configuration");
            return 0;
        }
    }
    return set_param(pc, pc->server, sizeof(pc->server), server, "KEYSTORE_SERVER",
                     KS_DEFAULT_SOCKET, "server address")
        && set_param(pc, pc->server_pubkey, sizeof(pc->server_pubkey), pubkey,
                     "KEYSTORE_SERVER_PUBKEY", "", "server public key")
        && set_param(pc, pc->client_key, sizeof(pc->client_key), ckey,
                     "KEYSTORE_CLIENT_KEY", "", "client key path")
        && set_timeout(pc, timeout)
        && set_shm(pc, shm)
        && ks_servers_configure(pc, pc->server, pc->server_pubkey);
}

__attribute__((visibility("default")))
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    OSSL_FUNC_core_get_params_fn *get_params = NULL;
    const OSSL_DISPATCH *f;
    KS_PROVCTX *pc;

    if ((pc = calloc(1, sizeof(*pc))) == NULL)
        return 0;
    pc->handle = handle;
    for (f = in; f->function_id != 0; f++) {
        switch (f->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            get_params = OSSL_FUNC_core_get_params(f);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            pc->core_new_error = OSSL_FUNC_core_new_error(f);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            pc->core_set_error_debug = OSSL_FUNC_core_set_error_debug(f);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            pc->core_vset_error = OSSL_FUNC_core_vset_error(f);
            break;
        default:
            break;
        }
    }
    if (!configure_server(pc, get_params))
        goto err;
    /* the TCP channel uses libsodium; sodium_init is idempotent and thread-safe */
    if (sodium_init() < 0) {
        KS_RAISE(pc, KS_R_INTERNAL, "libsodium failed to initialize");
        goto err;
    }
    /* Public keys, digests and verification come from the application's
     * other providers (normally default) through a child library context. */
    if ((pc->libctx = OSSL_LIB_CTX_new_child(handle, in)) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "cannot create the keystore provider's child library context");
        goto err;
    }
    if (!ks_client_init(pc))
        goto err;
    *out = provider_functions;
    *provctx = pc;
    return 1;
err:
    ks_servers_free(pc);
    OSSL_LIB_CTX_free(pc->libctx);
    free(pc);
    return 0;
}
