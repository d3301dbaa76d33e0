/* The key table's internal interface, shared by its parts only (keytable.c:
 * entries, table, manifest, open/close; keytable_load.c: start-up;
 * keytable_write.c: mutations and versions; keytable_sync.c: catalogue =
 * etcd; keytable_certs.c: certificate reload).  Everything else uses
 * keytable.h.  The names start with kt_ so they clash with nothing; the
 * comments at the definitions say more. */
#ifndef KS_KEYTABLE_INT_H
#define KS_KEYTABLE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keytable.h"
#include "manifest.h"

/* ---- state --------------------------------------------------------------- */

extern int kt_dir_fd;                 /* the open key directory (-1: none) */
extern char kt_dir_path[4096];        /* its path, for messages */
extern uint64_t kt_generation;        /* of the last manifest written (kt_write_lock) */
extern struct ks_manifest kt_carried; /* vouched files that did not load: every manifest keeps them */
extern uint8_t kt_cat_hash[KS_FILE_HASH_LEN];   /* keytable_sync.c: KEY_DIR/.catalogue's hash */
extern int kt_cat_listed;             /* keytable_sync.c: every manifest lists kt_cat_hash */
extern pthread_mutex_t kt_write_lock; /* serializes mutations (file writes + table updates) */

/* ---- entries (keytable.c) ------------------------------------------------ */

/* Free k now, whatever its references (never published, or the last one). */
void kt_key_free(struct ks_key *k);
/* One more reference to k. */
void kt_key_ref(struct ks_key *k);
/* Copy n certificates into k (blank chain); 0, or -1 if out of memory. */
int kt_copy_certs(struct ks_key *k, const struct ks_cert *certs, size_t n);
/* New entry (refs = 1) holding its own reference to pkey; NULL with why. */
struct ks_key *kt_key_new(const char *name, EVP_PKEY *pkey, uint64_t created,
                          uint32_t usage, char *why, size_t whylen);
/* A copy of `from` with another chain and no family; NULL if out of memory. */
struct ks_key *kt_key_copy(const struct ks_key *from, const struct ks_cert *certs,
                           size_t ncerts);

/* ---- table (keytable.c) -------------------------------------------------- */

/* Publish k (the table takes its reference), replacing its name's entry. */
void kt_table_put(struct ks_key *k);
/* Unpublish key `name`; the caller gets the table's reference (or NULL). */
struct ks_key *kt_table_remove(const char *name);
/* Every entry, referenced, *n of them (freed by the caller); NULL: no memory. */
struct ks_key **kt_table_snapshot(size_t *n);

/* ---- file names and the manifest (keytable.c) ---------------------------- */

/* NAME.key, .NAME.tmp, NAME.crt, .NAME.crt.tmp of a stem (buffers of 80). */
void kt_file_names(const char *name, char *keyf, char *keytmp, char *crtf, char *crttmp);
/* The stem of version v's files: NAME (v 1) or NAME.vN. */
void kt_version_stem(const char *name, uint32_t v, char stem[80]);
/* kt_file_names of entry k's version. */
void kt_version_file_names(const struct ks_key *k, char *keyf, char *keytmp, char *crtf,
                           char *crttmp);
/* Version N of stem NAME.vN (name gets NAME), or 1 with name = stem. */
uint32_t kt_stem_version(const char *stem, char name[KS_MAX_KEY_NAME + 1]);
/* An entry named by its stem takes its version and name from it, in place. */
void kt_key_take_stem(struct ks_key *k);
/* Every file of head's family, older versions first: fn gets each
 * version's key file (is_key, present 1), then its certificate file
 * (present: v->has_crt; a change may be adding it).  Stops at, and returns,
 * fn's first non-zero. */
typedef int kt_family_file_fn(const struct ks_key *v, const char *fname, int is_key,
                              const uint8_t *hash, int present, void *arg);
int kt_foreach_family_file(const struct ks_key *head, kt_family_file_fn *fn, void *arg);
/* Drop the carried entries of stem (family: of every version of key stem). */
void kt_uncarry_files(const char *stem, int family);
/* Drop the carried entries of every version of key `name`. */
void kt_uncarry(const char *name);
/* Write the next manifest (the table, carried and extra) and counter; 0 or -1. */
int kt_commit(const struct ks_manifest *extra, char *err, size_t errlen);
/* fsync the key directory; 0, or -1 with err. */
int kt_fsync_dir(char *err, size_t errlen);

/* ---- loading (keytable_load.c) ------------------------------------------- */

/* Unseal and parse a key file image (freed); NULL (logged) if unusable. */
struct ks_key *kt_load_key_image(const char *name, const char *fname, uint8_t *file,
                                 size_t filelen, int *auth_failed, int *authentic);
/* Load the key directory into the (empty) table; 0, or -1 (logged). */
int kt_load_all(uint64_t counter);

/* ---- catalogue = etcd (keytable_sync.c) ---------------------------------- */

/* A file of the record that is not on disk yet (the caller's change):
 * data NULL means the file goes (a chain removed). */
struct kt_cat_change {
    const char *file;
    const uint8_t *data;
    size_t len;
};

/* Unlock kt_write_lock after a mutation, first writing the applied state. */
void kt_write_unlock(void);
/* Start-up: take KEY_DIR/.catalogue if the manifest vouches for it; 0 or -1. */
int kt_load_catalogue_state(uint64_t counter, const struct ks_manifest *mf);
/* Publish key `name`'s record as the change will make it; KS_STORE_OK or why not. */
enum ks_store_status kt_publish_family(const char *name, int created,
                                       const struct ks_key *head,
                                       const struct kt_cat_change *ch, size_t nch,
                                       const char *what, char *err, size_t errlen);

/* ---- mutations (keytable_write.c) ---------------------------------------- */

/* Unlink the files of version v (kt_write_lock held); 0, or -1 with err. */
int kt_unlink_version(const struct ks_key *v, char *err, size_t errlen);
/* Unlink the files of head's older versions; 0, or -1 with err. */
int kt_unlink_versions(const struct ks_key *head, char *err, size_t errlen);

#endif
