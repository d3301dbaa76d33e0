/* Creating a master key file; shared by keystored and keystorectl. */
#ifndef KS_MASTERKEY_GEN_H
#define KS_MASTERKEY_GEN_H

#include <stddef.h>

#define KS_MASTER_KEY_LEN 32

/* Write KS_MASTER_KEY_LEN random bytes to a new file (O_EXCL, mode 0600),
 * fsync it and its directory.  Never overwrites.  sodium_init() must have
 * succeeded.  Returns 0, or -1 with a message in err. */
int ks_master_key_generate(const char *path, char *err, size_t errlen);

#endif
