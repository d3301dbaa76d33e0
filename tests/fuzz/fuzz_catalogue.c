/* libFuzzer target: what keystored's key process parses from its catalogue
 * agent (catalogue = etcd), i.e. from etcd or whoever controls it.
 *
 * Input: byte 0 chooses the parser, the rest is its input.
 *   0  the agent socketpair's byte stream (daemon/catalogue_wire.c), written
 *      into a real socketpair and read back frame by frame with
 *      ks_catw_recv until it fails or ends;
 *   1  a catalogue record for ks_catalogue_open (store/catalogue.c):
 *      u8 name seed, u8 flags, u16 BE mutate offset, u8 mutate xor, body.
 *      flags & 1: the body is the plaintext of a record sealed here under the
 *      test master key (flags >> 4 files, plus KS_CAT_MAX_FILES - 4 with
 *      flags & 4, flags & 2: format version from the body's first byte;
 *      format 2 (incarnation from the mutate offset, associated data bound
 *      to the etcd key under PREFIX), format 1 with flags & 8) and, with a
 *      non-zero xor, one byte of the sealed record is changed: it must then
 *      be refused.  Else the body is the record as etcd would hand it over
 *      (raw garbage);
 *   2  the .catalogue state file (ks_catalogue_state_parse): u8 flags, u32 BE
 *      count, body; flags & 1: the body is the sealed plaintext, else the
 *      file; flags & 2: format 2 (an incarnation per name), else 1.
 * Whatever a parser accepts must lie inside its input. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "daemon/catalogue_wire.h"
#include "store/catalogue.h"
#include "store/masterkey.h"
#include "store/masterkey_gen.h"

#define PREFIX "/f/"

static char dir[64];

static void die(const char *what)
{
    fprintf(stderr, "fuzz_catalogue: %s\n", what);
    abort();
}

static void cleanup(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_catalogue: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[128], err[512];

    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        die("sodium_init");
    snprintf(dir, sizeof(dir), "/tmp/ksfuzzcat.XXXXXX");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    atexit(cleanup);
    snprintf(path, sizeof(path), "%s/master.key", dir);
    if (ks_master_key_generate(path, err, sizeof(err)) != 0 || ks_master_load(path) != 0)
        die("master key");
    ks_catalogue_enable(NULL, PREFIX);   /* the prefix records are bound to; no writes */
    return 0;
}

static void be(uint8_t *p, uint64_t v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_format(const uint8_t *rec, size_t len)
{
    return len >= 12 ? (uint32_t)rec[8] << 24 | (uint32_t)rec[9] << 16 | (uint32_t)rec[10] << 8 |
                       rec[11] : 0;
}

static void inside(const uint8_t *p, size_t len, const uint8_t *base, size_t blen)
{
    if (len > 0 && (p < base || p > base + blen || len > (size_t)(base + blen - p)))
        die("parsed data outside its input");
}

static void fuzz_wire(const uint8_t *d, size_t n)
{
    int sv[2];
    size_t off = 0;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair");
    while (off < n) {   /* the inputs are far below a socketpair's buffer */
        ssize_t w = write(sv[1], d + off, n - off);

        if (w <= 0)
            die("write to the socketpair");
        off += (size_t)w;
    }
    close(sv[1]);
    for (;;) {
        struct ks_catw_msg m;
        uint8_t *frame;
        int rc = ks_catw_recv(sv[0], &frame, &m, -1);

        if (rc != 0) {
            if (frame != NULL)
                die("a failed receive left a frame");
            break;
        }
        if (strnlen(m.name, sizeof(m.name)) >= sizeof(m.name))
            die("name not terminated");
        if (m.data != NULL)
            inside(m.data, m.len, frame, KS_CATW_FRAME_MAX);
        free(frame);
    }
    close(sv[0]);
}

static void fuzz_record(const uint8_t *d, size_t n)
{
    char name[20], why[512];
    struct ks_cat_record r;
    uint8_t *rec, flags, x;
    size_t i, nl, len, pos, hl;
    int rc;

    if (n < 5)
        return;
    nl = d[0] % 16 + 1;
    for (i = 0; i < nl; i++)
        name[i] = (char)('a' + (d[0] + i * 7) % 26);
    name[nl] = '\0';
    flags = d[1];
    pos = (size_t)d[2] << 8 | d[3];
    x = d[4];
    d += 5;
    n -= 5;
    hl = 56;
    if (flags & 1) {
        const char *bind = (flags & 8) ? "" : PREFIX "keys/";
        size_t bl = strlen(bind);
        uint8_t *ad;

        hl = (flags & 8) ? 48 : 56;
        len = hl + n + KS_SEAL_TAG_LEN;
        rec = malloc(len);
        ad = malloc(hl + bl + nl);
        if (rec == NULL || ad == NULL)
            die("out of memory");
        memcpy(rec, "KSCAT\0\0\1", 8);
        be(rec + 8, (flags & 2) && n > 0 ? d[0] : (flags & 8) ? 1 : 2, 4);
        /* flags & 4: past the limit of files per record too */
        be(rec + 12, (flags >> 4) + ((flags & 4) ? KS_CAT_MAX_FILES - 4 : 0), 4);
        be(rec + 16, 7, 8);
        if (hl == 56)
            be(rec + 24, pos, 8);
        randombytes_buf(rec + hl - KS_SEAL_NONCE_LEN, KS_SEAL_NONCE_LEN);
        memcpy(ad, rec, hl);
        memcpy(ad + hl, bind, bl);
        memcpy(ad + hl + bl, name, nl);
        if (ks_master_seal(d, n, ad, hl + bl + nl, rec + hl - KS_SEAL_NONCE_LEN, rec + hl) != 0)
            die("seal");
        free(ad);
        if (x != 0)
            rec[pos % len] ^= x;
    } else {
        len = n;
        rec = malloc(len > 0 ? len : 1);
        if (rec == NULL)
            die("out of memory");
        memcpy(rec, d, n);
    }
    rc = ks_catalogue_open(name, rec, len, &r, why, sizeof(why));
    if (rc == 0) {
        if ((flags & 1) && x != 0)
            die("a sealed record changed after sealing was accepted");
        if (r.n > KS_CAT_MAX_FILES)
            die("too many files");
        for (i = 0; i < r.n; i++) {
            /* its format's header (a raw record of either format) */
            hl = get_format(rec, len) == 1 ? 48 : 56;
            inside(r.f[i].data, r.f[i].len, r.pt, len - hl - KS_SEAL_TAG_LEN);
            if (strncmp(r.f[i].name, name, nl) != 0 || r.f[i].name[nl] != '.' ||
                strchr(r.f[i].name, '/') != NULL)
                die("a file that is not the key's own");
        }
        ks_catalogue_record_free(&r);
    } else if (why[0] == '\0') {
        die("refused without a reason");
    }
    free(rec);
}

static void fuzz_state(const uint8_t *d, size_t n)
{
    char err[512] = "";
    uint8_t *file;
    size_t len, count;

    if (n < 5)
        return;
    if (d[0] & 1) {
        len = 44 + (n - 5) + KS_SEAL_TAG_LEN;
        file = malloc(len);
        if (file == NULL)
            die("out of memory");
        memcpy(file, (d[0] & 2) ? "KSCATST\2" : "KSCATST\1", 8);
        memcpy(file + 8, d + 1, 4);
        be(file + 12, 9, 8);
        randombytes_buf(file + 20, KS_SEAL_NONCE_LEN);
        if (ks_master_seal(d + 5, n - 5, file, 44, file + 20, file + 44) != 0)
            die("seal");
    } else {
        len = n - 1;
        file = malloc(len > 0 ? len : 1);
        if (file == NULL)
            die("out of memory");
        memcpy(file, d + 1, len);
    }
    if (ks_catalogue_state_parse(file, len, &count, err, sizeof(err)) != 0 && err[0] == '\0')
        die("state refused without a reason");
    free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_wire(data + 1, size - 1); break;
    case 1: fuzz_record(data + 1, size - 1); break;
    default: fuzz_state(data + 1, size - 1); break;
    }
    return 0;
}
