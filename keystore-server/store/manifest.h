/* The key directory's manifest: which key and certificate files are the
 * current ones.  Sealed under the master key like key files, it binds every
 * NAME.key and NAME.crt (by name and BLAKE2b-256 of its bytes) to a
 * generation; the generation is checked against the rollback counter
 * outside the directory (generation.h).  A file the manifest does not vouch
 * for (an old copy, a deleted key, a swapped .crt) is never loaded.
 *
 * KEY_DIR/.manifest (a name no key can have):
 *   offset  0  8 bytes  magic "KSMANIF\1"
 *           8  u32 BE   format version (1)
 *          12  u32 BE   number of entries
 *          16  u64 BE   generation
 *          24  24 bytes XChaCha20-Poly1305 nonce (random per write)
 *          48  ...      AEAD ciphertext + tag of the entries, each:
 *                       u8 flags, u8 name length, name, 32-byte BLAKE2b-256
 *   associated data = the 48 header bytes.
 * A name may have two entries (either file is current: an attach-cert in
 * progress); KS_MF_OPTIONAL says the file may also be absent (a write in
 * progress).  Written with ks_write_file_atomic_at (.manifest.tmp, rename). */
#ifndef KS_MANIFEST_H
#define KS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define KS_MANIFEST_FILE ".manifest"
#define KS_MANIFEST_TMP ".manifest.tmp"
#define KS_FILE_HASH_LEN 32
#define KS_MF_NAME_MAX 80          /* NAME.crt with a 64-character name fits */
#define KS_MANIFEST_MAX_ENTRIES (4u * 1024 * 1024)

enum { KS_MF_OPTIONAL = 1 };

struct ks_mf_entry {
    char file[KS_MF_NAME_MAX];
    uint8_t flags;
    uint8_t hash[KS_FILE_HASH_LEN];
};

struct ks_manifest {
    uint64_t gen;
    struct ks_mf_entry *e;
    size_t n, cap;
    int sorted;
};

enum ks_mf_status {
    KS_MF_OK = 0,
    KS_MF_MISSING,     /* no manifest file */
    KS_MF_FORMAT,      /* not a manifest, truncated, unsupported version */
    KS_MF_AUTH,        /* does not authenticate under the master key */
    KS_MF_INTERNAL,    /* out of memory, read error */
};

void ks_file_hash(const uint8_t *buf, size_t len, uint8_t out[KS_FILE_HASH_LEN]);

/* Append an entry (0, or -1 out of memory). */
int ks_manifest_add(struct ks_manifest *m, const char *file,
                    const uint8_t hash[KS_FILE_HASH_LEN], uint8_t flags);
void ks_manifest_free(struct ks_manifest *m);

/* Sort for lookups (done by ks_manifest_read). */
void ks_manifest_sort(struct ks_manifest *m);

/* 1 if (file, hash) is vouched for.  *named (optional) tells whether file
 * has any entry, *optional whether one of them allows it to be absent. */
int ks_manifest_vouches(const struct ks_manifest *m, const char *file,
                        const uint8_t hash[KS_FILE_HASH_LEN], int *named, int *optional);

/* Read and authenticate dirfd/.manifest into *m (zeroed first). */
enum ks_mf_status ks_manifest_read(int dirfd, struct ks_manifest *m, char *why, size_t whylen);

/* The same from a file image already in memory (a backup archive). */
enum ks_mf_status ks_manifest_parse(const uint8_t *file, size_t len, struct ks_manifest *m,
                                    char *why, size_t whylen);

/* Seal m and replace dirfd/.manifest atomically.  0 or -1 with err. */
int ks_manifest_write(int dirfd, const struct ks_manifest *m, char *err, size_t errlen);

#endif
