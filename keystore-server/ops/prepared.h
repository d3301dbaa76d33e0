/* Prepared OpenSSL contexts, per worker thread and per key, so that a
 * request does not fetch a digest, create a context and initialise the
 * operation (docs/performance.md: about 3 us of a 20 us P-256 signature).
 *
 * Each thread has its own cache (no locks): at most KS_PREP_MAX contexts,
 * the least recently used evicted.  An entry holds a reference to the key
 * table entry it was made for and is found only by that entry's address,
 * so a request can only ever use a context made from the very key object
 * ks_store_get() gave it: a deleted or replaced key's context is never
 * used.  Whenever the key table changes (ks_store_changes), a thread's
 * cache is emptied at its next request or its next timeout sweep (every
 * 250 ms even when idle), so a deleted key's material does not outlive it
 * by more than that.  Contexts live in the worker's memory, locked like
 * the rest (mlockall). */
#ifndef KS_PREPARED_H
#define KS_PREPARED_H

#include <openssl/evp.h>

#include "store/keytable.h"

#define KS_PREP_MAX 256

/* A digest by name from this thread's cache (fetched once); a new
 * reference the caller frees with EVP_MD_free, NULL if unknown. */
EVP_MD *ks_prep_md(const char *name);

/* ECDSA: a context after EVP_PKEY_sign_init with md set, to pass straight
 * to EVP_PKEY_sign (nothing else about it varies per request).  Borrowed:
 * valid until this thread's next ks_prep_* call.  NULL on failure. */
EVP_PKEY_CTX *ks_prep_ecdsa(struct ks_key *k, const EVP_MD *md);

/* RSA sign: a context after EVP_PKEY_sign_init and nothing else.  A
 * request sets padding, digests and salt length, so it must work on an
 * EVP_PKEY_CTX_dup of it: parameters never carry from one request to the
 * next.  Borrowed as above. */
EVP_PKEY_CTX *ks_prep_rsa_sign(struct ks_key *k);

/* RSA OAEP decryption: a context as ks_rsa_oaep_ctx_new makes it (setting
 * a digest fetches it by name again inside the provider: that, not the RSA
 * key, was the set-up's cost).  A request works on an EVP_PKEY_CTX_dup of
 * it, where it may set a label.  Borrowed as above. */
EVP_PKEY_CTX *ks_prep_rsa_oaep(struct ks_key *k, const EVP_MD *md, const EVP_MD *mgf1);

/* The one set-up of an RSA OAEP decryption context, for the prepared one
 * and for a request's own when preparing failed: in *out a new context
 * after EVP_PKEY_decrypt_init with OAEP padding, OAEP digest md and MGF1
 * digest mgf1 set.  Returns NULL, or on failure (*out NULL, OpenSSL's error
 * queue kept for the reason) the step the key rejected, worded for "key K
 * rejects ...": "decryption", "OAEP padding", "this OAEP digest" or "this
 * MGF1 digest". */
const char *ks_rsa_oaep_ctx_new(EVP_PKEY *pkey, const EVP_MD *md, const EVP_MD *mgf1,
                                EVP_PKEY_CTX **out);

/* The one set-up of a signing context, for the prepared ones and for a
 * request's own when preparing failed: a new EVP_PKEY_CTX after
 * EVP_PKEY_sign_init (RSA, ECDSA), or a new EVP_MD_CTX after
 * EVP_DigestSignInit_ex (EdDSA).  NULL on failure, OpenSSL's error queue
 * kept for the reason. */
EVP_PKEY_CTX *ks_sign_ctx_new(EVP_PKEY *pkey);
EVP_MD_CTX *ks_eddsa_ctx_new(EVP_PKEY *pkey);

/* EdDSA: an EVP_MD_CTX after EVP_DigestSignInit_ex, for EVP_DigestSign
 * (one-shot; it keeps no state between calls).  Borrowed as above. */
EVP_MD_CTX *ks_prep_eddsa(struct ks_key *k);

/* Empty this thread's cache now (after an operation failed on a prepared
 * context, whose state is then unknown). */
void ks_prep_flush(void);

/* Empty this thread's cache if the key table changed since it was last
 * checked (the worker's periodic sweep). */
void ks_prep_sweep(void);

/* Free this thread's cache (thread exit). */
void ks_prep_thread_free(void);

#endif
