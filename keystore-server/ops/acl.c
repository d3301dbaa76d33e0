/* Access list; see acl.h. */
#include "acl.h"

#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/keytable.h"

#define MAX_RULES 4096
#define MAX_IDS 32

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

static struct rule *rules;
static size_t nrules;
static char acl_path[KS_CONF_PATH_MAX];   /* "" = the built-in default */

/* Without an `acl` setting: one rule, "* * uid:0".  Closed until granted. */
static struct rule default_rule = {
    "*", KS_ACL_SIGN | KS_ACL_DECRYPT | KS_ACL_DERIVE, { { ID_UID, 0, "", "uid:0" } }, 1
};

static int parse_num(const char *s, unsigned long *out)
{
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0' && *out < 0xffffffffUL ? 0 : -1;
}

static const char *parse_ident(const char *tok, struct ident *id)
{
    struct passwd *pw;
    struct group *gr;

    memset(id, 0, sizeof(*id));
    if (strlen(tok) >= sizeof(id->text))
        return "identity is too long";
    strcpy(id->text, tok);
    if (strcmp(tok, "*") == 0) {
        id->kind = ID_ANY;
    } else if (strncmp(tok, "uid:", 4) == 0) {
        id->kind = ID_UID;
        if (parse_num(tok + 4, &id->num) != 0) {
            if ((pw = getpwnam(tok + 4)) == NULL)
                return "unknown user";
            id->num = pw->pw_uid;
        }
    } else if (strncmp(tok, "gid:", 4) == 0) {
        id->kind = ID_GID;
        if (parse_num(tok + 4, &id->num) != 0) {
            if ((gr = getgrnam(tok + 4)) == NULL)
                return "unknown group";
            id->num = gr->gr_gid;
        }
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

int ks_acl_load(const struct ks_config *cfg)
{
    char line[2048];
    unsigned lineno = 0;
    FILE *f;
    int rc = -1;

    if (cfg->acl[0] == '\0') {
        rules = &default_rule;
        nrules = 1;
        acl_path[0] = '\0';
        ks_log("no access list (acl) in the configuration: only uid 0 may use keys on the "
               "client socket, TCP clients none; grant others with an acl file");
        return 0;
    }
    snprintf(acl_path, sizeof(acl_path), "%s", cfg->acl);
    f = fopen(cfg->acl, "re");
    if (f == NULL) {
        ks_log("error: cannot open access list %s: %s", cfg->acl, strerror(errno));
        return -1;
    }
    rules = calloc(MAX_RULES, sizeof(*rules));
    if (rules == NULL) {
        ks_log("error: out of memory for the access list");
        goto out;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *key, *ops, *tok, *save = NULL;
        const char *why = NULL;
        struct rule *r;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            ks_log("error: %s:%u: line is too long", cfg->acl, lineno);
            goto out;
        }
        key = strtok_r(line, " \t\r\n", &save);
        if (key == NULL || key[0] == '#')
            continue;
        if (nrules == MAX_RULES) {
            ks_log("error: %s: more than %d rules", cfg->acl, MAX_RULES);
            goto out;
        }
        r = &rules[nrules];
        ops = strtok_r(NULL, " \t\r\n", &save);
        if (ops == NULL || strlen(key) >= sizeof(r->key)) {
            ks_log("error: %s:%u: expected 'KEY OPS IDENTITY...', e.g. 'web sign uid:33 "
                   "tcp:frontend1'", cfg->acl, lineno);
            goto out;
        }
        strcpy(r->key, key);
        if ((why = parse_ops(ops, &r->ops)) != NULL) {
            ks_log("error: %s:%u: %s", cfg->acl, lineno, why);
            goto out;
        }
        while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && tok[0] != '#') {
            if (r->nids == MAX_IDS) {
                ks_log("error: %s:%u: more than %d identities on one line", cfg->acl, lineno,
                       MAX_IDS);
                goto out;
            }
            if ((why = parse_ident(tok, &r->ids[r->nids])) != NULL) {
                ks_log("error: %s:%u: '%s': %s", cfg->acl, lineno, tok, why);
                goto out;
            }
            r->nids++;
        }
        if (r->nids == 0) {
            ks_log("error: %s:%u: no identity after the operations", cfg->acl, lineno);
            goto out;
        }
        nrules++;
    }
    if (ferror(f)) {
        ks_log("error: reading %s: %s", cfg->acl, strerror(errno));
        goto out;
    }
    ks_log("access list %s: %zu rule%s; anything not listed is denied", cfg->acl, nrules,
           nrules == 1 ? "" : "s");
    rc = 0;
out:
    fclose(f);
    return rc;
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

static int allowed(const struct ks_session *s, int what, const char *key)
{
    size_t i;
    int j;

    for (i = 0; i < nrules; i++) {
        if ((rules[i].ops & what) == 0 || fnmatch(rules[i].key, key, 0) != 0)
            continue;
        for (j = 0; j < rules[i].nids; j++)
            if (ident_matches(&rules[i].ids[j], s))
                return 1;
    }
    return 0;
}

int ks_acl_permit(struct ks_op *op, int what, const char *key)
{
    char who[96], name[KS_MAX_KEY_NAME + 1], where[KS_CONF_PATH_MAX + 64];
    size_t i;
    const char *opname = "use";

    if (op->s->is_admin)
        return 1;
    /* checked before the key is looked up: a denied peer learns nothing
     * about which keys exist */
    if (key != NULL && allowed(op->s, what, key))
        return 1;
    for (i = 0; i < NOPS; i++)
        if (op_names[i].bit == what)
            opname = op_names[i].name;
    ks_session_identity(op->s, who, sizeof(who));
    ks_log_sanitize(key, name, sizeof(name));
    if (acl_path[0] != '\0')
        snprintf(where, sizeof(where), "access list %s on the server", acl_path);
    else
        snprintf(where, sizeof(where), "the server has no access list: only uid 0 may use keys "
                 "until its acl setting grants more");
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_PERMISSION_DENIED,
                "%s may not %s with key '%s' (%s)", who, opname, name, where);
    return 0;
}

int ks_acl_visible(const struct ks_session *s, const char *key)
{
    if (s->is_admin)
        return 1;
    return key != NULL && allowed(s, ~0, key);
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
static void append_grantees(char *out, size_t outlen, size_t *len, int bit, const char *key)
{
    const char *seen[64];
    size_t i, nseen = 0, k, count = 0;
    int j;

    for (i = 0; i < nrules; i++) {
        if ((rules[i].ops & bit) == 0 || fnmatch(rules[i].key, key, 0) != 0)
            continue;
        for (j = 0; j < rules[i].nids; j++) {
            const char *t = rules[i].ids[j].text;

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
    const char *key = k->name;
    char line[1024];
    size_t len = 0, i;
    int ops = type_ops(k->type), first = 1;

    line[0] = '\0';
    for (i = 0; i < NOPS; i++) {
        if ((ops & op_names[i].bit) == 0)
            continue;
        append(line, sizeof(line), &len, first ? "" : "; ", op_names[i].name);
        first = 0;
        append(line, sizeof(line), &len, " by ", "");
        append_grantees(line, sizeof(line), &len, op_names[i].bit, key);
    }
    if (len == sizeof(line) - 1)
        memcpy(line + sizeof(line) - 4, "...", 4);
    ks_log("key '%s': %s", key, line);
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
