/* sigloop URI STOPFILE DEADLINE_SECONDS
 *
 * One client of a keystore key that must survive a server crash: it signs
 * unique messages (pid, counter, random bytes) one after the other until
 * STOPFILE exists, retrying each message until it is signed, and verifies
 * every signature against its own message, so a reply that belonged to
 * another request (answered twice, or crossed) is caught.  Loading the key
 * is retried too: the server may be down when we start.
 * Prints "signed=N retries=N after_failure=N bad=N" (after_failure: messages
 * signed after the first failed call, i.e. after reconnecting by itself).
 * Exit 0 only if nothing was abandoned at the deadline and bad is 0.
 * With SIGLOOP_STOP_ON_ERROR set, the first failed call is not retried: its
 * OpenSSL error queue goes to stderr and the exit status is 3 (a client told
 * its key version was retired). */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


int main(int argc, char **argv)
{
    EVP_PKEY *key = NULL;
    long signed_ok = 0, retries = 0, after_failure = 0, bad = 0, i;
    int abandoned = 0;
    double deadline;

    if (argc != 4) {
        fprintf(stderr, "usage: sigloop URI STOPFILE DEADLINE_SECONDS\n");
        return 2;
    }
    deadline = now() + atof(argv[3]);
    while ((key = tu_load_pkey(argv[1])) == NULL && now() < deadline) {
        ERR_clear_error();
        retries++;
        usleep(50000);
    }
    if (key == NULL) {
        fprintf(stderr, "sigloop: cannot load %s before the deadline\n", argv[1]);
        return 1;
    }
    for (i = 0; access(argv[2], F_OK) != 0; i++) {
        unsigned char msg[64];
        int n = snprintf((char *)msg, sizeof(msg), "%d:%ld:", (int)getpid(), i), r;

        if (RAND_bytes(msg + n, (int)sizeof(msg) - n) != 1)
            return 1;
        if ((r = tu_sign_verify(key, msg, sizeof(msg))) == 0 && getenv("SIGLOOP_STOP_ON_ERROR")) {
            ERR_print_errors_fp(stderr);
            printf("signed=%ld retries=%ld after_failure=%ld bad=%ld\n", signed_ok, retries,
                   after_failure, bad);
            EVP_PKEY_free(key);
            return 3;
        }
        while (r == 0 && now() < deadline) {
            ERR_clear_error();   /* server down or restarting: try again */
            retries++;
            usleep(20000);
            r = tu_sign_verify(key, msg, sizeof(msg));
        }
        if (r == 0) {
            abandoned = 1;
            break;
        }
        if (r < 0) {
            bad++;
            continue;
        }
        signed_ok++;
        if (retries > 0)
            after_failure++;
    }
    EVP_PKEY_free(key);
    printf("signed=%ld retries=%ld after_failure=%ld bad=%ld\n", signed_ok, retries,
           after_failure, bad);
    if (abandoned)
        fprintf(stderr, "sigloop: a message could not be signed before the deadline\n");
    return !abandoned && bad == 0 ? 0 : 1;
}
