/* Server key and authorized clients; see tcp_identity.h. */
#include "tcp_identity.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/log.h"
#include "secure.h"
#include "tcp_replay.h"

#define MAX_CLIENTS 4096

struct client {
    char name[KS_CLIENT_NAME_MAX + 1];
    uint8_t pk[32];
};

static uint8_t *server_keys;     /* sodium_malloc: secret (32) then public (32); read-only */
static struct client *clients;
static size_t nclients;

const uint8_t *ks_tcp_identity_server_sk(void)
{
    return server_keys;
}

const uint8_t *ks_tcp_identity_server_pk(void)
{
    return server_keys != NULL ? server_keys + 32 : NULL;
}

const char *ks_tcp_identity_client_name(const uint8_t pk[32])
{
    const char *found = NULL;
    size_t i;

    /* constant time per entry: the key is the client's credential */
    for (i = 0; i < nclients; i++)
        if (sodium_memcmp(clients[i].pk, pk, 32) == 0)
            found = clients[i].name;
    return found;
}

static int valid_client_name(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if (!isalnum((unsigned char)s[n]) && strchr("._-@", s[n]) == NULL)
            return 0;
    return n > 0 && n <= KS_CLIENT_NAME_MAX;
}

static int load_clients(const char *path)
{
    char line[512];
    unsigned lineno = 0;
    FILE *f = fopen(path, "re");
    int rc = -1;

    if (f == NULL) {
        ks_log("error: cannot open authorized clients file %s: %s", path, strerror(errno));
        return -1;
    }
    clients = calloc(MAX_CLIENTS, sizeof(*clients));
    if (clients == NULL) {
        ks_log("error: out of memory for the authorized clients");
        goto out;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *name, *key, *extra, *save = NULL;
        size_t i;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            ks_log("error: %s:%u: line is too long", path, lineno);
            goto out;
        }
        name = strtok_r(line, " \t\r\n", &save);
        if (name == NULL || name[0] == '#')
            continue;
        key = strtok_r(NULL, " \t\r\n", &save);
        extra = strtok_r(NULL, " \t\r\n", &save);
        if (key == NULL || (extra != NULL && extra[0] != '#')) {
            ks_log("error: %s:%u: expected 'NAME PUBLIC-KEY' (the line keystorectl "
                   "client-keygen prints)", path, lineno);
            goto out;
        }
        if (!valid_client_name(name)) {
            ks_log("error: %s:%u: client name must be 1-%d characters of A-Z a-z 0-9 . _ - @",
                   path, lineno, KS_CLIENT_NAME_MAX);
            goto out;
        }
        if (nclients == MAX_CLIENTS) {
            ks_log("error: %s: more than %d clients", path, MAX_CLIENTS);
            goto out;
        }
        if (ks_pubkey_parse(key, clients[nclients].pk) != 0) {
            ks_log("error: %s:%u: '%.70s' is not a public key (44 base64 or 64 hex characters)",
                   path, lineno, key);
            goto out;
        }
        for (i = 0; i < nclients; i++) {
            if (strcmp(clients[i].name, name) == 0 ||
                sodium_memcmp(clients[i].pk, clients[nclients].pk, 32) == 0) {
                ks_log("error: %s:%u: client '%s' or its key is listed twice (first as '%s')",
                       path, lineno, name, clients[i].name);
                goto out;
            }
        }
        strcpy(clients[nclients].name, name);
        nclients++;
    }
    if (ferror(f)) {
        ks_log("error: reading %s: %s", path, strerror(errno));
        goto out;
    }
    ks_log("%zu authorized TCP client%s in %s", nclients, nclients == 1 ? "" : "s", path);
    rc = 0;
out:
    fclose(f);
    return rc;
}

int ks_tcp_identity_load(const struct ks_config *cfg)
{
    char err[512], pk64[KS_PUBKEY_B64_LEN + 1];

    if (cfg->listen_tcp[0] == '\0')
        return 0;
    server_keys = sodium_malloc(64);
    if (server_keys == NULL) {
        ks_log("error: out of locked memory for the server key");
        return -1;
    }
    if (ks_keyfile_read(cfg->server_key, server_keys, server_keys + 32, err, sizeof(err)) != 0) {
        ks_log("error: server_key: %s", err);
        return -1;
    }
    if (sodium_mprotect_readonly(server_keys) != 0) {
        ks_log("error: cannot protect the server key: %s", strerror(errno));
        return -1;
    }
    ks_pubkey_format(server_keys + 32, pk64);
    /* printed so operators can pin it in clients (server_public_key) */
    ks_log("TCP server public key: %s", pk64);
    ks_tcp_replay_start();
    return load_clients(cfg->authorized_clients);
}

void ks_tcp_identity_unload(void)
{
    if (server_keys != NULL)
        sodium_free(server_keys);   /* wipes */
    server_keys = NULL;
    free(clients);
    clients = NULL;
    nclients = 0;
}
