/* The TCP secure channel's handshake and frame protection; see secure.h and
 * docs/protocol.md.  Notation follows Noise: ck chaining key, h transcript
 * hash, MixKey/MixHash with BLAKE2b (crypto_generichash). */
#include "secure.h"

#include <string.h>

#include <sodium.h>

#define PROTOCOL_NAME "keystore-tcp-v1 Noise_IK-like X25519 XChaCha20-Poly1305 BLAKE2b"

void ks_sec_wipe(struct ks_sec *s)
{
    sodium_memzero(s, sizeof(*s));
}

void ks_hs_wipe(struct ks_hs *hs)
{
    sodium_memzero(hs, sizeof(*hs));
}

/* h = BLAKE2b-256(h || data) */
static int mix_hash(uint8_t h[32], const uint8_t *data, size_t len)
{
    crypto_generichash_state st;

    if (crypto_generichash_init(&st, NULL, 0, 32) != 0 ||
        crypto_generichash_update(&st, h, 32) != 0 ||
        crypto_generichash_update(&st, data, len) != 0 ||
        crypto_generichash_final(&st, h, 32) != 0)
        return -1;
    sodium_memzero(&st, sizeof(st));
    return 0;
}

/* ck || k = BLAKE2b-512(key = ck, dh): every DH result flows into ck. */
static int mix_key(struct ks_hs *hs, const uint8_t dh[32])
{
    uint8_t out[64];

    if (crypto_generichash(out, sizeof(out), dh, 32, hs->ck, 32) != 0)
        return -1;
    memcpy(hs->ck, out, 32);
    memcpy(hs->k, out + 32, 32);
    sodium_memzero(out, sizeof(out));
    return 0;
}

/* X25519 that refuses low-order points (an all-zero shared secret). */
static int dh_mix(struct ks_hs *hs, const uint8_t sk[32], const uint8_t pk[32])
{
    uint8_t dh[32];
    int rc;

    if (crypto_scalarmult(dh, sk, pk) != 0)
        return -1;
    rc = mix_key(hs, dh);
    sodium_memzero(dh, sizeof(dh));
    return rc;
}

static void nonce_from(uint8_t nonce[24], uint64_t n)
{
    int i;

    memset(nonce, 0, 24);
    for (i = 0; i < 8; i++)
        nonce[i] = (uint8_t)(n >> (8 * i));
}

/* Encrypt (possibly empty) pt with hs->k, AD = h, then MixHash(ct). */
static int enc_and_hash(struct ks_hs *hs, uint64_t n, const uint8_t *pt, size_t len, uint8_t *ct)
{
    uint8_t nonce[24];

    nonce_from(nonce, n);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, pt, len, hs->h, 32, NULL,
                                                   nonce, hs->k) != 0)
        return -1;
    return mix_hash(hs->h, ct, len + KS_SEC_TAG);
}

static int dec_and_hash(struct ks_hs *hs, uint64_t n, const uint8_t *ct, size_t ctlen, uint8_t *pt)
{
    uint8_t nonce[24];

    nonce_from(nonce, n);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, ct, ctlen, hs->h, 32,
                                                   nonce, hs->k) != 0)
        return -1;
    return mix_hash(hs->h, ct, ctlen);
}

/* h = HASH(protocol name); ck = h; MixHash(server static) (known in advance). */
static int init_state(struct ks_hs *hs, const uint8_t server_pk[32])
{
    if (crypto_generichash(hs->h, 32, (const uint8_t *)PROTOCOL_NAME, strlen(PROTOCOL_NAME),
                           NULL, 0) != 0)
        return -1;
    memcpy(hs->ck, hs->h, 32);
    return mix_hash(hs->h, server_pk, 32);
}

/* Session keys from the final chaining key, bound to the whole transcript. */
static int split(struct ks_hs *hs, struct ks_sec *client_view)
{
    uint8_t out[64];

    if (crypto_generichash(out, sizeof(out), hs->h, 32, hs->ck, 32) != 0)
        return -1;
    memcpy(client_view->tx, out, 32);        /* client -> server */
    memcpy(client_view->rx, out + 32, 32);   /* server -> client */
    client_view->tx_n = client_view->rx_n = 0;
    sodium_memzero(out, sizeof(out));
    return 0;
}

static int keypair(struct ks_hs *hs)
{
    randombytes_buf(hs->e_sk, 32);
    return crypto_scalarmult_base(hs->e_pk, hs->e_sk);
}

int ks_hs_client_start(struct ks_hs *hs, const uint8_t client_sk[32],
                       const uint8_t server_pk[32], uint8_t msg1[KS_HS1_LEN])
{
    uint8_t client_pk[32];
    uint8_t *p = msg1;

    memset(hs, 0, sizeof(*hs));
    memcpy(hs->s_sk, client_sk, 32);
    memcpy(hs->rs_pk, server_pk, 32);
    if (crypto_scalarmult_base(client_pk, client_sk) != 0 || init_state(hs, server_pk) != 0 ||
        keypair(hs) != 0)
        goto fail;
    memcpy(p, KS_HS_MAGIC, KS_HS_MAGIC_LEN);
    if (mix_hash(hs->h, p, KS_HS_MAGIC_LEN) != 0)
        goto fail;
    p += KS_HS_MAGIC_LEN;
    memcpy(p, hs->e_pk, 32);                                   /* -> e */
    if (mix_hash(hs->h, p, 32) != 0 || dh_mix(hs, hs->e_sk, server_pk) != 0)   /* es */
        goto fail;
    p += 32;
    if (enc_and_hash(hs, 0, client_pk, 32, p) != 0)            /* -> s (encrypted) */
        goto fail;
    p += 48;
    if (dh_mix(hs, client_sk, server_pk) != 0 ||               /* ss */
        enc_and_hash(hs, 0, NULL, 0, p) != 0)                  /* tag: proves s */
        goto fail;
    return 0;
fail:
    ks_hs_wipe(hs);
    return -1;
}

int ks_hs_client_finish(struct ks_hs *hs, const uint8_t msg2[KS_HS2_LEN], struct ks_sec *out)
{
    const uint8_t status = msg2[0];
    const uint8_t *se = msg2 + 1, *tag = msg2 + 33;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (status == KS_HS_UNDECRYPTABLE) {
        rc = KS_HS_UNDECRYPTABLE;   /* cannot be authenticated: the server has no shared key */
        goto out;
    }
    if (mix_hash(hs->h, msg2, 33) != 0)    /* status and e, bound to the transcript */
        goto out;
    if (status == KS_HS_ACCEPT) {
        if (dh_mix(hs, hs->e_sk, se) != 0 ||          /* ee */
            dh_mix(hs, hs->s_sk, se) != 0 ||          /* se */
            dec_and_hash(hs, 0, tag, KS_SEC_TAG, NULL) != 0 ||
            split(hs, out) != 0)
            goto out;
        rc = KS_HS_ACCEPT;
    } else if (status == KS_HS_UNKNOWN_CLIENT || status == KS_HS_BUSY) {
        /* refusals are keyed by es and ss: only the real server can make them */
        if (dec_and_hash(hs, 1, tag, KS_SEC_TAG, NULL) != 0)
            goto out;
        rc = status;
    }
out:
    if (rc != KS_HS_ACCEPT)
        ks_sec_wipe(out);
    ks_hs_wipe(hs);
    return rc;
}

int ks_hs_server_read(struct ks_hs *hs, const uint8_t server_sk[32], const uint8_t server_pk[32],
                      const uint8_t msg1[KS_HS1_LEN], uint8_t client_pk[32])
{
    const uint8_t *ce = msg1 + KS_HS_MAGIC_LEN, *cs = ce + 32, *tag = cs + 48;

    memset(hs, 0, sizeof(*hs));
    if (sodium_memcmp(msg1, KS_HS_MAGIC, KS_HS_MAGIC_LEN) != 0 || init_state(hs, server_pk) != 0 ||
        mix_hash(hs->h, msg1, KS_HS_MAGIC_LEN) != 0 || mix_hash(hs->h, ce, 32) != 0 ||
        dh_mix(hs, server_sk, ce) != 0 ||                      /* es */
        dec_and_hash(hs, 0, cs, 48, client_pk) != 0 ||         /* s */
        dh_mix(hs, server_sk, client_pk) != 0 ||               /* ss */
        dec_and_hash(hs, 0, tag, KS_SEC_TAG, NULL) != 0)       /* client holds s */
        goto fail;
    memcpy(hs->e_pk, ce, 32);   /* the client's ephemeral, for ee */
    memcpy(hs->rs_pk, client_pk, 32);
    return 0;
fail:
    ks_hs_wipe(hs);
    return -1;
}

int ks_hs_server_reply(struct ks_hs *hs, int status, uint8_t msg2[KS_HS2_LEN], struct ks_sec *out)
{
    struct ks_sec client_view;
    uint8_t ce[32];
    int rc = -1;

    memset(msg2, 0, KS_HS2_LEN);
    memset(out, 0, sizeof(*out));
    msg2[0] = (uint8_t)status;
    if (status == KS_HS_UNDECRYPTABLE)
        return 0;
    if (status != KS_HS_ACCEPT) {
        if (mix_hash(hs->h, msg2, 33) == 0 && enc_and_hash(hs, 1, NULL, 0, msg2 + 33) == 0)
            rc = 0;
        goto out;
    }
    memcpy(ce, hs->e_pk, 32);
    if (keypair(hs) != 0)
        goto out;
    memcpy(msg2 + 1, hs->e_pk, 32);
    if (mix_hash(hs->h, msg2, 33) != 0 ||
        dh_mix(hs, hs->e_sk, ce) != 0 ||             /* ee */
        dh_mix(hs, hs->e_sk, hs->rs_pk) != 0 ||      /* se */
        enc_and_hash(hs, 0, NULL, 0, msg2 + 33) != 0 ||
        split(hs, &client_view) != 0)
        goto out;
    memcpy(out->tx, client_view.rx, 32);
    memcpy(out->rx, client_view.tx, 32);
    rc = 0;
out:
    sodium_memzero(&client_view, sizeof(client_view));
    ks_hs_wipe(hs);
    return rc;
}

int ks_sec_seal(struct ks_sec *s, const uint8_t *pt, size_t len, uint8_t *frame)
{
    uint8_t nonce[24];
    size_t total = len + KS_SEC_TAG;

    if (total > UINT32_MAX || s->tx_n == UINT64_MAX)
        return -1;
    frame[0] = (uint8_t)(total >> 24);
    frame[1] = (uint8_t)(total >> 16);
    frame[2] = (uint8_t)(total >> 8);
    frame[3] = (uint8_t)total;
    nonce_from(nonce, s->tx_n);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(frame + 4, NULL, pt, len, frame, 4, NULL,
                                                   nonce, s->tx) != 0)
        return -1;
    s->tx_n++;
    return 0;
}

int ks_sec_open(struct ks_sec *s, const uint8_t hdr[4], const uint8_t *ct, size_t ctlen, uint8_t *pt)
{
    uint8_t nonce[24];

    if (ctlen < KS_SEC_TAG || s->rx_n == UINT64_MAX)
        return -1;
    /* the expected counter is the nonce: a replayed, dropped or reordered
     * frame is decrypted under the wrong nonce and fails */
    nonce_from(nonce, s->rx_n);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, NULL, NULL, ct, ctlen, hdr, 4, nonce,
                                                   s->rx) != 0)
        return -1;
    s->rx_n++;
    return 0;
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
