/* The TCP secure channel, version 2: exactly Noise_IK_25519_ChaChaPoly_BLAKE2b
 * (proto/noise.c) with a fixed prologue, a TAI64N timestamp as message 1's
 * payload, a status as message 2's, then Noise transport messages in
 * length-prefixed frames with in-band rekeying.  Specified, with its
 * security argument, in docs/protocol.md.  Shared by keystored, the
 * provider, keystorectl and the tests. */
#ifndef KEYSTORE_SECURE_H
#define KEYSTORE_SECURE_H

#include <stddef.h>
#include <stdint.h>

#include "noise.h"
#include "wire.h"

#define KS_X25519_LEN 32
#define KS_SEC_TAG KS_NOISE_TAGLEN        /* Poly1305 tag per frame */
/* Sent in clear before message 1 and used as the Noise prologue, so both
 * sides' transcripts bind the channel version. */
#define KS_HS_MAGIC "KSHS\x02\0\0\0"      /* 8 bytes: channel version 2 */
#define KS_HS_MAGIC_LEN 8
#define KS_TAI64N_LEN 12
/* frame 1: magic || Noise message 1 (e, s, payload = client TAI64N) */
#define KS_HS1_LEN (KS_HS_MAGIC_LEN + KS_NOISE_IK_MSG1_OVERHEAD + KS_TAI64N_LEN)   /* 116 */
/* frame 2: Noise message 2 (e, payload = status || server TAI64N) */
#define KS_HS2_PAYLOAD_LEN (1 + KS_TAI64N_LEN)
#define KS_HS2_LEN (KS_NOISE_IK_MSG2_OVERHEAD + KS_HS2_PAYLOAD_LEN)                 /* 61 */
/* frame 2 when message 1 did not decrypt: one unauthenticated status byte */
#define KS_HS_NOTICE_LEN 1
#define KS_PUBKEY_B64_LEN 44              /* base64 of 32 bytes, without NUL */

#if KS_TCP_MAX_PLAINTEXT != KS_NOISE_MAX_PLAINTEXT
#error "KS_TCP_MAX_PLAINTEXT (wire.h) must be Noise's largest transport plaintext"
#endif

/* Rekey defaults: each side rekeys its sending key after this many frames
 * or this much time, whichever comes first (docs/protocol.md). */
#define KS_REKEY_FRAMES_DEFAULT (1u << 20)
#define KS_REKEY_SECONDS_DEFAULT 600

enum ks_hs_status {
    KS_HS_ACCEPT = 0,           /* authenticated; transport keys follow */
    KS_HS_UNKNOWN_CLIENT = 1,   /* authenticated refusal: key not authorized */
    KS_HS_UNDECRYPTABLE = 2,    /* unauthenticated notice: message 1 did not decrypt */
    KS_HS_BUSY = 3,             /* authenticated: too many connections for this client */
    KS_HS_STALE = 4,            /* authenticated: timestamp replayed or outside the clock skew */
};

/* One side's transport state: Noise CipherStates and the rekey schedule of
 * the sending direction (the peer follows our rekey markers). */
struct ks_sec {
    struct ks_noise_cipher tx, rx;
    uint64_t tx_since_rekey;    /* frames sent under the current tx key */
    int64_t tx_key_since_ms;    /* monotonic ms when the tx key was set */
    uint64_t rekey_frames;      /* 0 = never by count */
    int64_t rekey_ms;           /* 0 = never by time */
    uint64_t rekeys_sent, rekeys_received;
};

void ks_sec_wipe(struct ks_sec *s);

/* TAI64N of the wall clock: 8 bytes 2^62 + 10 + Unix seconds, 4 bytes
 * nanoseconds, big-endian (byte order = time order). */
void ks_tai64n_now(uint8_t out[KS_TAI64N_LEN]);
/* Unix nanoseconds of a TAI64N label, or -1 if it is not a valid one. */
int ks_tai64n_to_unix_ns(const uint8_t in[KS_TAI64N_LEN], int64_t *ns);
void ks_tai64n_from_unix_ns(int64_t ns, uint8_t out[KS_TAI64N_LEN]);
int64_t ks_wall_ns(void);

/* Client: message 1 (frame body, KS_HS1_LEN bytes) for the server whose
 * static key is server_pk, carrying the timestamp ts. */
int ks_hs_client_start(struct ks_noise_hs *hs, const uint8_t client_sk[32],
                       const uint8_t server_pk[32], const uint8_t ts[KS_TAI64N_LEN],
                       uint8_t msg1[KS_HS1_LEN]);

/* Client: read frame 2.  Returns KS_HS_ACCEPT with *out keyed, another
 * status (authenticated, except KS_HS_UNDECRYPTABLE), or -1 if it fails
 * authentication (wrong pinned key or tampering).  server_ts (may be NULL)
 * receives the server's clock.  hs is wiped. */
int ks_hs_client_finish(struct ks_noise_hs *hs, const uint8_t *msg2, size_t len,
                        struct ks_sec *out, uint8_t server_ts[KS_TAI64N_LEN]);

/* Server: read message 1 (exactly KS_HS1_LEN bytes).  Returns 0 with the
 * client's static key and timestamp, or -1 (wrong magic, not our key,
 * tampered: nothing authenticated; hs is wiped). */
int ks_hs_server_read(struct ks_noise_hs *hs, const uint8_t server_sk[32],
                      const uint8_t msg1[KS_HS1_LEN], uint8_t client_pk[32],
                      uint8_t ts[KS_TAI64N_LEN]);

/* Server: message 2 with status (not KS_HS_UNDECRYPTABLE) and the server's
 * clock.  KS_HS_ACCEPT keys *out; refusals leave it wiped.  0 or -1.
 * hs is wiped. */
int ks_hs_server_reply(struct ks_noise_hs *hs, int status, uint8_t msg2[KS_HS2_LEN],
                       struct ks_sec *out);

/* Rekey schedule for our sending side; now_ms is the monotonic clock. */
void ks_sec_set_rekey(struct ks_sec *s, uint64_t frames, int64_t ms, int64_t now_ms);
/* 1 if the next frame we send must be preceded by a rekey marker. */
int ks_sec_rekey_due(const struct ks_sec *s, int64_t now_ms);

/* Frame = 4-byte BE length || Noise transport message (ciphertext || tag,
 * empty associated data).  Seal len (<= KS_TCP_MAX_PLAINTEXT) bytes into
 * frame (4 + len + 16 bytes). */
int ks_sec_seal(struct ks_sec *s, const uint8_t *pt, size_t len, uint8_t *frame);
/* The rekey marker: a transport message with empty plaintext (frame of
 * 4 + 16 bytes), after which our sending key is Rekey()ed. */
int ks_sec_seal_rekey(struct ks_sec *s, uint8_t frame[KS_FRAME_HEADER + KS_SEC_TAG], int64_t now_ms);

/* Decrypt a received frame body (ct, 16 <= ctlen <= 65535) into pt
 * (ctlen - 16 bytes).  Returns 0 for data, 1 for a rekey marker (our
 * receiving key was Rekey()ed; nothing to deliver), -1 on any failure: the
 * connection must be closed. */
int ks_sec_open(struct ks_sec *s, const uint8_t *ct, size_t ctlen, uint8_t *pt);

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
