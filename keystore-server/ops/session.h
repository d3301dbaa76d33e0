/* One connection's peer as the request layer sees it: who it is (for the
 * access list, limits and the audit log) and where the protocol stands.
 * Filled in by the daemon layer, read and updated by ops/. */
#ifndef KS_SESSION_H
#define KS_SESSION_H

#include <stddef.h>
#include <sys/types.h>

/* What the server knows about the peer of one connection. */
struct ks_session {
    unsigned long id;          /* connection number, for logs */
    int is_admin;              /* accepted on the admin socket */
    uid_t uid;                 /* SO_PEERCRED */
    gid_t gid;
    pid_t pid;
    int hello_done;
    unsigned shm_ring_size;    /* Hello offered shared-memory rings of this size (daemon/conn_shm.c) */
    char client_name[64];      /* sanitized Hello.client_name */
    /* Identity for access control, limits and the audit log (acl.h):
     * Unix peers by uid/gids, TCP peers by their authorized-clients name. */
    int is_tcp;
    char tcp_client[65];       /* set once the TCP handshake has succeeded */
    char peer[64];             /* TCP: "ADDR:PORT"; Unix: "" */
    gid_t groups[32];          /* SO_PEERGROUPS (supplementary groups) */
    int ngroups;
    char limit_id[80];         /* counted in max_connections_per_client; "" = not */
};

/* "uid 1000", "tcp client 'frontend1'": for messages. */
void ks_session_identity(const struct ks_session *s, char *out, size_t outlen);

/* For log lines: "uid 0 pid 42" or "tcp client 'frontend1' from ADDR". */
void ks_session_describe(const struct ks_session *s, char *out, size_t outlen);

#endif
