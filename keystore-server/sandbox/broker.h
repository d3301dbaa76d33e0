/* The file helper: a small second process that alone holds the key
 * directory once the server is confined, and does the store's file
 * operations for it (store/keydir.h), checking every file name.  Injected
 * code in the server can then reach no file at all and, through the
 * helper, only the server's own file names inside the key directory. */
#ifndef KEYSTORE_SANDBOX_BROKER_H
#define KEYSTORE_SANDBOX_BROKER_H

#include "common/config.h"

/* Fork the helper.  Call early, before any secret is in memory (the child
 * is a copy of the process) and before any thread exists.  The helper
 * waits for the key directory (ks_broker_handoff).  Returns 0 or -1 after
 * logging. */
int ks_broker_start(const struct ks_config *cfg);

/* 1 if ks_broker_start ran. */
int ks_broker_started(void);

/* Pass dirfd to the helper, which confines itself to it (chroot into the
 * key directory as root, the server's user, Landlock, its own seccomp
 * filter) and confirms; from then on store/keydir.c sends it every file
 * operation.  The caller then closes its own dirfd.  Returns 0, or -1 after
 * logging (the helper's own log lines say why). */
int ks_broker_handoff(int dirfd);

#endif
