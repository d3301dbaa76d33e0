/* The configuration reader process; see confhelper.h.
 *
 * Protocol on the socketpair: the server writes one byte 'R'; the reader
 * answers with three records (access list, authorized clients, names),
 * each a status byte, a 4-byte big-endian length and that many bytes. */
#include "confhelper.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/readfile.h"
#include "ops/acl.h"
#include "sandbox/reader.h"

#define REPLY_TIMEOUT_MS 10000
#define MAX_RECORD (KS_CONF_FILE_MAX + 4096)

static int sock = -1;
static pid_t reader_pid = -1;

/* ---- the reader (child) ----------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_record(int fd, int status, const char *data, size_t len)
{
    uint8_t hdr[5];

    hdr[0] = (uint8_t)status;
    ks_put_be32(hdr + 1, (uint32_t)len);
    return write_all(fd, hdr, sizeof(hdr)) == 0 && write_all(fd, data, len) == 0 ? 0 : -1;
}

static int send_file(int fd, const char *path, char **text, size_t *len)
{
    char err[KS_CONF_PATH_MAX + 256];

    *text = NULL;
    *len = 0;
    if (path[0] == '\0')
        return send_record(fd, KS_CONF_UNSET, "", 0);
    if (ks_read_conf_file(path, text, len, err, sizeof(err)) != 0)
        return send_record(fd, KS_CONF_ERROR, err, strlen(err));
    return send_record(fd, KS_CONF_OK, *text, *len);
}

static void answer(int fd, const char *acl_path, const char *clients_path)
{
    struct ks_acl_names names = { NULL, 0, 0 };
    char *acl = NULL, *clients = NULL, err[64];
    size_t acl_len, clients_len;
    int rc;

    rc = send_file(fd, acl_path, &acl, &acl_len);
    if (rc == 0)
        rc = send_file(fd, clients_path, &clients, &clients_len);
    /* resolve the access list's names here, where the name service works;
     * the parse result itself is thrown away (the server parses again) */
    if (rc == 0 && acl != NULL)
        ks_acl_free(ks_acl_parse(acl_path, acl, acl_len, NULL, &names, err, sizeof(err)));
    if (rc == 0)
        rc = send_record(fd, KS_CONF_OK, names.buf != NULL ? names.buf : "", names.len);
    free(acl);
    free(clients);
    free(names.buf);
    if (rc != 0)
        _exit(0);   /* the server is gone */
}

static void reader_main(int fd, const struct ks_config *cfg)
{
    char acl_path[KS_CONF_PATH_MAX], clients_path[KS_CONF_PATH_MAX], err[256];
    unsigned char c;

    snprintf(acl_path, sizeof(acl_path), "%s", cfg->acl);
    snprintf(clients_path, sizeof(clients_path), "%s",
             cfg->listen_tcp[0] != '\0' ? cfg->authorized_clients : "");
    prctl(PR_SET_NAME, "keystored-conf", 0, 0, 0);
    if (ks_confine_reader(fd, cfg->seccomp, err, sizeof(err)) != 0) {
        ks_log("error: configuration reader: %s; reloads will fail", err);
        _exit(1);
    }
    for (;;) {
        ssize_t n = read(fd, &c, 1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(0);   /* keystored exited */
        if (c == 'R')
            answer(fd, acl_path, clients_path);
    }
}

int ks_confhelper_start(const struct ks_config *cfg)
{
    int sv[2];
    pid_t parent = getpid();

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        ks_log("error: socketpair for the configuration reader: %s", strerror(errno));
        return -1;
    }
    reader_pid = fork();
    if (reader_pid < 0) {
        ks_log("error: cannot start the configuration reader: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (reader_pid == 0) {
        /* keep only stdio and our end: no listener or passed socket lives on here */
        if (sv[1] != 3 && (dup2(sv[1], 3) != 3))
            _exit(1);
        if (close_range(4, ~0U, 0) != 0)
            _exit(1);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
            _exit(0);
        reader_main(3, cfg);
    }
    close(sv[1]);
    sock = sv[0];
    return 0;
}

/* ---- the server side -------------------------------------------------- */

static int read_all(uint8_t *buf, size_t len, long long deadline_us)
{
    while (len > 0) {
        struct pollfd p = { sock, POLLIN, 0 };
        long long left = (deadline_us - ks_mono_us()) / 1000;
        ssize_t n;

        if (left <= 0)
            return -1;
        if (poll(&p, 1, (int)left) <= 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        n = read(sock, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_record(struct ks_conf_file *f, long long deadline)
{
    uint8_t hdr[5];
    uint32_t len;

    if (read_all(hdr, sizeof(hdr), deadline) != 0)
        return -1;
    len = ks_get_be32(hdr + 1);
    if (hdr[0] > KS_CONF_UNSET || len > MAX_RECORD)
        return -1;
    f->status = hdr[0];
    f->data = malloc((size_t)len + 1);
    if (f->data == NULL)
        return -1;
    if (read_all((uint8_t *)f->data, len, deadline) != 0)
        return -1;
    f->data[len] = '\0';
    f->len = len;
    return 0;
}

void ks_conf_files_free(struct ks_conf_files *f)
{
    free(f->acl.data);
    free(f->clients.data);
    free(f->names.data);
    memset(f, 0, sizeof(*f));
}

int ks_confhelper_fetch(struct ks_conf_files *out, char *err, size_t errlen)
{
    long long deadline = ks_mono_us() + REPLY_TIMEOUT_MS * 1000LL;
    unsigned char c = 'R';

    memset(out, 0, sizeof(*out));
    if (sock < 0 || write(sock, &c, 1) != 1 || read_record(&out->acl, deadline) != 0 ||
        read_record(&out->clients, deadline) != 0 || read_record(&out->names, deadline) != 0) {
        ks_conf_files_free(out);
        /* a half-read answer would shift every later one: never reuse the socket */
        if (sock >= 0)
            close(sock);
        sock = -1;
        snprintf(err, errlen, "the configuration reader process did not answer (it has "
                 "exited; see the log): restart keystored to reload");
        return -1;
    }
    return 0;
}

void ks_confhelper_stop(void)
{
    if (sock >= 0)
        close(sock);   /* the reader sees EOF and exits */
    sock = -1;
    /* no waitpid: the confined server may not wait; the reader also gets
     * SIGKILL when keystored exits (PR_SET_PDEATHSIG) */
    reader_pid = -1;
}
