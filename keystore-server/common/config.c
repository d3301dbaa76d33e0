/* Config file parser; see config.h and keystored.conf.sample. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "channel.h"
#include "log.h"
#include "wire.h"

#define DEFAULT_KEY_DIR "/var/lib/keystored/keys"
#define DEFAULT_MASTER_KEY "/etc/keystored/master.key"
#define DEFAULT_SECURE_HEAP_MB 32

static void set_defaults(struct ks_config *cfg)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->socket, sizeof(cfg->socket), "%s", KS_DEFAULT_SOCKET);
    snprintf(cfg->admin_socket, sizeof(cfg->admin_socket), "%s", KS_DEFAULT_ADMIN_SOCKET);
    /* closed until granted: root and the members of one group */
    cfg->socket_mode = 0660;
    snprintf(cfg->socket_group, sizeof(cfg->socket_group), "keystore");
    snprintf(cfg->key_dir, sizeof(cfg->key_dir), "%s", DEFAULT_KEY_DIR);
    snprintf(cfg->master_key, sizeof(cfg->master_key), "%s", DEFAULT_MASTER_KEY);
    cfg->workers = ncpu > 0 ? (ncpu > 256 ? 256 : (int)ncpu) : 2;
    cfg->max_frame = KS_DEFAULT_MAX_FRAME;
    cfg->allow_client_generate = 0;
    cfg->max_connections = 1024;
    cfg->idle_timeout = 300;
    cfg->frame_timeout = 10;
    cfg->secure_heap = (size_t)DEFAULT_SECURE_HEAP_MB << 20;
    snprintf(cfg->user, sizeof(cfg->user), "keystored");
    snprintf(cfg->jail, sizeof(cfg->jail), "/var/empty/keystored");
    cfg->seccomp = 1;
    snprintf(cfg->catalogue_prefix, sizeof(cfg->catalogue_prefix), "/keystore/");
    cfg->spin_us = 30;
    cfg->shared_memory = 1;
    cfg->max_tcp_connections = 256;
    cfg->max_unauthenticated_per_address = 16;
    cfg->handshake_timeout = 5;
    cfg->tcp_max_clock_skew = 120;
    cfg->tcp_rekey_frames = 1L << 20;
    cfg->tcp_rekey_seconds = 600;
}

/* Each setter returns NULL on success or a message for "FILE:LINE: ...". */
typedef const char *(*setter_fn)(struct ks_config *cfg, const char *val, void *field,
                                 long lo, long hi, char *msg, size_t msglen);

static const char *set_string(struct ks_config *cfg, const char *val, void *field,
                              long lo, long hi, char *msg, size_t msglen)
{
    (void)cfg;
    (void)lo;
    if (strlen(val) >= (size_t)hi) {
        snprintf(msg, msglen, "value is longer than %ld characters", hi - 1);
        return msg;
    }
    strcpy(field, val);
    return NULL;
}

static const char *set_socket(struct ks_config *cfg, const char *val, void *field,
                              long lo, long hi, char *msg, size_t msglen)
{
    if (strncmp(val, "unix:/", 6) != 0) {
        snprintf(msg, msglen, "'%s' is not a socket address: use unix:/absolute/path", val);
        return msg;
    }
    /* sun_path is 108 bytes including the NUL */
    if (strlen(val) - 5 > 107) {
        snprintf(msg, msglen, "socket path '%s' is longer than 107 bytes", val + 5);
        return msg;
    }
    return set_string(cfg, val, field, lo, hi, msg, msglen);
}

static const char *set_abspath(struct ks_config *cfg, const char *val, void *field,
                               long lo, long hi, char *msg, size_t msglen)
{
    if (val[0] != '/') {
        snprintf(msg, msglen, "'%s' must be an absolute path", val);
        return msg;
    }
    return set_string(cfg, val, field, lo, hi, msg, msglen);
}

static const char *parse_long(const char *val, int base, long lo, long hi, long *out,
                              char *msg, size_t msglen)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(val, &end, base);
    if (errno != 0 || end == val || *end != '\0') {
        snprintf(msg, msglen, "'%s' is not a number", val);
        return msg;
    }
    if (v < lo || v > hi) {
        if (base == 8)
            snprintf(msg, msglen, "%s is out of range (%lo..%lo)", val, lo, hi);
        else
            snprintf(msg, msglen, "%s is out of range (%ld..%ld)", val, lo, hi);
        return msg;
    }
    *out = v;
    return NULL;
}

static const char *set_int(struct ks_config *cfg, const char *val, void *field,
                           long lo, long hi, char *msg, size_t msglen)
{
    long v;

    (void)cfg;
    if (parse_long(val, 10, lo, hi, &v, msg, msglen) != NULL)
        return msg;
    *(int *)field = (int)v;
    return NULL;
}

static const char *set_long(struct ks_config *cfg, const char *val, void *field,
                            long lo, long hi, char *msg, size_t msglen)
{
    (void)cfg;
    return parse_long(val, 10, lo, hi, (long *)field, msg, msglen) != NULL ? msg : NULL;
}

static const char *set_size(struct ks_config *cfg, const char *val, void *field,
                            long lo, long hi, char *msg, size_t msglen)
{
    long v;

    (void)cfg;
    if (parse_long(val, 10, lo, hi, &v, msg, msglen) != NULL)
        return msg;
    *(size_t *)field = (size_t)v;
    return NULL;
}

static const char *set_mode(struct ks_config *cfg, const char *val, void *field,
                            long lo, long hi, char *msg, size_t msglen)
{
    long v;

    (void)cfg;
    if (parse_long(val, 8, lo, hi, &v, msg, msglen) != NULL)
        return msg;
    *(mode_t *)field = (mode_t)v;
    return NULL;
}

static const char *set_bool(struct ks_config *cfg, const char *val, void *field,
                            long lo, long hi, char *msg, size_t msglen)
{
    (void)cfg;
    (void)lo;
    (void)hi;
    if (strcasecmp(val, "yes") == 0 || strcasecmp(val, "true") == 0 ||
        strcasecmp(val, "on") == 0 || strcmp(val, "1") == 0) {
        *(int *)field = 1;
    } else if (strcasecmp(val, "no") == 0 || strcasecmp(val, "false") == 0 ||
               strcasecmp(val, "off") == 0 || strcmp(val, "0") == 0) {
        *(int *)field = 0;
    } else {
        snprintf(msg, msglen, "'%s' is not yes or no", val);
        return msg;
    }
    return NULL;
}

static const char *set_heap_mb(struct ks_config *cfg, const char *val, void *field,
                               long lo, long hi, char *msg, size_t msglen)
{
    long v;

    (void)cfg;
    if (parse_long(val, 10, lo, hi, &v, msg, msglen) != NULL)
        return msg;
    if ((v & (v - 1)) != 0) {
        snprintf(msg, msglen, "%ld is not a power of two (OpenSSL's secure heap needs one)", v);
        return msg;
    }
    *(size_t *)field = (size_t)v << 20;
    return NULL;
}

/* Space-separated key-name globs, each as long as a key name at most. */
static const char *set_patterns(struct ks_config *cfg, const char *val, void *field,
                                long lo, long hi, char *msg, size_t msglen)
{
    const char *p = val;
    size_t n;

    while (*p != '\0') {
        n = strcspn(p, " \t");
        if (n > KS_MAX_KEY_NAME) {
            snprintf(msg, msglen, "'%.*s' is longer than a key name (%d characters)", (int)n, p,
                     KS_MAX_KEY_NAME);
            return msg;
        }
        p += n;
        p += strspn(p, " \t");
    }
    return set_string(cfg, val, field, lo, hi, msg, msglen);
}

/* "tcp:HOST:PORT tcp:[V6]:PORT ...": at most KS_MAX_TCP_LISTENERS. */
static const char *set_tcp_list(struct ks_config *cfg, const char *val, void *field,
                                long lo, long hi, char *msg, size_t msglen)
{
    char copy[1024], host[256], port[8], *tok, *save = NULL;
    int n = 0;

    if (strlen(val) >= sizeof(copy)) {
        snprintf(msg, msglen, "value is longer than %zu characters", sizeof(copy) - 1);
        return msg;
    }
    strcpy(copy, val);
    for (tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        if (ks_parse_tcp_addr(tok, host, sizeof(host), port, sizeof(port), msg, msglen) != 0)
            return msg;
        if (++n > KS_MAX_TCP_LISTENERS) {
            snprintf(msg, msglen, "at most %d TCP addresses", KS_MAX_TCP_LISTENERS);
            return msg;
        }
    }
    return set_string(cfg, val, field, lo, hi, msg, msglen);
}

static const char *set_audit(struct ks_config *cfg, const char *val, void *field,
                             long lo, long hi, char *msg, size_t msglen)
{
    if (strcmp(val, "stderr") == 0)
        return set_string(cfg, val, field, lo, hi, msg, msglen);
    return set_abspath(cfg, val, field, lo, hi, msg, msglen);
}

static const char *set_catalogue(struct ks_config *cfg, const char *val, void *field,
                                 long lo, long hi, char *msg, size_t msglen)
{
    (void)cfg;
    (void)lo;
    (void)hi;
    if (strcmp(val, "embedded") == 0 || strcmp(val, "none") == 0)
        *(int *)field = 0;
    else if (strcmp(val, "etcd") == 0)
        *(int *)field = 1;
    else {
        snprintf(msg, msglen, "'%s' is not embedded or etcd", val);
        return msg;
    }
    return NULL;
}

/* "http://HOST:PORT https://HOST:PORT ...": at most 8, no path. */
static const char *set_endpoints(struct ks_config *cfg, const char *val, void *field,
                                 long lo, long hi, char *msg, size_t msglen)
{
    char copy[1024], *tok, *save = NULL;
    int n = 0;

    if (strlen(val) >= sizeof(copy)) {
        snprintf(msg, msglen, "value is longer than %zu characters", sizeof(copy) - 1);
        return msg;
    }
    strcpy(copy, val);
    for (tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        const char *rest = strncmp(tok, "http://", 7) == 0 ? tok + 7 :
                           strncmp(tok, "https://", 8) == 0 ? tok + 8 : NULL;

        if (rest == NULL || *rest == '\0' || strchr(rest, '/') != NULL || strlen(tok) > 200) {
            snprintf(msg, msglen, "'%s' is not http://HOST:PORT or https://HOST:PORT", tok);
            return msg;
        }
        if (++n > 8) {
            snprintf(msg, msglen, "at most 8 etcd endpoints");
            return msg;
        }
    }
    return set_string(cfg, val, field, lo, hi, msg, msglen);
}

static const char *set_prefix(struct ks_config *cfg, const char *val, void *field,
                              long lo, long hi, char *msg, size_t msglen)
{
    size_t n = strlen(val);

    if (n == 0 || val[n - 1] != '/' || strspn(val, "abcdefghijklmnopqrstuvwxyz"
                                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") != n) {
        snprintf(msg, msglen, "'%s' is not a prefix of A-Z a-z 0-9 / . _ - ending in '/'", val);
        return msg;
    }
    return set_string(cfg, val, field, lo, hi, msg, msglen);
}

#define F(name) offsetof(struct ks_config, name)

static const struct option_def {
    const char *key;
    setter_fn set;
    size_t offset;
    long lo, hi;      /* numeric bounds, or buffer size for strings */
} options[] = {
    { "socket", set_socket, F(socket), 0, KS_CONF_PATH_MAX },
    { "admin_socket", set_socket, F(admin_socket), 0, KS_CONF_PATH_MAX },
    { "socket_mode", set_mode, F(socket_mode), 0, 0777 },
    { "socket_group", set_string, F(socket_group), 0, 256 },
    { "key_dir", set_abspath, F(key_dir), 0, KS_CONF_PATH_MAX },
    { "master_key", set_abspath, F(master_key), 0, KS_CONF_PATH_MAX },
    { "rollback_counter", set_abspath, F(rollback_counter), 0, KS_CONF_PATH_MAX },
    { "workers", set_int, F(workers), 1, 256 },
    { "max_frame", set_size, F(max_frame), KS_MIN_MAX_FRAME, KS_ABS_MAX_FRAME },
    { "allow_client_generate", set_bool, F(allow_client_generate), 0, 0 },
    { "max_connections", set_int, F(max_connections), 1, 1000000 },
    { "idle_timeout", set_int, F(idle_timeout), 1, 86400 },
    { "frame_timeout", set_int, F(frame_timeout), 1, 3600 },
    { "secure_heap_mb", set_heap_mb, F(secure_heap), 1, 1024 },
    { "spin_us", set_int, F(spin_us), 0, 100000 },
    { "shared_memory", set_bool, F(shared_memory), 0, 0 },
    { "rng_reseed_seconds", set_int, F(rng_reseed_seconds), 0, 86400 },
    { "listen_tcp", set_tcp_list, F(listen_tcp), 0, 1024 },
    { "server_key", set_abspath, F(server_key), 0, KS_CONF_PATH_MAX },
    { "authorized_clients", set_abspath, F(authorized_clients), 0, KS_CONF_PATH_MAX },
    { "acl", set_abspath, F(acl), 0, KS_CONF_PATH_MAX },
    { "allow_weak_digests", set_patterns, F(allow_weak_digests), 0, 1024 },
    { "audit_log", set_audit, F(audit_log), 0, KS_CONF_PATH_MAX },
    { "max_connections_per_client", set_int, F(max_connections_per_client), 0, 1000000 },
    { "max_tcp_connections", set_int, F(max_tcp_connections), 1, 1000000 },
    { "max_unauthenticated_per_address", set_int, F(max_unauthenticated_per_address), 1, 1000000 },
    { "handshake_timeout", set_int, F(handshake_timeout), 1, 600 },
    { "tcp_max_clock_skew", set_int, F(tcp_max_clock_skew), 1, 86400 },
    { "tcp_rekey_frames", set_long, F(tcp_rekey_frames), 1, 1L << 40 },
    { "tcp_rekey_seconds", set_int, F(tcp_rekey_seconds), 1, 86400 },
    { "catalogue", set_catalogue, F(catalogue), 0, 0 },
    { "catalogue_endpoints", set_endpoints, F(catalogue_endpoints), 0, 1024 },
    { "catalogue_prefix", set_prefix, F(catalogue_prefix), 0, 200 },
    { "catalogue_cacert", set_abspath, F(catalogue_cacert), 0, KS_CONF_PATH_MAX },
    { "catalogue_cert", set_abspath, F(catalogue_cert), 0, KS_CONF_PATH_MAX },
    { "catalogue_key", set_abspath, F(catalogue_key), 0, KS_CONF_PATH_MAX },
    { "catalogue_user", set_string, F(catalogue_user), 0, 128 },
    { "catalogue_password_file", set_abspath, F(catalogue_password_file), 0, KS_CONF_PATH_MAX },
    { "user", set_string, F(user), 0, 256 },
    { "jail", set_abspath, F(jail), 0, KS_CONF_PATH_MAX },
    { "seccomp", set_bool, F(seccomp), 0, 0 },
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int ks_config_load(struct ks_config *cfg, const char *path)
{
    char line[KS_CONF_PATH_MAX + 256];
    unsigned char seen[NOPTIONS] = { 0 };
    char msg[KS_CONF_PATH_MAX + 128];
    unsigned lineno = 0;
    FILE *f;
    int rc = -1;

    set_defaults(cfg);
    f = fopen(path, "re");
    if (f == NULL) {
        ks_log("error: cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *key, *val, *eq, *hash;
        size_t i;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            ks_log("error: %s:%u: line is too long", path, lineno);
            goto out;
        }
        /* '#' starts a comment at the start of a line or after whitespace */
        for (hash = line; (hash = strchr(hash, '#')) != NULL; hash++) {
            if (hash == line || isspace((unsigned char)hash[-1])) {
                *hash = '\0';
                break;
            }
        }
        key = trim(line);
        if (*key == '\0')
            continue;
        eq = strchr(key, '=');
        if (eq == NULL) {
            ks_log("error: %s:%u: expected 'key = value'", path, lineno);
            goto out;
        }
        *eq = '\0';
        key = trim(key);
        val = trim(eq + 1);
        for (i = 0; i < NOPTIONS; i++)
            if (strcmp(options[i].key, key) == 0)
                break;
        if (i == NOPTIONS) {
            ks_log("error: %s:%u: unknown setting '%s'", path, lineno, key);
            goto out;
        }
        if (seen[i]) {
            ks_log("error: %s:%u: '%s' is set twice", path, lineno, key);
            goto out;
        }
        seen[i] = 1;
        if (*val == '\0') {
            ks_log("error: %s:%u: '%s' needs a value", path, lineno, key);
            goto out;
        }
        if (options[i].set(cfg, val, (char *)cfg + options[i].offset,
                           options[i].lo, options[i].hi, msg, sizeof(msg)) != NULL) {
            ks_log("error: %s:%u: %s: %s", path, lineno, key, msg);
            goto out;
        }
    }
    if (ferror(f)) {
        ks_log("error: reading config file %s: %s", path, strerror(errno));
        goto out;
    }
    if (cfg->listen_tcp[0] != '\0' && (cfg->server_key[0] == '\0' ||
                                        cfg->authorized_clients[0] == '\0')) {
        ks_log("error: %s: listen_tcp needs server_key (create it with keystored "
               "--gen-server-key PATH) and authorized_clients (one 'NAME PUBLIC-KEY' per line)",
               path);
        goto out;
    }
    if (cfg->rollback_counter[0] != '\0') {
        size_t kl = strlen(cfg->key_dir);

        /* inside key_dir it would be rolled back together with the manifest */
        if (strncmp(cfg->rollback_counter, cfg->key_dir, kl) == 0 &&
            (cfg->rollback_counter[kl] == '/' || cfg->rollback_counter[kl] == '\0')) {
            ks_log("error: %s: rollback_counter %s must be outside key_dir %s", path,
                   cfg->rollback_counter, cfg->key_dir);
            goto out;
        }
    }
    if (cfg->catalogue && cfg->catalogue_endpoints[0] == '\0') {
        ks_log("error: %s: catalogue = etcd needs catalogue_endpoints (e.g. "
               "http://127.0.0.1:2379 http://10.0.0.2:2379)", path);
        goto out;
    }
    if (cfg->catalogue && strstr(cfg->catalogue_endpoints, "https://") != NULL &&
        cfg->catalogue_cacert[0] == '\0') {
        ks_log("error: %s: https etcd endpoints need catalogue_cacert: the confined catalogue "
               "agent cannot read the system's CA files (to trust those, name "
               "/etc/ssl/certs/ca-certificates.crt)", path);
        goto out;
    }
    if ((cfg->catalogue_user[0] != '\0') != (cfg->catalogue_password_file[0] != '\0') ||
        (cfg->catalogue_cert[0] != '\0') != (cfg->catalogue_key[0] != '\0')) {
        ks_log("error: %s: catalogue_user and catalogue_password_file go together, and so do "
               "catalogue_cert and catalogue_key", path);
        goto out;
    }
    if (strcmp(cfg->socket, cfg->admin_socket) == 0) {
        ks_log("error: %s: socket and admin_socket must be different paths", path);
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    return rc;
}
