/* Loading many keys at start-up quickly.  OpenSSL 3.0 builds a new decoder
 * (and encoder) chain for every d2i_AutoPrivateKey and i2d_PUBKEY call,
 * about 0.4 ms per EC key, which was most of the start-up time with many
 * keys (docs/performance.md).  A loader keeps one decoder per key type.
 * Not thread-safe: one loader per loading thread.
 * For key types whose SubjectPublicKeyInfo is a fixed prefix followed by the
 * encoded public key (EC named curves, EdDSA, X25519/X448) the prefix is
 * learnt once per process (thread-safe), so that the SPKI needs neither an
 * encoder per key nor a copy in memory: it is made again when asked for. */
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

struct ks_spki_prefix;

/* The SubjectPublicKeyInfo DER of pkey (type and group as ks_pkey_describe
 * says), exactly i2d_PUBKEY's bytes, *outlen long: either a prefix (in
 * *prefix, *out NULL) that ks_spki_write completes with pkey's encoded
 * public key, or in a malloc'd buffer (*out, *prefix NULL).  0 or -1. */
int ks_spki_of(EVP_PKEY *pkey, Keystore__KeyType type, const char *group,
               const struct ks_spki_prefix **prefix, uint8_t **out, size_t *outlen);

/* Write the SPKI of a key ks_spki_of gave prefix p for: len bytes.  0, or
 * -1 (out of memory, or len is not that key's). */
int ks_spki_write(const struct ks_spki_prefix *p, EVP_PKEY *pkey, uint8_t *out, size_t len);

#endif
