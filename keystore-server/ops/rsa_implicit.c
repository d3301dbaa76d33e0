/* PKCS#1 v1.5 implicit rejection and the deterministic TLS premaster
 * substitute: see rsa_implicit.h for the algorithm and what is constant time. */
#include "rsa_implicit.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#define SHA256_LEN 32
#define PKCS1_OVERHEAD 11           /* 00 02, 8 bytes of PS at least, 00 */
#define LEN_CANDIDATES 128          /* 16-bit candidates for the synthetic length */

/* ---- constant-time helpers: masks are all ones (true) or all zeros ---- */

/* Hides a value from the optimiser so that mask arithmetic stays arithmetic. */
static inline uint32_t ct_barrier(uint32_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    __asm__("" : "+r"(x));
#endif
    return x;
}

static inline uint32_t ct_from_msb(uint32_t x)
{
    return 0u - (ct_barrier(x) >> 31);
}

static inline uint32_t ct_is_zero(uint32_t x)
{
    return ct_from_msb(~x & (x - 1));
}

static inline uint32_t ct_eq(uint32_t a, uint32_t b)
{
    return ct_is_zero(a ^ b);
}

/* a < b, unsigned */
static inline uint32_t ct_lt(uint32_t a, uint32_t b)
{
    return ct_from_msb(a ^ ((a ^ b) | ((a - b) ^ b)));
}

static inline uint32_t ct_select(uint32_t mask, uint32_t a, uint32_t b)
{
    mask = ct_barrier(mask);
    return (mask & a) | (~mask & b);
}

static inline uint8_t ct_select8(uint32_t mask, uint8_t a, uint8_t b)
{
    return (uint8_t)ct_select(mask, a, b);
}

/* ---- the derivation ---- */

/* Scratch kept in one secure-heap block (wiped on free). */
struct ir_scratch {
    size_t k;
    size_t size;
    uint8_t *block;
    uint8_t *c;       /* k: ciphertext left-padded to the modulus length (public) */
    uint8_t *em;      /* k: c^d mod n */
    uint8_t *d;       /* k: I2OSP(d, k) */
    uint8_t *am;      /* k: IRPRF(KDK, "message", k), or the TLS substitute */
    uint8_t *win;     /* k: selection / shifting window */
    uint8_t *cl;      /* 256: IRPRF(KDK, "length", 256) */
    uint8_t *dh;      /* 32: SHA-256(D) */
    uint8_t *kdk;     /* 32 */
};

static int scratch_new(struct ir_scratch *s, size_t k)
{
    uint8_t *p;

    memset(s, 0, sizeof(*s));
    s->k = k;
    s->size = 5 * k + 2 * LEN_CANDIDATES + 2 * SHA256_LEN;
    if ((p = OPENSSL_secure_zalloc(s->size)) == NULL)
        return -1;
    s->block = p;
    s->c = p;
    s->em = s->c + k;
    s->d = s->em + k;
    s->am = s->d + k;
    s->win = s->am + k;
    s->cl = s->win + k;
    s->dh = s->cl + 2 * LEN_CANDIDATES;
    s->kdk = s->dh + SHA256_LEN;
    return 0;
}

static void scratch_free(struct ir_scratch *s)
{
    OPENSSL_secure_clear_free(s->block, s->size);
    memset(s, 0, sizeof(*s));
}

/* Public checks on the key; returns k or 0. */
static size_t modulus_bytes(EVP_PKEY *priv)
{
    int k;

    if (priv == NULL || EVP_PKEY_get_base_id(priv) != EVP_PKEY_RSA)
        return 0;
    k = EVP_PKEY_get_size(priv);
    if (k < PKCS1_OVERHEAD || k > KS_RSA_IR_MAX_MODULUS_BYTES)
        return 0;
    return (size_t)k;
}

/* EM = I2OSP(c^d mod n, k), by OpenSSL's blinded private-key operation. */
static int raw_rsa(EVP_PKEY *priv, struct ir_scratch *s)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    size_t emlen = s->k;
    int rc = -1;

    if (ctx == NULL)
        return -1;
    if (EVP_PKEY_decrypt_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) == 1 &&
        EVP_PKEY_decrypt(ctx, s->em, &emlen, s->c, s->k) == 1 && emlen == s->k)
        rc = 0;
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* D = I2OSP(d, k).  The provider writes d in native byte order into our own
 * (secure, wiped) buffer: no BIGNUM copy of d is made. */
static int private_exponent(EVP_PKEY *priv, struct ir_scratch *s)
{
    static const uint16_t one = 1;
    OSSL_PARAM params[2];
    size_t i;
    uint8_t t;

    params[0] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_D, s->d, s->k);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_get_params(priv, params) != 1 || params[0].return_size != s->k)
        return -1;
    if (*(const uint8_t *)&one == 1) {          /* little endian: reverse */
        for (i = 0; i < s->k / 2; i++) {
            t = s->d[i];
            s->d[i] = s->d[s->k - 1 - i];
            s->d[s->k - 1 - i] = t;
        }
    }
    return 0;
}

static EVP_MAC_CTX *hmac_sha256_new(EVP_MAC *mac, const uint8_t *key, size_t keylen)
{
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (ctx == NULL || EVP_MAC_init(ctx, key, keylen, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* out = IRPRF(KDK, label, outlen), keyed by an initialised HMAC context. */
static int irprf(const EVP_MAC_CTX *keyed, const char *label, uint8_t *out, size_t outlen)
{
    uint8_t hdr[2], bits[2], block[SHA256_LEN];
    size_t pos, n, blen;
    unsigned iter = 0;
    EVP_MAC_CTX *ctx;
    int rc = 0;

    if (outlen * 8 > 0xffff)
        return -1;
    bits[0] = (uint8_t)((outlen * 8) >> 8);
    bits[1] = (uint8_t)(outlen * 8);
    for (pos = 0; pos < outlen && rc == 0; pos += n, iter++) {
        hdr[0] = (uint8_t)(iter >> 8);
        hdr[1] = (uint8_t)iter;
        n = outlen - pos < SHA256_LEN ? outlen - pos : SHA256_LEN;
        rc = -1;
        if ((ctx = EVP_MAC_CTX_dup(keyed)) == NULL)
            break;
        if (EVP_MAC_update(ctx, hdr, sizeof(hdr)) == 1 &&
            EVP_MAC_update(ctx, (const uint8_t *)label, strlen(label)) == 1 &&
            EVP_MAC_update(ctx, bits, sizeof(bits)) == 1 &&
            EVP_MAC_final(ctx, block, &blen, sizeof(block)) == 1 && blen == SHA256_LEN) {
            memcpy(out + pos, block, n);
            rc = 0;
        }
        EVP_MAC_CTX_free(ctx);
    }
    OPENSSL_cleanse(block, sizeof(block));
    return rc;
}

/* Everything up to the padding check: public checks, EM, KDK, then
 * IRPRF(KDK, label, amlen) into s->am and, if cl, the length candidates. */
static int derive(EVP_PKEY *priv, const uint8_t *ct, size_t ctlen, struct ir_scratch *s,
                  const char *label, size_t amlen, int want_cl)
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *kdkctx = NULL, *prf = NULL;
    EVP_MD *sha256 = NULL;
    size_t kdklen = 0;
    int rc = -1;

    if (ct == NULL || ctlen == 0 || ctlen > s->k)
        return -1;
    memcpy(s->c + (s->k - ctlen), ct, ctlen);
    if (raw_rsa(priv, s) != 0)                  /* includes the c >= n check */
        return -1;
    if (private_exponent(priv, s) != 0)
        return -1;
    if ((sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
        EVP_Digest(s->d, s->k, s->dh, NULL, sha256, NULL) != 1)
        goto out;
    OPENSSL_cleanse(s->d, s->k);                /* only its hash is needed now */
    if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
        (kdkctx = hmac_sha256_new(mac, s->dh, SHA256_LEN)) == NULL ||
        EVP_MAC_update(kdkctx, s->c, s->k) != 1 ||
        EVP_MAC_final(kdkctx, s->kdk, &kdklen, SHA256_LEN) != 1 || kdklen != SHA256_LEN)
        goto out;
    OPENSSL_cleanse(s->dh, SHA256_LEN);
    if ((prf = hmac_sha256_new(mac, s->kdk, SHA256_LEN)) == NULL ||
        irprf(prf, label, s->am, amlen) != 0 ||
        (want_cl && irprf(prf, "length", s->cl, 2 * LEN_CANDIDATES) != 0))
        goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free(prf);          /* frees cleanse their HMAC key state */
    EVP_MAC_CTX_free(kdkctx);
    EVP_MAC_free(mac);
    EVP_MD_free(sha256);
    return rc;
}

/* AL: the last candidate (masked to the bits of k - 10) that is <= k - 11. */
static uint32_t synthetic_length(const uint8_t *cl, size_t k)
{
    uint32_t max_sep = (uint32_t)k - 10, mask = max_sep, cand, len = 0;
    int i;

    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    for (i = 0; i < LEN_CANDIDATES; i++) {
        cand = (((uint32_t)cl[2 * i] << 8) | cl[2 * i + 1]) & mask;
        len = ct_select(ct_lt(cand, max_sep), cand, len);
    }
    return len;
}

int ks_rsa_pkcs1_decrypt_ir(EVP_PKEY *priv, const uint8_t *ct, size_t ctlen, uint8_t *out,
                            size_t outcap, size_t *outlen)
{
    struct ir_scratch s;
    size_t k = modulus_bytes(priv), i, n;
    uint32_t good, found, zero_index, is0, real_len, synth_len, len, shift, bit, m;
    int rc = -1;

    if (k == 0 || out == NULL || outlen == NULL || outcap < k - PKCS1_OVERHEAD)
        return -1;
    if (scratch_new(&s, k) != 0)
        return -1;
    if (derive(priv, ct, ctlen, &s, "message", k, 1) != 0)
        goto out;
    synth_len = synthetic_length(s.cl, k);

    /* The padding check, over all of EM. */
    good = ct_is_zero(s.em[0]) & ct_eq(s.em[1], 2);
    found = 0;
    zero_index = 0;
    for (i = 2; i < k; i++) {
        is0 = ct_is_zero(s.em[i]);
        zero_index = ct_select(~found & is0, (uint32_t)i, zero_index);
        found |= is0;
    }
    good &= found & ~ct_lt(zero_index, 2 + 8);
    real_len = (uint32_t)k - 1 - zero_index;        /* meaningful only if good */
    len = ct_select(good, real_len, synth_len);     /* 0 .. k-11 */

    /* Both candidate messages end at byte k-1 and fit in the last n = k-11
     * bytes: select byte by byte, then shift the message to the front. */
    n = k - PKCS1_OVERHEAD;
    for (i = 0; i < n; i++)
        s.win[i] = ct_select8(good, s.em[PKCS1_OVERHEAD + i], s.am[PKCS1_OVERHEAD + i]);
    shift = (uint32_t)n - len;
    for (bit = 1; bit < n; bit <<= 1) {
        m = ~ct_is_zero(shift & bit);
        for (i = 0; i < n; i++)
            s.win[i] = ct_select8(m, i + bit < n ? s.win[i + bit] : 0, s.win[i]);
    }
    for (i = 0; i < n; i++)
        out[i] = (uint8_t)(s.win[i] & ct_lt((uint32_t)i, len));
    *outlen = len;
    rc = 0;
out:
    scratch_free(&s);
    return rc;
}

int ks_rsa_tls_premaster_decrypt(EVP_PKEY *priv, const uint8_t *ct, size_t ctlen,
                                 unsigned client_version, unsigned alt_version,
                                 uint8_t out[KS_RSA_TLS_PREMASTER_LEN])
{
    const size_t pm = KS_RSA_TLS_PREMASTER_LEN;
    struct ir_scratch s;
    size_t k = modulus_bytes(priv), i;
    uint32_t good;
    int rc = -1;

    /* alt_version is range-checked but never used: see rsa_implicit.h. */
    if (k < PKCS1_OVERHEAD + pm || out == NULL || client_version == 0 ||
        client_version > 0xffff || alt_version > 0xffff)
        return -1;
    if (scratch_new(&s, k) != 0)
        return -1;
    if (derive(priv, ct, ctlen, &s, "tls premaster", pm, 0) != 0)
        goto out;

    /* 00 02 PS (k-51 non-zero bytes) 00 M (48 bytes); M's own version bytes
     * are not looked at (RFC 5246 7.4.7.1, the recommended construction). */
    good = ct_is_zero(s.em[0]) & ct_eq(s.em[1], 2);
    for (i = 2; i < k - pm - 1; i++)
        good &= ~ct_is_zero(s.em[i]);
    good &= ct_is_zero(s.em[k - pm - 1]);
    out[0] = (uint8_t)(client_version >> 8);
    out[1] = (uint8_t)client_version;
    for (i = 2; i < pm; i++)
        out[i] = ct_select8(good, s.em[k - pm + i], s.am[i]);
    rc = 0;
out:
    scratch_free(&s);
    return rc;
}
