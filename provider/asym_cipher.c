/* RSA encryption and decryption.  Decryption happens in the server (OAEP,
 * PKCS#1 v1.5, and the TLS 1.2 key-exchange variant); encryption needs only
 * the public key and runs in the other provider through our child context. */
#include "key.h"
#include "client.h"
#include "errors.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#define KS_NAME_MAX 64
#define KS_LABEL_MAX 1024
#define KS_TLS_PREMASTER_LEN 48
/* OpenSSL 3.2's OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION; 3.0 has no macro. */
#define KS_PARAM_IMPLICIT_REJECTION "implicit-rejection"

enum ks_enc_op { KS_ENC_NONE, KS_ENC_ENCRYPT, KS_ENC_DECRYPT };

typedef struct {
    KS_PROVCTX *pc;
    KS_KEY *key;
    enum ks_enc_op op;
    int pad;                          /* RSA_PKCS1_PADDING, _OAEP_, _WITH_TLS_ */
    char oaep_md[KS_NAME_MAX];        /* "" = SHA1 */
    char mgf1_md[KS_NAME_MAX];        /* "" = same as oaep_md */
    unsigned char *label;
    size_t labellen;
    unsigned int client_version, negotiated_version;
} KS_ENC_CTX;

static void *enc_newctx(void *provctx)
{
    KS_ENC_CTX *ctx = calloc(1, sizeof(*ctx));

    if (ctx == NULL) {
        KS_RAISE(provctx, KS_R_INTERNAL, "out of memory for a cipher context");
        return NULL;
    }
    ctx->pc = provctx;
    ctx->pad = RSA_PKCS1_PADDING;
    return ctx;
}

static void enc_freectx(void *vctx)
{
    KS_ENC_CTX *ctx = vctx;

    if (ctx == NULL)
        return;
    ks_key_free(ctx->key);
    OPENSSL_free(ctx->label);
    free(ctx);
}

static void *enc_dupctx(void *vctx)
{
    KS_ENC_CTX *src = vctx, *dst = malloc(sizeof(*src));

    if (dst == NULL) {
        KS_RAISE(src->pc, KS_R_INTERNAL, "out of memory for a cipher context");
        return NULL;
    }
    *dst = *src;
    dst->label = NULL;
    if (src->labellen > 0) {
        if ((dst->label = OPENSSL_memdup(src->label, src->labellen)) == NULL) {
            KS_RAISE(src->pc, KS_R_INTERNAL, "out of memory for a cipher context");
            free(dst);
            return NULL;
        }
    }
    if (dst->key != NULL)
        ks_key_up_ref(dst->key);
    return dst;
}

/* Canonical short name ("SHA256") of a digest, checked to exist. */
static int md_name(KS_ENC_CTX *ctx, const char *name, char out[KS_NAME_MAX])
{
    EVP_MD *md = EVP_MD_fetch(ctx->pc->libctx, name, KS_CHILD_PROPQ);
    const char *canon;
    int ok = 0;

    if (md == NULL) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "unknown or unavailable digest '%.64s'", name);
        return 0;
    }
    canon = EVP_MD_get_type(md) != NID_undef ? OBJ_nid2sn(EVP_MD_get_type(md)) : EVP_MD_get0_name(md);
    if (canon != NULL && strlen(canon) < KS_NAME_MAX) {
        strcpy(out, canon);
        ok = 1;
    } else {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "digest '%.64s' has no usable name", name);
    }
    EVP_MD_free(md);
    return ok;
}

static int enc_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    KS_ENC_CTX *ctx = vctx;
    const OSSL_PARAM *p;
    const char *s;

    if (ctx == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE)) != NULL) {
        int pad = 0;

        if (!ks_rsa_pad_from_param(p, &pad))
            return 0;
        if (pad == RSA_NO_PADDING) {
            KS_RAISE(ctx->pc, KS_R_RAW_RSA,
                     "raw RSA is not available for keystore keys: use oaep or pkcs1 padding");
            return 0;
        }
        if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_OAEP_PADDING
            && pad != RSA_PKCS1_WITH_TLS_PADDING) {
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER,
                     "unsupported RSA encryption padding; keystore keys decrypt oaep or pkcs1");
            return 0;
        }
        ctx->pad = pad;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL || !md_name(ctx, s, ctx->oaep_md))
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL || !md_name(ctx, s, ctx->mgf1_md))
            return 0;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL)) != NULL) {
        void *buf = NULL;
        size_t len = 0;

        if (!OSSL_PARAM_get_octet_string(p, &buf, KS_LABEL_MAX, &len)) {
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "OAEP label missing or longer than %d bytes",
                     KS_LABEL_MAX);
            return 0;
        }
        OPENSSL_free(ctx->label);
        ctx->label = len > 0 ? buf : NULL;
        ctx->labellen = len;
        if (len == 0)
            OPENSSL_free(buf);
    }
    if ((p = OSSL_PARAM_locate_const(params, KS_PARAM_IMPLICIT_REJECTION)) != NULL) {
        unsigned int on = 0;

        /* The server always rejects implicitly; explicit rejection (an error
         * for a bad block) is the Bleichenbacher oracle, so it is refused. */
        if (!OSSL_PARAM_get_uint(p, &on) || on == 0) {
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER,
                     "implicit rejection cannot be turned off for keystore keys: an error for a "
                     "bad PKCS#1 v1.5 block is a Bleichenbacher oracle; a bad block always "
                     "decrypts to a synthetic message");
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION)) != NULL
        && !OSSL_PARAM_get_uint(p, &ctx->client_version))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION)) != NULL
        && !OSSL_PARAM_get_uint(p, &ctx->negotiated_version))
        return 0;
    return 1;
}

static int enc_init(KS_ENC_CTX *ctx, KS_KEY *key, enum ks_enc_op op, const OSSL_PARAM params[])
{
    if (ctx == NULL || key == NULL)
        return 0;
    if (key->type != KS_KEY_RSA || key->pub == NULL) {
        KS_RAISE(ctx->pc, KS_R_WRONG_KEY_TYPE, "a %s key cannot be used for RSA encryption",
                 ks_key_type_name_of(key->type));
        return 0;
    }
    if (op == KS_ENC_DECRYPT && !ks_key_has_private(key)) {
        KS_RAISE(ctx->pc, KS_R_PUBLIC_ONLY,
                 "this RSA key is only a public key; decrypt with a key loaded from keystore:NAME");
        return 0;
    }
    ks_key_up_ref(key);
    ks_key_free(ctx->key);
    ctx->key = key;
    ctx->op = op;
    ctx->pad = RSA_PKCS1_PADDING;
    ctx->oaep_md[0] = ctx->mgf1_md[0] = '\0';
    OPENSSL_free(ctx->label);
    ctx->label = NULL;
    ctx->labellen = 0;
    ctx->client_version = ctx->negotiated_version = 0;
    return enc_set_ctx_params(ctx, params);
}

static int enc_encrypt_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return enc_init(vctx, provkey, KS_ENC_ENCRYPT, params);
}

static int enc_decrypt_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return enc_init(vctx, provkey, KS_ENC_DECRYPT, params);
}

static int enc_encrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                       const unsigned char *in, size_t inlen)
{
    KS_ENC_CTX *ctx = vctx;
    OSSL_PARAM params[5], *p = params;
    EVP_PKEY_CTX *d = NULL;
    int pad, ok = 0;

    if (ctx == NULL || ctx->key == NULL || ctx->op != KS_ENC_ENCRYPT)
        return 0;
    if (out == NULL) {
        *outlen = (size_t)ctx->key->max_size;
        return 1;
    }
    /* TLS padding is a decryption-side notion; encrypting is plain PKCS#1. */
    pad = ctx->pad == RSA_PKCS1_WITH_TLS_PADDING ? RSA_PKCS1_PADDING : ctx->pad;
    *p++ = OSSL_PARAM_construct_int(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, &pad);
    if (pad == RSA_PKCS1_OAEP_PADDING) {
        if (ctx->oaep_md[0] != '\0')
            *p++ = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, ctx->oaep_md, 0);
        if (ctx->mgf1_md[0] != '\0')
            *p++ = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, ctx->mgf1_md, 0);
        if (ctx->labellen > 0)
            *p++ = OSSL_PARAM_construct_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL,
                                                     ctx->label, ctx->labellen);
    }
    *p = OSSL_PARAM_construct_end();
    d = EVP_PKEY_CTX_new_from_pkey(ctx->pc->libctx, ctx->key->pub, KS_CHILD_PROPQ);
    if (d == NULL || EVP_PKEY_encrypt_init(d) <= 0 || !EVP_PKEY_CTX_set_params(d, params)) {
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "cannot set up RSA encryption (is the default provider loaded?)");
        goto out;
    }
    *outlen = outsize;
    ok = EVP_PKEY_encrypt(d, out, outlen, in, inlen) > 0;
out:
    EVP_PKEY_CTX_free(d);
    return ok;
}

static int enc_decrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                       const unsigned char *in, size_t inlen)
{
    KS_ENC_CTX *ctx = vctx;
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__DecryptRequest dr = KEYSTORE__DECRYPT_REQUEST__INIT;
    Keystore__Response *resp = NULL;
    const ProtobufCBinaryData *pt;
    Keystore__ErrorCode code;
    int tls, ok = 0;

    if (ctx == NULL || ctx->key == NULL || ctx->op != KS_ENC_DECRYPT)
        return 0;
    /* libssl asks for TLS padding, or sets the versions with PKCS#1. */
    tls = ctx->pad == RSA_PKCS1_WITH_TLS_PADDING
          || (ctx->pad == RSA_PKCS1_PADDING && ctx->client_version > 0);
    if (out == NULL) {
        *outlen = tls ? KS_TLS_PREMASTER_LEN : (size_t)ctx->key->max_size;
        return 1;
    }
    if (inlen == 0 || inlen > (size_t)ctx->key->max_size) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER,
                 "RSA ciphertext of %zu bytes for a %d-bit key (expected %d bytes)",
                 inlen, ctx->key->bits, ctx->key->max_size);
        return 0;
    }
    if (tls && outsize < KS_TLS_PREMASTER_LEN) {
        KS_RAISE(ctx->pc, KS_R_BUFFER_TOO_SMALL, "TLS premaster buffer of %zu bytes, %d needed",
                 outsize, KS_TLS_PREMASTER_LEN);
        return 0;
    }
    dr.key = ctx->key->name;
    dr.version = ctx->key->version;
    dr.oaep_digest = (char *)"";
    dr.mgf1_digest = (char *)"";
    if (tls) {
        dr.padding = KEYSTORE__PADDING__PADDING_PKCS1_TLS;
        dr.tls_client_version = ctx->client_version;
        dr.tls_negotiated_version = ctx->negotiated_version;
    } else if (ctx->pad == RSA_PKCS1_OAEP_PADDING) {
        dr.padding = KEYSTORE__PADDING__PADDING_OAEP;
        dr.oaep_digest = ctx->oaep_md;
        dr.mgf1_digest = ctx->mgf1_md;
        dr.oaep_label.data = ctx->label;
        dr.oaep_label.len = ctx->labellen;
    } else {
        dr.padding = KEYSTORE__PADDING__PADDING_PKCS1;
    }
    dr.ciphertext.data = (uint8_t *)in;
    dr.ciphertext.len = inlen;
    req.body_case = KEYSTORE__REQUEST__BODY_DECRYPT;
    req.decrypt = &dr;
    if (tls)
        ERR_set_mark();
    if (!ks_client_call_key(ctx->pc, ctx->key, &req, KEYSTORE__RESPONSE__BODY_DECRYPT, "decrypt",
                            &resp, &code)) {
        /* The server never fails a TLS block for its content (its
         * substitute is deterministic), but should one ever say "decryption
         * failed", the caller must still see no error: a random premaster,
         * as the default provider substitutes. */
        if (tls && code == KEYSTORE__ERROR_CODE__ERROR_OPERATION_FAILED
            && RAND_priv_bytes_ex(ctx->pc->libctx, out, KS_TLS_PREMASTER_LEN, 0) == 1) {
            ERR_pop_to_mark();
            *outlen = KS_TLS_PREMASTER_LEN;
            return 1;
        }
        if (tls)
            ERR_clear_last_mark();
        return 0;
    }
    if (tls)
        ERR_clear_last_mark();
    pt = resp->decrypt != NULL ? &resp->decrypt->plaintext : NULL;
    if (pt == NULL || pt->len > (size_t)ctx->key->max_size
        || (tls && pt->len != KS_TLS_PREMASTER_LEN)) {
        KS_RAISE(ctx->pc, KS_R_PROTOCOL, "keystore server returned a malformed decryption for '%s'",
                 ctx->key->name);
        goto out;
    }
    if (pt->len > outsize) {
        KS_RAISE(ctx->pc, KS_R_BUFFER_TOO_SMALL, "plaintext buffer of %zu bytes, %zu needed",
                 outsize, pt->len);
        goto out;
    }
    if (pt->len > 0)
        memcpy(out, pt->data, pt->len);
    *outlen = pt->len;
    ok = 1;
out:
    ks_client_free_response(resp);
    return ok;
}

static int enc_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    KS_ENC_CTX *ctx = vctx;
    OSSL_PARAM *p;

    if (ctx == NULL)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE)) != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            const char *s = ctx->pad == RSA_PKCS1_OAEP_PADDING ? OSSL_PKEY_RSA_PAD_MODE_OAEP
                            : OSSL_PKEY_RSA_PAD_MODE_PKCSV15;

            if (!OSSL_PARAM_set_utf8_string(p, s))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, ctx->pad)) {
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, ctx->oaep_md[0] ? ctx->oaep_md : "SHA1"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, ctx->mgf1_md[0] ? ctx->mgf1_md
                                          : ctx->oaep_md[0] ? ctx->oaep_md : "SHA1"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL)) != NULL
        && !OSSL_PARAM_set_octet_ptr(p, ctx->label, ctx->labellen))
        return 0;
    if ((p = OSSL_PARAM_locate(params, KS_PARAM_IMPLICIT_REJECTION)) != NULL
        && !OSSL_PARAM_set_uint(p, 1))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION)) != NULL
        && !OSSL_PARAM_set_uint(p, ctx->client_version))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION)) != NULL
        && !OSSL_PARAM_set_uint(p, ctx->negotiated_version))
        return 0;
    return 1;
}

static const OSSL_PARAM enc_gettable[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_uint(KS_PARAM_IMPLICIT_REJECTION, NULL),
    OSSL_PARAM_END
};

static const OSSL_PARAM enc_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_uint(KS_PARAM_IMPLICIT_REJECTION, NULL),
    OSSL_PARAM_END
};

static const OSSL_PARAM *enc_gettable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return enc_gettable;
}

static const OSSL_PARAM *enc_settable_ctx_params(void *vctx, void *provctx)
{
    (void)vctx;
    (void)provctx;
    return enc_settable;
}

const OSSL_DISPATCH ks_rsa_asym_cipher_functions[] = {
    { OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))enc_newctx },
    { OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))enc_freectx },
    { OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))enc_dupctx },
    { OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT, (void (*)(void))enc_encrypt_init },
    { OSSL_FUNC_ASYM_CIPHER_ENCRYPT, (void (*)(void))enc_encrypt },
    { OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))enc_decrypt_init },
    { OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))enc_decrypt },
    { OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS, (void (*)(void))enc_get_ctx_params },
    { OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))enc_gettable_ctx_params },
    { OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS, (void (*)(void))enc_set_ctx_params },
    { OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))enc_settable_ctx_params },
    { 0, NULL }
};
