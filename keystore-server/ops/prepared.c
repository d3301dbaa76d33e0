/* Per-thread prepared contexts; see prepared.h. */
#include "prepared.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#define BUCKETS 512         /* a power of two, twice KS_PREP_MAX */
#define MAX_MDS 16

enum kind { K_ECDSA = 1, K_RSA_SIGN, K_EDDSA, K_RSA_OAEP };

struct entry {
    struct ks_key *k;       /* referenced while cached */
    int kind;
    int md_nid;             /* digests_key() of the digests set in ctx */
    void *ctx;              /* EVP_PKEY_CTX, or EVP_MD_CTX for K_EDDSA */
    uint64_t used;          /* tick of the last use, for LRU */
    int next;               /* bucket chain, -1 ends */
};

struct cache {
    struct entry e[KS_PREP_MAX];
    int n;
    int bucket[BUCKETS];
    uint64_t tick;
    uint64_t seen;          /* ks_store_changes() when last checked */
    struct { char name[65]; EVP_MD *md; } mds[MAX_MDS];
    int nmds;
};

static __thread struct cache *tc;

static void entry_free(struct entry *e)
{
    if (e->kind == K_EDDSA)
        EVP_MD_CTX_free(e->ctx);
    else
        EVP_PKEY_CTX_free(e->ctx);
    ks_key_put(e->k);
    memset(e, 0, sizeof(*e));
}

static void flush(struct cache *c)
{
    int i;

    for (i = 0; i < c->n; i++)
        entry_free(&c->e[i]);
    c->n = 0;
    for (i = 0; i < BUCKETS; i++)
        c->bucket[i] = -1;
}

static struct cache *cache(void)
{
    uint64_t now = ks_store_changes();

    if (tc == NULL) {
        tc = calloc(1, sizeof(*tc));
        if (tc == NULL)
            return NULL;
        flush(tc);
        tc->seen = now;
    }
    if (tc->seen != now) {
        flush(tc);
        tc->seen = now;
    }
    return tc;
}

void ks_prep_flush(void)
{
    if (tc != NULL)
        flush(tc);
}

void ks_prep_sweep(void)
{
    if (tc != NULL && tc->seen != ks_store_changes())
        (void)cache();
}

void ks_prep_thread_free(void)
{
    int i;

    if (tc == NULL)
        return;
    flush(tc);
    for (i = 0; i < tc->nmds; i++)
        EVP_MD_free(tc->mds[i].md);
    free(tc);
    tc = NULL;
}

EVP_MD *ks_prep_md(const char *name)
{
    struct cache *c = cache();
    EVP_MD *md;
    int i;

    if (c != NULL)
        for (i = 0; i < c->nmds; i++)
            if (strcmp(c->mds[i].name, name) == 0)
                return EVP_MD_up_ref(c->mds[i].md) == 1 ? c->mds[i].md : NULL;
    md = EVP_MD_fetch(NULL, name, NULL);
    if (md == NULL || c == NULL || c->nmds == MAX_MDS || strlen(name) >= sizeof(c->mds[0].name))
        return md;
    /* the cache keeps its own reference for the thread's lifetime */
    if (EVP_MD_up_ref(md) == 1) {
        strcpy(c->mds[c->nmds].name, name);
        c->mds[c->nmds++].md = md;
    }
    return md;
}

static unsigned slot_of(const struct ks_key *k, int kind, int nid)
{
    uintptr_t h = (uintptr_t)k >> 4;

    h ^= h >> 13;
    h = h * 31 + (uintptr_t)kind * 7 + (uintptr_t)nid;
    return (unsigned)(h & (BUCKETS - 1));
}

static void *lookup(struct cache *c, const struct ks_key *k, int kind, int nid)
{
    int i;

    for (i = c->bucket[slot_of(k, kind, nid)]; i >= 0; i = c->e[i].next)
        if (c->e[i].k == k && c->e[i].kind == kind && c->e[i].md_nid == nid) {
            c->e[i].used = ++c->tick;
            return c->e[i].ctx;
        }
    return NULL;
}

/* A free slot: the next one, or the least recently used one emptied. */
static int take_slot(struct cache *c)
{
    int i, lru = 0, *pp;

    if (c->n < KS_PREP_MAX)
        return c->n++;
    for (i = 1; i < KS_PREP_MAX; i++)
        if (c->e[i].used < c->e[lru].used)
            lru = i;
    for (pp = &c->bucket[slot_of(c->e[lru].k, c->e[lru].kind, c->e[lru].md_nid)]; *pp != lru;
         pp = &c->e[*pp].next)
        ;
    *pp = c->e[lru].next;
    entry_free(&c->e[lru]);
    return lru;
}

static void insert(struct cache *c, struct ks_key *k, int kind, int nid, void *ctx)
{
    int i = take_slot(c);
    unsigned b = slot_of(k, kind, nid);

    ks_key_hold(k);
    c->e[i].k = k;
    c->e[i].kind = kind;
    c->e[i].md_nid = nid;
    c->e[i].ctx = ctx;
    c->e[i].used = ++c->tick;
    c->e[i].next = c->bucket[b];
    c->bucket[b] = i;
}

const char *ks_rsa_oaep_ctx_new(EVP_PKEY *pkey, const EVP_MD *md, const EVP_MD *mgf1,
                                EVP_PKEY_CTX **out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    const char *failed = NULL;

    if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) != 1)
        failed = "decryption";
    else if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1)
        failed = "OAEP padding";
    else if (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) != 1)
        failed = "this OAEP digest";
    else if (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1) != 1)
        failed = "this MGF1 digest";
    if (failed != NULL) {
        EVP_PKEY_CTX_free(ctx);   /* leaves the error queue to the caller */
        ctx = NULL;
    }
    *out = ctx;
    return failed;
}

/* The cache key of a context made for these digests (none, the first or
 * both): the digests' NIDs in one int, -1 if they do not fit. */
static int digests_key(const EVP_MD *md, const EVP_MD *mgf1)
{
    int a = md != NULL ? EVP_MD_get_type(md) : 0, b = mgf1 != NULL ? EVP_MD_get_type(mgf1) : 0;

    if ((md != NULL && a <= NID_undef) || (mgf1 != NULL && b <= NID_undef) || a >= 65536
        || b >= 32768)
        return -1;
    return b * 65536 + a;
}

EVP_PKEY_CTX *ks_sign_ctx_new(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (ctx != NULL && EVP_PKEY_sign_init(ctx) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

EVP_MD_CTX *ks_eddsa_ctx_new(EVP_PKEY *pkey)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx != NULL && EVP_DigestSignInit_ex(ctx, NULL, NULL, NULL, NULL, pkey, NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* The kinds' contexts, made new: NULL on failure (OpenSSL's error queue as
 * it is left).  RSA sign: sign_init and nothing else. */
static void *make_rsa_sign(struct ks_key *k, const EVP_MD *md, const EVP_MD *mgf1)
{
    (void)md;
    (void)mgf1;
    return ks_sign_ctx_new(k->pkey);
}

static void *make_ecdsa(struct ks_key *k, const EVP_MD *md, const EVP_MD *mgf1)
{
    EVP_PKEY_CTX *ctx = make_rsa_sign(k, md, mgf1);

    if (ctx != NULL && EVP_PKEY_CTX_set_signature_md(ctx, md) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void *make_rsa_oaep(struct ks_key *k, const EVP_MD *md, const EVP_MD *mgf1)
{
    EVP_PKEY_CTX *ctx;

    return ks_rsa_oaep_ctx_new(k->pkey, md, mgf1, &ctx) == NULL ? ctx : NULL;
}

static void *make_eddsa(struct ks_key *k, const EVP_MD *md, const EVP_MD *mgf1)
{
    (void)md;
    (void)mgf1;
    return ks_eddsa_ctx_new(k->pkey);
}

/* What differs between the kinds: how their contexts are made (the cache
 * key is digests_key() for all) */
typedef void *make_fn(struct ks_key *k, const EVP_MD *md, const EVP_MD *mgf1);
static make_fn *const makers[] = {
    [K_ECDSA] = make_ecdsa,
    [K_RSA_SIGN] = make_rsa_sign,
    [K_EDDSA] = make_eddsa,
    [K_RSA_OAEP] = make_rsa_oaep,
};

/* The one way to a prepared context of any kind: this thread's cached one
 * for the key and the digests, else a new one cached. */
static void *prepared(int kind, struct ks_key *k, const EVP_MD *md, const EVP_MD *mgf1)
{
    struct cache *c = cache();
    int key;
    void *ctx;

    if (c == NULL || (key = digests_key(md, mgf1)) < 0)
        return NULL;
    if ((ctx = lookup(c, k, kind, key)) != NULL)
        return ctx;
    if ((ctx = makers[kind](k, md, mgf1)) == NULL) {
        ERR_clear_error();
        return NULL;
    }
    insert(c, k, kind, key, ctx);
    return ctx;
}

EVP_PKEY_CTX *ks_prep_ecdsa(struct ks_key *k, const EVP_MD *md)
{
    return prepared(K_ECDSA, k, md, NULL);
}

EVP_PKEY_CTX *ks_prep_rsa_sign(struct ks_key *k)
{
    return prepared(K_RSA_SIGN, k, NULL, NULL);
}

EVP_PKEY_CTX *ks_prep_rsa_oaep(struct ks_key *k, const EVP_MD *md, const EVP_MD *mgf1)
{
    return prepared(K_RSA_OAEP, k, md, mgf1);
}

EVP_MD_CTX *ks_prep_eddsa(struct ks_key *k)
{
    return prepared(K_EDDSA, k, NULL, NULL);
}
