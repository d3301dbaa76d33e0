/* The secure heap; see secure_heap.h.  Split from sandbox/harden.c so the
 * key table (store/) need not reach up into the sandbox layer. */
#include "secure_heap.h"

#include <openssl/crypto.h>

#include "common/log.h"

static size_t secure_heap_size;

size_t ks_secure_heap_size(void)
{
    return secure_heap_size;
}

int ks_init_secure_heap(size_t size, int dev_mode)
{
    int r = CRYPTO_secure_malloc_init(size, 32);

    if (r == 0) {
        ks_log("%s: cannot create OpenSSL's secure heap of %zu MiB (CRYPTO_secure_malloc_init failed)%s",
               dev_mode ? "warning" : "error", size >> 20,
               dev_mode ? "; continuing in --dev mode without it" :
                          "; lower secure_heap_mb or use --dev for development");
        return dev_mode ? 0 : -1;
    }
    secure_heap_size = size;
    if (r == 2)
        ks_log("warning: OpenSSL's secure heap could not lock itself in memory (mlock failed); "
               "relying on mlockall");
    return 0;
}
