/* forkstress URI CHILDREN THREADS COUNT
 *
 * Loads a keystore key once, then forks CHILDREN processes and, in the parent
 * and every child, runs THREADS threads that each make COUNT signatures at
 * the same time.  Every message is unique (pid, thread, counter, random
 * bytes) and every signature is verified against its own message, so a reply
 * delivered to the wrong request, a connection shared across fork() or frames
 * interleaved between threads all show up as failures.
 * With FORKSTRESS_NO_ATFORK=1 the children are made with glibc's _Fork(),
 * which runs no pthread_atfork handler: the provider must notice the fork
 * without being told (its cached pid lives in a MADV_WIPEONFORK page).
 * Exit 0 only if every signature verified. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static EVP_PKEY *key;
static int count;

struct tresult { long ok, bad; };

static void *thread_main(void *arg)
{
    struct tresult *r = arg;
    unsigned char msg[64];
    int i;

    for (i = 0; i < count; i++) {
        int n = snprintf((char *)msg, sizeof(msg), "%d:%lu:%d:", (int)getpid(),
                         (unsigned long)pthread_self(), i);

        if (RAND_bytes(msg + n, (int)sizeof(msg) - n) != 1) {
            r->bad++;
            continue;
        }
        if (tu_sign_verify(key, msg, sizeof(msg)) == 1)
            r->ok++;
        else {
            if (r->bad == 0)
                ERR_print_errors_fp(stderr);
            r->bad++;
        }
    }
    return NULL;
}

/* Runs the threads of one process, and the same work in the calling thread
 * meanwhile: that one holds the connection made before the fork, which a
 * child must notice is not its own (the parent uses it at the same time).
 * Returns the number of failures. */
static long run_threads(int nthreads)
{
    pthread_t th[64];
    struct tresult res[65];
    long bad = 0, ok = 0;
    int t;

    memset(res, 0, sizeof(res));
    for (t = 0; t < nthreads; t++)
        if (pthread_create(&th[t], NULL, thread_main, &res[t]) != 0) {
            fprintf(stderr, "forkstress: pthread_create failed\n");
            return 1;
        }
    thread_main(&res[nthreads]);
    for (t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    for (t = 0; t <= nthreads; t++) {
        ok += res[t].ok;
        bad += res[t].bad;
    }
    if (ok != (long)(nthreads + 1) * count)
        bad += (long)(nthreads + 1) * count - ok - bad;
    return bad;
}

int main(int argc, char **argv)
{
    int children, threads, i, failed = 0;
    long bad;
    pid_t pids[256];
    const char *e = getenv("FORKSTRESS_NO_ATFORK");
    int no_atfork = e != NULL && strcmp(e, "1") == 0;

    if (argc != 5) {
        fprintf(stderr, "usage: forkstress URI CHILDREN THREADS COUNT\n");
        return 2;
    }
    children = atoi(argv[2]);
    threads = atoi(argv[3]);
    count = atoi(argv[4]);
    if (children < 0 || children > 256 || threads < 1 || threads > 64 || count < 1) {
        fprintf(stderr, "forkstress: CHILDREN 0..256, THREADS 1..64, COUNT >= 1\n");
        return 2;
    }
    key = tu_load_pkey(argv[1]);
    if (key == NULL) {
        fprintf(stderr, "forkstress: no key at %s\n", argv[1]);
        ERR_print_errors_fp(stderr);
        return 2;
    }
    /* Use the connection once before forking, so the children inherit it. */
    if (tu_sign_verify(key, (const unsigned char *)"warm-up", 7) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    for (i = 0; i < children; i++) {
        pids[i] = no_atfork ? _Fork() : fork();
        if (pids[i] < 0) {
            perror("fork");
            return 2;
        }
        if (pids[i] == 0)
            _exit(run_threads(threads) == 0 ? 0 : 1);
    }
    bad = run_threads(threads);
    for (i = 0; i < children; i++) {
        int st;

        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed++;
    }
    printf("forkstress: %d processes x %d threads x %d signatures: %ld failures in the parent, "
           "%d failing children\n", children + 1, threads + 1, count, bad, failed);
    EVP_PKEY_free(key);
    return bad == 0 && failed == 0 ? 0 : 1;
}
