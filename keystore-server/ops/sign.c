/* Sign: RSA PKCS#1 v1.5 / PSS over a digest, ECDSA over a digest, and pure
 * EdDSA over a message.  Never raw RSA. */
#include "handlers.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "common/log.h"
#include "digest_policy.h"
#include "prepared.h"

/* Wire PSS salt length -> OpenSSL's.  The wire's -2 (max) and -3 (auto)
 * differ from OpenSSL's numbering; when signing, auto behaves as max. */
static int map_saltlen(int wire, int *out)
{
    if (wire >= 0)
        *out = wire;
    else if (wire == -1)
        *out = RSA_PSS_SALTLEN_DIGEST;
    else if (wire == -2 || wire == -3)
        *out = RSA_PSS_SALTLEN_MAX;
    else
        return -1;
    return 0;
}

/* Fetch the digest, check the key may sign with it and that tbs is one
 * digest long. */
static EVP_MD *digest_for(struct ks_op *op, const struct ks_key *k,
                          const Keystore__SignRequest *r)
{
    EVP_MD *md = ks_op_fetch_md(op, r->digest, "digest");
    int size;

    if (md == NULL)
        return NULL;
    size = EVP_MD_get_size(md);
    if (size <= 0 || (EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF) != 0) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "digest %s cannot be used for signatures", r->digest);
        EVP_MD_free(md);
        return NULL;
    }
    if (!ks_digest_permitted(op, k, md)) {
        EVP_MD_free(md);
        return NULL;
    }
    if (r->tbs.len != (size_t)size) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "digest is %zu bytes but %s needs %d", r->tbs.len, r->digest, size);
        EVP_MD_free(md);
        return NULL;
    }
    return md;
}

static void reply_signature(struct ks_op *op, uint8_t *sig, size_t siglen)
{
    Keystore__SignResponse *sr = ks_arena_alloc(op->arena, sizeof(*sr));

    if (sr == NULL)
        return;
    keystore__sign_response__init(sr);
    sr->signature.data = sig;
    sr->signature.len = siglen;
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_SIGN;
    op->resp->sign = sr;
}

static void op_failed(struct ks_op *op, const struct ks_key *k)
{
    char reason[256];

    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_OPERATION_FAILED, "signing with key %s failed: %s",
                k->name, ks_ossl_reason(reason, sizeof(reason)));
}

static void bad_param_ossl(struct ks_op *op, const struct ks_key *k, const char *what)
{
    char reason[256];

    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER, "key %s (%s) rejects %s: %s",
                k->name, ks_key_type_name(k->type), what, ks_ossl_reason(reason, sizeof(reason)));
}

static void sign_eddsa(struct ks_op *op, struct ks_key *k, const Keystore__SignRequest *r)
{
    static const uint8_t empty[1];
    const uint8_t *msg = r->tbs.len > 0 ? r->tbs.data : empty;
    EVP_MD_CTX *mctx = NULL, *prepared;
    uint8_t *sig;
    size_t siglen = 0;

    if (r->padding != KEYSTORE__PADDING__PADDING_UNSPECIFIED || r->digest[0] != '\0') {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "key %s is %s: EdDSA signs the whole message itself, so send an empty "
                    "digest, padding PADDING_UNSPECIFIED and the message as tbs",
                    k->name, ks_key_type_name(k->type));
        return;
    }
    /* the prepared context if there is one, else a context of our own */
    prepared = ks_prep_eddsa(k);
    mctx = prepared != NULL ? prepared : ks_eddsa_ctx_new(k->pkey);
    if (mctx == NULL) {
        op_failed(op, k);
        goto out;
    }
    siglen = (size_t)EVP_PKEY_get_size(k->pkey);
    sig = ks_arena_alloc(op->arena, siglen);
    if (sig == NULL)
        goto out;
    if (EVP_DigestSign(mctx, sig, &siglen, msg, r->tbs.len) != 1) {
        op_failed(op, k);
        if (prepared != NULL) {
            ks_prep_flush();   /* its state is unknown now; this frees it */
            mctx = NULL;
        }
        goto out;
    }
    reply_signature(op, sig, siglen);
out:
    if (prepared == NULL)
        EVP_MD_CTX_free(mctx);
}

/* Padding checks that need no digest; returns 0 or replies with an error. */
static int rsa_padding_ok(struct ks_op *op, const struct ks_key *k, const Keystore__SignRequest *r)
{
    if (r->padding == KEYSTORE__PADDING__PADDING_PKCS1 &&
        k->type != KEYSTORE__KEY_TYPE__KEY_TYPE_RSA) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_WRONG_KEY_TYPE,
                    "key %s is an RSA-PSS key: it only makes PSS signatures (padding "
                    "PADDING_PSS)", k->name);
        return -1;
    }
    if (r->padding != KEYSTORE__PADDING__PADDING_PKCS1 &&
        r->padding != KEYSTORE__PADDING__PADDING_PSS) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "%s cannot be used to sign with key %s: the server never performs raw RSA; "
                    "use PADDING_PKCS1 or PADDING_PSS", ks_padding_name(r->padding), k->name);
        return -1;
    }
    return 0;
}

/* Configure ctx for RSA (padding already checked); returns 0 or replies. */
static int setup_rsa(struct ks_op *op, const struct ks_key *k, const Keystore__SignRequest *r,
                     EVP_PKEY_CTX *ctx, EVP_MD *md)
{
    EVP_MD *mgf1 = NULL;
    int saltlen, rc = -1;

    if (r->padding == KEYSTORE__PADDING__PADDING_PKCS1) {
        if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) {
            bad_param_ossl(op, k, "PKCS#1 v1.5 padding");
            return -1;
        }
        if (EVP_PKEY_CTX_set_signature_md(ctx, md) != 1) {
            bad_param_ossl(op, k, "this digest");
            return -1;
        }
        return 0;
    }
    if (map_saltlen(r->pss_saltlen, &saltlen) != 0) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "PSS salt length %d is invalid: use a byte count, -1 (digest length), "
                    "-2 (maximum) or -3 (auto)", r->pss_saltlen);
        return -1;
    }
    if (saltlen >= 0) {
        /* RFC 8017 9.1.1: emLen >= hLen + sLen + 2, emLen = ceil((modBits - 1) / 8) */
        int max = (int)((k->bits - 1 + 7) / 8) - EVP_MD_get_size(md) - 2;

        if (saltlen > max) {
            ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                        "PSS salt length %d is too long for the %u-bit key %s with %s "
                        "(at most %d)", saltlen, k->bits, k->name, r->digest, max < 0 ? 0 : max);
            return -1;
        }
    }
    if (r->mgf1_digest[0] != '\0') {
        mgf1 = ks_op_fetch_md(op, r->mgf1_digest, "MGF1 digest");
        if (mgf1 == NULL)
            return -1;
    }
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1) {
        bad_param_ossl(op, k, "PSS padding");
    } else if (EVP_PKEY_CTX_set_signature_md(ctx, md) != 1) {
        bad_param_ossl(op, k, "this digest");
    } else if (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1 != NULL ? mgf1 : md) != 1) {
        bad_param_ossl(op, k, "this MGF1 digest");
    } else if (EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, saltlen) != 1) {
        bad_param_ossl(op, k, "this PSS salt length");
    } else {
        rc = 0;
    }
    EVP_MD_free(mgf1);
    return rc;
}

/* A context for this request: for ECDSA the prepared one itself (*borrowed
 * set), for RSA a copy of the prepared one (the request's parameters go
 * into the copy only), else, or if preparing failed, a new one. */
static EVP_PKEY_CTX *sign_ctx(struct ks_key *k, int is_rsa, const EVP_MD *md, int *borrowed)
{
    EVP_PKEY_CTX *ctx, *base;

    *borrowed = 0;
    if (!is_rsa && (ctx = ks_prep_ecdsa(k, md)) != NULL) {
        *borrowed = 1;
        return ctx;
    }
    if (is_rsa && (base = ks_prep_rsa_sign(k)) != NULL && (ctx = EVP_PKEY_CTX_dup(base)) != NULL)
        return ctx;
    return ks_sign_ctx_new(k->pkey);
}

static void sign_digest(struct ks_op *op, struct ks_key *k, const Keystore__SignRequest *r)
{
    int is_rsa = k->type == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA ||
                 k->type == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_MD *md;
    uint8_t *sig;
    size_t siglen;
    int borrowed;

    if (!is_rsa && r->padding != KEYSTORE__PADDING__PADDING_UNSPECIFIED) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "key %s is an EC key: padding must be PADDING_UNSPECIFIED, not %s",
                    k->name, ks_padding_name(r->padding));
        return;
    }
    if (is_rsa && rsa_padding_ok(op, k, r) != 0)
        return;
    md = digest_for(op, k, r);
    if (md == NULL)
        return;
    ctx = sign_ctx(k, is_rsa, md, &borrowed);
    if (ctx == NULL) {
        op_failed(op, k);
        goto out;
    }
    if (is_rsa) {
        if (setup_rsa(op, k, r, ctx, md) != 0)
            goto out;
    } else if (!borrowed && EVP_PKEY_CTX_set_signature_md(ctx, md) != 1) {
        bad_param_ossl(op, k, "this digest");
        goto out;
    }
    siglen = (size_t)EVP_PKEY_get_size(k->pkey);   /* the largest signature */
    sig = ks_arena_alloc(op->arena, siglen);
    if (sig == NULL)
        goto out;
    if (EVP_PKEY_sign(ctx, sig, &siglen, r->tbs.data, r->tbs.len) != 1) {
        op_failed(op, k);
        if (borrowed) {
            ks_prep_flush();   /* its state is unknown now; this frees it */
            ctx = NULL;
        }
        goto out;
    }
    reply_signature(op, sig, siglen);
out:
    if (!borrowed)
        EVP_PKEY_CTX_free(ctx);
    EVP_MD_free(md);
}

void ks_op_sign(struct ks_op *op, const Keystore__SignRequest *r)
{
    struct ks_key *k = ks_op_key_version(op, r->key, r->version, 1);

    if (k == NULL)
        return;
    switch (k->type) {
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED448:
        sign_eddsa(op, k, r);
        break;
    case KEYSTORE__KEY_TYPE__KEY_TYPE_RSA:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_EC:
        sign_digest(op, k, r);
        break;
    default:
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_WRONG_KEY_TYPE,
                    "key %s has type %s, which cannot sign", k->name, ks_key_type_name(k->type));
        break;
    }
    ks_key_put(k);
}
