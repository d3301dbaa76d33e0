/* Process-wide protections applied at start-up, before any key is read.
 * Each returns 0 or -1 after logging what went wrong and how to fix it. */
#ifndef KS_HARDEN_H
#define KS_HARDEN_H

#include <stddef.h>

/* No core files, not ptrace-attachable by same-uid processes, no /proc/PID/mem. */
int ks_disable_core_dumps(void);

/* While root: RLIMIT_MEMLOCK = infinity so mlockall and the secure heap fit. */
void ks_raise_memlock_limit(void);

/* Keep glibc malloc from ever shrinking its per-thread heaps: shrinking
 * reads /proc/sys/vm/overcommit_memory, which a seccomp filter or chroot
 * forbids (the process was killed with SIGSYS after a burst of
 * connections).  With all memory locked, returning it is of little use.
 * Call before any thread exists. */
int ks_tune_malloc(void);

/* mlockall(MCL_CURRENT|MCL_FUTURE): keeps keys out of swap.  Fatal unless dev_mode. */
int ks_lock_memory(int dev_mode);

/* Draw from OpenSSL's DRBG once so it is seeded before any chroot. */
int ks_seed_rng(void);

/* Reseed OpenSSL's DRBGs (the primary, which draws from getrandom, and this
 * thread's public and private ones) at least every `seconds`; 0 keeps
 * OpenSSL's defaults (1 hour / 7 minutes).  Each thread that uses the RNG
 * calls it once.  Returns 0 or -1 after logging. */
int ks_rng_set_reseed(int seconds);

#endif
