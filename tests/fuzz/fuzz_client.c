/* libFuzzer target: a malicious or broken keystored.  The provider is
 * linked in (registered as a built-in "keystore" provider) and talks over a
 * real Unix socket to a fake server thread that answers every request with
 * the next reply from the fuzz input.  The application side loads
 * keystore:k through OSSL_STORE (GetKey: KeyInfo, public key DER, cert
 * chain) and signs or decrypts with it (SignResponse / DecryptResponse
 * against the caller's buffer sizes).  Nothing may crash, overflow or leak,
 * and a successful operation must fit the caller's buffer.
 *
 * Input: byte 0 selects the operation; then replies, each a 2-byte
 * big-endian header (bit 15: send raw, without adding a length prefix;
 * bit 14: verbatim, do not give it the request's id; bits 0-13: length) and
 * the bytes.  Framed replies get a correct 4-byte prefix.  After a raw
 * reply, or when the replies run out, the fake server stops sending on that
 * connection; the provider may reconnect once, and the next connection
 * continues with the remaining replies. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

#include "wire.h"

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx);

/* Our own library context is not re-sorted like the default one (store.c),
 * so operations ask for keystore's implementations explicitly. */
#define PROPQ "?provider=keystore"

static OSSL_LIB_CTX *libctx;
static char sockpath[108];
static int lfd = -1;
static int debug;   /* FUZZ_DEBUG=1: print OpenSSL's errors of each input */

/* Replies of the current input, consumed by the server thread. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static const uint8_t *replies;
static size_t replies_len, replies_off;
static int in_conn, cur_fd = -1;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_client: %s\n", what);
    abort();
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Read one request frame (the provider always sends well-formed ones);
 * returns its id, or -1 at EOF. */
static int64_t read_request(int fd)
{
    static uint8_t buf[KS_ABS_MAX_FRAME];
    Keystore__Request *req;
    uint8_t hdr[4];
    uint32_t len;
    int64_t id;

    if (read_all(fd, hdr, 4) != 0)
        return -1;
    len = ks_get_be32(hdr);
    if (len == 0 || len > sizeof(buf))
        die("the provider sent a malformed frame");
    if (read_all(fd, buf, len) != 0)
        return -1;
    if ((req = keystore__request__unpack(NULL, len, buf)) == NULL)
        die("the provider sent a request that does not decode");
    id = (int64_t)req->id;
    keystore__request__free_unpacked(req, NULL);
    return id;
}

/* Give a decodable reply the request's id (request ids depend on the
 * provider's history, not on the input); returns the length to send. */
static size_t fix_id(const uint8_t *p, size_t n, uint64_t id, uint8_t *out, size_t outsize)
{
    Keystore__Response *r = keystore__response__unpack(NULL, n, p);
    size_t len;

    if (r == NULL || keystore__response__get_packed_size(r) > outsize) {
        if (r != NULL)
            keystore__response__free_unpacked(r, NULL);
        memcpy(out, p, n);
        return n;
    }
    r->id = id;
    len = keystore__response__pack(r, out);
    keystore__response__free_unpacked(r, NULL);
    return len;
}

/* Next reply: 1 with its bytes, length and raw flag set, or 0 if none is left. */
static int next_reply(const uint8_t **p, size_t *n, int *raw, int *verbatim)
{
    size_t left = replies_len - replies_off, len;
    uint16_t h;

    if (left < 2)
        return 0;
    h = (uint16_t)(replies[replies_off] << 8 | replies[replies_off + 1]);
    len = h & 0x3fff;
    if (len > left - 2)
        len = left - 2;
    *p = replies + replies_off + 2;
    *n = len;
    *raw = (h & 0x8000) != 0;
    *verbatim = (h & 0x4000) != 0;
    replies_off += 2 + len;
    return 1;
}

static void serve(int fd)
{
    static uint8_t fixed[2 * 0x4000];

    for (;;) {
        const uint8_t *p;
        size_t n;
        int raw, verbatim, ok;
        int64_t id;
        uint8_t hdr[4];

        if ((id = read_request(fd)) < 0)
            return;
        pthread_mutex_lock(&lock);
        ok = next_reply(&p, &n, &raw, &verbatim);
        pthread_mutex_unlock(&lock);
        if (!ok)
            return;
        if (!raw && !verbatim) {
            n = fix_id(p, n, (uint64_t)id, fixed, sizeof(fixed));
            p = fixed;
        }
        if (!raw) {
            ks_put_be32(hdr, (uint32_t)n);
            if (write_all(fd, hdr, 4) != 0)
                return;
        }
        if (n > 0 && write_all(fd, p, n) != 0)
            return;
        if (raw) {
            /* the stream may now be out of step: only EOF follows */
            shutdown(fd, SHUT_WR);
            while (read_request(fd) >= 0)
                ;
            return;
        }
    }
}

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR)
                continue;
            die("accept");
        }
        pthread_mutex_lock(&lock);
        in_conn = 1;
        cur_fd = fd;
        pthread_mutex_unlock(&lock);
        serve(fd);
        /* Closing while the client still waits ends its read at once. */
        pthread_mutex_lock(&lock);
        close(fd);
        in_conn = 0;
        cur_fd = -1;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void cleanup(void)
{
    unlink(sockpath);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_un sun;
    pthread_t t;
    char addr[128];

    (void)argc;
    (void)argv;
    debug = getenv("FUZZ_DEBUG") != NULL;
    snprintf(sockpath, sizeof(sockpath), "/tmp/ksfuzz-client.%d.sock", (int)getpid());
    unlink(sockpath);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, sockpath);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(lfd, 16) != 0)
        die("cannot listen on the fake server socket");
    atexit(cleanup);
    snprintf(addr, sizeof(addr), "unix:%s", sockpath);
    /* a wedge would show as a slow unit, not a hang */
    if (setenv("KEYSTORE_SERVER", addr, 1) != 0 || setenv("KEYSTORE_TIMEOUT", "2", 1) != 0)
        die("setenv");
    if (pthread_create(&t, NULL, server_main, NULL) != 0)
        die("pthread_create");
    /* One provider instance for the whole run: unloading it does not tear
     * it down (its child library context holds it), so per-input instances
     * would pile up. */
    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || OSSL_PROVIDER_load(libctx, "default") == NULL
        || !OSSL_PROVIDER_add_builtin(libctx, "keystore", OSSL_provider_init)
        || OSSL_PROVIDER_load(libctx, "keystore") == NULL)
        die("cannot set up the library context");
    return 0;
}

static EVP_PKEY *load_key(void)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open_ex("keystore:k", libctx, NULL, NULL, NULL, NULL,
                                            NULL, NULL);
    EVP_PKEY *pkey = NULL;

    if (st == NULL)
        return NULL;
    while (pkey == NULL && !OSSL_STORE_eof(st)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(st);

        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return pkey;
}

/* Sign a digest with a buffer of the announced size, or smaller (op bit 2). */
static void do_sign(EVP_PKEY *pkey, uint8_t op)
{
    static const uint8_t dgst[32] = { 1, 2, 3 };
    uint8_t sig[2048];
    size_t siglen = 0, cap;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(libctx, pkey, PROPQ);

    if (c == NULL || EVP_PKEY_sign_init(c) <= 0
        || EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) <= 0)
        goto out;
    if ((op & 8) && EVP_PKEY_is_a(pkey, "RSA")
        && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) <= 0)
        goto out;
    if (EVP_PKEY_sign(c, NULL, &siglen, dgst, sizeof(dgst)) <= 0 || siglen > sizeof(sig))
        goto out;
    cap = (op & 4) ? siglen / 2 : siglen;
    siglen = cap;
    if (EVP_PKEY_sign(c, sig, &siglen, dgst, sizeof(dgst)) > 0 && (siglen == 0 || siglen > cap))
        die("signature length outside the caller's buffer");
out:
    EVP_PKEY_CTX_free(c);
}

static void do_digestsign(EVP_PKEY *pkey)
{
    static const uint8_t msg[] = "fuzz";
    uint8_t sig[2048];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ed = EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448");

    if (m != NULL && EVP_DigestSignInit_ex(m, NULL, ed ? NULL : "SHA256", libctx, PROPQ, pkey,
                                           NULL) == 1
        && EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1 && siglen > sizeof(sig))
        die("signature length outside the caller's buffer");
    EVP_MD_CTX_free(m);
}

static void do_decrypt(EVP_PKEY *pkey, uint8_t op)
{
    uint8_t ct[1024] = { 0 }, pt[1024];
    size_t ctlen = (size_t)EVP_PKEY_get_size(pkey), ptlen = 0, cap;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(libctx, pkey, PROPQ);

    if (c == NULL || ctlen == 0 || ctlen > sizeof(ct) || EVP_PKEY_decrypt_init(c) <= 0)
        goto out;
    if ((op & 8) && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) <= 0)
        goto out;
    if (EVP_PKEY_decrypt(c, NULL, &ptlen, ct, ctlen) <= 0 || ptlen > sizeof(pt))
        goto out;
    cap = (op & 4) ? 16 : ptlen;
    ptlen = cap;
    if (EVP_PKEY_decrypt(c, pt, &ptlen, ct, ctlen) > 0 && ptlen > cap)
        die("plaintext length outside the caller's buffer");
out:
    EVP_PKEY_CTX_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EVP_PKEY *pkey;
    uint8_t op;

    if (size < 1)
        return 0;
    op = data[0];
    pthread_mutex_lock(&lock);
    replies = data + 1;
    replies_len = size - 1;
    replies_off = 0;
    pthread_mutex_unlock(&lock);

    pkey = load_key();
    if (pkey != NULL) {
        switch (op & 3) {
        case 0: do_sign(pkey, op); break;
        case 1: do_digestsign(pkey); break;
        case 2: do_decrypt(pkey, op); break;
        default: do_sign(pkey, op); do_decrypt(pkey, op); break;
        }
        EVP_PKEY_free(pkey);
    }
    if (debug)
        ERR_print_errors_fp(stderr);
    ERR_clear_error();
    /* End the conversation from the server side, so the next input starts
     * the same way: the provider finds its connection dead, reconnects
     * (its one retry) and says Hello. */
    pthread_mutex_lock(&lock);
    if (in_conn)
        shutdown(cur_fd, SHUT_RDWR);
    while (in_conn)
        pthread_cond_wait(&cond, &lock);
    replies = NULL;
    pthread_mutex_unlock(&lock);
    return 0;
}
