/* keystored --rotate-master-key / --backup / --restore; see offline.h. */
#include "offline.h"

#include <openssl/crypto.h>
#include <sodium.h>

#include "common/log.h"
#include "sandbox/harden.h"
#include "store/backup.h"
#include "store/masterkey.h"
#include "store/rotate.h"
#include "store/secure_heap.h"

int ks_offline_run(const struct ks_config *cfg, enum ks_offline_cmd cmd, const char *arg,
                   int allow_rollback)
{
    int rc = -1;

    /* secrets pass through this process too: no core dumps */
    if (ks_disable_core_dumps() != 0)
        return 1;
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1 || sodium_init() < 0) {
        ks_log("error: OpenSSL or libsodium failed to initialize");
        return 1;
    }
    /* a rotation opens the store as a start does (its keys are parsed) */
    if (ks_init_secure_heap(cfg->secure_heap, 1) != 0)
        return 1;
    switch (cmd) {
    case KS_OFFLINE_ROTATE:
        /* one replica alone would split from its fleet: the records in etcd
         * and the other replicas stay under the old key (docs/scaling.md) */
        if (cfg->catalogue) {
            ks_log("error: --rotate-master-key: this keystored has catalogue = etcd: its fleet "
                   "shares one master key, and the records in etcd and the other replicas "
                   "stay sealed under the old one, so this replica could read none of them "
                   "and they none of its writes. A fleet's master key cannot be rotated yet "
                   "(docs/scaling.md, Limits); to take this replica out of the fleet for good, "
                   "set catalogue = embedded first. Nothing was changed");
            break;
        }
        rc = ks_rotate_master_key(cfg->master_key, cfg->key_dir, cfg->rollback_counter, arg);
        break;
    case KS_OFFLINE_BACKUP:
        /* no lock: a running server keeps it, and a backup only reads */
        if (ks_master_load(cfg->master_key) == 0)
            rc = ks_backup_write(cfg->key_dir, arg);
        break;
    case KS_OFFLINE_RESTORE:
        if (ks_rotation_recover(cfg->master_key, cfg->key_dir, cfg->rollback_counter) == 0 &&
            ks_master_load(cfg->master_key) == 0)
            rc = ks_backup_restore(arg, cfg->key_dir, cfg->rollback_counter, allow_rollback);
        break;
    }
    ks_master_unload();
    return rc == 0 ? 0 : 1;
}
