/* The TLS 1.2 RSA key-exchange decryption (RSA_PKCS1_WITH_TLS_PADDING with
 * tls-client-version / tls-negotiated-version), run through EVP_PKEY_decrypt
 * exactly as libssl does, on a keystore key and on the same key in the
 * default provider.  A bad block (corrupted ciphertext, wrong version in the
 * premaster) must look like success: 48 bytes, no error, not the real
 * premaster; and it must not be quick to tell apart by timing.  Where the two
 * differ on purpose: keystore's substitute is deterministic (the default
 * provider's is fresh random, so asking twice would tell), and a rolled-back
 * premaster gives client_version || M[2..47] (RFC 5246 7.4.7.1), which makes
 * the handshake fail just the same.
 *
 * usage: tls_decrypt keystore:NAME private-key.pem   (provider from OPENSSL_CONF) */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define PMS 48
#define SAMPLES 41



static EVP_PKEY *load_file(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *pkey;

    if (f == NULL)
        return NULL;
    pkey = PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, NULL, "provider=default");
    fclose(f);
    return pkey;
}

/* PKCS#1 v1.5 encryption of a premaster with the public half (default provider). */
static int encrypt(EVP_PKEY *key, const unsigned char *pms, unsigned char *ct, size_t *ctlen)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, "provider=default");
    int ok = c != NULL && EVP_PKEY_encrypt_init(c) == 1
             && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1
             && EVP_PKEY_encrypt(c, ct, ctlen, pms, PMS) == 1;

    EVP_PKEY_CTX_free(c);
    return ok;
}

/* What libssl's tls_process_cke_rsa does.  Returns the EVP_PKEY_decrypt
 * result; *outlen and out are what the caller would see. */
static int tls_decrypt(EVP_PKEY *key, const unsigned char *ct, size_t ctlen,
                       unsigned char *out, size_t *outlen)
{
    unsigned int client = 0x0303, negotiated = 0x0303;
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int rc = -100;

    params[0] = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, &client);
    params[1] = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, &negotiated);
    params[2] = OSSL_PARAM_construct_end();
    if (c != NULL && EVP_PKEY_decrypt_init(c) == 1
        && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_WITH_TLS_PADDING) == 1
        && EVP_PKEY_CTX_set_params(c, params) == 1)
        rc = EVP_PKEY_decrypt(c, out, outlen, ct, ctlen);
    EVP_PKEY_CTX_free(c);
    return rc;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* One bad-block case on one key: success, 48 bytes, empty error queue,
 * not the real premaster. */
static void bad_case(const char *who, const char *what, EVP_PKEY *key, const unsigned char *ct,
                     size_t ctlen, const unsigned char *pms, unsigned char *first)
{
    unsigned char out[1024];
    size_t outlen = sizeof(out);
    char msg[256];
    int rc;

    ERR_clear_error();
    rc = tls_decrypt(key, ct, ctlen, out, &outlen);
    snprintf(msg, sizeof(msg), "%s, %s: decrypt succeeds with 48 bytes and no error (rc %d, %zu bytes)",
             who, what, rc, outlen);
    tu_check(rc == 1 && outlen == PMS && ERR_peek_error() == 0, msg);
    snprintf(msg, sizeof(msg), "%s, %s: the result is not the real premaster", who, what);
    tu_check(memcmp(out, pms, PMS) != 0, msg);
    if (first != NULL)
        memcpy(first, out, PMS);
}

int main(int argc, char **argv)
{
    unsigned char pms[PMS], badver[PMS], ct[1024], ct_bad[1024], ct_ver[1024], out[1024];
    unsigned char r1[PMS], r2[PMS], d1[PMS], d2[PMS];
    size_t ctlen = sizeof(ct), ct_verlen = sizeof(ct_ver), outlen;
    double good[SAMPLES], bad[SAMPLES], mg, mb;
    EVP_PKEY *ks, *local;
    int i, rc;

    if (argc != 3) {
        fprintf(stderr, "usage: tls_decrypt keystore:NAME private-key.pem\n");
        return 2;
    }
    if ((ks = tu_load_pkey(argv[1])) == NULL || (local = load_file(argv[2])) == NULL) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "tls_decrypt: cannot load %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    pms[0] = 0x03;
    pms[1] = 0x03;
    memcpy(badver, pms, PMS);
    if (RAND_bytes(pms + 2, PMS - 2) != 1 || RAND_bytes(badver + 2, PMS - 2) != 1
        || !encrypt(local, pms, ct, &ctlen)) {
        ERR_print_errors_fp(stderr);
        return 2;
    }
    badver[1] = 0x01; /* TLS 1.0 in the premaster of a TLS 1.2 client: a rollback */
    if (!encrypt(local, badver, ct_ver, &ct_verlen))
        return 2;
    memcpy(ct_bad, ct, ctlen);
    ct_bad[ctlen / 2] ^= 0x5a; /* garbles the whole PKCS#1 block */

    /* A good block gives the premaster, on both providers. */
    outlen = sizeof(out);
    rc = tls_decrypt(ks, ct, ctlen, out, &outlen);
    tu_check(rc == 1 && outlen == PMS && memcmp(out, pms, PMS) == 0, "keystore: good premaster decrypts");
    outlen = sizeof(out);
    rc = tls_decrypt(local, ct, ctlen, out, &outlen);
    tu_check(rc == 1 && outlen == PMS && memcmp(out, pms, PMS) == 0, "default: good premaster decrypts");

    /* Bad blocks look like success, on both providers. */
    bad_case("keystore", "corrupted ciphertext", ks, ct_bad, ctlen, pms, r1);
    bad_case("keystore", "corrupted ciphertext again", ks, ct_bad, ctlen, pms, r2);
    bad_case("default", "corrupted ciphertext", local, ct_bad, ctlen, pms, d1);
    bad_case("default", "corrupted ciphertext again", local, ct_bad, ctlen, pms, d2);
    /* OpenSSL 3.0 substitutes a fresh random premaster each time; keystore's
     * answer to a ciphertext is always the same (implicit rejection). */
    tu_check(memcmp(r1, r2, PMS) == 0 && r1[0] == 0x03 && r1[1] == 0x03,
             "keystore: a bad block's substitute is deterministic and starts with the client version");
    bad_case("keystore", "rolled-back version", ks, ct_ver, ct_verlen, badver, r1);
    tu_check(r1[0] == 0x03 && r1[1] == 0x03 && memcmp(r1 + 2, badver + 2, PMS - 2) == 0,
             "keystore: rolled-back version gives client_version || M[2..47] (RFC 5246 7.4.7.1)");
    bad_case("default", "rolled-back version", local, ct_ver, ct_verlen, badver, NULL);

    /* Timing: interleaved good and bad decryptions through the keystore,
     * each first in every other pair (whichever runs first is slower); the
     * medians must be close (a fast failure path would stand out). */
    for (i = 0; i < SAMPLES; i++) {
        int pass;

        for (pass = 0; pass < 2; pass++) {
            int is_good = (pass == 0) == (i % 2 == 0);
            double t;

            outlen = sizeof(out);
            t = now();
            rc = tls_decrypt(ks, is_good ? ct : ct_bad, ctlen, out, &outlen);
            t = now() - t;
            if (is_good)
                good[i] = t;
            else
                bad[i] = t;
            if (rc != 1)
                tu_check(0, is_good ? "keystore: good premaster in the timing loop"
                                    : "keystore: bad premaster in the timing loop");
        }
    }
    qsort(good, SAMPLES, sizeof(double), cmp_double);
    qsort(bad, SAMPLES, sizeof(double), cmp_double);
    mg = good[SAMPLES / 2];
    mb = bad[SAMPLES / 2];
    printf("-- median good %.1f us, bad %.1f us\n", mg * 1e6, mb * 1e6);
    tu_check(mb > mg * 0.5 && mb < mg * 2.0, "keystore: bad and good blocks take about the same time");

    EVP_PKEY_free(ks);
    EVP_PKEY_free(local);
    printf("%d failure(s)\n", tu_failures);
    return tu_failures == 0 ? 0 : 1;
}
