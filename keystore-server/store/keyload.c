/* Fast bulk loading of keys; see keyload.h. */
#include "keyload.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "keyutil.h"

#define NTYPES 8            /* KeyType values 0..7 */
#define MAX_TEMPLATES 16
#define MAX_PREFIX 64       /* the longest is P-521's 26 bytes */
#define MAX_PUB 160         /* P-521 uncompressed: 133 */

/* What precedes the encoded public key in the SPKI of every key of one
 * type, curve and public key length: learnt from the first such key, then
 * kept for the life of the process (key entries point to it) and never
 * changed, so readers need no lock. */
struct ks_spki_prefix {
    Keystore__KeyType type;
    char group[KS_GROUP_MAX];
    size_t publen;
    uint8_t prefix[MAX_PREFIX];
    size_t prefixlen;
};

static struct ks_spki_prefix prefixes[MAX_TEMPLATES];
static size_t nprefixes;
static pthread_mutex_t prefixes_lock = PTHREAD_MUTEX_INITIALIZER;

struct ks_loader {
    OSSL_DECODER_CTX *dec[NTYPES];
    EVP_PKEY *out[NTYPES];              /* where dec[i] puts its result */
};

static const char *const type_names[NTYPES] = {
    [KEYSTORE__KEY_TYPE__KEY_TYPE_RSA] = "RSA",
    [KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS] = "RSA-PSS",
    [KEYSTORE__KEY_TYPE__KEY_TYPE_EC] = "EC",
    [KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519] = "ED25519",
    [KEYSTORE__KEY_TYPE__KEY_TYPE_ED448] = "ED448",
    [KEYSTORE__KEY_TYPE__KEY_TYPE_X25519] = "X25519",
    [KEYSTORE__KEY_TYPE__KEY_TYPE_X448] = "X448",
};

struct ks_loader *ks_loader_new(void)
{
    return calloc(1, sizeof(struct ks_loader));
}

void ks_loader_free(struct ks_loader *l)
{
    size_t i;

    if (l == NULL)
        return;
    for (i = 0; i < NTYPES; i++)
        OSSL_DECODER_CTX_free(l->dec[i]);
    free(l);
}

EVP_PKEY *ks_loader_decode(struct ks_loader *l, uint32_t type, const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    size_t left = len;
    EVP_PKEY *pkey;

    if (l == NULL || type >= NTYPES || type_names[type] == NULL || len == 0)
        return ks_pkey_from_der(der, len);
    if (l->dec[type] == NULL)
        l->dec[type] = OSSL_DECODER_CTX_new_for_pkey(&l->out[type], "DER", "PrivateKeyInfo",
                                                     type_names[type], EVP_PKEY_KEYPAIR,
                                                     NULL, NULL);
    if (l->dec[type] == NULL) {
        ERR_clear_error();
        return ks_pkey_from_der(der, len);
    }
    l->out[type] = NULL;
    if (OSSL_DECODER_from_data(l->dec[type], &p, &left) == 1 && l->out[type] != NULL &&
        left == 0)
        return (pkey = l->out[type], l->out[type] = NULL, pkey);
    /* Anything unusual (a traditional encoding, a damaged key): start over
     * with a fresh decoder next time and let the general path decide. */
    EVP_PKEY_free(l->out[type]);
    l->out[type] = NULL;
    OSSL_DECODER_CTX_free(l->dec[type]);
    l->dec[type] = NULL;
    ERR_clear_error();
    return ks_pkey_from_der(der, len);
}

static int spki_slow(EVP_PKEY *pkey, uint8_t **out, size_t *outlen)
{
    unsigned char *p;
    int len = i2d_PUBKEY(pkey, NULL);

    if (len <= 0 || (*out = malloc((size_t)len)) == NULL)
        return -1;
    p = *out;
    if (i2d_PUBKEY(pkey, &p) != len) {
        free(*out);
        *out = NULL;
        return -1;
    }
    *outlen = (size_t)len;
    return 0;
}

/* Only keys whose SPKI holds nothing key-specific but the public key: EC
 * with a named curve (explicit parameters would be in the prefix), EdDSA,
 * X25519/X448.  RSA's holds modulus and exponent. */
static int has_template_form(EVP_PKEY *pkey, Keystore__KeyType type)
{
    char enc[32];

    switch (type) {
    case KEYSTORE__KEY_TYPE__KEY_TYPE_EC:
        return EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, enc,
                                              sizeof(enc), NULL) == 1 &&
               strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) == 0;
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED448:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X25519:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X448:
        return 1;
    default:
        return 0;
    }
}

/* prefixes_lock held */
static const struct ks_spki_prefix *prefix_find(Keystore__KeyType type, const char *group,
                                                size_t publen)
{
    size_t i;

    for (i = 0; i < nprefixes; i++)
        if (prefixes[i].type == type && prefixes[i].publen == publen &&
            strcmp(prefixes[i].group, group) == 0)
            return &prefixes[i];
    return NULL;
}

/* The first key of its kind: learn the prefix if its SPKI really is
 * prefix || public key (prefixes_lock held).  NULL if not, or if full. */
static const struct ks_spki_prefix *prefix_learn(Keystore__KeyType type, const char *group,
                                                 const uint8_t *pub, size_t publen,
                                                 const uint8_t *spki, size_t spkilen)
{
    struct ks_spki_prefix *p;

    if (nprefixes >= MAX_TEMPLATES || spkilen <= publen || spkilen - publen > MAX_PREFIX ||
        strlen(group) >= KS_GROUP_MAX || memcmp(spki + spkilen - publen, pub, publen) != 0)
        return NULL;
    p = &prefixes[nprefixes];
    p->type = type;
    strcpy(p->group, group);
    p->publen = publen;
    p->prefixlen = spkilen - publen;
    memcpy(p->prefix, spki, p->prefixlen);
    nprefixes++;
    return p;
}

int ks_spki_of(EVP_PKEY *pkey, Keystore__KeyType type, const char *group,
               const struct ks_spki_prefix **prefix, uint8_t **out, size_t *outlen)
{
    uint8_t pub[MAX_PUB];
    size_t publen;
    const struct ks_spki_prefix *p;

    *prefix = NULL;
    *out = NULL;
    if (!has_template_form(pkey, type) ||
        EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
                                        sizeof(pub), &publen) != 1) {
        ERR_clear_error();
        return spki_slow(pkey, out, outlen);
    }
    pthread_mutex_lock(&prefixes_lock);
    p = prefix_find(type, group, publen);
    pthread_mutex_unlock(&prefixes_lock);
    if (p == NULL) {
        if (spki_slow(pkey, out, outlen) != 0)
            return -1;
        pthread_mutex_lock(&prefixes_lock);
        p = prefix_find(type, group, publen);
        if (p == NULL)
            p = prefix_learn(type, group, pub, publen, *out, *outlen);
        pthread_mutex_unlock(&prefixes_lock);
        if (p == NULL)
            return 0;   /* not of that form after all: the caller keeps *out */
        free(*out);
        *out = NULL;
    }
    *prefix = p;
    *outlen = p->prefixlen + publen;
    return 0;
}

int ks_spki_write(const struct ks_spki_prefix *p, EVP_PKEY *pkey, uint8_t *out, size_t len)
{
    size_t publen;

    if (len != p->prefixlen + p->publen)
        return -1;
    memcpy(out, p->prefix, p->prefixlen);
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                        out + p->prefixlen, p->publen, &publen) != 1 ||
        publen != p->publen) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}
