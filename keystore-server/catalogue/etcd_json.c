/* Parsing etcd's JSON gateway replies; see etcd_json.h. */
#include "etcd_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define WATCH_LINE_MAX (64u * 1024 * 1024)

/* A member's text, "" for a JSON null (json_object_get_string gives NULL). */
static const char *str(json_object *v)
{
    const char *s = v != NULL ? json_object_get_string(v) : NULL;

    return s != NULL ? s : "";
}

static int get(json_object *o, const char *member, json_object **v)
{
    *v = NULL;
    return json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, member, v);
}

/* int64 fields are JSON strings of digits in the gateway's output; anything
 * else (a sign, a fraction, an overflow) is 0. */
static uint64_t get_u64(json_object *o, const char *member)
{
    json_object *v;
    const char *s;
    uint64_t n = 0;

    if (!get(o, member, &v))
        return 0;
    for (s = str(v); *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || n > (UINT64_MAX - 9) / 10)
            return 0;
        n = n * 10 + (uint64_t)(*s - '0');
    }
    return n;
}

/* Decoded base64 of a string member (malloc'd, NUL-terminated), or NULL. */
static uint8_t *unb64(json_object *o, const char *member, size_t *len)
{
    json_object *v;
    const char *s;
    size_t slen;
    uint8_t *out;

    *len = 0;
    if (!get(o, member, &v)) {
        out = malloc(1);   /* absent = empty (the gateway omits empty values) */
        if (out != NULL)
            out[0] = 0;
        return out;
    }
    s = str(v);
    slen = strlen(s);
    if (slen / 4 * 3 > KS_ETCD_MAX_VALUE + 3)
        return NULL;
    out = malloc(slen / 4 * 3 + 4);
    if (out == NULL)
        return NULL;
    if (slen > 0 && sodium_base642bin(out, slen / 4 * 3 + 3, s, slen, NULL, len, NULL,
                                      sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(out);
        return NULL;
    }
    out[*len] = 0;
    return out;
}

json_object *ks_etcd_json_reply(const char *body, size_t len, long status, char *why,
                                size_t whylen)
{
    json_tokener *tok;
    json_object *j = NULL, *v;

    if (body != NULL && len > 0 && (tok = json_tokener_new()) != NULL) {
        j = json_tokener_parse_ex(tok, body, (int)(len > 0x7fffffff ? 0x7fffffff : len));
        json_tokener_free(tok);
    }
    if (j == NULL || !json_object_is_type(j, json_type_object)) {
        char text[201];
        size_t i, n = 0;

        /* etcd's gateway explains some refusals in plain text (a client
         * certificate with a CommonName while auth is on): show its first line */
        for (i = 0; body != NULL && i < len && body[i] != '\n' && n < sizeof(text) - 1; i++)
            text[n++] = body[i] >= 0x20 && body[i] < 0x7f ? body[i] : '?';
        text[n] = '\0';
        snprintf(why, whylen, "HTTP %ld, not a JSON object%s%s%s", status, n > 0 ? " (\"" : "",
                 text, n > 0 ? "\")" : "");
        json_object_put(j);
        return NULL;
    }
    if (status != 200 || get(j, "error", &v)) {
        snprintf(why, whylen, "HTTP %ld: %.200s", status,
                 get(j, "message", &v) || get(j, "error", &v) ? str(v) : "?");
        json_object_put(j);
        return NULL;
    }
    return j;
}

static int deliver_kv(json_object *kv, const char *prefix, int deleted, ks_etcd_kv_fn fn,
                      void *arg)
{
    char want[300];
    size_t klen, vlen = 0, pl;
    uint8_t *key = unb64(kv, "key", &klen), *val = NULL;
    int r = 0;

    snprintf(want, sizeof(want), "%skeys/", prefix);
    pl = strlen(want);
    if (key == NULL || klen <= pl || memcmp(key, want, pl) != 0)
        goto out;   /* outside our range: not ours */
    val = deleted ? NULL : unb64(kv, "value", &vlen);
    if (!deleted && val == NULL)
        goto out;
    r = fn(arg, (const char *)key + pl, klen - pl, val, deleted ? 0 : vlen,
           get_u64(kv, "mod_revision"), deleted);
out:
    free(key);
    free(val);
    return r;
}

int ks_etcd_json_range(json_object *j, const char *prefix, ks_etcd_kv_fn fn, void *arg,
                       uint64_t *rev)
{
    json_object *h, *kvs;
    size_t i;
    int rc = 0;

    *rev = get(j, "header", &h) ? get_u64(h, "revision") : 0;
    if (get(j, "kvs", &kvs) && json_object_is_type(kvs, json_type_array))
        for (i = 0; rc == 0 && i < json_object_array_length(kvs); i++)
            rc = deliver_kv(json_object_array_get_idx(kvs, i), prefix, 0, fn, arg);
    return rc;
}

int ks_etcd_json_txn(json_object *j, uint64_t *rev)
{
    json_object *h, *v;

    *rev = get(j, "header", &h) ? get_u64(h, "revision") : 0;
    return get(j, "succeeded", &v) && json_object_is_type(v, json_type_boolean) &&
           json_object_get_boolean(v) ? 1 : 0;
}

int ks_etcd_json_token(json_object *j, char *token, size_t len)
{
    json_object *v;
    const char *s;

    token[0] = '\0';
    if (!get(j, "token", &v) || !json_object_is_type(v, json_type_string))
        return -1;
    s = str(v);
    /* it goes into an HTTP header line: printable ASCII only */
    if (s[0] == '\0' || strlen(s) >= len || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl"
                                                    "mnopqrstuvwxyz0123456789.-_=+/") != strlen(s))
        return -1;
    snprintf(token, len, "%s", s);
    return 0;
}

/* One streamed message: {"result":{"header":..,"events":[..]}} or an error. */
static void watch_message(struct ks_etcd_watch_parser *p, const char *text)
{
    json_object *j = json_tokener_parse(text), *res, *evs, *v;
    size_t i;

    if (j == NULL)
        return;
    if (get(j, "error", &v)) {
        snprintf(p->why, sizeof(p->why), "watch error: %.200s", json_object_to_json_string(v));
        p->failed = 1;
    } else if (get(j, "result", &res)) {
        if (get(res, "canceled", &v) && json_object_get_boolean(v)) {
            snprintf(p->why, sizeof(p->why), "the watch was cancelled (compacted?)");
            p->failed = 1;
        }
        if (get(res, "events", &evs) && json_object_is_type(evs, json_type_array))
            for (i = 0; !p->stop && i < json_object_array_length(evs); i++) {
                json_object *ev = json_object_array_get_idx(evs, i), *kv, *t;
                int del = get(ev, "type", &t) && strcmp(str(t), "DELETE") == 0;
                uint64_t r;

                if (!get(ev, "kv", &kv))
                    continue;
                r = get_u64(kv, "mod_revision");
                p->stop = deliver_kv(kv, p->prefix, del, p->fn, p->arg);
                if (r > p->last)
                    p->last = r;
            }
    }
    json_object_put(j);
}

int ks_etcd_watch_feed(struct ks_etcd_watch_parser *p, const char *data, size_t len)
{
    size_t i, start = 0;

    if (len > WATCH_LINE_MAX - p->len) {
        snprintf(p->why, sizeof(p->why), "a watch message over %u bytes", WATCH_LINE_MAX);
        p->failed = 1;
        return -1;
    }
    if (p->len + len + 1 > p->cap) {
        size_t cap = (p->len + len + 1) * 2;
        char *np = realloc(p->line, cap);

        if (np == NULL) {
            snprintf(p->why, sizeof(p->why), "out of memory");
            p->failed = 1;
            return -1;
        }
        p->line = np;
        p->cap = cap;
    }
    memcpy(p->line + p->len, data, len);
    p->len += len;
    p->line[p->len] = '\0';
    /* messages are newline-separated */
    for (i = 0; i < p->len; i++)
        if (p->line[i] == '\n') {
            p->line[i] = '\0';
            watch_message(p, p->line + start);
            start = i + 1;
            if (p->stop || p->failed)
                return -1;
        }
    memmove(p->line, p->line + start, p->len - start);
    p->len -= start;
    p->line[p->len] = '\0';
    return 0;
}

void ks_etcd_watch_parser_free(struct ks_etcd_watch_parser *p)
{
    free(p->line);
    p->line = NULL;
    p->len = p->cap = 0;
}
