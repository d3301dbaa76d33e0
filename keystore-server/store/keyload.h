/* Loading many keys at start-up quickly.  OpenSSL 3.0 builds a new decoder
 * (and encoder) chain for every d2i_AutoPrivateKey and i2d_PUBKEY call,
 * about 0.4 ms per EC key, which was most of the start-up time with many
 * keys (docs/performance.md).  A loader keeps one decoder per key type and,
 * for key types whose SubjectPublicKeyInfo is a fixed prefix followed by the
 * encoded public key (EC named curves, EdDSA, X25519/X448), that prefix.
 * Not thread-safe: one loader per loading thread. */
#ifndef KS_KEYLOAD_H
#define KS_KEYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "wire.h"

struct ks_loader;

struct ks_loader *ks_loader_new(void);
void ks_loader_free(struct ks_loader *l);

/* PKCS#8 DER of a key whose file header says type; the same result as
 * ks_pkey_from_der (which it falls back to when its decoder fails): NULL on
 * error, trailing bytes rejected.  l may be NULL (then ks_pkey_from_der). */
EVP_PKEY *ks_loader_decode(struct ks_loader *l, uint32_t type, const uint8_t *der, size_t len);

/* SubjectPublicKeyInfo DER of pkey (type and group as ks_pkey_describe
 * says) in a malloc'd buffer: exactly i2d_PUBKEY's bytes.  l may be NULL.
 * 0 or -1. */
int ks_loader_spki(struct ks_loader *l, EVP_PKEY *pkey, Keystore__KeyType type,
                   const char *group, uint8_t **out, size_t *outlen);

#endif
