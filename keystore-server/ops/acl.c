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

#define MAX_RULES 4096
#define MAX_IDS 32

enum id_kind { ID_ANY = 1, ID_UID, ID_GID, ID_TCP };

struct ident {
    enum id_kind kind;
    unsigned long num;          /* uid or gid */
    char pattern[65];           /* tcp client name glob */
};

struct rule {
    char key[65];               /* key name glob */
    int ops;
    struct ident ids[MAX_IDS];
    int nids;
};

static struct rule *rules;
static size_t nrules;
static int acl_on;
static char acl_path[KS_CONF_PATH_MAX];

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
        if (strcmp(op, "sign") == 0)
            *ops |= KS_ACL_SIGN;
        else if (strcmp(op, "decrypt") == 0)
            *ops |= KS_ACL_DECRYPT;
        else if (strcmp(op, "derive") == 0)
            *ops |= KS_ACL_DERIVE;
        else if (strcmp(op, "*") == 0)
            *ops |= KS_ACL_SIGN | KS_ACL_DECRYPT | KS_ACL_DERIVE;
        else
            return "operations are sign, decrypt, derive, a list such as sign,derive, or *";
    }
    return *ops != 0 ? NULL : "no operation given";
}

int ks_acl_load(const struct ks_config *cfg)
{
    char line[2048];
    unsigned lineno = 0;
    FILE *f;
    int rc = -1;

    if (cfg->acl[0] == '\0')
        return 0;
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
    acl_on = 1;
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
    char who[96], name[KS_MAX_KEY_NAME + 1];

    if (!acl_on || op->s->is_admin)
        return 1;
    /* checked before the key is looked up: a denied peer learns nothing
     * about which keys exist */
    if (key != NULL && allowed(op->s, what, key))
        return 1;
    ks_session_identity(op->s, who, sizeof(who));
    ks_log_sanitize(key, name, sizeof(name));
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_PERMISSION_DENIED,
                "%s may not %s with key '%s' (access list %s on the server)", who,
                what == KS_ACL_SIGN ? "sign" : what == KS_ACL_DECRYPT ? "decrypt" : "derive",
                name, acl_path);
    return 0;
}
