/* Which message digests a key may sign with.  MD5, SHA-1, MD5-SHA1 (TLS
 * 1.0/1.1's PKCS#1 without DigestInfo) and anything else shorter than 224
 * bits give less than 112 bits of collision resistance: a chosen-prefix
 * collision turns one signature into a signature over another document.
 * They are refused unless the key's name matches `allow_weak_digests`. */
#ifndef KS_DIGEST_POLICY_H
#define KS_DIGEST_POLICY_H

#include <openssl/evp.h>

#include "op.h"

/* 1 if key k may sign with md; otherwise replies ERROR_PERMISSION_DENIED
 * naming the digest, the key and the setting, and returns 0. */
int ks_digest_permitted(struct ks_op *op, const struct ks_key *k, const EVP_MD *md);

#endif
