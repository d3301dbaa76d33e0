/* Start-up protections; see harden.h. */
#include "harden.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/log.h"

/* Sanitizer builds exist for the test suite only (tests/run.sh). */
#if defined(__SANITIZE_ADDRESS__)
#define KS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KS_ASAN 1
#endif
#endif

int ks_disable_core_dumps(void)
{
    struct rlimit rl = { 0, 0 };

    if (setrlimit(RLIMIT_CORE, &rl) != 0) {
        ks_log("error: cannot disable core dumps (setrlimit RLIMIT_CORE): %s", strerror(errno));
        return -1;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        ks_log("error: cannot mark the process non-dumpable (prctl PR_SET_DUMPABLE): %s",
               strerror(errno));
        return -1;
    }
    return 0;
}

void ks_raise_memlock_limit(void)
{
    struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

    if (geteuid() != 0)
        return;
    /* Without CAP_SYS_RESOURCE this fails, yet CAP_IPC_LOCK alone lets
     * mlockall ignore the limit; a real failure is reported by mlockall. */
    if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
        return;
}

int ks_tune_malloc(void)
{
#ifdef KS_ASAN
    return 0;   /* ASan's allocator replaces glibc's; its mallopt is a stub */
#endif
    if (mallopt(M_TRIM_THRESHOLD, INT_MAX) != 1) {
        ks_log("error: mallopt(M_TRIM_THRESHOLD) failed");
        return -1;
    }
    return 0;
}

static void format_limit(rlim_t v, char *buf, size_t len)
{
    if (v == RLIM_INFINITY)
        snprintf(buf, len, "unlimited");
    else
        snprintf(buf, len, "%llu KiB", (unsigned long long)v / 1024);
}

int ks_lock_memory(int dev_mode)
{
    struct rlimit rl;
    char cur[64] = "unknown", max[64] = "unknown";
    int flags = MCL_CURRENT | MCL_FUTURE, finite = 0, err;

#ifdef KS_ASAN
    /* ASan reserves terabytes of shadow memory, which mlockall would try to
     * fault in.  Never run such a build in production. */
    ks_log("warning: built with AddressSanitizer: memory is NOT locked; test builds only");
    (void)dev_mode;
    return 0;
#endif
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
        format_limit(rl.rlim_cur, cur, sizeof(cur));
        format_limit(rl.rlim_max, max, sizeof(max));
        finite = rl.rlim_cur != RLIM_INFINITY;
    }
    /* With MCL_FUTURE every later allocation is locked too and counts against
     * RLIMIT_MEMLOCK as soon as the process lacks CAP_IPC_LOCK (for example
     * after dropping root): a finite limit then makes malloc fail. */
    if (finite && dev_mode) {
        flags = MCL_CURRENT;
        ks_log("warning: RLIMIT_MEMLOCK is %s (hard limit %s): locking only the memory in use "
               "now, later allocations may be swapped (allowed because of --dev)", cur, max);
    }
    if (mlockall(flags) == 0) {
        /* as root, confinement keeps CAP_IPC_LOCK across the drop (jail.c) */
        if (finite && !dev_mode && geteuid() != 0)
            ks_log("warning: RLIMIT_MEMLOCK is %s (hard limit %s): once keystored runs without "
                   "CAP_IPC_LOCK (e.g. after dropping root) it cannot allocate memory beyond "
                   "that limit and will refuse connections and requests. Set "
                   "LimitMEMLOCK=infinity in the systemd unit or run 'ulimit -l unlimited'",
                   cur, max);
        return 0;
    }
    err = errno;
    if (dev_mode) {
        ks_log("warning: mlockall failed (%s); RLIMIT_MEMLOCK is %s (hard limit %s); "
               "keys may be swapped to disk (allowed because of --dev)", strerror(err), cur, max);
        return 0;
    }
    ks_log("error: cannot lock memory with mlockall: %s. RLIMIT_MEMLOCK is %s (hard limit %s). "
           "Keys must not be swapped to disk: run with 'ulimit -l unlimited', set "
           "LimitMEMLOCK=infinity in the systemd unit, or use --dev for development",
           strerror(err), cur, max);
    return -1;
}

int ks_seed_rng(void)
{
    unsigned char b[32];
    int r = RAND_bytes(b, sizeof(b));

    OPENSSL_cleanse(b, sizeof(b));
    if (r != 1) {
        ks_log("error: random number generator failed (RAND_bytes): cannot seed OpenSSL's DRBG");
        return -1;
    }
    return 0;
}

int ks_rng_set_reseed(int seconds)
{
    time_t t = seconds;
    OSSL_PARAM params[2];
    EVP_RAND_CTX *drbg[3];
    int i;

    if (seconds == 0)
        return 0;
    params[0] = OSSL_PARAM_construct_time_t(OSSL_DRBG_PARAM_RESEED_TIME_INTERVAL, &t);
    params[1] = OSSL_PARAM_construct_end();
    drbg[0] = RAND_get0_primary(NULL);
    drbg[1] = RAND_get0_public(NULL);
    drbg[2] = RAND_get0_private(NULL);
    for (i = 0; i < 3; i++) {
        if (drbg[i] == NULL || EVP_RAND_CTX_set_params(drbg[i], params) != 1) {
            ks_log("error: random number generator failed: cannot set its reseed interval");
            return -1;
        }
    }
    return 0;
}
