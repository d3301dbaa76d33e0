/* Key management: keystore keys hold only a name and a public half.  The
 * public half is delegated to the other provider's key in our child library
 * context; private parameters are refused everywhere. */
#include "key.h"
#include "errors.h"

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <string.h>

static int is_private_param(const char *name)
{
    return strcmp(name, OSSL_PKEY_PARAM_PRIV_KEY) == 0
        || strcmp(name, OSSL_PKEY_PARAM_RSA_D) == 0
        || strncmp(name, "rsa-factor", 10) == 0
        || strncmp(name, "rsa-exponent", 12) == 0
        || strncmp(name, "rsa-coefficient", 15) == 0;
}

static int has_private_params(const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;

    for (p = params; p != NULL && p->key != NULL; p++)
        if (is_private_param(p->key))
            return 1;
    return 0;
}

static void km_free(void *keydata)
{
    ks_key_free(keydata);
}

/* The store hands us the address of its KS_KEY pointer; we take it over. */
static void *km_load(const void *reference, size_t reference_sz, int type)
{
    KS_KEY *k;

    if (reference == NULL || reference_sz != sizeof(k))
        return NULL;
    k = *(KS_KEY **)reference;
    if (k == NULL || k->type != type)
        return NULL;
    *(KS_KEY **)reference = NULL;
    return k;
}

static int km_has(const void *keydata, int selection)
{
    const KS_KEY *k = keydata;
    int ok = 1;

    if (k == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        ok = ok && k->pub != NULL;
    /* bits stays 0 for a parameters-only import */
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        ok = ok && k->pub != NULL && k->bits > 0;
    /* The private half exists, in the server, whenever the key has a name. */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        ok = ok && ks_key_has_private(k);
    return ok;
}

static int km_match(const void *keydata1, const void *keydata2, int selection)
{
    const KS_KEY *a = keydata1, *b = keydata2;

    if (a == NULL || b == NULL || a->type != b->type || a->pub == NULL || b->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return EVP_PKEY_eq(a->pub, b->pub) == 1;
    if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        return EVP_PKEY_parameters_eq(a->pub, b->pub) == 1;
    return 1;
}

static int km_get_params(void *keydata, OSSL_PARAM params[])
{
    KS_KEY *k = keydata;
    OSSL_PARAM *p;

    if (k == NULL || k->pub == NULL)
        return 0;
    for (p = params; p->key != NULL; p++) {
        /* The name tells a program (and genpkey's user) which URI to use. */
        if (strcmp(p->key, KS_PARAM_KEY_NAME) == 0) {
            if (!OSSL_PARAM_set_utf8_string(p, k->name))
                return 0;
            continue;
        }
        if (is_private_param(p->key)) {
            KS_RAISE(k->pc, KS_R_NOT_EXTRACTABLE,
                     "keystore keys are not extractable: '%s' of key '%s' stays in the keystore server",
                     p->key, k->name[0] ? k->name : "(public key)");
            return 0;
        }
    }
    return EVP_PKEY_get_params(k->pub, params);
}

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(KS_PARAM_KEY_NAME, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ec_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_utf8_string(KS_PARAM_KEY_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ecx_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(KS_PARAM_KEY_NAME, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_END
};

/* What import accepts and export produces: public parts only. */
static const OSSL_PARAM rsa_public_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ec_public_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ecx_public_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

/* Imports arrive when OpenSSL compares one of our keys with another
 * provider's (certificate against key): we keep the public half only. */
static int km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    KS_KEY *k = keydata;
    EVP_PKEY_CTX *ctx;
    EVP_PKEY *pkey = NULL;
    int want, ok = 0;

    if (k == NULL || k->pub != NULL)
        return 0;
    if (has_private_params(params)) {
        /* A key with private material belongs to its own provider.  With
         * OSSL_KEYMGMT_SELECT_ALL libcrypto is only probing whether we could
         * take it over for an operation: refusing quietly makes it use the
         * key's own provider instead of a public-only copy here. */
        if (selection != OSSL_KEYMGMT_SELECT_ALL)
            KS_RAISE(k->pc, KS_R_UNSUPPORTED,
                     "keystore keys cannot be created from private key data; put the key in "
                     "the server with 'keystorectl import' (or load the default provider "
                     "before keystore)");
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        want = EVP_PKEY_PUBLIC_KEY;
    else if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
        want = EVP_PKEY_KEY_PARAMETERS;
    else
        return 0;
    ctx = EVP_PKEY_CTX_new_from_name(k->pc->libctx, ks_key_type_name_of(k->type), KS_CHILD_PROPQ);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, want, (OSSL_PARAM *)params) <= 0) {
        KS_RAISE(k->pc, KS_R_INTERNAL, "cannot import a %s public key (is the default provider loaded?)",
                 ks_key_type_name_of(k->type));
        goto out;
    }
    if (want == EVP_PKEY_PUBLIC_KEY) {
        if (!ks_key_set_pub(k, pkey))
            goto out;
    } else {
        k->pub = pkey;
    }
    pkey = NULL;
    ok = 1;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    KS_KEY *k = keydata;
    OSSL_PARAM *params = NULL;
    int ok;

    if (k == NULL || k->pub == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
        /* OSSL_KEYMGMT_SELECT_ALL is libcrypto probing whether another
         * provider could take the key over; it falls back to using ours.
         * An error here would linger in the queue (and confuse
         * SSL_get_error), so that probe fails quietly. */
        if (selection != OSSL_KEYMGMT_SELECT_ALL)
            KS_RAISE(k->pc, KS_R_NOT_EXTRACTABLE,
                     "keystore keys are not extractable: the private half of '%s' stays in the "
                     "keystore server; only the public key can be exported",
                     k->name[0] ? k->name : "(public key)");
        return 0;
    }
    if (EVP_PKEY_todata(k->pub, (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0
                        ? EVP_PKEY_PUBLIC_KEY : EVP_PKEY_KEY_PARAMETERS, &params) <= 0) {
        KS_RAISE(k->pc, KS_R_INTERNAL, "cannot export the public half of a %s key",
                 ks_key_type_name_of(k->type));
        return 0;
    }
    ok = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ok;
}

/* EVP_PKEY_set1_encoded_public_key on a public key of ours: CMS builds the
 * originator's key by copying our key's curve, then setting the point.  The
 * key with a name (its private half in the server) never changes. */
static int km_set_params(void *keydata, const OSSL_PARAM params[])
{
    KS_KEY *k = keydata;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY);
    OSSL_PARAM in[3], *q = in;
    char group[KS_GROUP_MAX];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    const void *octets;
    size_t len;
    int ok = 0;

    if (k == NULL)
        return 0;
    if (p == NULL)
        return 1;
    if (ks_key_has_private(k) || ks_key_is_rsa(k)) {
        KS_RAISE(k->pc, KS_R_UNSUPPORTED, "the public key of keystore key '%s' cannot be replaced",
                 k->name[0] ? k->name : "(RSA public key)");
        return 0;
    }
    if (!OSSL_PARAM_get_octet_string_ptr(p, &octets, &len) || len == 0)
        return 0;
    if (k->type == KS_KEY_EC) {
        if (k->pub == NULL || !EVP_PKEY_get_group_name(k->pub, group, sizeof(group), NULL)) {
            KS_RAISE(k->pc, KS_R_INVALID_PARAMETER, "an EC point needs the key's curve first");
            return 0;
        }
        *q++ = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    }
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)octets, len);
    *q = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(k->pc->libctx, ks_key_type_name_of(k->type), KS_CHILD_PROPQ);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, in) <= 0) {
        KS_RAISE(k->pc, KS_R_INVALID_PARAMETER, "not a valid encoded %s public key",
                 ks_key_type_name_of(k->type));
        goto out;
    }
    if (!ks_key_set_pub(k, pkey))
        goto out;
    pkey = NULL;
    ok = 1;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static const OSSL_PARAM point_settable[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *km_settable(void *provctx)
{
    (void)provctx;
    return point_settable;
}

static void *km_dup(const void *keydata, int selection)
{
    KS_KEY *k = (KS_KEY *)keydata, *c;
    EVP_PKEY *pub;

    if (k == NULL)
        return NULL;
    /* Keys with their private half never change after loading, so a copy
     * can be shared. */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 || k->pub == NULL) {
        ks_key_up_ref(k);
        return k;
    }
    /* A copy of the public half or the parameters only (EVP_PKEY_copy_parameters,
     * as CMS does for the originator's key) is a new key without a name:
     * sharing would hand out the private half and let set_params change it. */
    if ((c = ks_key_new(k->pc, k->type)) == NULL)
        return NULL;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0) {
        if ((pub = EVP_PKEY_dup(k->pub)) == NULL || !ks_key_set_pub(c, pub)) {
            EVP_PKEY_free(pub);
            ks_key_free(c);
            return NULL;
        }
    } else if (!EVP_PKEY_copy_parameters((c->pub = EVP_PKEY_new()), k->pub)) {
        ks_key_free(c);
        return NULL;
    }
    return c;
}

#define KS_KEYMGMT(lc, TYPE, gettable, ptypes, opname, kexname)                            \
    static void *lc##_new(void *provctx) { return ks_key_new(provctx, TYPE); }        \
    static void *lc##_load(const void *ref, size_t sz) { return km_load(ref, sz, TYPE); } \
    static const OSSL_PARAM *lc##_gettable_fn(void *provctx)                             \
    { (void)provctx; return gettable; }                                               \
    static const OSSL_PARAM *lc##_types(int selection)                                \
    { return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) ? NULL : ptypes; }          \
    static void *lc##_gen_init(void *provctx, int selection, const OSSL_PARAM params[])  \
    { return ks_gen_init(provctx, TYPE, selection, params); }                           \
    static const OSSL_PARAM *lc##_gen_settable(void *genctx, void *provctx)              \
    { (void)genctx; (void)provctx; return ks_gen_settable(TYPE); }                      \
    static const char *lc##_opname(int op)                                            \
    { return op == OSSL_OP_SIGNATURE ? opname : op == OSSL_OP_KEYEXCH ? kexname : NULL; } \
    const OSSL_DISPATCH ks_##lc##_keymgmt_functions[] = {                              \
        { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))lc##_new },                           \
        { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free },                           \
        { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))lc##_load },                         \
        { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has },                             \
        { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match },                         \
        { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params },               \
        { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))lc##_gettable_fn },          \
        { OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))km_set_params },               \
        { OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))km_settable },            \
        { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))km_import },                       \
        { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))lc##_types },                \
        { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export },                       \
        { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))lc##_types },                \
        { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))lc##_opname },       \
        { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup },                             \
        { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))lc##_gen_init },                 \
        { OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))ks_gen_set_params },       \
        { OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))lc##_gen_settable },  \
        { OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))ks_gen },                             \
        { OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))ks_gen_cleanup },             \
        { 0, NULL }                                                                    \
    };

KS_KEYMGMT(rsa, KS_KEY_RSA, rsa_gettable, rsa_public_types, "RSA", NULL)
KS_KEYMGMT(rsapss, KS_KEY_RSA_PSS, rsa_gettable, rsa_public_types, "RSA", NULL)
KS_KEYMGMT(ec, KS_KEY_EC, ec_gettable, ec_public_types, "ECDSA", "ECDH")
KS_KEYMGMT(ed25519, KS_KEY_ED25519, ecx_gettable, ecx_public_types, "ED25519", NULL)
KS_KEYMGMT(ed448, KS_KEY_ED448, ecx_gettable, ecx_public_types, "ED448", NULL)
KS_KEYMGMT(x25519, KS_KEY_X25519, ecx_gettable, ecx_public_types, NULL, "X25519")
KS_KEYMGMT(x448, KS_KEY_X448, ecx_gettable, ecx_public_types, NULL, "X448")
