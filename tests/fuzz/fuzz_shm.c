/* libFuzzer target: hostile contents of the shared-memory rings, through
 * the server's own ring consumer (daemon/conn_shm.c), request dispatch and
 * the real keys of fuzz_server.c (whose set-up this file reuses).
 *
 * Each input makes a sealed memfd, maps it as keystored does after Hello
 * (ks_conn_shm_accept), and plays steps on it; after each step the worker
 * serves the rings (ks_conn_shm_serve) until it closes the connection.
 * Input: 4 bytes, the client's starting request index (so frames wrap at
 * any place), then steps of one op byte:
 *   0: a request frame: 2 bytes claimed length L, then up to L bytes
 *   1: 4 bytes written over the request producer index
 *   2: 4 bytes written over the reply consumer index
 *   3: consume every reply like the client does, checking each decodes
 *   4: 2 bytes offset, 4 bytes value: written anywhere in the control page
 * Every reply must be a well-formed frame holding a decodable Response. */
#define LLVMFuzzerTestOneInput fuzz_server_test_one
#include "fuzz_server.c"
#undef LLVMFuzzerTestOneInput

#include <fcntl.h>
#include <sys/mman.h>

#include "daemon/conn_shm.h"
#include "shm_ring.h"

#define RING (128u * 1024)   /* >= 4 + keystored's default max_frame */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* What a client does with the replies: each must be a well-formed frame.
 * After the input lied about the reply indices, replies may rightly have
 * been overwritten: then only catch up. */
static void consume(uint8_t *base, uint32_t *tail, int lied)
{
    uint32_t head = ks_shm_load(base, KS_SHM_REP_HEAD);
    const uint8_t *ring = base + KS_SHM_HDR + RING;

    if (lied)
        *tail = head;
    while (head != *tail) {
        uint8_t hdr[4], *buf;
        uint32_t len, avail = head - *tail;
        Keystore__Response *r;

        if (avail > RING || avail < 4)
            die("reply ring index out of range");
        ks_shm_copy_out(hdr, ring, RING, *tail, 4);
        len = ks_get_be32(hdr);
        if (len == 0 || len > cfg.max_frame || len > avail - 4)
            die("reply frame length out of bounds");
        if ((buf = malloc(len)) == NULL)
            die("out of memory");
        ks_shm_copy_out(buf, ring, RING, *tail + 4, len);
        r = keystore__response__unpack(NULL, len, buf);
        if (r == NULL || r->body_case == KEYSTORE__RESPONSE__BODY__NOT_SET)
            die("reply does not decode");
        keystore__response__free_unpacked(r, NULL);
        free(buf);
        *tail += 4 + len;
    }
    ks_shm_store(base, KS_SHM_REP_TAIL, *tail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = KS_SHM_HDR + 2 * (size_t)RING, off = 4;
    Keystore__HelloReply hr = KEYSTORE__HELLO_REPLY__INIT;
    uint32_t head, rep_tail = 0;
    enum ks_conn_state st = KS_CONN_OK;
    struct ks_conn *c;
    uint8_t *base;
    int fd, served, lied = 0;

    if (size < 4)
        return 0;
    cfg.shared_memory = 1;
    fd = memfd_create("fuzz-rings", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)len) != 0
        || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
        die("memfd");
    base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        die("mmap");
    head = rd32(data);
    ks_shm_store(base, KS_SHM_REQ_HEAD, head);
    if ((c = ks_conn_new(-1, 0, 1, 1000)) == NULL)
        die("ks_conn_new");
    c->s.hello_done = 1;
    c->s.shm_ring_size = RING;
    c->shm_fd = fd;   /* the accept closes it; our mapping stays */
    ks_conn_shm_accept(&cfg, c, &hr);
    if (!hr.shm || c->shm == NULL)
        die("well-formed rings refused");
    while (st == KS_CONN_OK && off < size) {
        uint8_t op = data[off++] % 5;

        if (op == 0 && size - off >= 2) {
            uint32_t claim = (uint32_t)data[off] << 8 | data[off + 1], n;
            uint8_t hdr[4];

            off += 2;
            n = size - off < claim ? (uint32_t)(size - off) : claim;
            ks_put_be32(hdr, claim);
            ks_shm_copy_in(base + KS_SHM_HDR, RING, head, hdr, 4);
            ks_shm_copy_in(base + KS_SHM_HDR, RING, head + 4, data + off, n);
            off += n;
            head += 4 + claim;
            ks_shm_store(base, KS_SHM_REQ_HEAD, head);
        } else if (op == 1 && size - off >= 4) {
            head = rd32(data + off);
            off += 4;
            ks_shm_store(base, KS_SHM_REQ_HEAD, head);
        } else if (op == 2 && size - off >= 4) {
            ks_shm_store(base, KS_SHM_REP_TAIL, rd32(data + off));
            off += 4;
            lied = 1;
        } else if (op == 3) {
            ks_shm_store(base, KS_SHM_REP_HEAD, c->shm_rep_head);  /* undo any op 4 on it */
            consume(base, &rep_tail, lied);
        } else if (op == 4 && size - off >= 6) {
            uint32_t at = ((uint32_t)data[off] << 8 | data[off + 1]) % (KS_SHM_HDR - 4) & ~3u;

            ks_shm_store(base, at, rd32(data + off + 2));
            off += 6;
            lied = 1;
        } else {
            break;
        }
        st = ks_conn_shm_serve(&cfg, c, 1000, &served);
        if (served > KS_SHM_BUDGET)
            die("more requests served than the budget");
        /* (unless the input itself wrote over the server's word) */
        if (!lied && served > 0 && c->shm_req_tail != ks_shm_load(base, KS_SHM_REQ_TAIL))
            die("the server's consumer index was not published");
    }
    ks_conn_free(c);
    munmap(base, len);
    return 0;
}
