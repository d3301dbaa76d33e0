/* See selfpid.h. */
#include "selfpid.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

static pid_t *cached;   /* NULL: no wipe-on-fork page, ask every time */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void page_init(void)
{
    long psz = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, psz > 0 ? (size_t)psz : 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return;
    if (madvise(p, psz > 0 ? (size_t)psz : 4096, MADV_WIPEONFORK) != 0) {
        (void)munmap(p, psz > 0 ? (size_t)psz : 4096);
        return;
    }
    cached = p;
}

pid_t ks_self_pid(void)
{
    pid_t pid;

    (void)pthread_once(&once, page_init);
    if (cached == NULL)
        return getpid();
    pid = __atomic_load_n(cached, __ATOMIC_RELAXED);
    if (pid == 0) {
        /* a new process (or the first call): every thread stores the same value */
        pid = getpid();
        __atomic_store_n(cached, pid, __ATOMIC_RELAXED);
    }
    return pid;
}
