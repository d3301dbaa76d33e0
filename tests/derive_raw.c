/* derive_raw ADDR KEY SPKI.der: a client that skips the provider (and
 * OpenSSL's decoding of the peer key) and sends a Derive request with the
 * given bytes as the peer's public key, as a hostile client could.
 * Prints "secret HEX" (exit 0) or "error CODE: MESSAGE" (exit 3); other
 * failures exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire.h"

int main(int argc, char **argv)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__DeriveRequest dr = KEYSTORE__DERIVE_REQUEST__INIT;
    Keystore__Response *resp = NULL;
    static uint8_t der[8192];
    char err[KS_ERRLEN];
    size_t max_frame, n, i;
    FILE *f;
    int fd, rc = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: derive_raw ADDR KEY SPKI.der\n");
        return 1;
    }
    if ((f = fopen(argv[3], "rb")) == NULL) {
        perror(argv[3]);
        return 1;
    }
    n = fread(der, 1, sizeof(der), f);
    fclose(f);
    fd = ks_connect(argv[1], 10000, err, sizeof(err));
    if (fd < 0 || ks_hello(fd, "derive_raw", &max_frame, err, sizeof(err)) != 0) {
        fprintf(stderr, "derive_raw: %s\n", err);
        return 1;
    }
    dr.key = argv[2];
    dr.peer_public_key_der.data = der;
    dr.peer_public_key_der.len = n;
    req.id = 2;
    req.body_case = KEYSTORE__REQUEST__BODY_DERIVE;
    req.derive = &dr;
    if (ks_call(fd, max_frame, &req, &resp, err, sizeof(err)) != 0) {
        fprintf(stderr, "derive_raw: %s\n", err);
        close(fd);
        return 1;
    }
    if (resp->body_case == KEYSTORE__RESPONSE__BODY_DERIVE && resp->derive != NULL) {
        printf("secret ");
        for (i = 0; i < resp->derive->secret.len; i++)
            printf("%02x", resp->derive->secret.data[i]);
        printf("\n");
        rc = 0;
    } else if (resp->body_case == KEYSTORE__RESPONSE__BODY_ERROR && resp->error != NULL) {
        printf("error %s: %s\n", ks_error_code_name(resp->error->code), resp->error->message);
        rc = 3;
    } else {
        fprintf(stderr, "derive_raw: unexpected reply\n");
    }
    keystore__response__free_unpacked(resp, NULL);
    close(fd);
    return rc;
}
