/* Catalogue records and the per-name state; see catalogue.h. */
#include "catalogue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/log.h"
#include "keydir.h"
#include "masterkey.h"
#include "wire.h"

#define MAGIC "KSCAT\0\0\1"
#define FORMAT 2
#define HEADER 56     /* format 2; format 1 (no incarnation) had 48 */
#define HEADER_V1 48
#define BUCKETS 4096

static ks_catalogue_put_fn put_fn;
static char rec_prefix[256];   /* the fleet's etcd prefix "keys/": bound into each record */
static uint64_t max_revision;

struct state {
    char name[KS_MAX_KEY_NAME + 1];
    uint64_t seq, mod_rev;
    uint64_t inc;              /* the key's incarnation, 0 unknown (a state of format 1) */
    int refused;               /* joining, and etcd's record of the name refused (not kept) */
    struct state *next;
};

static struct state *buckets[BUCKETS];
static size_t nstates;
/* changes counts every change of the state; written is its value when the
 * image last written was made (keytable_sync.c writes the file) */
static uint64_t changes, written;

#define STATE_MAGIC "KSCATST\2"
#define STATE_MAGIC_V1 "KSCATST\1"
#define STATE_HEADER 44
#define STATE_NONCE 20

void ks_catalogue_enable(ks_catalogue_put_fn put, const char *prefix)
{
    put_fn = put;
    snprintf(rec_prefix, sizeof(rec_prefix), "%skeys/", prefix);
}

int ks_catalogue_enabled(void)
{
    return put_fn != NULL;
}

static struct state **slot(const char *name)
{
    uint64_t h = 1469598103934665603ULL;
    const char *s;
    struct state **pp;

    for (s = name; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    for (pp = &buckets[h % BUCKETS]; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0)
            break;
    return pp;
}

void ks_catalogue_saw_revision(uint64_t rev)
{
    if (rev > max_revision)
        max_revision = rev;
}

/* A new, empty entry for name at *pp (its empty slot); NULL out of memory. */
static struct state *state_new(struct state **pp, const char *name)
{
    struct state *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    snprintf(s->name, sizeof(s->name), "%s", name);
    *pp = s;
    nstates++;
    return s;
}

int ks_catalogue_applied(const char *name, uint64_t seq, uint64_t mod_rev, uint64_t inc)
{
    struct state **pp = slot(name), *s = *pp;

    if (s == NULL && (s = state_new(pp, name)) == NULL)
        return -1;
    if (seq > s->seq) {
        s->seq = seq;
        changes++;
    }
    if (mod_rev > s->mod_rev)
        s->mod_rev = mod_rev;
    if (inc > s->inc) {
        s->inc = inc;
        changes++;
    }
    ks_catalogue_saw_revision(mod_rev);
    return 0;
}

int ks_catalogue_mark_joining(const char *name)
{
    struct state **pp = slot(name);

    if (*pp != NULL)
        return 0;   /* known already: not a key of before */
    if (state_new(pp, name) == NULL)
        return -1;
    changes++;
    return 0;
}

int ks_catalogue_is_joining(const char *name)
{
    struct state *s = *slot(name);

    return s != NULL && s->seq == 0;
}

int ks_catalogue_joining_refused(const char *name, int set)
{
    struct state *s = *slot(name);

    if (s == NULL)
        return 0;
    if (set)
        s->refused = 1;
    return s->refused;
}

void ks_catalogue_forget(const char *name)
{
    struct state **pp = slot(name), *s = *pp;

    if (s == NULL)
        return;
    *pp = s->next;
    free(s);
    nstates--;
    changes++;
}

struct ks_cat_name *ks_catalogue_joining(size_t *n)
{
    struct ks_cat_name *names;
    size_t i, count = 0;
    struct state *s;

    *n = 0;
    for (i = 0; i < BUCKETS; i++)
        for (s = buckets[i]; s != NULL; s = s->next)
            count += s->seq == 0;
    if (count == 0 || (names = calloc(count, sizeof(*names))) == NULL)
        return NULL;
    for (i = 0; i < BUCKETS; i++)
        for (s = buckets[i]; s != NULL; s = s->next)
            if (s->seq == 0)
                memcpy(names[(*n)++].s, s->name, sizeof(names[0].s));
    return names;
}

void ks_catalogue_touch(void)
{
    changes++;
}

int ks_catalogue_check_incarnation(const char *name, uint64_t inc, uint64_t *local)
{
    struct state *s = *slot(name);

    *local = s != NULL ? s->inc : 0;
    if (inc == 0 || s == NULL)
        return 0;   /* a format-1 record, or nothing known of the name: today's rules */
    if (s->inc == 0)
        return 1;   /* unknown (format-1 state): the next change is taken */
    return inc > s->inc ? 1 : inc == s->inc ? 0 : -1;
}

static void put_u32(uint8_t *p, uint32_t v);
static uint32_t get_u32(const uint8_t *p);
static void put_u64(uint8_t *p, uint64_t v);
static uint64_t get_u64(const uint8_t *p);

int ks_catalogue_state_image(uint8_t **out, size_t *outlen, uint64_t *tag, char *err,
                             size_t errlen)
{
    uint8_t *pt, *file;
    size_t i, off = 0, ptlen = 0;
    struct state *s;

    *out = NULL;
    *outlen = 0;
    *tag = changes;
    if (changes == written)
        return 0;
    for (i = 0; i < BUCKETS; i++)
        for (s = buckets[i]; s != NULL; s = s->next)
            ptlen += 1 + strlen(s->name) + 24;
    if (ptlen > KS_CAT_STATE_MAX - STATE_HEADER - KS_SEAL_TAG_LEN) {
        snprintf(err, errlen, "the catalogue state of %zu keys exceeds %u MiB", nstates,
                 KS_CAT_STATE_MAX >> 20);
        return -1;
    }
    pt = malloc(ptlen > 0 ? ptlen : 1);
    file = malloc(STATE_HEADER + ptlen + KS_SEAL_TAG_LEN);
    if (pt == NULL || file == NULL) {
        snprintf(err, errlen, "out of memory for the catalogue state");
        free(pt);
        free(file);
        return -1;
    }
    for (i = 0; i < BUCKETS; i++)
        for (s = buckets[i]; s != NULL; s = s->next) {
            size_t nl = strlen(s->name);

            pt[off++] = (uint8_t)nl;
            memcpy(pt + off, s->name, nl);
            off += nl;
            put_u64(pt + off, s->seq);
            put_u64(pt + off + 8, s->mod_rev);
            put_u64(pt + off + 16, s->inc);
            off += 24;
        }
    memcpy(file, STATE_MAGIC, 8);
    put_u32(file + 8, (uint32_t)nstates);
    put_u64(file + 12, max_revision);
    randombytes_buf(file + STATE_NONCE, KS_SEAL_NONCE_LEN);
    if (ks_master_seal(pt, ptlen, file, STATE_HEADER, file + STATE_NONCE,
                       file + STATE_HEADER) != 0) {
        snprintf(err, errlen, "cannot seal the catalogue state");
        free(pt);
        free(file);
        return -1;
    }
    free(pt);
    *out = file;
    *outlen = STATE_HEADER + ptlen + KS_SEAL_TAG_LEN;
    return 1;
}

void ks_catalogue_state_written(uint64_t tag)
{
    written = tag;
}

/* 1 for format 2, 0 for format 1, -1 if not a state file */
static int state_format(const uint8_t *file, size_t len)
{
    if (len < STATE_HEADER + KS_SEAL_TAG_LEN || len > KS_CAT_STATE_MAX)
        return -1;
    if (memcmp(file, STATE_MAGIC, 8) == 0)
        return 1;
    return memcmp(file, STATE_MAGIC_V1, 8) == 0 ? 0 : -1;
}

int ks_catalogue_state_parse(const uint8_t *file, size_t len, size_t *count, char *err,
                             size_t errlen)
{
    uint8_t *pt = NULL;
    size_t ptlen, off = 0, i;
    uint32_t n;
    int rc = -1, v1, f = state_format(file, len);

    *count = 0;
    if (f < 0) {
        snprintf(err, errlen, "it is not a catalogue state file");
        return -1;
    }
    v1 = f == 0;
    n = get_u32(file + 8);
    ptlen = len - STATE_HEADER - KS_SEAL_TAG_LEN;
    pt = malloc(ptlen > 0 ? ptlen : 1);
    if (pt == NULL || ks_master_unseal(file + STATE_HEADER, len - STATE_HEADER, file,
                                       STATE_HEADER, file + STATE_NONCE, pt) != 0) {
        snprintf(err, errlen, pt == NULL ? "out of memory"
                 : "it does not authenticate under the master key");
        goto out;
    }
    for (i = 0; i < n; i++) {
        char name[KS_MAX_KEY_NAME + 1];
        size_t nl, el = v1 ? 16 : 24;

        if (off >= ptlen || (nl = pt[off++]) == 0 || nl > KS_MAX_KEY_NAME || ptlen - off < nl + el)
            goto bad;
        memcpy(name, pt + off, nl);
        name[nl] = '\0';
        off += nl;
        if (ks_catalogue_applied(name, get_u64(pt + off), get_u64(pt + off + 8),
                                 v1 ? 0 : get_u64(pt + off + 16)) != 0)
            goto bad;
        off += el;
    }
    if (off != ptlen)
        goto bad;
    ks_catalogue_saw_revision(get_u64(file + 12));
    written = v1 ? changes - 1 : changes;   /* format 1 is rewritten in format 2 */
    *count = n;
    rc = 0;
    goto out;
bad:
    snprintf(err, errlen, "it is malformed");
out:
    free(pt);
    return rc;
}

int ks_catalogue_state_reseal(const uint8_t *file, size_t len, uint8_t **out, char *why,
                              size_t whylen)
{
    uint8_t *buf;
    int r;

    *out = NULL;
    if (state_format(file, len) < 0) {
        snprintf(why, whylen, "it is not a catalogue state file");
        return -1;
    }
    buf = malloc(len);
    if (buf == NULL)
        return -2;
    memcpy(buf, file, STATE_HEADER);   /* the same header but for the nonce */
    randombytes_buf(buf + STATE_NONCE, KS_SEAL_NONCE_LEN);
    r = ks_master_reseal(file + STATE_HEADER, len - STATE_HEADER, file, STATE_HEADER,
                         file + STATE_NONCE, buf, STATE_HEADER, buf + STATE_NONCE,
                         buf + STATE_HEADER);
    if (r != 0) {
        free(buf);
        if (r == -1)
            snprintf(why, whylen, "it does not authenticate under the master key");
        return r;
    }
    *out = buf;
    return 0;
}

int ks_catalogue_check(const char *name, uint64_t seq, uint64_t *applied)
{
    struct state *s = *slot(name);

    *applied = s != NULL ? s->seq : 0;
    if (s == NULL || seq > s->seq)
        return 1;
    return seq == s->seq ? 0 : -1;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* header || name (format 1); header || the record's etcd key PREFIX
 * "keys/" NAME (format 2: a record is not authentic under another prefix,
 * another fleet's or another key's). */
static uint8_t *make_ad(const uint8_t *header, size_t hl, const char *name, int bind,
                        size_t *adlen)
{
    size_t nl = strlen(name), pl = bind ? strlen(rec_prefix) : 0;
    uint8_t *ad = malloc(hl + pl + nl);

    if (ad != NULL) {
        memcpy(ad, header, hl);
        memcpy(ad + hl, rec_prefix, pl);
        memcpy(ad + hl + pl, name, nl);
    }
    *adlen = hl + pl + nl;
    return ad;
}

int ks_catalogue_publish(const char *name, int created, const struct ks_cat_file *files,
                         size_t n, char *err, size_t errlen)
{
    struct state *s = *slot(name);
    uint64_t seq, inc, expect = s != NULL ? s->mod_rev : 0, rev = 0;
    uint8_t *rec = NULL, *pt = NULL, *ad = NULL;
    size_t i, ptlen = 0, adlen, off;
    int rc = -1;

    if (put_fn == NULL || n > KS_CAT_MAX_FILES) {
        snprintf(err, errlen, "internal error: no catalogue");
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (files[i].len > KS_CAT_RECORD_MAX - ptlen) {
            snprintf(err, errlen, "the files of key %s are too large for the catalogue", name);
            return -1;
        }
        ptlen += 1 + strlen(files[i].name) + 4 + files[i].len;
    }
    /* above every revision seen, so above every earlier record of this name */
    seq = (max_revision > expect ? max_revision : expect) + 1;
    if (s != NULL && seq <= s->seq)
        seq = s->seq + 1;
    /* a key made here starts an incarnation; later records carry it (an
     * unknown one starts one too: the others then take this family whole) */
    inc = created || s == NULL || s->inc == 0 ? seq : s->inc;
    pt = malloc(ptlen > 0 ? ptlen : 1);
    rec = malloc(HEADER + ptlen + KS_SEAL_TAG_LEN);
    if (pt == NULL || rec == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (off = 0, i = 0; i < n; i++) {
        size_t fl = strlen(files[i].name);

        pt[off++] = (uint8_t)fl;
        memcpy(pt + off, files[i].name, fl);
        off += fl;
        put_u32(pt + off, (uint32_t)files[i].len);
        off += 4;
        memcpy(pt + off, files[i].data, files[i].len);
        off += files[i].len;
    }
    memcpy(rec, MAGIC, 8);
    put_u32(rec + 8, FORMAT);
    put_u32(rec + 12, (uint32_t)n);
    put_u64(rec + 16, seq);
    put_u64(rec + 24, inc);
    randombytes_buf(rec + 32, KS_SEAL_NONCE_LEN);
    ad = make_ad(rec, HEADER, name, 1, &adlen);
    if (ad == NULL || ks_master_seal(pt, ptlen, ad, adlen, rec + 32, rec + HEADER) != 0) {
        snprintf(err, errlen, "cannot seal the catalogue record of key %s", name);
        goto out;
    }
    rc = put_fn(name, expect, rec, HEADER + ptlen + KS_SEAL_TAG_LEN, &rev, err, errlen);
    if (rc == 1 && ks_catalogue_applied(name, seq, rev, inc) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc == 0 && rev > 0)
        ks_catalogue_saw_revision(rev);
out:
    free(ad);
    free(pt);
    free(rec);
    return rc;
}

int ks_catalogue_open(const char *name, const uint8_t *rec, size_t len,
                      struct ks_cat_record *r, char *why, size_t whylen)
{
    uint8_t *ad = NULL;
    size_t adlen, ptlen, off, i, nl = strlen(name), hl;
    uint32_t n, format;

    memset(r, 0, sizeof(*r));
    format = len >= 12 && memcmp(rec, MAGIC, 8) == 0 ? get_u32(rec + 8) : 0;
    hl = format == 1 ? HEADER_V1 : HEADER;
    if ((format != 1 && format != FORMAT) || len < hl + KS_SEAL_TAG_LEN ||
        len > KS_CAT_RECORD_MAX + hl + KS_SEAL_TAG_LEN) {
        snprintf(why, whylen, "not a catalogue record of format 1 or %d (%zu bytes)", FORMAT, len);
        return -1;
    }
    n = get_u32(rec + 12);
    if (n > KS_CAT_MAX_FILES) {
        snprintf(why, whylen, "a record of %u files (at most %d)", n, KS_CAT_MAX_FILES);
        return -1;
    }
    ptlen = len - hl - KS_SEAL_TAG_LEN;
    r->pt = malloc(ptlen > 0 ? ptlen : 1);
    ad = make_ad(rec, hl, name, format != 1, &adlen);
    if (r->pt == NULL || ad == NULL) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    if (ks_master_unseal(rec + hl, len - hl, ad, adlen, rec + hl - KS_SEAL_NONCE_LEN,
                         r->pt) != 0) {
        snprintf(why, whylen, "it does not authenticate under the master key (not written by "
                 "a replica with this master key for key %s under prefix %.*s, or altered)",
                 name, (int)(strlen(rec_prefix) - 5), rec_prefix);
        goto fail;
    }
    free(ad);
    ad = NULL;
    r->seq = get_u64(rec + 16);
    r->inc = format == 1 ? 0 : get_u64(rec + 24);
    /* authentic, but checked as if hostile anyway */
    for (off = 0, i = 0; i < n; i++) {
        size_t fl;
        uint32_t dl;

        if (off >= ptlen || (fl = r->pt[off++]) == 0 || fl >= KS_MF_NAME_MAX ||
            fl > ptlen - off || ptlen - off - fl < 4)
            goto bad;
        memcpy(r->f[i].name, r->pt + off, fl);
        r->f[i].name[fl] = '\0';
        off += fl;
        dl = get_u32(r->pt + off);
        off += 4;
        if (dl > ptlen - off)
            goto bad;
        /* only files of this key: NAME.something, no path */
        if (strlen(r->f[i].name) != fl || fl <= nl + 1 || strncmp(r->f[i].name, name, nl) != 0 ||
            r->f[i].name[nl] != '.' || strchr(r->f[i].name, '/') != NULL)
            goto bad;
        r->f[i].data = r->pt + off;
        r->f[i].len = dl;
        off += dl;
    }
    if (off != ptlen)
        goto bad;
    r->n = n;
    return 0;
bad:
    snprintf(why, whylen, "its list of files is malformed");
fail:
    free(ad);
    ks_catalogue_record_free(r);
    return -1;
}

void ks_catalogue_record_free(struct ks_cat_record *r)
{
    free(r->pt);
    r->pt = NULL;
    r->n = 0;
}
