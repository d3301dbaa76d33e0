/* fuzz_seeds SERVER_DIR CLIENT_DIR: writes the seed corpora of the two fuzz
 * targets (formats in fuzz_server.c and fuzz_client.c): well-formed
 * conversations, so the fuzzers start from inputs that reach every
 * operation.  Run by tests/fuzz/run.sh; keys are generated fresh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "wire.h"

struct buf { uint8_t data[65536]; size_t len; };

static void die(const char *what)
{
    fprintf(stderr, "fuzz_seeds: %s\n", what);
    exit(1);
}

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > sizeof(b->data))
        die("seed too large");
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void save(const char *dir, const char *name, const struct buf *b)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "wb")) == NULL || fwrite(b->data, 1, b->len, f) != b->len
        || fclose(f) != 0)
        die(path);
}

/* ---- server seeds: byte 0, then framed Requests ---------------------- */

static void put_request(struct buf *b, Keystore__Request *r)
{
    uint8_t tmp[8192], hdr[4];
    size_t n = keystore__request__get_packed_size(r);

    if (n > sizeof(tmp))
        die("request too large");
    keystore__request__pack(r, tmp);
    ks_put_be32(hdr, (uint32_t)n);
    put(b, hdr, 4);
    put(b, tmp, n);
}

static void start_server_seed(struct buf *b, uint8_t piece, unsigned version)
{
    Keystore__Request r = KEYSTORE__REQUEST__INIT;
    Keystore__Hello h = KEYSTORE__HELLO__INIT;

    b->len = 0;
    put(b, &piece, 1);
    h.version = version;
    h.client_name = (char *)"seed";
    r.id = 1;
    r.body_case = KEYSTORE__REQUEST__BODY_HELLO;
    r.hello = &h;
    put_request(b, &r);
}

static void sign_seed(const char *dir, const char *file, const char *key, const char *digest,
                      Keystore__Padding pad, size_t tbslen, uint8_t piece)
{
    static struct buf b;
    static uint8_t tbs[256];
    Keystore__Request r = KEYSTORE__REQUEST__INIT;
    Keystore__SignRequest s = KEYSTORE__SIGN_REQUEST__INIT;

    start_server_seed(&b, piece, KS_PROTOCOL_VERSION);
    memset(tbs, 0x5a, sizeof(tbs));
    s.key = (char *)key;
    s.digest = (char *)digest;
    s.padding = pad;
    s.pss_saltlen = -1;
    s.mgf1_digest = (char *)"";
    s.tbs.data = tbs;
    s.tbs.len = tbslen;
    r.id = 2;
    r.body_case = KEYSTORE__REQUEST__BODY_SIGN;
    r.sign = &s;
    put_request(&b, &r);
    save(dir, file, &b);
}

static void server_seeds(const char *dir)
{
    static struct buf b;
    static uint8_t ct[256];
    Keystore__Request r = KEYSTORE__REQUEST__INIT;
    Keystore__GetKeyRequest g = KEYSTORE__GET_KEY_REQUEST__INIT;
    Keystore__DecryptRequest d = KEYSTORE__DECRYPT_REQUEST__INIT;
    Keystore__DeriveRequest dv = KEYSTORE__DERIVE_REQUEST__INIT;
    static uint8_t spki[44];
    Keystore__ListKeysRequest l = KEYSTORE__LIST_KEYS_REQUEST__INIT;
    Keystore__GenerateKeyRequest gen = KEYSTORE__GENERATE_KEY_REQUEST__INIT;

    sign_seed(dir, "sign-rsa", "rsa", "SHA256", KEYSTORE__PADDING__PADDING_PKCS1, 32, 0);
    sign_seed(dir, "sign-rsa-pss", "rsapss", "SHA256", KEYSTORE__PADDING__PADDING_PSS, 32, 3);
    sign_seed(dir, "sign-ec", "ec", "SHA384", KEYSTORE__PADDING__PADDING_UNSPECIFIED, 48, 0);
    sign_seed(dir, "sign-ed25519", "ed25519", "", KEYSTORE__PADDING__PADDING_UNSPECIFIED, 100, 1);
    sign_seed(dir, "sign-ed448", "ed448", "", KEYSTORE__PADDING__PADDING_UNSPECIFIED, 0, 0);

    start_server_seed(&b, 0, KS_PROTOCOL_VERSION);
    g.name = (char *)"ec";
    r.id = 2;
    r.body_case = KEYSTORE__REQUEST__BODY_GET_KEY;
    r.get_key = &g;
    put_request(&b, &r);
    r.id = 3;
    r.body_case = KEYSTORE__REQUEST__BODY_LIST_KEYS;
    r.list_keys = &l;
    put_request(&b, &r);
    save(dir, "getkey-list", &b);

    start_server_seed(&b, 0, KS_PROTOCOL_VERSION);
    memset(ct, 0x11, sizeof(ct));
    d.key = (char *)"rsa";
    d.padding = KEYSTORE__PADDING__PADDING_OAEP;
    d.oaep_digest = (char *)"SHA256";
    d.mgf1_digest = (char *)"";
    d.ciphertext.data = ct;
    d.ciphertext.len = sizeof(ct);
    r.id = 2;
    r.body_case = KEYSTORE__REQUEST__BODY_DECRYPT;
    r.decrypt = &d;
    put_request(&b, &r);
    d.padding = KEYSTORE__PADDING__PADDING_PKCS1_TLS;
    d.tls_client_version = 0x0303;
    d.tls_negotiated_version = 0x0303;
    r.id = 3;
    put_request(&b, &r);
    save(dir, "decrypt", &b);

    /* Derive with X25519: the base point, then a small-order point (all zero) */
    start_server_seed(&b, 0, KS_PROTOCOL_VERSION);
    memset(spki, 0, sizeof(spki));
    memcpy(spki, "\x30\x2a\x30\x05\x06\x03\x2b\x65\x6e\x03\x21\x00", 12);
    spki[12] = 9;
    dv.key = (char *)"x25519";
    dv.peer_public_key_der.data = spki;
    dv.peer_public_key_der.len = sizeof(spki);
    r.id = 2;
    r.body_case = KEYSTORE__REQUEST__BODY_DERIVE;
    r.derive = &dv;
    put_request(&b, &r);
    spki[12] = 0;
    r.id = 3;
    put_request(&b, &r);
    save(dir, "derive", &b);

    start_server_seed(&b, 0, KS_PROTOCOL_VERSION);
    gen.name = (char *)"new";
    gen.type = KEYSTORE__KEY_TYPE__KEY_TYPE_EC;
    r.id = 2;
    r.body_case = KEYSTORE__REQUEST__BODY_GENERATE_KEY;
    r.generate_key = &gen;
    put_request(&b, &r);
    save(dir, "generate-denied", &b);

    start_server_seed(&b, 0, 7);
    save(dir, "hello-bad-version", &b);
}

/* ---- client seeds: op byte, then replies with 2-byte headers ---------- */

static void put_reply(struct buf *b, Keystore__Response *r)
{
    uint8_t tmp[16384], hdr[2];
    size_t n = keystore__response__get_packed_size(r);

    if (n > sizeof(tmp) || n > 0x3fff)
        die("reply too large");
    keystore__response__pack(r, tmp);
    hdr[0] = (uint8_t)(n >> 8);
    hdr[1] = (uint8_t)n;
    put(b, hdr, 2);
    put(b, tmp, n);
}

static void client_seed(const char *dir, const char *file, uint8_t op, EVP_PKEY *pkey,
                         Keystore__KeyType type, const char *group)
{
    static struct buf b;
    static uint8_t sig[1024], pt[48];
    Keystore__Response r = KEYSTORE__RESPONSE__INIT;
    Keystore__HelloReply h = KEYSTORE__HELLO_REPLY__INIT;
    Keystore__KeyInfo ki = KEYSTORE__KEY_INFO__INIT;
    Keystore__SignResponse s = KEYSTORE__SIGN_RESPONSE__INIT;
    Keystore__DecryptResponse d = KEYSTORE__DECRYPT_RESPONSE__INIT;
    unsigned char *spki = NULL;
    int spkilen = i2d_PUBKEY(pkey, &spki);
    uint64_t id = 3;

    if (spkilen <= 0)
        die("i2d_PUBKEY");
    b.len = 0;
    put(&b, &op, 1);
    h.version = KS_PROTOCOL_VERSION;
    h.server_version = (char *)"seed";
    h.max_frame = KS_DEFAULT_MAX_FRAME;
    r.id = 1;
    r.body_case = KEYSTORE__RESPONSE__BODY_HELLO;
    r.hello = &h;
    put_reply(&b, &r);
    ki.name = (char *)"k";
    ki.type = type;
    ki.bits = (uint32_t)EVP_PKEY_get_bits(pkey);
    ki.group = (char *)group;
    ki.public_key_der.data = spki;
    ki.public_key_der.len = (size_t)spkilen;
    r.id = 2;
    r.body_case = KEYSTORE__RESPONSE__BODY_KEY;
    r.key = &ki;
    put_reply(&b, &r);
    if ((op & 3) != 2) {
        memset(sig, 0x42, sizeof(sig));
        s.signature.data = sig;
        s.signature.len = (size_t)EVP_PKEY_get_size(pkey);
        r.id = id++;
        r.body_case = KEYSTORE__RESPONSE__BODY_SIGN;
        r.sign = &s;
        put_reply(&b, &r);
    }
    if ((op & 3) >= 2) {
        memset(pt, 0x17, sizeof(pt));
        d.plaintext.data = pt;
        d.plaintext.len = 32;
        r.id = id;
        r.body_case = KEYSTORE__RESPONSE__BODY_DECRYPT;
        r.decrypt = &d;
        put_reply(&b, &r);
    }
    OPENSSL_free(spki);
    save(dir, file, &b);
}

static void client_seeds(const char *dir)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

    if (rsa == NULL || ec == NULL || ed == NULL)
        die("key generation");
    client_seed(dir, "rsa-sign", 0, rsa, KEYSTORE__KEY_TYPE__KEY_TYPE_RSA, "");
    client_seed(dir, "rsa-pss-sign", 8, rsa, KEYSTORE__KEY_TYPE__KEY_TYPE_RSA, "");
    client_seed(dir, "rsa-decrypt", 2, rsa, KEYSTORE__KEY_TYPE__KEY_TYPE_RSA, "");
    client_seed(dir, "rsa-oaep-small-buffer", 2 | 4 | 8, rsa, KEYSTORE__KEY_TYPE__KEY_TYPE_RSA, "");
    client_seed(dir, "rsa-both", 3, rsa, KEYSTORE__KEY_TYPE__KEY_TYPE_RSA, "");
    client_seed(dir, "ec-sign", 0, ec, KEYSTORE__KEY_TYPE__KEY_TYPE_EC, "P-256");
    client_seed(dir, "ec-digestsign-small", 1 | 4, ec, KEYSTORE__KEY_TYPE__KEY_TYPE_EC, "P-256");
    client_seed(dir, "ed25519-sign", 1, ed, KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519, "");
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        die("usage: fuzz_seeds SERVER_DIR CLIENT_DIR");
    server_seeds(argv[1]);
    client_seeds(argv[2]);
    return 0;
}
