/* Key classification and encoding helpers; see keyutil.h. */
#include "keyutil.h"
#include "keytable.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <sodium.h>

/* The prime curves of at least 256 bits that OpenSSL 3.0's default
 * provider signs and derives with.  Left out on purpose: curves under 256
 * bits (less than 128-bit security), binary curves (sect*, c2*: deprecated,
 * RFC 8422) and the brainpool "t1" twists (no wider use); see
 * docs/openssl-usage.md. */
static const struct {
    const char *nist;
    const char *aliases[2];
} groups[] = {
    { "P-256", { "prime256v1", "secp256r1" } },
    { "P-384", { "secp384r1", NULL } },
    { "P-521", { "secp521r1", NULL } },
    { "secp256k1", { NULL, NULL } },
    { "brainpoolP256r1", { NULL, NULL } },
    { "brainpoolP384r1", { NULL, NULL } },
    { "brainpoolP512r1", { NULL, NULL } },
};

const char *ks_canonical_group(const char *name)
{
    size_t i, j;

    if (name == NULL)
        return NULL;
    for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        if (strcasecmp(name, groups[i].nist) == 0)
            return groups[i].nist;
        for (j = 0; j < 2; j++)
            if (groups[i].aliases[j] != NULL && strcasecmp(name, groups[i].aliases[j]) == 0)
                return groups[i].nist;
    }
    return NULL;
}

int ks_pkey_describe(EVP_PKEY *pkey, Keystore__KeyType *type, unsigned *bits,
                     char group[KS_GROUP_MAX], char *why, size_t whylen)
{
    char gname[64];
    const char *canon;
    int b = EVP_PKEY_get_bits(pkey);

    group[0] = '\0';
    *bits = b > 0 ? (unsigned)b : 0;
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        *type = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA ? KEYSTORE__KEY_TYPE__KEY_TYPE_RSA
                                                           : KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS;
        if (b < KS_RSA_MIN_BITS || b > KS_RSA_MAX_BITS) {
            snprintf(why, whylen, "%d-bit RSA keys are not supported (%d to %d bits)",
                     b, KS_RSA_MIN_BITS, KS_RSA_MAX_BITS);
            return -1;
        }
        return 0;
    case EVP_PKEY_EC:
        *type = KEYSTORE__KEY_TYPE__KEY_TYPE_EC;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           gname, sizeof(gname), NULL) != 1) {
            snprintf(why, whylen, "EC key without a named curve is not supported "
                     "(use " KS_CURVES_TEXT ")");
            return -1;
        }
        canon = ks_canonical_group(gname);
        if (canon == NULL) {
            snprintf(why, whylen, "EC curve %s is not supported; use " KS_CURVES_TEXT, gname);
            return -1;
        }
        snprintf(group, KS_GROUP_MAX, "%s", canon);
        return 0;
    case EVP_PKEY_ED25519:
        *type = KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519;
        return 0;
    case EVP_PKEY_ED448:
        *type = KEYSTORE__KEY_TYPE__KEY_TYPE_ED448;
        return 0;
    case EVP_PKEY_X25519:
        *type = KEYSTORE__KEY_TYPE__KEY_TYPE_X25519;
        return 0;
    case EVP_PKEY_X448:
        *type = KEYSTORE__KEY_TYPE__KEY_TYPE_X448;
        return 0;
    default:
        *type = KEYSTORE__KEY_TYPE__KEY_TYPE_UNSPECIFIED;
        snprintf(why, whylen, "%s keys are not supported (RSA, RSA-PSS, EC, ED25519, ED448, X25519 and X448 are)",
                 EVP_PKEY_get0_type_name(pkey) != NULL ? EVP_PKEY_get0_type_name(pkey) : "these");
        return -1;
    }
}

int ks_pkey_to_pkcs8(EVP_PKEY *pkey, uint8_t **der, size_t *derlen)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
    unsigned char *p;
    int len;

    *der = NULL;
    if (p8 == NULL)
        return -1;
    len = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL);
    if (len <= 0) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        return -1;
    }
    *der = sodium_malloc((size_t)len);
    if (*der == NULL) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        return -1;
    }
    p = *der;
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != len) {
        PKCS8_PRIV_KEY_INFO_free(p8);   /* clears its private octets */
        sodium_free(*der);
        *der = NULL;
        return -1;
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
    *derlen = (size_t)len;
    return 0;
}

EVP_PKEY *ks_pkey_from_der(const uint8_t *der, size_t derlen)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey;

    if (derlen == 0 || derlen > (size_t)0x7fffffff)
        return NULL;
    pkey = d2i_AutoPrivateKey_ex(NULL, &p, (long)derlen, NULL, NULL);
    if (pkey != NULL && (size_t)(p - der) != derlen) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

uint32_t ks_usage_possible(Keystore__KeyType type)
{
    switch (type) {
    case KEYSTORE__KEY_TYPE__KEY_TYPE_RSA:
        return KS_USAGE_SIGN | KS_USAGE_DECRYPT;
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X25519:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X448:
        return KS_USAGE_DERIVE;   /* key agreement only */
    case KEYSTORE__KEY_TYPE__KEY_TYPE_EC:
        return KS_USAGE_SIGN | KS_USAGE_DERIVE;   /* ECDSA and ECDH */
    default:
        return KS_USAGE_SIGN;
    }
}

int ks_usage_check(Keystore__KeyType type, uint32_t usage, char *why, size_t whylen)
{
    uint32_t possible = ks_usage_possible(type);
    char u[KS_USAGE_TEXT_MAX], p[KS_USAGE_TEXT_MAX];

    if (usage == 0) {
        snprintf(why, whylen, "a key needs at least one usage (sign, decrypt, derive)");
        return -1;
    }
    if ((usage & ~possible) != 0) {
        snprintf(why, whylen, "%s keys can only %s, not %s", ks_key_type_name(type),
                 ks_usage_format(possible, p), ks_usage_format(usage & ~possible, u));
        return -1;
    }
    return 0;
}
