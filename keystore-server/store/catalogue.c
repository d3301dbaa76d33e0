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
#define HEADER 48
#define BUCKETS 4096

static ks_catalogue_put_fn put_fn;
static uint64_t max_revision;

struct state {
    char name[KS_MAX_KEY_NAME + 1];
    uint64_t seq, mod_rev;
    struct state *next;
};

static struct state *buckets[BUCKETS];
static size_t nstates;
static int dirty, state_dirfd = -1;

#define STATE_FILE ".catalogue"
#define STATE_TMP ".catalogue.tmp"
#define STATE_MAGIC "KSCATST\1"
#define STATE_HEADER 44

void ks_catalogue_enable(ks_catalogue_put_fn put)
{
    put_fn = put;
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

int ks_catalogue_applied(const char *name, uint64_t seq, uint64_t mod_rev)
{
    struct state **pp = slot(name), *s = *pp;

    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return -1;
        snprintf(s->name, sizeof(s->name), "%s", name);
        *pp = s;
        nstates++;
    }
    if (seq > s->seq) {
        s->seq = seq;
        dirty = 1;
    }
    if (mod_rev > s->mod_rev)
        s->mod_rev = mod_rev;
    ks_catalogue_saw_revision(mod_rev);
    return 0;
}

static void put_u32(uint8_t *p, uint32_t v);
static uint32_t get_u32(const uint8_t *p);
static void put_u64(uint8_t *p, uint64_t v);
static uint64_t get_u64(const uint8_t *p);

int ks_catalogue_state_flush(char *err, size_t errlen)
{
    uint8_t *pt, *file;
    size_t i, off = 0, ptlen = 0;
    struct state *s;
    char why[256];
    int rc = -1;

    if (!dirty || state_dirfd < 0)
        return 0;
    for (i = 0; i < BUCKETS; i++)
        for (s = buckets[i]; s != NULL; s = s->next)
            ptlen += 1 + strlen(s->name) + 16;
    pt = malloc(ptlen > 0 ? ptlen : 1);
    file = malloc(STATE_HEADER + ptlen + KS_SEAL_TAG_LEN);
    if (pt == NULL || file == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (i = 0; i < BUCKETS; i++)
        for (s = buckets[i]; s != NULL; s = s->next) {
            size_t nl = strlen(s->name);

            pt[off++] = (uint8_t)nl;
            memcpy(pt + off, s->name, nl);
            off += nl;
            put_u64(pt + off, s->seq);
            put_u64(pt + off + 8, s->mod_rev);
            off += 16;
        }
    memcpy(file, STATE_MAGIC, 8);
    put_u32(file + 8, (uint32_t)nstates);
    put_u64(file + 12, max_revision);
    randombytes_buf(file + 20, KS_SEAL_NONCE_LEN);
    if (ks_master_seal(pt, ptlen, file, STATE_HEADER, file + 20, file + STATE_HEADER) != 0) {
        snprintf(err, errlen, "cannot seal the catalogue state");
        goto out;
    }
    if (ks_write_file_atomic_at(state_dirfd, STATE_FILE, STATE_TMP, file,
                                STATE_HEADER + ptlen + KS_SEAL_TAG_LEN, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot write the catalogue state %s: %s", STATE_FILE, why);
        goto out;
    }
    dirty = 0;
    rc = 0;
out:
    free(pt);
    free(file);
    return rc;
}

int ks_catalogue_state_load(int dirfd, char *err, size_t errlen)
{
    uint8_t *file = NULL, *pt = NULL;
    size_t len, ptlen, off = 0, i;
    char why[256];
    uint32_t n;
    int rc = -1;

    state_dirfd = dirfd;
    if (ks_read_file_at(dirfd, STATE_FILE, KS_CAT_RECORD_MAX, &file, &len, why,
                        sizeof(why)) != 0)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", STATE_FILE, why), -1);
    if (len < STATE_HEADER + KS_SEAL_TAG_LEN || memcmp(file, STATE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s is not a catalogue state file", STATE_FILE);
        goto out;
    }
    n = get_u32(file + 8);
    ptlen = len - STATE_HEADER - KS_SEAL_TAG_LEN;
    pt = malloc(ptlen > 0 ? ptlen : 1);
    if (pt == NULL || ks_master_unseal(file + STATE_HEADER, len - STATE_HEADER, file,
                                       STATE_HEADER, file + 20, pt) != 0) {
        snprintf(err, errlen, "%s does not authenticate under the master key", STATE_FILE);
        goto out;
    }
    for (i = 0; i < n; i++) {
        char name[KS_MAX_KEY_NAME + 1];
        size_t nl;

        if (off >= ptlen || (nl = pt[off++]) == 0 || nl > KS_MAX_KEY_NAME || ptlen - off < nl + 16)
            goto bad;
        memcpy(name, pt + off, nl);
        name[nl] = '\0';
        off += nl;
        if (ks_catalogue_applied(name, get_u64(pt + off), get_u64(pt + off + 8)) != 0)
            goto bad;
        off += 16;
    }
    if (off != ptlen)
        goto bad;
    ks_catalogue_saw_revision(get_u64(file + 12));
    dirty = 0;
    rc = 0;
    goto out;
bad:
    snprintf(err, errlen, "%s is malformed", STATE_FILE);
out:
    free(pt);
    free(file);
    return rc;
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

/* header || name */
static uint8_t *make_ad(const uint8_t *header, const char *name, size_t *adlen)
{
    size_t nl = strlen(name);
    uint8_t *ad = malloc(HEADER + nl);

    if (ad != NULL) {
        memcpy(ad, header, HEADER);
        memcpy(ad + HEADER, name, nl);
    }
    *adlen = HEADER + nl;
    return ad;
}

int ks_catalogue_publish(const char *name, const struct ks_cat_file *files, size_t n,
                         char *err, size_t errlen)
{
    struct state *s = *slot(name);
    uint64_t seq, expect = s != NULL ? s->mod_rev : 0, rev = 0;
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
    put_u32(rec + 8, 1);
    put_u32(rec + 12, (uint32_t)n);
    put_u64(rec + 16, seq);
    randombytes_buf(rec + 24, KS_SEAL_NONCE_LEN);
    ad = make_ad(rec, name, &adlen);
    if (ad == NULL || ks_master_seal(pt, ptlen, ad, adlen, rec + 24, rec + HEADER) != 0) {
        snprintf(err, errlen, "cannot seal the catalogue record of key %s", name);
        goto out;
    }
    rc = put_fn(name, expect, rec, HEADER + ptlen + KS_SEAL_TAG_LEN, &rev, err, errlen);
    if (rc == 1 && ks_catalogue_applied(name, seq, rev) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc == 1) {
        char why[512];

        /* etcd has it already: a failure here costs only replay detection */
        if (ks_catalogue_state_flush(why, sizeof(why)) != 0)
            ks_log("error: catalogue: %s", why);
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
    size_t adlen, ptlen, off, i, nl = strlen(name);
    uint32_t n;

    memset(r, 0, sizeof(*r));
    if (len < HEADER + KS_SEAL_TAG_LEN || len > KS_CAT_RECORD_MAX + HEADER + KS_SEAL_TAG_LEN ||
        memcmp(rec, MAGIC, 8) != 0 || get_u32(rec + 8) != 1) {
        snprintf(why, whylen, "not a catalogue record (%zu bytes)", len);
        return -1;
    }
    n = get_u32(rec + 12);
    if (n > KS_CAT_MAX_FILES) {
        snprintf(why, whylen, "a record of %u files (at most %d)", n, KS_CAT_MAX_FILES);
        return -1;
    }
    ptlen = len - HEADER - KS_SEAL_TAG_LEN;
    r->pt = malloc(ptlen > 0 ? ptlen : 1);
    ad = make_ad(rec, name, &adlen);
    if (r->pt == NULL || ad == NULL) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    if (ks_master_unseal(rec + HEADER, len - HEADER, ad, adlen, rec + 24, r->pt) != 0) {
        snprintf(why, whylen, "it does not authenticate under the master key (not written by "
                 "a replica with this master key for key %s, or altered)", name);
        goto fail;
    }
    free(ad);
    ad = NULL;
    r->seq = get_u64(rec + 16);
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
