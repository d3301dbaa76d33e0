/* Shared-memory rings of one client connection; see conn_shm.h. */
#include "conn_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "ops/dispatch.h"
#include "shm_ring.h"

#define MAX_FDS 8

ssize_t ks_conn_shm_recv(struct ks_conn *c, uint8_t *buf, size_t len)
{
    union { struct cmsghdr h; char b[CMSG_SPACE(MAX_FDS * sizeof(int))]; } cm;
    struct iovec iov = { buf, len };
    struct msghdr mh;
    struct cmsghdr *h;
    ssize_t r;

    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.b;
    mh.msg_controllen = sizeof(cm.b);
    /* the seccomp filter allows recvmsg with exactly these flags */
    r = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r < 0)
        return r;
    for (h = CMSG_FIRSTHDR(&mh); h != NULL; h = CMSG_NXTHDR(&mh, h)) {
        size_t n, i;

        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS
            || h->cmsg_len < CMSG_LEN(0))
            continue;
        n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
            if (c->shm_fd < 0 && c->shm == NULL)
                c->shm_fd = fd;
            else
                close(fd);   /* one memfd per connection, once */
        }
    }
    return r;
}

/* NULL if fd is a memfd the rings of `ring` bytes may be mapped from, else why not. */
static const char *check_memfd(const struct ks_config *cfg, int fd, uint32_t ring)
{
    struct stat st;
    int seals;

    if (!ks_shm_ring_size_ok(ring))
        return "ring size is not a power of two in range";
    if (KS_FRAME_HEADER + cfg->max_frame > ring)
        return "rings smaller than this server's max_frame";
    if (ring > ks_shm_max_ring(cfg->max_frame))
        return "rings larger than this server's max_frame needs";
    /* F_GET_SEALS first: it fails at once on anything but a memfd, before
     * fstat could reach into another file system (FUSE) */
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0)
        return "the descriptor is not a memfd";
    if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
        return "the memfd is not sealed against shrinking and growing";
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return "the memfd cannot be examined";
    if ((uint64_t)st.st_size != KS_SHM_HDR + 2 * (uint64_t)ring)
        return "the memfd's size does not match the ring size";
    return NULL;
}

void ks_conn_shm_accept(const struct ks_config *cfg, struct ks_conn *c, Keystore__HelloReply *hr)
{
    uint32_t ring = c->s.shm_ring_size;
    const char *why = NULL;
    size_t len = KS_SHM_HDR + 2 * (size_t)ring;
    uint8_t *map;

    if (ring == 0) {
        if (c->shm_fd >= 0)
            why = "a descriptor came without a ring size";
    } else if (!cfg->shared_memory) {
        why = "shared_memory = no in this server's configuration";
    } else if (c->s.is_admin || c->s.is_tcp) {
        why = "only on the client socket";
    } else if (c->shm_fd < 0) {
        why = "no descriptor came with Hello";
    } else {
        why = check_memfd(cfg, c->shm_fd, ring);
    }
    if (why == NULL) {
        map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, c->shm_fd, 0);
        if (map == MAP_FAILED) {
            why = "the memfd cannot be mapped read-write";
        } else {
            /* mlockall(MCL_FUTURE) would pin every client's rings: only our
             * own memory must stay out of swap, and nothing secret lives here
             * longer than a reply */
            (void)munlock(map, len);
            c->shm = map;
            c->shm_len = len;
            c->shm_ring = ring;
            /* start from the indices the client set, whatever they are */
            c->shm_req_tail = ks_shm_load(map, KS_SHM_REQ_HEAD);
            c->shm_rep_head = 0;
            ks_shm_store(map, KS_SHM_REQ_TAIL, c->shm_req_tail);
            ks_shm_store(map, KS_SHM_REP_HEAD, 0);
            hr->shm = 1;
        }
    }
    if (c->shm_fd >= 0) {
        close(c->shm_fd);   /* the mapping keeps the memory */
        c->shm_fd = -1;
    }
    if (why != NULL && ring != 0) {
        hr->shm_refused = (char *)why;
        ks_log("conn %lu uid %u pid %d: shared-memory rings refused: %s; requests stay on the "
               "socket", c->s.id, (unsigned)c->s.uid, (int)c->s.pid, why);
    }
}

void ks_conn_shm_free(struct ks_conn *c)
{
    if (c->shm != NULL) {
        munmap(c->shm, c->shm_len);
        c->shm = NULL;
    }
    if (c->shm_fd >= 0) {
        close(c->shm_fd);
        c->shm_fd = -1;
    }
}

int ks_conn_shm_pending(const struct ks_conn *c)
{
    return c->shm != NULL && ks_shm_load(c->shm, KS_SHM_REQ_HEAD) != c->shm_req_tail;
}

void ks_conn_shm_sleeping(struct ks_conn *c, int sleeping)
{
    if (c->shm != NULL)
        ks_shm_store(c->shm, KS_SHM_SRV_SLEEP, (uint32_t)sleeping);
}

static enum ks_conn_state violation(struct ks_conn *c, const char *what)
{
    ks_log("conn %lu uid %u pid %d: shared-memory rings: %s; closing the connection", c->s.id,
           (unsigned)c->s.uid, (int)c->s.pid, what);
    return KS_CONN_CLOSE;
}

/* Pack resp into the reply ring; -1 (logged) if the client left no room. */
static int put_reply(struct ks_conn *c, const Keystore__Response *resp)
{
    uint8_t *ring = c->shm + KS_SHM_HDR + c->shm_ring;
    uint32_t used = c->shm_rep_head - ks_shm_load(c->shm, KS_SHM_REP_TAIL);
    size_t size = keystore__response__get_packed_size(resp);
    uint8_t stackbuf[4096], hdr[KS_FRAME_HEADER];
    uint8_t *buf;

    if (used > c->shm_ring) {
        violation(c, "the reply ring's consumer index is out of range");
        return -1;
    }
    if (KS_FRAME_HEADER + size > c->shm_ring - used) {
        violation(c, "the client leaves no room for replies");
        return -1;
    }
    buf = size <= sizeof(stackbuf) ? stackbuf : malloc(size);
    if (buf == NULL) {
        ks_log("conn %lu: out of memory packing a reply; closing the connection", c->s.id);
        return -1;
    }
    keystore__response__pack(resp, buf);
    ks_put_be32(hdr, (uint32_t)size);
    ks_shm_copy_in(ring, c->shm_ring, c->shm_rep_head, hdr, sizeof(hdr));
    ks_shm_copy_in(ring, c->shm_ring, c->shm_rep_head + KS_FRAME_HEADER, buf, size);
    sodium_memzero(buf, size);   /* a reply may be plaintext */
    if (buf != stackbuf)
        free(buf);
    c->shm_rep_head += KS_FRAME_HEADER + (uint32_t)size;
    return 0;
}

/* Copy the next request out of the ring: 1 and *frame (malloc'd, *len bytes),
 * 0 if none is there, -1 on a violation (logged). */
static int take_request(const struct ks_config *cfg, struct ks_conn *c, uint8_t **frame,
                        uint32_t *len)
{
    const uint8_t *ring = c->shm + KS_SHM_HDR;
    uint32_t head = ks_shm_load(c->shm, KS_SHM_REQ_HEAD), avail = head - c->shm_req_tail, n;
    uint8_t hdr[KS_FRAME_HEADER];

    if (avail == 0)
        return 0;
    /* a client publishes its index only after the whole frame is written */
    if (avail < KS_FRAME_HEADER || avail > c->shm_ring)
        return violation(c, "the request ring's producer index is out of range"), -1;
    ks_shm_copy_out(hdr, ring, c->shm_ring, c->shm_req_tail, sizeof(hdr));
    n = ks_get_be32(hdr);   /* read once: the ring may change under us */
    if (n == 0 || n > cfg->max_frame || n > avail - KS_FRAME_HEADER)
        return violation(c, "a request frame's length is out of range"), -1;
    if ((*frame = malloc(n)) == NULL) {
        ks_log("conn %lu: out of memory for a request; closing the connection", c->s.id);
        return -1;
    }
    ks_shm_copy_out(*frame, ring, c->shm_ring, c->shm_req_tail + KS_FRAME_HEADER, n);
    c->shm_req_tail += KS_FRAME_HEADER + n;
    ks_shm_store(c->shm, KS_SHM_REQ_TAIL, c->shm_req_tail);
    *len = n;
    return 1;
}

/* The client may be blocked in FUTEX_WAIT on the reply index. */
static void wake_client(struct ks_conn *c)
{
    ks_shm_store(c->shm, KS_SHM_REP_HEAD, c->shm_rep_head);
    ks_shm_fence();
    if (ks_shm_load(c->shm, KS_SHM_CLI_SLEEP) != 0)
        (void)syscall(SYS_futex, ks_shm_word(c->shm, KS_SHM_REP_HEAD), FUTEX_WAKE, 1, NULL,
                      NULL, 0);
}

enum ks_conn_state ks_conn_shm_serve(const struct ks_config *cfg, struct ks_conn *c, int64_t now,
                                     int *served)
{
    enum ks_conn_state st = KS_CONN_OK;
    int i;

    *served = 0;
    if (c->shm == NULL)
        return KS_CONN_OK;
    for (i = 0; i < KS_SHM_BUDGET && st == KS_CONN_OK; i++) {
        Keystore__Response resp = KEYSTORE__RESPONSE__INIT;
        struct ks_arena arena = KS_ARENA_INIT;
        enum ks_after after;
        uint8_t *frame;
        uint32_t len;
        int r = take_request(cfg, c, &frame, &len);

        if (r <= 0) {
            if (r < 0)
                st = KS_CONN_CLOSE;
            break;
        }
        after = ks_handle_frame(cfg, &c->s, frame, len, &arena, &resp);
        sodium_memzero(frame, len);
        free(frame);
        r = put_reply(c, &resp);
        ks_arena_free(&arena);
        c->last_request = now;
        (*served)++;
        if (r != 0 || after == KS_CLOSE_AFTER_REPLY)
            st = KS_CONN_CLOSE;
    }
    if (*served > 0)
        wake_client(c);
    return st;
}
