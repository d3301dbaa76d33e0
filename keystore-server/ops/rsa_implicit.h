/* PKCS#1 v1.5 decryption with implicit rejection (Bleichenbacher defence).
 *
 * OpenSSL 3.0 (Debian 12) answers a PKCS#1 v1.5 block with bad padding with an
 * error, which makes any server that relays the answer a Bleichenbacher
 * oracle.  These functions never report bad padding.  A bad block yields a
 * deterministic "synthetic" message derived from the private key and the
 * ciphertext, computed as draft-irtf-cfrg-rsa-guidance ("implicit rejection")
 * describes and as OpenSSL 3.2 implements it, so the same key and ciphertext
 * give the same answer here and in OpenSSL >= 3.2:
 *
 *   EM  = I2OSP(c^d mod n, k)        raw RSA, EVP_PKEY_decrypt + RSA_NO_PADDING
 *                                    (OpenSSL blinds it); only in the server
 *   KDK = HMAC-SHA256(key = SHA-256(I2OSP(d, k)), msg = I2OSP(c, k))
 *   IRPRF(KDK, label, L) = first L bytes of the concatenation over i = 0, 1, ..
 *         of HMAC-SHA256(KDK, I2OSP(i, 2) || label || I2OSP(8 * L, 2))
 *   CL  = IRPRF(KDK, "length", 256), 128 big-endian 16-bit candidates;
 *   AL  = the last candidate, masked to the bit length of k - 10 (as OpenSSL
 *         does), that is <= k - 11; 0 if there is none
 *   AM  = IRPRF(KDK, "message", k)
 *   EM valid: EM[0] = 0x00, EM[1] = 0x02, first zero byte after EM[1] at index
 *   >= 10 (8 bytes of PS at least).  Result: the bytes after that zero if valid,
 *   else the last AL bytes of AM.
 *
 * Constant time (no branch and no memory index depends on secret data):
 *   - the padding check, the real message length and the choice between the
 *     real and the synthetic message and length;
 *   - moving the selected message (which ends at EM[k-1] / AM[k-1]) to the start
 *     of out: a shift by a secret amount done in log2(k) passes over all k - 11
 *     bytes; all k - 11 bytes of out are written (bytes past *outlen zeroed);
 *   - the TLS check (block shape, message length 48) and the
 *     choice between the real premaster and the substitute.
 *   The KDK, CL and AM are computed for every ciphertext, valid or not.
 * Not constant time, and need not be:
 *   - checks of public facts: key type and size, ciphertext length, c >= n,
 *     out capacity, TLS version arguments (these return -1);
 *   - the raw RSA itself is OpenSSL's (constant-time exponentiation, blinded);
 *   - *outlen: the length of the returned message depends on secret data, but
 *     it is the length of what the caller receives, so it is revealed anyway;
 *     the draft accepts this (a synthetic message has a random-looking length).
 *     Callers must not branch on the message content or length in a way that
 *     reveals more (e.g. "is it 48 bytes?").
 *
 * The d-derived secret (I2OSP(d, k), its hash), EM, the KDK and AM live in one
 * OPENSSL_secure_zalloc'd block that is OPENSSL_secure_clear_free'd on every
 * return path.
 *
 * Key separation: decrypting one ciphertext in both modes with the same key
 * gives unrelated substitutes (different IRPRF labels).  Plain PKCS#1 mode on a
 * key used for TLS is in any case a decryption oracle for that key's premasters:
 * access control, not this module, must keep the two apart.
 *
 * Both functions return 0 on success and -1 on a real failure (bad arguments,
 * public size checks, allocation, an OpenSSL failure: OpenSSL's error queue
 * then says which).  A bad PKCS#1 block is never a failure. */
#ifndef KEYSTORE_RSA_IMPLICIT_H
#define KEYSTORE_RSA_IMPLICIT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* Largest modulus accepted, in bytes: IRPRF encodes 8 * k in 16 bits. */
#define KS_RSA_IR_MAX_MODULUS_BYTES 8191
#define KS_RSA_TLS_PREMASTER_LEN 48

/* PKCS#1 v1.5 (RSAES-PKCS1-v1_5) decryption with implicit rejection.
 * priv: an RSA private key (not RSA-PSS); k = EVP_PKEY_get_size(priv), 11..8191.
 * ct, ctlen: 1..k bytes; a shorter ciphertext is left-padded with zeros (as
 *   OpenSSL does); its integer value must be < n.
 * out, outcap: outcap >= k - 11 (the longest possible message); all k - 11
 *   bytes are written.
 * *outlen: the message length, 0..k-11. */
int ks_rsa_pkcs1_decrypt_ir(EVP_PKEY *priv, const uint8_t *ct, size_t ctlen, uint8_t *out,
                            size_t outcap, size_t *outlen);

/* TLS 1.0-1.2 RSA key exchange (the server side of RFC 5246 7.4.7.1), with
 * the construction that section recommends, made deterministic:
 *   good = the block is valid PKCS#1 v1.5 and its message M is 48 bytes
 *   premaster = client_version || (good ? M[2..47] : S[2..47])
 *   S = IRPRF(KDK, "tls premaster", 48)   (KDK as above; keystore's own label)
 * in constant time.  M's version bytes are not checked: a premaster that names
 * another version (a rollback) gets the ClientHello's version instead, so
 * client and server derive different master secrets and the handshake fails
 * at Finished, as a bad block's does.  OpenSSL's RSA_PKCS1_WITH_TLS_PADDING
 * instead treats a wrong version as a bad block and substitutes fresh random
 * bytes; with a deterministic substitute that would be an oracle (ask with two
 * client versions: bytes 2..47 change only if the block is valid and names
 * one of them), so the output here never depends on the version beyond its
 * first two bytes.  For that reason alt_version (libssl's
 * SSL_OP_TLS_ROLLBACK_BUG workaround, a client that put the negotiated
 * version in the premaster) is accepted and ignored: such clients fail the
 * handshake.  Asking twice gives the same answer.
 * client_version: 1..0xffff (the ClientHello version, e.g. 0x0303); alt_version:
 * 0..0xffff, unused.  The key's modulus must be at least 59 bytes (11 + 48). */
int ks_rsa_tls_premaster_decrypt(EVP_PKEY *priv, const uint8_t *ct, size_t ctlen,
                                 unsigned client_version, unsigned alt_version,
                                 uint8_t out[KS_RSA_TLS_PREMASTER_LEN]);

#endif
