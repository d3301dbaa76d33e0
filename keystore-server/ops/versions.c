/* Key versions: RotateKey (a new version, generated here, becomes current)
 * and RetireKey (an old version's files are destroyed).  Admin socket only
 * (dispatch.c).  Clients keep the version they loaded: Sign, Decrypt and
 * Derive name it (store/keytable.h, ks_store_get_version). */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "admin.h"
#include "common/log.h"
#include "usage.h"

static Keystore__ErrorCode code_of(enum ks_store_status st)
{
    switch (st) {
    case KS_STORE_NO_SUCH_KEY:
    case KS_STORE_NO_SUCH_VERSION:
        return KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY;
    case KS_STORE_RETIRED:
        return KEYSTORE__ERROR_CODE__ERROR_KEY_RETIRED;
    case KS_STORE_REFUSED:
        return KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER;
    default:
        return KEYSTORE__ERROR_CODE__ERROR_INTERNAL;
    }
}

void ks_op_rotate(struct ks_op *op, const Keystore__RotateKeyRequest *r)
{
    Keystore__GenerateKeyRequest g = KEYSTORE__GENERATE_KEY_REQUEST__INIT;
    char err[512], u[KS_USAGE_TEXT_MAX];
    struct ks_key *cur, *nk = NULL;
    enum ks_store_status st;
    EVP_PKEY *pkey;
    uint32_t usage;

    cur = ks_op_key(op, r->name);
    if (cur == NULL)
        return;
    g.name = r->name;
    if (r->type == KEYSTORE__KEY_TYPE__KEY_TYPE_UNSPECIFIED) {
        /* the same kind of key as now, unless told otherwise */
        g.type = cur->type;
        g.bits = cur->type == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA ||
                 cur->type == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS ? cur->bits : 0;
        g.group = (char *)(cur->type == KEYSTORE__KEY_TYPE__KEY_TYPE_EC ? cur->group : "");
        g.usage = r->usage != 0 ? r->usage : cur->usage;
        if (r->bits != 0 && g.bits != 0)
            g.bits = r->bits;
        if (r->group[0] != '\0' && g.group[0] != '\0')
            g.group = r->group;
    } else {
        g.type = r->type;
        g.bits = r->bits;
        g.group = r->group;
        g.usage = r->usage;
    }
    ks_key_put(cur);
    pkey = ks_op_keygen(op, &g, &usage);
    if (pkey == NULL)
        return;
    st = ks_store_rotate(r->name, pkey, usage, &nk, err, sizeof(err));
    if (st != KS_STORE_OK) {
        EVP_PKEY_free(pkey);
        if (st == KS_STORE_UNAVAILABLE || st == KS_STORE_CONFLICT) {
            ks_op_catalogue_error(op, st, err);
        } else if (st == KS_STORE_INTERNAL) {
            ks_log("error: %s", err);
            ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_INTERNAL,
                        "the server could not store a new version of key %s; its log says why",
                        r->name);
        } else {
            ks_op_error(op, code_of(st), "%s", err);
        }
        return;
    }
    ks_log("conn %lu uid %u pid %d: rotated key %s: version %u (%s%s%s, usage %s) is current; "
           "clients keep the version they loaded until they reload", op->s->id,
           (unsigned)op->s->uid, (int)op->s->pid, nk->name, (unsigned)nk->version,
           ks_key_type_name(nk->type), nk->group[0] != '\0' ? " " : "", nk->group,
           ks_usage_format(nk->usage, u));
    ks_acl_log_key(nk);
    ks_op_reply_key(op, nk);
    ks_key_put(nk);
}

void ks_op_retire(struct ks_op *op, const Keystore__RetireKeyRequest *r)
{
    char err[512];
    struct ks_key *head = NULL;
    enum ks_store_status st;

    if (!ks_valid_key_name(r->name)) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST, "'%s' is not a valid key name",
                    r->name);
        return;
    }
    if (r->version == 0) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "retire needs a version (keystorectl retire %s --version N)", r->name);
        return;
    }
    st = ks_store_retire(r->name, r->version, &head, err, sizeof(err));
    if (st != KS_STORE_OK) {
        if (st == KS_STORE_UNAVAILABLE || st == KS_STORE_CONFLICT) {
            ks_op_catalogue_error(op, st, err);
        } else if (st == KS_STORE_INTERNAL) {
            ks_log("error: %s", err);
            ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_INTERNAL,
                        "the server could not retire version %u of key %s; its log says why",
                        (unsigned)r->version, r->name);
        } else {
            ks_op_error(op, code_of(st), "%s", err);
        }
        ks_key_put(head);
        return;
    }
    ks_log("conn %lu uid %u pid %d: retired key %s version %u (its files are destroyed; "
           "clients still using it are refused and told to reload)", op->s->id,
           (unsigned)op->s->uid, (int)op->s->pid, r->name, (unsigned)r->version);
    ks_op_reply_key(op, head);
    ks_key_put(head);
}
