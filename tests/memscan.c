/* memscan PID KEY.pem [--expect-found]
 *
 * Reads every readable mapping of process PID (/proc/PID/maps + /proc/PID/mem)
 * and searches it for the private components of KEY.pem: RSA d, p, q, dP, dQ,
 * qInv; the EC private scalar; the raw Ed25519/Ed448 private key.  Each is
 * looked for big-endian (DER, BN_bn2bin) and little-endian (the in-memory
 * BIGNUM limb order on little-endian machines), by a 24-byte window from its
 * middle so a partial copy is found too.
 *
 * Exit 0: nothing found (or, with --expect-found, at least one found).
 * Exit 1: the opposite.  Exit 2: the scan itself failed.
 * The key bytes are never printed, only the names of the components found. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WINDOW 24
#define MAXPAT 16

struct pattern {
    const char *name;
    unsigned char be[WINDOW], le[WINDOW];
    size_t len;
    int found;
};

static struct pattern pats[MAXPAT];
static int npats;

static void add_bytes(const char *name, const unsigned char *v, size_t n)
{
    struct pattern *p;
    size_t off, i;

    if (npats >= MAXPAT || n < 16)
        return;
    p = &pats[npats++];
    p->name = name;
    p->len = n < WINDOW ? n : WINDOW;
    off = (n - p->len) / 2;
    memcpy(p->be, v + off, p->len);
    /* the same window of the reversed byte string */
    for (i = 0; i < p->len; i++)
        p->le[i] = v[n - 1 - off - i];
}

static void add_bn(EVP_PKEY *pk, const char *param, const char *name)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int n;

    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        return;
    n = BN_bn2bin(bn, buf);
    if (n > 0 && (size_t)n <= sizeof(buf))
        add_bytes(name, buf, (size_t)n);
    OPENSSL_cleanse(buf, sizeof(buf));
    BN_clear_free(bn);
}

static void scan(const unsigned char *buf, size_t n)
{
    int k;

    for (k = 0; k < npats; k++) {
        struct pattern *p = &pats[k];

        if (p->found || n < p->len)
            continue;
        if (memmem(buf, n, p->be, p->len) != NULL || memmem(buf, n, p->le, p->len) != NULL)
            p->found = 1;
    }
}

int main(int argc, char **argv)
{
    char path[64], line[512];
    FILE *maps, *kf;
    EVP_PKEY *pk;
    int memfd, k, nfound = 0, expect_found;
    size_t bytes = 0, regions = 0;
    unsigned char *chunk;
    const size_t CH = 1 << 20;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: memscan PID KEY.pem [--expect-found]\n");
        return 2;
    }
    expect_found = argc == 4 && strcmp(argv[3], "--expect-found") == 0;
    if ((kf = fopen(argv[2], "r")) == NULL || (pk = PEM_read_PrivateKey(kf, NULL, NULL, NULL)) == NULL) {
        fprintf(stderr, "memscan: cannot read private key %s\n", argv[2]);
        return 2;
    }
    fclose(kf);
    add_bn(pk, OSSL_PKEY_PARAM_RSA_D, "RSA private exponent d");
    add_bn(pk, OSSL_PKEY_PARAM_RSA_FACTOR1, "RSA prime p");
    add_bn(pk, OSSL_PKEY_PARAM_RSA_FACTOR2, "RSA prime q");
    add_bn(pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, "RSA CRT exponent dP");
    add_bn(pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, "RSA CRT exponent dQ");
    add_bn(pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, "RSA CRT coefficient qInv");
    if (EVP_PKEY_is_a(pk, "EC"))
        add_bn(pk, OSSL_PKEY_PARAM_PRIV_KEY, "EC private scalar");
    if (EVP_PKEY_is_a(pk, "ED25519") || EVP_PKEY_is_a(pk, "ED448")) {
        unsigned char raw[64];
        size_t rl = sizeof(raw);

        if (EVP_PKEY_get_raw_private_key(pk, raw, &rl) == 1)
            add_bytes("EdDSA private key", raw, rl);
        OPENSSL_cleanse(raw, sizeof(raw));
    }
    EVP_PKEY_free(pk);
    if (npats == 0) {
        fprintf(stderr, "memscan: no private components found in %s\n", argv[2]);
        return 2;
    }

    snprintf(path, sizeof(path), "/proc/%s/maps", argv[1]);
    maps = fopen(path, "r");
    snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
    memfd = open(path, O_RDONLY);
    chunk = malloc(CH + WINDOW);
    if (maps == NULL || memfd < 0 || chunk == NULL) {
        fprintf(stderr, "memscan: cannot open memory of pid %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    while (fgets(line, sizeof(line), maps) != NULL) {
        uint64_t start, end, a;
        char perms[8];

        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &start, &end, perms) != 3 || perms[0] != 'r')
            continue;
        if (strstr(line, "[vvar]") != NULL || strstr(line, "[vsyscall]") != NULL)
            continue;
        regions++;
        /* overlap chunks by WINDOW bytes so a pattern across a boundary is seen */
        for (a = start; a < end; a += CH) {
            size_t want = (size_t)((end - a) < CH + WINDOW ? (end - a) : CH + WINDOW);
            ssize_t got = pread(memfd, chunk, want, (off_t)a);

            if (got <= 0)
                break;
            bytes += (size_t)got;
            scan(chunk, (size_t)got);
        }
    }
    fclose(maps);
    close(memfd);
    if (bytes == 0) {
        fprintf(stderr, "memscan: read nothing from pid %s\n", argv[1]);
        return 2;
    }
    for (k = 0; k < npats; k++) {
        if (pats[k].found) {
            nfound++;
            printf("memscan: FOUND %s in pid %s\n", pats[k].name, argv[1]);
        }
    }
    printf("memscan: scanned %zu bytes in %zu regions of pid %s for %d key components: %d found\n",
           bytes, regions, argv[1], npats, nfound);
    OPENSSL_cleanse(pats, sizeof(pats));
    free(chunk);
    if (expect_found)
        return nfound > 0 ? 0 : 1;
    return nfound == 0 ? 0 : 1;
}
