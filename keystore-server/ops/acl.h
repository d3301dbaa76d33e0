/* Per-key access control.  The file named by `acl` has lines
 *     KEY-PATTERN  OPS  IDENTITY...
 * KEY-PATTERN is a key name or a glob ("*", "web-*"); OPS is "sign",
 * "decrypt", "derive", a comma-separated list ("sign,derive") or "*"; an
 * IDENTITY is uid:N|USER, gid:N|GROUP, tcp:NAME (a glob over
 * authorized-clients names) or "*" (anyone).  A request is allowed if any
 * line matches its key, operation and identity.  Without an `acl` setting
 * only uid 0 may use keys ("* * uid:0"), and no TCP client may.  A peer
 * sees (GetKey, ListKeys) only keys it may use.  The admin socket is not
 * subject to the list.
 *
 * A list is parsed whole into a new structure and then swapped in under a
 * write lock (ks_acl_install), so a request sees the old list or the new
 * one, never a mix; a list with an error is never installed. */
#ifndef KS_ACL_H
#define KS_ACL_H

#include <stddef.h>

#include "op.h"
#include "store/keytable.h"

enum { KS_ACL_SIGN = 1, KS_ACL_DECRYPT = 2, KS_ACL_DERIVE = 4 };

struct ks_acl;

/* User and group names: the confined server cannot read /etc/passwd, so
 * names are resolved by the unconfined reader (daemon/confhelper.c), which
 * sends the answers as a table ("u NAME ID\n", "g NAME ID\n").  With names
 * NULL the system is asked directly (getpwnam/getgrnam).  With record set,
 * every answer from the system is appended to it as a table line. */
struct ks_acl_names {
    char *buf;
    size_t len, cap;
};

/* Parse text (len bytes, read from path).  Returns the list, or NULL with
 * "PATH:LINE: problem" in err. */
struct ks_acl *ks_acl_parse(const char *path, const char *text, size_t len, const char *names,
                            struct ks_acl_names *record, char *err, size_t errlen);
size_t ks_acl_rule_count(const struct ks_acl *a);
void ks_acl_free(struct ks_acl *a);

/* Make a the list in force (NULL: the built-in "* * uid:0"); frees the previous one once
 * no request uses it. */
void ks_acl_install(struct ks_acl *a);

/* 1 if allowed; otherwise replies ERROR_PERMISSION_DENIED naming the
 * identity, the operation and the key, and returns 0. */
int ks_acl_permit(struct ks_op *op, int what, const char *key);

/* 1 if the peer may use key for anything (or is the admin socket): only
 * then may it see that the key exists. */
int ks_acl_visible(const struct ks_session *s, const char *key);

/* Log "key 'web': sign by uid:0, gid:www-data; decrypt by nobody" (the
 * operations its type can do) for one key, or for every loaded key (at
 * start-up, once the list is installed). */
void ks_acl_log_key(const struct ks_key *k);
void ks_acl_log_keys(void);

#endif
