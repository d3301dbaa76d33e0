/* A hostile client of the shared-memory rings (docs/threat-model.md), and a
 * well-behaved one to measure that the others are still served.
 *
 *   shm_attack legit SOCKET KEY N EXPECT_SHM   N P-256 signs through
 *       ks_chan (the provider's path); prints "p50_us X"; fails unless the
 *       rings were (EXPECT_SHM=1) or were not (0) in use
 *   shm_attack MODE SOCKET KEY SECONDS          one attack, repeated
 *       noseal notmemfd file wrongsize growonly bigring manyfds: a Hello with
 *       a descriptor the server must refuse (then the client shrinks it)
 *       scribble lie noread nowake flood: rings the server accepted, abused
 * Exit 0 if the server behaved as it must, 1 otherwise (message on stderr).
 * The rings are built here from docs/protocol.md, not with proto/shm.c. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "shm_ring.h"
#include "wire.h"

#define RING (128u * 1024)

static const char *sock_addr, *key;
static volatile int stop_scribble;

static void die(const char *m)
{
    fprintf(stderr, "FAIL: %s\n", m);
    exit(1);
}

static long long now_us(void)
{
    return ks_mono_us();
}

static size_t pack_sign(uint8_t *out, size_t cap, uint64_t id)
{
    static uint8_t digest[32] = { 1, 2, 3 };
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__SignRequest s = KEYSTORE__SIGN_REQUEST__INIT;
    size_t len;

    s.key = (char *)key;
    s.digest = "SHA256";
    s.tbs.data = digest;
    s.tbs.len = sizeof(digest);
    req.id = id;
    req.body_case = KEYSTORE__REQUEST__BODY_SIGN;
    req.sign = &s;
    len = keystore__request__get_packed_size(&req);
    if (len + 4 > cap)
        die("request too large");
    ks_put_be32(out, (uint32_t)len);
    keystore__request__pack(&req, out + 4);
    return len + 4;
}

/* Hello with fds attached; returns the HelloReply's shm flag, -1 if the
 * connection failed. */
static int hello(int fd, const int *fds, int nfds, uint32_t ring)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__Hello h = KEYSTORE__HELLO__INIT;
    union { struct cmsghdr c; char b[CMSG_SPACE(16 * sizeof(int))]; } cm;
    uint8_t frame[512], *in;
    size_t len, inlen;
    struct iovec iov;
    struct msghdr mh;
    char err[KS_ERRLEN];
    Keystore__Response *r;
    int shm;

    h.version = KS_PROTOCOL_VERSION;
    h.client_name = "shm_attack";
    h.shm_ring_size = ring;
    req.id = 1;
    req.body_case = KEYSTORE__REQUEST__BODY_HELLO;
    req.hello = &h;
    len = keystore__request__get_packed_size(&req);
    ks_put_be32(frame, (uint32_t)len);
    keystore__request__pack(&req, frame + 4);
    iov.iov_base = frame;
    iov.iov_len = len + 4;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        struct cmsghdr *c;

        memset(&cm, 0, sizeof(cm));
        mh.msg_control = cm.b;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)(len + 4))
        return -1;
    if (ks_read_frame(fd, KS_DEFAULT_MAX_FRAME, &in, &inlen, err, sizeof(err)) != 0)
        return -1;
    r = keystore__response__unpack(NULL, inlen, in);
    free(in);
    if (r == NULL || r->body_case != KEYSTORE__RESPONSE__BODY_HELLO)
        die("Hello was not answered with HelloReply");
    shm = r->hello->shm;
    keystore__response__free_unpacked(r, NULL);
    return shm;
}

static int make_memfd(size_t size, unsigned seals)
{
    int fd = memfd_create("attack", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
        die("memfd");
    if (seals != 0 && fcntl(fd, F_ADD_SEALS, seals) != 0)
        die("F_ADD_SEALS");
    return fd;
}

static int connect_server(void)
{
    char err[KS_ERRLEN];
    int fd = ks_connect(sock_addr, 5000, err, sizeof(err));

    if (fd < 0)
        die(err);
    return fd;
}

/* The server must answer shm = 0; then we shrink what we can and knock. */
static int refused_case(const char *mode)
{
    size_t size = KS_SHM_HDR + 2 * (size_t)RING;
    int s = connect_server(), fds[10], n = 1, i, shm;
    uint32_t ring = RING;

    if (strcmp(mode, "bigring") == 0) {
        /* a properly sealed memfd, but rings the server would have to populate for nothing */
        ring = KS_SHM_MAX_RING;
        fds[0] = make_memfd(KS_SHM_HDR + 2 * (size_t)ring, F_SEAL_SHRINK | F_SEAL_GROW);
    } else if (strcmp(mode, "noseal") == 0)
        fds[0] = make_memfd(size, 0);
    else if (strcmp(mode, "growonly") == 0)
        fds[0] = make_memfd(size, F_SEAL_GROW);
    else if (strcmp(mode, "wrongsize") == 0)
        fds[0] = make_memfd(size - 4096, F_SEAL_SHRINK | F_SEAL_GROW);
    else if (strcmp(mode, "file") == 0) {
        char path[] = "/tmp/shm_attack.XXXXXX";

        fds[0] = mkstemp(path);
        if (fds[0] < 0 || ftruncate(fds[0], (off_t)size) != 0)
            die("temporary file");
        unlink(path);
    } else if (strcmp(mode, "notmemfd") == 0) {
        int p[2];

        if (pipe(p) != 0)
            die("pipe");
        fds[0] = p[0];
    } else { /* manyfds: the first is good, nine more are kept from it */
        n = 10;
        for (i = 0; i < n; i++)
            fds[i] = make_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW);
    }
    shm = hello(s, fds, n, ring);
    if (strcmp(mode, "manyfds") == 0) {
        close(s);
        for (i = 0; i < n; i++)
            close(fds[i]);
        return shm == 1 ? 0 : (fprintf(stderr, "FAIL: good first memfd refused\n"), 1);
    }
    /* had it mapped them, this makes its next access fault (SIGBUS) */
    (void)ftruncate(fds[0], 0);
    (void)send(s, "x", 1, MSG_NOSIGNAL);
    usleep(200000);
    close(fds[0]);
    close(s);
    if (shm != 0) {
        fprintf(stderr, "FAIL: %s: the server accepted the rings\n", mode);
        return 1;
    }
    return 0;
}

struct rings { int fd, memfd; uint8_t *base; };

static int open_rings(struct rings *r)
{
    size_t size = KS_SHM_HDR + 2 * (size_t)RING;

    r->fd = connect_server();
    r->memfd = make_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW);
    r->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
    if (r->base == MAP_FAILED)
        die("mmap");
    return hello(r->fd, &r->memfd, 1, RING);
}

static void close_rings(struct rings *r)
{
    munmap(r->base, KS_SHM_HDR + 2 * (size_t)RING);
    close(r->memfd);
    close(r->fd);
}

/* 1 once the server has closed the socket (EOF or error). */
static int server_closed(int fd, int wait_ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    char b[64];

    if (poll(&p, 1, wait_ms) <= 0)
        return 0;
    return recv(fd, b, sizeof(b), MSG_DONTWAIT) <= 0;
}

static void *scribbler(void *arg)
{
    uint8_t *base = arg;
    unsigned seed = 1;

    while (!stop_scribble) {
        size_t off = (size_t)rand_r(&seed) % (KS_SHM_HDR + 2 * (size_t)RING - 8);
        uint32_t v = (uint32_t)rand_r(&seed);

        if (seed & 1)
            v &= 0xffff;    /* small lengths and indices too */
        memcpy(base + off, &v, 4);
        /* the control words most of all */
        memcpy(base + 64 * (1 + (seed % 6)), &v, 4);
    }
    return NULL;
}

static int abuse(const char *mode, int secs)
{
    long long end = now_us() + (long long)secs * 1000000;
    int closed = 0, rounds = 0;

    while (now_us() < end) {
        struct rings r;
        uint8_t frame[256];
        size_t n = pack_sign(frame, sizeof(frame), 7);
        uint32_t head = 0;

        if (open_rings(&r) != 1) {
            fprintf(stderr, "FAIL: %s: well-formed rings refused\n", mode);
            return 1;
        }
        rounds++;
        if (strcmp(mode, "scribble") == 0) {
            pthread_t t;
            long long until = now_us() + 300000;

            stop_scribble = 0;
            if (pthread_create(&t, NULL, scribbler, r.base) != 0)
                die("pthread_create");
            while (now_us() < until && !server_closed(r.fd, 0)) {
                ks_shm_copy_in(r.base + KS_SHM_HDR, RING, head, frame, n);
                head += (uint32_t)n;
                ks_shm_store(r.base, KS_SHM_REQ_HEAD, head);
                (void)send(r.fd, "b", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            stop_scribble = 1;
            pthread_join(t, NULL);
            closed += server_closed(r.fd, 2000);
        } else if (strcmp(mode, "lie") == 0) {
            /* a producer index past the ring, then a frame length past it */
            ks_shm_store(r.base, KS_SHM_REQ_HEAD, (uint32_t)(rounds & 1 ? 0x7fffffff : RING + 1));
            if (rounds % 3 == 0) {
                uint8_t big[4];

                ks_put_be32(big, RING * 2);
                memcpy(r.base + KS_SHM_HDR, big, 4);
                ks_shm_store(r.base, KS_SHM_REQ_HEAD, 64);
            }
            (void)send(r.fd, "b", 1, MSG_NOSIGNAL);
            if (!server_closed(r.fd, 2000)) {
                fprintf(stderr, "FAIL: lie: the server kept a connection with broken indices\n");
                return 1;
            }
            closed++;
            /* the attack is the lie, not the reconnecting (which a socket
             * client can do as fast: connection churn is not rate-limited) */
            usleep(5000);
        } else if (strcmp(mode, "noread") == 0) {
            /* requests until the reply ring is full; never consume a reply
             * (for a key that does not exist: cheap replies fill it fast) */
            long long until = now_us() + 5000000;
            const char *k = key;

            key = "no-such-key";
            n = pack_sign(frame, sizeof(frame), 7);
            key = k;

            while (now_us() < until && !server_closed(r.fd, 0)) {
                if (head - ks_shm_load(r.base, KS_SHM_REQ_TAIL) + n <= RING) {
                    ks_shm_copy_in(r.base + KS_SHM_HDR, RING, head, frame, n);
                    head += (uint32_t)n;
                    ks_shm_store(r.base, KS_SHM_REQ_HEAD, head);
                }
                (void)send(r.fd, "b", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            if (!server_closed(r.fd, 2000)) {
                fprintf(stderr, "FAIL: noread: the server kept a client that reads no replies\n");
                return 1;
            }
            closed++;
        } else if (strcmp(mode, "nowake") == 0) {
            /* claim to sleep, never wait, never read: the worker must not care */
            ks_shm_store(r.base, KS_SHM_CLI_SLEEP, 1);
            ks_shm_copy_in(r.base + KS_SHM_HDR, RING, 0, frame, n);
            ks_shm_store(r.base, KS_SHM_REQ_HEAD, (uint32_t)n);
            (void)send(r.fd, "b", 1, MSG_NOSIGNAL);
            usleep((useconds_t)secs * 1000000);
        } else if (strcmp(mode, "flood") == 0) {
            char junk[4096];
            long long until = end;

            memset(junk, 'b', sizeof(junk));
            while (now_us() < until)
                if (send(r.fd, junk, sizeof(junk), MSG_NOSIGNAL) < 0 && errno != EINTR)
                    break;
        } else {
            die("unknown mode");
        }
        close_rings(&r);
    }
    printf("%s: %d rounds, server closed %d\n", mode, rounds, closed);
    if (strcmp(mode, "scribble") == 0 && closed == 0) {
        fprintf(stderr, "FAIL: scribble: the server never noticed\n");
        return 1;
    }
    return 0;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return x < y ? -1 : x > y;
}

static int legit(int n, int expect_shm)
{
    struct ks_chan_opts opts = { NULL, NULL, 1 };
    char err[KS_ERRLEN];
    size_t mf;
    struct ks_chan *ch = ks_chan_connect(sock_addr, &opts, 5000, err, sizeof(err));
    long long *t = calloc((size_t)n, sizeof(*t));
    uint8_t digest[32] = { 9 };
    int i;

    if (ch == NULL || t == NULL)
        die(ch == NULL ? err : "calloc");
    if (ks_chan_hello(ch, "shm_attack legit", &mf, err, sizeof(err)) != 0)
        die(err);
    if ((ch->shm != NULL) != expect_shm) {
        fprintf(stderr, "FAIL: legit: rings %s in use\n", ch->shm != NULL ? "are" : "are not");
        return 1;
    }
    for (i = 0; i < n; i++) {
        Keystore__Request req = KEYSTORE__REQUEST__INIT;
        Keystore__SignRequest s = KEYSTORE__SIGN_REQUEST__INIT;
        Keystore__Response *r;
        long long t0 = now_us();

        s.key = (char *)key;
        s.digest = "SHA256";
        s.tbs.data = digest;
        s.tbs.len = sizeof(digest);
        req.id = (uint64_t)i + 2;
        req.body_case = KEYSTORE__REQUEST__BODY_SIGN;
        req.sign = &s;
        ks_io_set_deadline(t0 + 10000000);
        if (ks_chan_call(ch, mf, &req, &r, err, sizeof(err)) != 0)
            die(err);
        if (r->body_case != KEYSTORE__RESPONSE__BODY_SIGN)
            die("sign failed");
        keystore__response__free_unpacked(r, NULL);
        t[i] = now_us() - t0;
    }
    qsort(t, (size_t)n, sizeof(*t), cmp_ll);
    printf("p50_us %lld\n", t[n / 2]);
    ks_chan_close(ch);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6)
        die("usage: shm_attack MODE SOCKET KEY SECONDS | legit SOCKET KEY N EXPECT_SHM");
    sock_addr = argv[2];
    key = argv[3];
    if (strcmp(argv[1], "legit") == 0)
        return legit(atoi(argv[4]), argc == 6 && strcmp(argv[5], "1") == 0);
    if (strstr("noseal notmemfd file wrongsize growonly manyfds bigring", argv[1]) != NULL)
        return refused_case(argv[1]);
    return abuse(argv[1], atoi(argv[4]));
}
