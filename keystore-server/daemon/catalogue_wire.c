/* Framing of the catalogue socketpairs; see catalogue_wire.h. */
#include "catalogue_wire.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static void be(uint8_t *p, uint64_t v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t unbe(const uint8_t *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int send_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int ks_catw_send(int fd, const struct ks_catw_msg *m)
{
    size_t nl = strnlen(m->name, sizeof(m->name) - 1), len = 4 + 1, off = 4;
    int short_msg = m->type == 'R' || m->type == 'E';   /* status, revision, u16 text */
    uint8_t *f;
    int rc;

    if (m->len > KS_CATW_FRAME_MAX - 300 || (short_msg && m->len > 65535)) {
        errno = EMSGSIZE;
        return -1;
    }
    len += m->type == 'S' ? 8 : short_msg ? 1 + 8 + 2 + m->len : 1 + nl + 8 + 4 + m->len;
    f = malloc(len);
    if (f == NULL)
        return -1;
    be(f, len - 4, 4);
    f[off++] = m->type;
    if (short_msg) {
        f[off++] = m->status;
        be(f + off, m->rev, 8);
        off += 8;
        be(f + off, m->len, 2);
        off += 2;
    } else if (m->type == 'S') {
        be(f + off, m->rev, 8);
        off += 8;
    } else {
        f[off++] = (uint8_t)nl;
        memcpy(f + off, m->name, nl);
        off += nl;
        be(f + off, m->rev, 8);
        off += 8;
        if (m->type == 'D')
            len -= 4;   /* no record */
        else {
            be(f + off, m->len, 4);
            off += 4;
        }
        if (m->type == 'D')
            be(f, len - 4, 4);
    }
    if (m->type != 'D' && m->type != 'S')
        memcpy(f + off, m->data, m->len);
    rc = send_all(fd, f, len);
    free(f);
    return rc;
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* 0, -1 error, -2 timeout, -3 closed (before any byte). */
static int recv_all(int fd, uint8_t *p, size_t len, long deadline)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        int t = deadline < 0 ? -1 : (int)(deadline - now_ms());
        ssize_t r;

        if (deadline >= 0 && t <= 0)
            return -2;
        r = poll(&pfd, 1, t);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return -2;
        r = recv(fd, p + got, len - got, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r == 0)
            return got == 0 ? -3 : -1;
        if (r < 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int ks_catw_recv(int fd, uint8_t **frame, struct ks_catw_msg *m, int timeout_ms)
{
    long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    uint8_t hdr[4], *f;
    size_t len;
    int rc;

    *frame = NULL;
    memset(m, 0, sizeof(*m));
    rc = recv_all(fd, hdr, 4, deadline);
    if (rc != 0)
        return rc;
    len = (size_t)unbe(hdr, 4);
    if (len < 1 || len > KS_CATW_FRAME_MAX)
        return -1;
    f = malloc(len);
    if (f == NULL)
        return -1;
    rc = recv_all(fd, f, len, deadline);
    if (rc != 0) {
        free(f);
        return rc == -3 ? -1 : rc;
    }
    if (ks_catw_parse(f, len, m) != 0) {
        free(f);
        return -1;
    }
    *frame = f;
    return 0;
}

int ks_catw_parse(const uint8_t *f, size_t len, struct ks_catw_msg *m)
{
    size_t off = 1, nl;

    memset(m, 0, sizeof(*m));
    if (len < 1)
        return -1;
    m->type = f[0];
    switch (m->type) {
    case 'R': case 'E':
        if (len < 1 + 1 + 8 + 2)
            return -1;
        m->status = f[1];
        m->rev = unbe(f + 2, 8);
        m->len = (size_t)unbe(f + 10, 2);
        if (m->len != len - 12)
            return -1;
        m->data = f + 12;
        return 0;
    case 'S':
        if (len != 9)
            return -1;
        m->rev = unbe(f + 1, 8);
        return 0;
    case 'T': case 'P': case 'D':
        if (len < 2)
            return -1;
        nl = f[off++];
        if (nl > len - off || len - off - nl < 8 || nl >= sizeof(m->name))
            return -1;
        memcpy(m->name, f + off, nl);
        m->name[nl] = '\0';
        if (memchr(m->name, '\0', nl) != NULL)
            return -1;
        off += nl;
        m->rev = unbe(f + off, 8);
        off += 8;
        if (m->type == 'D')
            return off == len ? 0 : -1;
        if (len - off < 4)
            return -1;
        m->len = (size_t)unbe(f + off, 4);
        off += 4;
        if (m->len != len - off)
            return -1;
        m->data = f + off;
        return 0;
    default:
        return -1;
    }
}
