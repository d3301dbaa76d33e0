/* The key store: sealed files in key_dir and an in-memory table of parsed keys.
 *
 * Entries are immutable once published and reference counted: a worker that
 * got a key with ks_store_get() keeps using it safely even if an admin
 * deletes it or attaches a certificate (which publishes a new entry). */
#ifndef KS_KEYTABLE_H
#define KS_KEYTABLE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keyutil.h"
#include "wire.h"

/* Key usages, fixed when a key is generated or imported and sealed with it
 * (the KeyInfo.usage bits of keystore.proto).  TLS RSA key exchange is
 * decrypt; derive is for key agreement (ECDH). */
enum { KS_USAGE_SIGN = 1, KS_USAGE_DECRYPT = 2, KS_USAGE_DERIVE = 4 };

struct ks_cert {
    uint8_t *der;
    size_t len;
};

/* A version retired since the server started (when: Unix time). */
struct ks_key_retired {
    uint32_t version;
    uint64_t when;
};

/* Each version of a key is an entry of its own (NAME.key is version 1,
 * NAME.vN.key version N).  The table holds the current version; its entry
 * also references the older usable versions, oldest first.  An entry is
 * immutable: rotate, retire and attach-cert publish a new current entry.
 * The entry and its name (and SubjectPublicKeyInfo if stored) are one
 * allocation, the fields ordered without padding: a store of many small
 * keys pays one malloc header per key (docs/performance.md, "Many keys"). */
struct ks_spki_prefix;
struct ks_key {
    EVP_PKEY *pkey;
    const char *group;             /* "P-256" etc. for EC, "" otherwise (static strings) */
    /* The SubjectPublicKeyInfo DER (ks_key_spki), spki_len bytes: the
     * prefix of its kind followed by pkey's encoded public key (EC named
     * curves, EdDSA, X25519/X448: nothing stored), or stored after the name. */
    const struct ks_spki_prefix *spki_prefix;
    uint8_t *spki;                 /* NULL with spki_prefix */
    uint64_t created;
    struct ks_cert *certs;         /* leaf first */
    struct ks_key **older;         /* current entry only: usable older versions, referenced */
    struct ks_key_retired *retired;   /* current entry only */
    Keystore__KeyType type;
    unsigned bits;
    uint32_t spki_len;
    uint32_t usage;                /* KS_USAGE_* bits */
    uint32_t ncerts;
    uint32_t version;              /* 1, 2, ... */
    uint32_t nolder;
    uint32_t nretired;
    /* private to store/keytable*.c */
    int has_crt;
    int refs;
    struct ks_key *next;
    uint8_t key_hash[32];          /* of NAME.key, for the manifest */
    uint8_t crt_hash[32];          /* of NAME.crt if has_crt */
    char name[];                   /* at most KS_MAX_KEY_NAME; the SPKI follows it */
};

enum ks_store_status {
    KS_STORE_OK = 0,
    KS_STORE_EXISTS,
    KS_STORE_NO_SUCH_KEY,
    KS_STORE_INTERNAL,   /* err says what; also logged */
    KS_STORE_NO_SUCH_VERSION,
    KS_STORE_RETIRED,
    KS_STORE_REFUSED,    /* err says why (retire the current version, a name too long) */
    KS_STORE_UNAVAILABLE,   /* catalogue = etcd: etcd did not take the write (err names it) */
    KS_STORE_CONFLICT,      /* catalogue = etcd: another replica changed the key meanwhile */
};

/* Open key_dir (created 0700 if missing) and the rollback counter
 * (counter_path, or NULL for KEY_DIR.generation beside it), remove stale
 * temporary files, check the manifest (manifest.h) against the counter and
 * load every NAME.key and NAME.crt the manifest vouches for; files it does
 * not vouch for are refused, one log line each.  Without a manifest and
 * with a new counter (first start, or an upgrade) every file present is
 * taken and the manifest created.  Then a fresh manifest is written.
 * Returns 0, or -1 after logging (a rolled-back manifest, a missing one
 * with a counter, "cannot unseal any key: wrong master key?"). */
int ks_store_open(const char *key_dir, const char *counter_path);
void ks_store_close(void);

/* The open key directory; at confinement it moves to the file helper
 * process (sandbox/broker.c), and the store then reaches its files through
 * keydir.h's calls only. */
int ks_store_dir_fd(void);

/* Close the store's own descriptor of the key directory (-1 from then on). */
void ks_store_release_dir(void);

/* The SubjectPublicKeyInfo DER of k into out (k->spki_len bytes).  0, or
 * -1 if out of memory. */
int ks_key_spki(const struct ks_key *k, uint8_t *out);

/* Up-referenced entry or NULL.  Release with ks_key_put. */
struct ks_key *ks_store_get(const char *name);
void ks_key_put(struct ks_key *k);

/* One more reference to an entry the caller holds (ks_key_put releases it). */
void ks_key_hold(struct ks_key *k);

/* A counter that changes whenever an entry is published or removed (add,
 * delete, certificates, reload): caches of per-key state (ops/prepared.h)
 * compare it to drop what they hold. */
uint64_t ks_store_changes(void);

/* Call fn for every key (in no particular order) under the read lock;
 * stops and returns fn's value if non-zero. */
int ks_store_foreach(int (*fn)(const struct ks_key *k, void *arg), void *arg);
size_t ks_store_count(void);

/* Seal and store a new key with its usage (checked by the caller with
 * ks_usage_check); takes ownership of pkey on success only.
 * *out (optional) receives an up-referenced entry. */
enum ks_store_status ks_store_add(const char *name, EVP_PKEY *pkey, uint32_t usage,
                                  struct ks_key **out, char *err, size_t errlen);

/* Delete key `name`: every version. */
enum ks_store_status ks_store_delete(const char *name, char *err, size_t errlen);

/* ---- versions (keystorectl rotate / retire; keystore:NAME?version=N) ---- */

/* Version `version` of key `name` (0: the current one), up-referenced, or
 * NULL with NO_SUCH_KEY, NO_SUCH_VERSION or RETIRED in *st; *current gets
 * the current version and *retired_on the time a RETIRED version was
 * retired (0 if before this server started). */
struct ks_key *ks_store_get_version(const char *name, uint32_t version,
                                    enum ks_store_status *st, uint32_t *current,
                                    uint64_t *retired_on);

/* Seal pkey as the next version of key `name` and make it current; older
 * versions stay usable.  Takes ownership of pkey on success only. */
enum ks_store_status ks_store_rotate(const char *name, EVP_PKEY *pkey, uint32_t usage,
                                     struct ks_key **out, char *err, size_t errlen);

/* Destroy version `version` of key `name` (its files); refused for the
 * current version.  *out (optional): the new current entry. */
enum ks_store_status ks_store_retire(const char *name, uint32_t version,
                                     struct ks_key **out, char *err, size_t errlen);

/* The current entry of key `name` whose family k belongs to (k itself if
 * current), up-referenced, or NULL. */
struct ks_key *ks_store_current_of(const struct ks_key *k);

/* 1 if `name` ends in .vN (N a number): reserved, NAME.vN.key is a version
 * file, so no new key may have such a name. */
int ks_key_name_reserved(const char *name);

/* Replace the certificate chain of key version `expected` (which the caller has
 * checked the chain against).  Fails with NO_SUCH_KEY if it was deleted or
 * replaced meanwhile.  Copies the certificates. */
enum ks_store_status ks_store_set_certs(const struct ks_key *expected,
                                        const struct ks_cert *certs, size_t ncerts,
                                        struct ks_key **out, char *err, size_t errlen);

/* catalogue = etcd (store/catalogue.h): a record for key `name` that
 * etcd holds at revision mod_rev, from the catalogue agent, so hostile
 * until proven otherwise.  It carries every live version of the key.  It
 * is applied (this replica's versions of the key become exactly the
 * record's, written to the key directory under the manifest's rules and
 * published, the highest version current) only if it authenticates under
 * the master key, is newer than what this replica applied for that name,
 * every version's key file unseals under its own stem and every chain
 * matches its version's key, and it neither makes a lower version current
 * nor brings back a version retired here; else one log line says why it
 * was refused.  Returns 1 applied, 0 nothing to do, -1 refused. */
int ks_store_apply_remote(const char *name, uint64_t mod_rev, const uint8_t *rec, size_t len);

/* Write the catalogue state (store/catalogue.h) if records changed it:
 * the applying thread calls it once it has no record waiting. */
void ks_store_catalogue_flush(void);

/* Share the keys this key directory had before catalogue = etcd was set
 * (marked at the first start with it; store/catalogue.h): each is
 * published as a new key unless etcd has another key of its name, which
 * leaves it this replica's own (logged).  Called when in step with etcd. */
void ks_store_catalogue_upload(void);

/* Reload of the certificate chains (keystorectl reload, SIGHUP): read every
 * key's NAME.crt again.  prepare checks them all and builds the new entries
 * without publishing anything; a file that does not parse or whose leaf
 * does not match its key fails the whole reload ("DIR/NAME.crt: why" in
 * err).  commit publishes the entries (an entry changed by an admin
 * meanwhile keeps the admin's chain); discard drops them. */
struct ks_cert_update;
int ks_store_certs_prepare(struct ks_cert_update **out, size_t *changed, char *err, size_t errlen);
void ks_store_certs_commit(struct ks_cert_update *u);
void ks_store_certs_discard(struct ks_cert_update *u);

#endif
