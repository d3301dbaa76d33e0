/* Backups of the key directory that match its manifest.
 *
 *   keystored --backup FILE -c CONFIG                   (server running or not)
 *   keystored --restore FILE -c CONFIG [--allow-rollback]   (server stopped)
 *
 * A backup reads the manifest and every file it lists straight from the key
 * directory (root, outside the server: the server's jail cannot write
 * elsewhere) and keeps the set only if every file has the hash the manifest
 * gives and the manifest did not change meanwhile; otherwise it starts
 * again (a write by the running server is a manifest change), up to 100
 * times.  The archive:
 *   offset  0  8 bytes  magic "KSBACKUP"
 *           8  u32 BE   format version (1)
 *          12  u32 BE   number of files
 *          16  u64 BE   manifest generation
 *          24  u64 BE   created, Unix time
 *          32  24 bytes XChaCha20-Poly1305 nonce
 *          56  ...      AEAD ciphertext + tag of the files, each:
 *                       u8 name length, name, u32 BE length, bytes
 *   associated data = the 56 header bytes; sealed under the master key
 *   (the key files inside are sealed under it as well).
 *
 * A restore authenticates the archive, checks that its manifest vouches for
 * every file in it and every file the manifest requires is in it, and that
 * each key file unseals, before anything is replaced.  An archive whose
 * generation is below the rollback counter is a rollback: refused unless
 * allow_rollback; the counter is then advanced past both, never lowered.
 * The files are written in the key directory's crash-safe order: a
 * manifest vouching for the old and the restored files, the files, the
 * removal of current files the archive lacks, then the archive's manifest
 * at the new generation. */
#ifndef KS_BACKUP_H
#define KS_BACKUP_H

#define KS_BACKUP_MAX ((size_t)1 << 30)   /* 1 GiB: ~700,000 keys */

/* The master key must be loaded.  0 or -1 after logging. */
int ks_backup_write(const char *key_dir, const char *out_path);

/* The master key must be loaded and ks_rotation_recover done (it holds
 * the counter's lock).  0 or -1 after logging. */
int ks_backup_restore(const char *in_path, const char *key_dir, const char *counter_cfg,
                      int allow_rollback);

#endif
