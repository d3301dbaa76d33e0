/* irbench: PKCS#1 v1.5 decryption latency through the keystore provider for
 * conformant versus non-conformant ciphertexts (implicit rejection should
 * make them take the same time).  Interleaved (good, bad, bad, good, ...) so
 * that load on the machine hits both alike; several runs; prints the median
 * and the 10th..90th percentile spread of each.  A benchmark, not a test: no
 * pass or fail on the figures.
 *
 * usage: irbench PRIVATE-KEY.pem keystore:NAME [SAMPLES [RUNS]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "testutil.h"

#define SETS 16
#define MAXK 1024

static EVP_PKEY *local, *ks;
static size_t k;
static int errors;

static void die(const char *what)
{
    fprintf(stderr, "irbench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void encrypt(int pad, const uint8_t *in, size_t inlen, uint8_t *ct)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, local, "provider=default");
    size_t ctlen = k;

    if (c == NULL || EVP_PKEY_encrypt_init(c) != 1 || EVP_PKEY_CTX_set_rsa_padding(c, pad) != 1
        || EVP_PKEY_encrypt(c, ct, &ctlen, in, inlen) != 1 || ctlen != k)
        die("encryption with the public key");
    EVP_PKEY_CTX_free(c);
}

/* A non-conformant block of kind i (raw RSA of a chosen block). */
static void bad_ct(int i, uint8_t *ct)
{
    uint8_t em[MAXK];
    size_t j;

    if (RAND_bytes(em, (int)k) != 1)
        die("RAND_bytes");
    for (j = 2; j < k; j++)
        em[j] |= 1;                               /* no zero byte: no separator */
    em[0] = 0;
    em[1] = 2;
    switch (i % 4) {
    case 0: em[0] = 1; break;                     /* first byte */
    case 1: em[1] = 1; break;                     /* block type 1 */
    case 2: em[5] = 0; break;                     /* PS of 3 bytes */
    case 3: break;                                /* no separator */
    }
    encrypt(RSA_NO_PADDING, em, k, ct);
}

static double decrypt_us(const uint8_t *ct)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, ks, NULL);
    uint8_t out[MAXK];
    size_t outlen = sizeof(out);
    double t;

    if (c == NULL || EVP_PKEY_decrypt_init(c) != 1
        || EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1)
        die("decrypt set-up");
    t = now_us();
    if (EVP_PKEY_decrypt(c, out, &outlen, ct, k) != 1)
        errors++;
    t = now_us() - t;
    EVP_PKEY_CTX_free(c);
    ERR_clear_error();
    return t;
}

static void summary(const char *label, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmpd);
    printf("  %-15s p50 %8.1f us   p10..p90 %8.1f .. %8.1f us", label, v[n / 2], v[n / 10],
           v[n - 1 - n / 10]);
}

int main(int argc, char **argv)
{
    uint8_t good[SETS][MAXK], bad[SETS][MAXK], msg[32];
    int samples = argc > 3 ? atoi(argv[3]) : 400, runs = argc > 4 ? atoi(argv[4]) : 3;
    double *g, *b, gm, bm;
    FILE *f;
    int r, i;

    if (argc < 3 || samples < 10 || runs < 1) {
        fprintf(stderr, "usage: irbench PRIVATE-KEY.pem keystore:NAME [SAMPLES [RUNS]]\n");
        return 2;
    }
    if (OSSL_PROVIDER_load(NULL, "default") == NULL || OSSL_PROVIDER_load(NULL, "keystore") == NULL)
        die("cannot load the default and keystore providers");
    if ((f = fopen(argv[1], "r")) == NULL)
        die(argv[1]);
    local = PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, NULL, "provider=default");
    fclose(f);
    if (local == NULL || (ks = tu_load_pkey(argv[2])) == NULL)
        die("cannot load the keys");
    k = (size_t)EVP_PKEY_get_size(local);
    if (k > MAXK)
        die("key too large");
    for (i = 0; i < SETS; i++) {
        if (RAND_bytes(msg, sizeof(msg)) != 1)
            die("RAND_bytes");
        encrypt(RSA_PKCS1_PADDING, msg, sizeof(msg), good[i]);
        bad_ct(i, bad[i]);
    }
    g = malloc(sizeof(double) * (size_t)samples);
    b = malloc(sizeof(double) * (size_t)samples);
    if (g == NULL || b == NULL)
        die("out of memory");
    printf("# PKCS#1 v1.5 decryption through %s (%zu-bit), %d conformant and %d non-conformant "
           "ciphertexts per run, interleaved\n", argv[2], k * 8, samples, samples);
    for (r = 0; r < runs; r++) {
        for (i = 0; i < samples; i++) {
            if (i % 2 == 0) {
                g[i] = decrypt_us(good[i % SETS]);
                b[i] = decrypt_us(bad[i % SETS]);
            } else {
                b[i] = decrypt_us(bad[i % SETS]);
                g[i] = decrypt_us(good[i % SETS]);
            }
        }
        printf("run %d:\n", r + 1);
        summary("conformant", g, samples);
        gm = g[samples / 2];
        printf("\n");
        summary("non-conformant", b, samples);
        bm = b[samples / 2];
        printf("\n  median non-conformant / conformant: %.3f\n", bm / gm);
    }
    printf("errors: %d (implicit rejection: always 0)\n", errors);
    free(g);
    free(b);
    return 0;
}
