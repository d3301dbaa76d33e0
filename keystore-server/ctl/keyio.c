/* keystorectl local file input/output: private keys, certificates,
 * public keys.  Secrets (passphrases, private key DER) are wiped. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "ctl.h"

#define PASS_MAX 1024
#define KEY_FILE_MAX (1024 * 1024)

void ctl_err(const char *fmt, ...)
{
    va_list ap;

    fputs("keystorectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *ossl_reason(void)
{
    static char buf[256];
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    snprintf(buf, sizeof(buf), "%s", r != NULL ? r : "unknown error");
    ERR_clear_error();
    return buf;
}

/* Resolve a --passin spec into pass (NUL-terminated).  0 or -1 with *code. */
static int get_passin(const char *spec, char *pass, size_t len, int *code)
{
    if (strncmp(spec, "pass:", 5) == 0) {
        if (strlen(spec + 5) >= len)
            goto too_long;
        strcpy(pass, spec + 5);
        return 0;
    }
    if (strncmp(spec, "env:", 4) == 0) {
        const char *v = getenv(spec + 4);

        if (v == NULL) {
            ctl_err("--passin %s: environment variable %s is not set", spec, spec + 4);
            *code = CTL_INPUT;
            return -1;
        }
        if (strlen(v) >= len)
            goto too_long;
        strcpy(pass, v);
        return 0;
    }
    if (strncmp(spec, "file:", 5) == 0) {
        FILE *f = fopen(spec + 5, "re");
        char *nl;

        if (f == NULL) {
            ctl_err("--passin: cannot open %s: %s", spec + 5, strerror(errno));
            *code = CTL_INPUT;
            return -1;
        }
        if (fgets(pass, (int)len, f) == NULL)
            pass[0] = '\0';
        fclose(f);
        nl = strpbrk(pass, "\r\n");   /* the first line is the passphrase */
        if (nl != NULL)
            *nl = '\0';
        return 0;
    }
    ctl_err("--passin '%s' is not understood: use pass:TEXT, env:VAR or file:PATH", spec);
    *code = CTL_USAGE;
    return -1;
too_long:
    ctl_err("--passin: the passphrase is longer than %zu characters", len - 1);
    *code = CTL_INPUT;
    return -1;
}

/* Read a key file into a sodium_malloc'd buffer so no unwiped copy (such as
 * a stdio buffer) of an unencrypted private key is left behind. */
static int read_secret_file(const char *path, uint8_t **out, size_t *outlen)
{
    struct stat st;
    size_t got = 0;
    uint8_t *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        ctl_err("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > KEY_FILE_MAX) {
        ctl_err("%s is not a regular file of 1 to %d bytes", path, KEY_FILE_MAX);
        close(fd);
        return -1;
    }
    buf = sodium_malloc((size_t)st.st_size);
    if (buf == NULL) {
        ctl_err("out of memory reading %s", path);
        close(fd);
        return -1;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ctl_err("reading %s: %s", path, r < 0 ? strerror(errno) : "file shrank");
            sodium_free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *outlen = got;
    return 0;
}

struct pw_state {
    const char *pass;    /* NULL: none given */
    int asked;           /* the key turned out to be encrypted */
};

static int pw_cb(char *buf, int size, int rwflag, void *u)
{
    struct pw_state *st = u;
    size_t n;

    (void)rwflag;
    st->asked = 1;
    if (st->pass == NULL) {
        /* interactive use: prompt on the terminal */
        if (isatty(STDIN_FILENO))
            return PEM_def_callback(buf, size, 0, NULL);
        return -1;
    }
    n = strlen(st->pass);
    if (n > (size_t)size)
        return -1;
    memcpy(buf, st->pass, n);
    return (int)n;
}

EVP_PKEY *ctl_read_private_key(const char *path, const char *passin, int *code)
{
    char pass[PASS_MAX];
    struct pw_state st = { NULL, 0 };
    OSSL_DECODER_CTX *dctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIO *in = NULL;
    uint8_t *buf = NULL;
    size_t buflen = 0;

    *code = CTL_INPUT;
    if (passin != NULL) {
        if (get_passin(passin, pass, sizeof(pass), code) != 0)
            return NULL;
        st.pass = pass;
    }
    if (read_secret_file(path, &buf, &buflen) != 0)
        goto out;
    in = BIO_new_mem_buf(buf, (int)buflen);
    if (in == NULL) {
        ctl_err("out of memory");
        goto out;
    }
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, NULL, NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
    if (dctx == NULL || OSSL_DECODER_CTX_set_pem_password_cb(dctx, pw_cb, &st) != 1) {
        ctl_err("cannot set up OpenSSL's key decoder: %s", ossl_reason());
        goto out;
    }
    if (OSSL_DECODER_from_bio(dctx, in) != 1 || pkey == NULL) {
        if (st.asked && st.pass == NULL)
            ctl_err("%s is encrypted: give its passphrase with --passin pass:TEXT|env:VAR|file:PATH",
                    path);
        else if (st.asked)
            ctl_err("cannot decrypt %s: wrong passphrase?", path);
        else
            ctl_err("%s does not contain a private key in PEM or DER form", path);
        ERR_clear_error();
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
out:
    OSSL_DECODER_CTX_free(dctx);
    BIO_free(in);
    if (buf != NULL)
        sodium_free(buf);   /* wipes the key file's contents */
    sodium_memzero(pass, sizeof(pass));
    return pkey;
}

int ctl_pkcs8_der(EVP_PKEY *pkey, uint8_t **der, size_t *len)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
    unsigned char *p;
    int n;

    *der = NULL;
    if (p8 == NULL || (n = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL)) <= 0 ||
        (*der = sodium_malloc((size_t)n)) == NULL) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        return -1;
    }
    p = *der;
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != n) {
        PKCS8_PRIV_KEY_INFO_free(p8);
        sodium_free(*der);
        *der = NULL;
        return -1;
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
    *len = (size_t)n;
    return 0;
}

static int push_cert(X509 *x, uint8_t ***ders, size_t **lens, size_t *n)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    uint8_t **nd;
    size_t *nl;

    if (len <= 0)
        return -1;
    nd = realloc(*ders, (*n + 1) * sizeof(**ders));
    if (nd == NULL) {
        OPENSSL_free(der);
        return -1;
    }
    *ders = nd;
    nl = realloc(*lens, (*n + 1) * sizeof(**lens));
    if (nl == NULL) {
        OPENSSL_free(der);
        return -1;
    }
    *lens = nl;
    (*ders)[*n] = der;
    (*lens)[*n] = (size_t)len;
    (*n)++;
    return 0;
}

int ctl_read_certs(const char *path, uint8_t ***ders, size_t **lens, size_t *n)
{
    size_t before = *n;
    BIO *in = BIO_new_file(path, "rb");
    X509 *x;

    if (in == NULL) {
        ctl_err("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        int r = push_cert(x, ders, lens, n);

        X509_free(x);
        if (r != 0) {
            ctl_err("out of memory reading %s", path);
            BIO_free(in);
            return -1;
        }
    }
    ERR_clear_error();
    if (*n == before) {
        /* not PEM: maybe a single DER certificate */
        if (BIO_reset(in) == 0 && (x = d2i_X509_bio(in, NULL)) != NULL) {
            int r = push_cert(x, ders, lens, n);

            X509_free(x);
            if (r != 0) {
                ctl_err("out of memory reading %s", path);
                BIO_free(in);
                return -1;
            }
        }
        ERR_clear_error();
    }
    BIO_free(in);
    if (*n == before) {
        ctl_err("%s contains no certificate (PEM or DER)", path);
        return -1;
    }
    return 0;
}

int ctl_write_pubkey_as(const uint8_t *spki, size_t len, const char *path, const char *json_name)
{
    const unsigned char *p = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)len);
    BIO *out;
    int rc = -1;

    if (pub == NULL) {
        ctl_err("the server sent a public key that does not parse: protocol error");
        ERR_clear_error();
        return -2;
    }
    /* --json without -o: the PEM goes into the JSON object, via memory */
    if (path != NULL)
        out = BIO_new_file(path, "w");
    else
        out = json_name != NULL ? BIO_new(BIO_s_mem()) : BIO_new_fp(stdout, BIO_NOCLOSE);
    if (out == NULL) {
        ctl_err("cannot create %s: %s", path != NULL ? path : "stdout", strerror(errno));
    } else if (PEM_write_bio_PUBKEY(out, pub) != 1 || BIO_flush(out) != 1) {
        ctl_err("writing %s failed: %s", path != NULL ? path : "stdout", ossl_reason());
    } else {
        rc = 0;
    }
    if (rc == 0 && json_name != NULL) {
        char *pem = NULL;

        printf("{\"name\": ");
        ctl_json_string(json_name);
        if (path != NULL) {
            printf(", \"file\": ");
            ctl_json_string(path);
        } else {
            /* NUL-terminate the PEM text, then print it as a JSON string */
            if (BIO_write(out, "", 1) != 1 || BIO_get_mem_data(out, &pem) <= 0) {
                ctl_err("out of memory");
                rc = -1;
                pem = NULL;
            }
            printf(", \"public_key_pem\": ");
            ctl_json_string(pem);
        }
        printf("}\n");
    }
    BIO_free(out);
    EVP_PKEY_free(pub);
    return rc;
}
