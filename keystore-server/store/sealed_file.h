/* On-disk formats of the key directory and atomic file writes.
 *
 * NAME.key, sealed private key, version 2 (written since key usages):
 *   offset  0  8 bytes  magic "KSKEY\0\0\1"
 *           8  u32 BE   format version (2)
 *          12  u32 BE   key type (keystore KeyType enum value)
 *          16  u64 BE   created, Unix time
 *          24  24 bytes XChaCha20-Poly1305 nonce (random per write)
 *          48  u32 BE   usage bits (1 sign, 2 decrypt, 4 derive)
 *          52  u32 BE   reserved, 0
 *          56  ...      AEAD ciphertext + 16-byte tag of the PKCS#8 DER key
 *   associated data = the 56 header bytes followed by NAME, so editing the
 *   header (the usage too), swapping files or renaming one fails
 *   authentication.
 * Version 1 (read only): the same without the usage and reserved words,
 *   a 48-byte header; its keys had every usage their type allows.
 *
 * NAME.crt, optional, public: the certificate chain as concatenated DER,
 *   leaf first.  Not sealed; checked against the key when loaded. */
#ifndef KS_SEALED_FILE_H
#define KS_SEALED_FILE_H

#include <stddef.h>
#include <stdint.h>

#define KS_KEYFILE_MAGIC "KSKEY\0\0\1"
#define KS_KEYFILE_MAGIC_LEN 8
#define KS_KEYFILE_VERSION 2
#define KS_KEYFILE_HEADER_V1 48
#define KS_KEYFILE_HEADER 56
#define KS_KEYFILE_MAX (64 * 1024)     /* an RSA-16384 PKCS#8 is ~9.5 KiB */
#define KS_CERTFILE_MAX (16 * 1024 * 1024)

enum ks_unseal_status {
    KS_UNSEAL_OK = 0,
    KS_UNSEAL_FORMAT,    /* not a key file / unsupported version / truncated */
    KS_UNSEAL_AUTH,      /* does not authenticate under the master key */
    KS_UNSEAL_INTERNAL,  /* out of memory or similar; logged */
};

/* What a key file's header says. */
struct ks_keyfile_meta {
    uint32_t version;    /* 1 or 2 */
    uint32_t key_type;
    uint64_t created;
    uint32_t usage;      /* version 2 only; 0 in a version 1 file */
};

/* Seal der into a complete version 2 file image (malloc'd, public data). */
int ks_seal_key(const char *name, const struct ks_keyfile_meta *meta,
                const uint8_t *der, size_t derlen, uint8_t **out, size_t *outlen);

/* Unseal a file image (version 1 or 2).  On KS_UNSEAL_OK *der is a
 * sodium_malloc'd buffer the caller must sodium_free.  On KS_UNSEAL_FORMAT
 * why says what is wrong. */
enum ks_unseal_status ks_unseal_key(const char *name, const uint8_t *file, size_t filelen,
                                    struct ks_keyfile_meta *meta,
                                    uint8_t **der, size_t *derlen, char *why, size_t whylen);

/* Master-key rotation: the same file (header, key type, usage, created)
 * sealed under the next master key (ks_master_load_next) with a new nonce.
 * name is the file name without ".key".  Returns 0, -1 if the file does not
 * authenticate or is not a key file (why says which), -2 internal. */
int ks_reseal_key(const char *name, const uint8_t *file, size_t filelen,
                  uint8_t **out, char *why, size_t whylen);

/* The same into pt (ptcap bytes, locked memory the caller wipes): start-up
 * unseals every key into one buffer instead of a sodium_malloc each (an
 * mmap, mprotect and munmap per key).  KS_UNSEAL_INTERNAL if it does not
 * fit; pt is wiped on failure. */
enum ks_unseal_status ks_unseal_key_into(const char *name, const uint8_t *file, size_t filelen,
                                         struct ks_keyfile_meta *meta, uint8_t *pt,
                                         size_t ptcap, size_t *derlen, char *why, size_t whylen);

/* Reading and writing the files: keydir.h. */
#include "keydir.h"

#endif
