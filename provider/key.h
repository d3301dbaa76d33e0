/* A keystore key as the provider sees it: the name the server knows it by,
 * its public half (an EVP_PKEY of another provider, in our child library
 * context) and metadata fetched once with GetKey.  Never any private bytes. */
#ifndef KEYSTORE_KEY_H
#define KEYSTORE_KEY_H

#include <openssl/evp.h>

#include "provider.h"

/* Same values as keystore.KeyType on the wire. */
enum {
    KS_KEY_RSA = KEYSTORE__KEY_TYPE__KEY_TYPE_RSA,
    KS_KEY_RSA_PSS = KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS,
    KS_KEY_EC = KEYSTORE__KEY_TYPE__KEY_TYPE_EC,
    KS_KEY_ED25519 = KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519,
    KS_KEY_ED448 = KEYSTORE__KEY_TYPE__KEY_TYPE_ED448,
    KS_KEY_X25519 = KEYSTORE__KEY_TYPE__KEY_TYPE_X25519,
    KS_KEY_X448 = KEYSTORE__KEY_TYPE__KEY_TYPE_X448,
};

/* -pkeyopt / key parameter naming a keystore key (genpkey, get_params). */
#define KS_PARAM_KEY_NAME "keystore-name"
/* -pkeyopt keystore-usage:sign|decrypt|sign,decrypt for genpkey: the new
 * key's usage, fixed for its life (the server's default is sign). */
#define KS_PARAM_KEY_USAGE "keystore-usage"

#define KS_MAX_CERTS 16
#define KS_GROUP_MAX 64

typedef struct ks_key_st {
    KS_PROVCTX *pc;
    int refs;
    int type;
    char name[KS_MAX_KEY_NAME + 1];   /* "" for a public key imported from elsewhere */
    EVP_PKEY *pub;
    int bits, security_bits, max_size;
    char group[KS_GROUP_MAX];         /* EC curve, "" otherwise */
    size_t ncerts;                    /* chain stored with the key, leaf first */
    unsigned char *certs[KS_MAX_CERTS];
    size_t certlens[KS_MAX_CERTS];
    uint32_t version;                 /* the key version loaded; sent with every operation */
    /* Several servers (servers.h): the key is used by name on any of them,
     * but only where that server's public key for the name is this one. */
    int origin;                       /* index of the server it came from, -1 none */
    unsigned char *pub_der;           /* its SubjectPublicKeyInfo as that server sent it */
    size_t pub_der_len;
    unsigned servers_ok;              /* bit i: server i checked, same key (atomic) */
    long long servers_bad_until[KS_MAX_SERVERS]; /* checked, not the same: until then */
    int servers_bad_why[KS_MAX_SERVERS];
} KS_KEY;

/* An empty key of the given type (filled later by import). */
KS_KEY *ks_key_new(KS_PROVCTX *pc, int type);

/* Ask the server for key `name`: NULL with an error raised if it is unknown
 * or the server cannot be reached. */
KS_KEY *ks_key_fetch(KS_PROVCTX *pc, const char *name);

/* The same for version `version` of the key (0: the current one).  The key
 * keeps that version for its whole life: a rotation in the server does not
 * change what a loaded key signs with, until the application loads it again. */
KS_KEY *ks_key_fetch_version(KS_PROVCTX *pc, const char *name, uint32_t version);

/* Build a key from the server's description of key `name` (GetKey,
 * GenerateKey replies). */
KS_KEY *ks_key_from_info(KS_PROVCTX *pc, const char *name, const Keystore__KeyInfo *info);

/* Install the public half (ownership passes to the key) and derive the
 * metadata from it. */
int ks_key_set_pub(KS_KEY *k, EVP_PKEY *pub);

int ks_key_up_ref(KS_KEY *k);
void ks_key_free(KS_KEY *k);

/* OpenSSL key type name: "RSA", "RSA-PSS", "EC", "ED25519", "ED448", "X25519", "X448". */
const char *ks_key_type_name_of(int type);

static inline int ks_key_is_rsa(const KS_KEY *k)
{
    return k->type == KS_KEY_RSA || k->type == KS_KEY_RSA_PSS;
}

static inline int ks_key_is_eddsa(const KS_KEY *k)
{
    return k->type == KS_KEY_ED25519 || k->type == KS_KEY_ED448;
}

/* 1 if the server holds the private half (the key has a name). */
static inline int ks_key_has_private(const KS_KEY *k)
{
    return k->name[0] != '\0';
}

/* Key generation in the server (keygen.c), wired into each keymgmt. */
void *ks_gen_init(KS_PROVCTX *pc, int type, int selection, const OSSL_PARAM params[]);
int ks_gen_set_params(void *genctx, const OSSL_PARAM params[]);
const OSSL_PARAM *ks_gen_settable(int type);
void *ks_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg);
void ks_gen_cleanup(void *genctx);

#endif
