/* Key objects: created from the server's KeyInfo, or from public parameters
 * imported from another provider (for comparisons). */
#include "key.h"
#include "client.h"
#include "errors.h"

#include <openssl/decoder.h>
#include <openssl/provider.h>
#include <stdlib.h>
#include <string.h>

const char *ks_key_type_name_of(int type)
{
    switch (type) {
    case KS_KEY_RSA: return "RSA";
    case KS_KEY_RSA_PSS: return "RSA-PSS";
    case KS_KEY_EC: return "EC";
    case KS_KEY_ED25519: return "ED25519";
    case KS_KEY_ED448: return "ED448";
    case KS_KEY_X25519: return "X25519";
    case KS_KEY_X448: return "X448";
    default: return NULL;
    }
}

KS_KEY *ks_key_new(KS_PROVCTX *pc, int type)
{
    KS_KEY *k;

    if (ks_key_type_name_of(type) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "unknown key type %d", type);
        return NULL;
    }
    if ((k = calloc(1, sizeof(*k))) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "out of memory for a key object");
        return NULL;
    }
    k->pc = pc;
    k->refs = 1;
    k->type = type;
    k->origin = -1;
    return k;
}

int ks_key_up_ref(KS_KEY *k)
{
    __atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
    return 1;
}

void ks_key_free(KS_KEY *k)
{
    size_t i;

    if (k == NULL || __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    EVP_PKEY_free(k->pub);
    free(k->pub_der);
    for (i = 0; i < k->ncerts; i++)
        free(k->certs[i]);
    free(k);
}

int ks_key_set_pub(KS_KEY *k, EVP_PKEY *pub)
{
    const char *tname = ks_key_type_name_of(k->type);
    size_t glen = 0;

    if (!EVP_PKEY_is_a(pub, tname)) {
        KS_RAISE(k->pc, KS_R_WRONG_KEY_TYPE, "public key is not of type %s", tname);
        return 0;
    }
    k->bits = EVP_PKEY_get_bits(pub);
    k->security_bits = EVP_PKEY_get_security_bits(pub);
    k->max_size = EVP_PKEY_get_size(pub);
    if (k->bits <= 0 || k->max_size <= 0) {
        KS_RAISE(k->pc, KS_R_INTERNAL, "cannot read the size of the %s public key", tname);
        return 0;
    }
    k->group[0] = '\0';
    if (k->type == KS_KEY_EC
        && !EVP_PKEY_get_group_name(pub, k->group, sizeof(k->group), &glen)) {
        KS_RAISE(k->pc, KS_R_INTERNAL, "cannot read the curve of the EC public key");
        return 0;
    }
    EVP_PKEY_free(k->pub);
    k->pub = pub;
    return 1;
}

static EVP_PKEY *decode_spki(KS_PROVCTX *pc, const char *tname, const char *keyname,
                             const unsigned char *der, size_t derlen)
{
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY *pkey = NULL;
    const unsigned char *p = der;
    size_t left = derlen;

    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "DER", "SubjectPublicKeyInfo", tname,
                                         EVP_PKEY_PUBLIC_KEY, pc->libctx, KS_CHILD_PROPQ);
    if (dctx == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL,
                 "no decoder for %s public keys (is the default provider loaded?)", tname);
        return NULL;
    }
    if (OSSL_DECODER_CTX_get_num_decoders(dctx) == 0
        || !OSSL_PROVIDER_available(pc->libctx, "default")) {
        /* The public half lives in the default provider's keymgmt: without
         * it nothing can decode it, and the server is not to blame. */
        KS_RAISE(pc, KS_R_NEEDS_DEFAULT_PROVIDER,
                 "cannot use key '%s': the default provider is not loaded; the keystore provider "
                 "needs it for public keys (use -provider default -provider keystore, or activate "
                 "both in openssl.cnf, default listed first)", keyname);
        OSSL_DECODER_CTX_free(dctx);
        return NULL;
    }
    if (!OSSL_DECODER_from_data(dctx, &p, &left) || pkey == NULL) {
        KS_RAISE(pc, KS_R_PROTOCOL, "keystore server sent an undecodable %s public key for '%s'",
                 tname, keyname);
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

KS_KEY *ks_key_from_info(KS_PROVCTX *pc, const char *name, const Keystore__KeyInfo *info)
{
    const char *tname;
    KS_KEY *k = NULL;
    EVP_PKEY *pub;
    size_t i;

    if (info == NULL || (tname = ks_key_type_name_of(info->type)) == NULL
        || info->public_key_der.len == 0) {
        KS_RAISE(pc, KS_R_PROTOCOL, "keystore server at %s sent an incomplete description of key '%s'",
                 pc->server, name);
        return NULL;
    }
    if (info->n_cert_chain_der > KS_MAX_CERTS) {
        KS_RAISE(pc, KS_R_PROTOCOL, "key '%s' has %zu certificates; at most %d are supported",
                 name, info->n_cert_chain_der, KS_MAX_CERTS);
        return NULL;
    }
    if ((k = ks_key_new(pc, info->type)) == NULL)
        return NULL;
    strcpy(k->name, name); /* length checked by ks_valid_key_name */
    k->version = info->version;
    /* the server that just answered this thread: the key's own */
    k->origin = ks_client_server(pc);
    if ((k->pub_der = malloc(info->public_key_der.len)) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "out of memory for the public key of '%s'", name);
        goto err;
    }
    memcpy(k->pub_der, info->public_key_der.data, info->public_key_der.len);
    k->pub_der_len = info->public_key_der.len;
    pub = decode_spki(pc, tname, name, info->public_key_der.data, info->public_key_der.len);
    if (pub == NULL)
        goto err;
    if (!ks_key_set_pub(k, pub)) {
        EVP_PKEY_free(pub);
        goto err;
    }
    for (i = 0; i < info->n_cert_chain_der; i++) {
        const ProtobufCBinaryData *c = &info->cert_chain_der[i];

        if (c->len == 0)
            continue;
        if ((k->certs[k->ncerts] = malloc(c->len)) == NULL) {
            KS_RAISE(pc, KS_R_INTERNAL, "out of memory for the certificates of key '%s'", name);
            goto err;
        }
        memcpy(k->certs[k->ncerts], c->data, c->len);
        k->certlens[k->ncerts++] = c->len;
    }
    return k;
err:
    ks_key_free(k);
    return NULL;
}

KS_KEY *ks_key_fetch(KS_PROVCTX *pc, const char *name)
{
    return ks_key_fetch_version(pc, name, 0);
}

KS_KEY *ks_key_fetch_version(KS_PROVCTX *pc, const char *name, uint32_t version)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__GetKeyRequest gk = KEYSTORE__GET_KEY_REQUEST__INIT;
    Keystore__Response *resp = NULL;
    KS_KEY *k;

    if (!ks_valid_key_name(name)) {
        KS_RAISE(pc, KS_R_BAD_URI, "invalid keystore key name '%.80s'", name);
        return NULL;
    }
    gk.name = (char *)name;
    gk.version = version;
    req.body_case = KEYSTORE__REQUEST__BODY_GET_KEY;
    req.get_key = &gk;
    if (!ks_client_call(pc, &req, KEYSTORE__RESPONSE__BODY_KEY, "load", name, &resp, NULL))
        return NULL;
    k = ks_key_from_info(pc, name, resp->key);
    ks_client_free_response(resp);
    return k;
}
