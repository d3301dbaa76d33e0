/* The TCP secure channel on Noise_IK_25519_ChaChaPoly_BLAKE2b; see secure.h
 * and docs/protocol.md.  All cryptography is proto/noise.c; this file only
 * fixes the prologue, the payloads and the framing. */
#include "secure.h"

#include <string.h>
#include <time.h>

#include <sodium.h>

#define TAI64_UNIX_EPOCH (UINT64_C(0x4000000000000000) + 10)   /* label of 1970-01-01 */

void ks_sec_wipe(struct ks_sec *s)
{
    sodium_memzero(s, sizeof(*s));
}

int64_t ks_wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ks_tai64n_from_unix_ns(int64_t ns, uint8_t out[KS_TAI64N_LEN])
{
    uint64_t sec = TAI64_UNIX_EPOCH + (uint64_t)(ns / 1000000000);
    uint32_t frac = (uint32_t)(ns % 1000000000);
    int i;

    for (i = 0; i < 8; i++)
        out[i] = (uint8_t)(sec >> (56 - 8 * i));
    for (i = 0; i < 4; i++)
        out[8 + i] = (uint8_t)(frac >> (24 - 8 * i));
}

void ks_tai64n_now(uint8_t out[KS_TAI64N_LEN])
{
    ks_tai64n_from_unix_ns(ks_wall_ns(), out);
}

int ks_tai64n_to_unix_ns(const uint8_t in[KS_TAI64N_LEN], int64_t *ns)
{
    uint64_t sec = 0;
    uint32_t frac = 0;
    int i;

    for (i = 0; i < 8; i++)
        sec = sec << 8 | in[i];
    for (i = 0; i < 4; i++)
        frac = frac << 8 | in[8 + i];
    /* before 1970 or after year 2262 (int64 ns) is not a clock we believe */
    if (frac >= 1000000000 || sec < TAI64_UNIX_EPOCH || sec - TAI64_UNIX_EPOCH > INT64_MAX / 1000000000 - 1)
        return -1;
    *ns = (int64_t)(sec - TAI64_UNIX_EPOCH) * 1000000000 + frac;
    return 0;
}

/* The Noise prologue is the magic: a peer speaking another version derives
 * other keys, so nothing of version 1 can be spliced into version 2. */
static int ik_init(struct ks_noise_hs *hs, enum ks_noise_role role, const uint8_t sk[32],
                   const uint8_t *rs)
{
    return ks_noise_ik_init(hs, role, (const uint8_t *)KS_HS_MAGIC, KS_HS_MAGIC_LEN, sk, rs);
}

int ks_hs_client_start(struct ks_noise_hs *hs, const uint8_t client_sk[32],
                       const uint8_t server_pk[32], const uint8_t ts[KS_TAI64N_LEN],
                       uint8_t msg1[KS_HS1_LEN])
{
    size_t len = 0;

    memcpy(msg1, KS_HS_MAGIC, KS_HS_MAGIC_LEN);
    if (ik_init(hs, KS_NOISE_INITIATOR, client_sk, server_pk) != 0 ||
        ks_noise_ik_write_message(hs, ts, KS_TAI64N_LEN, msg1 + KS_HS_MAGIC_LEN,
                                  KS_HS1_LEN - KS_HS_MAGIC_LEN, &len) != 0 ||
        len != KS_HS1_LEN - KS_HS_MAGIC_LEN) {
        ks_noise_hs_wipe(hs);
        return -1;
    }
    return 0;
}

int ks_hs_client_finish(struct ks_noise_hs *hs, const uint8_t *msg2, size_t len,
                        struct ks_sec *out, uint8_t server_ts[KS_TAI64N_LEN])
{
    uint8_t payload[KS_HS2_PAYLOAD_LEN];
    size_t plen = 0;
    int rc = -1;

    ks_sec_wipe(out);
    if (len == KS_HS_NOTICE_LEN && msg2[0] == KS_HS_UNDECRYPTABLE) {
        rc = KS_HS_UNDECRYPTABLE;   /* cannot be authenticated: the server has no shared key */
        goto out;
    }
    if (len != KS_HS2_LEN ||
        ks_noise_ik_read_message(hs, msg2, len, payload, sizeof(payload), &plen) != 0 ||
        plen != KS_HS2_PAYLOAD_LEN)
        goto out;
    if (server_ts != NULL)
        memcpy(server_ts, payload + 1, KS_TAI64N_LEN);
    switch (payload[0]) {
    case KS_HS_ACCEPT:
        if (ks_noise_ik_split(hs, &out->tx, &out->rx, NULL) == 0)
            rc = KS_HS_ACCEPT;
        break;
    case KS_HS_UNKNOWN_CLIENT:
    case KS_HS_BUSY:
    case KS_HS_STALE:
        rc = payload[0];   /* authenticated by the whole handshake */
        break;
    default:
        break;
    }
out:
    if (rc != KS_HS_ACCEPT)
        ks_sec_wipe(out);
    ks_noise_hs_wipe(hs);
    sodium_memzero(payload, sizeof(payload));
    return rc;
}

int ks_hs_server_read(struct ks_noise_hs *hs, const uint8_t server_sk[32],
                      const uint8_t msg1[KS_HS1_LEN], uint8_t client_pk[32],
                      uint8_t ts[KS_TAI64N_LEN])
{
    size_t plen = 0;

    if (sodium_memcmp(msg1, KS_HS_MAGIC, KS_HS_MAGIC_LEN) != 0 ||
        ik_init(hs, KS_NOISE_RESPONDER, server_sk, NULL) != 0 ||
        ks_noise_ik_read_message(hs, msg1 + KS_HS_MAGIC_LEN, KS_HS1_LEN - KS_HS_MAGIC_LEN, ts,
                                 KS_TAI64N_LEN, &plen) != 0 ||
        plen != KS_TAI64N_LEN || ks_noise_ik_remote_static(hs, client_pk) != 0) {
        ks_noise_hs_wipe(hs);
        return -1;
    }
    return 0;
}

int ks_hs_server_reply(struct ks_noise_hs *hs, int status, uint8_t msg2[KS_HS2_LEN],
                       struct ks_sec *out)
{
    uint8_t payload[KS_HS2_PAYLOAD_LEN];
    size_t len = 0;
    int rc = -1;

    ks_sec_wipe(out);
    payload[0] = (uint8_t)status;
    ks_tai64n_now(payload + 1);
    if (status != KS_HS_UNDECRYPTABLE &&
        ks_noise_ik_write_message(hs, payload, sizeof(payload), msg2, KS_HS2_LEN, &len) == 0 &&
        len == KS_HS2_LEN &&
        (status != KS_HS_ACCEPT || ks_noise_ik_split(hs, &out->tx, &out->rx, NULL) == 0))
        rc = 0;
    if (rc != 0 || status != KS_HS_ACCEPT)
        ks_sec_wipe(out);
    ks_noise_hs_wipe(hs);
    return rc;
}

void ks_sec_set_rekey(struct ks_sec *s, uint64_t frames, int64_t ms, int64_t now_ms)
{
    s->rekey_frames = frames;
    s->rekey_ms = ms;
    s->tx_key_since_ms = now_ms;
    s->tx_since_rekey = 0;
}

int ks_sec_rekey_due(const struct ks_sec *s, int64_t now_ms)
{
    return (s->rekey_frames > 0 && s->tx_since_rekey >= s->rekey_frames) ||
           (s->rekey_ms > 0 && now_ms - s->tx_key_since_ms >= s->rekey_ms);
}

int ks_sec_seal(struct ks_sec *s, const uint8_t *pt, size_t len, uint8_t *frame)
{
    size_t clen = 0;

    /* empty plaintext is the rekey marker, never data */
    if (len == 0 || len > KS_TCP_MAX_PLAINTEXT ||
        ks_noise_encrypt_with_ad(&s->tx, NULL, 0, pt, len, frame + KS_FRAME_HEADER,
                                 len + KS_SEC_TAG, &clen) != 0 || clen != len + KS_SEC_TAG)
        return -1;
    ks_put_be32(frame, (uint32_t)clen);
    s->tx_since_rekey++;
    return 0;
}

int ks_sec_seal_rekey(struct ks_sec *s, uint8_t frame[KS_FRAME_HEADER + KS_SEC_TAG], int64_t now_ms)
{
    size_t clen = 0;

    if (ks_noise_encrypt_with_ad(&s->tx, NULL, 0, NULL, 0, frame + KS_FRAME_HEADER, KS_SEC_TAG,
                                 &clen) != 0 || clen != KS_SEC_TAG || ks_noise_rekey(&s->tx) != 0)
        return -1;
    ks_put_be32(frame, KS_SEC_TAG);
    s->tx_since_rekey = 0;
    s->tx_key_since_ms = now_ms;
    s->rekeys_sent++;
    return 0;
}

int ks_sec_open(struct ks_sec *s, const uint8_t *ct, size_t ctlen, uint8_t *pt)
{
    size_t plen = 0;

    /* the expected counter is the nonce: a replayed, dropped or reordered
     * frame is decrypted under the wrong nonce and fails */
    if (ctlen < KS_SEC_TAG || ctlen > KS_NOISE_MAX_MSG ||
        ks_noise_decrypt_with_ad(&s->rx, NULL, 0, ct, ctlen, pt, ctlen - KS_SEC_TAG, &plen) != 0 ||
        plen != ctlen - KS_SEC_TAG)
        return -1;
    if (plen > 0)
        return 0;
    if (ks_noise_rekey(&s->rx) != 0)
        return -1;
    s->rekeys_received++;
    return 1;
}

int ks_pubkey_parse(const char *text, uint8_t pk[32])
{
    size_t n = strlen(text), binlen = 0;
    const char *end = NULL;

    if (n == 64)
        return sodium_hex2bin(pk, 32, text, n, NULL, &binlen, &end) == 0 && binlen == 32 &&
               *end == '\0' ? 0 : -1;
    if (n == KS_PUBKEY_B64_LEN)
        return sodium_base642bin(pk, 32, text, n, NULL, &binlen, &end,
                                 sodium_base64_VARIANT_ORIGINAL) == 0 && binlen == 32 &&
               *end == '\0' ? 0 : -1;
    return -1;
}

void ks_pubkey_format(const uint8_t pk[32], char out[KS_PUBKEY_B64_LEN + 1])
{
    sodium_bin2base64(out, KS_PUBKEY_B64_LEN + 1, pk, 32, sodium_base64_VARIANT_ORIGINAL);
}
