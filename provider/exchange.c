/* Key agreement (keyexch): ECDH with EC keys, X25519 and X448.  The raw
 * shared secret is computed in the server (Derive), which also validates
 * the peer's public key; an optional X9.63 KDF over it (ECDH's "kdf-type",
 * what CMS asks for) runs here in the other provider, as the secret is the
 * caller's output anyway. */
#include "key.h"
#include "client.h"
#include "errors.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KS_MD_NAME_MAX 64
#define KS_UKM_MAX 4096
#define KS_KDF_OUT_MAX (1u << 16)
#define KS_SECRET_MAX 132   /* P-521: 66 bytes; X448: 56 */

typedef struct {
    KS_PROVCTX *pc;
    int type;                      /* KS_KEY_EC, KS_KEY_X25519, KS_KEY_X448 */
    KS_KEY *key;                   /* ours: the server holds its private half */
    KS_KEY *peer;                  /* public only */
    int cofactor_mode;             /* -1 = the key's default (plain ECDH) */
    int kdf_x963;
    char kdf_md[KS_MD_NAME_MAX];
    size_t kdf_outlen;
    unsigned char *ukm;
    size_t ukmlen;
} KS_EXCH_CTX;

static void *exch_newctx(KS_PROVCTX *pc, int type)
{
    KS_EXCH_CTX *ctx = calloc(1, sizeof(*ctx));

    if (ctx == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "out of memory for a key exchange context");
        return NULL;
    }
    ctx->pc = pc;
    ctx->type = type;
    ctx->cofactor_mode = -1;
    return ctx;
}

static void exch_freectx(void *vctx)
{
    KS_EXCH_CTX *ctx = vctx;

    if (ctx == NULL)
        return;
    ks_key_free(ctx->key);
    ks_key_free(ctx->peer);
    OPENSSL_free(ctx->ukm);
    free(ctx);
}

static void *exch_dupctx(void *vctx)
{
    KS_EXCH_CTX *src = vctx, *dst;

    if (src == NULL || (dst = malloc(sizeof(*dst))) == NULL)
        return NULL;
    *dst = *src;
    dst->ukm = NULL;
    if (src->ukmlen > 0 && (dst->ukm = OPENSSL_memdup(src->ukm, src->ukmlen)) == NULL) {
        KS_RAISE(src->pc, KS_R_INTERNAL, "out of memory for a key exchange context");
        free(dst);
        return NULL;
    }
    if (dst->key != NULL)
        ks_key_up_ref(dst->key);
    if (dst->peer != NULL)
        ks_key_up_ref(dst->peer);
    return dst;
}

static int exch_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    KS_EXCH_CTX *ctx = vctx;
    const OSSL_PARAM *p;
    const char *s;

    if (ctx == NULL)
        return 0;
    if (params == NULL || ctx->type != KS_KEY_EC)
        return 1;   /* X25519/X448 have no parameters */
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE)) != NULL) {
        int mode;

        if (!OSSL_PARAM_get_int(p, &mode) || mode < -1 || mode > 1) {
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "ecdh-cofactor-mode must be -1, 0 or 1");
            return 0;
        }
        /* every curve the server accepts has cofactor 1, where both modes agree */
        ctx->cofactor_mode = mode;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_TYPE)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL)
            return 0;
        if (s[0] == '\0')
            ctx->kdf_x963 = 0;
        else if (strcasecmp(s, OSSL_KDF_NAME_X963KDF) == 0)
            ctx->kdf_x963 = 1;
        else {
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER,
                     "unsupported ECDH KDF '%.40s' (use X963KDF or none)", s);
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL || strlen(s) >= KS_MD_NAME_MAX) {
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "ECDH KDF digest name missing or too long");
            return 0;
        }
        strcpy(ctx->kdf_md, s);
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_OUTLEN)) != NULL) {
        size_t n;

        if (!OSSL_PARAM_get_size_t(p, &n) || n > KS_KDF_OUT_MAX) {
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "ECDH KDF output length above %u bytes",
                     KS_KDF_OUT_MAX);
            return 0;
        }
        ctx->kdf_outlen = n;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_UKM)) != NULL) {
        void *buf = NULL;
        size_t len = 0;

        if (!OSSL_PARAM_get_octet_string(p, &buf, KS_UKM_MAX, &len)) {
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "ECDH KDF ukm longer than %d bytes",
                     KS_UKM_MAX);
            return 0;
        }
        OPENSSL_free(ctx->ukm);
        ctx->ukm = buf;
        ctx->ukmlen = len;
    }
    return 1;
}

static int exch_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    KS_EXCH_CTX *ctx = vctx;
    KS_KEY *key = provkey;

    if (ctx == NULL || key == NULL)
        return 0;
    if (key->type != ctx->type || key->pub == NULL) {
        KS_RAISE(ctx->pc, KS_R_WRONG_KEY_TYPE, "a %s key cannot be used for %s key agreement",
                 ks_key_type_name_of(key->type), ks_key_type_name_of(ctx->type));
        return 0;
    }
    if (!ks_key_has_private(key)) {
        KS_RAISE(ctx->pc, KS_R_PUBLIC_ONLY,
                 "this %s key is only a public key; derive with a key loaded from keystore:NAME",
                 ks_key_type_name_of(key->type));
        return 0;
    }
    ks_key_up_ref(key);
    ks_key_free(ctx->key);
    ctx->key = key;
    ctx->cofactor_mode = -1;
    ctx->kdf_x963 = 0;
    ctx->kdf_md[0] = '\0';
    ctx->kdf_outlen = 0;
    OPENSSL_free(ctx->ukm);
    ctx->ukm = NULL;
    ctx->ukmlen = 0;
    return exch_set_ctx_params(ctx, params);
}

static int exch_set_peer(void *vctx, void *provkey)
{
    KS_EXCH_CTX *ctx = vctx;
    KS_KEY *peer = provkey;

    if (ctx == NULL || peer == NULL)
        return 0;
    if (peer->type != ctx->type || peer->pub == NULL) {
        KS_RAISE(ctx->pc, KS_R_WRONG_KEY_TYPE, "the peer key is %s, not a %s public key",
                 ks_key_type_name_of(peer->type), ks_key_type_name_of(ctx->type));
        return 0;
    }
    ks_key_up_ref(peer);
    ks_key_free(ctx->peer);
    ctx->peer = peer;
    return 1;
}

/* Size of the raw secret: the field size for ECDH (all supported curves
 * have order and field of the same bit length), 32 / 56 for X25519 / X448. */
static size_t raw_size(const KS_EXCH_CTX *ctx)
{
    switch (ctx->type) {
    case KS_KEY_X25519: return 32;
    case KS_KEY_X448: return 56;
    default: return ((size_t)ctx->key->bits + 7) / 8;
    }
}

/* Ask the server for the raw secret; returns the reply (wiped on free). */
static Keystore__Response *server_derive(KS_EXCH_CTX *ctx)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__DeriveRequest dr = KEYSTORE__DERIVE_REQUEST__INIT;
    Keystore__Response *resp = NULL;
    unsigned char *spki = NULL;
    int len = i2d_PUBKEY(ctx->peer->pub, &spki);

    if (len <= 0) {
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "cannot encode the peer's %s public key",
                 ks_key_type_name_of(ctx->type));
        return NULL;
    }
    dr.key = ctx->key->name;
    dr.version = ctx->key->version;
    dr.peer_public_key_der.data = spki;
    dr.peer_public_key_der.len = (size_t)len;
    req.body_case = KEYSTORE__REQUEST__BODY_DERIVE;
    req.derive = &dr;
    if (!ks_client_call_key(ctx->pc, ctx->key, &req, KEYSTORE__RESPONSE__BODY_DERIVE, "derive",
                            &resp, NULL))
        resp = NULL;
    OPENSSL_free(spki);
    if (resp != NULL && (resp->derive == NULL || resp->derive->secret.len != raw_size(ctx))) {
        KS_RAISE(ctx->pc, KS_R_PROTOCOL, "keystore server returned a malformed shared secret for '%s'",
                 ctx->key->name);
        ks_client_free_response(resp);
        resp = NULL;
    }
    return resp;
}

static int x963(KS_EXCH_CTX *ctx, const ProtobufCBinaryData *z, unsigned char *out)
{
    EVP_KDF *kdf = EVP_KDF_fetch(ctx->pc->libctx, OSSL_KDF_NAME_X963KDF, KS_CHILD_PROPQ);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[4], *p = params;
    int ok;

    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, ctx->kdf_md, 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z->data, z->len);
    if (ctx->ukmlen > 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ctx->ukm, ctx->ukmlen);
    *p = OSSL_PARAM_construct_end();
    ok = kctx != NULL && EVP_KDF_derive(kctx, out, ctx->kdf_outlen, params) == 1;
    if (!ok)
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "X9.63 KDF with digest '%s' failed (is the default "
                 "provider loaded?)", ctx->kdf_md);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return ok;
}

static int exch_derive(void *vctx, unsigned char *secret, size_t *secretlen, size_t outlen)
{
    KS_EXCH_CTX *ctx = vctx;
    Keystore__Response *resp;
    const ProtobufCBinaryData *z;
    size_t n;
    int ok = 0;

    if (ctx == NULL || ctx->key == NULL || ctx->peer == NULL) {
        if (ctx != NULL)
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "key agreement needs a key and a peer key");
        return 0;
    }
    if (ctx->kdf_x963 && (ctx->kdf_md[0] == '\0' || ctx->kdf_outlen == 0)) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "the X9.63 KDF needs a digest and an output length");
        return 0;
    }
    n = ctx->kdf_x963 ? ctx->kdf_outlen : raw_size(ctx);
    if (secret == NULL) {
        *secretlen = n;
        return 1;
    }
    /* as OpenSSL's ECDH, a shorter buffer gets the leading bytes of the raw secret */
    if (outlen < n && (ctx->kdf_x963 || ctx->type != KS_KEY_EC)) {
        KS_RAISE(ctx->pc, KS_R_BUFFER_TOO_SMALL, "shared secret buffer of %zu bytes, %zu needed",
                 outlen, n);
        return 0;
    }
    if ((resp = server_derive(ctx)) == NULL)
        return 0;
    z = &resp->derive->secret;
    if (ctx->kdf_x963) {
        ok = x963(ctx, z, secret);
    } else {
        n = outlen < z->len ? outlen : z->len;
        memcpy(secret, z->data, n);
        ok = 1;
    }
    if (ok)
        *secretlen = n;
    ks_client_free_response(resp);
    return ok;
}

static int exch_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    KS_EXCH_CTX *ctx = vctx;
    OSSL_PARAM *p;

    if (ctx == NULL)
        return 0;
    if (ctx->type != KS_KEY_EC)
        return 1;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE)) != NULL
        && !OSSL_PARAM_set_int(p, ctx->cofactor_mode < 0 ? 0 : ctx->cofactor_mode))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_TYPE)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, ctx->kdf_x963 ? OSSL_KDF_NAME_X963KDF : ""))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_DIGEST)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, ctx->kdf_md))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_OUTLEN)) != NULL
        && !OSSL_PARAM_set_size_t(p, ctx->kdf_outlen))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_UKM)) != NULL
        && !OSSL_PARAM_set_octet_ptr(p, ctx->ukm, ctx->ukmlen))
        return 0;
    return 1;
}

static const OSSL_PARAM ecdh_settable[] = {
    OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_EXCHANGE_PARAM_KDF_OUTLEN, NULL),
    OSSL_PARAM_octet_string(OSSL_EXCHANGE_PARAM_KDF_UKM, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ecdh_gettable[] = {
    OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_EXCHANGE_PARAM_KDF_OUTLEN, NULL),
    OSSL_PARAM_octet_ptr(OSSL_EXCHANGE_PARAM_KDF_UKM, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ecx_params[] = { OSSL_PARAM_END };

static const OSSL_PARAM *ecdh_settable_fn(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return ecdh_settable;
}

static const OSSL_PARAM *ecdh_gettable_fn(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return ecdh_gettable;
}

static const OSSL_PARAM *ecx_params_fn(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return ecx_params;
}

#define KS_KEYEXCH(lc, TYPE, settable, gettable)                                         \
    static void *lc##_newctx(void *provctx) { return exch_newctx(provctx, TYPE); }       \
    const OSSL_DISPATCH ks_##lc##_keyexch_functions[] = {                                 \
        { OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))lc##_newctx },                        \
        { OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))exch_init },                            \
        { OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))exch_set_peer },                    \
        { OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))exch_derive },                        \
        { OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))exch_freectx },                      \
        { OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))exch_dupctx },                        \
        { OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))exch_set_ctx_params },        \
        { OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS, (void (*)(void))settable },              \
        { OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS, (void (*)(void))exch_get_ctx_params },        \
        { OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS, (void (*)(void))gettable },              \
        { 0, NULL }                                                                       \
    };

KS_KEYEXCH(ecdh, KS_KEY_EC, ecdh_settable_fn, ecdh_gettable_fn)
KS_KEYEXCH(x25519, KS_KEY_X25519, ecx_params_fn, ecx_params_fn)
KS_KEYEXCH(x448, KS_KEY_X448, ecx_params_fn, ecx_params_fn)
