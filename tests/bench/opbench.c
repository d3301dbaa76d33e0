/* opbench: the server's own request path (ks_handle_frame plus packing the
 * reply), in-process, without sockets: for counting instructions per
 * operation with callgrind (repeatable on a loaded machine, unlike time).
 *
 *   opbench MASTER_KEY EMPTY_KEY_DIR ALG N     ALG: p256, ed25519, rsa2048, rsa2048-pss
 *   valgrind --tool=callgrind --toggle-collect=ks_handle_frame opbench ...
 *
 * The key is made in a fresh store in EMPTY_KEY_DIR; the requests come from
 * an admin session (the access list is not what is measured). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "common/arena.h"
#include "common/config.h"
#include "ops/dispatch.h"
#include "store/keytable.h"
#include "store/masterkey.h"

static size_t frame(uint8_t **out, Keystore__Request *req)
{
    size_t len = keystore__request__get_packed_size(req);

    *out = malloc(len);
    if (*out == NULL)
        exit(1);
    keystore__request__pack(req, *out);
    return len;
}

int main(int argc, char **argv)
{
    static struct ks_config cfg;
    struct ks_session s;
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__SignRequest sr = KEYSTORE__SIGN_REQUEST__INIT;
    Keystore__Hello hello = KEYSTORE__HELLO__INIT;
    uint8_t tbs[64] = { 1, 2, 3 }, *f, *out = malloc(65536);
    EVP_PKEY *pkey;
    char err[256], conf[4200];
    size_t len;
    long i, n;
    FILE *fp;
    struct timespec t0, t1;

    if (argc != 5 || (n = atol(argv[4])) <= 0) {
        fprintf(stderr, "usage: opbench MASTER_KEY EMPTY_KEY_DIR p256|ed25519|rsa2048|rsa2048-pss N\n");
        return 1;
    }
    snprintf(conf, sizeof(conf), "%s.opbench.conf", argv[1]);
    if ((fp = fopen(conf, "w")) == NULL)
        return 1;
    fprintf(fp, "key_dir = %s\nmaster_key = %s\n", argv[2], argv[1]);
    fclose(fp);
    if (sodium_init() < 0 || ks_config_load(&cfg, conf) != 0 || ks_master_load(argv[1]) != 0 ||
        ks_store_open(argv[2], NULL) != 0)
        return 1;
    pkey = strcmp(argv[3], "p256") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
         : strcmp(argv[3], "ed25519") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
         : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (pkey == NULL || ks_store_add("bench", pkey, KS_USAGE_SIGN, NULL, err, sizeof(err)) != KS_STORE_OK) {
        fprintf(stderr, "opbench: %s\n", err);
        return 1;
    }
    memset(&s, 0, sizeof(s));
    s.is_admin = 1;
    hello.version = KS_PROTOCOL_VERSION;
    req.body_case = KEYSTORE__REQUEST__BODY_HELLO;
    req.hello = &hello;
    sr.key = (char *)"bench";
    if (strcmp(argv[3], "ed25519") == 0) {
        sr.tbs.data = tbs;
        sr.tbs.len = 64;
    } else {
        sr.digest = (char *)"SHA256";
        sr.tbs.data = tbs;
        sr.tbs.len = 32;
        if (strcmp(argv[3], "rsa2048") == 0)
            sr.padding = KEYSTORE__PADDING__PADDING_PKCS1;
        if (strcmp(argv[3], "rsa2048-pss") == 0) {   /* what TLS 1.3 asks of an RSA key */
            sr.padding = KEYSTORE__PADDING__PADDING_PSS;
            sr.pss_saltlen = -1;
            sr.mgf1_digest = (char *)"SHA256";
        }
    }
    for (i = -1; i < n; i++) {   /* i = -1: the Hello */
        struct ks_arena arena = KS_ARENA_INIT;
        Keystore__Response resp = KEYSTORE__RESPONSE__INIT;

        if (i == 0) {
            req.body_case = KEYSTORE__REQUEST__BODY_SIGN;
            req.sign = &sr;
            clock_gettime(CLOCK_MONOTONIC, &t0);
        }
        req.id = (uint64_t)(i + 2);
        len = frame(&f, &req);
        ks_handle_frame(&cfg, &s, f, len, &arena, &resp);
        if (resp.body_case == KEYSTORE__RESPONSE__BODY_ERROR) {
            fprintf(stderr, "opbench: %s\n", resp.error->message);
            return 1;
        }
        if (keystore__response__get_packed_size(&resp) > 65536)
            return 1;
        keystore__response__pack(&resp, out);
        ks_arena_free(&arena);
        free(f);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: %.1f us per request (in-process, wall clock)\n", argv[3],
           ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / n);
    EVP_PKEY_free(pkey);
    ks_store_close();
    ks_master_unload();
    free(out);
    return 0;
}
