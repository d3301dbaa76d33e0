/* Brief polling for a reply before blocking; see ks_spin_wait in wire.h. */
#include "wire.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

static int env_us = -1;   /* KEYSTORE_SPIN_US, or -1 if unset or invalid */
static pthread_once_t spin_once = PTHREAD_ONCE_INIT;

static void spin_init(void)
{
    const char *e = getenv("KEYSTORE_SPIN_US");

    if (e != NULL && *e != '\0') {
        char *end;
        long v = strtol(e, &end, 10);

        if (*end == '\0' && v >= 0 && v <= 100000)
            env_us = (int)v;
    }
}

int ks_spin_us(int dflt)
{
    (void)pthread_once(&spin_once, spin_init);
    return env_us >= 0 ? env_us : dflt;
}

long long ks_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ks_spin_wait(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int spin_us = ks_spin_us(KS_DEFAULT_CLIENT_SPIN_US);
    long long end;

    if (spin_us == 0)
        return;
    end = ks_mono_us() + spin_us;
    do {
        if (poll(&p, 1, 0) != 0)
            return;         /* readable, closed or failed: the blocking read will tell */
        sched_yield();
    } while (ks_mono_us() < end);
}
