/* A TCP client that performs the real handshake (proto/channel.c) and then
 * misbehaves on the wire, to prove the server's frame protection:
 *
 *   tcp_tamper ADDR SERVER_PUBKEY CLIENT_KEY flip     one ciphertext bit flipped
 *   tcp_tamper ADDR SERVER_PUBKEY CLIENT_KEY replay   a valid frame sent twice
 *   tcp_tamper ADDR SERVER_PUBKEY CLIENT_KEY hold N   stay connected N seconds
 *   tcp_tamper ADDR SERVER_PUBKEY CLIENT_KEY lists N  N ListKeys on one connection
 *                                                     (rekeys: KEYSTORE_REKEY_FRAMES)
 *
 * flip/replay exit 0 only if the server answers the genuine frame (replay)
 * and then closes the connection without sending a single byte more. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "channel.h"

static int fail(const char *what)
{
    fprintf(stderr, "tcp_tamper: %s\n", what);
    return 1;
}

/* A sealed ListKeys request frame: header + ciphertext. */
static uint8_t *list_keys_frame(struct ks_chan *ch, size_t *flen)
{
    Keystore__Request req = KEYSTORE__REQUEST__INIT;
    Keystore__ListKeysRequest l = KEYSTORE__LIST_KEYS_REQUEST__INIT;
    uint8_t pt[64], *frame;
    size_t len;

    req.id = 7;
    req.body_case = KEYSTORE__REQUEST__BODY_LIST_KEYS;
    req.list_keys = &l;
    len = keystore__request__pack(&req, pt);
    *flen = KS_FRAME_HEADER + len + KS_SEC_TAG;
    frame = malloc(*flen);
    if (frame == NULL || ks_sec_seal(&ch->sec, pt, len, frame) != 0)
        return NULL;
    return frame;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* 1 if the server closed the connection without sending anything. */
static int closed_silently(int fd)
{
    uint8_t b;
    ssize_t r = recv(fd, &b, 1, 0);

    if (r == 0 || (r < 0 && errno == ECONNRESET))
        return 1;
    if (r > 0)
        fprintf(stderr, "tcp_tamper: the server sent data after the bad frame\n");
    else
        fprintf(stderr, "tcp_tamper: recv: %s\n", strerror(errno));
    return 0;
}

/* Read one reply frame and check it decrypts. */
static int read_reply(struct ks_chan *ch)
{
    uint8_t *ct = NULL, *pt;
    size_t len;
    char err[KS_ERRLEN];
    int rc;

    if (ks_read_frame(ch->fd, KS_DEFAULT_MAX_FRAME + KS_SEC_TAG, &ct, &len, err, sizeof(err)) != 0)
        return fail(err);
    pt = malloc(len);
    rc = pt != NULL && len > KS_SEC_TAG && ks_sec_open(&ch->sec, ct, len, pt) == 0 ? 0 : 1;
    free(ct);
    free(pt);
    return rc ? fail("the genuine reply does not decrypt") : 0;
}

int main(int argc, char **argv)
{
    struct ks_chan_opts opts;
    struct ks_chan *ch;
    char err[KS_ERRLEN];
    size_t mf, flen;
    uint8_t *frame;

    if (argc < 5 || sodium_init() < 0)
        return fail("usage: tcp_tamper ADDR SERVER_PUBKEY CLIENT_KEY flip|replay|hold N");
    opts.server_pubkey = argv[2];
    opts.client_key_path = argv[3];
    ch = ks_chan_connect(argv[1], &opts, 10000, err, sizeof(err));
    if (ch == NULL)
        return fail(err);
    if (ks_chan_hello(ch, "tcp_tamper", &mf, err, sizeof(err)) != 0)
        return fail(err);
    if (strcmp(argv[4], "hold") == 0) {
        printf("connected\n");
        fflush(stdout);
        sleep(argc > 5 ? (unsigned)atoi(argv[5]) : 5);
        ks_chan_close(ch);
        return 0;
    }
    if (strcmp(argv[4], "lists") == 0) {
        Keystore__Request req = KEYSTORE__REQUEST__INIT;
        Keystore__ListKeysRequest l = KEYSTORE__LIST_KEYS_REQUEST__INIT;
        Keystore__Response *resp = NULL;
        int i, n = argc > 5 ? atoi(argv[5]) : 1;

        req.body_case = KEYSTORE__REQUEST__BODY_LIST_KEYS;
        req.list_keys = &l;
        for (i = 0; i < n; i++) {
            req.id = 100 + (uint64_t)i;
            if (ks_chan_call(ch, mf, &req, &resp, err, sizeof(err)) != 0)
                return fail(err);
            if (resp->body_case != KEYSTORE__RESPONSE__BODY_LIST_KEYS)
                return fail("ListKeys was not answered with a key list");
            keystore__response__free_unpacked(resp, NULL);
        }
        printf("%d lists; max_frame %zu; rekeys sent %llu received %llu\n", n, mf,
               (unsigned long long)ch->sec.rekeys_sent, (unsigned long long)ch->sec.rekeys_received);
        ks_chan_close(ch);
        return 0;
    }
    frame = list_keys_frame(ch, &flen);
    if (frame == NULL)
        return fail("sealing a frame failed");
    if (strcmp(argv[4], "flip") == 0) {
        frame[KS_FRAME_HEADER + 3] ^= 0x01;   /* inside the ciphertext */
        if (send_all(ch->fd, frame, flen) != 0)
            return fail("send failed");
        if (!closed_silently(ch->fd))
            return 1;
        printf("flipped frame: connection closed without a reply\n");
    } else if (strcmp(argv[4], "replay") == 0) {
        if (send_all(ch->fd, frame, flen) != 0 || read_reply(ch) != 0)
            return fail("the genuine frame was not answered");
        if (send_all(ch->fd, frame, flen) != 0)
            return fail("send failed");
        if (!closed_silently(ch->fd))
            return 1;
        printf("replayed frame: genuine one answered, replay closed the connection without a reply\n");
    } else {
        return fail("unknown mode");
    }
    free(frame);
    ks_chan_close(ch);
    return 0;
}
