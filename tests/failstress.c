/* failstress URI STOPFILE LONG_PROCS SHORT_PROCS THREADS
 * failstress --load-loop URI SECONDS THREADS
 *
 * Load for a provider with several servers (tests/test_failover.sh).  Loads
 * the key once, then forks LONG_PROCS processes that sign until STOPFILE
 * exists, and keeps SHORT_PROCS processes alive that each sign for about
 * 0.3 s and exit (so new processes keep being forked from the loaded key
 * all along).  Every process runs THREADS threads.  Nothing is retried: a
 * failed call counts as failed.  Every signature is verified against its
 * own unique message.  Prints "ok=N failed=N bad=N forks=N" and the first
 * errors; exit 0 only if failed and bad are 0.
 *
 * --load-loop: THREADS threads load the key over and over for SECONDS, as
 * a client does while its only server is down, and print
 * "loads=N failed=N slowest_ms=N" (tests/test_failover_backoff.sh counts the
 * connection attempts that cost the server). */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

struct shared { long ok, failed, bad, errors_printed; };

static EVP_PKEY *key;
static struct shared *sh;
static const char *stopfile;
static double until;     /* this process stops at this time (0: at STOPFILE) */

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int stopping(void)
{
    return access(stopfile, F_OK) == 0 || (until > 0 && now() >= until);
}

static void report_error(void)
{
    char buf[512];
    unsigned long e;

    if (__atomic_fetch_add(&sh->errors_printed, 1, __ATOMIC_RELAXED) >= 5) {
        ERR_clear_error();
        return;
    }
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "failstress[%d]: %s\n", (int)getpid(), buf);
    }
}

static void *thread_main(void *arg)
{
    long i;

    (void)arg;
    for (i = 0; !stopping(); i++) {
        unsigned char msg[64];
        int n = snprintf((char *)msg, sizeof(msg), "%d:%lu:%ld:", (int)getpid(),
                         (unsigned long)pthread_self(), i), r;

        if (RAND_bytes(msg + n, (int)sizeof(msg) - n) != 1)
            r = 0;
        else
            r = tu_sign_verify(key, msg, sizeof(msg));
        if (r == 1) {
            __atomic_fetch_add(&sh->ok, 1, __ATOMIC_RELAXED);
        } else if (r == 0) {
            __atomic_fetch_add(&sh->failed, 1, __ATOMIC_RELAXED);
            report_error();
        } else {
            __atomic_fetch_add(&sh->bad, 1, __ATOMIC_RELAXED);
            ERR_clear_error();
        }
    }
    return NULL;
}

static void run_threads(int nthreads)
{
    pthread_t t[64];
    int i, n = 0;

    for (i = 0; i < nthreads && i < 64; i++)
        if (pthread_create(&t[n], NULL, thread_main, NULL) == 0)
            n++;
    for (i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

static pid_t spawn(int nthreads, double seconds)
{
    pid_t pid = fork();

    if (pid == 0) {
        until = seconds > 0 ? now() + seconds : 0;
        run_threads(nthreads);
        _exit(0);
    }
    return pid;
}

static const char *loop_uri;
static double loop_end;
static long loop_loads, loop_failed, loop_slowest_ms;

static void *load_thread(void *arg)
{
    (void)arg;
    while (now() < loop_end) {
        double t0 = now();
        EVP_PKEY *k = tu_load_pkey(loop_uri);
        long ms = (long)((now() - t0) * 1000);

        __atomic_fetch_add(&loop_loads, 1, __ATOMIC_RELAXED);
        if (k == NULL)
            __atomic_fetch_add(&loop_failed, 1, __ATOMIC_RELAXED);
        ERR_clear_error();
        EVP_PKEY_free(k);
        if (ms > __atomic_load_n(&loop_slowest_ms, __ATOMIC_RELAXED))
            __atomic_store_n(&loop_slowest_ms, ms, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int load_loop(const char *uri, double seconds, int nthreads)
{
    pthread_t t[64];
    int i, n = 0;

    loop_uri = uri;
    loop_end = now() + seconds;
    for (i = 0; i < nthreads && i < 64; i++)
        if (pthread_create(&t[n], NULL, load_thread, NULL) == 0)
            n++;
    for (i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("loads=%ld failed=%ld slowest_ms=%ld\n", loop_loads, loop_failed, loop_slowest_ms);
    return 0;
}

int main(int argc, char **argv)
{
    int nlong, nshort, nthreads, i, running_short = 0;
    long forks = 0;

    if (argc == 5 && strcmp(argv[1], "--load-loop") == 0)
        return load_loop(argv[2], atof(argv[3]), atoi(argv[4]));
    if (argc != 6) {
        fprintf(stderr, "usage: failstress URI STOPFILE LONG_PROCS SHORT_PROCS THREADS\n");
        return 2;
    }
    stopfile = argv[2];
    nlong = atoi(argv[3]);
    nshort = atoi(argv[4]);
    nthreads = atoi(argv[5]);
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    memset(sh, 0, sizeof(*sh));
    if ((key = tu_load_pkey(argv[1])) == NULL) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "failstress: cannot load %s\n", argv[1]);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (i = 0; i < nlong; i++)
        if (spawn(nthreads, 0) > 0)
            forks++;
    for (;;) {
        int st;
        pid_t p;

        while (running_short < nshort && !stopping()) {
            if (spawn(nthreads, 0.3) > 0) {
                running_short++;
                forks++;
            } else {
                break;
            }
        }
        p = wait(&st);
        if (p < 0)
            break;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            __atomic_fetch_add(&sh->bad, 1, __ATOMIC_RELAXED);  /* a crashed child */
        /* the long ones run until the stop file, so this is likely a short one */
        if (running_short > 0)
            running_short--;
    }
    printf("ok=%ld failed=%ld bad=%ld forks=%ld\n", sh->ok, sh->failed, sh->bad, forks);
    EVP_PKEY_free(key);
    return sh->failed == 0 && sh->bad == 0 ? 0 : 1;
}
