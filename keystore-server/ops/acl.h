/* Per-key access control.  The file named by `acl` has lines
 *     KEY-PATTERN  OPS  IDENTITY...
 * KEY-PATTERN is a key name or a glob ("*", "web-*"); OPS is "sign",
 * "decrypt", "derive", a comma-separated list ("sign,derive") or "*"; an IDENTITY is uid:N|USER, gid:N|GROUP,
 * tcp:NAME (a glob over authorized-clients names) or "*" (anyone).  A
 * request is allowed if any line matches its key, operation and identity.
 * Without an `acl` setting everyone who can connect may use every key.
 * The admin socket is not subject to the list. */
#ifndef KS_ACL_H
#define KS_ACL_H

#include "common/config.h"
#include "op.h"

enum { KS_ACL_SIGN = 1, KS_ACL_DECRYPT = 2, KS_ACL_DERIVE = 4 };

/* Load cfg->acl (before confinement: user and group names are resolved
 * now).  Returns 0 or -1 after logging FILE:LINE: problem. */
int ks_acl_load(const struct ks_config *cfg);

/* 1 if allowed; otherwise replies ERROR_PERMISSION_DENIED naming the
 * identity, the operation and the key, and returns 0. */
int ks_acl_permit(struct ks_op *op, int what, const char *key);

#endif
