/* statsflood ADDR KEY N_OK N_MISSING: a known number of Sign requests on
 * one connection, for the status/metrics test.  KEY is an EC key: N_OK
 * signatures succeed; then N_MISSING requests name distinct keys that do
 * not exist (valid names: each could become a metrics label, so the
 * server must bound them), then three name keys with characters that
 * would break the Prometheus text format or a JSON string if they reached
 * a label.  Checks every reply's code; prints "ok=N missing=N hostile=N". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire.h"

static int sign(int fd, size_t max_frame, uint64_t id, const char *key, Keystore__ErrorCode want)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__SignRequest s = KEYSTORE__SIGN_REQUEST__INIT;
    Keystore__Response *resp;
    uint8_t tbs[32];
    char err[KS_ERRLEN];
    int ok;

    memset(tbs, 0x5a, sizeof(tbs));
    s.key = (char *)key;
    s.digest = (char *)"SHA256";
    s.tbs.data = tbs;
    s.tbs.len = sizeof(tbs);
    req.id = id;
    req.body_case = KEYSTORE__REQUEST__BODY_SIGN;
    req.sign = &s;
    if (ks_call(fd, max_frame, &req, &resp, err, sizeof(err)) != 0) {
        fprintf(stderr, "FAIL: sign with '%s': %s\n", key, err);
        return -1;
    }
    if (want == KEYSTORE__ERROR_CODE__ERROR_NONE)
        ok = resp->body_case == KEYSTORE__RESPONSE__BODY_SIGN;
    else
        ok = resp->body_case == KEYSTORE__RESPONSE__BODY_ERROR && resp->error->code == want;
    if (!ok)
        fprintf(stderr, "FAIL: sign with '%s': unexpected reply (body %d, code %d)\n", key,
                (int)resp->body_case, resp->body_case == KEYSTORE__RESPONSE__BODY_ERROR ?
                (int)resp->error->code : 0);
    keystore__response__free_unpacked(resp, NULL);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const char *const hostile[] = {
        "web\"} 1\nkeystore_up 0\n#", "back\\slash", "new\nline",
    };
    char err[KS_ERRLEN], name[32];
    size_t max_frame;
    uint64_t id = 2;
    long i, n_ok, n_missing;
    int fd;

    if (argc != 5) {
        fprintf(stderr, "usage: statsflood ADDR KEY N_OK N_MISSING\n");
        return 2;
    }
    n_ok = atol(argv[3]);
    n_missing = atol(argv[4]);
    fd = ks_connect(argv[1], 10000, err, sizeof(err));
    if (fd < 0 || ks_hello(fd, "statsflood", &max_frame, err, sizeof(err)) != 0) {
        fprintf(stderr, "FAIL: %s\n", err);
        return 1;
    }
    for (i = 0; i < n_ok; i++)
        if (sign(fd, max_frame, id++, argv[2], KEYSTORE__ERROR_CODE__ERROR_NONE) != 0)
            return 1;
    for (i = 0; i < 3; i++)
        if (sign(fd, max_frame, id++, hostile[i], KEYSTORE__ERROR_CODE__ERROR_BAD_REQUEST) != 0)
            return 1;
    for (i = 0; i < n_missing; i++) {
        snprintf(name, sizeof(name), "nokey-%ld", i);
        if (sign(fd, max_frame, id++, name, KEYSTORE__ERROR_CODE__ERROR_NO_SUCH_KEY) != 0)
            return 1;
    }
    close(fd);
    printf("ok=%ld missing=%ld hostile=3\n", n_ok, n_missing);
    return 0;
}
