/* Client side of the shared-memory fast path; see shm.h and shm_ring.h.
 *
 * A request is written into the request ring and its index published; the
 * server's worker is told with one byte on the socket only if it said it
 * may sleep.  The reply is awaited by spinning for about as long as recent
 * replies took (never longer than KEYSTORE_SPIN_US), then in FUTEX_WAIT
 * slices of at most SLICE_MS, between which the socket is checked: a dead
 * server shows as EOF there, a hung one runs into the deadline. */
#include "shm.h"
#include "shm_ring.h"
#include "selfpid.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SETERR(...) do { if (err != NULL && errlen > 0) snprintf(err, errlen, __VA_ARGS__); } while (0)
#define SLICE_MS 20

struct ks_shm {
    int fd;
    pid_t pid;              /* creator: only it has the mapping */
    uint8_t *base;
    size_t len;
    uint32_t ring;
    uint32_t req_head;      /* our copies of the indices we own */
    uint32_t rep_tail;
    long long wait_avg_ns;  /* moving average of reply waits: the spin budget */
    unsigned busy_skip;     /* waits left that sleep at once: the machine was busy */
    unsigned busy_level;    /* how many the last busy sign cost: doubles while it recurs */
    int yield_first;        /* the last reply came while we yielded: the server shares our core */
};

/* A sched_yield that kept us off the core this long means another thread
 * wanted it: the machine may be busy, and spinning would only take time
 * from whoever does the work (maybe the server itself).  The next waits
 * then sleep at once: 1, 2, 4 ... up to BUSY_SKIP_MAX while the sign
 * recurs (one long yield is also what a VM's stolen time looks like),
 * halving again with each wait that spun and got its reply. */
#define BUSY_YIELD_NS 20000
#define BUSY_SKIP_MAX 64
/* Between two sched_yields the reply index is polled with the CPU's pause
 * hint for this long: a reply is seen within nanoseconds, and an idle
 * machine pays one system call per slice, not one per poll. */
#define PAUSE_SLICE_NS 10000

struct ks_shm *ks_shm_create(uint32_t ring, char *err, size_t errlen)
{
    struct ks_shm *m;
    size_t len = KS_SHM_HDR + 2 * (size_t)ring;

    if (!ks_shm_ring_size_ok(ring)) {
        SETERR("shared-memory ring size %u is not a power of two in [%u, %u]", ring,
               KS_SHM_MIN_RING, KS_SHM_MAX_RING);
        return NULL;
    }
    if ((m = calloc(1, sizeof(*m))) == NULL) {
        SETERR("out of memory");
        return NULL;
    }
    m->fd = memfd_create("keystore-rings", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (m->fd < 0) {
        SETERR("memfd_create: %s", strerror(errno));
        free(m);
        return NULL;
    }
    if (ftruncate(m->fd, (off_t)len) != 0
        || fcntl(m->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        SETERR("sizing and sealing the shared-memory rings: %s", strerror(errno));
        close(m->fd);
        free(m);
        return NULL;
    }
    m->base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    if (m->base == MAP_FAILED) {
        SETERR("mapping the shared-memory rings: %s", strerror(errno));
        close(m->fd);
        free(m);
        return NULL;
    }
    /* a forked child must never see (let alone use) its parent's rings */
    if (madvise(m->base, len, MADV_DONTFORK) != 0) {
        SETERR("madvise(MADV_DONTFORK) on the shared-memory rings: %s", strerror(errno));
        munmap(m->base, len);
        close(m->fd);
        free(m);
        return NULL;
    }
    m->len = len;
    m->ring = ring;
    m->pid = ks_self_pid();
    m->wait_avg_ns = 20000;
    return m;
}

int ks_shm_fd(const struct ks_shm *m)
{
    return m->fd;
}

uint32_t ks_shm_ring(const struct ks_shm *m)
{
    return m->ring;
}

void ks_shm_free(struct ks_shm *m)
{
    if (m == NULL)
        return;
    if (m->pid == ks_self_pid() && m->base != NULL) {
        /* replies may have carried plaintext */
        explicit_bzero(m->base + KS_SHM_HDR, 2 * (size_t)m->ring);
        munmap(m->base, m->len);
    }
    close(m->fd);
    free(m);
}

/* The Hello frame in one sendmsg with the memfd attached. */
static int send_with_fd(int fd, const uint8_t *frame, size_t len, int memfd, char *err,
                        size_t errlen)
{
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } cm;
    struct iovec iov = { (void *)frame, len };
    struct msghdr mh;
    struct cmsghdr *c;
    size_t sent = 0;

    memset(&mh, 0, sizeof(mh));
    memset(&cm, 0, sizeof(cm));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof(cm.buf);
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &memfd, sizeof(int));
    while (sent < len) {
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            SETERR("sending Hello to keystore server: %s",
                   errno == EAGAIN ? "timed out waiting for the server" : strerror(errno));
            return -1;
        }
        sent += (size_t)w;
        iov.iov_base = (uint8_t *)frame + sent;
        iov.iov_len = len - sent;
        mh.msg_control = NULL;  /* the descriptor went with the first byte */
        mh.msg_controllen = 0;
    }
    return 0;
}

int ks_shm_hello(int fd, struct ks_shm *m, const char *client_name, size_t *server_max_frame,
                 int *accepted, char *err, size_t errlen)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__Hello hello = KEYSTORE__HELLO__INIT;
    Keystore__Response *resp = NULL;
    uint8_t frame[KS_FRAME_HEADER + 512], *in = NULL;
    size_t len, inlen;
    int rc = -1;

    *accepted = 0;
    hello.version = KS_PROTOCOL_VERSION;
    hello.client_name = (char *)client_name;
    hello.shm_ring_size = m->ring;
    req.id = 1;
    req.body_case = KEYSTORE__REQUEST__BODY_HELLO;
    req.hello = &hello;
    len = keystore__request__get_packed_size(&req);
    if (len > sizeof(frame) - KS_FRAME_HEADER) {
        SETERR("client name too long for Hello");
        return -1;
    }
    ks_put_be32(frame, (uint32_t)len);
    keystore__request__pack(&req, frame + KS_FRAME_HEADER);
    if (send_with_fd(fd, frame, KS_FRAME_HEADER + len, m->fd, err, errlen) != 0)
        return -1;
    if (ks_read_frame(fd, KS_DEFAULT_MAX_FRAME, &in, &inlen, err, errlen) != 0)
        return -1;
    rc = ks_decode_reply(&req, in, inlen, &resp, err, errlen);
    free(in);
    if (rc != 0)
        return -1;
    rc = ks_hello_check(resp, server_max_frame, err, errlen);
    /* a ring must hold the largest frame either side may send */
    if (rc == 0) {
        *accepted = resp->hello->shm && KS_FRAME_HEADER + *server_max_frame <= m->ring;
        if (resp->hello->shm && !*accepted) {
            SETERR("keystore server accepted rings too small for its frame limit: protocol error");
            rc = -1;
        }
    }
    if (resp != NULL)
        keystore__response__free_unpacked(resp, NULL);
    return rc;
}

static long futex_wait(uint32_t *addr, uint32_t val, int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

    return syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The longest reply wait worth spinning for (KEYSTORE_SPIN_US, default
 * KS_DEFAULT_SHM_SPIN_US): on an idle core spinning costs nothing, and a
 * reply that comes while we sleep costs a wake-up, 50-100 us on a VM. */
static long long spin_cap_ns(void)
{
    return ks_spin_us(KS_DEFAULT_SHM_SPIN_US) * 1000LL;
}

/* The socket must stay silent while the rings are in use: readable means
 * the server closed it (or broke the protocol), an error means it is gone. */
static int socket_alive(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, 0) == 0;
}

/* Wait until the reply ring holds bytes beyond our tail; -1 with a message. */
static int wait_reply(struct ks_shm *m, int fd, char *err, size_t errlen)
{
    uint32_t *head = ks_shm_word(m->base, KS_SHM_REP_HEAD);
    long long start = now_ns(), slice = start, spin_ns = 2 * m->wait_avg_ns + 5000;
    long long cap = spin_cap_ns();
    uint32_t seen;
    int timed_out = 0;

    /* spin only if replies usually come back within the cap */
    if (spin_ns > cap)
        spin_ns = m->wait_avg_ns <= cap ? cap : 0;
    if (m->busy_skip > 0) {
        m->busy_skip--;
        spin_ns = 0;
    }
    while ((seen = ks_shm_load(m->base, KS_SHM_REP_HEAD)) == m->rep_tail) {
        long long t = now_ns();

        if (t - start < spin_ns) {
            if (!m->yield_first && t - slice < PAUSE_SLICE_NS) {
                ks_shm_pause();
                continue;
            }
            /* Let a thread that needs this core run.  If one ran for long
             * and our reply came meanwhile, it was the server's worker: next
             * time hand it the core at once instead of pausing first.  If
             * the reply is still not there, the machine is busy. */
            sched_yield();
            slice = now_ns();
            if (slice - t <= BUSY_YIELD_NS) {
                m->yield_first = 0;   /* nobody wanted the core */
            } else if (ks_shm_load(m->base, KS_SHM_REP_HEAD) != m->rep_tail) {
                m->yield_first = 1;
            } else {
                m->busy_level = m->busy_level == 0 ? 1 : m->busy_level * 2;
                if (m->busy_level > BUSY_SKIP_MAX)
                    m->busy_level = BUSY_SKIP_MAX;
                m->busy_skip = m->busy_level;
                spin_ns = 0;
            }
            continue;
        }
        int ms = ks_io_remaining_ms(KS_IO_TIMEOUT_MS);

        if (ms == 0) {
            SETERR("receiving from keystore server: timed out waiting for the server");
            return -1;
        }
        /* a server that died cannot wake us: look at the socket only after
         * a wait ran out, not before every one (a system call each) */
        if (timed_out && !socket_alive(fd)) {
            SETERR("keystore server closed the connection");
            return -1;
        }
        ks_shm_store(m->base, KS_SHM_CLI_SLEEP, 1);
        ks_shm_fence();
        timed_out = 0;
        if (ks_shm_load(m->base, KS_SHM_REP_HEAD) == seen
            && futex_wait(head, seen, ms < SLICE_MS ? ms : SLICE_MS) != 0 && errno == ETIMEDOUT)
            timed_out = 1;
        ks_shm_store(m->base, KS_SHM_CLI_SLEEP, 0);
        /* insurance: a worker that sleeps with our request unseen gets rung again */
        if (ks_shm_load(m->base, KS_SHM_REP_HEAD) == seen
            && ks_shm_load(m->base, KS_SHM_SRV_SLEEP) != 0)
            (void)send(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    {
        long long took = now_ns() - start;

        m->wait_avg_ns += (took - m->wait_avg_ns) / 8;
        if (spin_ns > 0 && took < spin_ns)
            m->busy_level /= 2;   /* spinning paid off */
    }
    return 0;
}

int ks_shm_call(struct ks_shm *m, int fd, size_t max_frame, const Keystore__Request *req,
                Keystore__Response **resp, char *err, size_t errlen)
{
    uint8_t *req_ring = m->base + KS_SHM_HDR, *rep_ring = req_ring + m->ring;
    size_t len = keystore__request__get_packed_size(req);
    uint8_t stackbuf[4096], hdr[KS_FRAME_HEADER];
    uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
    uint32_t avail, rlen;
    int rc = -1;

    *resp = NULL;
    if (buf == NULL) {
        SETERR("out of memory for a %zu-byte request", len);
        return -1;
    }
    if (len == 0 || len > max_frame || KS_FRAME_HEADER + len > m->ring) {
        SETERR("request of %zu bytes exceeds the server's frame limit of %zu bytes", len, max_frame);
        goto out;
    }
    /* one request in flight per connection: the ring is empty unless the
     * server is behind on an earlier one, which would be a protocol error */
    if (m->req_head - ks_shm_load(m->base, KS_SHM_REQ_TAIL) != 0) {
        SETERR("keystore server left a request unread: protocol error");
        goto out;
    }
    ks_put_be32(hdr, (uint32_t)len);
    keystore__request__pack(req, buf);
    ks_shm_copy_in(req_ring, m->ring, m->req_head, hdr, sizeof(hdr));
    ks_shm_copy_in(req_ring, m->ring, m->req_head + KS_FRAME_HEADER, buf, len);
    m->req_head += KS_FRAME_HEADER + (uint32_t)len;
    ks_shm_store(m->base, KS_SHM_REQ_HEAD, m->req_head);
    ks_shm_fence();
    if (ks_shm_load(m->base, KS_SHM_SRV_SLEEP) != 0) {
        /* the doorbell; a full socket buffer already means "readable" */
        while (send(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
    }
    if (wait_reply(m, fd, err, errlen) != 0)
        goto out;
    avail = ks_shm_load(m->base, KS_SHM_REP_HEAD) - m->rep_tail;
    if (avail < KS_FRAME_HEADER || avail > m->ring) {
        SETERR("keystore server published a broken reply ring index: protocol error");
        goto out;
    }
    ks_shm_copy_out(hdr, rep_ring, m->ring, m->rep_tail, sizeof(hdr));
    rlen = ks_get_be32(hdr);
    if (rlen == 0 || rlen > max_frame || rlen > avail - KS_FRAME_HEADER) {
        SETERR("keystore server sent a frame of %u bytes (limit %zu): protocol error", rlen,
               max_frame);
        goto out;
    }
    if (buf != stackbuf)
        free(buf);
    buf = rlen <= sizeof(stackbuf) ? stackbuf : malloc(rlen);
    len = rlen;
    if (buf == NULL) {
        SETERR("out of memory for a %u-byte reply", rlen);
        goto out;
    }
    ks_shm_copy_out(buf, rep_ring, m->ring, m->rep_tail + KS_FRAME_HEADER, rlen);
    /* the reply may be plaintext: wipe the ring's copy before releasing it */
    {
        uint8_t zero[256] = { 0 };
        uint32_t done;

        for (done = 0; done < KS_FRAME_HEADER + rlen;) {
            uint32_t n = KS_FRAME_HEADER + rlen - done < sizeof(zero)
                         ? KS_FRAME_HEADER + rlen - done : (uint32_t)sizeof(zero);

            ks_shm_copy_in(rep_ring, m->ring, m->rep_tail + done, zero, n);
            done += n;
        }
    }
    m->rep_tail += KS_FRAME_HEADER + rlen;
    ks_shm_store(m->base, KS_SHM_REP_TAIL, m->rep_tail);
    if (ks_decode_reply(req, buf, rlen, resp, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    if (buf != NULL) {
        explicit_bzero(buf, len);
        if (buf != stackbuf)
            free(buf);
    }
    return rc;
}
