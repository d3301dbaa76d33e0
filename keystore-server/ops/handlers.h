/* The operation handlers, one file per family: info.c (GetKey,
 * ListKeys), sign.c, decrypt.c, derive.c, admin.c (GenerateKey, ImportKey,
 * DeleteKey, AttachCert), control.c (Status, Reload).  Called only by dispatch.c, after it has
 * checked the access list or the admin socket. */
#ifndef KS_HANDLERS_H
#define KS_HANDLERS_H

#include "op.h"

void ks_op_get_key(struct ks_op *op, const Keystore__GetKeyRequest *r);
void ks_op_list_keys(struct ks_op *op, const Keystore__ListKeysRequest *r);
void ks_op_sign(struct ks_op *op, const Keystore__SignRequest *r);
void ks_op_decrypt(struct ks_op *op, const Keystore__DecryptRequest *r);
void ks_op_derive(struct ks_op *op, const Keystore__DeriveRequest *r);
void ks_op_generate(struct ks_op *op, const Keystore__GenerateKeyRequest *r);
void ks_op_import(struct ks_op *op, const Keystore__ImportKeyRequest *r);
void ks_op_delete(struct ks_op *op, const Keystore__DeleteKeyRequest *r);
void ks_op_attach_cert(struct ks_op *op, const Keystore__AttachCertRequest *r);
/* versions.c */
void ks_op_rotate(struct ks_op *op, const Keystore__RotateKeyRequest *r);
void ks_op_retire(struct ks_op *op, const Keystore__RetireKeyRequest *r);
/* control.c */
void ks_op_status(struct ks_op *op, const Keystore__StatusRequest *r);
void ks_op_reload(struct ks_op *op, const Keystore__ReloadRequest *r);

#endif
