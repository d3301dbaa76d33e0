/* A client connection to keystored: a plain Unix socket ("unix:/path") or
 * the encrypted, mutually authenticated TCP channel ("tcp:HOST:PORT",
 * "tcp:[V6ADDR]:PORT"; see secure.h and docs/protocol.md). */
#ifndef KEYSTORE_CHANNEL_H
#define KEYSTORE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "secure.h"
#include "wire.h"

/* What a TCP connection needs; ignored for unix: addresses. */
struct ks_chan_opts {
    const char *server_pubkey;     /* pinned server static key: base64 or hex */
    const char *client_key_path;   /* this client's private key file (mode 0600) */
    int shm;                       /* unix: offer the shared-memory rings in Hello (shm.h) */
};

struct ks_chan {
    int fd;
    int secure;                    /* TCP: frames go through sec */
    struct ks_sec sec;
    struct ks_io io;
    int want_shm;                  /* offer the rings in ks_chan_hello */
    struct ks_shm *shm;            /* non-NULL once the server maps them: calls use them */
};

/* Connect and, for TCP, run the handshake.  Returns NULL with a message a
 * person can act on (wrong pinned key, client key not authorized...). */
struct ks_chan *ks_chan_connect(const char *addr, const struct ks_chan_opts *opts,
                                int timeout_ms, char *err, size_t errlen);

/* Why a connection could not be made, for the error's label: only
 * KS_CHAN_UNREACHABLE means the server could not be reached at all. */
enum ks_chan_failure {
    KS_CHAN_UNREACHABLE = 0,  /* no route, refused, timed out, closed */
    KS_CHAN_CONFIG,           /* this client's settings: address, pinned key, client key file */
    KS_CHAN_REFUSED,          /* the server answered and refused us (unknown key, busy, clock) */
    KS_CHAN_AUTH,             /* the server failed to prove the pinned key */
    KS_CHAN_PROTOCOL,         /* the server does not speak this channel version */
};
struct ks_chan *ks_chan_connect_ex(const char *addr, const struct ks_chan_opts *opts,
                                   int timeout_ms, enum ks_chan_failure *why,
                                   char *err, size_t errlen);

/* 1 if a "tcp:" address parses (host and port). */
int ks_addr_is_tcp_valid(const char *addr);

/* ks_call / ks_hello over the channel. */
int ks_chan_call(struct ks_chan *ch, size_t max_frame, const Keystore__Request *req,
                 Keystore__Response **resp, char *err, size_t errlen);
int ks_chan_hello(struct ks_chan *ch, const char *client_name, size_t *server_max_frame,
                  char *err, size_t errlen);

/* Close the descriptor (never shutdown: after fork the parent may still use
 * the connection), wipe the session keys, free.  NULL is fine. */
void ks_chan_close(struct ks_chan *ch);

/* 1 if addr is a "tcp:" address. */
int ks_addr_is_tcp(const char *addr);

/* Split "tcp:HOST:PORT" / "tcp:[V6]:PORT" into host and port strings.
 * Returns 0 or -1 with a message. */
int ks_parse_tcp_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen,
                      char *err, size_t errlen);

#endif
