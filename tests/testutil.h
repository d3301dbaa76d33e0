/* Small helpers shared by the test and benchmark programs. */
#ifndef KEYSTORE_TESTUTIL_H
#define KEYSTORE_TESTUTIL_H

#include <openssl/evp.h>

/* The first private key OSSL_STORE finds at uri (keystore:NAME, a file...),
 * or NULL with OpenSSL's error queue saying why. */
EVP_PKEY *tu_load_pkey(const char *uri);

/* Sign msg with key (SHA-256; none for EdDSA keys) and verify the result
 * with the same key: 1 signed and verified, 0 the signing call failed,
 * -1 a signature that does not verify (a reply meant for someone else). */
int tu_sign_verify(EVP_PKEY *key, const unsigned char *msg, size_t n);

/* Prints "ok: what" or "FAIL: what" (with the OpenSSL errors) and counts
 * failures in tu_failures. */
extern int tu_failures;
void tu_check(int ok, const char *what);

#endif
