/* OSSL_STORE loader for "keystore:NAME" URIs: yields the key (by reference,
 * picked up by our keymgmt's load) and any certificates stored with it. */
#include "key.h"
#include "errors.h"

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    KS_PROVCTX *pc;
    char name[KS_MAX_KEY_NAME + 1];
    int expect;                 /* OSSL_STORE_INFO_* or 0 for anything */
    int chain_only;             /* "?chain": no key, no leaf */
    KS_KEY *key;                /* fetched on the first load */
    int key_done;
    size_t next_cert;
    int eof;
} KS_STORE_CTX;

/* "keystore:NAME?chain" asks for the certificates after the leaf only
 * (s_server -cert_chain), without the key. */
static int split_query(KS_PROVCTX *pc, const char *uri, char base[KS_ADDR_MAX], int *chain_only)
{
    const char *q = strchr(uri, '?');
    size_t n = q != NULL ? (size_t)(q - uri) : strlen(uri);

    *chain_only = 0;
    if (n >= KS_ADDR_MAX) {
        KS_RAISE(pc, KS_R_BAD_URI, "keystore URI too long: %.80s...", uri);
        return 0;
    }
    memcpy(base, uri, n);
    base[n] = '\0';
    if (q == NULL)
        return 1;
    if (strcmp(q + 1, "chain") != 0) {
        KS_RAISE(pc, KS_R_BAD_URI, "unknown query '%.40s' in keystore URI: the only one is '?chain' "
                 "(the certificates after the leaf)", q + 1);
        return 0;
    }
    *chain_only = 1;
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
    if (!split_query(pc, uri, base, &ctx->chain_only))
        goto err;
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

static void update_eof(KS_STORE_CTX *ctx)
{
    int more_key = !ctx->key_done && wants_key(ctx);
    int more_certs = wants_certs(ctx) && ctx->next_cert < ctx->key->ncerts;

    ctx->eof = !more_key && !more_certs;
}

static int store_load(void *vctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    KS_STORE_CTX *ctx = vctx;
    OSSL_PARAM params[4];
    int objtype, ok;

    (void)pw_cb;
    (void)pw_cbarg; /* keys are never encrypted on our side */
    if (ctx->eof)
        return 0;
    if (ctx->key == NULL && (ctx->key = ks_key_fetch(ctx->pc, ctx->name)) == NULL) {
        ctx->eof = 1;
        return 0;
    }
    if (ctx->chain_only && ctx->next_cert == 0)
        ctx->next_cert = 1;
    if (!ctx->key_done && wants_key(ctx)) {
        KS_KEY *ref = ctx->key;

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
        update_eof(ctx);
        return ok;
    }
    ctx->key_done = 1;
    if (wants_certs(ctx) && ctx->next_cert < ctx->key->ncerts) {
        size_t i = ctx->next_cert++;

        objtype = OSSL_OBJECT_CERT;
        params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &objtype);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA,
                                                      ctx->key->certs[i], ctx->key->certlens[i]);
        params[2] = OSSL_PARAM_construct_end();
        ok = object_cb(params, object_cbarg);
        update_eof(ctx);
        return ok;
    }
    ctx->eof = 1;
    return 1;
}

static int store_eof(void *vctx)
{
    return ((KS_STORE_CTX *)vctx)->eof;
}

static int store_close(void *vctx)
{
    KS_STORE_CTX *ctx = vctx;

    ks_key_free(ctx->key);
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
