/* OpenSSL's secure heap, where private BIGNUMs live: created once at
 * start-up (before confinement) and asked about when a key does not fit. */
#ifndef KS_SECURE_HEAP_H
#define KS_SECURE_HEAP_H

#include <stddef.h>

/* OpenSSL secure heap (private BIGNUMs live there).  Fatal unless dev_mode. */
int ks_init_secure_heap(size_t size, int dev_mode);

/* Size of the secure heap actually created, 0 if none. */
size_t ks_secure_heap_size(void);

#endif
