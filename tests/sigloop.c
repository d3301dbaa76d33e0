/* sigloop URI COUNT DEADLINE_SECONDS
 *
 * One client of a keystore key that must survive a server crash: it signs
 * COUNT unique messages (pid, counter, random bytes) one after the other,
 * retrying each until it succeeds, and verifies every signature against its
 * own message, so a reply that belonged to another request (answered twice,
 * or crossed) is caught.  Loading the key is retried too: the server may be
 * down when we start.  Prints "signed=N retries=N bad=N"; exit 0 only if
 * all COUNT signatures were made and verified before the deadline. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static EVP_PKEY *load(const char *uri)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    EVP_PKEY *pkey = NULL;

    while (st != NULL && pkey == NULL && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);

        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return pkey;
}

/* 1 signed and verified, 0 the call failed (retry), -1 a wrong signature. */
static int sign_verify(EVP_PKEY *key, const unsigned char *msg, size_t n)
{
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, key) == 1
             && EVP_DigestSign(c, sig, &siglen, msg, n) == 1;

    EVP_MD_CTX_free(c);
    if (!ok)
        return 0;
    c = EVP_MD_CTX_new();
    ok = c != NULL && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, key) == 1
         && EVP_DigestVerify(c, sig, siglen, msg, n) == 1;
    EVP_MD_CTX_free(c);
    return ok ? 1 : -1;
}

int main(int argc, char **argv)
{
    EVP_PKEY *key = NULL;
    long count, signed_ok = 0, retries = 0, bad = 0, i;
    double deadline;

    if (argc != 4) {
        fprintf(stderr, "usage: sigloop URI COUNT DEADLINE_SECONDS\n");
        return 2;
    }
    count = atol(argv[2]);
    deadline = now() + atof(argv[3]);
    while ((key = load(argv[1])) == NULL && now() < deadline) {
        ERR_clear_error();
        retries++;
        usleep(50000);
    }
    if (key == NULL) {
        fprintf(stderr, "sigloop: cannot load %s before the deadline\n", argv[1]);
        return 1;
    }
    for (i = 0; i < count && now() < deadline; i++) {
        unsigned char msg[64];
        int n = snprintf((char *)msg, sizeof(msg), "%d:%ld:", (int)getpid(), i), r;

        if (RAND_bytes(msg + n, (int)sizeof(msg) - n) != 1)
            return 1;
        while ((r = sign_verify(key, msg, sizeof(msg))) == 0 && now() < deadline) {
            ERR_clear_error();   /* server down or restarting: try again */
            retries++;
            usleep(20000);
        }
        if (r == 1)
            signed_ok++;
        else if (r < 0)
            bad++;
    }
    EVP_PKEY_free(key);
    printf("signed=%ld retries=%ld bad=%ld\n", signed_ok, retries, bad);
    return signed_ok == count && bad == 0 ? 0 : 1;
}
