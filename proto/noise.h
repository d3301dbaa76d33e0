/* Noise Protocol Framework (revision 34), exactly one protocol:
 * Noise_IK_25519_ChaChaPoly_BLAKE2b, built on libsodium.
 *
 *   IK:  <- s
 *        ...
 *        -> e, es, s, ss
 *        <- e, ee, se
 *
 * The objects follow the spec's sections 5.1-5.3: a CipherState
 * (struct ks_noise_cipher), a SymmetricState (inside struct ks_noise_hs) and
 * a HandshakeState (struct ks_noise_hs).  Checked against the published test
 * vectors in tests/data/noise/ by tests/noise_vectors.c.
 *
 * Functions returning int return 0 on success and -1 on any failure (the
 * two has_key/complete queries return 1 or 0); a handshake that failed once
 * is wiped and refuses every further call.  Nothing here
 * allocates; all secrets are wiped with sodium_memzero.  sodium_init() must
 * have been called. */
#ifndef KEYSTORE_NOISE_H
#define KEYSTORE_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define KS_NOISE_PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define KS_NOISE_DHLEN 32            /* X25519 keys and shared secrets */
#define KS_NOISE_KEYLEN 32           /* ChaCha20-Poly1305 key */
#define KS_NOISE_TAGLEN 16           /* Poly1305 tag */
#define KS_NOISE_HASHLEN 64          /* BLAKE2b-512 */
#define KS_NOISE_BLOCKLEN 128        /* BLAKE2b block, for HMAC */
#define KS_NOISE_MAX_MSG 65535       /* spec section 3: any Noise message */
#define KS_NOISE_MAX_PROLOGUE 65535  /* our own bound; the spec sets none */

/* Fixed bytes around the payload in the two handshake messages. */
#define KS_NOISE_IK_MSG1_OVERHEAD (KS_NOISE_DHLEN + KS_NOISE_DHLEN + 2 * KS_NOISE_TAGLEN) /* 96 */
#define KS_NOISE_IK_MSG2_OVERHEAD (KS_NOISE_DHLEN + KS_NOISE_TAGLEN)                      /* 48 */
#define KS_NOISE_IK_MAX_PAYLOAD1 (KS_NOISE_MAX_MSG - KS_NOISE_IK_MSG1_OVERHEAD)
#define KS_NOISE_IK_MAX_PAYLOAD2 (KS_NOISE_MAX_MSG - KS_NOISE_IK_MSG2_OVERHEAD)
/* Largest plaintext of one transport message (ciphertext = plaintext + tag). */
#define KS_NOISE_MAX_PLAINTEXT (KS_NOISE_MAX_MSG - KS_NOISE_TAGLEN)

/* CipherState: key k (empty until has_key) and nonce counter n. */
struct ks_noise_cipher {
    uint8_t k[KS_NOISE_KEYLEN];
    uint64_t n;
    int has_key;
};

enum ks_noise_role {
    KS_NOISE_INITIATOR = 1,
    KS_NOISE_RESPONDER = 2,
};

/* HandshakeState for IK, with its SymmetricState (ck, h, cs).  Opaque to
 * callers: use the functions below. */
struct ks_noise_hs {
    struct ks_noise_cipher cs;
    uint8_t ck[KS_NOISE_HASHLEN];
    uint8_t h[KS_NOISE_HASHLEN];
    uint8_t s_sk[KS_NOISE_DHLEN], s_pk[KS_NOISE_DHLEN];   /* local static */
    uint8_t e_sk[KS_NOISE_DHLEN], e_pk[KS_NOISE_DHLEN];   /* local ephemeral */
    uint8_t rs[KS_NOISE_DHLEN];                           /* remote static */
    uint8_t re[KS_NOISE_DHLEN];                           /* remote ephemeral */
    int has_e, has_rs;
    int role;
    int step;   /* next message: 0 = msg1, 1 = msg2, 2 = complete, -1 = unusable */
};

/* ---- CipherState (spec 5.1) ------------------------------------------ */

/* InitializeKey(key): n = 0.  key NULL empties the key (has_key = 0). */
void ks_noise_cipher_init(struct ks_noise_cipher *cs, const uint8_t *key);
int ks_noise_cipher_has_key(const struct ks_noise_cipher *cs);
/* SetNonce(n), for a transport that carries explicit counters. */
void ks_noise_cipher_set_nonce(struct ks_noise_cipher *cs, uint64_t n);

/* EncryptWithAd: out = ChaCha20-Poly1305(k, n, ad, pt) (ptlen + 16 bytes),
 * then n++.  With no key, out = pt (ptlen bytes).  Fails if outcap is too
 * small, the message would exceed KS_NOISE_MAX_MSG, or n has reached
 * 2^64-1 (reserved for rekey).  out may equal pt (in place). */
int ks_noise_encrypt_with_ad(struct ks_noise_cipher *cs, const uint8_t *ad, size_t adlen,
                             const uint8_t *pt, size_t ptlen,
                             uint8_t *out, size_t outcap, size_t *outlen);

/* DecryptWithAd: the inverse; n++ only when the tag verifies.  out may
 * equal ct (in place).  On failure out holds nothing usable. */
int ks_noise_decrypt_with_ad(struct ks_noise_cipher *cs, const uint8_t *ad, size_t adlen,
                             const uint8_t *ct, size_t ctlen,
                             uint8_t *out, size_t outcap, size_t *outlen);

/* Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero bytes);
 * n is unchanged (spec 4.2, 5.1, 11.3).  Both sides must rekey at the same
 * point of their message streams. */
int ks_noise_rekey(struct ks_noise_cipher *cs);

void ks_noise_cipher_wipe(struct ks_noise_cipher *cs);

/* ---- HandshakeState for IK (spec 5.3) ---------------------------------- */

/* Initialize(IK, role, prologue, s, rs).  s_sk is our static X25519 secret
 * (its public half is derived).  The initiator must pass the responder's
 * static public key rs_pk (pre-message "<- s"); the responder passes NULL
 * and learns the initiator's static from message 1. */
int ks_noise_ik_init(struct ks_noise_hs *hs, enum ks_noise_role role,
                     const uint8_t *prologue, size_t prologue_len,
                     const uint8_t s_sk[KS_NOISE_DHLEN], const uint8_t *rs_pk);

/* Tests only: use e_sk as our ephemeral secret instead of a fresh random
 * one.  Allowed before the message that sends "e".  Never in production:
 * a reused ephemeral breaks forward secrecy and identity hiding. */
int ks_noise_ik_set_ephemeral_for_test(struct ks_noise_hs *hs, const uint8_t e_sk[KS_NOISE_DHLEN]);

/* WriteMessage: the next handshake message (initiator: msg1, responder:
 * msg2) carrying payload (encrypted: every IK payload is), into msg.
 * *msglen = payload_len + KS_NOISE_IK_MSG1_OVERHEAD or ..._MSG2_OVERHEAD. */
int ks_noise_ik_write_message(struct ks_noise_hs *hs, const uint8_t *payload, size_t payload_len,
                              uint8_t *msg, size_t msgcap, size_t *msglen);

/* ReadMessage: process the peer's handshake message and decrypt its payload
 * into payload (msglen - overhead bytes; must not overlap msg).  Any
 * failure (bad length, tag, low-order key) wipes hs. */
int ks_noise_ik_read_message(struct ks_noise_hs *hs, const uint8_t *msg, size_t msglen,
                             uint8_t *payload, size_t payloadcap, size_t *payload_len);

/* The peer's static public key: the responder has it once message 1 was
 * read (to look it up before answering), the initiator from the start. */
int ks_noise_ik_remote_static(const struct ks_noise_hs *hs, uint8_t rs[KS_NOISE_DHLEN]);

/* 1 once both messages are written/read, else 0. */
int ks_noise_ik_complete(const struct ks_noise_hs *hs);

/* GetHandshakeHash: h, once the handshake is complete (channel binding). */
int ks_noise_ik_handshake_hash(const struct ks_noise_hs *hs, uint8_t h[KS_NOISE_HASHLEN]);

/* Split(): the transport CipherStates for our role (the initiator sends
 * with the first, the responder with the second).  handshake_hash, if not
 * NULL, receives h.  hs is wiped afterwards, complete or not. */
int ks_noise_ik_split(struct ks_noise_hs *hs, struct ks_noise_cipher *send,
                      struct ks_noise_cipher *recv, uint8_t *handshake_hash);

void ks_noise_hs_wipe(struct ks_noise_hs *hs);

#endif
