/* Key management: GenerateKey, ImportKey, DeleteKey, AttachCert.
 * Permission checks happen in dispatch.c before these run. */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "acl.h"
#include "admin.h"
#include "common/log.h"
#include "store/certchain.h"
#include "usage.h"

static int check_new_name(struct ks_op *op, const char *name)
{
    struct ks_key *k;

    if (!ks_valid_key_name(name)) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "'%s' is not a valid key name: use 1-%d characters of A-Z a-z 0-9 . _ - "
                    "not starting with '.'", name, KS_MAX_KEY_NAME);
        return -1;
    }
    if (ks_key_name_reserved(name)) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "'%s' ends in .vN, which names key versions (NAME.vN.key is version N of "
                    "key NAME): choose another name", name);
        return -1;
    }
    k = ks_store_get(name);
    if (k != NULL) {
        ks_key_put(k);
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_KEY_EXISTS,
                    "a key named '%s' already exists (delete it first)", name);
        return -1;
    }
    return 0;
}

void ks_op_catalogue_error(struct ks_op *op, enum ks_store_status st, const char *err)
{
    if (st == KS_STORE_CONFLICT) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_CATALOGUE_CONFLICT, "%s", err);
        return;
    }
    ks_log("error: %s", err);
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_CATALOGUE_UNAVAILABLE,
                "the key catalogue did not take the change, so nothing changed: %s", err);
}

/* Store pkey under name and reply KeyInfo; frees pkey in every case. */
static void store_and_reply(struct ks_op *op, const char *name, EVP_PKEY *pkey, uint32_t usage,
                            const char *how)
{
    char err[512], u[KS_USAGE_TEXT_MAX];
    struct ks_key *k = NULL;
    enum ks_store_status st = ks_store_add(name, pkey, usage, &k, err, sizeof(err));

    switch (st) {
    case KS_STORE_OK:
        ks_log("conn %lu uid %u pid %d: %s key %s (%s%s%s, usage %s)", op->s->id,
               (unsigned)op->s->uid, (int)op->s->pid, how, k->name, ks_key_type_name(k->type),
               k->group[0] != '\0' ? " " : "", k->group, ks_usage_format(k->usage, u));
        ks_acl_log_key(k);
        ks_op_reply_key(op, k);
        ks_key_put(k);
        return;   /* the store owns pkey now */
    case KS_STORE_EXISTS:
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_KEY_EXISTS, "%s (delete it first)", err);
        break;
    case KS_STORE_UNAVAILABLE:
    case KS_STORE_CONFLICT:
        ks_op_catalogue_error(op, st, err);
        break;
    default:
        ks_log("error: %s", err);
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_INTERNAL,
                    "the server could not store key %s; its log says why", name);
        break;
    }
    EVP_PKEY_free(pkey);
}

/* Parameters for GenerateKey; returns 0 or replies with an error. */
static int gen_params(struct ks_op *op, const Keystore__GenerateKeyRequest *r,
                      const char **alg, unsigned *bits, const char **group)
{
    *bits = 0;
    *group = NULL;
    switch (r->type) {
    case KEYSTORE__KEY_TYPE__KEY_TYPE_RSA:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS:
        *alg = r->type == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA ? "RSA" : "RSA-PSS";
        *bits = r->bits != 0 ? r->bits : 2048;
        if (*bits < KS_RSA_MIN_BITS) {
            ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                        "%u-bit RSA keys are too weak: use 2048, 3072 or 4096 bits", *bits);
            return -1;
        }
        if (*bits != 2048 && *bits != 3072 && *bits != 4096) {
            ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                        "%u bits is not supported: use 2048, 3072 or 4096", *bits);
            return -1;
        }
        if (r->group[0] != '\0')
            goto no_group;
        return 0;
    case KEYSTORE__KEY_TYPE__KEY_TYPE_EC:
        *alg = "EC";
        *group = ks_canonical_group(r->group[0] != '\0' ? r->group : "P-256");
        if (*group == NULL) {
            ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                        "EC curve '%s' is not supported: use " KS_CURVES_TEXT, r->group);
            return -1;
        }
        if (r->bits != 0)
            goto no_bits;
        return 0;
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED448:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X25519:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X448:
        *alg = ks_key_type_name(r->type);
        if (r->group[0] != '\0')
            goto no_group;
        if (r->bits != 0)
            goto no_bits;
        return 0;
    default:
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "key type %d is not supported: use RSA, RSA-PSS, EC, ED25519, ED448, X25519 or X448",
                    (int)r->type);
        return -1;
    }
no_group:
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                "a curve (group '%s') only applies to EC keys", r->group);
    return -1;
no_bits:
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                "a bit size (%u) only applies to RSA and RSA-PSS keys", r->bits);
    return -1;
}

EVP_PKEY *ks_op_keygen(struct ks_op *op, const Keystore__GenerateKeyRequest *r,
                       uint32_t *usage)
{
    const char *alg, *group;
    char reason[256];
    EVP_PKEY_CTX *ctx;
    EVP_PKEY *pkey = NULL;
    unsigned bits;
    int ok;

    if (gen_params(op, r, &alg, &bits, &group) != 0 ||
        ks_usage_for_new_key(op, r->type, r->usage, usage) != 0)
        return NULL;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1;
    if (ok && bits != 0)
        ok = EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1;
    if (ok && group != NULL)
        ok = EVP_PKEY_CTX_set_group_name(ctx, group) == 1;
    if (ok)
        ok = EVP_PKEY_generate(ctx, &pkey) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_OPERATION_FAILED,
                    "generating a %s key failed: %s", alg, ks_ossl_reason(reason, sizeof(reason)));
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

void ks_op_generate(struct ks_op *op, const Keystore__GenerateKeyRequest *r)
{
    EVP_PKEY *pkey;
    uint32_t usage;

    if (check_new_name(op, r->name) != 0 || (pkey = ks_op_keygen(op, r, &usage)) == NULL)
        return;
    store_and_reply(op, r->name, pkey, usage, "generated");
}

void ks_op_import(struct ks_op *op, const Keystore__ImportKeyRequest *r)
{
    Keystore__KeyType type;
    char why[256], group[KS_GROUP_MAX];
    EVP_PKEY *pkey;
    unsigned bits;
    uint32_t usage;

    if (check_new_name(op, r->name) != 0)
        return;
    if (r->private_key_der.len == 0) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER, "private_key_der is empty");
        return;
    }
    pkey = ks_pkey_from_der(r->private_key_der.data, r->private_key_der.len);
    if (pkey == NULL) {
        ERR_clear_error();
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "private_key_der is not a DER PKCS#8 private key");
        return;
    }
    if (ks_pkey_describe(pkey, &type, &bits, group, why, sizeof(why)) != 0) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER, "cannot import key %s: %s",
                    r->name, why);
        EVP_PKEY_free(pkey);
        return;
    }
    if (ks_usage_for_new_key(op, type, r->usage, &usage) != 0) {
        EVP_PKEY_free(pkey);
        return;
    }
    store_and_reply(op, r->name, pkey, usage, "imported");
}

void ks_op_delete(struct ks_op *op, const Keystore__DeleteKeyRequest *r)
{
    Keystore__Empty *e;
    char err[512];
    enum ks_store_status st;

    if (!ks_valid_key_name(r->name)) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST, "'%s' is not a valid key name",
                    r->name);
        return;
    }
    st = ks_store_delete(r->name, err, sizeof(err));
    if (st == KS_STORE_NO_SUCH_KEY) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY, "%s", err);
        return;
    }
    if (st == KS_STORE_UNAVAILABLE || st == KS_STORE_CONFLICT) {
        ks_op_catalogue_error(op, st, err);
        return;
    }
    if (st != KS_STORE_OK) {
        ks_log("error: %s", err);
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_INTERNAL,
                    "the server could not delete key %s; its log says why", r->name);
        return;
    }
    ks_log("conn %lu uid %u pid %d: deleted key %s", op->s->id, (unsigned)op->s->uid,
           (int)op->s->pid, r->name);
    e = ks_arena_alloc(op->arena, sizeof(*e));
    if (e == NULL)
        return;
    keystore__empty__init(e);
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_DELETED;
    op->resp->deleted = e;
}

void ks_op_attach_cert(struct ks_op *op, const Keystore__AttachCertRequest *r)
{
    struct ks_cert certs[KS_MAX_CHAIN];
    struct ks_key *k, *nk = NULL, *head;
    char why[512], err[512];
    size_t i, bad;
    enum ks_store_status st;
    int rc;

    if (r->n_cert_chain_der > KS_MAX_CHAIN) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_TOO_LARGE,
                    "a chain of %zu certificates is longer than the limit of %d",
                    r->n_cert_chain_der, KS_MAX_CHAIN);
        return;
    }
    k = ks_op_key_version(op, r->name, r->version, 1);
    if (k == NULL)
        return;
    for (i = 0; i < r->n_cert_chain_der; i++) {
        certs[i].der = r->cert_chain_der[i].data;
        certs[i].len = r->cert_chain_der[i].len;
    }
    rc = ks_cert_chain_check(k->pkey, k->name, certs, r->n_cert_chain_der, !r->no_chain_check,
                             &bad, why, sizeof(why));
    ERR_clear_error();
    if (rc != 0) {
        ks_op_error(op, rc == -1 ? KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER
                                 : KEYSTORE__ERROR_CODE__ERROR_CERT_MISMATCH, "%s%s", why,
                    rc == -3 ? " (keystorectl attach-cert --no-chain-check skips this check)" : "");
        goto out;
    }
    st = ks_store_set_certs(k, certs, r->n_cert_chain_der, &nk, err, sizeof(err));
    if (st == KS_STORE_NO_SUCH_KEY) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY, "%s", err);
        goto out;
    }
    if (st == KS_STORE_UNAVAILABLE || st == KS_STORE_CONFLICT) {
        ks_op_catalogue_error(op, st, err);
        goto out;
    }
    if (st != KS_STORE_OK) {
        ks_log("error: %s", err);
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_INTERNAL,
                    "the server could not store the certificates of key %s; its log says why",
                    r->name);
        goto out;
    }
    ks_log("conn %lu uid %u pid %d: %s %zu certificate%s for key %s version %u", op->s->id,
           (unsigned)op->s->uid, (int)op->s->pid, r->n_cert_chain_der > 0 ? "attached" : "removed",
           r->n_cert_chain_der, r->n_cert_chain_der == 1 ? "" : "s", r->name,
           (unsigned)nk->version);
    head = ks_store_current_of(nk);
    ks_op_reply_key_of(op, nk, head);
    ks_key_put(head);
    ks_key_put(nk);
out:
    ks_key_put(k);
}
