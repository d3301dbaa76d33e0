/* The master key that seals key files.  It lives in a sodium_malloc page
 * that is inaccessible (PROT_NONE) except during a seal/unseal call. */
#ifndef KS_MASTERKEY_H
#define KS_MASTERKEY_H

#include <stddef.h>
#include <stdint.h>

#include "masterkey_gen.h"

#define KS_SEAL_NONCE_LEN 24   /* crypto_aead_xchacha20poly1305_ietf_NPUBBYTES */
#define KS_SEAL_TAG_LEN 16     /* crypto_aead_xchacha20poly1305_ietf_ABYTES */

/* Read the master key file: regular file, mode without group/other bits,
 * exactly 32 bytes.  Returns 0 or -1 after logging why. */
int ks_master_load(const char *path);
void ks_master_unload(void);

/* ct must hold ptlen + KS_SEAL_TAG_LEN bytes. Returns 0 or -1. */
int ks_master_seal(const uint8_t *pt, size_t ptlen, const uint8_t *ad, size_t adlen,
                   const uint8_t nonce[KS_SEAL_NONCE_LEN], uint8_t *ct);

/* Keep the page readable from hold to release, for the start-up load that
 * unseals every key file (two mprotect calls per file were a fifth of the
 * start-up time with many keys).  Only before any client is served. */
int ks_master_hold(void);
void ks_master_release(void);

/* pt must hold ctlen - KS_SEAL_TAG_LEN bytes.  Returns 0, -1 if the
 * ciphertext does not authenticate (wrong key, tampering, renamed file), or
 * -2 on an internal failure (already logged). */
int ks_master_unseal(const uint8_t *ct, size_t ctlen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[KS_SEAL_NONCE_LEN], uint8_t *pt);

/* Master-key rotation (store/rotate.c): a second key, loaded like the first
 * (same checks), that ks_master_reseal seals to; ks_master_switch makes it
 * the master key and wipes the old one. */
int ks_master_load_next(const char *path);
void ks_master_switch(void);

/* Unseal ct (under the master key, with ad/nonce) and seal the plaintext
 * under the next key with new_ad/new_nonce into out (ctlen bytes).  The
 * plaintext exists only in a sodium_malloc'd buffer, wiped before return.
 * Returns 0, -1 if ct does not authenticate, -2 on an internal failure. */
int ks_master_reseal(const uint8_t *ct, size_t ctlen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[KS_SEAL_NONCE_LEN], const uint8_t *new_ad,
                     size_t new_adlen, const uint8_t new_nonce[KS_SEAL_NONCE_LEN],
                     uint8_t *out);

#endif
