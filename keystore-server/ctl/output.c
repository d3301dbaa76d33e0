/* keystorectl output: aligned tables for people, JSON for scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    printf("]}");
}

void ctl_print_key(const Keystore__KeyInfo *k, int json, const char *verb)
{
    char size[32], created[32], usage[KS_USAGE_TEXT_MAX];

    if (json) {
        json_key(k);
        putchar('\n');
        return;
    }
    size_column(k, size, sizeof(size));
    iso_time(k->created, created, sizeof(created));
    printf("%s%skey %s: %s %s, created %s, %zu certificate%s, usage %s\n", verb,
           verb[0] != '\0' ? " " : "", k->name, ks_key_type_name(k->type), size, created,
           k->n_cert_chain_der, k->n_cert_chain_der == 1 ? "" : "s",
           ks_usage_format(k->usage, usage));
}

static int by_name(const void *a, const void *b)
{
    const Keystore__KeyInfo *x = *(Keystore__KeyInfo *const *)a;
    const Keystore__KeyInfo *y = *(Keystore__KeyInfo *const *)b;

    return strcmp(x->name, y->name);
}

void ctl_print_list(Keystore__KeyInfo **keys, size_t n, int json)
{
    int wname = 4, wtype = 4, wsize = 10;
    char size[32], created[32], usage[KS_USAGE_TEXT_MAX];
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
        wname = l > wname ? l : wname;
        wtype = t > wtype ? t : wtype;
        wsize = (int)strlen(size) > wsize ? (int)strlen(size) : wsize;
    }
    printf("%-*s  %-*s  %-*s  %-20s  %-4s  %s\n", wname, "NAME", wtype, "TYPE", wsize,
           "BITS/CURVE", "CREATED", "CERT", "USAGE");
    for (i = 0; i < n; i++) {
        size_column(keys[i], size, sizeof(size));
        iso_time(keys[i]->created, created, sizeof(created));
        printf("%-*s  %-*s  %-*s  %-20s  %-4s  %s\n", wname, keys[i]->name, wtype,
               ks_key_type_name(keys[i]->type), wsize, size, created,
               keys[i]->n_cert_chain_der > 0 ? "yes" : "no", ks_usage_format(keys[i]->usage, usage));
    }
}
