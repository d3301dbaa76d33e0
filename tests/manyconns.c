/* manyconns ADDR N KEY: opens N connections to keystored at once (raising
 * RLIMIT_NOFILE as needed), says Hello on every one, then sends one Sign
 * request (ECDSA P-256 over a distinct digest) on each before reading any
 * reply, and checks every reply: right id, a signature that verifies for
 * that connection's digest.  Exit 0 only if all N were served. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "wire.h"

static int die(const char *fmt, const char *arg)
{
    fprintf(stderr, "manyconns: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 1;
}

static int send_req(int fd, const Keystore__Request *r, char *err)
{
    uint8_t buf[512];
    size_t n = keystore__request__get_packed_size(r);

    if (n > sizeof(buf))
        return -1;
    keystore__request__pack(r, buf);
    return ks_write_frame(fd, buf, n, err, KS_ERRLEN);
}

static Keystore__Response *call(int fd, Keystore__Request *r, char *err)
{
    Keystore__Response *resp = NULL;

    return ks_call(fd, KS_DEFAULT_MAX_FRAME, r, &resp, err, KS_ERRLEN) == 0 ? resp : NULL;
}

int main(int argc, char **argv)
{
    char err[KS_ERRLEN];
    struct rlimit rl;
    int n, i, *fds, served = 0;
    EVP_PKEY *pub = NULL;
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__GetKeyRequest gk = KEYSTORE__GET_KEY_REQUEST__INIT;
    Keystore__SignRequest sr = KEYSTORE__SIGN_REQUEST__INIT;
    Keystore__Response *resp;
    uint8_t dgst[32];

    if (argc != 4)
        return die("%s", "usage: manyconns unix:/path N KEYNAME");
    n = atoi(argv[2]);
    if (n <= 0 || (fds = calloc((size_t)n, sizeof(*fds))) == NULL)
        return die("bad N %s", argv[2]);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return die("%s", "getrlimit");
    if (rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = (rlim_t)n + 64;
        if (rl.rlim_max < rl.rlim_cur)
            rl.rlim_max = rl.rlim_cur;   /* root may raise the hard limit */
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return die("%s", "cannot raise RLIMIT_NOFILE (run as root or raise ulimit -n)");
    }
    for (i = 0; i < n; i++) {
        if ((fds[i] = ks_connect(argv[1], 30000, err, sizeof(err))) < 0)
            return die("connect: %s", err);
    }
    /* every connection is open; now Hello on each */
    for (i = 0; i < n; i++) {
        if (ks_hello(fds[i], "manyconns", NULL, err, sizeof(err)) != 0)
            return die("hello: %s", err);
    }
    gk.name = argv[3];
    req.id = 2;
    req.body_case = KEYSTORE__REQUEST__BODY_GET_KEY;
    req.get_key = &gk;
    if ((resp = call(fds[0], &req, err)) == NULL || resp->body_case != KEYSTORE__RESPONSE__BODY_KEY)
        return die("GetKey %s failed", argv[3]);
    {
        const unsigned char *p = resp->key->public_key_der.data;

        pub = d2i_PUBKEY(NULL, &p, (long)resp->key->public_key_der.len);
    }
    keystore__response__free_unpacked(resp, NULL);
    if (pub == NULL)
        return die("%s", "cannot parse the public key");
    /* all requests in flight at once */
    sr.key = argv[3];
    sr.digest = (char *)"SHA256";
    sr.mgf1_digest = (char *)"";
    sr.tbs.data = dgst;
    sr.tbs.len = sizeof(dgst);
    req.body_case = KEYSTORE__REQUEST__BODY_SIGN;
    req.sign = &sr;
    for (i = 0; i < n; i++) {
        memset(dgst, 0, sizeof(dgst));
        memcpy(dgst, &i, sizeof(i));
        req.id = 1000 + (uint64_t)i;
        if (send_req(fds[i], &req, err) != 0)
            return die("send: %s", err);
    }
    for (i = 0; i < n; i++) {
        uint8_t *in;
        size_t len;
        EVP_PKEY_CTX *v;
        int ok;

        if (ks_read_frame(fds[i], KS_DEFAULT_MAX_FRAME, &in, &len, err, sizeof(err)) != 0)
            return die("reply: %s", err);
        resp = keystore__response__unpack(NULL, len, in);
        free(in);
        if (resp == NULL || resp->id != 1000 + (uint64_t)i
            || resp->body_case != KEYSTORE__RESPONSE__BODY_SIGN)
            return die("%s", "a connection got a wrong or failed reply");
        memset(dgst, 0, sizeof(dgst));
        memcpy(dgst, &i, sizeof(i));
        v = EVP_PKEY_CTX_new(pub, NULL);
        ok = v != NULL && EVP_PKEY_verify_init(v) == 1
             && EVP_PKEY_verify(v, resp->sign->signature.data, resp->sign->signature.len,
                                dgst, sizeof(dgst)) == 1;
        EVP_PKEY_CTX_free(v);
        keystore__response__free_unpacked(resp, NULL);
        if (!ok)
            return die("%s", "a signature does not verify for its connection's digest");
        served++;
    }
    for (i = 0; i < n; i++)
        close(fds[i]);
    EVP_PKEY_free(pub);
    free(fds);
    printf("%d concurrent connections: %d signed and verified\n", n, served);
    return served == n ? 0 : 1;
}
