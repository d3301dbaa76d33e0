/* Certificate chains attached to keys (public data). */
#ifndef KS_CERTCHAIN_H
#define KS_CERTCHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keytable.h"

#define KS_MAX_CHAIN 16   /* certificates per key */

/* Check that every element is exactly one DER certificate, that the
 * leaf's public key is pkey and, with check_links, that each certificate
 * was issued by the next (issuer name, key identifiers and key usage by
 * X509_check_issued, and the signature).  The last certificate need not be
 * a root.  Returns 0; -1 if certificate *bad_index does not parse; -2 if
 * the leaf does not match (why names the leaf subject); -3 if certificate
 * *bad_index did not issue the one before it (why names both). */
int ks_cert_chain_check(EVP_PKEY *pkey, const char *key_name,
                        const struct ks_cert *certs, size_t ncerts, int check_links,
                        size_t *bad_index, char *why, size_t whylen);

/* Split concatenated DER certificates (a NAME.crt file).  *certs entries
 * point into buf.  Returns 0 or -1 if buf is not a sequence of certificates. */
int ks_cert_split(const uint8_t *buf, size_t len, struct ks_cert **certs, size_t *ncerts);

#endif
