/* Key generation from OpenSSL (genpkey, EVP_PKEY_keygen): the key is
 * created inside keystored by a GenerateKey request and comes back as a
 * normal keystore key, a name and a public half.  Only parameters the
 * server honours are settable, so nothing is silently ignored.
 *
 *   openssl genpkey -provider default -provider keystore -propquery '?provider=keystore'
 *       -algorithm RSA -pkeyopt keystore-name:web -pkeyopt keystore-usage:sign,decrypt
 *
 * keystore-usage is sign (the default), decrypt or sign,decrypt: fixed for
 * the key's life; a TLS 1.2 server doing RSA key exchange needs sign,decrypt. */
#include "key.h"
#include "client.h"
#include "errors.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    KS_PROVCTX *pc;
    int type;
    int selection;
    char name[KS_MAX_KEY_NAME + 1];   /* "" = choose gen-<hex> */
    unsigned int bits;                /* 0 = server default (2048) */
    char group[KS_GROUP_MAX];         /* "" = server default (P-256) */
    uint32_t usage;                   /* 0 = server default (sign) */
} KS_GEN_CTX;

void ks_gen_cleanup(void *vctx)
{
    free(vctx);
}

static int set_name(KS_GEN_CTX *g, const OSSL_PARAM *p)
{
    const char *s = NULL;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL) {
        KS_RAISE(g->pc, KS_R_INVALID_PARAMETER, "%s must be a string", KS_PARAM_KEY_NAME);
        return 0;
    }
    if (!ks_valid_key_name(s)) {
        KS_RAISE(g->pc, KS_R_INVALID_PARAMETER,
                 "invalid %s '%.80s': use 1-%d characters of A-Z a-z 0-9 . _ - not starting with '.'",
                 KS_PARAM_KEY_NAME, s, KS_MAX_KEY_NAME);
        return 0;
    }
    strcpy(g->name, s);
    return 1;
}

/* The usage is checked against the key type by the server, which knows. */
static int set_usage(KS_GEN_CTX *g, const OSSL_PARAM *p)
{
    const char *s = NULL;
    char err[160];

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL) {
        KS_RAISE(g->pc, KS_R_INVALID_PARAMETER, "%s must be a string", KS_PARAM_KEY_USAGE);
        return 0;
    }
    if (ks_usage_parse(s, &g->usage, err, sizeof(err)) != 0) {
        KS_RAISE(g->pc, KS_R_INVALID_PARAMETER, "%s: %s", KS_PARAM_KEY_USAGE, err);
        return 0;
    }
    return 1;
}

static int set_rsa_params(KS_GEN_CTX *g, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_BITS)) != NULL) {
        size_t bits = 0;

        if (!OSSL_PARAM_get_size_t(p, &bits) || (bits != 2048 && bits != 3072 && bits != 4096)) {
            KS_RAISE(g->pc, KS_R_INVALID_PARAMETER,
                     "the keystore server generates RSA keys of 2048, 3072 or 4096 bits");
            return 0;
        }
        g->bits = (unsigned int)bits;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_PRIMES)) != NULL) {
        size_t primes = 0;

        if (!OSSL_PARAM_get_size_t(p, &primes) || primes != 2) {
            KS_RAISE(g->pc, KS_R_INVALID_PARAMETER,
                     "the keystore server generates two-prime RSA keys only");
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E)) != NULL) {
        BIGNUM *e = NULL;
        int ok = OSSL_PARAM_get_BN(p, &e) && BN_is_word(e, RSA_F4);

        BN_free(e);
        if (!ok) {
            KS_RAISE(g->pc, KS_R_INVALID_PARAMETER,
                     "the keystore server generates RSA keys with public exponent 65537 only");
            return 0;
        }
    }
    /* PSS restrictions would have to be stored with the key; the server
     * makes unrestricted RSA-PSS keys, so say so instead of dropping them. */
    if (OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_DIGEST) != NULL
        || OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_MGF1_DIGEST) != NULL
        || OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_PSS_SALTLEN) != NULL) {
        KS_RAISE(g->pc, KS_R_UNSUPPORTED,
                 "the keystore server generates unrestricted RSA-PSS keys only; for a key with "
                 "PSS parameter restrictions generate it elsewhere and 'keystorectl import' it");
        return 0;
    }
    return 1;
}

int ks_gen_set_params(void *vctx, const OSSL_PARAM params[])
{
    KS_GEN_CTX *g = vctx;
    const OSSL_PARAM *p;

    if (g == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, KS_PARAM_KEY_NAME)) != NULL && !set_name(g, p))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, KS_PARAM_KEY_USAGE)) != NULL && !set_usage(g, p))
        return 0;
    if ((g->type == KS_KEY_RSA || g->type == KS_KEY_RSA_PSS) && !set_rsa_params(g, params))
        return 0;
    if (g->type == KS_KEY_EC
        && (p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL) {
        const char *s = NULL;

        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || s == NULL || strlen(s) >= sizeof(g->group)) {
            KS_RAISE(g->pc, KS_R_INVALID_PARAMETER, "EC group must be a curve name such as P-256");
            return 0;
        }
        strcpy(g->group, s);
    }
    return 1;
}

void *ks_gen_init(KS_PROVCTX *pc, int type, int selection, const OSSL_PARAM params[])
{
    KS_GEN_CTX *g;

    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0) {
        KS_RAISE(pc, KS_R_UNSUPPORTED,
                 "keystore generates key pairs only, not %s parameters on their own",
                 ks_key_type_name_of(type));
        return NULL;
    }
    if ((g = calloc(1, sizeof(*g))) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "out of memory for a key generation context");
        return NULL;
    }
    g->pc = pc;
    g->type = type;
    g->selection = selection;
    if (!ks_gen_set_params(g, params)) {
        free(g);
        return NULL;
    }
    return g;
}

/* No name given: make one up and tell the user, who needs it for the URI. */
static int random_name(KS_GEN_CTX *g)
{
    unsigned char r[8];
    size_t i;

    if (RAND_bytes_ex(g->pc->libctx, r, sizeof(r), 0) != 1) {
        KS_RAISE(g->pc, KS_R_INTERNAL, "cannot draw random bytes for a key name");
        return 0;
    }
    strcpy(g->name, "gen-");
    for (i = 0; i < sizeof(r); i++)
        snprintf(g->name + 4 + 2 * i, 3, "%02x", r[i]);
    (void)fprintf(stderr, "keystore: no -pkeyopt %s given; the new key is named '%s' (URI keystore:%s)\n",
            KS_PARAM_KEY_NAME, g->name, g->name);
    return 1;
}

void *ks_gen(void *vctx, OSSL_CALLBACK *cb, void *cbarg)
{
    KS_GEN_CTX *g = vctx;
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__GenerateKeyRequest gr = KEYSTORE__GENERATE_KEY_REQUEST__INIT;
    Keystore__Response *resp = NULL;
    Keystore__ErrorCode code;
    KS_KEY *k;

    (void)cb;
    (void)cbarg; /* the server gives no progress reports */
    if (g == NULL || (g->name[0] == '\0' && !random_name(g)))
        return NULL;
    gr.name = g->name;
    gr.type = (Keystore__KeyType)g->type;
    gr.bits = g->bits;
    gr.group = g->group;
    gr.usage = g->usage;
    req.body_case = KEYSTORE__REQUEST__BODY_GENERATE_KEY;
    req.generate_key = &gr;
    if (!ks_client_call(g->pc, &req, KEYSTORE__RESPONSE__BODY_KEY, "generate", g->name, &resp,
                        &code)) {
        if (code == KEYSTORE__ERROR_CODE__ERROR_PERMISSION_DENIED)
            KS_RAISE(g->pc, KS_R_PERMISSION_DENIED,
                     "key generation from OpenSSL needs 'allow_client_generate = yes' in the "
                     "keystored configuration (or use 'keystorectl generate %s')", g->name);
        return NULL;
    }
    k = ks_key_from_info(g->pc, g->name, resp->key);
    ks_client_free_response(resp);
    return k;
}

const OSSL_PARAM *ks_gen_settable(int type)
{
    static const OSSL_PARAM rsa[] = {
        OSSL_PARAM_utf8_string(KS_PARAM_KEY_NAME, NULL, 0),
        OSSL_PARAM_utf8_string(KS_PARAM_KEY_USAGE, NULL, 0),
        OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
        OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_PRIMES, NULL),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_END
    };
    /* The restriction parameters are listed so that setting them reaches
     * set_rsa_params and its explanation instead of "not supported". */
    static const OSSL_PARAM rsapss[] = {
        OSSL_PARAM_utf8_string(KS_PARAM_KEY_NAME, NULL, 0),
        OSSL_PARAM_utf8_string(KS_PARAM_KEY_USAGE, NULL, 0),
        OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
        OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_PRIMES, NULL),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_RSA_PSS_SALTLEN, NULL),
        OSSL_PARAM_END
    };
    static const OSSL_PARAM ec[] = {
        OSSL_PARAM_utf8_string(KS_PARAM_KEY_NAME, NULL, 0),
        OSSL_PARAM_utf8_string(KS_PARAM_KEY_USAGE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_END
    };
    static const OSSL_PARAM other[] = {
        OSSL_PARAM_utf8_string(KS_PARAM_KEY_NAME, NULL, 0),
        OSSL_PARAM_utf8_string(KS_PARAM_KEY_USAGE, NULL, 0),
        OSSL_PARAM_END
    };

    switch (type) {
    case KS_KEY_RSA:
        return rsa;
    case KS_KEY_RSA_PSS:
        return rsapss;
    case KS_KEY_EC:
        return ec;
    default:
        return other;
    }
}
