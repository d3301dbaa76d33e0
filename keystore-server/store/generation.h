/* The rollback counter: the key directory's generation, kept in a file
 * OUTSIDE the key directory (config `rollback_counter`, default
 * KEY_DIR.generation beside it), so that copying an old key directory back
 * (manifest and all) is noticed: its manifest's generation is below the
 * counter.
 *
 * File format: two 32-byte slots; a slot is u64 BE generation, 8 zero
 * bytes, and the first 16 bytes of BLAKE2b of those 16 bytes (a checksum
 * against torn writes, not a secret).  Generation g is written into slot
 * g % 2 with pwrite and fsync, so a crash mid-write leaves the other slot,
 * one generation older, intact.  The file is opened before confinement and
 * kept open (no rename, no ftruncate). */
#ifndef KS_GENERATION_H
#define KS_GENERATION_H

#include <stddef.h>
#include <stdint.h>

/* Open (creating it 0600 if missing), lock (flock, exclusive, for as long
 * as it is open: one process writes a key directory) and read.  Called
 * again with the same path while open, it only reads again.  *gen is the highest valid
 * slot, 0 for a new or empty file.  Returns 0 or -1 after logging. */
int ks_generation_open(const char *path, uint64_t *gen);

/* Durably record gen.  Returns 0 or -1 with err. */
/* The counter's path: cfg_path, or KEY_DIR.generation when empty/NULL. */
const char *ks_generation_default(const char *key_dir, const char *cfg_path, char *buf,
                                  size_t buflen);

int ks_generation_set(uint64_t gen, char *err, size_t errlen);

const char *ks_generation_path(void);
void ks_generation_close(void);

#endif
