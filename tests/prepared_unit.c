/* ops/prepared.c from inside, without a server: the one OAEP set-up
 * (ks_rsa_oaep_ctx_new) names the step a key rejected, as ks_op_decrypt
 * words its error, and keeps OpenSSL's reason for it; the prepared contexts
 * of every kind come from the cache again for the same key and digests,
 * never for another kind, key or digest, and the cache gives back its key
 * references when it evicts or is freed.
 *
 *   prepared_unit */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "ops/prepared.h"
#include "store/keytable.h"

static int failures;

static void check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

static int same_step(const char *got, const char *want)
{
    if (got == NULL || want == NULL)
        return got == want;
    return strcmp(got, want) == 0;
}

/* step ks_rsa_oaep_ctx_new names for pkey, md, mgf1; *reason set if
 * OpenSSL's error queue held one for it */
static const char *oaep_step(EVP_PKEY *pkey, const EVP_MD *md, const EVP_MD *mgf1, int *reason)
{
    EVP_PKEY_CTX *ctx = (EVP_PKEY_CTX *)1;
    const char *failed;

    ERR_clear_error();
    failed = ks_rsa_oaep_ctx_new(pkey, md, mgf1, &ctx);
    *reason = ERR_peek_error() != 0;
    ERR_clear_error();
    if (failed != NULL && ctx != NULL) {
        printf("FAIL: a context as well as the failed step '%s'\n", failed);
        failures++;
    }
    EVP_PKEY_CTX_free(failed == NULL ? ctx : NULL);
    return failed;
}

/* encrypt with OAEP md/mgf1 under pkey's public half, decrypt with ctx */
static int decrypts(EVP_PKEY *pkey, EVP_PKEY_CTX *ctx, const EVP_MD *md, const EVP_MD *mgf1)
{
    static const unsigned char msg[] = "prepared OAEP";
    unsigned char ct[512], pt[512];
    size_t ctlen = sizeof(ct), ptlen = sizeof(pt);
    EVP_PKEY_CTX *enc = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok;

    ok = enc != NULL && EVP_PKEY_encrypt_init(enc) == 1
         && EVP_PKEY_CTX_set_rsa_padding(enc, RSA_PKCS1_OAEP_PADDING) == 1
         && EVP_PKEY_CTX_set_rsa_oaep_md(enc, md) == 1
         && EVP_PKEY_CTX_set_rsa_mgf1_md(enc, mgf1) == 1
         && EVP_PKEY_encrypt(enc, ct, &ctlen, msg, sizeof(msg)) == 1
         && EVP_PKEY_decrypt(ctx, pt, &ptlen, ct, ctlen) == 1
         && ptlen == sizeof(msg) && memcmp(pt, msg, ptlen) == 0;
    EVP_PKEY_CTX_free(enc);
    ERR_clear_error();
    return ok;
}

static void oaep_setup_steps(EVP_PKEY *rsa, EVP_PKEY *ec, const EVP_MD *sha256, const EVP_MD *sha1)
{
    EVP_PKEY_CTX *ctx = NULL;
    const char *failed;
    int reason;

    failed = ks_rsa_oaep_ctx_new(rsa, sha256, sha1, &ctx);
    check(failed == NULL && ctx != NULL, "an RSA key and two digests: a context, no failed step");
    check(ctx != NULL && decrypts(rsa, ctx, sha256, sha1),
          "it decrypts OAEP SHA-256 with MGF1 SHA-1 (padding and both digests set)");
    check(ctx != NULL && !decrypts(rsa, ctx, sha256, sha256),
          "and not OAEP SHA-256 with MGF1 SHA-256 (the MGF1 digest is the one asked for)");
    EVP_PKEY_CTX_free(ctx);

    failed = oaep_step(ec, sha256, sha256, &reason);
    check(same_step(failed, "decryption") && reason,
          "an EC key: 'decryption' is the step it rejects, with OpenSSL's reason");
    failed = oaep_step(rsa, NULL, sha256, &reason);
    check(same_step(failed, "this OAEP digest") && reason,
          "no OAEP digest: 'this OAEP digest', with OpenSSL's reason");
    failed = oaep_step(rsa, sha256, NULL, &reason);
    check(same_step(failed, "this MGF1 digest") && reason,
          "no MGF1 digest: 'this MGF1 digest', with OpenSSL's reason");
}

static struct ks_key *key_of(EVP_PKEY *pkey)
{
    struct ks_key *k = calloc(1, sizeof(*k));

    if (k == NULL)
        abort();
    k->pkey = pkey;
    k->refs = 1;   /* ours: never released, so never freed by ks_key_put */
    return k;
}

static void prepared_kinds(EVP_PKEY *rsa, EVP_PKEY *ec, EVP_PKEY *ed, const EVP_MD *sha256,
                           const EVP_MD *sha1)
{
    struct ks_key *kr = key_of(rsa), *ke = key_of(ec), *kd = key_of(ed);
    EVP_PKEY_CTX *oaep, *sign, *ecdsa;
    EVP_MD_CTX *eddsa;

    oaep = ks_prep_rsa_oaep(kr, sha256, sha1);
    check(oaep != NULL && ks_prep_rsa_oaep(kr, sha256, sha1) == oaep,
          "OAEP: prepared once, the same context the next time");
    check(oaep != NULL && decrypts(rsa, oaep, sha256, sha1), "the prepared OAEP context decrypts");
    check(ks_prep_rsa_oaep(kr, sha256, sha256) != oaep && ks_prep_rsa_oaep(kr, sha1, sha1) != oaep,
          "OAEP: other digests, another context");
    sign = ks_prep_rsa_sign(kr);
    check(sign != NULL && sign != oaep && ks_prep_rsa_sign(kr) == sign,
          "RSA sign: its own context for the same key, cached");
    ecdsa = ks_prep_ecdsa(ke, sha256);
    check(ecdsa != NULL && ks_prep_ecdsa(ke, sha256) == ecdsa && ks_prep_ecdsa(ke, sha1) != ecdsa,
          "ECDSA: cached per digest");
    eddsa = ks_prep_eddsa(kd);
    check(eddsa != NULL && ks_prep_eddsa(kd) == eddsa, "EdDSA: cached");
    ERR_clear_error();
    check(ks_prep_rsa_oaep(ke, sha256, sha256) == NULL && ERR_peek_error() == 0,
          "OAEP with an EC key: no context, OpenSSL's error queue emptied");
    check(kr->refs == 1 + 4 && ke->refs == 1 + 2 && kd->refs == 1 + 1,
          "one key reference per cached context");
    ks_prep_flush();
    check(kr->refs == 1 && ke->refs == 1 && kd->refs == 1, "flushed: every reference given back");
    free(kr);
    free(ke);
    free(kd);
}

/* More keys than the cache holds: the least recently used is evicted. */
static void eviction(EVP_PKEY *ec, const EVP_MD *sha256)
{
    struct ks_key *k[KS_PREP_MAX + 1];
    int i, held = 0;

    for (i = 0; i <= KS_PREP_MAX; i++) {
        k[i] = key_of(ec);
        if (ks_prep_ecdsa(k[i], sha256) == NULL)
            break;
        if (i == 1)
            (void)ks_prep_ecdsa(k[0], sha256);   /* used again: k[1] is now the oldest */
    }
    check(i == KS_PREP_MAX + 1, "a context for each of KS_PREP_MAX + 1 keys");
    for (i = 0; i <= KS_PREP_MAX; i++)
        held += k[i]->refs - 1;
    check(held == KS_PREP_MAX && k[1]->refs == 1 && k[0]->refs == 2,
          "KS_PREP_MAX held, the least recently used key's given back");
    ks_prep_thread_free();
    for (i = 0, held = 0; i <= KS_PREP_MAX; i++) {
        held += k[i]->refs - 1;
        free(k[i]);
    }
    check(held == 0, "thread free: every reference given back");
}

int main(void)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_MD *sha256 = EVP_MD_fetch(NULL, "SHA256", NULL), *sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);

    if (rsa == NULL || ec == NULL || ed == NULL || sha256 == NULL || sha1 == NULL) {
        printf("FAIL: test keys or digests\n");
        return 1;
    }
    oaep_setup_steps(rsa, ec, sha256, sha1);
    prepared_kinds(rsa, ec, ed, sha256, sha1);
    eviction(ec, sha256);
    EVP_MD_free(sha256);
    EVP_MD_free(sha1);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    if (failures != 0) {
        printf("FAIL: %d checks\n", failures);
        return 1;
    }
    printf("PASS: prepared_unit\n");
    return 0;
}
