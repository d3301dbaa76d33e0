/* The sealed manifest of the key directory; see manifest.h. */
#include "manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "masterkey.h"
#include "sealed_file.h"
#include "wire.h"

#define MAGIC "KSMANIF\1"
#define HEADER 48
#define VERSION 1
#define FILE_MAX ((size_t)64 * 1024 * 1024)

void ks_file_hash(const uint8_t *buf, size_t len, uint8_t out[KS_FILE_HASH_LEN])
{
    crypto_generichash(out, KS_FILE_HASH_LEN, buf, len, NULL, 0);
}

int ks_manifest_add(struct ks_manifest *m, const char *file,
                    const uint8_t hash[KS_FILE_HASH_LEN], uint8_t flags)
{
    struct ks_mf_entry *e;

    if (strlen(file) >= KS_MF_NAME_MAX)
        return -1;
    if (m->n == m->cap) {
        size_t cap = m->cap > 0 ? m->cap * 2 : 64;

        if (cap > KS_MANIFEST_MAX_ENTRIES || (e = realloc(m->e, cap * sizeof(*e))) == NULL)
            return -1;
        m->e = e;
        m->cap = cap;
    }
    e = &m->e[m->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->file, sizeof(e->file), "%s", file);
    e->flags = flags;
    memcpy(e->hash, hash, KS_FILE_HASH_LEN);
    m->sorted = 0;
    return 0;
}

void ks_manifest_free(struct ks_manifest *m)
{
    free(m->e);
    memset(m, 0, sizeof(*m));
}

static int by_file(const void *a, const void *b)
{
    return strcmp(((const struct ks_mf_entry *)a)->file, ((const struct ks_mf_entry *)b)->file);
}

void ks_manifest_sort(struct ks_manifest *m)
{
    if (m->n > 1)
        qsort(m->e, m->n, sizeof(*m->e), by_file);
    m->sorted = 1;
}

int ks_manifest_vouches(const struct ks_manifest *m, const char *file,
                        const uint8_t hash[KS_FILE_HASH_LEN], int *named, int *optional)
{
    size_t lo = 0, hi = m->n, i;
    int ok = 0;

    if (named != NULL)
        *named = 0;
    if (optional != NULL)
        *optional = 0;
    while (lo < hi) {   /* first entry >= file */
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(m->e[mid].file, file) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (i = lo; i < m->n && strcmp(m->e[i].file, file) == 0; i++) {
        if (named != NULL)
            *named = 1;
        if (optional != NULL && (m->e[i].flags & KS_MF_OPTIONAL))
            *optional = 1;
        if (hash != NULL && sodium_memcmp(m->e[i].hash, hash, KS_FILE_HASH_LEN) == 0)
            ok = 1;
    }
    return ok;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    ks_put_be32(p, (uint32_t)(v >> 32));
    ks_put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p)
{
    return ((uint64_t)ks_get_be32(p) << 32) | ks_get_be32(p + 4);
}

int ks_manifest_write(int dirfd, const struct ks_manifest *m, char *err, size_t errlen)
{
    size_t i, off = 0, bodylen = 0;
    uint8_t *body, *file;
    int r;

    for (i = 0; i < m->n; i++)
        bodylen += 2 + strlen(m->e[i].file) + KS_FILE_HASH_LEN;
    body = malloc(bodylen > 0 ? bodylen : 1);
    file = malloc(HEADER + bodylen + KS_SEAL_TAG_LEN);
    if (body == NULL || file == NULL) {
        snprintf(err, errlen, "out of memory for the manifest (%zu entries)", m->n);
        free(body);
        free(file);
        return -1;
    }
    for (i = 0; i < m->n; i++) {
        size_t nl = strlen(m->e[i].file);

        body[off++] = m->e[i].flags;
        body[off++] = (uint8_t)nl;
        memcpy(body + off, m->e[i].file, nl);
        off += nl;
        memcpy(body + off, m->e[i].hash, KS_FILE_HASH_LEN);
        off += KS_FILE_HASH_LEN;
    }
    memcpy(file, MAGIC, 8);
    ks_put_be32(file + 8, VERSION);
    ks_put_be32(file + 12, (uint32_t)m->n);
    put_be64(file + 16, m->gen);
    randombytes_buf(file + 24, KS_SEAL_NONCE_LEN);
    r = ks_master_seal(body, bodylen, file, HEADER, file + 24, file + HEADER);
    free(body);
    if (r != 0) {
        snprintf(err, errlen, "cannot seal the manifest with the master key");
        free(file);
        return -1;
    }
    r = ks_write_file_atomic_at(dirfd, KS_MANIFEST_FILE, KS_MANIFEST_TMP, file,
                                HEADER + bodylen + KS_SEAL_TAG_LEN, err, errlen);
    free(file);
    return r;
}

enum ks_mf_status ks_manifest_read(int dirfd, struct ks_manifest *m, char *why, size_t whylen)
{
    enum ks_mf_status st;
    uint8_t *file = NULL;
    char err[256];
    size_t len;

    memset(m, 0, sizeof(*m));
    if (ks_read_file_at(dirfd, KS_MANIFEST_FILE, FILE_MAX, &file, &len, err, sizeof(err)) != 0) {
        if (errno == ENOENT)
            return KS_MF_MISSING;
        snprintf(why, whylen, "%s", err);
        return KS_MF_INTERNAL;
    }
    st = ks_manifest_parse(file, len, m, why, whylen);
    free(file);
    return st;
}

enum ks_mf_status ks_manifest_parse(const uint8_t *file, size_t len, struct ks_manifest *m,
                                    char *why, size_t whylen)
{
    size_t bodylen, off = 0, i, count;
    enum ks_mf_status st = KS_MF_FORMAT;
    uint8_t *body = NULL;
    int r;

    memset(m, 0, sizeof(*m));
    if (len < HEADER + KS_SEAL_TAG_LEN || memcmp(file, MAGIC, 8) != 0 ||
        ks_get_be32(file + 8) != VERSION) {
        snprintf(why, whylen, "not a version %d keystore manifest", VERSION);
        goto out;
    }
    count = ks_get_be32(file + 12);
    m->gen = get_be64(file + 16);
    bodylen = len - HEADER - KS_SEAL_TAG_LEN;
    if (count > KS_MANIFEST_MAX_ENTRIES || (body = malloc(bodylen > 0 ? bodylen : 1)) == NULL) {
        snprintf(why, whylen, "too many entries (%zu) or out of memory", count);
        st = KS_MF_INTERNAL;
        goto out;
    }
    r = ks_master_unseal(file + HEADER, len - HEADER, file, HEADER, file + 24, body);
    if (r != 0) {
        snprintf(why, whylen, "does not authenticate under the master key");
        st = r == -1 ? KS_MF_AUTH : KS_MF_INTERNAL;
        goto out;
    }
    for (i = 0; i < count; i++) {
        char name[KS_MF_NAME_MAX];
        size_t nl;

        if (bodylen - off < 2 || (nl = body[off + 1]) == 0 || nl >= KS_MF_NAME_MAX ||
            bodylen - off - 2 < nl + KS_FILE_HASH_LEN) {
            snprintf(why, whylen, "entry %zu is truncated", i);
            goto out;
        }
        memcpy(name, body + off + 2, nl);
        name[nl] = '\0';
        if (ks_manifest_add(m, name, body + off + 2 + nl, body[off]) != 0) {
            snprintf(why, whylen, "out of memory");
            st = KS_MF_INTERNAL;
            goto out;
        }
        off += 2 + nl + KS_FILE_HASH_LEN;
    }
    if (off != bodylen) {
        snprintf(why, whylen, "%zu bytes after the last entry", bodylen - off);
        goto out;
    }
    ks_manifest_sort(m);
    st = KS_MF_OK;
out:
    free(body);
    if (st != KS_MF_OK) {
        free(m->e);
        m->e = NULL;
        m->n = m->cap = 0;
    }
    return st;
}
