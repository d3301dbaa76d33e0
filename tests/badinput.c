/* badinput ADDR: the bad-input matrix against a running keystored that holds
 * an RSA key "rsa", an EC key "ec" and an Ed25519 key "ed".
 *
 * Each case speaks raw frames on its own connection and checks the server's
 * answer: an error reply with the expected code and message, or a closed
 * connection without a reply where no reply is safe.  After every case a
 * second, well-behaved connection (open the whole time) signs with "ec" and
 * the signature is verified, so the server keeps serving others throughout.
 * Prints one "ok:" line per case; exit 0 only if all pass. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "wire.h"

static const char *addr;
static int good = -1;
static uint64_t good_id = 10;
static EVP_PKEY *ec_pub, *ed_pub;
static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL: " __VA_ARGS__); \
    fprintf(stderr, "\n"); failures++; return; } } while (0)

static int conn(void)
{
    char err[KS_ERRLEN];
    int fd = ks_connect(addr, 10000, err, sizeof(err));

    if (fd < 0) {
        fprintf(stderr, "FAIL: %s\n", err);
        exit(1);
    }
    return fd;
}

static int hello_conn(void)
{
    char err[KS_ERRLEN];
    int fd = conn();

    if (ks_hello(fd, "badinput", NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "FAIL: hello: %s\n", err);
        exit(1);
    }
    return fd;
}

static int send_raw(int fd, const void *p, size_t n)
{
    return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int send_req(int fd, const Keystore__Request *r)
{
    uint8_t buf[70000];
    size_t n = keystore__request__get_packed_size(r);
    char err[KS_ERRLEN];

    if (n > sizeof(buf))
        return -1;
    keystore__request__pack(r, buf);
    return ks_write_frame(fd, buf, n, err, sizeof(err));
}

/* The next reply, or NULL if the connection closed (or failed). */
static Keystore__Response *recv_resp(int fd)
{
    char err[KS_ERRLEN];
    uint8_t *in;
    size_t n;
    Keystore__Response *r;

    if (ks_read_frame(fd, KS_ABS_MAX_FRAME, &in, &n, err, sizeof(err)) != 0)
        return NULL;
    r = keystore__response__unpack(NULL, n, in);
    free(in);
    return r;
}

/* 1 if the server closed the connection (EOF) without sending anything. */
static int closed_without_reply(int fd)
{
    uint8_t b;
    ssize_t r = recv(fd, &b, 1, 0);

    return r == 0 || (r < 0 && errno == ECONNRESET);
}

static int is_error(const Keystore__Response *r, Keystore__ErrorCode code, const char *substr)
{
    return r != NULL && r->body_case == KEYSTORE__RESPONSE__BODY_ERROR && r->error != NULL
           && r->error->code == code && r->error->message != NULL
           && strstr(r->error->message, substr) != NULL;
}

static const char *describe(const Keystore__Response *r)
{
    static char buf[600];

    if (r == NULL)
        return "no reply (connection closed)";
    if (r->body_case == KEYSTORE__RESPONSE__BODY_ERROR && r->error != NULL)
        snprintf(buf, sizeof(buf), "%s: %s", ks_error_code_name(r->error->code),
                 r->error->message ? r->error->message : "");
    else
        snprintf(buf, sizeof(buf), "reply body %d", (int)r->body_case);
    return buf;
}

static EVP_PKEY *fetch_pub(int fd, const char *name)
{
    Keystore__Request r = KEYSTORE__REQUEST__INIT;
    Keystore__GetKeyRequest g = KEYSTORE__GET_KEY_REQUEST__INIT;
    Keystore__Response *resp;
    EVP_PKEY *pk = NULL;

    g.name = (char *)name;
    r.id = good_id++;
    r.body_case = KEYSTORE__REQUEST__BODY_GET_KEY;
    r.get_key = &g;
    if (send_req(fd, &r) == 0 && (resp = recv_resp(fd)) != NULL) {
        if (resp->body_case == KEYSTORE__RESPONSE__BODY_KEY && resp->key != NULL) {
            const unsigned char *p = resp->key->public_key_der.data;

            pk = d2i_PUBKEY(NULL, &p, (long)resp->key->public_key_der.len);
        }
        keystore__response__free_unpacked(resp, NULL);
    }
    if (pk == NULL) {
        fprintf(stderr, "FAIL: cannot fetch the public key of '%s'\n", name);
        exit(1);
    }
    return pk;
}

/* Sign a message; returns the reply (caller frees). */
static Keystore__Response *sign(int fd, uint64_t id, const char *key, const char *digest,
                                Keystore__Padding pad, const uint8_t *tbs, size_t tbslen)
{
    Keystore__Request r = KEYSTORE__REQUEST__INIT;
    Keystore__SignRequest s = KEYSTORE__SIGN_REQUEST__INIT;

    s.key = (char *)key;
    s.digest = (char *)digest;
    s.padding = pad;
    s.mgf1_digest = (char *)"";
    s.tbs.data = (uint8_t *)tbs;
    s.tbs.len = tbslen;
    r.id = id;
    r.body_case = KEYSTORE__REQUEST__BODY_SIGN;
    r.sign = &s;
    if (send_req(fd, &r) != 0)
        return NULL;
    return recv_resp(fd);
}

static int verify(EVP_PKEY *pk, const char *md, const uint8_t *msg, size_t n,
                  const ProtobufCBinaryData *sig)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestVerifyInit(c, NULL, md ? EVP_get_digestbyname(md) : NULL,
                                               NULL, pk) == 1
             && EVP_DigestVerify(c, sig->data, sig->len, msg, n) == 1;

    EVP_MD_CTX_free(c);
    return ok;
}

/* The well-behaved client: sign a fresh message with "ec" and verify it. */
static void good_client_signs(const char *after)
{
    uint8_t msg[64], dgst[32];
    unsigned int dl = 0;
    Keystore__Response *r;
    uint64_t id = good_id++;

    snprintf((char *)msg, sizeof(msg), "well-behaved client, request %llu",
             (unsigned long long)id);
    if (EVP_Digest(msg, sizeof(msg), dgst, &dl, EVP_sha256(), NULL) != 1) {
        fprintf(stderr, "FAIL: EVP_Digest\n");
        exit(1);
    }
    r = sign(good, id, "ec", "SHA256", KEYSTORE__PADDING__PADDING_UNSPECIFIED, dgst, sizeof(dgst));
    if (r == NULL || r->id != id || r->body_case != KEYSTORE__RESPONSE__BODY_SIGN
        || r->sign == NULL) {
        fprintf(stderr, "FAIL: after '%s' the well-behaved connection got %s\n", after,
                describe(r));
        exit(1);
    }
    {
        /* ECDSA over the digest: verify the raw digest */
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ec_pub, NULL);
        int ok = c != NULL && EVP_PKEY_verify_init(c) == 1
                 && EVP_PKEY_verify(c, r->sign->signature.data, r->sign->signature.len,
                                    dgst, sizeof(dgst)) == 1;

        EVP_PKEY_CTX_free(c);
        if (!ok) {
            fprintf(stderr, "FAIL: after '%s' the signature does not verify\n", after);
            exit(1);
        }
    }
    keystore__response__free_unpacked(r, NULL);
}

static void pass(const char *what)
{
    good_client_signs(what);
    printf("ok: %s (and another client still signs)\n", what);
}

/* ---- the cases ---------------------------------------------------------- */

static void truncated_frame(void)
{
    uint8_t b[4 + 10] = { 0, 0, 0, 100 };
    int fd = conn();

    CHECK(send_raw(fd, b, sizeof(b)) == 0, "truncated frame: send");
    shutdown(fd, SHUT_WR);
    CHECK(closed_without_reply(fd), "truncated frame: expected the server to close without a reply");
    close(fd);
    pass("truncated frame: closed without a reply");
}

static void oversized_prefix(void)
{
    uint8_t b[4];
    int fd = hello_conn();

    ks_put_be32(b, KS_DEFAULT_MAX_FRAME + 1);
    CHECK(send_raw(fd, b, 4) == 0, "oversized prefix: send");
    /* nothing else is sent: the server must not wait for 64 KiB */
    CHECK(closed_without_reply(fd), "length prefix over the limit: expected a close without reply");
    close(fd);
    fd = conn();
    ks_put_be32(b, 0xffffffffu);
    CHECK(send_raw(fd, b, 4) == 0, "oversized prefix: send");
    CHECK(closed_without_reply(fd), "length prefix 0xffffffff: expected a close without reply");
    close(fd);
    pass("length prefix over max_frame: closed without a reply");
}

static void zero_length(void)
{
    uint8_t b[4] = { 0, 0, 0, 0 };
    int fd = hello_conn();

    CHECK(send_raw(fd, b, 4) == 0, "zero-length frame: send");
    CHECK(closed_without_reply(fd), "zero-length frame: expected a close without reply");
    close(fd);
    pass("zero-length frame: closed without a reply");
}

static void garbage(void)
{
    uint8_t b[4 + 16];
    Keystore__Response *r;
    int fd = conn();

    ks_put_be32(b, 16);
    memset(b + 4, 0xff, 16);
    CHECK(send_raw(fd, b, sizeof(b)) == 0, "garbage: send");
    r = recv_resp(fd);
    CHECK(is_error(r, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST, "does not decode") && r->id == 0,
          "garbage protobuf: got %s", describe(r));
    keystore__response__free_unpacked(r, NULL);
    CHECK(closed_without_reply(fd), "garbage protobuf: connection not closed after the error");
    close(fd);
    pass("garbage protobuf: ERROR_BAD_REQUEST id 0, then closed");
}

static void unknown_body(void)
{
    /* id 7 and an unknown field 99 (length-delimited, empty): no body we know
     * (a low number would become a request one day) */
    static const uint8_t unknown[] = { 0x08, 0x07, 0x9a, 0x06, 0x00 };
    static const uint8_t nobody[] = { 0x08, 0x08 };
    uint8_t b[64];
    Keystore__Response *r;
    int fd = hello_conn();

    ks_put_be32(b, sizeof(unknown));
    memcpy(b + 4, unknown, sizeof(unknown));
    CHECK(send_raw(fd, b, 4 + sizeof(unknown)) == 0, "unknown body: send");
    r = recv_resp(fd);
    CHECK(is_error(r, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST, "no body this server knows")
          && r->id == 7, "unknown oneof field: got %s", describe(r));
    keystore__response__free_unpacked(r, NULL);
    ks_put_be32(b, sizeof(nobody));
    memcpy(b + 4, nobody, sizeof(nobody));
    CHECK(send_raw(fd, b, 4 + sizeof(nobody)) == 0, "no body: send");
    r = recv_resp(fd);
    CHECK(is_error(r, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST, "no body this server knows")
          && r->id == 8, "request without a body: got %s", describe(r));
    keystore__response__free_unpacked(r, NULL);
    close(fd);
    pass("unknown oneof field / no body: ERROR_BAD_REQUEST, connection stays usable");
}

static void wrong_version(void)
{
    Keystore__Request r = KEYSTORE__REQUEST__INIT;
    Keystore__Hello h = KEYSTORE__HELLO__INIT;
    Keystore__Response *resp;
    int fd = conn();

    h.version = 99;
    h.client_name = (char *)"badinput";
    r.id = 1;
    r.body_case = KEYSTORE__REQUEST__BODY_HELLO;
    r.hello = &h;
    CHECK(send_req(fd, &r) == 0, "wrong version: send");
    resp = recv_resp(fd);
    CHECK(is_error(resp, KEYSTORE__ERROR_CODE__ERROR_UNSUPPORTED_VERSION, "version 99"),
          "Hello version 99: got %s", describe(resp));
    keystore__response__free_unpacked(resp, NULL);
    CHECK(closed_without_reply(fd), "wrong version: connection not closed");
    close(fd);
    pass("Hello with protocol version 99: ERROR_UNSUPPORTED_VERSION, then closed");
}

static void before_hello(void)
{
    static const uint8_t d[32];
    Keystore__Response *r;
    int fd = conn();

    r = sign(fd, 5, "ec", "SHA256", KEYSTORE__PADDING__PADDING_UNSPECIFIED, d, sizeof(d));
    CHECK(is_error(r, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST, "first request must be Hello")
          && r->id == 5, "Sign before Hello: got %s", describe(r));
    keystore__response__free_unpacked(r, NULL);
    CHECK(closed_without_reply(fd), "request before Hello: connection not closed");
    close(fd);
    pass("Sign before Hello: ERROR_BAD_REQUEST, then closed");
}

static void wrong_digest_len(void)
{
    static const uint8_t d[31];
    Keystore__Response *r;
    int fd = hello_conn();

    r = sign(fd, 2, "rsa", "SHA256", KEYSTORE__PADDING__PADDING_PKCS1, d, sizeof(d));
    CHECK(is_error(r, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER, "digest is 31 bytes but SHA256 needs 32"),
          "31-byte SHA256 digest: got %s", describe(r));
    keystore__response__free_unpacked(r, NULL);
    close(fd);
    pass("digest of the wrong length: ERROR_BAD_PARAMETER");
}

static void unknown_padding(void)
{
    static const uint8_t d[32];
    Keystore__Response *r;
    int fd = hello_conn();

    r = sign(fd, 2, "rsa", "SHA256", (Keystore__Padding)77, d, sizeof(d));
    CHECK(is_error(r, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER, "unknown padding"),
          "padding 77: got %s", describe(r));
    keystore__response__free_unpacked(r, NULL);
    close(fd);
    pass("unknown padding mode: ERROR_BAD_PARAMETER");
}

static void eddsa_sizes(void)
{
    static uint8_t big[KS_DEFAULT_MAX_FRAME];
    Keystore__Response *r;
    size_t n;
    int fd = hello_conn();

    r = sign(fd, 2, "ed", "", KEYSTORE__PADDING__PADDING_UNSPECIFIED, (const uint8_t *)"", 0);
    CHECK(r != NULL && r->body_case == KEYSTORE__RESPONSE__BODY_SIGN && r->sign != NULL
          && verify(ed_pub, NULL, (const uint8_t *)"", 0, &r->sign->signature),
          "Ed25519 of an empty message: got %s (or it does not verify)", describe(r));
    keystore__response__free_unpacked(r, NULL);
    /* the largest message that fits a frame: about max_frame less the envelope */
    n = KS_DEFAULT_MAX_FRAME - 64;
    memset(big, 'x', n);
    r = sign(fd, 3, "ed", "", KEYSTORE__PADDING__PADDING_UNSPECIFIED, big, n);
    CHECK(r != NULL && r->body_case == KEYSTORE__RESPONSE__BODY_SIGN && r->sign != NULL
          && verify(ed_pub, NULL, big, n, &r->sign->signature),
          "Ed25519 of a %zu-byte message: got %s (or it does not verify)", n, describe(r));
    keystore__response__free_unpacked(r, NULL);
    /* one that does not fit: the frame is over the limit, closed without a reply */
    r = sign(fd, 4, "ed", "", KEYSTORE__PADDING__PADDING_UNSPECIFIED, big, sizeof(big));
    CHECK(r == NULL, "Ed25519 message over max_frame: expected a close, got %s", describe(r));
    close(fd);
    pass("EdDSA: empty message and a ~64 KiB one signed and verified; over max_frame closed");
}

static void unknown_key(void)
{
    static const uint8_t d[32];
    Keystore__Response *r;
    int fd = hello_conn();

    r = sign(fd, 2, "nosuchkey", "SHA256", KEYSTORE__PADDING__PADDING_UNSPECIFIED, d, sizeof(d));
    CHECK(is_error(r, KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY, "no key named 'nosuchkey'"),
          "unknown key: got %s", describe(r));
    keystore__response__free_unpacked(r, NULL);
    r = sign(fd, 3, "../x", "SHA256", KEYSTORE__PADDING__PADDING_UNSPECIFIED, d, sizeof(d));
    CHECK(is_error(r, KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST, "is not a valid key name"),
          "invalid key name: got %s", describe(r));
    keystore__response__free_unpacked(r, NULL);
    close(fd);
    pass("unknown key: ERROR_NO_SUCH_KEY; invalid name: ERROR_BAD_REQUEST");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: badinput unix:/path/to/socket\n");
        return 2;
    }
    addr = argv[1];
    good = hello_conn();
    ec_pub = fetch_pub(good, "ec");
    ed_pub = fetch_pub(good, "ed");
    good_client_signs("start");

    truncated_frame();
    oversized_prefix();
    zero_length();
    garbage();
    unknown_body();
    wrong_version();
    before_hello();
    wrong_digest_len();
    unknown_padding();
    eddsa_sizes();
    unknown_key();

    /* and a brand-new client is served too */
    close(good);
    good = hello_conn();
    good_client_signs("the whole matrix, on a new connection");
    close(good);
    EVP_PKEY_free(ec_pub);
    EVP_PKEY_free(ed_pub);
    if (failures > 0) {
        fprintf(stderr, "%d case(s) failed\n", failures);
        return 1;
    }
    printf("all bad-input cases passed\n");
    return 0;
}
