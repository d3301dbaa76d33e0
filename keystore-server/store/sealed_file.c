/* Key file sealing and atomic file I/O; see sealed_file.h. */
#include "sealed_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "masterkey.h"
#include "wire.h"

static void put_be64(uint8_t *p, uint64_t v)
{
    ks_put_be32(p, (uint32_t)(v >> 32));
    ks_put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p)
{
    return ((uint64_t)ks_get_be32(p) << 32) | ks_get_be32(p + 4);
}

/* Associated data: header || name. */
static uint8_t *make_ad(const uint8_t *hdr, size_t hdrlen, const char *name, size_t *adlen)
{
    size_t nlen = strlen(name);
    uint8_t *ad = malloc(hdrlen + nlen);

    if (ad == NULL)
        return NULL;
    memcpy(ad, hdr, hdrlen);
    memcpy(ad + hdrlen, name, nlen);
    *adlen = hdrlen + nlen;
    return ad;
}

int ks_seal_key(const char *name, const struct ks_keyfile_meta *meta,
                const uint8_t *der, size_t derlen, uint8_t **out, size_t *outlen)
{
    size_t len = KS_KEYFILE_HEADER + derlen + KS_SEAL_TAG_LEN;
    uint8_t *buf, *ad;
    size_t adlen;
    int r;

    *out = NULL;
    if (len > KS_KEYFILE_MAX)
        return -1;
    buf = malloc(len);
    if (buf == NULL)
        return -1;
    memcpy(buf, KS_KEYFILE_MAGIC, KS_KEYFILE_MAGIC_LEN);
    ks_put_be32(buf + 8, KS_KEYFILE_VERSION);
    ks_put_be32(buf + 12, meta->key_type);
    put_be64(buf + 16, meta->created);
    randombytes_buf(buf + 24, KS_SEAL_NONCE_LEN);
    ks_put_be32(buf + 48, meta->usage);
    ks_put_be32(buf + 52, 0);
    ad = make_ad(buf, KS_KEYFILE_HEADER, name, &adlen);
    if (ad == NULL) {
        free(buf);
        return -1;
    }
    r = ks_master_seal(der, derlen, ad, adlen, buf + 24, buf + KS_KEYFILE_HEADER);
    free(ad);
    if (r != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

enum ks_unseal_status ks_unseal_key(const char *name, const uint8_t *file, size_t filelen,
                                    struct ks_keyfile_meta *meta,
                                    uint8_t **der, size_t *derlen, char *why, size_t whylen)
{
    enum ks_unseal_status st;
    uint8_t *pt;

    *der = NULL;
    if (filelen < KS_KEYFILE_HEADER_V1 + KS_SEAL_TAG_LEN + 1)   /* says why */
        return ks_unseal_key_into(name, file, filelen, meta, NULL, 0, derlen, why, whylen);
    pt = sodium_malloc(filelen);
    if (pt == NULL)
        return KS_UNSEAL_INTERNAL;
    st = ks_unseal_key_into(name, file, filelen, meta, pt, filelen, derlen, why, whylen);
    if (st != KS_UNSEAL_OK) {
        sodium_free(pt);
        return st;
    }
    *der = pt;
    return KS_UNSEAL_OK;
}

enum ks_unseal_status ks_unseal_key_into(const char *name, const uint8_t *file, size_t filelen,
                                         struct ks_keyfile_meta *meta, uint8_t *pt,
                                         size_t ptcap, size_t *derlen, char *why, size_t whylen)
{
    size_t ctlen, adlen, hdrlen;
    uint8_t *ad;
    int r;

    if (filelen < KS_KEYFILE_HEADER_V1 + KS_SEAL_TAG_LEN + 1) {
        snprintf(why, whylen, "file is too short (%zu bytes) to be a sealed key", filelen);
        return KS_UNSEAL_FORMAT;
    }
    if (memcmp(file, KS_KEYFILE_MAGIC, KS_KEYFILE_MAGIC_LEN) != 0) {
        snprintf(why, whylen, "not a keystore key file (bad magic)");
        return KS_UNSEAL_FORMAT;
    }
    meta->version = ks_get_be32(file + 8);
    if (meta->version != 1 && meta->version != KS_KEYFILE_VERSION) {
        snprintf(why, whylen, "key file format version %u is not supported (this server reads "
                 "1 and %d)", meta->version, KS_KEYFILE_VERSION);
        return KS_UNSEAL_FORMAT;
    }
    hdrlen = meta->version == 1 ? KS_KEYFILE_HEADER_V1 : KS_KEYFILE_HEADER;
    if (filelen < hdrlen + KS_SEAL_TAG_LEN + 1) {
        snprintf(why, whylen, "file is too short (%zu bytes) to be a sealed key", filelen);
        return KS_UNSEAL_FORMAT;
    }
    meta->key_type = ks_get_be32(file + 12);
    meta->created = get_be64(file + 16);
    meta->usage = meta->version == 1 ? 0 : ks_get_be32(file + 48);
    ctlen = filelen - hdrlen;
    if (ctlen - KS_SEAL_TAG_LEN > ptcap)
        return KS_UNSEAL_INTERNAL;
    ad = make_ad(file, hdrlen, name, &adlen);
    if (ad == NULL)
        return KS_UNSEAL_INTERNAL;
    r = ks_master_unseal(file + hdrlen, ctlen, ad, adlen, file + 24, pt);
    free(ad);
    if (r != 0) {
        sodium_memzero(pt, ctlen - KS_SEAL_TAG_LEN);
        if (r == -1)
            snprintf(why, whylen, "does not authenticate under the master key "
                     "(tampered, renamed, or sealed with another master key)");
        return r == -1 ? KS_UNSEAL_AUTH : KS_UNSEAL_INTERNAL;
    }
    *derlen = ctlen - KS_SEAL_TAG_LEN;
    return KS_UNSEAL_OK;
}

int ks_reseal_key(const char *name, const uint8_t *file, size_t filelen,
                  uint8_t **out, char *why, size_t whylen)
{
    uint8_t *buf, *ad, *new_ad;
    size_t hdrlen, adlen, new_adlen;
    uint32_t version;
    int r;

    *out = NULL;
    if (filelen < KS_KEYFILE_HEADER_V1 + KS_SEAL_TAG_LEN + 1 || filelen > KS_KEYFILE_MAX ||
        memcmp(file, KS_KEYFILE_MAGIC, KS_KEYFILE_MAGIC_LEN) != 0) {
        snprintf(why, whylen, "not a keystore key file");
        return -1;
    }
    version = ks_get_be32(file + 8);
    if (version != 1 && version != KS_KEYFILE_VERSION) {
        snprintf(why, whylen, "key file format version %u is not supported", version);
        return -1;
    }
    hdrlen = version == 1 ? KS_KEYFILE_HEADER_V1 : KS_KEYFILE_HEADER;
    if (filelen < hdrlen + KS_SEAL_TAG_LEN + 1) {
        snprintf(why, whylen, "file is too short to be a sealed key");
        return -1;
    }
    buf = malloc(filelen);
    if (buf == NULL)
        return -2;
    memcpy(buf, file, hdrlen);   /* same header but for the nonce */
    randombytes_buf(buf + 24, KS_SEAL_NONCE_LEN);
    ad = make_ad(file, hdrlen, name, &adlen);
    new_ad = make_ad(buf, hdrlen, name, &new_adlen);
    if (ad == NULL || new_ad == NULL) {
        free(ad);
        free(new_ad);
        free(buf);
        return -2;
    }
    r = ks_master_reseal(file + hdrlen, filelen - hdrlen, ad, adlen, file + 24, new_ad,
                         new_adlen, buf + 24, buf + hdrlen);
    free(ad);
    free(new_ad);
    if (r != 0) {
        if (r == -1)
            snprintf(why, whylen, "does not authenticate under the current master key");
        free(buf);
        return r;
    }
    *out = buf;
    return 0;
}
