/* catforge MASTER.key ETCDKEY IN OUT SEQ[:INC] [FROM=TO ...]
 *
 * The tests' forger of catalogue records (the format is in
 * keystore-server/store/catalogue.h, written out again here on purpose: a
 * test must not trust the code it tests).  It opens IN, the record stored
 * at ETCDKEY (PREFIX "keys/" NAME) of format 1 or 2, with the master key,
 * renames its files as told (FROM=TO; an empty TO drops the file) and
 * seals the result as OUT, in IN's format, with sequence SEQ and (format
 * 2) IN's incarnation, or INC if given.  Whoever holds the master key can
 * do as much: the tests use it to show what a replica refuses even from an
 * authentic record.  Exit 0, or 1 with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define HEADER_V1 48   /* format 1: no incarnation, associated data header || NAME */
#define HEADER_V2 56   /* format 2: u64 incarnation at 24, header || ETCDKEY */
#define MAX_FILES 256
#define MAX_REC (64u * 1024 * 1024)

static void die(const char *what)
{
    fprintf(stderr, "catforge: %s\n", what);
    exit(1);
}

static uint8_t *slurp(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(max);

    if (f == NULL || buf == NULL)
        die(path);
    *len = fread(buf, 1, max, f);
    if (ferror(f) || !feof(f))
        die("cannot read a file, or it is too large");
    fclose(f);
    return buf;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static size_t HEADER;   /* of IN's format */

/* header || what (NAME or the etcd key) */
static uint8_t *ad_of(const uint8_t *header, const char *what, size_t *adlen)
{
    size_t nl = strlen(what);
    uint8_t *ad = malloc(HEADER + nl);

    if (ad == NULL)
        die("out of memory");
    memcpy(ad, header, HEADER);
    memcpy(ad + HEADER, what, nl);
    *adlen = HEADER + nl;
    return ad;
}

int main(int argc, char **argv)
{
    uint8_t *key, *rec, *pt, *npt, *out, *ad;
    size_t klen, len, ptlen, off, noff = 0, adlen;
    unsigned long long seq, got;
    uint32_t n, kept = 0, i, format;
    const char *bound, *slash;
    char *end;
    int a;
    FILE *f;

    if (argc < 6 || sodium_init() < 0)
        die("usage: catforge MASTER.key ETCDKEY IN OUT SEQ[:INC] [FROM=TO ...]");
    key = slurp(argv[1], 64, &klen);
    if (klen != crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
        die("the master key is not 32 bytes");
    rec = slurp(argv[3], MAX_REC, &len);
    if (len < 12 || memcmp(rec, "KSCAT\0\0\1", 8) != 0)
        die("IN is not a catalogue record");
    format = get_u32(rec + 8);
    if (format != 1 && format != 2)
        die("IN is of a format catforge does not know");
    HEADER = format == 1 ? HEADER_V1 : HEADER_V2;
    slash = strrchr(argv[2], '/');
    bound = format == 1 && slash != NULL ? slash + 1 : argv[2];
    if (len < HEADER + 16)
        die("IN is too short");
    n = get_u32(rec + 12);
    ptlen = len - HEADER - 16;
    pt = malloc(ptlen + 1);
    npt = malloc(ptlen + 1 + (size_t)argc * 256);
    out = malloc(HEADER + ptlen + (size_t)argc * 256 + 16);
    if (pt == NULL || npt == NULL || out == NULL || n > MAX_FILES)
        die("out of memory, or too many files");
    ad = ad_of(rec, bound, &adlen);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &got, NULL, rec + HEADER, len - HEADER,
                                                   ad, adlen, rec + HEADER - 24, key) != 0)
        die("IN does not authenticate for ETCDKEY under the master key");
    free(ad);
    for (off = 0, i = 0; i < n; i++) {
        char name[256];
        const char *to = NULL;
        size_t fl, tl;
        uint32_t dl;

        if (off >= ptlen)
            die("IN's list of files is malformed");
        fl = pt[off++];
        if (fl > ptlen - off || ptlen - off - fl < 4)
            die("IN's list of files is malformed");
        memcpy(name, pt + off, fl);
        name[fl] = '\0';
        off += fl;
        dl = get_u32(pt + off);
        off += 4;
        if (dl > ptlen - off)
            die("IN's list of files is malformed");
        for (a = 6; a < argc && to == NULL; a++)
            if (strncmp(argv[a], name, fl) == 0 && argv[a][fl] == '=')
                to = argv[a] + fl + 1;
        if (to == NULL)
            to = name;
        if ((tl = strlen(to)) > 0) {
            if (tl > 255)
                die("a file name is too long");
            npt[noff++] = (uint8_t)tl;
            memcpy(npt + noff, to, tl);
            noff += tl;
            put_u32(npt + noff, dl);
            noff += 4;
            memcpy(npt + noff, pt + off, dl);
            noff += dl;
            kept++;
        }
        off += dl;
    }
    seq = strtoull(argv[5], &end, 10);
    memcpy(out, rec, HEADER - 24);   /* magic, format, n, seq, incarnation */
    put_u32(out + 12, kept);
    put_u32(out + 16, (uint32_t)(seq >> 32));
    put_u32(out + 20, (uint32_t)seq);
    if (*end == ':') {
        unsigned long long inc = strtoull(end + 1, NULL, 10);

        if (format != 2)
            die("a record of format 1 has no incarnation");
        put_u32(out + 24, (uint32_t)(inc >> 32));
        put_u32(out + 28, (uint32_t)inc);
    }
    randombytes_buf(out + HEADER - 24, 24);
    ad = ad_of(out, bound, &adlen);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + HEADER, &got, npt, noff, ad, adlen, NULL,
                                               out + HEADER - 24, key);
    free(ad);
    f = fopen(argv[4], "wb");
    if (f == NULL || fwrite(out, 1, HEADER + got, f) != HEADER + got || fclose(f) != 0)
        die(argv[4]);
    sodium_memzero(key, klen);
    return 0;
}
