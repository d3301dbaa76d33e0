/* Certificate chain checks; see certchain.h. */
#include "certchain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/x509.h>

static X509 *parse_one(const uint8_t *der, size_t len, size_t *used)
{
    const unsigned char *p = der;
    X509 *x;

    if (len == 0 || len > (size_t)0x7fffffff)
        return NULL;
    x = d2i_X509(NULL, &p, (long)len);
    if (x != NULL)
        *used = (size_t)(p - der);
    return x;
}

int ks_cert_chain_check(EVP_PKEY *pkey, const char *key_name,
                        const struct ks_cert *certs, size_t ncerts,
                        size_t *bad_index, char *why, size_t whylen)
{
    char subject[256] = "(unprintable)";
    EVP_PKEY *pub;
    X509 *leaf = NULL;
    size_t i, used;
    int rc;

    for (i = 0; i < ncerts; i++) {
        X509 *x = parse_one(certs[i].der, certs[i].len, &used);

        if (x == NULL || used != certs[i].len) {
            X509_free(x);
            X509_free(leaf);
            *bad_index = i;
            snprintf(why, whylen, "certificate %zu of the chain is not a DER X.509 certificate", i + 1);
            return -1;
        }
        if (i == 0)
            leaf = x;
        else
            X509_free(x);
    }
    if (leaf == NULL)
        return 0;
    pub = X509_get0_pubkey(leaf);
    rc = (pub != NULL && EVP_PKEY_eq(pub, pkey) == 1) ? 0 : -2;
    if (rc != 0) {
        BIO *b = BIO_new(BIO_s_mem());

        /* RFC 2253 form, "CN=www.example.com,O=Example" */
        if (b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253) >= 0) {
            int n = BIO_read(b, subject, sizeof(subject) - 1);

            if (n > 0)
                subject[n] = '\0';
            else
                strcpy(subject, "(empty)");
        }
        BIO_free(b);
        snprintf(why, whylen, "certificate subject %s does not match key %s", subject, key_name);
    }
    X509_free(leaf);
    return rc;
}

int ks_cert_split(const uint8_t *buf, size_t len, struct ks_cert **certs, size_t *ncerts)
{
    struct ks_cert *out = NULL;
    size_t n = 0, off = 0;

    *certs = NULL;
    *ncerts = 0;
    while (off < len) {
        size_t used;
        X509 *x = parse_one(buf + off, len - off, &used);
        struct ks_cert *grown;

        if (x == NULL || n >= KS_MAX_CHAIN) {
            X509_free(x);
            free(out);
            return -1;
        }
        X509_free(x);
        grown = realloc(out, (n + 1) * sizeof(*out));
        if (grown == NULL) {
            free(out);
            return -1;
        }
        out = grown;
        out[n].der = (uint8_t *)buf + off;
        out[n].len = used;
        n++;
        off += used;
    }
    *certs = out;
    *ncerts = n;
    return 0;
}
