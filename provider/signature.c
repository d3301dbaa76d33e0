/* Signatures.  Signing sends a digest (or, for EdDSA, the message) to the
 * server; hashing happens here.  Verification never needs the server: it is
 * delegated to the other provider's public key in our child library context. */
#include "key.h"
#include "client.h"
#include "errors.h"

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

enum ks_sig_alg { KS_SIG_RSA, KS_SIG_ECDSA, KS_SIG_ED25519, KS_SIG_ED448 };
enum ks_sig_op { KS_OP_NONE, KS_OP_SIGN, KS_OP_VERIFY };

#define KS_NAME_MAX 64
#define KS_PROPQ_MAX 256
/* Request overhead besides the message: id, key name, tags and lengths. */
#define KS_SIGN_OVERHEAD 256

typedef struct {
    KS_PROVCTX *pc;
    enum ks_sig_alg alg;
    enum ks_sig_op op;
    KS_KEY *key;
    char propq[KS_PROPQ_MAX];         /* echoed back; fetches use KS_CHILD_PROPQ */
    EVP_MD *md;                       /* NULL: not chosen yet */
    char mdname[KS_NAME_MAX];         /* canonical OpenSSL short name */
    int pad;                          /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
    int saltlen;                      /* bytes or RSA_PSS_SALTLEN_* */
    EVP_MD *mgf1;                     /* NULL: same as md */
    char mgf1name[KS_NAME_MAX];
    int digest_op;                    /* inside digest_sign/verify_init .. final */
    size_t mdsize;                    /* ECDSA "digest-size" without a digest; 0 = any */
    EVP_MD_CTX *mdctx;                /* local hashing, started on first update */
} KS_SIG_CTX;

static void *sig_newctx(void *provctx, const char *propq, enum ks_sig_alg alg)
{
    KS_SIG_CTX *ctx = calloc(1, sizeof(*ctx));

    if (ctx == NULL) {
        KS_RAISE(provctx, KS_R_INTERNAL, "out of memory for a signature context");
        return NULL;
    }
    ctx->pc = provctx;
    ctx->alg = alg;
    if (propq != NULL && strlen(propq) < sizeof(ctx->propq))
        strcpy(ctx->propq, propq);
    return ctx;
}

static void sig_reset(KS_SIG_CTX *ctx)
{
    ks_key_free(ctx->key);
    ctx->key = NULL;
    EVP_MD_free(ctx->md);
    ctx->md = NULL;
    ctx->mdname[0] = '\0';
    EVP_MD_free(ctx->mgf1);
    ctx->mgf1 = NULL;
    ctx->mgf1name[0] = '\0';
    EVP_MD_CTX_free(ctx->mdctx);
    ctx->mdctx = NULL;
    ctx->digest_op = 0;
    ctx->mdsize = 0;
    ctx->op = KS_OP_NONE;
}

static void sig_freectx(void *vctx)
{
    KS_SIG_CTX *ctx = vctx;

    if (ctx == NULL)
        return;
    sig_reset(ctx);
    free(ctx);
}

static void *sig_dupctx(void *vctx)
{
    KS_SIG_CTX *src = vctx, *dst;

    if ((dst = malloc(sizeof(*dst))) == NULL) {
        KS_RAISE(src->pc, KS_R_INTERNAL, "out of memory for a signature context");
        return NULL;
    }
    *dst = *src;
    dst->mdctx = NULL;
    if (dst->key != NULL)
        ks_key_up_ref(dst->key);
    if (dst->md != NULL && !EVP_MD_up_ref(dst->md))
        dst->md = NULL;
    if (dst->mgf1 != NULL && !EVP_MD_up_ref(dst->mgf1))
        dst->mgf1 = NULL;
    if ((src->md != NULL && dst->md == NULL) || (src->mgf1 != NULL && dst->mgf1 == NULL))
        goto err;
    if (src->mdctx != NULL) {
        if ((dst->mdctx = EVP_MD_CTX_new()) == NULL
            || !EVP_MD_CTX_copy_ex(dst->mdctx, src->mdctx))
            goto err;
    }
    return dst;
err:
    KS_RAISE(src->pc, KS_R_INTERNAL, "cannot copy a signature context");
    sig_freectx(dst);
    return NULL;
}

/* Fetch a digest from the child context; name it as OpenSSL's short name. */
static EVP_MD *fetch_md(KS_PROVCTX *pc, const char *name, char out[KS_NAME_MAX])
{
    EVP_MD *md = EVP_MD_fetch(pc->libctx, name, KS_CHILD_PROPQ);
    const char *canon;

    if (md == NULL) {
        KS_RAISE(pc, KS_R_INVALID_PARAMETER, "unknown or unavailable digest '%.64s'", name);
        return NULL;
    }
    if (EVP_MD_get_size(md) <= 0
        || (EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF) != 0) {
        KS_RAISE(pc, KS_R_INVALID_PARAMETER, "digest '%.64s' cannot be used for signatures", name);
        EVP_MD_free(md);
        return NULL;
    }
    canon = OBJ_nid2sn(EVP_MD_get_type(md));
    if (canon == NULL || EVP_MD_get_type(md) == NID_undef)
        canon = EVP_MD_get0_name(md);
    if (canon == NULL || strlen(canon) >= KS_NAME_MAX) {
        KS_RAISE(pc, KS_R_INVALID_PARAMETER, "digest '%.64s' has no usable name", name);
        EVP_MD_free(md);
        return NULL;
    }
    strcpy(out, canon);
    return md;
}

static int set_md(KS_SIG_CTX *ctx, const char *name)
{
    char canon[KS_NAME_MAX];
    EVP_MD *md;

    if (ctx->alg == KS_SIG_ED25519 || ctx->alg == KS_SIG_ED448) {
        if (name == NULL || name[0] == '\0')
            return 1;
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER,
                 "EdDSA signs the message itself; no digest ('%.64s') may be set", name);
        return 0;
    }
    if ((md = fetch_md(ctx->pc, name, canon)) == NULL)
        return 0;
    if (ctx->mdctx != NULL && (ctx->md == NULL || strcmp(canon, ctx->mdname) != 0)) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER,
                 "the digest cannot change once hashing has started");
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(ctx->md);
    ctx->md = md;
    strcpy(ctx->mdname, canon);
    return 1;
}

static int set_mgf1(KS_SIG_CTX *ctx, const char *name)
{
    char canon[KS_NAME_MAX];
    EVP_MD *md = fetch_md(ctx->pc, name, canon);

    if (md == NULL)
        return 0;
    EVP_MD_free(ctx->mgf1);
    ctx->mgf1 = md;
    strcpy(ctx->mgf1name, canon);
    return 1;
}

static int set_pad(KS_SIG_CTX *ctx, const OSSL_PARAM *p)
{
    int pad = 0;

    if (!ks_rsa_pad_from_param(p, &pad))
        return 0;
    if (pad == RSA_NO_PADDING) {
        KS_RAISE(ctx->pc, KS_R_RAW_RSA,
                 "raw RSA is not available for keystore keys: use pkcs1 or pss padding");
        return 0;
    }
    if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER,
                 "unsupported RSA signature padding; keystore keys sign with pkcs1 or pss");
        return 0;
    }
    if (pad == RSA_PKCS1_PADDING && ctx->key != NULL && ctx->key->type == KS_KEY_RSA_PSS) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "RSA-PSS key '%s' can only sign with pss padding",
                 ctx->key->name);
        return 0;
    }
    ctx->pad = pad;
    return 1;
}

static int set_saltlen(KS_SIG_CTX *ctx, const OSSL_PARAM *p)
{
    int saltlen;

    if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        const char *s = p->data;
        char *end;
        long v;

        if (s == NULL)
            return 0;
        if (strcmp(s, "digest") == 0) {
            saltlen = RSA_PSS_SALTLEN_DIGEST;
        } else if (strcmp(s, "max") == 0) {
            saltlen = RSA_PSS_SALTLEN_MAX;
        } else if (strcmp(s, "auto") == 0) {
            saltlen = RSA_PSS_SALTLEN_AUTO;
        } else {
            v = strtol(s, &end, 10);
            if (*s == '\0' || *end != '\0' || v < 0 || v > 4096) {
                KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER,
                         "bad PSS salt length '%.32s' (expected a number, digest, max or auto)", s);
                return 0;
            }
            saltlen = (int)v;
        }
    } else if (!OSSL_PARAM_get_int(p, &saltlen)) {
        return 0;
    }
    if (saltlen < RSA_PSS_SALTLEN_MAX) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "bad PSS salt length %d", saltlen);
        return 0;
    }
    ctx->saltlen = saltlen;
    return 1;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    KS_SIG_CTX *ctx = vctx;
    const OSSL_PARAM *p;

    if (ctx == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PROPERTIES)) != NULL) {
        const char *s = NULL;

        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL || strlen(s) >= sizeof(ctx->propq))
            return 0;
        strcpy(ctx->propq, s);
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL) {
        const char *s = NULL;

        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL || !set_md(ctx, s))
            return 0;
    }
    if (ctx->alg == KS_SIG_ECDSA
        && (p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST_SIZE)) != NULL) {
        size_t n = 0;

        /* As the default provider: a size only, or the chosen digest's size. */
        if (!OSSL_PARAM_get_size_t(p, &n)
            || (ctx->md != NULL && n != (size_t)EVP_MD_get_size(ctx->md))) {
            KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "digest-size does not match the digest");
            return 0;
        }
        ctx->mdsize = n;
    }
    if (ctx->alg != KS_SIG_RSA)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL
        && !set_pad(ctx, p))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL
        && !set_saltlen(ctx, p))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL) {
        const char *s = NULL;

        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL || !set_mgf1(ctx, s))
            return 0;
    }
    return 1;
}

static const char *alg_name(enum ks_sig_alg alg)
{
    switch (alg) {
    case KS_SIG_RSA: return "RSA";
    case KS_SIG_ECDSA: return "ECDSA";
    case KS_SIG_ED25519: return "Ed25519";
    default: return "Ed448";
    }
}

static int key_fits(enum ks_sig_alg alg, const KS_KEY *k)
{
    switch (alg) {
    case KS_SIG_RSA: return ks_key_is_rsa(k);
    case KS_SIG_ECDSA: return k->type == KS_KEY_EC;
    case KS_SIG_ED25519: return k->type == KS_KEY_ED25519;
    default: return k->type == KS_KEY_ED448;
    }
}

/* An RSA-PSS key with parameter restrictions starts out with them, as with
 * the default provider: its digest, its MGF1 digest and its minimum salt
 * length.  The server enforces them whatever we send. */
static int pss_restrictions(KS_SIG_CTX *ctx)
{
    char md[KS_NAME_MAX] = "", mgf1[KS_NAME_MAX] = "";
    int saltlen = -1;
    OSSL_PARAM q[4];

    q[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_RSA_DIGEST, md, sizeof(md));
    q[1] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, mgf1, sizeof(mgf1));
    q[2] = OSSL_PARAM_construct_int(OSSL_PKEY_PARAM_RSA_PSS_SALTLEN, &saltlen);
    q[3] = OSSL_PARAM_construct_end();
    if (!EVP_PKEY_get_params(ctx->key->pub, q)) {
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "cannot read the PSS restrictions of RSA-PSS key '%s'",
                 ctx->key->name);
        return 0;
    }
    /* Only a restricted key reports a salt length; it leaves out digests
     * that are the RFC 8017 default, SHA-1. */
    if (!OSSL_PARAM_modified(&q[2]) || saltlen < 0)
        return 1;
    if (!set_md(ctx, OSSL_PARAM_modified(&q[0]) && md[0] != '\0' ? md : "SHA1")
        || !set_mgf1(ctx, OSSL_PARAM_modified(&q[1]) && mgf1[0] != '\0' ? mgf1 : "SHA1"))
        return 0;
    ctx->saltlen = saltlen;
    return 1;
}

static int sig_init(KS_SIG_CTX *ctx, KS_KEY *key, enum ks_sig_op op, const OSSL_PARAM params[])
{
    if (ctx == NULL)
        return 0;
    if (key == NULL) {
        /* Re-initialisation with the same key keeps it. */
        if (ctx->key == NULL)
            return 0;
        key = ctx->key;
    }
    if (!key_fits(ctx->alg, key) || key->pub == NULL) {
        KS_RAISE(ctx->pc, KS_R_WRONG_KEY_TYPE, "a %s key cannot make %s signatures",
                 ks_key_type_name_of(key->type), alg_name(ctx->alg));
        return 0;
    }
    if (op == KS_OP_SIGN && !ks_key_has_private(key)) {
        KS_RAISE(ctx->pc, KS_R_PUBLIC_ONLY,
                 "this %s key is only a public key; sign with a key loaded from keystore:NAME",
                 ks_key_type_name_of(key->type));
        return 0;
    }
    ks_key_up_ref(key);
    sig_reset(ctx);
    ctx->key = key;
    ctx->op = op;
    ctx->pad = key->type == KS_KEY_RSA_PSS ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING;
    ctx->saltlen = RSA_PSS_SALTLEN_AUTO;
    if (key->type == KS_KEY_RSA_PSS && !pss_restrictions(ctx))
        return 0;
    return sig_set_ctx_params(ctx, params);
}

static int sig_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return sig_init(vctx, provkey, KS_OP_SIGN, params);
}

static int sig_verify_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return sig_init(vctx, provkey, KS_OP_VERIFY, params);
}

/* pkeyutl -sign without -pkeyopt digest: name the digest by its size. */
static int infer_md(KS_SIG_CTX *ctx, size_t tbslen)
{
    const char *name;

    if (ctx->md != NULL)
        return 1;
    if (ctx->mdsize != 0 && tbslen != ctx->mdsize) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "input of %zu bytes, but digest-size is %zu",
                 tbslen, ctx->mdsize);
        return 0;
    }
    switch (tbslen) {
    case 20: name = "SHA1"; break;
    case 28: name = "SHA224"; break;
    case 32: name = "SHA256"; break;
    case 48: name = "SHA384"; break;
    case 64: name = "SHA512"; break;
    default:
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER,
                 "cannot tell which digest a %zu-byte input is; set it (e.g. -pkeyopt digest:sha256)",
                 tbslen);
        return 0;
    }
    return set_md(ctx, name);
}

static int wire_saltlen(int saltlen)
{
    switch (saltlen) {
    case RSA_PSS_SALTLEN_DIGEST: return -1;
    case RSA_PSS_SALTLEN_MAX: return -2;
    case RSA_PSS_SALTLEN_AUTO: return -3;
    default: return saltlen;
    }
}

static int remote_sign(KS_SIG_CTX *ctx, const unsigned char *tbs, size_t tbslen,
                       unsigned char *sig, size_t *siglen, size_t sigsize)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__SignRequest sr = KEYSTORE__SIGN_REQUEST__INIT;
    Keystore__Response *resp = NULL;
    const ProtobufCBinaryData *s;
    int ok = 0;

    sr.key = ctx->key->name;
    sr.version = ctx->key->version;
    sr.digest = ctx->mdname;
    sr.mgf1_digest = (char *)"";
    if (ctx->alg == KS_SIG_RSA) {
        if (ctx->pad == RSA_PKCS1_PSS_PADDING) {
            sr.padding = KEYSTORE__PADDING__PADDING_PSS;
            sr.pss_saltlen = wire_saltlen(ctx->saltlen);
            sr.mgf1_digest = ctx->mgf1name;
        } else {
            sr.padding = KEYSTORE__PADDING__PADDING_PKCS1;
        }
    }
    sr.tbs.data = (uint8_t *)tbs;
    sr.tbs.len = tbslen;
    req.body_case = KEYSTORE__REQUEST__BODY_SIGN;
    req.sign = &sr;
    if (!ks_client_call_key(ctx->pc, ctx->key, &req, KEYSTORE__RESPONSE__BODY_SIGN, "sign",
                            &resp, NULL))
        return 0;
    s = resp->sign != NULL ? &resp->sign->signature : NULL;
    if (s == NULL || s->len == 0 || s->len > (size_t)ctx->key->max_size) {
        KS_RAISE(ctx->pc, KS_R_PROTOCOL, "keystore server returned a malformed signature for '%s'",
                 ctx->key->name);
        goto out;
    }
    if (s->len > sigsize) {
        KS_RAISE(ctx->pc, KS_R_BUFFER_TOO_SMALL, "signature buffer of %zu bytes, %zu needed",
                 sigsize, s->len);
        goto out;
    }
    memcpy(sig, s->data, s->len);
    *siglen = s->len;
    ok = 1;
out:
    ks_client_free_response(resp);
    return ok;
}

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    KS_SIG_CTX *ctx = vctx;

    if (ctx == NULL || ctx->key == NULL || ctx->op != KS_OP_SIGN)
        return 0;
    if (sig == NULL) {
        *siglen = (size_t)ctx->key->max_size;
        return 1;
    }
    if (!infer_md(ctx, tbslen))
        return 0;
    if (tbslen != (size_t)EVP_MD_get_size(ctx->md)) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "input of %zu bytes is not a %s digest (%d bytes)",
                 tbslen, ctx->mdname, EVP_MD_get_size(ctx->md));
        return 0;
    }
    return remote_sign(ctx, tbs, tbslen, sig, siglen, sigsize);
}

/* A verification context of the other provider, configured like ours. */
static EVP_PKEY_CTX *delegate_ctx(KS_SIG_CTX *ctx)
{
    OSSL_PARAM params[5], *p = params;
    EVP_PKEY_CTX *d;

    d = EVP_PKEY_CTX_new_from_pkey(ctx->pc->libctx, ctx->key->pub, KS_CHILD_PROPQ);
    if (d == NULL || EVP_PKEY_verify_init(d) <= 0) {
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "cannot set up %s verification (is the default provider loaded?)",
                 alg_name(ctx->alg));
        EVP_PKEY_CTX_free(d);
        return NULL;
    }
    if (ctx->md != NULL)
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, ctx->mdname, 0);
    if (ctx->alg == KS_SIG_RSA) {
        *p++ = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PAD_MODE, &ctx->pad);
        if (ctx->pad == RSA_PKCS1_PSS_PADDING) {
            *p++ = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, &ctx->saltlen);
            if (ctx->mgf1 != NULL)
                *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST,
                                                        ctx->mgf1name, 0);
        }
    }
    *p = OSSL_PARAM_construct_end();
    if (!EVP_PKEY_CTX_set_params(d, params)) {
        KS_RAISE(ctx->pc, KS_R_INVALID_PARAMETER, "the %s signature parameters are not accepted",
                 alg_name(ctx->alg));
        EVP_PKEY_CTX_free(d);
        return NULL;
    }
    return d;
}

static int local_verify(KS_SIG_CTX *ctx, const unsigned char *sig, size_t siglen,
                        const unsigned char *tbs, size_t tbslen)
{
    EVP_PKEY_CTX *d;
    int ok;

    if ((d = delegate_ctx(ctx)) == NULL)
        return 0;
    ok = EVP_PKEY_verify(d, sig, siglen, tbs, tbslen) == 1;
    EVP_PKEY_CTX_free(d);
    return ok;
}

static int sig_verify(void *vctx, const unsigned char *sig, size_t siglen,
                      const unsigned char *tbs, size_t tbslen)
{
    KS_SIG_CTX *ctx = vctx;

    if (ctx == NULL || ctx->key == NULL || ctx->op != KS_OP_VERIFY || !infer_md(ctx, tbslen))
        return 0;
    return local_verify(ctx, sig, siglen, tbs, tbslen);
}

static int digest_init(KS_SIG_CTX *ctx, const char *mdname, KS_KEY *key, enum ks_sig_op op,
                       const OSSL_PARAM params[])
{
    if (!sig_init(ctx, key, op, params))
        return 0;
    if (mdname != NULL && mdname[0] != '\0') {
        if (!set_md(ctx, mdname))
            return 0;
    } else if ((ctx->alg == KS_SIG_RSA || ctx->alg == KS_SIG_ECDSA) && ctx->md == NULL
               && !set_md(ctx, "SHA256")) {
        return 0;
    }
    ctx->digest_op = 1;
    return 1;
}

static int digest_update(KS_SIG_CTX *ctx, const unsigned char *data, size_t datalen)
{
    if (ctx == NULL || !ctx->digest_op || ctx->md == NULL)
        return 0;
    if (ctx->mdctx == NULL) {
        if ((ctx->mdctx = EVP_MD_CTX_new()) == NULL
            || !EVP_DigestInit_ex2(ctx->mdctx, ctx->md, NULL)) {
            KS_RAISE(ctx->pc, KS_R_INTERNAL, "cannot start a %s digest", ctx->mdname);
            EVP_MD_CTX_free(ctx->mdctx);
            ctx->mdctx = NULL;
            return 0;
        }
    }
    if (datalen > 0 && !EVP_DigestUpdate(ctx->mdctx, data, datalen)) {
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "%s digest update failed", ctx->mdname);
        return 0;
    }
    return 1;
}

static int digest_final(KS_SIG_CTX *ctx, unsigned char *dgst, unsigned int *dlen)
{
    if (!digest_update(ctx, NULL, 0))
        return 0;
    if (!EVP_DigestFinal_ex(ctx->mdctx, dgst, dlen)) {
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "%s digest failed", ctx->mdname);
        return 0;
    }
    return 1;
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, provkey, KS_OP_SIGN, params);
}

static int sig_digest_verify_init(void *vctx, const char *mdname, void *provkey,
                                  const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, provkey, KS_OP_VERIFY, params);
}

static int sig_digest_update(void *vctx, const unsigned char *data, size_t datalen)
{
    return digest_update(vctx, data, datalen);
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    KS_SIG_CTX *ctx = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (ctx == NULL || ctx->key == NULL || ctx->op != KS_OP_SIGN)
        return 0;
    if (sig == NULL) {
        *siglen = (size_t)ctx->key->max_size;
        return 1;
    }
    if (!digest_final(ctx, dgst, &dlen))
        return 0;
    return remote_sign(ctx, dgst, dlen, sig, siglen, sigsize);
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    KS_SIG_CTX *ctx = vctx;
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;

    if (ctx == NULL || ctx->key == NULL || ctx->op != KS_OP_VERIFY || !digest_final(ctx, dgst, &dlen))
        return 0;
    return local_verify(ctx, sig, siglen, dgst, dlen);
}

/* EdDSA: the whole message goes to the server, within its frame limit. */
static int sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    KS_SIG_CTX *ctx = vctx;
    size_t max_frame;

    if (ctx == NULL || ctx->key == NULL || ctx->op != KS_OP_SIGN)
        return 0;
    if (sig == NULL) {
        *siglen = (size_t)ctx->key->max_size;
        return 1;
    }
    if ((max_frame = ks_client_max_frame(ctx->pc)) == 0)
        return 0;
    if (tbslen > max_frame - KS_SIGN_OVERHEAD) {
        KS_RAISE(ctx->pc, KS_R_TOO_LARGE,
                 "message of %zu bytes is too large to sign with %s key '%s': EdDSA sends the whole "
                 "message and the keystore server at %s accepts at most %zu bytes (its max_frame "
                 "setting in keystored.conf: up to 16 MiB on a Unix socket, 65519 over TCP)",
                 tbslen, alg_name(ctx->alg), ctx->key->name, ctx->pc->server,
                 max_frame - KS_SIGN_OVERHEAD);
        return 0;
    }
    return remote_sign(ctx, tbs, tbslen, sig, siglen, sigsize);
}

static int sig_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                             const unsigned char *tbs, size_t tbslen)
{
    KS_SIG_CTX *ctx = vctx;
    EVP_MD_CTX *m;
    int ok;

    if (ctx == NULL || ctx->key == NULL || ctx->op != KS_OP_VERIFY)
        return 0;
    if ((m = EVP_MD_CTX_new()) == NULL
        || EVP_DigestVerifyInit_ex(m, NULL, NULL, ctx->pc->libctx, KS_CHILD_PROPQ,
                                   ctx->key->pub, NULL) != 1) {
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "cannot set up %s verification", alg_name(ctx->alg));
        EVP_MD_CTX_free(m);
        return 0;
    }
    ok = EVP_DigestVerify(m, sig, siglen, tbs, tbslen) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

/* DER AlgorithmIdentifier of the signature.  EdDSA's is fixed; for RSA and
 * ECDSA the other provider computes it from the same settings. */
static int get_algorithm_id(KS_SIG_CTX *ctx, OSSL_PARAM *p)
{
    static const unsigned char ed25519_aid[] = { 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70 };
    static const unsigned char ed448_aid[] = { 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71 };
    unsigned char buf[256];
    OSSL_PARAM q[2];
    EVP_PKEY_CTX *d;
    int ok = 0;

    if (ctx->alg == KS_SIG_ED25519)
        return OSSL_PARAM_set_octet_string(p, ed25519_aid, sizeof(ed25519_aid));
    if (ctx->alg == KS_SIG_ED448)
        return OSSL_PARAM_set_octet_string(p, ed448_aid, sizeof(ed448_aid));
    if (ctx->key == NULL || ctx->md == NULL)
        return 0;
    if ((d = delegate_ctx(ctx)) == NULL)
        return 0;
    q[0] = OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, buf, sizeof(buf));
    q[1] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_CTX_get_params(d, q) && OSSL_PARAM_modified(&q[0]) && q[0].return_size > 0)
        ok = OSSL_PARAM_set_octet_string(p, buf, q[0].return_size);
    else
        KS_RAISE(ctx->pc, KS_R_UNSUPPORTED, "no algorithm identifier for %s with %s",
                 alg_name(ctx->alg), ctx->mdname);
    EVP_PKEY_CTX_free(d);
    return ok;
}

static const char *pad_name(int pad)
{
    return pad == RSA_PKCS1_PSS_PADDING ? OSSL_PKEY_RSA_PAD_MODE_PSS : OSSL_PKEY_RSA_PAD_MODE_PKCSV15;
}

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    KS_SIG_CTX *ctx = vctx;
    OSSL_PARAM *p;

    if (ctx == NULL)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID)) != NULL
        && !get_algorithm_id(ctx, p))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, ctx->mdname))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PROPERTIES)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, ctx->propq))
        return 0;
    if (ctx->alg == KS_SIG_ECDSA
        && (p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST_SIZE)) != NULL
        && !OSSL_PARAM_set_size_t(p, ctx->md != NULL ? (size_t)EVP_MD_get_size(ctx->md) : ctx->mdsize))
        return 0;
    if (ctx->alg != KS_SIG_RSA)
        return 1;
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING ? !OSSL_PARAM_set_utf8_string(p, pad_name(ctx->pad))
                                                   : !OSSL_PARAM_set_int(p, ctx->pad))
            return 0;
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL) {
        if (p->data_type == OSSL_PARAM_UTF8_STRING) {
            char num[16];
            const char *s = num;

            switch (ctx->saltlen) {
            case RSA_PSS_SALTLEN_DIGEST: s = "digest"; break;
            case RSA_PSS_SALTLEN_MAX: s = "max"; break;
            case RSA_PSS_SALTLEN_AUTO: s = "auto"; break;
            default: snprintf(num, sizeof(num), "%d", ctx->saltlen); break;
            }
            if (!OSSL_PARAM_set_utf8_string(p, s))
                return 0;
        } else if (!OSSL_PARAM_set_int(p, ctx->saltlen)) {
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, ctx->mgf1 != NULL ? ctx->mgf1name : ctx->mdname))
        return 0;
    return 1;
}

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM rsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ecdsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ecdsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM eddsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM eddsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END
};

#define KS_SIG_COMMON(lc, ALG)                                                          \
    static void *lc##_newctx(void *provctx, const char *propq)                          \
    { return sig_newctx(provctx, propq, ALG); }                                          \
    static const OSSL_PARAM *lc##_gettable_ctx(void *vctx, void *provctx)              \
    { (void)vctx; (void)provctx; return lc##_gettable; }                               \
    static const OSSL_PARAM *lc##_settable_ctx(void *vctx, void *provctx)              \
    { (void)vctx; (void)provctx; return lc##_settable; }

#define KS_SIG_ENTRIES(lc)                                                               \
    { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))lc##_newctx },                        \
    { OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx },                       \
    { OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx },                         \
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init },     \
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))sig_digest_verify_init }, \
    { OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params },         \
    { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))lc##_gettable_ctx },     \
    { OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params },         \
    { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))lc##_settable_ctx }

/* RSA and ECDSA: sign a digest, or hash here and sign the digest. */
#define KS_SIG_HASHED(lc, ALG)                                                           \
    KS_SIG_COMMON(lc, ALG)                                                               \
    const OSSL_DISPATCH ks_##lc##_signature_functions[] = {                              \
        KS_SIG_ENTRIES(lc),                                                              \
        { OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init },                \
        { OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign },                          \
        { OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init },            \
        { OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify },                      \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update },   \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final }, \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))sig_digest_update }, \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))sig_digest_verify_final }, \
        { 0, NULL }                                                                      \
    };

/* EdDSA: one-shot over the whole message only. */
#define KS_SIG_EDDSA(lc, ALG)                                                            \
    KS_SIG_COMMON(lc, ALG)                                                               \
    const OSSL_DISPATCH ks_##lc##_signature_functions[] = {                              \
        KS_SIG_ENTRIES(lc),                                                              \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign },            \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))sig_digest_verify },        \
        { 0, NULL }                                                                      \
    };

#define ed25519_gettable eddsa_gettable
#define ed25519_settable eddsa_settable
#define ed448_gettable eddsa_gettable
#define ed448_settable eddsa_settable

KS_SIG_HASHED(rsa, KS_SIG_RSA)
KS_SIG_HASHED(ecdsa, KS_SIG_ECDSA)
KS_SIG_EDDSA(ed25519, KS_SIG_ED25519)
KS_SIG_EDDSA(ed448, KS_SIG_ED448)
