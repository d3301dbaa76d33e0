/* Remote clients: the server's static X25519 key and the authorized
 * clients file (like ssh's authorized_keys: "NAME PUBLIC-KEY" per line).
 * Loaded before confinement; read-only afterwards. */
#ifndef KS_TCP_IDENTITY_H
#define KS_TCP_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define KS_CLIENT_NAME_MAX 64

/* Load cfg->server_key and cfg->authorized_clients (if listen_tcp is set).
 * Returns 0 or -1 after logging FILE:LINE and the fix. */
int ks_tcp_identity_load(const struct ks_config *cfg);

/* The server's static key (NULL unless loaded). */
const uint8_t *ks_tcp_identity_server_sk(void);
const uint8_t *ks_tcp_identity_server_pk(void);

/* Name of the authorized client with this public key, or NULL. */
const char *ks_tcp_identity_client_name(const uint8_t pk[32]);

void ks_tcp_identity_unload(void);

#endif
