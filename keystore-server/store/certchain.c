/* Certificate chain checks; see certchain.h. */
#include "certchain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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

/* RFC 2253 form, "CN=www.example.com,O=Example" */
static void name_text(const X509_NAME *name, char *out, size_t outlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n;

    snprintf(out, outlen, "(unprintable)");
    if (b != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_read(b, out, (int)outlen - 1);
        if (n > 0)
            out[n] = '\0';
        else
            snprintf(out, outlen, "(empty)");
    }
    BIO_free(b);
}

/* 0 if x[i + 1] issued x[i]: the issuer name (and key identifiers, key
 * usage) fit and x[i]'s signature verifies with x[i + 1]'s key. */
static int link_fits(X509 *const *x, size_t i, char *why, size_t whylen)
{
    char subj[256], issuer[256], next[256];
    EVP_PKEY *pub = X509_get0_pubkey(x[i + 1]);
    int err = X509_check_issued(x[i + 1], x[i]);

    if (err == X509_V_OK && pub != NULL && X509_verify(x[i], pub) == 1)
        return 0;
    name_text(X509_get_subject_name(x[i]), subj, sizeof(subj));
    name_text(X509_get_issuer_name(x[i]), issuer, sizeof(issuer));
    name_text(X509_get_subject_name(x[i + 1]), next, sizeof(next));
    if (err != X509_V_OK)
        snprintf(why, whylen, "certificate %zu (%s) was not issued by certificate %zu (%s): %s "
                 "(its issuer is %s); attach the chain leaf first, each certificate followed by "
                 "its issuer", i + 1, subj, i + 2, next, X509_verify_cert_error_string(err), issuer);
    else
        snprintf(why, whylen, "certificate %zu (%s) was not issued by certificate %zu (%s): the "
                 "names match but the signature does not verify with its key", i + 1, subj, i + 2, next);
    return -1;
}

int ks_cert_chain_check(EVP_PKEY *pkey, const char *key_name,
                        const struct ks_cert *certs, size_t ncerts, int check_links,
                        size_t *bad_index, char *why, size_t whylen)
{
    char subject[256];
    X509 *x[KS_MAX_CHAIN] = { NULL };
    EVP_PKEY *pub;
    size_t i, used;
    int rc = 0;

    if (ncerts > KS_MAX_CHAIN)
        return -1;
    for (i = 0; i < ncerts; i++) {
        x[i] = parse_one(certs[i].der, certs[i].len, &used);
        if (x[i] == NULL || used != certs[i].len) {
            *bad_index = i;
            snprintf(why, whylen, "certificate %zu of the chain is not a DER X.509 certificate", i + 1);
            rc = -1;
            goto out;
        }
    }
    if (ncerts == 0)
        goto out;
    pub = X509_get0_pubkey(x[0]);
    if (pub == NULL || EVP_PKEY_eq(pub, pkey) != 1) {
        name_text(X509_get_subject_name(x[0]), subject, sizeof(subject));
        snprintf(why, whylen, "certificate subject %s does not match key %s", subject, key_name);
        *bad_index = 0;
        rc = -2;
        goto out;
    }
    for (i = 0; check_links && i + 1 < ncerts; i++) {
        if (link_fits(x, i, why, whylen) != 0) {
            *bad_index = i + 1;
            rc = -3;
            goto out;
        }
    }
out:
    for (i = 0; i < ncerts; i++)
        X509_free(x[i]);
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
