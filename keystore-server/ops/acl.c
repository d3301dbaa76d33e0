/* Access list; see acl.h. */
#include "acl.h"

#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/keytable.h"

#define MAX_RULES 4096
#define MAX_IDS 32
#define MAX_LINE 2048

enum id_kind { ID_ANY = 1, ID_UID, ID_GID, ID_TCP };

struct ident {
    enum id_kind kind;
    unsigned long num;          /* uid or gid */
    char pattern[65];           /* tcp client name glob */
    char text[72];              /* as written, for the start-up summary */
};

struct rule {
    char key[65];               /* key name glob */
    int ops;
    struct ident ids[MAX_IDS];
    int nids;
};

struct ks_acl {
    struct rule *rules;
    size_t nrules, cap;
    char path[KS_CONF_PATH_MAX];
};

/* The operations an access list grants, in the order logs name them. */
static const struct {
    int bit;
    const char *name;
} op_names[] = {
    { KS_ACL_SIGN, "sign" },
    { KS_ACL_DECRYPT, "decrypt" },
    { KS_ACL_DERIVE, "derive" },
};
#define NOPS (sizeof(op_names) / sizeof(op_names[0]))

/* Without an `acl` setting: one rule, "* * uid:0".  Closed until granted. */
static struct rule default_rule = {
    "*", KS_ACL_SIGN | KS_ACL_DECRYPT | KS_ACL_DERIVE, { { ID_UID, 0, "", "uid:0" } }, 1
};
static const struct ks_acl default_acl = { &default_rule, 1, 1, "" };

/* Readers hold the lock shared only while matching one request. */
static pthread_rwlock_t acl_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ks_acl *current;   /* NULL: default_acl */

static int parse_num(const char *s, unsigned long *out)
{
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0' && *out < 0xffffffffUL ? 0 : -1;
}

/* Look NAME up in a names table ("u NAME ID" lines). */
static int table_lookup(const char *names, char kind, const char *name, unsigned long *id)
{
    size_t n = strlen(name);
    const char *p = names;

    while (p != NULL && *p != '\0') {
        if (p[0] == kind && p[1] == ' ' && strncmp(p + 2, name, n) == 0 && p[2 + n] == ' ') {
            *id = strtoul(p + 3 + n, NULL, 10);
            return 0;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

static void record_name(struct ks_acl_names *rec, char kind, const char *name, unsigned long id)
{
    char line[128];
    int n = snprintf(line, sizeof(line), "%c %s %lu\n", kind, name, id);

    if (rec == NULL || n <= 0 || (size_t)n >= sizeof(line))
        return;
    if (rec->len + (size_t)n + 1 > rec->cap) {
        size_t cap = rec->cap * 2 + (size_t)n + 256;
        char *b = realloc(rec->buf, cap);

        if (b == NULL)
            return;   /* the confined parse then reports the name as unknown */
        rec->buf = b;
        rec->cap = cap;
    }
    memcpy(rec->buf + rec->len, line, (size_t)n + 1);
    rec->len += (size_t)n;
}

static int resolve(char kind, const char *name, const char *names, struct ks_acl_names *rec,
                   unsigned long *id)
{
    if (names != NULL)
        return table_lookup(names, kind, name, id);
    if (kind == 'u') {
        struct passwd *pw = getpwnam(name);

        if (pw == NULL)
            return -1;
        *id = pw->pw_uid;
    } else {
        struct group *gr = getgrnam(name);

        if (gr == NULL)
            return -1;
        *id = gr->gr_gid;
    }
    record_name(rec, kind, name, *id);
    return 0;
}

static const char *parse_ident(const char *tok, struct ident *id, const char *names,
                               struct ks_acl_names *rec)
{
    memset(id, 0, sizeof(id[0]));
    if (strlen(tok) >= sizeof(id->text))
        return "identity is too long";
    strcpy(id->text, tok);
    if (strcmp(tok, "*") == 0) {
        id->kind = ID_ANY;
    } else if (strncmp(tok, "uid:", 4) == 0) {
        id->kind = ID_UID;
        if (parse_num(tok + 4, &id->num) != 0 && resolve('u', tok + 4, names, rec, &id->num) != 0)
            return "unknown user";
    } else if (strncmp(tok, "gid:", 4) == 0) {
        id->kind = ID_GID;
        if (parse_num(tok + 4, &id->num) != 0 && resolve('g', tok + 4, names, rec, &id->num) != 0)
            return "unknown group";
    } else if (strncmp(tok, "tcp:", 4) == 0) {
        id->kind = ID_TCP;
        if (tok[4] == '\0' || strlen(tok + 4) >= sizeof(id->pattern))
            return "tcp: needs a client name (or a pattern such as tcp:*)";
        strcpy(id->pattern, tok + 4);
    } else {
        return "an identity is uid:N|USER, gid:N|GROUP, tcp:NAME or *";
    }
    return NULL;
}

static const char *parse_ops(char *tok, int *ops)
{
    char *op, *save = NULL;

    *ops = 0;
    for (op = strtok_r(tok, ",", &save); op != NULL; op = strtok_r(NULL, ",", &save)) {
        size_t i;
        int bit = 0;

        for (i = 0; i < NOPS; i++)
            if (strcmp(op, op_names[i].name) == 0 || strcmp(op, "*") == 0)
                bit |= op_names[i].bit;
        if (bit == 0)
            return "operations are sign, decrypt, derive, a list such as sign,derive, or *";
        *ops |= bit;
    }
    return *ops != 0 ? NULL : "no operation given";
}

/* One line into r; NULL (ok, *empty set for a blank or comment line) or why. */
static const char *parse_line(char *line, struct rule *r, int *empty, const char *names,
                              struct ks_acl_names *rec, char *tokbuf, size_t toklen)
{
    char *key, *ops, *tok, *save = NULL;
    const char *why;

    *empty = 0;
    memset(r, 0, sizeof(*r));
    key = strtok_r(line, " \t\r\n", &save);
    if (key == NULL || key[0] == '#') {
        *empty = 1;
        return NULL;
    }
    ops = strtok_r(NULL, " \t\r\n", &save);
    if (ops == NULL || strlen(key) >= sizeof(r->key))
        return "expected 'KEY OPS IDENTITY...', e.g. 'web sign uid:33 tcp:frontend1'";
    strcpy(r->key, key);
    if ((why = parse_ops(ops, &r->ops)) != NULL)
        return why;
    while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && tok[0] != '#') {
        if (r->nids == MAX_IDS)
            return "more than 32 identities on one line";
        if ((why = parse_ident(tok, &r->ids[r->nids], names, rec)) != NULL) {
            snprintf(tokbuf, toklen, "'%.80s': %s", tok, why);
            return tokbuf;
        }
        r->nids++;
    }
    return r->nids == 0 ? "no identity after the operations" : NULL;
}

struct ks_acl *ks_acl_parse(const char *path, const char *text, size_t len, const char *names,
                            struct ks_acl_names *rec, char *err, size_t errlen)
{
    char line[MAX_LINE], tokbuf[160];
    unsigned lineno = 0;
    size_t pos = 0;
    struct ks_acl *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        snprintf(err, errlen, "out of memory for the access list %s", path);
        return NULL;
    }
    snprintf(a->path, sizeof(a->path), "%s", path);
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = (nl != NULL ? (size_t)(nl - text) : len) - pos;
        const char *why;
        int empty;

        lineno++;
        if (n >= sizeof(line)) {
            snprintf(err, errlen, "%s:%u: line is too long", path, lineno);
            goto fail;
        }
        if (memchr(text + pos, '\0', n) != NULL) {
            snprintf(err, errlen, "%s:%u: NUL byte: not a text file", path, lineno);
            goto fail;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + 1;
        if (a->nrules == MAX_RULES) {
            snprintf(err, errlen, "%s: more than %d rules", path, MAX_RULES);
            goto fail;
        }
        if (a->nrules == a->cap) {   /* grown as needed: a rule is 2.5 KiB of locked memory */
            size_t cap = a->cap == 0 ? 16 : a->cap * 2;
            struct rule *r = realloc(a->rules, cap * sizeof(*r));

            if (r == NULL) {
                snprintf(err, errlen, "out of memory for the access list %s", path);
                goto fail;
            }
            a->rules = r;
            a->cap = cap;
        }
        why = parse_line(line, &a->rules[a->nrules], &empty, names, rec, tokbuf, sizeof(tokbuf));
        if (why != NULL) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
            goto fail;
        }
        if (!empty)
            a->nrules++;
    }
    return a;
fail:
    ks_acl_free(a);
    return NULL;
}

size_t ks_acl_rule_count(const struct ks_acl *a)
{
    return a != NULL ? a->nrules : 0;
}

void ks_acl_free(struct ks_acl *a)
{
    if (a == NULL)
        return;
    free(a->rules);
    free(a);
}

void ks_acl_install(struct ks_acl *a)
{
    struct ks_acl *old;

    pthread_rwlock_wrlock(&acl_lock);
    old = current;
    current = a;
    pthread_rwlock_unlock(&acl_lock);
    ks_acl_free(old);   /* no reader holds it: they hold the lock while using it */
}

static int ident_matches(const struct ident *id, const struct ks_session *s)
{
    int i;

    switch (id->kind) {
    case ID_ANY:
        return 1;
    case ID_UID:
        return !s->is_tcp && s->uid == (uid_t)id->num;
    case ID_GID:
        if (s->is_tcp)
            return 0;
        if (s->gid == (gid_t)id->num)
            return 1;
        for (i = 0; i < s->ngroups; i++)
            if (s->groups[i] == (gid_t)id->num)
                return 1;
        return 0;
    case ID_TCP:
        return s->is_tcp && s->tcp_client[0] != '\0' &&
               fnmatch(id->pattern, s->tcp_client, 0) == 0;
    }
    return 0;
}

static int allowed(const struct ks_acl *a, const struct ks_session *s, int what, const char *key)
{
    size_t i;
    int j;

    for (i = 0; i < a->nrules; i++) {
        if ((a->rules[i].ops & what) == 0 || fnmatch(a->rules[i].key, key, 0) != 0)
            continue;
        for (j = 0; j < a->rules[i].nids; j++)
            if (ident_matches(&a->rules[i].ids[j], s))
                return 1;
    }
    return 0;
}

int ks_acl_permit(struct ks_op *op, int what, const char *key)
{
    char who[96], name[KS_MAX_KEY_NAME + 1], where[KS_CONF_PATH_MAX + 64];
    const struct ks_acl *a;
    const char *opname = "use";
    size_t i;
    int ok;

    if (op->s->is_admin)
        return 1;
    pthread_rwlock_rdlock(&acl_lock);
    a = current != NULL ? current : &default_acl;
    /* checked before the key is looked up: a denied peer learns nothing
     * about which keys exist */
    ok = key != NULL && allowed(a, op->s, what, key);
    if (!ok && a->path[0] != '\0')
        snprintf(where, sizeof(where), "access list %s on the server", a->path);
    else if (!ok)
        snprintf(where, sizeof(where), "the server has no access list: only uid 0 may use keys "
                 "until its acl setting grants more");
    pthread_rwlock_unlock(&acl_lock);
    if (ok)
        return 1;
    for (i = 0; i < NOPS; i++)
        if (op_names[i].bit == what)
            opname = op_names[i].name;
    ks_session_identity(op->s, who, sizeof(who));
    ks_log_sanitize(key, name, sizeof(name));
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_PERMISSION_DENIED,
                "%s may not %s with key '%s' (%s)", who, opname, name, where);
    return 0;
}

int ks_acl_visible(const struct ks_session *s, const char *key)
{
    int ok;

    if (s->is_admin)
        return 1;
    if (key == NULL)
        return 0;
    pthread_rwlock_rdlock(&acl_lock);
    ok = allowed(current != NULL ? current : &default_acl, s, ~0, key);
    pthread_rwlock_unlock(&acl_lock);
    return ok;
}

/* Bounded append: *len stops at outlen - 1 when the text does not fit. */
static void append(char *out, size_t outlen, size_t *len, const char *a, const char *b)
{
    int n;

    if (*len + 1 >= outlen)
        return;
    n = snprintf(out + *len, outlen - *len, "%s%s", a, b);
    if (n < 0)
        return;
    *len = *len + (size_t)n >= outlen ? outlen - 1 : *len + (size_t)n;
}

/* Append every identity granted `bit` on key, each once ("nobody" if none). */
static void append_grantees(const struct ks_acl *a, char *out, size_t outlen, size_t *len,
                            int bit, const char *key)
{
    const char *seen[64];
    size_t i, nseen = 0, k, count = 0;
    int j;

    for (i = 0; i < a->nrules; i++) {
        if ((a->rules[i].ops & bit) == 0 || fnmatch(a->rules[i].key, key, 0) != 0)
            continue;
        for (j = 0; j < a->rules[i].nids; j++) {
            const char *t = a->rules[i].ids[j].text;

            for (k = 0; k < nseen && strcmp(seen[k], t) != 0; k++)
                ;
            if (k < nseen)
                continue;
            if (nseen < sizeof(seen) / sizeof(seen[0]))
                seen[nseen++] = t;
            append(out, outlen, len, count++ > 0 ? ", " : "", t);
        }
    }
    if (count == 0)
        append(out, outlen, len, "", "nobody");
}

/* The operations a key of this type can perform at all. */
static int type_ops(Keystore__KeyType t)
{
    switch (t) {
    case KEYSTORE__KEY_TYPE__KEY_TYPE_RSA:
        return KS_ACL_SIGN | KS_ACL_DECRYPT;
    case KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_ED448:
        return KS_ACL_SIGN;
    case KEYSTORE__KEY_TYPE__KEY_TYPE_EC:
        return KS_ACL_SIGN | KS_ACL_DERIVE;
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X25519:
    case KEYSTORE__KEY_TYPE__KEY_TYPE_X448:
        return KS_ACL_DERIVE;
    default:
        return ~0;
    }
}

void ks_acl_log_key(const struct ks_key *k)
{
    char line[1024];
    size_t len = 0, i;
    /* what the key can do: its type, narrowed by its sealed usage (same bits) */
    int ops = type_ops(k->type) & (k->usage != 0 ? (int)k->usage : ~0), first = 1;
    const struct ks_acl *a;

    line[0] = '\0';
    pthread_rwlock_rdlock(&acl_lock);
    a = current != NULL ? current : &default_acl;
    for (i = 0; i < NOPS; i++) {
        if ((ops & op_names[i].bit) == 0)
            continue;
        append(line, sizeof(line), &len, first ? "" : "; ", op_names[i].name);
        first = 0;
        append(line, sizeof(line), &len, " by ", "");
        append_grantees(a, line, sizeof(line), &len, op_names[i].bit, k->name);
    }
    pthread_rwlock_unlock(&acl_lock);
    if (len == sizeof(line) - 1)
        memcpy(line + sizeof(line) - 4, "...", 4);
    ks_log("key '%s': %s", k->name, line);
}

static int log_one(const struct ks_key *k, void *arg)
{
    (void)arg;
    ks_acl_log_key(k);
    return 0;
}

void ks_acl_log_keys(void)
{
    ks_store_foreach(log_one, NULL);
}
