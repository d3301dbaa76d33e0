/* Shared by the key-management handlers (admin.c, versions.c). */
#ifndef KS_ADMIN_H
#define KS_ADMIN_H

#include "op.h"

/* A new private key as r asks (type, bits, curve; usage into *usage), or
 * NULL after replying with the error. */
EVP_PKEY *ks_op_keygen(struct ks_op *op, const Keystore__GenerateKeyRequest *r,
                       uint32_t *usage);

/* catalogue = etcd: reply to a write etcd did not take (KS_STORE_CONFLICT
 * or KS_STORE_UNAVAILABLE from the store; nothing changed here either). */
void ks_op_catalogue_error(struct ks_op *op, enum ks_store_status st, const char *err);

#endif
