/* Checks keystore-server/ops/rsa_implicit.c against every vector in
 * tests/data/rsa-implicit-rejection/ (see SOURCE.md there):
 *   ir_vectors DIR
 * For each PKCS#1 vector: our output equals "msg" exactly (bytes and length),
 * twice (deterministic); where OpenSSL 3.0's own PKCS#1 decryption (explicit
 * rejection) accepts the block, it returns the same message.  For each TLS
 * vector ("client_version" present): our premaster equals "msg", starts with
 * client_version and its bytes 2..47 do not change with the versions asked
 * for; where OpenSSL 3.0's RSA_PKCS1_WITH_TLS_PADDING gives the same
 * premaster twice (the block is valid), ours has the same bytes 2..47.  Plus the public error cases.
 * Prints one line per failure and a summary; exit status 0 if all pass. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "rsa_implicit.h"

static int failures, checks;

static void check(int ok, const char *file, const char *title, const char *what)
{
    checks++;
    if (!ok) {
        failures++;
        printf("FAIL: %s: %s: %s\n", file, title, what);
        ERR_print_errors_fp(stdout);
    }
}

struct vec {
    char title[512], key[256];
    uint8_t ct[1024], msg[1024];
    size_t ctlen, msglen;
    long client_version, alt_version;
    int tls, have_ct;
};

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(s), i;
    unsigned v;

    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (i = 0; i < n / 2; i++) {
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static EVP_PKEY *load_key(const char *dir, const char *name)
{
    char path[4096];
    EVP_PKEY *pkey;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "r")) == NULL)
        return NULL;
    pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return pkey;
}

/* OpenSSL 3.0's explicit-rejection PKCS#1 decryption: 1 and the message if it
 * accepts the block, 0 if it rejects it. */
static int openssl_pkcs1(EVP_PKEY *pkey, const struct vec *v, uint8_t *out, size_t *outlen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok;

    ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
         EVP_PKEY_decrypt(ctx, out, outlen, v->ct, v->ctlen) == 1;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static int openssl_tls(EVP_PKEY *pkey, const struct vec *v, uint8_t out[48])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    unsigned int cv = (unsigned)v->client_version, alt = (unsigned)v->alt_version;
    OSSL_PARAM params[3];
    size_t outlen = 48;
    int ok;

    params[0] = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, &cv);
    params[1] = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, &alt);
    params[2] = OSSL_PARAM_construct_end();
    ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_WITH_TLS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_params(ctx, params) == 1 &&
         EVP_PKEY_decrypt(ctx, out, &outlen, v->ct, v->ctlen) == 1 && outlen == 48;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int n_valid, n_synthetic, n_tls_real, n_tls_subst;

static void run_vector(const char *dir, const char *file, const struct vec *v)
{
    uint8_t out[1024], out2[1024], ref[1024], ref2[48];
    size_t outlen = 0, outlen2 = 0, reflen = sizeof(ref);
    EVP_PKEY *pkey = load_key(dir, v->key);
    int k;

    check(pkey != NULL, file, v->title, "load key");
    if (pkey == NULL)
        return;
    k = EVP_PKEY_get_size(pkey);
    if (!v->tls) {
        memset(out, 0xaa, sizeof(out));
        check(ks_rsa_pkcs1_decrypt_ir(pkey, v->ct, v->ctlen, out, (size_t)k - 11, &outlen) == 0,
              file, v->title, "ks_rsa_pkcs1_decrypt_ir returns 0");
        check(outlen == v->msglen && memcmp(out, v->msg, v->msglen) == 0, file, v->title,
              "output equals the expected message (bytes and length)");
        check(out[k - 11] == 0xaa, file, v->title, "nothing written past k-11 bytes");
        check(ks_rsa_pkcs1_decrypt_ir(pkey, v->ct, v->ctlen, out2, sizeof(out2), &outlen2) == 0 &&
              outlen2 == outlen && memcmp(out, out2, outlen) == 0, file, v->title,
              "deterministic");
        if (openssl_pkcs1(pkey, v, ref, &reflen)) {
            n_valid++;
            check(reflen == outlen && memcmp(ref, out, outlen) == 0, file, v->title,
                  "valid block: same message as OpenSSL 3.0's RSA_PKCS1_PADDING");
        } else {
            n_synthetic++;
        }
    } else {
        check(ks_rsa_tls_premaster_decrypt(pkey, v->ct, v->ctlen, (unsigned)v->client_version,
                                           (unsigned)v->alt_version, out) == 0,
              file, v->title, "ks_rsa_tls_premaster_decrypt returns 0");
        check(v->msglen == 48 && memcmp(out, v->msg, 48) == 0, file, v->title,
              "premaster equals the expected one");
        check(ks_rsa_tls_premaster_decrypt(pkey, v->ct, v->ctlen, (unsigned)v->client_version,
                                           (unsigned)v->alt_version, out2) == 0 &&
              memcmp(out, out2, 48) == 0, file, v->title, "deterministic");
        check(out[0] == ((v->client_version >> 8) & 0xff) && out[1] == (v->client_version & 0xff),
              file, v->title, "premaster starts with the client version");
        /* Another client version changes bytes 0..1 only, valid block or
         * not: asking with two versions tells nothing. */
        check(ks_rsa_tls_premaster_decrypt(pkey, v->ct, v->ctlen, 0x0301, 0x0302, out2) == 0 &&
              out2[0] == 3 && out2[1] == 1 && memcmp(out + 2, out2 + 2, 46) == 0, file, v->title,
              "bytes 2..47 do not depend on the versions asked for");
        if (openssl_tls(pkey, v, ref) && openssl_tls(pkey, v, ref2)) {
            if (memcmp(ref, ref2, 48) == 0) {      /* OpenSSL found it valid */
                n_tls_real++;
                check(memcmp(ref + 2, out + 2, 46) == 0, file, v->title,
                      "valid block: bytes 2..47 as OpenSSL 3.0's TLS padding");
            } else {
                n_tls_subst++;
                check(memcmp(ref, out, 48) != 0, file, v->title,
                      "rejected by OpenSSL: not its random substitute");
            }
        } else {
            check(0, file, v->title, "OpenSSL 3.0 TLS padding runs");
        }
    }
    EVP_PKEY_free(pkey);
}

static int run_file(const char *dir, const char *file)
{
    char path[4096], line[8192], *eq, *val, *end;
    struct vec *v = calloc(1, sizeof(*v));
    int count = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (v == NULL || (f = fopen(path, "r")) == NULL) {
        free(v);
        check(0, file, "", "open");
        return 0;
    }
    for (;;) {
        int eof = fgets(line, sizeof(line), f) == NULL;

        if (!eof)
            line[strcspn(line, "\r\n")] = '\0';
        if (eof || line[0] == '\0') {
            if (v->have_ct) {
                run_vector(dir, file, v);
                count++;
            }
            memset(v, 0, sizeof(*v));
            if (eof)
                break;
            continue;
        }
        if (line[0] == '#' || (eq = strchr(line, '=')) == NULL)
            continue;
        *eq = '\0';
        for (end = eq; end > line && end[-1] == ' '; end--)
            end[-1] = '\0';
        for (val = eq + 1; *val == ' '; val++)
            ;
        if (strcmp(line, "title") == 0) {
            snprintf(v->title, sizeof(v->title), "%s", val);
        } else if (strcmp(line, "key") == 0) {
            snprintf(v->key, sizeof(v->key), "%s", val);
        } else if (strcmp(line, "ct") == 0) {
            check(unhex(val, v->ct, sizeof(v->ct), &v->ctlen) == 0, file, v->title, "parse ct");
            v->have_ct = 1;
        } else if (strcmp(line, "msg") == 0) {
            check(unhex(val, v->msg, sizeof(v->msg), &v->msglen) == 0, file, v->title,
                  "parse msg");
        } else if (strcmp(line, "client_version") == 0) {
            v->client_version = strtol(val, NULL, 0);
            v->tls = 1;
        } else if (strcmp(line, "alt_version") == 0) {
            v->alt_version = strtol(val, NULL, 0);
        }
    }
    fclose(f);
    free(v);
    printf("%s: %d vectors\n", file, count);
    return count;
}

/* Public failures must be errors; a bad block never is. */
static void error_cases(const char *dir)
{
    static const char *f = "error cases";
    EVP_PKEY *pkey = load_key(dir, "openssl-rsa-2048-2.pem");
    BIGNUM *n = NULL;
    uint8_t ct[300], out[300];
    size_t outlen, k;

    check(pkey != NULL, f, "", "load key");
    if (pkey == NULL)
        return;
    k = (size_t)EVP_PKEY_get_size(pkey);
    check(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
          BN_bn2binpad(n, ct, (int)k) == (int)k, f, "", "modulus");
    check(ks_rsa_pkcs1_decrypt_ir(pkey, ct, k, out, sizeof(out), &outlen) == -1, f, "c = n",
          "rejected");
    memset(ct, 0xff, sizeof(ct));
    check(ks_rsa_pkcs1_decrypt_ir(pkey, ct, k, out, sizeof(out), &outlen) == -1, f, "c > n",
          "rejected");
    check(ks_rsa_pkcs1_decrypt_ir(pkey, ct, k + 1, out, sizeof(out), &outlen) == -1, f,
          "ciphertext longer than the modulus", "rejected");
    check(ks_rsa_pkcs1_decrypt_ir(pkey, ct, 0, out, sizeof(out), &outlen) == -1, f,
          "empty ciphertext", "rejected");
    memset(ct, 0x01, sizeof(ct));
    check(ks_rsa_pkcs1_decrypt_ir(pkey, ct, k, out, k - 12, &outlen) == -1, f,
          "out shorter than k-11", "rejected");
    check(ks_rsa_pkcs1_decrypt_ir(pkey, ct, k, out, k - 11, &outlen) == 0 && outlen <= k - 11, f,
          "random block, out exactly k-11", "accepted");
    check(ks_rsa_tls_premaster_decrypt(pkey, ct, k, 0, 0, out) == -1, f, "client_version 0",
          "rejected");
    check(ks_rsa_tls_premaster_decrypt(pkey, ct, k, 0x10000, 0, out) == -1, f,
          "client_version > 0xffff", "rejected");
    check(ks_rsa_tls_premaster_decrypt(pkey, ct, k, 0x0303, 0, out) == 0 && out[0] == 3 &&
          out[1] == 3, f, "TLS, random block", "substitute with the client version");
    ERR_clear_error();
    BN_free(n);
    EVP_PKEY_free(pkey);
}

int main(int argc, char **argv)
{
    struct dirent *de;
    int total = 0;
    DIR *d;

    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/data/rsa-implicit-rejection\n", argv[0]);
        return 2;
    }
    if ((d = opendir(argv[1])) == NULL) {
        perror(argv[1]);
        return 2;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (len > 4 && strcmp(de->d_name + len - 4, ".txt") == 0)
            total += run_file(argv[1], de->d_name);
    }
    closedir(d);
    error_cases(argv[1]);
    printf("%d vectors (PKCS#1: %d valid and %d rejected by OpenSSL 3.0; TLS: %d valid, %d "
           "substituted), %d checks, %d failed\n", total, n_valid, n_synthetic, n_tls_real,
           n_tls_subst, checks, failures);
    return failures == 0 && total > 0 ? 0 : 1;
}
