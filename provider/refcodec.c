/* Key-reference files: a PEM block "KEYSTORE KEY REFERENCE" around a tiny
 * DER payload, SEQUENCE { UTF8String "keystore:NAME" }.  It names a key in
 * the server and holds no key material, so programs that only take a key
 * *file* (-key, -inkey) can be pointed at a keystore key.
 *
 * Encoder: our keymgmts' private key ("PrivateKeyInfo" as PEM or DER, which
 *   is what PEM_write_bio_PrivateKey and i2d_PrivateKey ask for) -> reference.
 * Decoders, as a chain:
 *   "DER" from PEM: recognises our PEM label and passes the payload on
 *     (like OpenSSL's pem2der, so the file store picks it up too);
 *   key type from DER, structure KeystoreKeyReference: asks the server for
 *     the key and hands out a reference that our keymgmt's load takes.
 * The reference is only ever emitted inside a key decoder chain, where
 * libcrypto resolves it with the keymgmt of our provider. */
#include "key.h"
#include "errors.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#define KS_REF_PEM_LABEL "KEYSTORE KEY REFERENCE"
#define KS_REF_STRUCTURE "KeystoreKeyReference"
/* SEQUENCE, UTF8String: both short-form lengths for names up to 64 chars. */
#define KS_REF_MAX_DER (4 + sizeof(KS_URI_SCHEME) + KS_MAX_KEY_NAME)

/* Encode "keystore:NAME" as DER into out; returns the length or 0. */
static size_t ref_to_der(const char *name, unsigned char out[KS_REF_MAX_DER])
{
    size_t schemelen = strlen(KS_URI_SCHEME), n = strlen(name), ulen = schemelen + n;

    if (n == 0 || n > KS_MAX_KEY_NAME || ulen + 2 > 127)
        return 0;
    out[0] = 0x30;
    out[1] = (unsigned char)(ulen + 2);
    out[2] = 0x0c;
    out[3] = (unsigned char)ulen;
    memcpy(out + 4, KS_URI_SCHEME, schemelen);
    memcpy(out + 4 + schemelen, name, n);
    return ulen + 4;
}

/* Strict inverse of ref_to_der: 1 and the key name, or 0 if it is not ours. */
static int ref_from_der(const unsigned char *der, size_t len, char name[KS_MAX_KEY_NAME + 1])
{
    char uri[KS_REF_MAX_DER + 1], err[KS_ERRLEN];
    size_t ulen;

    if (len < 4 || len > KS_REF_MAX_DER || der[0] != 0x30 || der[1] != len - 2
        || der[2] != 0x0c || der[3] != len - 4)
        return 0;
    ulen = len - 4;
    memcpy(uri, der + 4, ulen);
    uri[ulen] = '\0';
    if (memchr(uri, '\0', ulen) != NULL || strncmp(uri, KS_URI_SCHEME, strlen(KS_URI_SCHEME)) != 0)
        return 0;
    return ks_parse_uri(uri, name, err, sizeof(err));
}

/* ---- encoder ---------------------------------------------------------- */

static void *enc_newctx(void *provctx)
{
    return provctx;
}

static void enc_freectx(void *ctx)
{
    (void)ctx;
}

/* Only whole keys are written as references; public keys keep going to
 * the other provider's SubjectPublicKeyInfo encoders. */
static int enc_does_selection(void *provctx, int selection)
{
    (void)provctx;
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

static int encode_ref(KS_PROVCTX *pc, OSSL_CORE_BIO *cout, const KS_KEY *k, int pem)
{
    unsigned char der[KS_REF_MAX_DER];
    size_t len;
    BIO *out;
    int ok;

    if (k == NULL || !ks_key_has_private(k)) {
        KS_RAISE(pc, KS_R_PUBLIC_ONLY, "only keys held by the keystore server can be written as references");
        return 0;
    }
    if ((len = ref_to_der(k->name, der)) == 0) {
        KS_RAISE(pc, KS_R_INTERNAL, "key name '%s' does not fit a reference", k->name);
        return 0;
    }
    if ((out = BIO_new_from_core_bio(pc->libctx, cout)) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "cannot open the output for the key reference");
        return 0;
    }
    if (pem)
        ok = PEM_write_bio(out, KS_REF_PEM_LABEL, "", der, (long)len) > 0;
    else
        ok = BIO_write(out, der, (int)len) == (int)len;
    if (!ok)
        KS_RAISE(pc, KS_R_INTERNAL, "cannot write the reference to key '%s'", k->name);
    BIO_free(out);
    return ok;
}

static int enc_pem(void *ctx, OSSL_CORE_BIO *cout, const void *obj, const OSSL_PARAM abstract[],
                   int selection, OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    (void)abstract;
    (void)selection;
    (void)cb;
    (void)cbarg; /* a reference is not secret: never encrypted */
    return encode_ref(ctx, cout, obj, 1);
}

static int enc_der(void *ctx, OSSL_CORE_BIO *cout, const void *obj, const OSSL_PARAM abstract[],
                   int selection, OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    (void)abstract;
    (void)selection;
    (void)cb;
    (void)cbarg;
    return encode_ref(ctx, cout, obj, 0);
}

const OSSL_DISPATCH ks_ref_pem_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))enc_does_selection },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))enc_pem },
    { 0, NULL }
};

const OSSL_DISPATCH ks_ref_der_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))enc_does_selection },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))enc_der },
    { 0, NULL }
};

/* Text (openssl pkey -text): the URI, then the public key as the other
 * provider prints it. */
static int enc_text(void *ctx, OSSL_CORE_BIO *cout, const void *obj, const OSSL_PARAM abstract[],
                    int selection, OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    KS_PROVCTX *pc = ctx;
    const KS_KEY *k = obj;
    OSSL_ENCODER_CTX *ectx;
    BIO *out;
    int ok = 0;

    (void)abstract;
    (void)selection;
    (void)cb;
    (void)cbarg;
    if (k == NULL || k->pub == NULL)
        return 0;
    if ((out = BIO_new_from_core_bio(pc->libctx, cout)) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "cannot open the output for the key text");
        return 0;
    }
    if (BIO_printf(out, "keystore key: %s%s (%s, private half in the keystore server)\n",
                   KS_URI_SCHEME, k->name[0] ? k->name : "(public key only)",
                   ks_key_type_name_of(k->type)) <= 0)
        goto out;
    ectx = OSSL_ENCODER_CTX_new_for_pkey(k->pub, OSSL_KEYMGMT_SELECT_PUBLIC_KEY
                                         | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS,
                                         "TEXT", NULL, KS_CHILD_PROPQ);
    ok = ectx != NULL && OSSL_ENCODER_to_bio(ectx, out);
    OSSL_ENCODER_CTX_free(ectx);
out:
    if (!ok)
        KS_RAISE(pc, KS_R_INTERNAL, "cannot print %s key '%s'", ks_key_type_name_of(k->type), k->name);
    BIO_free(out);
    return ok;
}

static int enc_text_does_selection(void *provctx, int selection)
{
    (void)provctx;
    (void)selection;
    return 1;
}

const OSSL_DISPATCH ks_ref_text_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))enc_text_does_selection },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))enc_text },
    { 0, NULL }
};

/* ---- decoders --------------------------------------------------------- */

static int dec_does_selection(void *provctx, int selection)
{
    (void)provctx;
    (void)selection;
    return 1;
}

/* PEM -> DER, for our label only; anything else is left to others. */
static int dec_pem(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb,
                   void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    KS_PROVCTX *pc = ctx;
    char *pem_name = NULL, *pem_header = NULL, name[KS_MAX_KEY_NAME + 1];
    unsigned char *der = NULL;
    long derlen = 0;
    OSSL_PARAM params[5];
    int objtype = OSSL_OBJECT_PKEY, ok = 1;
    KS_KEY *k = NULL;
    BIO *in;

    (void)selection;
    (void)pw_cb;
    (void)pw_cbarg;
    if ((in = BIO_new_from_core_bio(pc->libctx, cin)) == NULL)
        return 0;
    /* Not PEM at all, or another label: not ours, let other decoders try. */
    ERR_set_mark();
    if (PEM_read_bio(in, &pem_name, &pem_header, &der, &derlen) <= 0) {
        ERR_pop_to_mark();
        goto out;
    }
    ERR_clear_last_mark();
    if (strcmp(pem_name, KS_REF_PEM_LABEL) != 0)
        goto out;
    if (pem_header[0] != '\0' || !ref_from_der(der, (size_t)derlen, name)) {
        KS_RAISE(pc, KS_R_BAD_URI, "malformed " KS_REF_PEM_LABEL " block: it should hold only "
                 "a keystore:NAME URI (rewrite it with openssl pkey -in keystore:NAME -out FILE)");
        ok = 0;
        goto out;
    }
    /* Look the key up here: an error from the next stage would be dropped
     * by the store ("unsupported"), this one reaches the user. */
    if ((k = ks_key_fetch(pc, name)) == NULL) {
        ok = 0;
        goto out;
    }
    /* Before libcrypto fetches key managements to decode the payload. */
    ks_prefer_other_providers();
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
                                                 (char *)KS_REF_STRUCTURE, 0);
    params[2] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)ks_key_type_name_of(k->type), 0);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, der, (size_t)derlen);
    params[4] = OSSL_PARAM_construct_end();
    ok = data_cb(params, data_cbarg);
out:
    ks_key_free(k);
    OPENSSL_free(pem_name);
    OPENSSL_free(pem_header);
    OPENSSL_free(der);
    BIO_free(in);
    return ok;
}

/* DER reference -> our key object, by reference, for our keymgmt. */
static int dec_der(void *ctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb,
                   void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    KS_PROVCTX *pc = ctx;
    unsigned char der[KS_REF_MAX_DER + 1];
    char name[KS_MAX_KEY_NAME + 1];
    size_t len = 0;
    OSSL_PARAM params[4];
    int objtype = OSSL_OBJECT_PKEY, ok;
    KS_KEY *k;
    BIO *in;

    (void)selection;
    (void)pw_cb;
    (void)pw_cbarg;
    if ((in = BIO_new_from_core_bio(pc->libctx, cin)) == NULL)
        return 0;
    /* One byte more than a reference can be, to notice longer input. */
    ok = BIO_read_ex(in, der, sizeof(der), &len);
    BIO_free(in);
    if (!ok || !ref_from_der(der, len, name))
        return 1; /* not ours */
    ks_prefer_other_providers();
    if ((k = ks_key_fetch(pc, name)) == NULL)
        return 0; /* the reference is ours but the key is not there: say so */
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                 (char *)ks_key_type_name_of(k->type), 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &k, sizeof(k));
    params[3] = OSSL_PARAM_construct_end();
    ok = data_cb(params, data_cbarg);
    /* Our keymgmt's load takes the key and clears k; otherwise drop it. */
    ks_key_free(k);
    return ok;
}

/* Used only if libcrypto picks another provider's keymgmt: it would get a
 * public key only, which must not pass for the private key it asked for. */
static int dec_export_object(void *ctx, const void *ref, size_t ref_sz, OSSL_CALLBACK *cb, void *cbarg)
{
    (void)ref;
    (void)ref_sz;
    (void)cb;
    (void)cbarg;
    KS_RAISE(ctx, KS_R_NOT_EXTRACTABLE,
             "a keystore key reference can only be used with the keystore provider's keys");
    return 0;
}

static void *dec_newctx(void *provctx)
{
    return provctx;
}

static void dec_freectx(void *ctx)
{
    (void)ctx;
}

const OSSL_DISPATCH ks_ref_pem_decoder_functions[] = {
    { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx },
    { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
    { OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))dec_does_selection },
    { OSSL_FUNC_DECODER_DECODE, (void (*)(void))dec_pem },
    { 0, NULL }
};

const OSSL_DISPATCH ks_ref_der_decoder_functions[] = {
    { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx },
    { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
    { OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))dec_does_selection },
    { OSSL_FUNC_DECODER_DECODE, (void (*)(void))dec_der },
    { OSSL_FUNC_DECODER_EXPORT_OBJECT, (void (*)(void))dec_export_object },
    { 0, NULL }
};
