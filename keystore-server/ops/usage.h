/* Key usages in requests: a key made for signing never decrypts and a key
 * made for decryption never signs, whoever asks and whatever the access
 * list says (store/keytable.h has the usage bits). */
#ifndef KS_USAGE_H
#define KS_USAGE_H

#include <stdint.h>

#include "op.h"

/* Checked by dispatch.c before the access list.  1 if key `name` (version
 * `version`, 0 the current one: each version has its own usage) may be used
 * for `want` (KS_USAGE_SIGN, _DECRYPT or _DERIVE), or if there is no such key
 * or its type cannot do `want` at all (the handler then says so); otherwise
 * replies ERROR_WRONG_USAGE naming the key and its usage, and returns 0. */
int ks_usage_permit(struct ks_op *op, uint32_t want, const char *name, uint32_t version);

/* The usage of a new key from a GenerateKey/ImportKey request (0 means
 * sign; derive for X25519/X448, which can do nothing else; an EC key derives
 * (ECDH) only if made with derive), checked against its type; 0, or -1 after
 * replying ERROR_BAD_PARAMETER. */
int ks_usage_for_new_key(struct ks_op *op, Keystore__KeyType type, uint32_t requested,
                         uint32_t *usage);

#endif
