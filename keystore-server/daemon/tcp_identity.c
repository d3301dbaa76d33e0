/* Server key and authorized clients; see tcp_identity.h. */
#include "tcp_identity.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
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

struct ks_clients {
    struct client *list;
    size_t n, cap;
};

static uint8_t *server_keys;     /* sodium_malloc: secret (32) then public (32); read-only */
/* Handshakes hold the lock shared while they look a key up. */
static pthread_rwlock_t clients_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct ks_clients *current;
static unsigned generation;

const uint8_t *ks_tcp_identity_server_sk(void)
{
    return server_keys;
}

const uint8_t *ks_tcp_identity_server_pk(void)
{
    return server_keys != NULL ? server_keys + 32 : NULL;
}

int ks_tcp_identity_client_name(const uint8_t pk[32], char name[KS_CLIENT_NAME_MAX + 1])
{
    const char *found = NULL;
    size_t i;

    pthread_rwlock_rdlock(&clients_lock);
    /* constant time per entry: the key is the client's credential */
    for (i = 0; current != NULL && i < current->n; i++)
        if (sodium_memcmp(current->list[i].pk, pk, 32) == 0)
            found = current->list[i].name;
    if (found != NULL)
        snprintf(name, KS_CLIENT_NAME_MAX + 1, "%s", found);
    pthread_rwlock_unlock(&clients_lock);
    return found != NULL;
}

static int valid_client_name(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if (!isalnum((unsigned char)s[n]) && strchr("._-@", s[n]) == NULL)
            return 0;
    return n > 0 && n <= KS_CLIENT_NAME_MAX;
}

/* One non-empty line; NULL or why. */
static const char *parse_line(struct ks_clients *c, char *line, char *keybuf, size_t keylen)
{
    char *name, *key, *extra, *save = NULL;
    struct client *e;
    size_t i;

    name = strtok_r(line, " \t\r\n", &save);
    if (name == NULL || name[0] == '#')
        return NULL;
    key = strtok_r(NULL, " \t\r\n", &save);
    extra = strtok_r(NULL, " \t\r\n", &save);
    if (key == NULL || (extra != NULL && extra[0] != '#'))
        return "expected 'NAME PUBLIC-KEY' (the line keystorectl client-keygen prints)";
    if (!valid_client_name(name))
        return "client name must be 1-64 characters of A-Z a-z 0-9 . _ - @";
    if (c->n == MAX_CLIENTS)
        return "more than 4096 clients";
    if (c->n == c->cap) {
        size_t cap = c->cap == 0 ? 16 : c->cap * 2;
        struct client *l = realloc(c->list, cap * sizeof(*l));

        if (l == NULL)
            return "out of memory";
        c->list = l;
        c->cap = cap;
    }
    e = &c->list[c->n];
    if (ks_pubkey_parse(key, e->pk) != 0) {
        snprintf(keybuf, keylen, "'%.70s' is not a public key (44 base64 or 64 hex characters)",
                 key);
        return keybuf;
    }
    for (i = 0; i < c->n; i++) {
        if (strcmp(c->list[i].name, name) == 0 || sodium_memcmp(c->list[i].pk, e->pk, 32) == 0) {
            snprintf(keybuf, keylen, "client '%s' or its key is listed twice (first as '%s')",
                     name, c->list[i].name);
            return keybuf;
        }
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    c->n++;
    return NULL;
}

struct ks_clients *ks_clients_parse(const char *path, const char *text, size_t len,
                                    char *err, size_t errlen)
{
    char line[512], why[256];
    unsigned lineno = 0;
    size_t pos = 0;
    struct ks_clients *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        snprintf(err, errlen, "out of memory for the authorized clients");
        return NULL;
    }
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos), *bad;
        size_t n = (nl != NULL ? (size_t)(nl - text) : len) - pos;

        lineno++;
        if (n >= sizeof(line) || memchr(text + pos, '\0', n) != NULL) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno,
                     n >= sizeof(line) ? "line is too long" : "NUL byte: not a text file");
            goto fail;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + 1;
        if ((bad = parse_line(c, line, why, sizeof(why))) != NULL) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, bad);
            goto fail;
        }
    }
    return c;
fail:
    ks_clients_free(c);
    return NULL;
}

size_t ks_clients_count(const struct ks_clients *c)
{
    return c != NULL ? c->n : 0;
}

void ks_clients_free(struct ks_clients *c)
{
    if (c == NULL)
        return;
    if (c->list != NULL)
        sodium_memzero(c->list, c->cap * sizeof(*c->list));
    free(c->list);
    free(c);
}

void ks_clients_install(struct ks_clients *c)
{
    struct ks_clients *old;

    pthread_rwlock_wrlock(&clients_lock);
    old = current;
    current = c;
    __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&clients_lock);
    ks_clients_free(old);
}

unsigned ks_clients_generation(void)
{
    return __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
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
    return 0;
}

void ks_tcp_identity_unload(void)
{
    if (server_keys != NULL)
        sodium_free(server_keys);   /* wipes */
    server_keys = NULL;
    ks_clients_install(NULL);
}
