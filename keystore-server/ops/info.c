/* GetKey and ListKeys: public information only, and only about keys the
 * peer may use (acl.h); the admin socket sees every key. */
#include "handlers.h"

#include "acl.h"

void ks_op_get_key(struct ks_op *op, const Keystore__GetKeyRequest *r)
{
    struct ks_key *k = ks_op_key_version(op, r->name, r->version,
                                         ks_acl_visible(op->s, r->name));
    struct ks_key *head;

    if (k == NULL)
        return;
    head = ks_store_current_of(k);
    ks_op_reply_key_of(op, k, head);
    ks_key_put(head);
    ks_key_put(k);
}

struct list_state {
    struct ks_op *op;
    Keystore__KeyInfo **infos;
    size_t n, cap;
};

static int add_info(const struct ks_key *k, void *arg)
{
    struct list_state *st = arg;

    if (!ks_acl_visible(st->op->s, k->name))
        return 0;
    if (st->n == st->cap)
        return 1;   /* keys added since we counted: list what we have */
    st->infos[st->n] = ks_op_keyinfo(st->op, k);
    if (st->infos[st->n] == NULL)
        return -1;
    st->n++;
    return 0;
}

void ks_op_list_keys(struct ks_op *op, const Keystore__ListKeysRequest *r)
{
    Keystore__ListKeysResponse *lr = ks_arena_alloc(op->arena, sizeof(*lr));
    struct list_state st = { op, NULL, 0, 0 };

    (void)r;
    if (lr == NULL)
        return;
    keystore__list_keys_response__init(lr);
    /* a little headroom for keys generated between counting and listing */
    st.cap = ks_store_count() + 16;
    st.infos = ks_arena_alloc(op->arena, st.cap * sizeof(*st.infos));
    if (st.infos == NULL)
        return;
    if (ks_store_foreach(add_info, &st) < 0)
        return;   /* arena->failed is set */
    lr->keys = st.infos;
    lr->n_keys = st.n;
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_LIST_KEYS;
    op->resp->list_keys = lr;
}
