/* Facts about OpenSSL keys that the store and the operations share. */
#ifndef KS_KEYUTIL_H
#define KS_KEYUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "wire.h"

#define KS_GROUP_MAX 16
#define KS_RSA_MIN_BITS 2048
#define KS_RSA_MAX_BITS 16384   /* bounds the cost of one signature */

/* The supported curves, for messages. */
#define KS_CURVES_TEXT "P-256, P-384, P-521, secp256k1, brainpoolP256r1, brainpoolP384r1 " \
    "or brainpoolP512r1"

/* Map "P-256", "prime256v1", "secp256r1" (any case) and the P-384/P-521
 * equivalents to the NIST name, the other supported curves to OpenSSL's
 * spelling ("brainpoolP256r1"); NULL for anything unsupported. */
const char *ks_canonical_group(const char *name);

/* Classify a key.  Returns 0 if the server supports it, else -1 with why
 * ("EC curve secp256k1 is not supported; use P-256, P-384 or P-521"). */
int ks_pkey_describe(EVP_PKEY *pkey, Keystore__KeyType *type, unsigned *bits,
                     char group[KS_GROUP_MAX], char *why, size_t whylen);

/* Every usage (KS_USAGE_* bits) a key of this type can have: RSA sign and
 * decrypt, RSA-PSS, EC and EdDSA sign. */
uint32_t ks_usage_possible(Keystore__KeyType type);

/* 0 if usage is non-empty and possible for type, else -1 with why
 * ("EC keys can only sign: ..."). */
int ks_usage_check(Keystore__KeyType type, uint32_t usage, char *why, size_t whylen);

/* PKCS#8 PrivateKeyInfo DER in a sodium_malloc'd buffer (caller sodium_frees). */
int ks_pkey_to_pkcs8(EVP_PKEY *pkey, uint8_t **der, size_t *derlen);

/* Parse PKCS#8 (or traditional) DER; rejects trailing bytes.  NULL on error. */
EVP_PKEY *ks_pkey_from_der(const uint8_t *der, size_t derlen);

#endif
