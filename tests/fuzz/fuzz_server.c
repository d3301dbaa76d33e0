/* libFuzzer target: arbitrary bytes from a client, through keystored's own
 * framing (daemon/conn.c), protobuf decoding and request dispatch (ops/), with
 * real keys loaded from a real (temporary) key directory.
 *
 * Input: byte 0 chooses how the stream is cut into "recv" pieces (0: all at
 * once, n: n*7 bytes at a time), the rest is the byte stream of one client
 * connection on the client socket.  Every reply the server queues must be a
 * well-formed frame (0 < length <= max_frame) holding a decodable Response,
 * and there is never more than one reply per complete request frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "common/config.h"
#include "daemon/conn.h"
#include "store/keytable.h"
#include "store/masterkey.h"
#include "wire.h"

static struct ks_config cfg;
static char dir[64];

struct sink { uint8_t *buf; size_t len, cap; };

static void die(const char *what)
{
    fprintf(stderr, "fuzz_server: %s\n", what);
    abort();
}

static ssize_t collect(void *arg, const uint8_t *p, size_t n)
{
    struct sink *s = arg;

    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        uint8_t *nb;

        while (cap < s->len + n)
            cap *= 2;
        if ((nb = realloc(s->buf, cap)) == NULL)
            die("out of memory");
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return (ssize_t)n;
}

static void add_key(const char *name, EVP_PKEY *pkey)
{
    char err[512];

    if (pkey == NULL)
        die("key generation failed");
    /* every usage the type allows, so the fuzzer reaches sign and decrypt */
    uint32_t usage = EVP_PKEY_is_a(pkey, "RSA") ? KS_USAGE_SIGN | KS_USAGE_DECRYPT
                     : EVP_PKEY_is_a(pkey, "X25519") || EVP_PKEY_is_a(pkey, "X448") ? KS_USAGE_DERIVE
                     : KS_USAGE_SIGN;

    if (ks_store_add(name, pkey, usage, NULL, err, sizeof(err)) != KS_STORE_OK) {
        fprintf(stderr, "%s\n", err);
        die("ks_store_add failed");
    }
}

/* EVP_PKEY_Q_keygen knows no RSA-PSS in OpenSSL 3.0. */
static EVP_PKEY *gen_rsa_pss(void)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
    EVP_PKEY *pkey = NULL;

    if (c == NULL || EVP_PKEY_keygen_init(c) <= 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048) <= 0
        || EVP_PKEY_keygen(c, &pkey) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(c);
    return pkey;
}

static void cleanup(void)
{
    char cmd[128];

    ks_store_close();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_server: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[128], keydir[128], err[512];

    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        die("sodium_init");
    snprintf(dir, sizeof(dir), "/tmp/ksfuzz.XXXXXX");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    snprintf(path, sizeof(path), "%s/master.key", dir);
    snprintf(keydir, sizeof(keydir), "%s/keys", dir);
    if (ks_master_key_generate(path, err, sizeof(err)) != 0 || ks_master_load(path) != 0)
        die("master key");
    if (ks_store_open(keydir, NULL) != 0)
        die("ks_store_open");
    atexit(cleanup);
    add_key("rsa", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
    add_key("rsapss", gen_rsa_pss());
    add_key("ec", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
    add_key("ed25519", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
    add_key("ed448", EVP_PKEY_Q_keygen(NULL, NULL, "ED448"));
    add_key("x25519", EVP_PKEY_Q_keygen(NULL, NULL, "X25519"));
    /* serve what keystored would serve: the keys as loaded from their files */
    ks_store_close();
    if (ks_store_open(keydir, NULL) != 0 || ks_store_count() != 6)
        die("reloading the key directory");

    /* keystored's defaults for what the request path reads */
    cfg.max_frame = KS_DEFAULT_MAX_FRAME;
    cfg.allow_client_generate = 0;   /* keeps the key table constant between inputs */
    cfg.max_connections = 1024;
    cfg.idle_timeout = 300;
    cfg.frame_timeout = 10;
    return 0;
}

/* Number of complete frames in the input stream (the upper bound of replies). */
static size_t count_frames(const uint8_t *p, size_t n)
{
    size_t frames = 0;

    while (n >= KS_FRAME_HEADER) {
        uint32_t len = ks_get_be32(p);

        if (len == 0 || len > cfg.max_frame || n - KS_FRAME_HEADER < len)
            break;
        frames++;
        p += KS_FRAME_HEADER + len;
        n -= KS_FRAME_HEADER + len;
    }
    return frames;
}

static void check_replies(const struct sink *s, size_t max_replies)
{
    size_t off = 0, replies = 0;

    while (off < s->len) {
        uint32_t len;
        Keystore__Response *r;

        if (s->len - off < KS_FRAME_HEADER)
            die("truncated reply header");
        len = ks_get_be32(s->buf + off);
        if (len == 0 || len > cfg.max_frame || s->len - off - KS_FRAME_HEADER < len)
            die("reply frame length out of bounds");
        r = keystore__response__unpack(NULL, len, s->buf + off + KS_FRAME_HEADER);
        if (r == NULL)
            die("reply does not decode");
        if (r->body_case == KEYSTORE__RESPONSE__BODY__NOT_SET)
            die("reply without a body");
        if (r->body_case == KEYSTORE__RESPONSE__BODY_ERROR &&
            (r->error == NULL || r->error->message == NULL || r->error->message[0] == '\0'))
            die("error reply without a message");
        keystore__response__free_unpacked(r, NULL);
        off += KS_FRAME_HEADER + len;
        replies++;
    }
    if (replies > max_replies)
        die("more replies than requests");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sink out = { NULL, 0, 0 };
    struct ks_conn *c;
    size_t piece, off = 0;
    enum ks_conn_state st = KS_CONN_OK;

    if (size < 1)
        return 0;
    piece = data[0] == 0 ? size : (size_t)data[0] * 7;
    data++;
    size--;
    c = ks_conn_new(-1, 0, 1, 1000);
    if (c == NULL)
        die("ks_conn_new");
    c->sink = collect;
    c->sink_arg = &out;
    while (st == KS_CONN_OK && off < size) {
        size_t n = size - off < piece ? size - off : piece, taken;

        st = ks_conn_feed(&cfg, c, data + off, n, &taken, 1000);
        if (taken == 0 && st == KS_CONN_OK)
            break;   /* closing (protocol error): the rest is never read */
        off += taken;
    }
    if (st == KS_CONN_OK) {
        size_t taken;

        ks_conn_feed(&cfg, c, NULL, 0, &taken, 1000);   /* peer EOF */
    }
    ks_conn_free(c);
    check_replies(&out, count_frames(data, size));
    free(out.buf);
    return 0;
}
