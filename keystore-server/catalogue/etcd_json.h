/* What the catalogue agent reads from etcd's JSON gateway, apart from the
 * HTTP (catalogue/etcd.c): replies to range, txn and authenticate, error
 * replies, and the newline-separated messages of a watch stream.  Every
 * reply is hostile input (an etcd member, or anyone on the path without
 * TLS): each function bounds what it copies and never trusts a type.  The
 * fuzz target tests/fuzz/fuzz_etcd.c calls these directly. */
#ifndef KS_ETCD_JSON_H
#define KS_ETCD_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "etcd.h"

/* body (NUL-terminated, len bytes) with HTTP status: the JSON object of a
 * successful reply, or NULL with why (not JSON; an HTTP or etcd error, with
 * etcd's message, at most 200 characters of it). */
json_object *ks_etcd_json_reply(const char *body, size_t len, long status, char *why,
                                size_t whylen);

/* A range reply: fn for each kv under PREFIX "keys/"; *rev its header's
 * revision.  0, or fn's non-zero result. */
int ks_etcd_json_range(json_object *j, const char *prefix, ks_etcd_kv_fn fn, void *arg,
                       uint64_t *rev);

/* A txn reply: 1 succeeded, 0 not; *rev its header's revision. */
int ks_etcd_json_txn(json_object *j, uint64_t *rev);

/* An authenticate reply: the token copied into token[len].  0, or -1. */
int ks_etcd_json_token(json_object *j, char *token, size_t len);

/* A watch stream, fed as it arrives (chunks cut anywhere). */
struct ks_etcd_watch_parser {
    const char *prefix;
    ks_etcd_kv_fn fn;
    void *arg;
    char *line;            /* the unfinished message */
    size_t len, cap;
    uint64_t last;         /* the highest revision delivered */
    int stop;              /* fn's non-zero result */
    int failed;            /* etcd reported an error or cancelled the watch */
    char why[256];
};

/* 0 go on, -1 stop (p->stop, p->failed or out of memory / over the bound:
 * p->failed with why). */
int ks_etcd_watch_feed(struct ks_etcd_watch_parser *p, const char *data, size_t len);
void ks_etcd_watch_parser_free(struct ks_etcd_watch_parser *p);

#endif
