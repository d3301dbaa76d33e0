/* keystored's offline commands on the key directory: master-key rotation,
 * backup and restore (store/rotate.h, store/backup.h). */
#ifndef KS_OFFLINE_H
#define KS_OFFLINE_H

#include "common/config.h"

enum ks_offline_cmd { KS_OFFLINE_ROTATE, KS_OFFLINE_BACKUP, KS_OFFLINE_RESTORE };

/* arg: the new master key, or the archive.  Returns the exit status. */
int ks_offline_run(const struct ks_config *cfg, enum ks_offline_cmd cmd, const char *arg,
                   int allow_rollback);

#endif
