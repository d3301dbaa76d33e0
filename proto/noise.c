/* Noise_IK_25519_ChaChaPoly_BLAKE2b (Noise revision 34); see noise.h.
 * Section numbers below refer to the Noise specification. */
#include "noise.h"

#include <string.h>

#include <sodium.h>

#define NONCE_MAX UINT64_MAX   /* reserved: only Rekey uses it (5.1) */

/* ---- crypto functions (4.1-4.3) --------------------------------------- */

/* DH(sk, pk).  crypto_scalarmult fails on an all-zero result, i.e. a
 * low-order peer key; we treat that as a handshake error. */
static int dh(uint8_t out[KS_NOISE_DHLEN], const uint8_t sk[KS_NOISE_DHLEN],
              const uint8_t pk[KS_NOISE_DHLEN])
{
    return crypto_scalarmult(out, sk, pk) == 0 ? 0 : -1;
}

/* 96-bit nonce: 32 zero bits, then n as 64-bit little-endian (4.2). */
static void chachapoly_nonce(uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES], uint64_t n)
{
    int i;

    memset(nonce, 0, 4);
    for (i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/* HASH(a || b) with BLAKE2b-512; b may be empty. */
static int hash2(uint8_t out[KS_NOISE_HASHLEN], const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen)
{
    crypto_generichash_state st;
    int rc = -1;

    if (crypto_generichash_init(&st, NULL, 0, KS_NOISE_HASHLEN) == 0 &&
        crypto_generichash_update(&st, a, alen) == 0 &&
        (blen == 0 || crypto_generichash_update(&st, b, blen) == 0) &&
        crypto_generichash_final(&st, out, KS_NOISE_HASHLEN) == 0)
        rc = 0;
    sodium_memzero(&st, sizeof(st));
    return rc;
}

/* HMAC-HASH(key, data1 || data2) per RFC 2104 with BLOCKLEN 128 (4.3).
 * libsodium's keyed BLAKE2b is not HMAC, so we build it.  Our keys are
 * always HASHLEN bytes; longer than a block is refused rather than hashed. */
static int hmac(uint8_t out[KS_NOISE_HASHLEN], const uint8_t *key, size_t keylen,
                const uint8_t *d1, size_t d1len, const uint8_t *d2, size_t d2len)
{
    uint8_t pad[KS_NOISE_BLOCKLEN], inner[KS_NOISE_HASHLEN];
    crypto_generichash_state st;
    size_t i;
    int rc = -1;

    if (keylen > KS_NOISE_BLOCKLEN)
        return -1;
    memset(pad, 0, sizeof(pad));
    memcpy(pad, key, keylen);
    for (i = 0; i < sizeof(pad); i++)
        pad[i] ^= 0x36;
    if (crypto_generichash_init(&st, NULL, 0, KS_NOISE_HASHLEN) != 0 ||
        crypto_generichash_update(&st, pad, sizeof(pad)) != 0 ||
        (d1len > 0 && crypto_generichash_update(&st, d1, d1len) != 0) ||
        (d2len > 0 && crypto_generichash_update(&st, d2, d2len) != 0) ||
        crypto_generichash_final(&st, inner, sizeof(inner)) != 0)
        goto out;
    for (i = 0; i < sizeof(pad); i++)
        pad[i] ^= 0x36 ^ 0x5c;   /* ipad -> opad */
    if (hash2(out, pad, sizeof(pad), inner, sizeof(inner)) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
    sodium_memzero(&st, sizeof(st));
    return rc;
}

/* HKDF(ck, ikm, 2) (4.3): out1, out2, each HASHLEN bytes.  IK never needs
 * the third output (that is for PSK modes). */
static int hkdf2(const uint8_t ck[KS_NOISE_HASHLEN], const uint8_t *ikm, size_t ikmlen,
                 uint8_t out1[KS_NOISE_HASHLEN], uint8_t out2[KS_NOISE_HASHLEN])
{
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t temp_key[KS_NOISE_HASHLEN];
    int rc = -1;

    if (hmac(temp_key, ck, KS_NOISE_HASHLEN, ikm, ikmlen, NULL, 0) == 0 &&
        hmac(out1, temp_key, sizeof(temp_key), &one, 1, NULL, 0) == 0 &&
        hmac(out2, temp_key, sizeof(temp_key), out1, KS_NOISE_HASHLEN, &two, 1) == 0)
        rc = 0;
    sodium_memzero(temp_key, sizeof(temp_key));
    return rc;
}

/* ---- CipherState (5.1) ------------------------------------------------- */

void ks_noise_cipher_init(struct ks_noise_cipher *cs, const uint8_t *key)
{
    sodium_memzero(cs, sizeof(*cs));
    if (key != NULL) {
        memcpy(cs->k, key, KS_NOISE_KEYLEN);
        cs->has_key = 1;
    }
}

int ks_noise_cipher_has_key(const struct ks_noise_cipher *cs)
{
    return cs->has_key;
}

void ks_noise_cipher_set_nonce(struct ks_noise_cipher *cs, uint64_t n)
{
    cs->n = n;
}

void ks_noise_cipher_wipe(struct ks_noise_cipher *cs)
{
    sodium_memzero(cs, sizeof(*cs));
}

int ks_noise_encrypt_with_ad(struct ks_noise_cipher *cs, const uint8_t *ad, size_t adlen,
                             const uint8_t *pt, size_t ptlen,
                             uint8_t *out, size_t outcap, size_t *outlen)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    unsigned long long clen = 0;

    *outlen = 0;
    if (!cs->has_key) {
        /* Before the first MixKey, "encryption" is the identity (5.1). */
        if (ptlen > KS_NOISE_MAX_MSG || outcap < ptlen)
            return -1;
        if (ptlen > 0)
            memmove(out, pt, ptlen);
        *outlen = ptlen;
        return 0;
    }
    if (ptlen > KS_NOISE_MAX_PLAINTEXT || outcap < ptlen + KS_NOISE_TAGLEN ||
        cs->n == NONCE_MAX)
        return -1;
    chachapoly_nonce(nonce, cs->n);
    if (crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, ptlen, ad, adlen, NULL,
                                                  nonce, cs->k) != 0 ||
        clen != ptlen + KS_NOISE_TAGLEN)
        return -1;
    cs->n++;
    *outlen = (size_t)clen;
    return 0;
}

int ks_noise_decrypt_with_ad(struct ks_noise_cipher *cs, const uint8_t *ad, size_t adlen,
                             const uint8_t *ct, size_t ctlen,
                             uint8_t *out, size_t outcap, size_t *outlen)
{
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    unsigned long long mlen = 0;

    *outlen = 0;
    if (ctlen > KS_NOISE_MAX_MSG)
        return -1;
    if (!cs->has_key) {
        if (outcap < ctlen)
            return -1;
        if (ctlen > 0)
            memmove(out, ct, ctlen);
        *outlen = ctlen;
        return 0;
    }
    if (ctlen < KS_NOISE_TAGLEN || outcap < ctlen - KS_NOISE_TAGLEN || cs->n == NONCE_MAX)
        return -1;
    chachapoly_nonce(nonce, cs->n);
    /* libsodium verifies the tag before writing any plaintext. */
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, ctlen, ad, adlen,
                                                  nonce, cs->k) != 0 ||
        mlen != ctlen - KS_NOISE_TAGLEN)
        return -1;
    cs->n++;
    *outlen = (size_t)mlen;
    return 0;
}

int ks_noise_rekey(struct ks_noise_cipher *cs)
{
    uint8_t zeros[KS_NOISE_KEYLEN], out[KS_NOISE_KEYLEN + KS_NOISE_TAGLEN];
    uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
    unsigned long long clen = 0;
    int rc = -1;

    if (!cs->has_key)
        return -1;
    memset(zeros, 0, sizeof(zeros));
    chachapoly_nonce(nonce, NONCE_MAX);
    if (crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, zeros, sizeof(zeros), NULL, 0,
                                                  NULL, nonce, cs->k) == 0 &&
        clen == sizeof(out)) {
        memcpy(cs->k, out, KS_NOISE_KEYLEN);   /* the tag is dropped */
        rc = 0;
    }
    sodium_memzero(out, sizeof(out));
    return rc;
}

/* ---- SymmetricState (5.2) ---------------------------------------------- */

static int initialize_symmetric(struct ks_noise_hs *hs, const char *protocol_name)
{
    size_t len = strlen(protocol_name);

    /* A name of at most HASHLEN bytes is used zero-padded, not hashed. */
    if (len <= KS_NOISE_HASHLEN) {
        memset(hs->h, 0, sizeof(hs->h));
        memcpy(hs->h, protocol_name, len);
    } else if (hash2(hs->h, (const uint8_t *)protocol_name, len, NULL, 0) != 0) {
        return -1;
    }
    memcpy(hs->ck, hs->h, sizeof(hs->ck));
    ks_noise_cipher_init(&hs->cs, NULL);
    return 0;
}

static int mix_hash(struct ks_noise_hs *hs, const uint8_t *data, size_t len)
{
    return hash2(hs->h, hs->h, sizeof(hs->h), data, len);
}

/* ck, temp_k = HKDF(ck, ikm, 2); k = temp_k truncated to 32 bytes; n = 0. */
static int mix_key(struct ks_noise_hs *hs, const uint8_t *ikm, size_t ikmlen)
{
    uint8_t ck[KS_NOISE_HASHLEN], temp_k[KS_NOISE_HASHLEN];
    int rc = -1;

    if (hkdf2(hs->ck, ikm, ikmlen, ck, temp_k) == 0) {
        memcpy(hs->ck, ck, sizeof(ck));
        ks_noise_cipher_init(&hs->cs, temp_k);
        rc = 0;
    }
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(temp_k, sizeof(temp_k));
    return rc;
}

/* MixKey(DH(sk, pk)), wiping the shared secret. */
static int mix_dh(struct ks_noise_hs *hs, const uint8_t sk[KS_NOISE_DHLEN],
                  const uint8_t pk[KS_NOISE_DHLEN])
{
    uint8_t shared[KS_NOISE_DHLEN];
    int rc = -1;

    if (dh(shared, sk, pk) == 0 && mix_key(hs, shared, sizeof(shared)) == 0)
        rc = 0;
    sodium_memzero(shared, sizeof(shared));
    return rc;
}

/* The transcript hash h is the AD, so every ciphertext commits to all
 * that came before it. */
static int encrypt_and_hash(struct ks_noise_hs *hs, const uint8_t *pt, size_t ptlen,
                            uint8_t *out, size_t outcap, size_t *outlen)
{
    if (ks_noise_encrypt_with_ad(&hs->cs, hs->h, sizeof(hs->h), pt, ptlen, out, outcap,
                                 outlen) != 0)
        return -1;
    return mix_hash(hs, out, *outlen);
}

static int decrypt_and_hash(struct ks_noise_hs *hs, const uint8_t *ct, size_t ctlen,
                            uint8_t *out, size_t outcap, size_t *outlen)
{
    /* Hash the ciphertext after decrypting with the old h as AD. */
    uint8_t h_next[KS_NOISE_HASHLEN];

    if (hash2(h_next, hs->h, sizeof(hs->h), ct, ctlen) != 0 ||
        ks_noise_decrypt_with_ad(&hs->cs, hs->h, sizeof(hs->h), ct, ctlen, out, outcap,
                                 outlen) != 0)
        return -1;
    memcpy(hs->h, h_next, sizeof(h_next));
    return 0;
}

/* ---- HandshakeState (5.3), pattern IK ----------------------------------- */

void ks_noise_hs_wipe(struct ks_noise_hs *hs)
{
    sodium_memzero(hs, sizeof(*hs));
    hs->step = -1;
}

int ks_noise_ik_init(struct ks_noise_hs *hs, enum ks_noise_role role,
                     const uint8_t *prologue, size_t prologue_len,
                     const uint8_t s_sk[KS_NOISE_DHLEN], const uint8_t *rs_pk)
{
    sodium_memzero(hs, sizeof(*hs));
    hs->step = -1;
    if ((role != KS_NOISE_INITIATOR && role != KS_NOISE_RESPONDER) || s_sk == NULL ||
        prologue_len > KS_NOISE_MAX_PROLOGUE || (prologue_len > 0 && prologue == NULL) ||
        (role == KS_NOISE_INITIATOR) != (rs_pk != NULL))
        return -1;
    hs->role = role;
    memcpy(hs->s_sk, s_sk, KS_NOISE_DHLEN);
    if (crypto_scalarmult_base(hs->s_pk, hs->s_sk) != 0)
        goto fail;
    if (rs_pk != NULL) {
        memcpy(hs->rs, rs_pk, KS_NOISE_DHLEN);
        hs->has_rs = 1;
    }
    if (initialize_symmetric(hs, KS_NOISE_PROTOCOL_NAME) != 0 ||
        mix_hash(hs, prologue, prologue_len) != 0)
        goto fail;
    /* Pre-message "<- s": both sides hash the responder's static key. */
    if (mix_hash(hs, role == KS_NOISE_INITIATOR ? hs->rs : hs->s_pk, KS_NOISE_DHLEN) != 0)
        goto fail;
    hs->step = 0;
    return 0;
fail:
    ks_noise_hs_wipe(hs);
    return -1;
}

static int sends_e_next(const struct ks_noise_hs *hs)
{
    return (hs->role == KS_NOISE_INITIATOR && hs->step == 0) ||
           (hs->role == KS_NOISE_RESPONDER && (hs->step == 0 || hs->step == 1));
}

int ks_noise_ik_set_ephemeral_for_test(struct ks_noise_hs *hs, const uint8_t e_sk[KS_NOISE_DHLEN])
{
    if (hs->step < 0 || hs->has_e || !sends_e_next(hs))
        return -1;
    memcpy(hs->e_sk, e_sk, KS_NOISE_DHLEN);
    if (crypto_scalarmult_base(hs->e_pk, hs->e_sk) != 0) {
        ks_noise_hs_wipe(hs);
        return -1;
    }
    hs->has_e = 1;
    return 0;
}

/* Token "e" when writing: a fresh key pair unless a test injected one. */
static int write_e(struct ks_noise_hs *hs, uint8_t *msg)
{
    if (!hs->has_e) {
        randombytes_buf(hs->e_sk, KS_NOISE_DHLEN);
        if (crypto_scalarmult_base(hs->e_pk, hs->e_sk) != 0)
            return -1;
        hs->has_e = 1;
    }
    memcpy(msg, hs->e_pk, KS_NOISE_DHLEN);
    return mix_hash(hs, hs->e_pk, KS_NOISE_DHLEN);
}

int ks_noise_ik_write_message(struct ks_noise_hs *hs, const uint8_t *payload, size_t payload_len,
                              uint8_t *msg, size_t msgcap, size_t *msglen)
{
    size_t off = 0, n = 0, need = 0;

    *msglen = 0;
    if (payload_len > 0 && payload == NULL)
        return -1;
    if (hs->role == KS_NOISE_INITIATOR && hs->step == 0) {
        /* -> e, es, s, ss */
        if (payload_len > KS_NOISE_IK_MAX_PAYLOAD1 ||
            msgcap < payload_len + KS_NOISE_IK_MSG1_OVERHEAD)
            return -1;   /* caller's mistake: state left usable */
        need = payload_len + KS_NOISE_IK_MSG1_OVERHEAD;
        if (write_e(hs, msg) != 0)
            goto fail;
        off = KS_NOISE_DHLEN;
        if (mix_dh(hs, hs->e_sk, hs->rs) != 0 ||                                /* es */
            encrypt_and_hash(hs, hs->s_pk, KS_NOISE_DHLEN, msg + off, msgcap - off, &n) != 0)
            goto fail;                                                           /* s */
        off += n;
        if (mix_dh(hs, hs->s_sk, hs->rs) != 0)                                  /* ss */
            goto fail;
    } else if (hs->role == KS_NOISE_RESPONDER && hs->step == 1) {
        /* <- e, ee, se */
        if (payload_len > KS_NOISE_IK_MAX_PAYLOAD2 ||
            msgcap < payload_len + KS_NOISE_IK_MSG2_OVERHEAD)
            return -1;
        need = payload_len + KS_NOISE_IK_MSG2_OVERHEAD;
        if (write_e(hs, msg) != 0)
            goto fail;
        off = KS_NOISE_DHLEN;
        if (mix_dh(hs, hs->e_sk, hs->re) != 0 ||                                /* ee */
            mix_dh(hs, hs->e_sk, hs->rs) != 0)                                  /* se */
            goto fail;
    } else {
        return -1;   /* not our turn, or unusable */
    }
    if (encrypt_and_hash(hs, payload, payload_len, msg + off, msgcap - off, &n) != 0)
        goto fail;
    *msglen = off + n;
    hs->step++;
    return 0;
fail:
    sodium_memzero(msg, need);   /* no half-built message leaves here */
    ks_noise_hs_wipe(hs);
    return -1;
}

int ks_noise_ik_read_message(struct ks_noise_hs *hs, const uint8_t *msg, size_t msglen,
                             uint8_t *payload, size_t payloadcap, size_t *payload_len)
{
    size_t off, n = 0, overhead;

    *payload_len = 0;
    if (hs->role == KS_NOISE_RESPONDER && hs->step == 0)
        overhead = KS_NOISE_IK_MSG1_OVERHEAD;
    else if (hs->role == KS_NOISE_INITIATOR && hs->step == 1)
        overhead = KS_NOISE_IK_MSG2_OVERHEAD;
    else
        return -1;
    /* A short, long or unreadable message ends the handshake (the peer is
     * either broken or an attacker; there is no retry within a handshake). */
    if (msglen < overhead || msglen > KS_NOISE_MAX_MSG || payloadcap < msglen - overhead)
        goto fail;
    memcpy(hs->re, msg, KS_NOISE_DHLEN);
    if (mix_hash(hs, hs->re, KS_NOISE_DHLEN) != 0)
        goto fail;
    off = KS_NOISE_DHLEN;
    if (hs->role == KS_NOISE_RESPONDER) {
        /* -> e, es, s, ss */
        if (mix_dh(hs, hs->s_sk, hs->re) != 0 ||                                /* es */
            decrypt_and_hash(hs, msg + off, KS_NOISE_DHLEN + KS_NOISE_TAGLEN, hs->rs,
                             sizeof(hs->rs), &n) != 0 || n != KS_NOISE_DHLEN)    /* s */
            goto fail;
        hs->has_rs = 1;
        off += KS_NOISE_DHLEN + KS_NOISE_TAGLEN;
        if (mix_dh(hs, hs->s_sk, hs->rs) != 0)                                  /* ss */
            goto fail;
    } else {
        /* <- e, ee, se */
        if (mix_dh(hs, hs->e_sk, hs->re) != 0 ||                                /* ee */
            mix_dh(hs, hs->s_sk, hs->re) != 0)                                  /* se */
            goto fail;
    }
    if (decrypt_and_hash(hs, msg + off, msglen - off, payload, payloadcap, payload_len) != 0)
        goto fail;
    hs->step++;
    return 0;
fail:
    *payload_len = 0;
    ks_noise_hs_wipe(hs);
    return -1;
}

int ks_noise_ik_remote_static(const struct ks_noise_hs *hs, uint8_t rs[KS_NOISE_DHLEN])
{
    if (hs->step < 0 || !hs->has_rs)
        return -1;
    memcpy(rs, hs->rs, KS_NOISE_DHLEN);
    return 0;
}

int ks_noise_ik_complete(const struct ks_noise_hs *hs)
{
    return hs->step == 2;
}

int ks_noise_ik_handshake_hash(const struct ks_noise_hs *hs, uint8_t h[KS_NOISE_HASHLEN])
{
    if (hs->step != 2)
        return -1;
    memcpy(h, hs->h, KS_NOISE_HASHLEN);
    return 0;
}

int ks_noise_ik_split(struct ks_noise_hs *hs, struct ks_noise_cipher *send,
                      struct ks_noise_cipher *recv, uint8_t *handshake_hash)
{
    uint8_t k1[KS_NOISE_HASHLEN], k2[KS_NOISE_HASHLEN];
    int rc = -1;

    ks_noise_cipher_wipe(send);
    ks_noise_cipher_wipe(recv);
    /* temp_k1, temp_k2 = HKDF(ck, zerolen, 2), each truncated to 32 bytes. */
    if (hs->step == 2 && hkdf2(hs->ck, NULL, 0, k1, k2) == 0) {
        ks_noise_cipher_init(send, hs->role == KS_NOISE_INITIATOR ? k1 : k2);
        ks_noise_cipher_init(recv, hs->role == KS_NOISE_INITIATOR ? k2 : k1);
        if (handshake_hash != NULL)
            memcpy(handshake_hash, hs->h, KS_NOISE_HASHLEN);
        rc = 0;
    }
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
    ks_noise_hs_wipe(hs);
    return rc;
}
