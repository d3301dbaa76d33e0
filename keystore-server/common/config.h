/* keystored configuration file: "key = value" lines, '#' comments. */
#ifndef KS_CONFIG_H
#define KS_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#define KS_CONF_PATH_MAX 4096
#define KS_MAX_TCP_LISTENERS 4

struct ks_config {
    char socket[KS_CONF_PATH_MAX];        /* "unix:/path" for clients */
    char admin_socket[KS_CONF_PATH_MAX];  /* "unix:/path" for keystorectl */
    mode_t socket_mode;                   /* client socket permissions */
    char socket_group[256];               /* client socket group: name or number */
    char key_dir[KS_CONF_PATH_MAX];
    char rollback_counter[KS_CONF_PATH_MAX];  /* "" = KEY_DIR.generation */
    char master_key[KS_CONF_PATH_MAX];
    int workers;
    size_t max_frame;
    int allow_client_generate;
    int max_connections;
    int idle_timeout;                     /* seconds without a complete request */
    int frame_timeout;                    /* seconds a partial frame may linger */
    size_t secure_heap;                   /* bytes of OpenSSL secure heap (power of 2) */
    int spin_us;                          /* poll this long after a request before sleeping */
    int shared_memory;                    /* map clients' request/reply rings (daemon/conn_shm.c) */
    int rng_reseed_seconds;               /* 0: OpenSSL's DRBG reseed intervals */
    /* Remote access (docs/remote.md): TCP listeners, the server's static
     * key, the authorized clients, the access list and the audit log. */
    char listen_tcp[1024];                /* space-separated tcp:HOST:PORT, "" = none */
    char server_key[KS_CONF_PATH_MAX];
    char authorized_clients[KS_CONF_PATH_MAX];
    char acl[KS_CONF_PATH_MAX];           /* "" = only uid 0 may use keys (acl.h) */
    char allow_weak_digests[1024];        /* key-name globs that may sign MD5/SHA-1 */
    char audit_log[KS_CONF_PATH_MAX];     /* path, "stderr", or "" = no audit log */
    int max_connections_per_client;       /* 0 = no per-client limit */
    /* The TCP listener's own budgets and deadlines (docs/protocol.md). */
    int max_tcp_connections;              /* TCP connections; max_connections is Unix */
    int max_unauthenticated_per_address;  /* before key confirmation, per source IP */
    int handshake_timeout;                /* seconds from accept to key confirmation */
    int tcp_max_clock_skew;               /* seconds a handshake timestamp may differ */
    long tcp_rekey_frames;                /* rekey our sending key after this many frames */
    int tcp_rekey_seconds;                /* ... or this many seconds */
    /* The shared key catalogue (catalogue = etcd; docs/scaling.md): the
     * agent process (daemon/catalogue_agent.c) talks to these. */
    int catalogue;                        /* 0 embedded (default), 1 etcd */
    char catalogue_endpoints[1024];       /* space-separated http(s)://HOST:PORT */
    char catalogue_prefix[200];           /* etcd key prefix, ends in '/' */
    char catalogue_cacert[KS_CONF_PATH_MAX];
    char catalogue_cert[KS_CONF_PATH_MAX];
    char catalogue_key[KS_CONF_PATH_MAX];
    char catalogue_user[128];
    char catalogue_password_file[KS_CONF_PATH_MAX];
    /* Reserved for confinement (confine.c). */
    char user[256];
    char jail[KS_CONF_PATH_MAX];
    int seccomp;
};

/* Fill cfg with defaults, then read path.  Returns 0, or -1 after printing
 * "keystored: FILE:LINE: problem" (or the open error) to stderr. */
int ks_config_load(struct ks_config *cfg, const char *path);

#endif
