/* The TCP secure channel: a Noise-IK-like handshake with static X25519 keys
 * on both sides, then XChaCha20-Poly1305 frames with a counter nonce per
 * direction.  Specified, with its security argument, in docs/protocol.md.
 * Shared by keystored, the provider, keystorectl and the tests. */
#ifndef KEYSTORE_SECURE_H
#define KEYSTORE_SECURE_H

#include <stddef.h>
#include <stdint.h>

#define KS_X25519_LEN 32
#define KS_SEC_TAG 16                     /* Poly1305 tag per frame */
#define KS_HS_MAGIC "KSHS\x01\0\0\0"      /* 8 bytes: channel version 1 */
#define KS_HS_MAGIC_LEN 8
/* msg1: magic, client ephemeral, encrypted client static (32+16), tag */
#define KS_HS1_LEN (KS_HS_MAGIC_LEN + 32 + 48 + 16)
/* msg2: status, server ephemeral (zeros unless accepted), tag */
#define KS_HS2_LEN (1 + 32 + 16)
#define KS_PUBKEY_B64_LEN 44              /* base64 of 32 bytes, without NUL */

enum ks_hs_status {
    KS_HS_ACCEPT = 0,           /* authenticated; session keys follow */
    KS_HS_UNKNOWN_CLIENT = 1,   /* authenticated refusal: key not authorized */
    KS_HS_UNDECRYPTABLE = 2,    /* unauthenticated: server could not read msg1 */
    KS_HS_BUSY = 3,             /* authenticated: too many connections for this client */
};

/* Session keys of one side after the handshake. */
struct ks_sec {
    uint8_t tx[32], rx[32];
    uint64_t tx_n, rx_n;        /* frame counters = nonces; never reused */
};

/* Handshake state (chaining key, transcript hash, ephemeral secret...). */
struct ks_hs {
    uint8_t ck[32], h[32], k[32];
    uint8_t e_sk[32], e_pk[32];
    uint8_t rs_pk[32];          /* remote static public key */
    uint8_t s_sk[32];           /* local static secret */
};

void ks_sec_wipe(struct ks_sec *s);
void ks_hs_wipe(struct ks_hs *hs);

/* Client: build msg1 for the server whose static key is server_pk. */
int ks_hs_client_start(struct ks_hs *hs, const uint8_t client_sk[32],
                       const uint8_t server_pk[32], uint8_t msg1[KS_HS1_LEN]);

/* Client: check msg2.  Returns KS_HS_ACCEPT with *out filled, another
 * status (authenticated unless KS_HS_UNDECRYPTABLE), or -1 if msg2 fails
 * authentication (wrong pinned key or tampering).  hs is wiped. */
int ks_hs_client_finish(struct ks_hs *hs, const uint8_t msg2[KS_HS2_LEN], struct ks_sec *out);

/* Server: read msg1.  Returns 0 and the client's static key in client_pk,
 * or -1 (not our key, tampered, or not a handshake; nothing authenticated). */
int ks_hs_server_read(struct ks_hs *hs, const uint8_t server_sk[32], const uint8_t server_pk[32],
                      const uint8_t msg1[KS_HS1_LEN], uint8_t client_pk[32]);

/* Server: answer with status.  KS_HS_ACCEPT fills *out; other statuses are
 * authenticated refusals.  KS_HS_UNDECRYPTABLE needs no state (hs may be
 * unused).  Returns 0 or -1 (randomness or DH failure).  hs is wiped. */
int ks_hs_server_reply(struct ks_hs *hs, int status, uint8_t msg2[KS_HS2_LEN], struct ks_sec *out);

/* Encrypt len bytes of pt into frame: 4-byte BE length (len + 16) then the
 * ciphertext; frame must hold 4 + len + 16 bytes.  AD is the length header. */
int ks_sec_seal(struct ks_sec *s, const uint8_t *pt, size_t len, uint8_t *frame);

/* Decrypt a received frame body (ct, ctlen >= 16) whose header was hdr into
 * pt (ctlen - 16 bytes).  -1 on any failure: the connection must be closed. */
int ks_sec_open(struct ks_sec *s, const uint8_t hdr[4], const uint8_t *ct, size_t ctlen, uint8_t *pt);

/* Public keys as text: base64 (44 characters) or hex (64).  0 or -1. */
int ks_pubkey_parse(const char *text, uint8_t pk[32]);
void ks_pubkey_format(const uint8_t pk[32], char out[KS_PUBKEY_B64_LEN + 1]);

/* Private key files: a comment line, then the base64 secret.  Reading
 * refuses files readable or writable by group or others. */
int ks_keyfile_read(const char *path, uint8_t sk[32], uint8_t pk[32], char *err, size_t errlen);
/* Writes a new key (O_EXCL, mode 0600) and returns its public half. */
int ks_keyfile_generate(const char *path, const char *comment, uint8_t pk[32],
                        char *err, size_t errlen);

#endif
