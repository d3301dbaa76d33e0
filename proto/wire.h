/* Framing and client-side transport shared by the provider, keystorectl and
 * the tests.  The server has its own non-blocking reader (keystore-server/)
 * but uses the same constants and limits. */
#ifndef KEYSTORE_WIRE_H
#define KEYSTORE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "keystore.pb-c.h"

#define KS_PROTOCOL_VERSION 1u
#define KS_FRAME_HEADER 4
#define KS_DEFAULT_MAX_FRAME (64 * 1024)
#define KS_MIN_MAX_FRAME 1024
#define KS_ABS_MAX_FRAME (16 * 1024 * 1024)
/* Largest request or reply on the TCP channel: one Noise transport message
 * (65535 bytes) minus its tag; max_frame is capped to it there. */
#define KS_TCP_MAX_PLAINTEXT 65519
#define KS_MAX_KEY_NAME 64
#define KS_DEFAULT_SOCKET "unix:/run/keystored/keystored.sock"
#define KS_DEFAULT_ADMIN_SOCKET "unix:/run/keystored/admin.sock"
#define KS_IO_TIMEOUT_MS 30000  /* default per send/receive; the provider takes "timeout" / KEYSTORE_TIMEOUT */
#define KS_URI_SCHEME "keystore:"

/* An error buffer size that fits every message the helpers produce. */
#define KS_ERRLEN 512

/* Encode the 4-byte big-endian length prefix / decode it. */
void ks_put_be32(uint8_t out[4], uint32_t v);
uint32_t ks_get_be32(const uint8_t in[4]);

/* Key names: 1..64 characters from [A-Za-z0-9._-], not starting with '.'.
 * They become file names in the key directory, so this is a security check. */
int ks_valid_key_name(const char *name);

/* Parse a "keystore:" URI into a key name.  Accepted forms (documented in
 * docs/uris.md): "keystore:NAME" and "keystore:name=NAME".  Returns 1 and
 * writes the name (NUL-terminated) into out[KS_MAX_KEY_NAME + 1], or 0 with a
 * reason in err. */
int ks_parse_uri(const char *uri, char *out, char *err, size_t errlen);

/* Connect to "unix:/path" (for "tcp:HOST:PORT" use ks_chan_connect, channel.h).
 * Returns a connected fd with send/receive timeouts of timeout_ms, or -1 with
 * a message such as "keystore server unreachable at unix:/x: Connection refused". */
int ks_connect(const char *addr, int timeout_ms, char *err, size_t errlen);

/* Blocking frame I/O on a connected fd.  Return 0 on success, -1 on error
 * with a message in err (which may be NULL).  ks_read_frame checks the
 * length against max_frame before allocating; *out is malloc'd. */
int ks_write_frame(int fd, const uint8_t *buf, size_t len, char *err, size_t errlen);
int ks_read_frame(int fd, size_t max_frame, uint8_t **out, size_t *outlen,
                  char *err, size_t errlen);

/* Send one request and wait for the response with the same id.
 * On success returns 0 and *resp must be freed with
 * keystore__response__free_unpacked(*resp, NULL).  Transport or decoding
 * failures return -1 with a message (the connection should be dropped). */
int ks_call(int fd, size_t max_frame, const Keystore__Request *req,
            Keystore__Response **resp, char *err, size_t errlen);

/* Hello exchange; fills *server_max_frame.  Returns 0 or -1 with err. */
int ks_hello(int fd, const char *client_name, size_t *server_max_frame,
             char *err, size_t errlen);

/* The same over any frame transport (the TCP secure channel, channel.h):
 * write_frame/read_frame behave like ks_write_frame/ks_read_frame. */
struct ks_io {
    int (*write_frame)(void *ctx, const uint8_t *buf, size_t len, char *err, size_t errlen);
    int (*read_frame)(void *ctx, size_t max_frame, uint8_t **out, size_t *outlen,
                      char *err, size_t errlen);
    void *ctx;
    int fd;        /* polled by ks_spin_wait before a reply is read; -1: never */
};
/* Unpack a reply frame and check that it answers REQ (same id); 0 or -1 with ERR. */
int ks_decode_reply(const Keystore__Request *req, const uint8_t *frame, size_t len,
                    Keystore__Response **resp, char *err, size_t errlen);
int ks_call_io(const struct ks_io *io, size_t max_frame, const Keystore__Request *req,
               Keystore__Response **resp, char *err, size_t errlen);
/* Check a reply to Hello: not an error, the protocol version, and the
 * server's frame limit (clamped) into *server_max_frame if not NULL. */
int ks_hello_check(const Keystore__Response *resp, size_t *server_max_frame, char *err,
                   size_t errlen);
int ks_hello_io(const struct ks_io *io, const char *client_name, size_t *server_max_frame,
                char *err, size_t errlen);

/* Poll fd for up to KEYSTORE_SPIN_US microseconds (environment; default
 * KS_DEFAULT_CLIENT_SPIN_US, 0 disables) before the caller blocks on it: a
 * reply that comes back within that time is picked up without a sleep and
 * the cross-core wake-up that costs more than a small signature. */
#define KS_DEFAULT_CLIENT_SPIN_US 30
/* The shared-memory rings spin longer (proto/shm.c): they poll without a
 * system call and stop at once when the machine turns out to be busy. */
#define KS_DEFAULT_SHM_SPIN_US 1000
void ks_spin_wait(int fd);

/* KEYSTORE_SPIN_US (0..100000, read once per process), or dflt if it is
 * unset or not such a number: the socket and the rings have their own defaults. */
int ks_spin_us(int dflt);

/* CLOCK_MONOTONIC in microseconds. */
long long ks_mono_us(void);

/* Key usages as text: "sign", "decrypt", "derive", comma-separated, for the
 * KeyInfo.usage bitmask (1 sign, 2 decrypt, 4 derive; keystore.proto).
 * ks_usage_parse returns 0, or -1 with a message in err; ks_usage_format
 * writes "sign,decrypt" ("none" for 0) into buf and returns buf. */
#define KS_USAGE_TEXT_MAX 24
int ks_usage_parse(const char *text, uint32_t *usage, char *err, size_t errlen);
const char *ks_usage_format(uint32_t usage, char buf[KS_USAGE_TEXT_MAX]);

/* A deadline for the calling thread's current operation, in ks_mono_us()
 * time (0: none, the sockets' own timeouts apply).  While it is set, frame
 * reads and writes never wait past it: they fail with "timed out waiting
 * for the server", however the server dribbles its bytes.  The provider
 * sets one per operation so that its `timeout` bounds the whole operation,
 * connecting again and retrying included.  ks_io_remaining_ms() is what is
 * left of it (at least 1 while it has not passed; 0 once it has; the
 * default timeout when none is set), for connect timeouts. */
void ks_io_set_deadline(long long deadline_us);
int ks_io_remaining_ms(int default_ms);

/* Names for logs and messages. */
const char *ks_error_code_name(Keystore__ErrorCode code);
const char *ks_key_type_name(Keystore__KeyType type);

#endif
