/* Reply helpers shared by the operation handlers; see op.h. */
#include "op.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "common/log.h"
#include "prepared.h"
#include "session.h"

static Keystore__Error oom_error = {
    PROTOBUF_C_MESSAGE_INIT(&keystore__error__descriptor),
    KEYSTORE__ERROR_CODE__ERROR_INTERNAL,
    (char *)"the server ran out of memory building the reply; see its log",
};

void ks_op_error(struct ks_op *op, Keystore__ErrorCode code, const char *fmt, ...)
{
    char msg[1024], clean[1024], who[160];
    Keystore__Error *e;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ks_log_sanitize(msg, clean, sizeof(clean));
    ks_session_describe(op->s, who, sizeof(who));
    ks_log("conn %lu %s: %s refused: %s: %s", op->s->id, who, op->name,
           ks_error_code_name(code), clean);
    e = ks_arena_alloc(op->arena, sizeof(*e));
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_ERROR;
    if (e == NULL) {
        op->resp->error = &oom_error;
        return;
    }
    keystore__error__init(e);
    e->code = code;
    e->message = ks_arena_memdup(op->arena, clean, strlen(clean) + 1);
    if (e->message == NULL) {
        op->resp->error = &oom_error;
        return;
    }
    op->resp->error = e;
}

struct ks_key *ks_op_key_if(struct ks_op *op, const char *name, int visible)
{
    struct ks_key *k;
    char who[96];

    if (!ks_valid_key_name(name)) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST,
                    "'%s' is not a valid key name: use 1-%d characters of A-Z a-z 0-9 . _ - "
                    "not starting with '.'", name, KS_MAX_KEY_NAME);
        return NULL;
    }
    k = visible ? ks_store_get(name) : NULL;
    if (k != NULL)
        return k;
    if (op->s->is_admin) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY, "no key named '%s'", name);
        return NULL;
    }
    /* the same words whether the key is missing or hidden: names do not leak */
    ks_session_identity(op->s, who, sizeof(who));
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY,
                "no key named '%s' that %s may use (it does not exist, or the server's access "
                "list does not grant it)", name, who);
    return NULL;
}

struct ks_key *ks_op_key(struct ks_op *op, const char *name)
{
    return ks_op_key_if(op, name, 1);
}

static void ks_format_time(uint64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "%llu", (unsigned long long)t);
}

struct ks_key *ks_op_key_version(struct ks_op *op, const char *name, uint32_t version,
                                 int visible)
{
    enum ks_store_status st;
    uint32_t current;
    uint64_t when;
    struct ks_key *k;
    char date[40];

    if (version == 0 || !visible || !ks_valid_key_name(name))
        return ks_op_key_if(op, name, visible);
    k = ks_store_get_version(name, version, &st, &current, &when);
    if (k != NULL)
        return k;
    if (st == KS_STORE_NO_SUCH_KEY)
        return ks_op_key_if(op, name, visible);
    if (st == KS_STORE_RETIRED) {
        ks_format_time(when, date, sizeof(date));
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_KEY_RETIRED,
                    "key '%s' version %u was retired%s%s: reload the application to use "
                    "version %u", name, (unsigned)version, when != 0 ? " on " : " (before the "
                    "server last started)", when != 0 ? date : "", (unsigned)current);
        return NULL;
    }
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY,
                "key '%s' has no version %u (its current version is %u)", name,
                (unsigned)version, (unsigned)current);
    return NULL;
}

/* KeyVersionInfo of every version: the usable ones, those retired since
 * start (with the time) and below them those retired before (time 1). */
static int add_versions(struct ks_op *op, Keystore__KeyInfo *ki, const struct ks_key *k,
                        const struct ks_key *head)
{
    Keystore__KeyVersionInfo **v;
    uint32_t n = head->version, i, j;

    if (n == 0 || n > 100000)
        return 0;
    v = ks_arena_alloc(op->arena, n * sizeof(*v));
    if (v == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        const struct ks_key *e = i + 1 == head->version ? head : NULL;

        for (j = 0; e == NULL && j < head->nolder; j++)
            if (head->older[j]->version == i + 1)
                e = head->older[j];
        if ((v[i] = ks_arena_alloc(op->arena, sizeof(*v[i]))) == NULL)
            return -1;
        keystore__key_version_info__init(v[i]);
        v[i]->version = i + 1;
        v[i]->current = e == head;
        if (e == NULL) {
            v[i]->retired = 1;
            for (j = 0; j < head->nretired; j++)
                if (head->retired[j].version == i + 1)
                    v[i]->retired = head->retired[j].when;
            continue;
        }
        v[i]->created = e->created;
        v[i]->type = e->type;
        v[i]->bits = e->bits;
        v[i]->usage = e->usage;
        v[i]->certs = (uint32_t)e->ncerts;
        if (e->group[0] != '\0' &&
            (v[i]->group = ks_arena_memdup(op->arena, e->group, strlen(e->group) + 1)) == NULL)
            return -1;
    }
    (void)k;
    ki->versions = v;
    ki->n_versions = n;
    return 0;
}

Keystore__KeyInfo *ks_op_keyinfo(struct ks_op *op, const struct ks_key *k)
{
    return ks_op_keyinfo_of(op, k, k);
}

Keystore__KeyInfo *ks_op_keyinfo_of(struct ks_op *op, const struct ks_key *k,
                                    const struct ks_key *head)
{
    Keystore__KeyInfo *ki = ks_arena_alloc(op->arena, sizeof(*ki));
    size_t i;

    if (ki == NULL)
        return NULL;
    keystore__key_info__init(ki);
    ki->name = ks_arena_memdup(op->arena, k->name, strlen(k->name) + 1);
    ki->type = k->type;
    ki->bits = k->bits;
    ki->public_key_der.data = ks_arena_alloc(op->arena, k->spki_len);
    if (ki->public_key_der.data == NULL || ks_key_spki(k, ki->public_key_der.data) != 0)
        return NULL;
    ki->public_key_der.len = k->spki_len;
    if (k->group[0] != '\0')
        ki->group = ks_arena_memdup(op->arena, k->group, strlen(k->group) + 1);
    ki->created = k->created;
    ki->usage = k->usage;
    ki->version = k->version;
    if (head != NULL && add_versions(op, ki, k, head) != 0)
        return NULL;
    if (k->ncerts > 0) {
        ki->cert_chain_der = ks_arena_alloc(op->arena, k->ncerts * sizeof(ProtobufCBinaryData));
        if (ki->cert_chain_der == NULL)
            return NULL;
        for (i = 0; i < k->ncerts; i++) {
            ki->cert_chain_der[i].data = ks_arena_memdup(op->arena, k->certs[i].der, k->certs[i].len);
            ki->cert_chain_der[i].len = k->certs[i].len;
        }
        ki->n_cert_chain_der = k->ncerts;
    }
    if (op->arena->failed || ki->name == NULL || ki->group == NULL)
        return NULL;
    return ki;
}

void ks_op_reply_key(struct ks_op *op, const struct ks_key *k)
{
    ks_op_reply_key_of(op, k, k);
}

void ks_op_reply_key_of(struct ks_op *op, const struct ks_key *k, const struct ks_key *head)
{
    Keystore__KeyInfo *ki = ks_op_keyinfo_of(op, k, head);

    if (ki == NULL)
        return;   /* arena->failed: ks_handle_frame turns this into an error */
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_KEY;
    op->resp->key = ki;
}

EVP_MD *ks_op_fetch_md(struct ks_op *op, const char *name, const char *what)
{
    EVP_MD *md;

    if (name == NULL || name[0] == '\0' || strlen(name) > 64) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER, "%s name is empty or too long",
                    what);
        return NULL;
    }
    md = ks_prep_md(name);   /* fetched once per thread */
    if (md == NULL) {
        ERR_clear_error();
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER,
                    "unknown %s '%s' (use an OpenSSL digest name such as SHA256)", what, name);
    }
    return md;
}

const char *ks_padding_name(Keystore__Padding p)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&keystore__padding__descriptor, (int)p);

    return v != NULL ? v->name : "an unknown padding";
}

void ks_op_out_of_memory(struct ks_op *op)
{
    op->resp->body_case = KEYSTORE__RESPONSE__BODY_ERROR;
    op->resp->error = &oom_error;
}
