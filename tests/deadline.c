/* deadline URI [--repeat]
 *
 * Loads a keystore key and signs once (the server is healthy), prints
 * "ready", then waits for a line on stdin (the test freezes the server
 * with SIGSTOP meanwhile) and signs again, printing
 * "elapsed_ms=N result=ok|failed" and the OpenSSL errors (with --repeat,
 * once more for every further line, until end of input).  The test
 * checks that the provider's `timeout` bounds the whole operation,
 * reconnects and retries included, not each receive. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sign_once(EVP_PKEY *key)
{
    static const unsigned char msg[] = "deadline test";
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, key) == 1
             && EVP_DigestSign(c, sig, &siglen, msg, sizeof(msg)) == 1;

    EVP_MD_CTX_free(c);
    return ok;
}

int main(int argc, char **argv)
{
    char line[16], errbuf[512];
    EVP_PKEY *key;
    long long t0;
    int ok;

    if (argc != 2 && !(argc == 3 && strcmp(argv[2], "--repeat") == 0)) {
        fprintf(stderr, "usage: deadline URI [--repeat]\n");
        return 2;
    }
    key = tu_load_pkey(argv[1]);
    if (key == NULL || !sign_once(key)) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "deadline: cannot load or sign with %s while the server is up\n", argv[1]);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return 1;
    do {
        t0 = now_ms();
        ok = sign_once(key);
        errbuf[0] = '\0';
        if (!ok)
            ERR_error_string_n(ERR_peek_error(), errbuf, sizeof(errbuf));
        printf("elapsed_ms=%lld result=%s\n", now_ms() - t0, ok ? "ok" : "failed");
        if (!ok)
            ERR_print_errors_fp(stdout);
        ERR_clear_error();
        fflush(stdout);
    } while (argc == 3 && fgets(line, sizeof(line), stdin) != NULL);
    EVP_PKEY_free(key);
    return 0;
}
