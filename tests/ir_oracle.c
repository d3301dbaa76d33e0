/* ir_oracle ADDR KEY PUBKEY.pem OUT: the Bleichenbacher attack surface of
 * PKCS#1 v1.5 decryption, against a running keystored holding the RSA key KEY.
 *
 * Speaks DecryptRequests on the client socket as an attacker with a decrypt
 * grant would.  Ciphertexts are built from chosen encryption blocks (raw RSA
 * with the public key): conformant ones with messages of many lengths, and
 * non-conformant ones of every kind (first byte, block type, no separator,
 * padding shorter than 8 bytes), plus random ciphertexts.  Each is asked
 * twice in PADDING_PKCS1 mode, and twice with client version 0x0303 and once
 * with 0x0301 in PADDING_PKCS1_TLS mode.  An oracle is any answer that tells
 * conformant from non-conformant:
 *   - an error for some ciphertexts and a plaintext for others;
 *   - two different answers to the same question (a fresh random substitute);
 *   - in TLS mode, bytes 2..47 that change with the client version asked for.
 * Checked here: none of these; conformant blocks decrypt to their message;
 * TLS answers are 48 bytes starting with the client version.  Every answer is
 * written to OUT ("pkcs1 CT ANSWER" / "tls VERSION CT ANSWER", hex, or ERROR)
 * for the test to compare with the Python reference model, which computes the
 * synthetic messages from the private key.  Exit 0 only if all checks pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "wire.h"

#define MAXK 1024
#define PMS 48

static int fd = -1;
static uint64_t next_id = 1;
static FILE *out;
static const char *keyname;
static EVP_PKEY *pub;
static size_t k;
static int failures, reported;
static int n_err_good, n_err_bad, n_good, n_bad, n_tls_differ, n_tls_version_leak;

static void fail(const char *what, const char *title)
{
    failures++;
    if (reported++ < 20)
        fprintf(stderr, "FAIL: %s: %s\n", title, what);
}

static void hex(FILE *f, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

/* One decrypt; returns the plaintext length, or -1 for an error reply (its
 * text in errtext).  Transport failures end the test. */
static long decrypt(Keystore__Padding pad, unsigned cv, const uint8_t *ct, uint8_t *pt,
                    char *errtext, size_t errlen)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__DecryptRequest dr = KEYSTORE__DECRYPT_REQUEST__INIT;
    Keystore__Response *resp = NULL;
    char err[KS_ERRLEN];
    long n = -1;

    dr.key = (char *)keyname;
    dr.padding = pad;
    dr.ciphertext.data = (uint8_t *)ct;
    dr.ciphertext.len = k;
    dr.tls_client_version = cv;
    req.id = next_id++;
    req.body_case = KEYSTORE__REQUEST__BODY_DECRYPT;
    req.decrypt = &dr;
    if (ks_call(fd, KS_DEFAULT_MAX_FRAME, &req, &resp, err, sizeof(err)) != 0) {
        fprintf(stderr, "FAIL: transport: %s\n", err);
        exit(1);
    }
    if (resp->body_case == KEYSTORE__RESPONSE__BODY_DECRYPT && resp->decrypt != NULL
        && resp->decrypt->plaintext.len <= MAXK) {
        n = (long)resp->decrypt->plaintext.len;
        if (n > 0)
            memcpy(pt, resp->decrypt->plaintext.data, (size_t)n);
    } else if (resp->body_case == KEYSTORE__RESPONSE__BODY_ERROR && resp->error != NULL) {
        snprintf(errtext, errlen, "%s %s", ks_error_code_name(resp->error->code),
                 resp->error->message);
    } else {
        snprintf(errtext, errlen, "unexpected reply");
    }
    keystore__response__free_unpacked(resp, NULL);
    return n;
}

static void record(const char *mode, unsigned cv, const uint8_t *ct, const uint8_t *pt, long n)
{
    fprintf(out, "%s ", mode);
    if (cv != 0)
        fprintf(out, "%04x ", cv);
    hex(out, ct, k);
    fputc(' ', out);
    if (n < 0)
        fputs("ERROR", out);
    else if (n == 0)
        fputs("-", out);
    else
        hex(out, pt, (size_t)n);
    fputc('\n', out);
}

/* ct = EM^e mod n (RSA without padding, public key). */
static void encrypt_block(const uint8_t *em, uint8_t *ct)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    size_t ctlen = k;

    if (c == NULL || EVP_PKEY_encrypt_init(c) != 1
        || EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING) != 1
        || EVP_PKEY_encrypt(c, ct, &ctlen, em, k) != 1 || ctlen != k) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "FAIL: raw RSA encryption\n");
        exit(1);
    }
    EVP_PKEY_CTX_free(c);
}

static void nonzero_random(uint8_t *p, size_t n)
{
    size_t i;

    if (RAND_bytes(p, (int)n) != 1)
        exit(1);
    for (i = 0; i < n; i++)
        while (p[i] == 0)
            if (RAND_bytes(p + i, 1) != 1)
                exit(1);
}

/* 00 02 PS 00 M with a random non-zero PS. */
static void make_block(uint8_t *em, const uint8_t *msg, size_t mlen)
{
    em[0] = 0;
    em[1] = 2;
    nonzero_random(em + 2, k - 3 - mlen);
    em[k - 1 - mlen] = 0;
    memcpy(em + k - mlen, msg, mlen);
}

/* good: 1 conformant (msg, mlen its message), 0 not, -1 unknown (random). */
static void probe(const uint8_t *ct, int good, const uint8_t *msg, size_t mlen, const char *title)
{
    uint8_t a[MAXK], b[MAXK], t1[MAXK], t2[MAXK], t3[MAXK];
    char e1[512] = "", e2[512] = "";
    long na, nb, n1, n2, n3;
    int tls_good = good == 1 && mlen == PMS;

    na = decrypt(KEYSTORE__PADDING__PADDING_PKCS1, 0, ct, a, e1, sizeof(e1));
    nb = decrypt(KEYSTORE__PADDING__PADDING_PKCS1, 0, ct, b, e2, sizeof(e2));
    record("pkcs1", 0, ct, a, na);
    if (good == 1)
        n_good++, n_err_good += na < 0;
    else if (good == 0)
        n_bad++, n_err_bad += na < 0;
    if (na < 0 || nb < 0)
        fail(e1[0] ? e1 : e2, title);
    else if (na != nb || memcmp(a, b, (size_t)na) != 0)
        fail("PKCS#1: two different answers to the same ciphertext", title);
    else if (good == 1 && ((size_t)na != mlen || memcmp(a, msg, mlen) != 0))
        fail("PKCS#1: a conformant block does not decrypt to its message", title);

    n1 = decrypt(KEYSTORE__PADDING__PADDING_PKCS1_TLS, 0x0303, ct, t1, e1, sizeof(e1));
    n2 = decrypt(KEYSTORE__PADDING__PADDING_PKCS1_TLS, 0x0303, ct, t2, e1, sizeof(e1));
    n3 = decrypt(KEYSTORE__PADDING__PADDING_PKCS1_TLS, 0x0301, ct, t3, e1, sizeof(e1));
    record("tls", 0x0303, ct, t1, n1);
    record("tls", 0x0301, ct, t3, n3);
    if (n1 != PMS || n2 != PMS || n3 != PMS) {
        fail(e1[0] ? e1 : "TLS: an answer that is not 48 bytes", title);
        return;
    }
    if (memcmp(t1, t2, PMS) != 0) {
        n_tls_differ++;
        fail("TLS: two different premasters for the same ciphertext", title);
    }
    if (t1[0] != 3 || t1[1] != 3 || t3[0] != 3 || t3[1] != 1)
        fail("TLS: the premaster does not start with the client version", title);
    if (memcmp(t1 + 2, t3 + 2, PMS - 2) != 0) {
        n_tls_version_leak++;
        fail("TLS: bytes 2..47 change with the client version asked for", title);
    }
    if (tls_good && memcmp(t1 + 2, msg + 2, PMS - 2) != 0)
        fail("TLS: a conformant 48-byte block does not give its bytes 2..47", title);
    if (tls_good && msg[0] == 3 && msg[1] == 3 && memcmp(t1, msg, PMS) != 0)
        fail("TLS: a good premaster does not decrypt to itself", title);
}

int main(int argc, char **argv)
{
    static const size_t lens[] = {0, 1, 2, 8, 16, 32, 47, 48, 48, 48, 49, 64, 100, 128, 200};
    uint8_t em[MAXK], ct[MAXK], msg[MAXK], bad[MAXK];
    char err[KS_ERRLEN], title[128];
    FILE *f;
    size_t i, j, mlen;
    int round;

    if (argc != 5) {
        fprintf(stderr, "usage: ir_oracle ADDR KEY PUBKEY.pem OUT\n");
        return 2;
    }
    keyname = argv[2];
    if ((f = fopen(argv[3], "r")) == NULL || (pub = PEM_read_PUBKEY(f, NULL, NULL, NULL)) == NULL) {
        fprintf(stderr, "FAIL: cannot read the public key %s\n", argv[3]);
        return 2;
    }
    fclose(f);
    k = (size_t)EVP_PKEY_get_size(pub);
    if (k < 64 || k > MAXK || (out = fopen(argv[4], "w")) == NULL)
        return 2;
    if ((fd = ks_connect(argv[1], 30000, err, sizeof(err))) < 0
        || ks_hello(fd, "ir_oracle", NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "FAIL: %s\n", err);
        return 1;
    }
    for (round = 0; round < 2; round++) {
        /* conformant: every length from empty to the longest, k-11 */
        for (i = 0; i <= sizeof(lens) / sizeof(lens[0]); i++) {
            mlen = i < sizeof(lens) / sizeof(lens[0]) ? lens[i] : k - 11;
            if (RAND_bytes(msg, (int)k) != 1)
                return 1;
            if (mlen == PMS && i % 2 == 0)
                msg[0] = 3, msg[1] = (uint8_t)(i % 4 == 0 ? 3 : 1);  /* a premaster, or a rollback */
            make_block(em, msg, mlen);
            encrypt_block(em, ct);
            snprintf(title, sizeof(title), "conformant, %zu-byte message", mlen);
            probe(ct, 1, msg, mlen, title);

            /* the same block made non-conformant in each way the check knows */
            for (j = 0; j < 7; j++) {
                memcpy(bad, em, k);
                switch (j) {
                case 0: bad[0] = 1; break;                          /* first byte */
                case 1: bad[1] = 1; break;                          /* block type 1 */
                case 2: bad[1] = (uint8_t)(3 + round); break;       /* another type */
                case 3: bad[2 + (i + round) % 8] = 0; break;        /* PS of 0..7 bytes */
                case 4: bad[2] = 0; break;                          /* empty PS */
                case 5: nonzero_random(bad + 2, k - 2); break;      /* no separator */
                case 6: bad[1] = 0; break;                          /* 00 00 */
                }
                encrypt_block(bad, ct);
                snprintf(title, sizeof(title), "non-conformant (kind %zu), from a %zu-byte message",
                         j, mlen);
                probe(ct, 0, NULL, 0, title);
            }
        }
        /* random ciphertexts (almost all non-conformant) */
        for (i = 0; i < 10; i++) {
            if (RAND_bytes(ct, (int)k) != 1)
                return 1;
            ct[0] &= 0x3f;                                          /* below n */
            probe(ct, -1, NULL, 0, "random ciphertext");
        }
    }
    fclose(out);
    printf("-- PKCS#1 mode: error replies for %d of %d non-conformant and %d of %d conformant "
           "ciphertexts\n", n_err_bad, n_bad, n_err_good, n_good);
    printf("-- TLS mode: %d ciphertexts answered differently twice, %d whose bytes 2..47 "
           "change with the client version\n", n_tls_differ, n_tls_version_leak);
    if (n_err_bad > 0 && n_err_good == 0)
        printf("-- a Bleichenbacher oracle: conformant blocks decrypt, the others are errors\n");
    printf("%d failure(s)\n", failures);
    return failures == 0 ? 0 : 1;
}
