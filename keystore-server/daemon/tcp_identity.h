/* Remote clients: the server's static X25519 key and the authorized
 * clients file (like ssh's authorized_keys: "NAME PUBLIC-KEY" per line).
 * The server key is loaded before confinement and never changes; the
 * client list is parsed whole and swapped in (start-up and reload,
 * daemon/reload.c), so a handshake sees the old list or the new one. */
#ifndef KS_TCP_IDENTITY_H
#define KS_TCP_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define KS_CLIENT_NAME_MAX 64

/* Load cfg->server_key (if listen_tcp is set).  Returns 0 or -1 after
 * logging the problem and the fix. */
int ks_tcp_identity_load(const struct ks_config *cfg);

struct ks_clients;

/* Parse an authorized clients file's text; NULL with "PATH:LINE: ..." in err. */
struct ks_clients *ks_clients_parse(const char *path, const char *text, size_t len,
                                    char *err, size_t errlen);
size_t ks_clients_count(const struct ks_clients *c);
void ks_clients_free(struct ks_clients *c);

/* Make c the list in force; frees the previous one. */
void ks_clients_install(struct ks_clients *c);

/* Changes with every install: a connection authenticated under an older
 * list checks that its client is still listed (conn_tcp.c). */
unsigned ks_clients_generation(void);

/* The server's static key (NULL unless loaded). */
const uint8_t *ks_tcp_identity_server_sk(void);
const uint8_t *ks_tcp_identity_server_pk(void);

/* 1 and the name of the authorized client with this public key, or 0. */
int ks_tcp_identity_client_name(const uint8_t pk[32], char name[KS_CLIENT_NAME_MAX + 1]);

void ks_tcp_identity_unload(void);

#endif
