/* A libcrypto program as users write them: the provider comes from
 * openssl.cnf (OPENSSL_CONF), the key from OSSL_STORE_open("keystore:NAME").
 * It signs, verifies with the key object, and verifies again with the public
 * key re-imported into the default provider, which proves the signature is
 * real and not merely self-consistent. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static int die(const char *what)
{
    fprintf(stderr, "store_api: %s\n", what);
    ERR_print_errors_fp(stderr);
    return 1;
}

int main(int argc, char **argv)
{
    static const unsigned char msg[] = "keystore store API test message";
    EVP_PKEY *pkey = NULL, *pub = NULL;
    unsigned char sig[1024], *der = NULL;
    const unsigned char *p;
    size_t siglen = sizeof(sig);
    int derlen, ed, rc = 1;
    EVP_MD_CTX *md = NULL;

    if (argc != 2)
        return die("usage: store_api keystore:NAME");
    pkey = tu_load_pkey(argv[1]);
    if (pkey == NULL)
        return die("no private key loaded");
    ed = EVP_PKEY_is_a(pkey, "ED25519") || EVP_PKEY_is_a(pkey, "ED448");

    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit_ex(md, NULL, ed ? NULL : "SHA256", NULL, NULL, pkey, NULL) != 1
        || EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) != 1) {
        rc = die("signing failed");
        goto out;
    }
    EVP_MD_CTX_free(md);
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit_ex(md, NULL, ed ? NULL : "SHA256", NULL, NULL, pkey, NULL) != 1
        || EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) != 1) {
        rc = die("verification with the key object failed");
        goto out;
    }
    derlen = i2d_PUBKEY(pkey, &der);
    p = der;
    if (derlen <= 0 || (pub = d2i_PUBKEY_ex(NULL, &p, derlen, NULL, "provider=default")) == NULL) {
        rc = die("exporting the public key failed");
        goto out;
    }
    EVP_MD_CTX_free(md);
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit_ex(md, NULL, ed ? NULL : "SHA256", NULL, "provider=default", pub, NULL) != 1
        || EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) != 1) {
        rc = die("verification by the default provider failed");
        goto out;
    }
    /* the private half must not be extractable */
    {
        BIGNUM *d = NULL;

        if (EVP_PKEY_get_bn_param(pkey, "d", &d) == 1 || EVP_PKEY_get_bn_param(pkey, "priv", &d) == 1) {
            BN_free(d);
            rc = die("private key parameter was exported");
            goto out;
        }
    }
    printf("store_api: %s signed %zu bytes, verified twice\n", argv[1], siglen);
    rc = 0;
out:
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(pkey);
    return rc;
}
