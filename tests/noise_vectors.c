/* proto/noise.c against the published Noise test vectors, then the error
 * paths the vectors do not reach.
 *
 *   noise_vectors FILE.json...
 *
 * Each FILE is in the cacophony/snow vector format ({"vectors": [...]}),
 * holding only Noise_IK_25519_ChaChaPoly_BLAKE2b entries without PSKs
 * (tests/data/noise/).  Every vector runs once with us as initiator talking
 * to us as responder, both with the vector's keys; every message's bytes,
 * every decrypted payload and the final handshake hash are compared.
 * Messages alternate initiator, responder, ...; the first two are the
 * handshake, the rest transport messages with empty AD. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"

static int failures, checks;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;

    checks++;
    if (ok)
        return;
    failures++;
    fputs("FAIL: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* ---- a purpose-made JSON reader ---------------------------------------
 * Enough for the vector files: objects, arrays and strings without
 * escapes.  Anything else (numbers, true/false/null, escapes) is refused,
 * so a vector using a feature we do not implement cannot pass silently. */

enum jtype { J_STR, J_ARR, J_OBJ };

struct jnode {
    enum jtype type;
    char *key;              /* member name when inside an object */
    char *str;              /* J_STR */
    struct jnode *kids;     /* J_ARR, J_OBJ */
    size_t nkids;
};

struct jparser {
    const char *p, *end;
    const char *err;
};

#define J_MAX_DEPTH 8
#define J_MAX_KIDS 4096

static void jskip(struct jparser *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\r' || *jp->p == '\t'))
        jp->p++;
}

static char *jstring(struct jparser *jp)
{
    const char *start;
    char *s;

    if (jp->p >= jp->end || *jp->p != '"') {
        jp->err = "expected a string";
        return NULL;
    }
    start = ++jp->p;
    while (jp->p < jp->end && *jp->p != '"') {
        if (*jp->p == '\\' || (unsigned char)*jp->p < 0x20) {
            jp->err = "escapes and control characters are not supported";
            return NULL;
        }
        jp->p++;
    }
    if (jp->p >= jp->end) {
        jp->err = "unterminated string";
        return NULL;
    }
    s = strndup(start, (size_t)(jp->p - start));
    jp->p++;
    if (s == NULL)
        jp->err = "out of memory";
    return s;
}

static int jvalue(struct jparser *jp, struct jnode *n, int depth);

/* Elements of an array or members of an object, up to the closing char. */
static int jcontainer(struct jparser *jp, struct jnode *n, char close, int depth)
{
    struct jnode *kid, *grown;

    jp->p++;
    jskip(jp);
    if (jp->p < jp->end && *jp->p == close) {
        jp->p++;
        return 0;
    }
    for (;;) {
        if (n->nkids >= J_MAX_KIDS) {
            jp->err = "too many elements";
            return -1;
        }
        grown = realloc(n->kids, (n->nkids + 1) * sizeof(*n->kids));
        if (grown == NULL) {
            jp->err = "out of memory";
            return -1;
        }
        n->kids = grown;
        kid = &n->kids[n->nkids++];
        memset(kid, 0, sizeof(*kid));
        jskip(jp);
        if (n->type == J_OBJ) {
            if ((kid->key = jstring(jp)) == NULL)
                return -1;
            jskip(jp);
            if (jp->p >= jp->end || *jp->p != ':') {
                jp->err = "expected ':'";
                return -1;
            }
            jp->p++;
        }
        if (jvalue(jp, kid, depth + 1) != 0)
            return -1;
        jskip(jp);
        if (jp->p < jp->end && *jp->p == ',') {
            jp->p++;
            continue;
        }
        if (jp->p < jp->end && *jp->p == close) {
            jp->p++;
            return 0;
        }
        jp->err = "expected ',' or a closing bracket";
        return -1;
    }
}

static int jvalue(struct jparser *jp, struct jnode *n, int depth)
{
    if (depth > J_MAX_DEPTH) {
        jp->err = "nested too deeply";
        return -1;
    }
    jskip(jp);
    if (jp->p >= jp->end) {
        jp->err = "unexpected end";
        return -1;
    }
    switch (*jp->p) {
    case '"':
        n->type = J_STR;
        return (n->str = jstring(jp)) != NULL ? 0 : -1;
    case '[':
        n->type = J_ARR;
        return jcontainer(jp, n, ']', depth);
    case '{':
        n->type = J_OBJ;
        return jcontainer(jp, n, '}', depth);
    default:
        jp->err = "unsupported value (only objects, arrays, strings)";
        return -1;
    }
}

static void jfree(struct jnode *n)
{
    size_t i;

    for (i = 0; i < n->nkids; i++)
        jfree(&n->kids[i]);
    free(n->kids);
    free(n->key);
    free(n->str);
}

static const struct jnode *jget(const struct jnode *obj, const char *key)
{
    size_t i;

    if (obj->type != J_OBJ)
        return NULL;
    for (i = 0; i < obj->nkids; i++)
        if (strcmp(obj->kids[i].key, key) == 0)
            return &obj->kids[i];
    return NULL;
}

static int read_json(const char *path, struct jnode *root)
{
    struct jparser jp = {0};
    char *buf = NULL;
    long size;
    FILE *f = fopen(path, "rb");
    int rc = -1;

    memset(root, 0, sizeof(*root));
    if (f == NULL) {
        perror(path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || size > (16L << 20) ||
        fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)size + 1)) == NULL ||
        fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "%s: cannot read\n", path);
        goto out;
    }
    jp.p = buf;
    jp.end = buf + size;
    if (jvalue(&jp, root, 0) != 0) {
        fprintf(stderr, "%s: JSON at byte %ld: %s\n", path, (long)(jp.p - buf), jp.err);
        goto out;
    }
    jskip(&jp);
    if (jp.p != jp.end) {
        fprintf(stderr, "%s: trailing bytes after the JSON value\n", path);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    fclose(f);
    if (rc != 0)
        jfree(root);
    return rc;
}

/* ---- vectors ------------------------------------------------------------ */

struct bytes {
    uint8_t *p;
    size_t len;
};

/* Hex string member key of obj, decoded; -1 if absent or not hex. */
static int get_hex(const struct jnode *obj, const char *key, struct bytes *out)
{
    const struct jnode *n = jget(obj, key);
    size_t hexlen;

    out->p = NULL;
    out->len = 0;
    if (n == NULL || n->type != J_STR)
        return -1;
    hexlen = strlen(n->str);
    if (hexlen % 2 != 0 || (out->p = malloc(hexlen / 2 + 1)) == NULL)
        return -1;
    if (sodium_hex2bin(out->p, hexlen / 2 + 1, n->str, hexlen, NULL, &out->len, NULL) != 0 ||
        out->len != hexlen / 2) {
        free(out->p);
        out->p = NULL;
        return -1;
    }
    return 0;
}

static int get_key(const struct jnode *obj, const char *key, uint8_t out[32])
{
    struct bytes b;
    int ok;

    if (get_hex(obj, key, &b) != 0)
        return -1;
    ok = b.len == 32;
    if (ok)
        memcpy(out, b.p, 32);
    free(b.p);
    return ok ? 0 : -1;
}

static int bytes_eq(const uint8_t *a, size_t alen, const struct bytes *b)
{
    return alen == b->len && (alen == 0 || memcmp(a, b->p, alen) == 0);
}

static const char *const known_fields[] = {
    "protocol_name", "init_prologue", "init_psks", "init_static", "init_ephemeral",
    "init_remote_static", "resp_prologue", "resp_psks", "resp_static", "resp_ephemeral",
    "handshake_hash", "messages", NULL,
};

/* One vector, initiator and responder.  Returns the number of messages
 * checked, or -1 if the vector could not be run at all. */
static int run_vector(const struct jnode *v, const char *label)
{
    struct ks_noise_hs ini, resp;
    struct ks_noise_cipher isend, irecv, rsend, rrecv;
    uint8_t i_s[32], i_e[32], i_rs[32], r_s[32], r_e[32];
    uint8_t h_i[KS_NOISE_HASHLEN], h_r[KS_NOISE_HASHLEN];
    uint8_t *buf = NULL, *plain = NULL;
    struct bytes i_pro = {0}, r_pro = {0}, hh = {0};
    const struct jnode *name, *msgs, *f;
    size_t i, j, len, plen;
    int rc = -1, has_hh;

    for (i = 0; i < v->nkids; i++) {
        for (j = 0; known_fields[j] != NULL && strcmp(known_fields[j], v->kids[i].key) != 0; j++)
            ;
        if (known_fields[j] == NULL) {
            check(0, "%s: unknown field '%s' (a feature we do not test)", label, v->kids[i].key);
            return -1;
        }
    }
    name = jget(v, "protocol_name");
    if (name == NULL || name->type != J_STR || strcmp(name->str, KS_NOISE_PROTOCOL_NAME) != 0) {
        check(0, "%s: not %s", label, KS_NOISE_PROTOCOL_NAME);
        return -1;
    }
    if (((f = jget(v, "init_psks")) != NULL && (f->type != J_ARR || f->nkids != 0)) ||
        ((f = jget(v, "resp_psks")) != NULL && (f->type != J_ARR || f->nkids != 0))) {
        check(0, "%s: has PSKs (IK without PSK only)", label);
        return -1;
    }
    msgs = jget(v, "messages");
    if (get_key(v, "init_static", i_s) != 0 || get_key(v, "init_ephemeral", i_e) != 0 ||
        get_key(v, "init_remote_static", i_rs) != 0 || get_key(v, "resp_static", r_s) != 0 ||
        get_key(v, "resp_ephemeral", r_e) != 0 || get_hex(v, "init_prologue", &i_pro) != 0 ||
        get_hex(v, "resp_prologue", &r_pro) != 0 || msgs == NULL || msgs->type != J_ARR ||
        msgs->nkids < 2) {
        check(0, "%s: missing or malformed keys, prologue or messages", label);
        goto out;
    }
    has_hh = jget(v, "handshake_hash") != NULL;
    if (has_hh && (get_hex(v, "handshake_hash", &hh) != 0 || hh.len != KS_NOISE_HASHLEN)) {
        check(0, "%s: malformed handshake_hash", label);
        goto out;
    }
    if ((buf = malloc(KS_NOISE_MAX_MSG)) == NULL || (plain = malloc(KS_NOISE_MAX_MSG)) == NULL)
        goto out;
    if (ks_noise_ik_init(&ini, KS_NOISE_INITIATOR, i_pro.p, i_pro.len, i_s, i_rs) != 0 ||
        ks_noise_ik_set_ephemeral_for_test(&ini, i_e) != 0 ||
        ks_noise_ik_init(&resp, KS_NOISE_RESPONDER, r_pro.p, r_pro.len, r_s, NULL) != 0 ||
        ks_noise_ik_set_ephemeral_for_test(&resp, r_e) != 0) {
        check(0, "%s: initialize", label);
        goto out;
    }
    for (i = 0; i < msgs->nkids; i++) {
        const struct jnode *m = &msgs->kids[i];
        struct bytes pay, ct;
        int from_ini = i % 2 == 0, wok, rok;

        if (get_hex(m, "payload", &pay) != 0 || get_hex(m, "ciphertext", &ct) != 0) {
            check(0, "%s: message %zu malformed", label, i);
            free(pay.p);
            goto out;
        }
        if (i < 2) {
            wok = ks_noise_ik_write_message(from_ini ? &ini : &resp, pay.p, pay.len, buf,
                                            KS_NOISE_MAX_MSG, &len) == 0;
            rok = wok && ks_noise_ik_read_message(from_ini ? &resp : &ini, buf, len, plain,
                                                  KS_NOISE_MAX_MSG, &plen) == 0;
        } else {
            wok = ks_noise_encrypt_with_ad(from_ini ? &isend : &rsend, NULL, 0, pay.p, pay.len,
                                           buf, KS_NOISE_MAX_MSG, &len) == 0;
            rok = wok && ks_noise_decrypt_with_ad(from_ini ? &rrecv : &irecv, NULL, 0, buf, len,
                                                  plain, KS_NOISE_MAX_MSG, &plen) == 0;
        }
        check(wok && bytes_eq(buf, len, &ct), "%s: message %zu (%s) ciphertext", label, i,
              from_ini ? "initiator" : "responder");
        check(rok && bytes_eq(plain, plen, &pay), "%s: message %zu (%s) payload read back",
              label, i, from_ini ? "responder" : "initiator");
        free(pay.p);
        free(ct.p);
        if (!wok || !rok)
            goto out;
        if (i == 1) {
            check(ks_noise_ik_complete(&ini) && ks_noise_ik_complete(&resp),
                  "%s: handshake complete", label);
            check(ks_noise_ik_split(&ini, &isend, &irecv, h_i) == 0 &&
                  ks_noise_ik_split(&resp, &rsend, &rrecv, h_r) == 0, "%s: split", label);
            check(memcmp(h_i, h_r, sizeof(h_i)) == 0, "%s: both sides' handshake hash", label);
            if (has_hh)
                check(bytes_eq(h_i, sizeof(h_i), &hh), "%s: handshake_hash", label);
        }
    }
    rc = (int)msgs->nkids;
out:
    ks_noise_hs_wipe(&ini);
    ks_noise_hs_wipe(&resp);
    free(buf);
    free(plain);
    free(i_pro.p);
    free(r_pro.p);
    free(hh.p);
    return rc;
}

/* ---- what the vectors do not reach ------------------------------------- */

struct pair {
    uint8_t i_sk[32], i_pk[32], r_sk[32], r_pk[32];
};

static void keypair(uint8_t sk[32], uint8_t pk[32])
{
    randombytes_buf(sk, 32);
    if (crypto_scalarmult_base(pk, sk) != 0)
        abort();
}

static void new_pair(struct pair *p)
{
    keypair(p->i_sk, p->i_pk);
    keypair(p->r_sk, p->r_pk);
}

static const uint8_t prologue[] = "keystore test";

static int start(const struct pair *p, struct ks_noise_hs *ini, struct ks_noise_hs *resp)
{
    return ks_noise_ik_init(ini, KS_NOISE_INITIATOR, prologue, sizeof(prologue), p->i_sk,
                            p->r_pk) == 0 &&
           ks_noise_ik_init(resp, KS_NOISE_RESPONDER, prologue, sizeof(prologue), p->r_sk,
                            NULL) == 0;
}

/* A full handshake with fresh ephemerals; 1 if it completed and split. */
static int handshake(const struct pair *p, struct ks_noise_cipher c[4], uint8_t rs_seen[32])
{
    struct ks_noise_hs ini, resp;
    uint8_t m1[256], m2[256], pl[256], h1[64], h2[64];
    size_t l1, l2, pll;
    int ok;

    ok = start(p, &ini, &resp) &&
         ks_noise_ik_write_message(&ini, (const uint8_t *)"hello", 5, m1, sizeof(m1), &l1) == 0 &&
         l1 == 5 + KS_NOISE_IK_MSG1_OVERHEAD &&
         ks_noise_ik_read_message(&resp, m1, l1, pl, sizeof(pl), &pll) == 0 && pll == 5 &&
         memcmp(pl, "hello", 5) == 0 && ks_noise_ik_remote_static(&resp, rs_seen) == 0 &&
         ks_noise_ik_write_message(&resp, NULL, 0, m2, sizeof(m2), &l2) == 0 &&
         l2 == KS_NOISE_IK_MSG2_OVERHEAD &&
         ks_noise_ik_read_message(&ini, m2, l2, pl, sizeof(pl), &pll) == 0 && pll == 0 &&
         ks_noise_ik_split(&ini, &c[0], &c[1], h1) == 0 &&
         ks_noise_ik_split(&resp, &c[2], &c[3], h2) == 0 && memcmp(h1, h2, 64) == 0;
    ks_noise_hs_wipe(&ini);
    ks_noise_hs_wipe(&resp);
    return ok;
}

static int all_zero(const void *p, size_t len)
{
    const uint8_t *b = p;
    size_t i;

    for (i = 0; i < len; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static void test_random_handshake(void)
{
    struct pair p;
    struct ks_noise_cipher c[4];   /* ini send, ini recv, resp send, resp recv */
    uint8_t rs[32], buf[64], out[64];
    size_t len, olen;

    new_pair(&p);
    check(handshake(&p, c, rs), "fresh-ephemeral handshake");
    check(memcmp(rs, p.i_pk, 32) == 0, "responder learns the initiator's static key");
    check(ks_noise_encrypt_with_ad(&c[2], NULL, 0, (const uint8_t *)"pong", 4, buf, sizeof(buf),
                                   &len) == 0 &&
          ks_noise_decrypt_with_ad(&c[1], NULL, 0, buf, len, out, sizeof(out), &olen) == 0 &&
          olen == 4 && memcmp(out, "pong", 4) == 0, "responder to initiator transport");
}

/* Every single-bit flip anywhere in message 1 or 2 must be refused, and
 * the refusing side's state must be dead afterwards. */
static void test_tamper(void)
{
    struct pair p;
    struct ks_noise_hs ini, resp, ini2, resp2;
    uint8_t m1[128], m2[128], t[128], pl[128], e_i[32], e_r[32];
    size_t l1, l2, pll, i;
    int refused1 = 1, refused2 = 1, dead = 1;

    new_pair(&p);
    randombytes_buf(e_i, 32);
    randombytes_buf(e_r, 32);
    check(start(&p, &ini, &resp) && ks_noise_ik_set_ephemeral_for_test(&ini, e_i) == 0 &&
          ks_noise_ik_set_ephemeral_for_test(&resp, e_r) == 0 &&
          ks_noise_ik_write_message(&ini, (const uint8_t *)"abc", 3, m1, sizeof(m1), &l1) == 0 &&
          ks_noise_ik_read_message(&resp, m1, l1, pl, sizeof(pl), &pll) == 0 &&
          ks_noise_ik_write_message(&resp, (const uint8_t *)"xyz", 3, m2, sizeof(m2), &l2) == 0,
          "tamper: reference handshake");
    for (i = 0; i < l1 * 8; i++) {
        memcpy(t, m1, l1);
        t[i / 8] ^= (uint8_t)(1u << (i % 8));
        check(ks_noise_ik_init(&resp2, KS_NOISE_RESPONDER, prologue, sizeof(prologue), p.r_sk,
                               NULL) == 0, "tamper: responder init");
        if (ks_noise_ik_read_message(&resp2, t, l1, pl, sizeof(pl), &pll) == 0)
            refused1 = 0;
        if (ks_noise_ik_write_message(&resp2, NULL, 0, t, sizeof(t), &pll) == 0)
            dead = 0;
    }
    check(refused1, "tamper: every bit flip in message 1 refused");
    check(dead, "tamper: a failed responder refuses to continue");
    /* The initiator state after message 1 is copied so each flip starts
     * from the same point (no secret leaves this test). */
    for (i = 0; i < l2 * 8; i++) {
        memcpy(t, m2, l2);
        t[i / 8] ^= (uint8_t)(1u << (i % 8));
        ini2 = ini;
        if (ks_noise_ik_read_message(&ini2, t, l2, pl, sizeof(pl), &pll) == 0)
            refused2 = 0;
        ks_noise_hs_wipe(&ini2);
    }
    check(refused2, "tamper: every bit flip in message 2 refused");
    ini2 = ini;
    check(ks_noise_ik_read_message(&ini2, m2, l2, pl, sizeof(pl), &pll) == 0 && pll == 3,
          "tamper: the untouched message 2 is accepted");
    ks_noise_hs_wipe(&ini);
    ks_noise_hs_wipe(&ini2);
    ks_noise_hs_wipe(&resp);
    ks_noise_hs_wipe(&resp2);
}

static void test_prologue_and_key_mismatch(void)
{
    struct pair p, other;
    struct ks_noise_hs ini, resp;
    uint8_t m1[128], pl[128];
    size_t l1, pll;

    new_pair(&p);
    new_pair(&other);
    check(ks_noise_ik_init(&ini, KS_NOISE_INITIATOR, (const uint8_t *)"A", 1, p.i_sk, p.r_pk) == 0 &&
          ks_noise_ik_init(&resp, KS_NOISE_RESPONDER, (const uint8_t *)"B", 1, p.r_sk, NULL) == 0 &&
          ks_noise_ik_write_message(&ini, NULL, 0, m1, sizeof(m1), &l1) == 0 &&
          ks_noise_ik_read_message(&resp, m1, l1, pl, sizeof(pl), &pll) != 0,
          "different prologues: message 1 refused");
    ks_noise_hs_wipe(&ini);
    /* Initiator encrypts to another responder's key. */
    check(ks_noise_ik_init(&ini, KS_NOISE_INITIATOR, NULL, 0, p.i_sk, other.r_pk) == 0 &&
          ks_noise_ik_init(&resp, KS_NOISE_RESPONDER, NULL, 0, p.r_sk, NULL) == 0 &&
          ks_noise_ik_write_message(&ini, NULL, 0, m1, sizeof(m1), &l1) == 0 &&
          ks_noise_ik_read_message(&resp, m1, l1, pl, sizeof(pl), &pll) != 0,
          "message 1 for another responder key refused");
    check(ks_noise_ik_remote_static(&resp, pl) != 0, "no remote static after a failed read");
    ks_noise_hs_wipe(&ini);
    ks_noise_hs_wipe(&resp);
}

/* Low-order points make X25519 output all zeros: refused, as the brief of
 * this implementation requires (the spec allows either). */
static void test_low_order(void)
{
    static const uint8_t low_order[][32] = {
        {0},                                              /* 0 */
        {1},                                              /* 1 */
        {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
         0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
         0x5f, 0x49, 0xb8, 0x00},                        /* order 8 */
    };
    struct pair p;
    struct ks_noise_hs ini, resp;
    uint8_t m1[128], m2[128], pl[128];
    size_t l1, l2, pll, i;

    new_pair(&p);
    for (i = 0; i < sizeof(low_order) / sizeof(low_order[0]); i++) {
        /* As the responder's static key: the initiator's "es" fails. */
        check(ks_noise_ik_init(&ini, KS_NOISE_INITIATOR, NULL, 0, p.i_sk, low_order[i]) == 0 &&
              ks_noise_ik_write_message(&ini, NULL, 0, m1, sizeof(m1), &l1) != 0 &&
              all_zero(m1, KS_NOISE_IK_MSG1_OVERHEAD),
              "low-order responder static %zu refused (message wiped)", i);
        /* As the initiator's ephemeral in message 1: the responder's "es". */
        check(start(&p, &ini, &resp) &&
              ks_noise_ik_write_message(&ini, NULL, 0, m1, sizeof(m1), &l1) == 0, "msg1");
        memcpy(m1, low_order[i], 32);
        check(ks_noise_ik_read_message(&resp, m1, l1, pl, sizeof(pl), &pll) != 0,
              "low-order initiator ephemeral %zu refused", i);
        /* As the responder's ephemeral in message 2: the initiator's "ee". */
        check(start(&p, &ini, &resp) &&
              ks_noise_ik_write_message(&ini, NULL, 0, m1, sizeof(m1), &l1) == 0 &&
              ks_noise_ik_read_message(&resp, m1, l1, pl, sizeof(pl), &pll) == 0 &&
              ks_noise_ik_write_message(&resp, NULL, 0, m2, sizeof(m2), &l2) == 0, "msg2");
        memcpy(m2, low_order[i], 32);
        check(ks_noise_ik_read_message(&ini, m2, l2, pl, sizeof(pl), &pll) != 0,
              "low-order responder ephemeral %zu refused", i);
        ks_noise_hs_wipe(&ini);
        ks_noise_hs_wipe(&resp);
    }
}

static void test_rekey_and_nonces(void)
{
    struct pair p;
    struct ks_noise_cipher c[4], stale;
    uint8_t rs[32], old_k[32], expect[48], nonce[12], zeros[32] = {0}, buf[64], out[64];
    unsigned long long elen;
    size_t len, olen;
    uint64_t n_before;

    new_pair(&p);
    check(handshake(&p, c, rs), "rekey: handshake");
    check(ks_noise_encrypt_with_ad(&c[0], NULL, 0, (const uint8_t *)"1", 1, buf, sizeof(buf), &len) == 0 &&
          ks_noise_decrypt_with_ad(&c[3], NULL, 0, buf, len, out, sizeof(out), &olen) == 0,
          "rekey: a message before");
    /* REKEY(k) = first 32 bytes of ENCRYPT(k, 2^64-1, "", zeros), computed
     * here independently with nonce 00000000 ffffffffffffffff. */
    memcpy(old_k, c[0].k, 32);
    memset(nonce, 0, 4);
    memset(nonce + 4, 0xff, 8);
    check(crypto_aead_chacha20poly1305_ietf_encrypt(expect, &elen, zeros, 32, NULL, 0, NULL,
                                                    nonce, old_k) == 0, "rekey: reference");
    stale = c[3];
    n_before = c[0].n;
    check(ks_noise_rekey(&c[0]) == 0 && memcmp(c[0].k, expect, 32) == 0 && c[0].n == n_before,
          "rekey: k = REKEY(k), n unchanged");
    check(ks_noise_rekey(&c[3]) == 0 && memcmp(c[3].k, c[0].k, 32) == 0, "rekey: receiver too");
    check(ks_noise_encrypt_with_ad(&c[0], (const uint8_t *)"ad", 2, (const uint8_t *)"2", 1, buf,
                                   sizeof(buf), &len) == 0 &&
          ks_noise_decrypt_with_ad(&stale, (const uint8_t *)"ad", 2, buf, len, out, sizeof(out),
                                   &olen) != 0 && stale.n == n_before,
          "rekey: the old key no longer decrypts (and a failure keeps n)");
    check(ks_noise_decrypt_with_ad(&c[3], (const uint8_t *)"ad", 2, buf, len, out, sizeof(out),
                                   &olen) == 0 && olen == 1 && out[0] == '2',
          "rekey: the rekeyed receiver decrypts");
    check(ks_noise_decrypt_with_ad(&c[3], (const uint8_t *)"ad", 2, buf, len, out, sizeof(out),
                                   &olen) != 0, "a replayed transport message is refused");
    /* 2^64-1 is reserved: the last usable nonce is 2^64-2. */
    ks_noise_cipher_set_nonce(&c[0], UINT64_MAX - 1);
    check(ks_noise_encrypt_with_ad(&c[0], NULL, 0, NULL, 0, buf, sizeof(buf), &len) == 0 &&
          len == KS_NOISE_TAGLEN, "nonce 2^64-2 usable");
    check(ks_noise_encrypt_with_ad(&c[0], NULL, 0, NULL, 0, buf, sizeof(buf), &len) != 0,
          "nonce 2^64-1 refused");
    check(ks_noise_encrypt_with_ad(&c[2], NULL, 0, (const uint8_t *)"123", 3, buf, 3 + 15, &len) != 0,
          "encrypt into a too small buffer refused");
    memcpy(buf, "in place", 8);
    check(ks_noise_encrypt_with_ad(&c[2], NULL, 0, buf, 8, buf, sizeof(buf), &len) == 0 &&
          ks_noise_decrypt_with_ad(&c[1], NULL, 0, buf, len, buf, sizeof(buf), &olen) == 0 &&
          olen == 8 && memcmp(buf, "in place", 8) == 0, "in-place encrypt and decrypt");
    check(ks_noise_decrypt_with_ad(&c[1], NULL, 0, buf, 15, out, sizeof(out), &olen) != 0,
          "ciphertext shorter than a tag refused");
    check(ks_noise_rekey(&stale) == 0, "rekey of a keyed state");
    ks_noise_cipher_init(&stale, NULL);
    check(ks_noise_rekey(&stale) != 0, "rekey without a key refused");
    for (len = 0; len < 4; len++)
        ks_noise_cipher_wipe(&c[len]);
    ks_noise_cipher_wipe(&stale);
    sodium_memzero(old_k, sizeof(old_k));
    sodium_memzero(expect, sizeof(expect));
}

static void test_bounds_and_order(void)
{
    struct pair p;
    struct ks_noise_hs ini, resp;
    struct ks_noise_cipher a, b;
    uint8_t *big = calloc(1, KS_NOISE_MAX_MSG + 1), *pl = calloc(1, KS_NOISE_MAX_MSG + 1);
    size_t len, pll;

    if (big == NULL || pl == NULL)
        abort();
    new_pair(&p);
    check(start(&p, &ini, &resp), "bounds: init");
    check(ks_noise_ik_read_message(&ini, big, 100, pl, KS_NOISE_MAX_MSG, &pll) != 0,
          "initiator cannot read before writing");
    check(start(&p, &ini, &resp), "bounds: init");
    check(ks_noise_ik_write_message(&resp, NULL, 0, big, KS_NOISE_MAX_MSG, &len) != 0,
          "responder cannot write first");
    check(ks_noise_ik_write_message(&ini, pl, KS_NOISE_IK_MAX_PAYLOAD1 + 1, big,
                                    KS_NOISE_MAX_MSG + 1, &len) != 0,
          "message 1 over 65535 bytes refused");
    check(ks_noise_ik_write_message(&ini, pl, 10, big, 10 + KS_NOISE_IK_MSG1_OVERHEAD - 1,
                                    &len) != 0, "message 1 into a too small buffer refused");
    check(ks_noise_ik_read_message(&resp, big, KS_NOISE_IK_MSG1_OVERHEAD - 1, pl,
                                   KS_NOISE_MAX_MSG, &pll) != 0, "short message 1 refused");
    check(start(&p, &ini, &resp), "bounds: init");
    check(ks_noise_ik_read_message(&resp, big, KS_NOISE_MAX_MSG + 1, pl, KS_NOISE_MAX_MSG + 1,
                                   &pll) != 0, "message 1 over 65535 bytes refused on read");
    check(start(&p, &ini, &resp) &&
          ks_noise_ik_write_message(&ini, pl, KS_NOISE_IK_MAX_PAYLOAD1, big, KS_NOISE_MAX_MSG,
                                    &len) == 0 && len == KS_NOISE_MAX_MSG &&
          ks_noise_ik_read_message(&resp, big, len, pl, KS_NOISE_IK_MAX_PAYLOAD1 - 1, &pll) != 0,
          "payload buffer too small for message 1 refused");
    check(start(&p, &ini, &resp) &&
          ks_noise_ik_write_message(&ini, pl, KS_NOISE_IK_MAX_PAYLOAD1, big, KS_NOISE_MAX_MSG,
                                    &len) == 0 &&
          ks_noise_ik_read_message(&resp, big, len, pl, KS_NOISE_MAX_MSG, &pll) == 0 &&
          pll == KS_NOISE_IK_MAX_PAYLOAD1, "a 65535-byte message 1 is accepted");
    check(ks_noise_ik_split(&resp, &a, &b, NULL) != 0, "split before the handshake is complete");
    check(ks_noise_ik_write_message(&resp, NULL, 0, big, KS_NOISE_MAX_MSG, &len) != 0,
          "split wiped the handshake state");
    ks_noise_cipher_init(&a, big);   /* any 32 bytes as a key */
    check(ks_noise_encrypt_with_ad(&a, NULL, 0, pl, KS_NOISE_MAX_PLAINTEXT + 1, big,
                                   KS_NOISE_MAX_MSG + 1, &len) != 0,
          "transport message over 65535 bytes refused");
    check(ks_noise_encrypt_with_ad(&a, NULL, 0, pl, KS_NOISE_MAX_PLAINTEXT, big,
                                   KS_NOISE_MAX_MSG, &len) == 0 && len == KS_NOISE_MAX_MSG,
          "a 65535-byte transport message is accepted");
    check(ks_noise_ik_init(&ini, KS_NOISE_RESPONDER, NULL, 0, p.r_sk, p.i_pk) != 0 &&
          ks_noise_ik_init(&ini, KS_NOISE_INITIATOR, NULL, 0, p.i_sk, NULL) != 0 &&
          ks_noise_ik_init(&ini, 0, NULL, 0, p.i_sk, p.r_pk) != 0 &&
          ks_noise_ik_init(&ini, KS_NOISE_INITIATOR, NULL, KS_NOISE_MAX_PROLOGUE + 1, p.i_sk,
                           p.r_pk) != 0, "bad init arguments refused");
    ks_noise_cipher_wipe(&a);
    ks_noise_hs_wipe(&ini);
    ks_noise_hs_wipe(&resp);
    free(big);
    free(pl);
}

int main(int argc, char **argv)
{
    int i, nvec = 0, nmsg = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS.json...\n", argv[0]);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "sodium_init failed\n");
        return 1;
    }
    for (i = 1; i < argc; i++) {
        struct jnode root;
        const struct jnode *vs;
        size_t j;
        char label[512];

        if (read_json(argv[i], &root) != 0) {
            check(0, "%s: unreadable", argv[i]);
            continue;
        }
        vs = jget(&root, "vectors");
        check(vs != NULL && vs->type == J_ARR && vs->nkids > 0, "%s: has vectors", argv[i]);
        for (j = 0; vs != NULL && vs->type == J_ARR && j < vs->nkids; j++) {
            int n;

            snprintf(label, sizeof(label), "%s #%zu", argv[i], j);
            n = run_vector(&vs->kids[j], label);
            if (n > 0) {
                nvec++;
                nmsg += n;
            }
        }
        jfree(&root);
    }
    printf("vectors: %d run, %d messages\n", nvec, nmsg);
    test_random_handshake();
    test_tamper();
    test_prologue_and_key_mismatch();
    test_low_order();
    test_rekey_and_nonces();
    test_bounds_and_order();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
