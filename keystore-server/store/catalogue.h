/* The shared key catalogue (catalogue = etcd): the records this replica
 * writes to and accepts from etcd, and what it has applied of them.
 *
 * One record per key name, etcd key PREFIX "keys/" NAME; its value is sealed
 * under the master key (etcd sees no plaintext, the agent that talks to etcd
 * holds no key):
 *   offset 0  8 bytes  magic "KSCAT\0\0\1"
 *          8  u32 BE   format version (2)
 *         12  u32 BE   number of files (0: the key was deleted, a tombstone)
 *         16  u64 BE   sequence number
 *         24  u64 BE   incarnation
 *         32  24 bytes XChaCha20-Poly1305 nonce
 *         56  ...      ciphertext + tag of the files, each
 *                      u8 name length, name, u32 BE length, bytes
 *   associated data = the 56 header bytes || PREFIX "keys/" NAME (bound to
 *   its etcd key: another fleet's record under the same master key does not
 *   authenticate here).
 * Format 1 (written before incarnations) had no incarnation (nonce at 24,
 * files at 48) and the associated data was its 48 header bytes || NAME; it
 * is still read, as incarnation unknown: today's version rules apply.
 *
 * The incarnation of a key is the sequence of the record that created it
 * (add, generate, import); every later record of it (rotate, retire,
 * attach-cert, its tombstone) carries it.  A record of a higher
 * incarnation is a new key under the old name (deleted and made again
 * while this replica did not see the tombstone): the old family goes
 * whole, even if the new one's versions are lower; a lower one is refused.
 * The files are the key directory's files of that key exactly as on disk:
 * every live version's sealed key file and certificate chain (NAME.key,
 * NAME.crt, NAME.v2.key, ...); any file kind NAME.* travels the same way.
 *
 * The sequence number is what makes replay and rollback visible: a writer
 * takes one above every etcd revision it has seen (so above the sequence of
 * every earlier record of that name, whose revision it compares in the
 * transaction), and a replica refuses a record whose sequence is below the
 * one it applied last for that name, whatever revision etcd gives it (an
 * old record put back with etcdctl gets a new revision but keeps its old
 * sealed sequence).  Callers hold the key table's write lock. */
#ifndef KS_CATALOGUE_H
#define KS_CATALOGUE_H

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "wire.h"

/* A record carries every live version of a key (NAME.key/NAME.crt for
 * version 1, NAME.vN.key/NAME.vN.crt for version N): at most this many
 * versions, two files each.  With catalogue = etcd a rotation past it is
 * refused ("retire old versions first"). */
#define KS_CAT_MAX_VERSIONS 32
#define KS_CAT_MAX_FILES (2 * KS_CAT_MAX_VERSIONS)
#define KS_CAT_RECORD_MAX (17u * 1024 * 1024)

/* Write a record to etcd: txn(compare mod_revision == expect, put).
 * 1 written (*rev its revision), 0 another writer got there first,
 * -1 unavailable (err names etcd and the endpoints). */
typedef int (*ks_catalogue_put_fn)(const char *name, uint64_t expect, const uint8_t *rec,
                                   size_t len, uint64_t *rev, char *err, size_t errlen);

/* prefix: the fleet's catalogue_prefix (ends in '/'), bound into records */
void ks_catalogue_enable(ks_catalogue_put_fn put, const char *prefix);
int ks_catalogue_enabled(void);

struct ks_cat_file {
    char name[KS_MF_NAME_MAX];
    const uint8_t *data;
    size_t len;
};

struct ks_cat_record {
    uint64_t seq;
    uint64_t inc;       /* its incarnation, 0 for a record of format 1 */
    size_t n;
    struct ks_cat_file f[KS_CAT_MAX_FILES];
    uint8_t *pt;        /* the decrypted files (public or sealed data); f[] points into it */
};

/* Seal and publish the files of key `name` (n = 0: its tombstone) as its
 * next record; created: the key is new (add), its record starts an
 * incarnation, else it carries the name's (or starts one if unknown).
 * Returns 1, 0 (conflict) or -1 like ks_catalogue_put_fn. */
int ks_catalogue_publish(const char *name, int created, const struct ks_cat_file *files,
                         size_t n, char *err, size_t errlen);

/* Authenticate and parse a record from etcd for `name`.  0, or -1 with why. */
int ks_catalogue_open(const char *name, const uint8_t *rec, size_t len,
                      struct ks_cat_record *r, char *why, size_t whylen);
void ks_catalogue_record_free(struct ks_cat_record *r);

/* Against what was applied for `name`: 1 apply it, 0 already applied
 * (the same sequence: our own write, a repeated range read), -1 older
 * (replayed or rolled back: refuse; *applied says what we have). */
int ks_catalogue_check(const char *name, uint64_t seq, uint64_t *applied);

/* Keys from before catalogue = etcd ("joining"): a name whose state is
 * sequence 0 is a key of this key directory that was never in etcd; it is
 * uploaded once this replica is in step with etcd, unless etcd has another
 * key of that name (keytable_sync.c).  mark: the name joins (0, or -1 out
 * of memory); is_joining: 1 if it does; forget: drop what is known of the
 * name (a key not shared, deleted here); joining: the names, malloc'd, *n of
 * them (NULL with *n 0 if none or out of memory); touch: the state is
 * written at the next flush even if unchanged (a first start). */
int ks_catalogue_mark_joining(const char *name);
int ks_catalogue_is_joining(const char *name);
/* Whether etcd's record of a joining name was refused since this start
 * (set: note that it was), so that the refusal is logged once. */
int ks_catalogue_joining_refused(const char *name, int set);
void ks_catalogue_forget(const char *name);
struct ks_cat_name {
    char s[KS_MAX_KEY_NAME + 1];
};
struct ks_cat_name *ks_catalogue_joining(size_t *n);
void ks_catalogue_touch(void);

/* A newer record's incarnation inc against the one applied for `name`:
 * 1 a new key under the old name (or the applied one is unknown: a state
 * of format 1), 0 the same key (or inc 0, a format-1 record, or nothing
 * applied for the name: the version rules decide), -1 an older
 * incarnation (refuse).  *local says what we have. */
int ks_catalogue_check_incarnation(const char *name, uint64_t inc, uint64_t *local);

/* Record that `name` is at sequence seq, etcd revision mod_rev,
 * incarnation inc (0: unchanged). */
int ks_catalogue_applied(const char *name, uint64_t seq, uint64_t mod_rev, uint64_t inc);

/* The applied state is kept in KEY_DIR/.catalogue (sealed: magic
 * "KSCATST\2", u32 BE count, u64 BE highest revision, 24-byte nonce, then
 * the AEAD of u8 name length, name, u64 BE sequence, u64 BE revision, u64
 * BE incarnation per name; the 44 header bytes are the associated data),
 * so that a restarted replica still refuses what it refused before.  A
 * state of format 1 ("KSCATST\1", no incarnation) is read with every
 * incarnation unknown and rewritten in format 2.  The file is read, written
 * and vouched for by the manifest in keytable_sync.c (an old copy put back
 * would let a replica apply again what it refused); these only make and read
 * its image. */
#define KS_CAT_STATE_FILE ".catalogue"
#define KS_CAT_STATE_TMP ".catalogue.tmp"
#define KS_CAT_STATE_MAX (16u * 1024 * 1024)

/* The sealed image of the state if it changed since the image last
 * written: 1 with *out (malloc'd, *outlen bytes) and *tag for
 * ks_catalogue_state_written, 0 if unchanged, -1 with err. */
int ks_catalogue_state_image(uint8_t **out, size_t *outlen, uint64_t *tag, char *err,
                             size_t errlen);
/* The image of *tag is now the file. */
void ks_catalogue_state_written(uint64_t tag);

/* Authenticate and take the state from a file's bytes (start-up); *count
 * names.  0, or -1 with err ("it does not authenticate ...": the caller
 * names the file). */
int ks_catalogue_state_parse(const uint8_t *file, size_t len, size_t *count, char *err,
                             size_t errlen);

/* Master-key rotation (rotate.c): the same state sealed under the next
 * master key with a new nonce.  0, -1 if it does not authenticate or is not
 * a state file (why says which), -2 internal. */
int ks_catalogue_state_reseal(const uint8_t *file, size_t len, uint8_t **out, char *why,
                              size_t whylen);

/* The highest etcd revision seen (a range's header, a watch event). */
void ks_catalogue_saw_revision(uint64_t rev);

#endif
