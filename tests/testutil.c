/* See testutil.h. */
#include "testutil.h"

#include <openssl/err.h>
#include <openssl/store.h>
#include <stdio.h>

int tu_failures;

EVP_PKEY *tu_load_pkey(const char *uri)
{
    OSSL_STORE_CTX *s = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    EVP_PKEY *pkey = NULL;

    while (s != NULL && pkey == NULL && !OSSL_STORE_eof(s)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(s);

        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(s);
    return pkey;
}

void tu_check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) {
        tu_failures++;
        ERR_print_errors_fp(stdout);
    }
}
