/* Master-key rotation, offline (keystored stopped), crash-safe.
 *
 *   keystored --rotate-master-key NEW.key -c CONFIG
 *
 * Every file the manifest lists is staged in KEY_DIR.rotate/ (NAME.key and
 * NAME.vN.key re-sealed under the new key with new nonces, NAME.crt copied),
 * with a new manifest (one generation up) sealed under the new key and a
 * copy of the new key as KEY_DIR.rotate/master.key; all fsynced.  Then the
 * commit point: MASTER.old is made a hard link of the old master key and
 * the new key is renamed over MASTER (config master_key).  Then the staged
 * files are renamed into KEY_DIR (the manifest last), the counter advanced,
 * KEY_DIR.rotate and MASTER.old removed.
 *
 * Every keystored start (and every offline command) first calls
 * ks_rotation_recover, which finishes or undoes an interrupted rotation:
 * KEY_DIR.rotate/master.key equal to MASTER means the switch happened, so
 * the renames are completed (they are idempotent); anything else means it
 * did not, so KEY_DIR.rotate and MASTER.old are removed and the old key
 * stays.  Either way the directory matches MASTER: kill -9 at any point
 * leaves a store that opens with exactly one of the two keys. */
#ifndef KS_ROTATE_H
#define KS_ROTATE_H

/* Lock the rollback counter (held until ks_store_close / process exit) and
 * finish or roll back an interrupted rotation.  0, or -1 after logging. */
int ks_rotation_recover(const char *master_path, const char *key_dir,
                        const char *counter_cfg);

/* The whole rotation; the store must not be open.  0 or -1 after logging. */
int ks_rotate_master_key(const char *master_path, const char *key_dir,
                         const char *counter_cfg, const char *new_path);

#endif
