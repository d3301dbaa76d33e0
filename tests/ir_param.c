/* The "implicit-rejection" decryption parameter (OpenSSL 3.2's
 * OSSL_ASYM_CIPHER_PARAM_IMPLICIT_REJECTION, what "-pkeyopt
 * rsa_pkcs1_implicit_rejection:N" becomes there) on a keystore key: 0 is
 * refused with a reason, since explicit rejection is the Bleichenbacher
 * oracle; 1 is accepted and reads back as 1.
 *
 * usage: ir_param keystore:NAME   (provider from OPENSSL_CONF) */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static int set_ir(EVP_PKEY *key, unsigned int on, char *reason, size_t len)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    OSSL_PARAM params[2];
    unsigned long e;
    const char *data;
    int flags, ok;

    params[0] = OSSL_PARAM_construct_uint("implicit-rejection", &on);
    params[1] = OSSL_PARAM_construct_end();
    ERR_clear_error();
    ok = c != NULL && EVP_PKEY_decrypt_init(c) == 1
         && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1
         && EVP_PKEY_CTX_set_params(c, params) == 1;
    reason[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0)
        if ((flags & ERR_TXT_STRING) != 0 && reason[0] == '\0')
            snprintf(reason, len, "%s", data);
    if (ok && on == 1) {
        unsigned int back = 0;

        params[0] = OSSL_PARAM_construct_uint("implicit-rejection", &back);
        ok = EVP_PKEY_CTX_get_params(c, params) == 1 && back == 1;
    }
    EVP_PKEY_CTX_free(c);
    return ok;
}

int main(int argc, char **argv)
{
    char reason[512];
    EVP_PKEY *key;

    if (argc != 2 || (key = tu_load_pkey(argv[1])) == NULL) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "usage: ir_param keystore:NAME\n");
        return 2;
    }
    tu_check(!set_ir(key, 0, reason, sizeof(reason))
             && strstr(reason, "implicit rejection cannot be turned off") != NULL,
             "implicit-rejection = 0 refused with a reason");
    printf("-- %s\n", reason);
    tu_check(set_ir(key, 1, reason, sizeof(reason)), "implicit-rejection = 1 accepted, reads back 1");
    EVP_PKEY_free(key);
    printf("%d failure(s)\n", tu_failures);
    return tu_failures == 0 ? 0 : 1;
}
