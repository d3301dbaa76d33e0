/* Decrypt: RSA OAEP, PKCS#1 v1.5 and the TLS 1.2 premaster mode.
 *
 * Padding-oracle rule: PKCS#1 v1.5 and TLS blocks never fail for their
 * content: a bad block decrypts to a deterministic synthetic message or
 * premaster (implicit rejection, ops/rsa_implicit.c), so an error would tell
 * a conformant block from another.  For OAEP, once the ciphertext has been
 * handed to OpenSSL, every failure produces the same code and text, and
 * nothing about the cause is logged or returned.  Checks on public facts (key
 * type, ciphertext length, parameter names) happen before and may say
 * precisely what is wrong. */
#include "handlers.h"
#include "prepared.h"
#include "rsa_implicit.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "common/log.h"

static void bad_setup(struct ks_op *op, const struct ks_key *k, const char *what)
{
    char reason[256];

    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER, "key %s rejects %s: %s", k->name,
                what, ks_ossl_reason(reason, sizeof(reason)));
}

/* A context for this OAEP request: a copy of the prepared one for its key
 * and digests (the label goes into the copy only), or, if preparing
 * failed, a new one made the same way.  NULL after replying with the error. */
static EVP_PKEY_CTX *oaep_ctx(struct ks_op *op, struct ks_key *k, const Keystore__DecryptRequest *r)
{
    EVP_MD *md, *mgf1 = NULL;
    const EVP_MD *mask;
    EVP_PKEY_CTX *ctx = NULL, *base;
    unsigned char *label;
    const char *failed;

    md = ks_op_fetch_md(op, r->oaep_digest[0] != '\0' ? r->oaep_digest : "SHA1", "OAEP digest");
    if (md == NULL)
        return NULL;
    if (r->mgf1_digest[0] != '\0' && (mgf1 = ks_op_fetch_md(op, r->mgf1_digest, "MGF1 digest")) == NULL)
        goto out;
    mask = mgf1 != NULL ? mgf1 : md;   /* MGF1 follows the OAEP digest unless named */
    if ((base = ks_prep_rsa_oaep(k, md, mask)) != NULL)
        ctx = EVP_PKEY_CTX_dup(base);
    if (ctx == NULL && (failed = ks_rsa_oaep_ctx_new(k->pkey, md, mask, &ctx)) != NULL) {
        bad_setup(op, k, failed);
        goto out;
    }
    if (r->oaep_label.len > 0) {
        /* set0 takes ownership of an OPENSSL_malloc'd copy */
        label = OPENSSL_memdup(r->oaep_label.data, r->oaep_label.len);
        if (label == NULL || r->oaep_label.len > 0x7fffffff
            || EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, (int)r->oaep_label.len) != 1) {
            OPENSSL_free(label);
            bad_setup(op, k, "the OAEP label");
            goto fail;
        }
    }
    goto out;
fail:
    EVP_PKEY_CTX_free(ctx);
    ctx = NULL;
out:
    EVP_MD_free(md);
    EVP_MD_free(mgf1);
    return ctx;
}

/* The public checks of the TLS mode; the decryption is ks_rsa_tls_premaster_decrypt. */
static int check_tls(struct ks_op *op, const Keystore__DecryptRequest *r)
{
    if (r->tls_client_version == 0 || r->tls_client_version > 0xffff
        || r->tls_negotiated_version > 0xffff) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "PADDING_PKCS1_TLS needs tls_client_version (the version in the "
                    "ClientHello, e.g. 0x0303) and versions of at most 0xffff");
        return -1;
    }
    return 0;
}

static void reply_plaintext(struct ks_op *op, uint8_t *pt, size_t len)
{
    Keystore__DecryptResponse *dr = ks_arena_alloc(op->arena, sizeof(*dr));

    if (dr == NULL)
        return;
    keystore__decrypt_response__init(dr);
    dr->plaintext.data = pt;
    dr->plaintext.len = len;
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_DECRYPT;
    op->resp->decrypt = dr;
}

void ks_op_decrypt(struct ks_op *op, const Keystore__DecryptRequest *r)
{
    struct ks_key *k = ks_op_key_version(op, r->key, r->version, 1);
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t *pt;
    size_t ptlen;
    int modlen, rc;

    if (k == NULL)
        return;
    if (k->type != KEYSTORE__KEY_TYPE__KEY_TYPE_RSA) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_WRONG_KEY_TYPE,
                    "key %s is %s: only RSA keys can decrypt%s", k->name, ks_key_type_name(k->type),
                    k->type == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS ?
                    " (RSA-PSS keys are restricted to signatures)" : "");
        goto out;
    }
    modlen = EVP_PKEY_get_size(k->pkey);
    if (modlen <= 0 || r->ciphertext.len != (size_t)modlen) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "ciphertext is %zu bytes but key %s needs exactly %d (its modulus size)",
                    r->ciphertext.len, k->name, modlen);
        goto out;
    }
    pt = ks_arena_alloc(op->arena, (size_t)modlen);   /* wiped with the arena */
    if (pt == NULL)
        goto out;
    ptlen = (size_t)modlen;
    if (r->padding == KEYSTORE__PADDING__PADDING_PKCS1) {
        rc = ks_rsa_pkcs1_decrypt_ir(k->pkey, r->ciphertext.data, r->ciphertext.len, pt, ptlen,
                                     &ptlen);
    } else if (r->padding == KEYSTORE__PADDING__PADDING_PKCS1_TLS) {
        if (check_tls(op, r) != 0)
            goto out;
        rc = ks_rsa_tls_premaster_decrypt(k->pkey, r->ciphertext.data, r->ciphertext.len,
                                          r->tls_client_version, r->tls_negotiated_version, pt);
        ptlen = KS_RSA_TLS_PREMASTER_LEN;
    } else if (r->padding == KEYSTORE__PADDING__PADDING_OAEP) {
        if ((ctx = oaep_ctx(op, k, r)) == NULL)
            goto out;
        rc = EVP_PKEY_decrypt(ctx, pt, &ptlen, r->ciphertext.data, r->ciphertext.len) == 1 ? 0 : -1;
    } else {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "%s cannot be used to decrypt: use PADDING_OAEP, PADDING_PKCS1 or "
                    "PADDING_PKCS1_TLS (the server offers no raw RSA)",
                    ks_padding_name(r->padding));
        goto out;
    }
    /* PKCS#1 / TLS: only for public reasons (c >= n) or an internal failure */
    if (rc != 0) {
        ERR_clear_error();
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_OPERATION_FAILED, "decryption failed");
        goto out;
    }
    reply_plaintext(op, pt, ptlen);
out:
    EVP_PKEY_CTX_free(ctx);
    ks_key_put(k);
}
