/* keystorectl output: aligned tables for people, JSON for scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/x509.h>

#include "ctl.h"

void ctl_json_string(const char *s)
{
    putchar('"');
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void iso_time(uint64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
}

/* Subject, issuer (RFC 2253) and not-after of one DER certificate, parsed
 * here: the server sends the certificates as they were attached. */
struct cert_facts {
    char subject[256], issuer[256];
    time_t not_after;
};

static void name_text(const X509_NAME *name, char *out, size_t outlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n;

    snprintf(out, outlen, "?");
    if (b != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_read(b, out, (int)outlen - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

static int cert_facts(const ProtobufCBinaryData *der, struct cert_facts *f)
{
    const unsigned char *p = der->data;
    struct tm tm;
    X509 *x;

    if (der->len == 0 || der->len > 0x7fffffff || (x = d2i_X509(NULL, &p, (long)der->len)) == NULL)
        return -1;
    name_text(X509_get_subject_name(x), f->subject, sizeof(f->subject));
    name_text(X509_get_issuer_name(x), f->issuer, sizeof(f->issuer));
    memset(&tm, 0, sizeof(tm));
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
        X509_free(x);
        return -1;
    }
    f->not_after = timegm(&tm);
    X509_free(x);
    return 0;
}

int ctl_leaf_not_after(const Keystore__KeyInfo *k, time_t *t)
{
    struct cert_facts f;

    if (k->n_cert_chain_der == 0 || cert_facts(&k->cert_chain_der[0], &f) != 0)
        return -1;
    *t = f.not_after;
    return 0;
}

static void json_certs(const Keystore__KeyInfo *k)
{
    struct cert_facts f;
    char iso[32];
    size_t i;

    printf(", \"certificates\": [");
    for (i = 0; i < k->n_cert_chain_der; i++) {
        printf(i > 0 ? ", " : "");
        if (cert_facts(&k->cert_chain_der[i], &f) != 0) {
            printf("{\"error\": \"unparsable certificate\"}");
            continue;
        }
        iso_time((uint64_t)f.not_after, iso, sizeof(iso));
        printf("{\"subject\": ");
        ctl_json_string(f.subject);
        printf(", \"issuer\": ");
        ctl_json_string(f.issuer);
        printf(", \"not_after\": %lld, \"not_after_iso\": ", (long long)f.not_after);
        ctl_json_string(iso);
        printf("}");
    }
    printf("]");
}

/* "2048", "P-256", or "-" for EdDSA where the size is implied by the type. */
static void size_column(const Keystore__KeyInfo *k, char *buf, size_t len)
{
    if (k->group != NULL && k->group[0] != '\0')
        snprintf(buf, len, "%s", k->group);
    else if (k->type == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA ||
             k->type == KEYSTORE__KEY_TYPE__KEY_TYPE_RSA_PSS)
        snprintf(buf, len, "%u", k->bits);
    else
        snprintf(buf, len, "-");
}

/* "sign", "decrypt" as JSON array elements. */
static void json_usage(uint32_t usage)
{
    char buf[KS_USAGE_TEXT_MAX], *p, *save = NULL;
    int first = 1;

    if (usage == 0)
        return;
    ks_usage_format(usage, buf);
    for (p = strtok_r(buf, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
        printf(first ? "" : ", ");
        ctl_json_string(p);
        first = 0;
    }
}

static void json_versions(const Keystore__KeyInfo *k)
{
    char t[32];
    size_t i;

    printf(", \"version\": %u, \"versions\": [", k->version);
    for (i = 0; i < k->n_versions; i++) {
        const Keystore__KeyVersionInfo *v = k->versions[i];

        iso_time(v->created, t, sizeof(t));
        printf("%s{\"version\": %u, \"current\": %s, \"created\": %llu, \"created_iso\": ",
               i > 0 ? ", " : "", v->version, v->current ? "true" : "false",
               (unsigned long long)v->created);
        ctl_json_string(v->created != 0 ? t : "");
        printf(", \"retired\": %llu, \"type\": ", (unsigned long long)v->retired);
        ctl_json_string(v->retired != 0 ? "" : ks_key_type_name(v->type));
        printf(", \"bits\": %u, \"group\": ", v->bits);
        ctl_json_string(v->group);
        printf(", \"certs\": %u, \"usage\": [", v->certs);
        json_usage(v->usage);
        printf("]}");
    }
    printf("]");
}

/* Text lines for a key with more than one version: "  version N: ...". */
static void text_versions(const Keystore__KeyInfo *k)
{
    char t[32], usage[KS_USAGE_TEXT_MAX];
    size_t i;

    if (k->n_versions < 2)
        return;
    for (i = 0; i < k->n_versions; i++) {
        const Keystore__KeyVersionInfo *v = k->versions[i];

        if (v->retired != 0) {
            if (v->retired > 1)
                iso_time(v->retired, t, sizeof(t));
            printf("  version %u: retired%s%s\n", v->version, v->retired > 1 ? " " : "",
                   v->retired > 1 ? t : "");
            continue;
        }
        iso_time(v->created, t, sizeof(t));
        printf("  version %u: %s%s%s, created %s, %u certificate%s, usage %s%s\n", v->version,
               ks_key_type_name(v->type), v->group[0] != '\0' ? " " : "", v->group, t, v->certs,
               v->certs == 1 ? "" : "s", ks_usage_format(v->usage, usage),
               v->current ? " (current)" : "");
    }
}

static void json_key(const Keystore__KeyInfo *k)
{
    char created[32];

    iso_time(k->created, created, sizeof(created));
    printf("{\"name\": ");
    ctl_json_string(k->name);
    printf(", \"type\": ");
    ctl_json_string(ks_key_type_name(k->type));
    printf(", \"bits\": %u, \"group\": ", k->bits);
    ctl_json_string(k->group);
    printf(", \"created\": %llu, \"created_iso\": ", (unsigned long long)k->created);
    ctl_json_string(created);
    printf(", \"certs\": %zu, \"usage\": [", k->n_cert_chain_der);
    json_usage(k->usage);
    printf("]");
    json_versions(k);
    json_certs(k);
    printf("}");
}

void ctl_print_key(const Keystore__KeyInfo *k, int json, const char *verb)
{
    char size[32], created[32], usage[KS_USAGE_TEXT_MAX], version[32];
    size_t i;

    if (json) {
        json_key(k);
        putchar('\n');
        return;
    }
    size_column(k, size, sizeof(size));
    iso_time(k->created, created, sizeof(created));
    /* the version only for keys that have had more than one (the line stays as it was) */
    snprintf(version, sizeof(version), ", version %u", k->version);
    printf("%s%skey %s: %s %s, created %s, %zu certificate%s, usage %s%s\n", verb,
           verb[0] != '\0' ? " " : "", k->name, ks_key_type_name(k->type), size, created,
           k->n_cert_chain_der, k->n_cert_chain_der == 1 ? "" : "s",
           ks_usage_format(k->usage, usage), k->version > 1 || k->n_versions > 1 ? version : "");
    for (i = 0; i < k->n_cert_chain_der; i++) {
        struct cert_facts f;

        if (cert_facts(&k->cert_chain_der[i], &f) != 0) {
            printf("  certificate %zu: unparsable\n", i + 1);
            continue;
        }
        iso_time((uint64_t)f.not_after, created, sizeof(created));
        printf("  certificate %zu: subject %s, issuer %s, not after %s\n", i + 1, f.subject,
               f.issuer, created);
    }
    text_versions(k);
}

static int by_name(const void *a, const void *b)
{
    const Keystore__KeyInfo *x = *(Keystore__KeyInfo *const *)a;
    const Keystore__KeyInfo *y = *(Keystore__KeyInfo *const *)b;

    return strcmp(x->name, y->name);
}

/* The leaf's columns of the table: "-" without a certificate. */
static void leaf_columns(const Keystore__KeyInfo *k, struct cert_facts *f, char *expires, size_t len)
{
    if (k->n_cert_chain_der == 0 || cert_facts(&k->cert_chain_der[0], f) != 0) {
        strcpy(f->subject, "-");
        strcpy(f->issuer, "-");
        snprintf(expires, len, "-");
        return;
    }
    iso_time((uint64_t)f->not_after, expires, len);
}

void ctl_print_list(Keystore__KeyInfo **keys, size_t n, int json)
{
    int wname = 4, wtype = 4, wsize = 10, wsubj = 7;
    char size[32], created[32], expires[32], usage[KS_USAGE_TEXT_MAX];
    struct cert_facts f;
    size_t i;

    if (n > 1)   /* an empty list may be NULL, which qsort must not get */
        qsort(keys, n, sizeof(*keys), by_name);
    if (json) {
        printf("[");
        for (i = 0; i < n; i++) {
            printf(i == 0 ? "\n  " : ",\n  ");
            json_key(keys[i]);
        }
        printf(n > 0 ? "\n]\n" : "]\n");
        return;
    }
    for (i = 0; i < n; i++) {
        int l = (int)strlen(keys[i]->name), t = (int)strlen(ks_key_type_name(keys[i]->type));

        size_column(keys[i], size, sizeof(size));
        leaf_columns(keys[i], &f, expires, sizeof(expires));
        wname = l > wname ? l : wname;
        wtype = t > wtype ? t : wtype;
        wsize = (int)strlen(size) > wsize ? (int)strlen(size) : wsize;
        wsubj = (int)strlen(f.subject) > wsubj ? (int)strlen(f.subject) : wsubj;
    }
    printf("%-*s  %-*s  %-*s  %-20s  %-4s  %-12s  %-20s  %-*s  %s\n", wname, "NAME", wtype, "TYPE",
           wsize, "BITS/CURVE", "CREATED", "CERT", "USAGE", "EXPIRES", wsubj, "SUBJECT", "ISSUER");
    for (i = 0; i < n; i++) {
        size_column(keys[i], size, sizeof(size));
        iso_time(keys[i]->created, created, sizeof(created));
        leaf_columns(keys[i], &f, expires, sizeof(expires));
        printf("%-*s  %-*s  %-*s  %-20s  %-4s  %-12s  %-20s  %-*s  %s\n", wname, keys[i]->name,
               wtype, ks_key_type_name(keys[i]->type), wsize, size, created,
               keys[i]->n_cert_chain_der > 0 ? "yes" : "no", ks_usage_format(keys[i]->usage, usage),
               expires, wsubj, f.subject, f.issuer);
        text_versions(keys[i]);
    }
}
