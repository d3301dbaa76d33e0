/* A key-reference file used the way servers load key files: through
 * PEM_read_bio_PrivateKey (no OSSL_STORE), d2i of the DER form, and
 * SSL_CTX_use_PrivateKey_file as nginx and friends do.  Each loaded key
 * signs, and the signature verifies with the public key alone in the
 * default provider.
 *
 * usage: refload REF.pem REF.der CERT.pem   (provider from OPENSSL_CONF) */
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>

#include "testutil.h"


/* Sign with key, verify with a default-provider copy of its public half. */
static int signs(EVP_PKEY *key)
{
    static const unsigned char msg[] = "signed through a key-reference file";
    unsigned char sig[1024], *der = NULL;
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY *pub = NULL;
    const unsigned char *p;
    int derlen, ok;

    ok = m != NULL && EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, key, NULL) == 1
         && EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(m);
    m = NULL;
    if (ok && (derlen = i2d_PUBKEY(key, &der)) > 0) {
        p = der;
        pub = d2i_PUBKEY_ex(NULL, &p, derlen, NULL, "provider=default");
    }
    ok = ok && pub != NULL && (m = EVP_MD_CTX_new()) != NULL
         && EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, "provider=default", pub, NULL) == 1
         && EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) == 1;
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(pub);
    OPENSSL_free(der);
    return ok;
}

int main(int argc, char **argv)
{
    EVP_PKEY *k = NULL;
    SSL_CTX *ssl;
    BIO *b;

    if (argc != 4) {
        fprintf(stderr, "usage: refload REF.pem REF.der CERT.pem\n");
        return 2;
    }
    if ((b = BIO_new_file(argv[1], "r")) != NULL)
        k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    tu_check(k != NULL && signs(k), "PEM_read_bio_PrivateKey on the reference, then sign");
    EVP_PKEY_free(k);
    k = NULL;

    if ((b = BIO_new_file(argv[2], "rb")) != NULL)
        k = d2i_PrivateKey_bio(b, NULL);
    BIO_free(b);
    tu_check(k != NULL && signs(k), "d2i_PrivateKey_bio on the DER reference, then sign");
    EVP_PKEY_free(k);

    ssl = SSL_CTX_new(TLS_server_method());
    tu_check(ssl != NULL && SSL_CTX_use_certificate_file(ssl, argv[3], SSL_FILETYPE_PEM) == 1
          && SSL_CTX_use_PrivateKey_file(ssl, argv[1], SSL_FILETYPE_PEM) == 1
          && SSL_CTX_check_private_key(ssl) == 1,
          "SSL_CTX_use_PrivateKey_file on the reference matches the certificate");
    SSL_CTX_free(ssl);
    printf("%d failure(s)\n", tu_failures);
    return tu_failures == 0 ? 0 : 1;
}
