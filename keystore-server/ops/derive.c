/* Derive: ECDH with EC keys, X25519 and X448.  The shared secret is the
 * operation's output (like a decrypted message) and goes back to the client;
 * any KDF over it runs there.
 *
 * The peer's public key is checked here, not trusted to the client: it must
 * be of the key's own type and curve, on the curve and not the point at
 * infinity (EVP_PKEY_public_check: also n*Q = O), and for X25519/X448 it
 * must not be a small-order point, which would make the secret all zero
 * and independent of our key.  An EC peer key must name its curve (explicit
 * parameters are refused).  ECDH is plain (not cofactor) ECDH, the same
 * as OpenSSL's default provider; every supported curve has cofactor 1. */
#include "handlers.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "common/log.h"

/* An SPKI of P-521 is 158 bytes; anything far larger is not a public key. */
#define KS_PEER_DER_MAX 1024

static void bad_peer(struct ks_op *op, const struct ks_key *k, const char *why)
{
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PEER_KEY,
                "key %s (%s%s%s) refuses the peer's public key: %s; no secret was derived",
                k->name, ks_key_type_name(k->type), k->group[0] != '\0' ? " " : "", k->group, why);
}

/* Parse and validate the peer key; NULL after replying. */
static EVP_PKEY *peer_key(struct ks_op *op, const struct ks_key *k, const ProtobufCBinaryData *der)
{
    const unsigned char *p = der->data;
    char group[64], why[160];
    EVP_PKEY_CTX *cctx;
    EVP_PKEY *peer;
    int ok;

    if (der->len == 0 || der->len > KS_PEER_DER_MAX) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "peer_public_key_der is %zu bytes: send the peer's SubjectPublicKeyInfo "
                    "(1 to %d bytes of DER)", der->len, KS_PEER_DER_MAX);
        return NULL;
    }
    peer = d2i_PUBKEY_ex(NULL, &p, (long)der->len, NULL, NULL);
    ERR_clear_error();
    if (peer == NULL || (size_t)(p - der->data) != der->len) {
        EVP_PKEY_free(peer);
        /* OpenSSL refuses an EC point off the curve while decoding */
        bad_peer(op, k, "it is not a valid DER SubjectPublicKeyInfo (an EC point must lie on "
                 "the key's curve)");
        return NULL;
    }
    if (EVP_PKEY_get_base_id(peer) != EVP_PKEY_get_base_id(k->pkey)) {
        snprintf(why, sizeof(why), "it is a %s key, not %s",
                 EVP_PKEY_get0_type_name(peer) != NULL ? EVP_PKEY_get0_type_name(peer) : "different",
                 ks_key_type_name(k->type));
        goto refuse;
    }
    if (k->type == KEYSTORE__KEY_TYPE__KEY_TYPE_EC) {
        char enc[32];

        /* Explicit curve parameters are refused outright: OpenSSL matches
         * them to a named curve without comparing every field, so a peer
         * key with a missing or forged cofactor would pass as P-256
         * (Wycheproof ecdh_secp256r1 tcId 359, 361). */
        if (EVP_PKEY_get_utf8_string_param(peer, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
                                           NULL) != 1 ||
            strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0) {
            ERR_clear_error();
            snprintf(why, sizeof(why), "it carries explicit curve parameters (only a named curve "
                     "is accepted: send the curve's OID, as every TLS and X.509 peer does)");
            goto refuse;
        }
        if (EVP_PKEY_get_group_name(peer, group, sizeof(group), NULL) != 1 ||
            ks_canonical_group(group) == NULL || strcmp(ks_canonical_group(group), k->group) != 0) {
            ERR_clear_error();
            snprintf(why, sizeof(why), "it is not on curve %s (a named curve is required)", k->group);
            goto refuse;
        }
    }
    cctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
    ok = cctx != NULL && EVP_PKEY_public_check(cctx) == 1;
    EVP_PKEY_CTX_free(cctx);
    ERR_clear_error();
    if (!ok) {
        snprintf(why, sizeof(why), "it is not a valid public key (the point at infinity, off the "
                 "curve or outside the group)");
        goto refuse;
    }
    return peer;
refuse:
    bad_peer(op, k, why);
    EVP_PKEY_free(peer);
    return NULL;
}

static void reply_secret(struct ks_op *op, uint8_t *secret, size_t len)
{
    Keystore__DeriveResponse *dr = ks_arena_alloc(op->arena, sizeof(*dr));

    if (dr == NULL)
        return;
    keystore__derive_response__init(dr);
    dr->secret.data = secret;
    dr->secret.len = len;
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_DERIVE;
    op->resp->derive = dr;
}

static int is_ecx(const struct ks_key *k)
{
    return k->type == KEYSTORE__KEY_TYPE__KEY_TYPE_X25519 ||
           k->type == KEYSTORE__KEY_TYPE__KEY_TYPE_X448;
}

void ks_op_derive(struct ks_op *op, const Keystore__DeriveRequest *r)
{
    struct ks_key *k = ks_op_key_version(op, r->key, r->version, 1);
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *peer = NULL;
    char reason[256];
    uint8_t *secret;
    size_t len = 0;

    if (k == NULL)
        return;
    if (k->type != KEYSTORE__KEY_TYPE__KEY_TYPE_EC && !is_ecx(k)) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_WRONG_KEY_TYPE,
                    "key %s is %s: only EC, X25519 and X448 keys derive shared secrets",
                    k->name, ks_key_type_name(k->type));
        goto out;
    }
    if ((peer = peer_key(op, k, &r->peer_public_key_der)) == NULL)
        goto out;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
        EVP_PKEY_derive_set_peer_ex(ctx, peer, 0) != 1 ||
        EVP_PKEY_derive(ctx, NULL, &len) != 1 || len == 0 || len > 256) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_OPERATION_FAILED,
                    "key %s cannot derive with this peer key: %s", k->name,
                    ks_ossl_reason(reason, sizeof(reason)));
        goto out;
    }
    secret = ks_arena_alloc(op->arena, len);   /* wiped with the arena */
    if (secret == NULL)
        goto out;
    if (EVP_PKEY_derive(ctx, secret, &len) != 1 || (is_ecx(k) && sodium_is_zero(secret, len))) {
        sodium_memzero(secret, len);
        if (is_ecx(k)) {
            /* OpenSSL fails X25519/X448 whose result is all zero */
            ERR_clear_error();
            bad_peer(op, k, "it is a small-order point (the shared secret would be all zero)");
        } else {
            ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_OPERATION_FAILED,
                        "deriving with key %s failed: %s", k->name,
                        ks_ossl_reason(reason, sizeof(reason)));
        }
        goto out;
    }
    reply_secret(op, secret, len);
out:
    EVP_PKEY_free(peer);
    EVP_PKEY_CTX_free(ctx);
    ks_key_put(k);
}
