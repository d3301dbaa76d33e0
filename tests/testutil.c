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

int tu_sign_verify(EVP_PKEY *key, const unsigned char *msg, size_t n)
{
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    const char *md = EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448") ? NULL
                                                                                : "SHA256";
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestSignInit_ex(c, NULL, md, NULL, NULL, key, NULL) == 1
             && EVP_DigestSign(c, sig, &siglen, msg, n) == 1;

    EVP_MD_CTX_free(c);
    if (!ok)
        return 0;
    c = EVP_MD_CTX_new();
    ok = c != NULL && EVP_DigestVerifyInit_ex(c, NULL, md, NULL, NULL, key, NULL) == 1
         && EVP_DigestVerify(c, sig, siglen, msg, n) == 1;
    EVP_MD_CTX_free(c);
    return ok ? 1 : -1;
}
