/* OSSL_STORE loader for "keystore:NAME" URIs: yields the key (by reference,
 * picked up by our keymgmt's load) and any certificates stored with it;
 * "keystore:" alone yields every key the server lists, each followed by
 * its certificates. */
#include "key.h"
#include "client.h"
#include "errors.h"

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    KS_PROVCTX *pc;
    char name[KS_MAX_KEY_NAME + 1];
    int list_all;               /* "keystore:": every key the server lists */
    int expect;                 /* OSSL_STORE_INFO_* or 0 for anything */
    int chain_only;             /* "?chain": no key, the certificates after the leaf */
    uint32_t version;           /* "?version=N": that key version; 0 the current one */
    KS_KEY **keys;              /* fetched on the first load */
    size_t nkeys, cur;          /* the key being yielded */
    int fetched, key_done;
    size_t next_cert;
    int eof;
} KS_STORE_CTX;

/* "version=N": 1 and N (1..999999999, no leading zero), else 0. */
static int parse_version(const char *s, size_t len, uint32_t *v)
{
    size_t i;

    *v = 0;
    if (len < 9 || len > 8 + 9 || strncmp(s, "version=", 8) != 0 || s[8] < '1' || s[8] > '9')
        return 0;
    for (i = 8; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *v = *v * 10 + (uint32_t)(s[i] - '0');
    }
    return 1;
}

/* "keystore:NAME?chain" asks for the certificates after the leaf only
 * (s_server -cert_chain), without the key; "?version=N" for version N of
 * the key (keystorectl rotate); both may be given, joined by '&'. */
static int split_query(KS_PROVCTX *pc, const char *uri, char base[KS_ADDR_MAX], int *chain_only,
                       uint32_t *version)
{
    const char *q = strchr(uri, '?'), *p;
    size_t n = q != NULL ? (size_t)(q - uri) : strlen(uri);

    *chain_only = 0;
    *version = 0;
    if (n >= KS_ADDR_MAX) {
        KS_RAISE(pc, KS_R_BAD_URI, "keystore URI too long: %.80s...", uri);
        return 0;
    }
    memcpy(base, uri, n);
    base[n] = '\0';
    for (p = q; p != NULL; p = strchr(p + 1, '&')) {
        const char *e = strchr(p + 1, '&');
        size_t len = e != NULL ? (size_t)(e - p - 1) : strlen(p + 1);

        if (len == 5 && strncmp(p + 1, "chain", 5) == 0 && !*chain_only) {
            *chain_only = 1;
        } else if (*version == 0 && parse_version(p + 1, len, version)) {
            continue;
        } else {
            KS_RAISE(pc, KS_R_BAD_URI, "unknown query '%.*s' in keystore URI (or one given twice): use "
                     "'?chain' (the certificates after the leaf) and/or '?version=N' (a key "
                     "version, 1 or more)", (int)(len > 40 ? 40 : len), p + 1);
            return 0;
        }
    }
    return 1;
}

static void *store_open(void *provctx, const char *uri)
{
    KS_PROVCTX *pc = provctx;
    KS_STORE_CTX *ctx;
    char err[KS_ERRLEN], base[KS_ADDR_MAX];

    if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
        KS_RAISE(pc, KS_R_INTERNAL, "out of memory opening %.100s", uri);
        return NULL;
    }
    ctx->pc = pc;
    ks_prefer_other_providers();
    if (!split_query(pc, uri, base, &ctx->chain_only, &ctx->version))
        goto err;
    /* the bare scheme lists every key, as pkcs11: does with pkcs11-provider */
    if (strcmp(base, "keystore:") == 0 || strcmp(base, "keystore:name=") == 0) {
        if (ctx->chain_only || ctx->version != 0) {
            KS_RAISE(pc, KS_R_BAD_URI, "'?%s' needs a key name: keystore:NAME?%s",
                     ctx->chain_only ? "chain" : "version=N", ctx->chain_only ? "chain" : "version=N");
            goto err;
        }
        ctx->list_all = 1;
        return ctx;
    }
    if (!ks_parse_uri(base, ctx->name, err, sizeof(err))) {
        KS_RAISE(pc, KS_R_BAD_URI, "%s", err);
        goto err;
    }
    return ctx;
err:
    free(ctx);
    return NULL;
}

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_END
    };

    (void)provctx;
    return params;
}

static int store_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    KS_STORE_CTX *ctx = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT)) != NULL
        && !OSSL_PARAM_get_int(p, &ctx->expect))
        return 0;
    return 1;
}

static int wants_key(const KS_STORE_CTX *ctx)
{
    return !ctx->chain_only && (ctx->expect == 0 || ctx->expect == OSSL_STORE_INFO_PKEY
        || ctx->expect == OSSL_STORE_INFO_PUBKEY);
}

static int wants_certs(const KS_STORE_CTX *ctx)
{
    return ctx->expect == 0 || ctx->expect == OSSL_STORE_INFO_CERT;
}

/* Where "?chain" starts: after the leaf; for a key with only a leaf (self-
 * signed, or its chain not attached) the leaf itself, so that the same
 * s_server -cert_chain works for every key (it sends the leaf twice). */
static size_t first_cert(const KS_STORE_CTX *ctx, const KS_KEY *k)
{
    return ctx->chain_only && k->ncerts > 1 ? 1 : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(KS_KEY *const *)a)->name, (*(KS_KEY *const *)b)->name);
}

static int fetch_list(KS_STORE_CTX *ctx)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__ListKeysRequest lk = KEYSTORE__LIST_KEYS_REQUEST__INIT;
    Keystore__Response *resp = NULL;
    size_t i, n;

    req.body_case = KEYSTORE__REQUEST__BODY_LIST_KEYS;
    req.list_keys = &lk;
    if (!ks_client_call(ctx->pc, &req, KEYSTORE__RESPONSE__BODY_LIST_KEYS, "list keys", NULL,
                        &resp, NULL))
        return 0;
    n = resp->list_keys != NULL ? resp->list_keys->n_keys : 0;
    if (n > 0 && (ctx->keys = calloc(n, sizeof(*ctx->keys))) == NULL) {
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "out of memory listing %zu keys", n);
        ks_client_free_response(resp);
        return 0;
    }
    for (i = 0; i < n; i++) {
        const Keystore__KeyInfo *info = resp->list_keys->keys[i];
        KS_KEY *k;

        if (info == NULL || !ks_valid_key_name(info->name))
            continue;
        /* a key this provider cannot use (a type it does not know) is
         * skipped, and its error with it: the listing goes on */
        ERR_set_mark();
        if ((k = ks_key_from_info(ctx->pc, info->name, info)) != NULL)
            ctx->keys[ctx->nkeys++] = k;
        ERR_pop_to_mark();
    }
    ks_client_free_response(resp);
    if (ctx->nkeys > 1)
        qsort(ctx->keys, ctx->nkeys, sizeof(*ctx->keys), by_name);
    return 1;
}

static int fetch(KS_STORE_CTX *ctx)
{
    KS_KEY *k;

    ctx->fetched = 1;
    if (ctx->list_all)
        return fetch_list(ctx);
    if ((k = ks_key_fetch_version(ctx->pc, ctx->name, ctx->version)) == NULL)
        return 0;
    if (ctx->chain_only && k->ncerts == 0) {
        KS_RAISE(ctx->pc, KS_R_NO_CERTIFICATE, "key '%s' has no certificate in the keystore: "
                 "attach one with 'keystorectl attach-cert %s CERT.pem [CHAIN.pem]'",
                 ctx->name, ctx->name);
        ks_key_free(k);
        return 0;
    }
    if ((ctx->keys = malloc(sizeof(*ctx->keys))) == NULL) {
        KS_RAISE(ctx->pc, KS_R_INTERNAL, "out of memory loading key '%s'", ctx->name);
        ks_key_free(k);
        return 0;
    }
    ctx->keys[0] = k;
    ctx->nkeys = 1;
    return 1;
}

/* Move to the next key with something left to yield; eof after the last. */
static void advance(KS_STORE_CTX *ctx)
{
    while (ctx->cur < ctx->nkeys) {
        const KS_KEY *k = ctx->keys[ctx->cur];

        if (ctx->next_cert < first_cert(ctx, k))
            ctx->next_cert = first_cert(ctx, k);
        if ((!ctx->key_done && wants_key(ctx)) || (wants_certs(ctx) && ctx->next_cert < k->ncerts))
            return;
        ctx->cur++;
        ctx->key_done = 0;
        ctx->next_cert = 0;
    }
    ctx->eof = 1;
}

static int store_load(void *vctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    KS_STORE_CTX *ctx = vctx;
    OSSL_PARAM params[4];
    KS_KEY *k;
    int objtype, ok;

    (void)pw_cb;
    (void)pw_cbarg; /* keys are never encrypted on our side */
    if (ctx->eof)
        return 0;
    if (!ctx->fetched && !fetch(ctx)) {
        ctx->eof = 1;
        return 0;
    }
    advance(ctx);
    if (ctx->eof)
        return 0;
    k = ctx->keys[ctx->cur];
    if (!ctx->key_done && wants_key(ctx)) {
        KS_KEY *ref = k;

        ctx->key_done = 1;
        ks_key_up_ref(ref);
        objtype = OSSL_OBJECT_PKEY;
        params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                     (char *)ks_key_type_name_of(ref->type), 0);
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref, sizeof(ref));
        params[3] = OSSL_PARAM_construct_end();
        ok = object_cb(params, object_cbarg);
        /* Our keymgmt's load takes the reference; if it did not, drop it. */
        ks_key_free(ref);
        advance(ctx);
        return ok;
    }
    ctx->key_done = 1;
    {
        size_t i = ctx->next_cert++;

        objtype = OSSL_OBJECT_CERT;
        params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA,
                                                      k->certs[i], k->certlens[i]);
        params[2] = OSSL_PARAM_construct_end();
        ok = object_cb(params, object_cbarg);
        advance(ctx);
        return ok;
    }
}

static int store_eof(void *vctx)
{
    return ((KS_STORE_CTX *)vctx)->eof;
}

static int store_close(void *vctx)
{
    KS_STORE_CTX *ctx = vctx;
    size_t i;

    for (i = 0; i < ctx->nkeys; i++)
        ks_key_free(ctx->keys[i]);
    free(ctx->keys);
    free(ctx);
    return 1;
}

const OSSL_DISPATCH ks_store_functions[] = {
    { OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open },
    { OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))store_settable_ctx_params },
    { OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params },
    { OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load },
    { OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof },
    { OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close },
    { 0, NULL }
};
