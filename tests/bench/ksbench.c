/* ksbench: sign/decrypt throughput and latency, in-process OpenSSL versus the
 * same keys through the keystore provider, measured in one run.
 *
 *   ksbench --pem-dir DIR [--seconds S] [--clients 1,2,4,16,64] [--repeat 3]
 *           [--algs rsa2048,rsa3072,p256,p384,ed25519,rsa2048-oaep]
 *           [--modes threads,procs] [--backends default,keystore]
 *   ksbench --calibrate          the machine's own costs: a system call, a
 *                                Unix socket round trip between processes, and
 *                                handing one core between two processes and back
 *   --gap-us N                   each client sleeps N us after every operation:
 *                                the latency of a request that finds the
 *                                server idle (a TLS server's pattern)
 *   --server-pid PID             also the CPU time per operation of the client and
 *                                of the server process PID (all its threads)
 *   ksbench --pem-dir DIR --fork-burst 1000 [--ops 4] [--algs p256]
 *                                a pre-fork server's pattern: the key is
 *                                loaded once, then N children each connect
 *                                and do a few operations
 *
 * DIR holds rsa2048.pem rsa3072.pem p256.pem p384.pem ed25519.pem; the keystore
 * server must hold the same keys as bench-rsa2048 ... (tests/bench/run.sh does
 * both).  KEYSTORE_SERVER selects the server (unix: or later tcp:).
 * Each case runs --repeat times, in-process and keystore interleaved (so a
 * change in the machine's load hits both), and prints the median ops/s with
 * its spread (min..max, in % of the median), median p50 and p99 latency, and
 * the ratio of the medians. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define MAX_CLIENTS 256
#define MAX_SAMPLES 200000

struct alg { const char *name, *pem; int decrypt, eddsa; };
static const struct alg ALGS[] = {
    { "rsa2048", "rsa2048.pem", 0, 0 },
    { "rsa3072", "rsa3072.pem", 0, 0 },
    { "p256", "p256.pem", 0, 0 },
    { "p384", "p384.pem", 0, 0 },
    { "ed25519", "ed25519.pem", 0, 1 },
    { "rsa2048-oaep", "rsa2048.pem", 1, 0 },
};

struct result { double ops, p50_us, p99_us, cli_us, srv_us; };   /* *_us: CPU per operation */

struct worker {
    const struct alg *alg;
    EVP_PKEY *key;
    double seconds;
    unsigned long n;              /* operations done */
    float *lat;                   /* microseconds, up to MAX_SAMPLES */
    int failed;
};

static const char *pem_dir;
static long gap_us;   /* --gap-us: each client sleeps this long after every operation */

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "ksbench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static EVP_PKEY *load_key(const struct alg *a, const char *backend)
{
    char path[1024];
    EVP_PKEY *k = NULL;

    if (strcmp(backend, "default") == 0) {
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", pem_dir, a->pem);
        if ((f = fopen(path, "r")) == NULL)
            die(path);
        k = PEM_read_PrivateKey_ex(f, NULL, NULL, NULL, NULL, "provider=default");
        fclose(f);
    } else {
        char uri[256];
        char base[64];

        snprintf(base, sizeof(base), "%s", a->pem);
        *strchr(base, '.') = '\0';
        snprintf(uri, sizeof(uri), "keystore:bench-%s", base);
        k = tu_load_pkey(uri);
    }
    if (k == NULL)
        die("cannot load key");
    return k;
}

/* One operation; returns 1 on success. */
static int one_op(const struct worker *w, EVP_PKEY_CTX *ctx, const unsigned char *ct, size_t ctlen)
{
    unsigned char out[1024];
    size_t outlen = sizeof(out);
    static const unsigned char dgst[48] = { 1, 2, 3 };

    if (w->alg->eddsa) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int ok = md != NULL && EVP_DigestSignInit_ex(md, NULL, NULL, NULL, NULL, w->key, NULL) == 1
                 && EVP_DigestSign(md, out, &outlen, dgst, 32) == 1;

        EVP_MD_CTX_free(md);
        return ok;
    }
    if (w->alg->decrypt)
        return EVP_PKEY_decrypt(ctx, out, &outlen, ct, ctlen) == 1;
    return EVP_PKEY_sign(ctx, out, &outlen, dgst, strcmp(w->alg->name, "p384") == 0 ? 48 : 32) == 1;
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char ct[1024];
    size_t ctlen = sizeof(ct);
    double t0, end, t;

    if (!w->alg->eddsa) {
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, w->key, NULL);
        if (ctx == NULL)
            die("ctx");
        if (w->alg->decrypt) {
            EVP_PKEY_CTX *ectx = EVP_PKEY_CTX_new_from_pkey(NULL, w->key, NULL);
            static const unsigned char msg[32] = { 7 };

            if (ectx == NULL || EVP_PKEY_encrypt_init(ectx) != 1
                || EVP_PKEY_CTX_set_rsa_padding(ectx, RSA_PKCS1_OAEP_PADDING) != 1
                || EVP_PKEY_encrypt(ectx, ct, &ctlen, msg, sizeof(msg)) != 1)
                die("encrypt");
            EVP_PKEY_CTX_free(ectx);
            if (EVP_PKEY_decrypt_init(ctx) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1)
                die("decrypt init");
        } else {
            if (EVP_PKEY_sign_init(ctx) != 1 || EVP_PKEY_CTX_set_signature_md(ctx,
                    EVP_get_digestbyname(strcmp(w->alg->name, "p384") == 0 ? "SHA384" : "SHA256")) != 1)
                die("sign init");
        }
    }
    t0 = now();
    end = t0 + w->seconds;
    while ((t = now()) < end) {
        if (!one_op(w, ctx, ct, ctlen)) {
            w->failed = 1;
            ERR_print_errors_fp(stderr);
            break;
        }
        if (w->n < MAX_SAMPLES)
            w->lat[w->n] = (float)((now() - t) * 1e6);
        w->n++;
        if (gap_us > 0) {
            /* an idle pause, as between a TLS server's handshakes: the
             * keystore worker has gone to sleep when the next request comes */
            struct timespec ts = { gap_us / 1000000, (gap_us % 1000000) * 1000 };

            nanosleep(&ts, NULL);
        }
    }
    EVP_PKEY_CTX_free(ctx);
    return NULL;
}

static int cmpf(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;

    return x < y ? -1 : x > y;
}

static struct result summarize(float *lat, size_t n, double ops)
{
    struct result r = { ops, 0, 0, 0, 0 };

    if (n > 0) {
        qsort(lat, n, sizeof(float), cmpf);
        r.p50_us = lat[n / 2];
        r.p99_us = lat[(size_t)(n * 0.99)];
    }
    return r;
}

/* Threads share one loaded key (as a threaded server does). */
static struct result bench_threads(const struct alg *a, const char *backend, int clients, double secs)
{
    struct worker w[MAX_CLIENTS];
    pthread_t th[MAX_CLIENTS];
    EVP_PKEY *key = load_key(a, backend);
    size_t total = 0, k = 0;
    unsigned long ops = 0;
    float *all;
    int i;

    for (i = 0; i < clients; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].alg = a;
        w[i].key = key;
        w[i].seconds = secs;
        w[i].lat = malloc(sizeof(float) * MAX_SAMPLES);
        if (w[i].lat == NULL || pthread_create(&th[i], NULL, run_worker, &w[i]) != 0)
            die("thread");
    }
    for (i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failed)
            die("an operation failed");
        ops += w[i].n;
        total += w[i].n < MAX_SAMPLES ? w[i].n : MAX_SAMPLES;
    }
    all = malloc(sizeof(float) * (total + 1));
    for (i = 0; i < clients; i++) {
        size_t n = w[i].n < MAX_SAMPLES ? w[i].n : MAX_SAMPLES;

        memcpy(all + k, w[i].lat, n * sizeof(float));
        k += n;
        free(w[i].lat);
    }
    EVP_PKEY_free(key);
    {
        struct result r = summarize(all, total, ops / secs);

        free(all);
        return r;
    }
}

/* Processes: the key is loaded before fork, as pre-forking servers do; each
 * child sends its count and a latency sample back through a pipe. */
static struct result bench_procs(const struct alg *a, const char *backend, int clients, double secs)
{
    EVP_PKEY *key = load_key(a, backend);
    int fds[MAX_CLIENTS][2], i;
    pid_t pids[MAX_CLIENTS];
    const size_t per = 20000;
    float *all = malloc(sizeof(float) * per * clients);
    size_t total = 0;
    unsigned long ops = 0;

    for (i = 0; i < clients; i++) {
        if (pipe(fds[i]) != 0)
            die("pipe");
        pids[i] = fork();
        if (pids[i] < 0)
            die("fork");
        if (pids[i] == 0) {
            struct worker w = { a, key, secs, 0, malloc(sizeof(float) * MAX_SAMPLES), 0 };
            unsigned long hdr[2];
            size_t n;

            close(fds[i][0]);
            run_worker(&w);
            n = w.n < per ? w.n : per;
            hdr[0] = w.failed ? (unsigned long)-1 : w.n;
            hdr[1] = n;
            if (write(fds[i][1], hdr, sizeof(hdr)) != sizeof(hdr)
                || write(fds[i][1], w.lat, n * sizeof(float)) != (ssize_t)(n * sizeof(float)))
                _exit(1);
            _exit(0);
        }
        close(fds[i][1]);
    }
    for (i = 0; i < clients; i++) {
        unsigned long hdr[2];
        size_t want, got = 0;

        if (read(fds[i][0], hdr, sizeof(hdr)) != sizeof(hdr) || hdr[0] == (unsigned long)-1)
            die("a child failed");
        ops += hdr[0];
        want = hdr[1] * sizeof(float);
        while (got < want) {
            ssize_t r = read(fds[i][0], (char *)(all + total) + got, want - got);

            if (r <= 0)
                die("short read from child");
            got += (size_t)r;
        }
        total += hdr[1];
        close(fds[i][0]);
        waitpid(pids[i], NULL, 0);
    }
    EVP_PKEY_free(key);
    {
        struct result r = summarize(all, total, ops / secs);

        free(all);
        return r;
    }
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmpd);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_REPEAT 15

/* The runs of one backend in one case, summarized. */
struct series { double ops[MAX_REPEAT], p50[MAX_REPEAT], p99[MAX_REPEAT], cli[MAX_REPEAT], srv[MAX_REPEAT]; int n; };
struct summary { double ops, lo, hi, p50, p99, cli, srv; };

static struct summary summarize_series(struct series *s)
{
    struct summary r = { 0, 0, 0, 0, 0, 0, 0 };
    int i;

    if (s->n == 0)
        return r;
    r.lo = r.hi = s->ops[0];
    for (i = 1; i < s->n; i++) {
        r.lo = s->ops[i] < r.lo ? s->ops[i] : r.lo;
        r.hi = s->ops[i] > r.hi ? s->ops[i] : r.hi;
    }
    r.ops = median(s->ops, s->n);
    r.p50 = median(s->p50, s->n);
    r.p99 = median(s->p99, s->n);
    r.cli = median(s->cli, s->n);
    r.srv = median(s->srv, s->n);
    return r;
}

/* "±N%": the half-width of min..max in % of the median. */
static double spread_pct(const struct summary *s)
{
    return s->ops > 0 ? 50.0 * (s->hi - s->lo) / s->ops : 0;
}

/* ---- CPU time per operation ------------------------------------------ */

static pid_t server_pid;   /* --server-pid: keystored, whose threads' CPU time is read */

/* This process's CPU seconds, with its waited-for children (procs mode). */
static double client_cpu_s(void)
{
    struct rusage self, kids;

    if (getrusage(RUSAGE_SELF, &self) != 0 || getrusage(RUSAGE_CHILDREN, &kids) != 0)
        die("getrusage");
    return (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec
                    + kids.ru_stime.tv_sec)
           + (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec
                      + kids.ru_stime.tv_usec) / 1e6;
}

/* The server's CPU seconds: the sum of its threads' run time in
 * /proc/PID/task/TID/schedstat (nanoseconds); 0 without --server-pid. */
static double server_cpu_s(void)
{
    char path[64];
    struct dirent *e;
    double sum = 0;
    DIR *d;

    if (server_pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)server_pid);
    if ((d = opendir(path)) == NULL)
        die("--server-pid: cannot list the server's threads");
    while ((e = readdir(d)) != NULL) {
        char f[352];
        unsigned long long ns;
        FILE *fp;

        if (e->d_name[0] == '.')
            continue;
        snprintf(f, sizeof(f), "%s/%s/schedstat", path, e->d_name);
        if ((fp = fopen(f, "r")) == NULL)
            continue;   /* a thread that just ended */
        if (fscanf(fp, "%llu", &ns) == 1)
            sum += (double)ns / 1e9;
        fclose(fp);
    }
    closedir(d);
    return sum;
}

/* One run of one case, with the CPU time it took per operation. */
static struct result run_one(const struct alg *a, const char *backend, int procs, int clients,
                             double secs)
{
    double c0 = client_cpu_s(), s0 = server_cpu_s(), n;
    struct result x = procs ? bench_procs(a, backend, clients, secs)
                            : bench_threads(a, backend, clients, secs);

    n = x.ops * secs;
    x.cli_us = n > 0 ? (client_cpu_s() - c0) * 1e6 / n : 0;
    x.srv_us = n > 0 ? (server_cpu_s() - s0) * 1e6 / n : 0;
    return x;
}

/* ---- the machine's own costs ------------------------------------------ */

static double syscall_ns(void)
{
    double runs[5];
    int r, i;

    for (r = 0; r < 5; r++) {
        double t0 = now();

        for (i = 0; i < 200000; i++)
            (void)syscall(SYS_getppid);
        runs[r] = (now() - t0) / 200000 * 1e9;
    }
    return median(runs, 5);
}

/* One byte there and back between two processes over a Unix socket pair:
 * the floor under any request/reply that blocks on each side. */
static double unix_rtt_us(void)
{
    int sv[2], i;
    char b = 0;
    pid_t pid;
    double t0, t;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        die("socketpair");
    pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(sv[0]);
        while (read(sv[1], &b, 1) == 1)
            if (write(sv[1], &b, 1) != 1)
                break;
        _exit(0);
    }
    close(sv[1]);
    for (i = 0; i < 1000; i++)          /* warm up */
        if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1)
            die("round trip");
    t0 = now();
    for (i = 0; i < 20000; i++)
        if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1)
            die("round trip");
    t = now() - t0;
    close(sv[0]);
    waitpid(pid, NULL, 0);
    return t / 20000 * 1e6;
}

/* Two processes on one core handing it to each other with sched_yield
 * through a flag in shared memory: two switches between address spaces per
 * round trip.  When clients and workers outnumber the cores, every request
 * costs at least this on top of the operation, whatever the transport. */
static double switch_rtt_us(void)
{
    volatile int *flag = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                              -1, 0);
    cpu_set_t one, old;
    int i, n = 20000;
    pid_t pid;
    double t0, t;

    if (flag == MAP_FAILED || sched_getaffinity(0, sizeof(old), &old) != 0)
        die("switch_rtt set-up");
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0)
        die("sched_setaffinity");
    *flag = 0;
    pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        for (i = 0; i < n + 1000; i++) {
            while (*flag != 1)
                sched_yield();
            *flag = 0;
        }
        _exit(0);
    }
    for (i = 0; i < 1000; i++) {       /* warm up */
        *flag = 1;
        while (*flag != 0)
            sched_yield();
    }
    t0 = now();
    for (i = 0; i < n; i++) {
        *flag = 1;
        while (*flag != 0)
            sched_yield();
    }
    t = now() - t0;
    waitpid(pid, NULL, 0);
    (void)sched_setaffinity(0, sizeof(old), &old);
    munmap((void *)flag, 4096);
    return t / n * 1e6;
}

/* ---- a pre-fork server's pattern ------------------------------------- */

/* Wall time for n children, forked at once from a process that loaded the
 * key, each doing ops operations (through keystore: its own connection,
 * since connections never cross fork).  Returns children per second. */
static double fork_burst(const struct alg *a, const char *backend, int n, int ops)
{
    EVP_PKEY *key = load_key(a, backend);
    double t0 = now();
    int i, status, bad = 0;

    for (i = 0; i < n; i++) {
        pid_t pid = fork();

        if (pid < 0)
            die("fork (raise ulimit -u?)");
        if (pid == 0) {
            struct worker w = { a, key, 1e9, 0, NULL, 0 };
            EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
            int k;

            if (!a->eddsa && (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1
                              || EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(
                                     strcmp(a->name, "p384") == 0 ? "SHA384" : "SHA256")) != 1))
                _exit(1);
            for (k = 0; k < ops; k++)
                if (!one_op(&w, ctx, NULL, 0))
                    _exit(1);
            _exit(0);
        }
    }
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad++;
    if (bad)
        die("children failed in the fork burst");
    EVP_PKEY_free(key);
    return n / (now() - t0);
}

static int in_list(const char *list, const char *item)
{
    char buf[512], *tok, *save;

    snprintf(buf, sizeof(buf), "%s", list);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (strcmp(tok, item) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *clients = "1,2,4,16,64", *algs = "rsa2048,rsa3072,p256,p384,ed25519,rsa2048-oaep";
    const char *modes = "threads,procs", *backends = "default,keystore";
    double secs = 1.0;
    int repeat = 3, calibrate = 0, burst = 0, burst_ops = 4;
    size_t ai;
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pem-dir") == 0 && i + 1 < argc) pem_dir = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) secs = atof(argv[++i]);
        else if (strcmp(argv[i], "--server-pid") == 0 && i + 1 < argc) server_pid = atoi(argv[++i]);
        else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc) clients = argv[++i];
        else if (strcmp(argv[i], "--algs") == 0 && i + 1 < argc) algs = argv[++i];
        else if (strcmp(argv[i], "--modes") == 0 && i + 1 < argc) modes = argv[++i];
        else if (strcmp(argv[i], "--backends") == 0 && i + 1 < argc) backends = argv[++i];
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--calibrate") == 0) calibrate = 1;
        else if (strcmp(argv[i], "--gap-us") == 0 && i + 1 < argc) gap_us = atol(argv[++i]);
        else if (strcmp(argv[i], "--fork-burst") == 0 && i + 1 < argc) burst = atoi(argv[++i]);
        else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) burst_ops = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: ksbench --pem-dir DIR [--seconds S] [--clients 1,2,4] "
                            "[--algs rsa2048,...] [--modes threads,procs] [--backends default,keystore] "
                            "[--gap-us N] [--server-pid PID] [--repeat N] | --calibrate | --fork-burst N\n");
            return 1;
        }
    }
    if (calibrate) {
        printf("syscall_ns=%.0f unix_round_trip_us=%.1f same_core_switch_round_trip_us=%.1f\n",
               syscall_ns(), unix_rtt_us(), switch_rtt_us());
        return 0;
    }
    if (pem_dir == NULL || secs <= 0 || repeat < 1 || repeat > MAX_REPEAT)
        die("--pem-dir is required, --seconds must be positive, --repeat 1..15");
    if (OSSL_PROVIDER_load(NULL, "default") == NULL)
        die("cannot load the default provider");
    if (in_list(backends, "keystore") && OSSL_PROVIDER_load(NULL, "keystore") == NULL)
        die("cannot load the keystore provider (set OPENSSL_MODULES)");

    if (burst > 0) {
        printf("%-13s %7s %5s | %12s %7s | %12s %7s | %6s\n", "algorithm", "procs", "ops",
               "inproc c/s", "spread", "keystore c/s", "spread", "ratio");
        for (ai = 0; ai < sizeof(ALGS) / sizeof(ALGS[0]); ai++) {
            const struct alg *a = &ALGS[ai];
            struct series d = { .n = 0 }, k = { .n = 0 };
            struct summary ds, ks;
            int r;

            if (!in_list(algs, a->name) || a->decrypt)
                continue;
            for (r = 0; r < repeat; r++) {
                d.ops[d.n++] = fork_burst(a, "default", burst, burst_ops);
                k.ops[k.n++] = fork_burst(a, "keystore", burst, burst_ops);
            }
            ds = summarize_series(&d);
            ks = summarize_series(&k);
            printf("%-13s %7d %5d | %12.0f %6.0f%% | %12.0f %6.0f%% | %5.0f%%\n", a->name, burst,
                   burst_ops, ds.ops, spread_pct(&ds), ks.ops, spread_pct(&ks),
                   ds.ops > 0 ? 100 * ks.ops / ds.ops : 0);
        }
        return 0;
    }
    printf("# each case %d times, in-process and keystore interleaved: median ops/s, "
           "its spread (+-%% of the median, from min..max), median p50/p99\n", repeat);
    if (server_pid > 0)
        printf("# cpu/op: CPU microseconds per operation, in-process; keystore's client + server\n");
    printf("%-13s %-7s %7s | %10s %6s %8s %8s | %10s %6s %8s %8s | %6s %8s %8s%s\n",
           "algorithm", "mode", "clients", "inproc/s", "spread", "p50us", "p99us",
           "keystore/s", "spread", "p50us", "p99us", "ratio", "+p50us", "+p99us",
           server_pid > 0 ? " | cpu/op in  keystore" : "");
    for (ai = 0; ai < sizeof(ALGS) / sizeof(ALGS[0]); ai++) {
        const struct alg *a = &ALGS[ai];
        const char *mode_names[] = { "threads", "procs" };
        int m;

        if (!in_list(algs, a->name))
            continue;
        for (m = 0; m < 2; m++) {
            char cbuf[256], *tok, *save;

            if (!in_list(modes, mode_names[m]))
                continue;
            snprintf(cbuf, sizeof(cbuf), "%s", clients);
            for (tok = strtok_r(cbuf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int c = atoi(tok), r;
                struct series ds = { .n = 0 }, ks = { .n = 0 };
                struct summary d, k;

                if (c < 1 || c > MAX_CLIENTS)
                    die("client count out of range 1..256");
                for (r = 0; r < repeat; r++) {
                    struct result x;

                    if (in_list(backends, "default")) {
                        x = run_one(a, "default", m, c, secs);
                        ds.ops[ds.n] = x.ops; ds.p50[ds.n] = x.p50_us; ds.p99[ds.n] = x.p99_us;
                        ds.cli[ds.n] = x.cli_us; ds.srv[ds.n++] = 0;
                    }
                    if (in_list(backends, "keystore")) {
                        x = run_one(a, "keystore", m, c, secs);
                        ks.ops[ks.n] = x.ops; ks.p50[ks.n] = x.p50_us; ks.p99[ks.n] = x.p99_us;
                        ks.cli[ks.n] = x.cli_us; ks.srv[ks.n++] = x.srv_us;
                    }
                }
                d = summarize_series(&ds);
                k = summarize_series(&ks);
                printf("%-13s %-7s %7d | %10.0f %5.0f%% %8.1f %8.1f | %10.0f %5.0f%% %8.1f %8.1f | %5.0f%% %8.1f %8.1f",
                       a->name, mode_names[m], c, d.ops, spread_pct(&d), d.p50, d.p99, k.ops,
                       spread_pct(&k), k.p50, k.p99, d.ops > 0 ? 100.0 * k.ops / d.ops : 0.0,
                       k.p50 - d.p50, k.p99 - d.p99);
                if (server_pid > 0)
                    printf(" | %9.1f %5.1f+%-5.1f", d.cli, k.cli, k.srv);
                printf("\n");
                fflush(stdout);
            }
        }
    }
    return 0;
}
