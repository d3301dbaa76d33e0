/* libFuzzer target: what keystored's catalogue agent parses from etcd's JSON
 * gateway (keystore-server/catalogue/etcd_json.c), as an etcd member or
 * anyone on the path without TLS could send it.
 *
 * Input: byte 0 chooses the reply, byte 1 its HTTP status (0: 200, else
 * 100 + byte) or, for a watch, the chunk size it arrives in (0: at once,
 * n: n bytes at a time), the rest is the reply's body.
 *   0 range, 1 txn, 2 authenticate, 3 watch stream.
 * Every key handed on must be inside the prefix's range of the reply, its
 * name and value readable over their whole lengths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue/etcd_json.h"

#define PREFIX "/kst/"

static void die(const char *what)
{
    fprintf(stderr, "fuzz_etcd: %s\n", what);
    abort();
}

static volatile unsigned sink;

static int kv(void *arg, const char *name, size_t namelen, const uint8_t *value, size_t vlen,
              uint64_t mod_rev, int deleted)
{
    size_t i;

    (void)arg;
    (void)mod_rev;
    if (namelen == 0 || name == NULL)
        die("an empty name handed on");
    if (deleted && vlen != 0)
        die("a delete with a value");
    /* ASan checks that both are readable over their whole lengths */
    for (i = 0; i < namelen; i++)
        sink += (unsigned char)name[i];
    for (i = 0; i < vlen; i++)
        sink += value[i];
    /* the caller's buffers are one past: NUL-terminated */
    if (name[namelen] != '\0' || (!deleted && value[vlen] != 0))
        die("not NUL-terminated");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[512], token[512], *body;
    json_object *j;
    uint64_t rev;
    long status;
    size_t n;

    if (size < 2)
        return 0;
    n = size - 2;
    body = malloc(n + 1);   /* curl's collector NUL-terminates what it gathers */
    if (body == NULL)
        die("out of memory");
    memcpy(body, data + 2, n);
    body[n] = '\0';
    status = data[1] == 0 ? 200 : 100 + data[1];
    if (data[0] % 4 == 3) {
        struct ks_etcd_watch_parser p = { .prefix = PREFIX, .fn = kv };
        size_t piece = data[1] == 0 ? n : data[1], off = 0;

        while (off < n) {
            size_t k = n - off < piece ? n - off : piece;

            if (ks_etcd_watch_feed(&p, body + off, k) != 0)
                break;
            off += k;
        }
        if (p.failed && p.why[0] == '\0')
            die("a failed watch without a reason");
        ks_etcd_watch_parser_free(&p);
        free(body);
        return 0;
    }
    why[0] = '\0';
    j = ks_etcd_json_reply(body, n, status, why, sizeof(why));
    if (j == NULL) {
        if (why[0] == '\0')
            die("a refused reply without a reason");
    } else {
        if (status != 200)
            die("an HTTP error accepted");
        switch (data[0] % 4) {
        case 0:
            (void)ks_etcd_json_range(j, PREFIX, kv, NULL, &rev);
            break;
        case 1:
            (void)ks_etcd_json_txn(j, &rev);
            break;
        default:
            if (ks_etcd_json_token(j, token, sizeof(token)) == 0 &&
                (token[0] == '\0' || strpbrk(token, "\r\n: ") != NULL))
                die("a token that cannot go into a header");
            break;
        }
        json_object_put(j);
    }
    free(body);
    return 0;
}
