/* Audit log; see audit.h. */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "stats.h"

static int audit_fd = -1;

int ks_audit_open(const struct ks_config *cfg)
{
    struct tm tm;
    time_t now = time(NULL);

    if (cfg->audit_log[0] == '\0')
        return 0;
    /* glibc reads /etc/localtime on the first time conversion, even gmtime_r:
     * do it now, before the jail and the seccomp filter forbid it */
    gmtime_r(&now, &tm);
    if (strcmp(cfg->audit_log, "stderr") == 0) {
        audit_fd = STDERR_FILENO;
        return 0;
    }
    audit_fd = open(cfg->audit_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (audit_fd < 0) {
        ks_log("error: cannot open audit log %s: %s (create its directory, or set audit_log "
               "= stderr)", cfg->audit_log, strerror(errno));
        return -1;
    }
    ks_log("audit log: %s", cfg->audit_log);
    return 0;
}

void ks_audit_close(void)
{
    if (audit_fd > STDERR_FILENO)
        close(audit_fd);
    audit_fd = -1;
}

int64_t ks_audit_clock(void)
{
    struct timespec ts;

    if (audit_fd < 0)
        return 0;   /* no audit log: keep the hot path free of clock reads */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void identity(const struct ks_session *s, char *out, size_t outlen)
{
    if (s->is_tcp)
        snprintf(out, outlen, "tcp:%s", s->tcp_client[0] != '\0' ? s->tcp_client : "-");
    else
        snprintf(out, outlen, "uid:%u", (unsigned)s->uid);
}

static void emit(const struct ks_session *s, const char *op, const char *key, const char *result,
                 int64_t start)
{
    char line[512], who[80], keyname[KS_MAX_KEY_NAME + 1];
    struct timespec now;
    struct tm tm;
    int64_t lat = ks_audit_clock() - start;
    int n;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    identity(s, who, sizeof(who));
    ks_log_sanitize(key != NULL && key[0] != '\0' ? key : "-", keyname, sizeof(keyname));
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ conn=%lu id=%s peer=%s op=%s key=%s "
                 "result=%s latency_us=%lld\n",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 now.tv_nsec / 1000000, s->id, who, s->peer[0] != '\0' ? s->peer : "local",
                 op, keyname, result, (long long)(lat / 1000));
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    /* one write: lines from concurrent workers never interleave */
    if (write(audit_fd, line, (size_t)n) < 0) {
        /* nothing better to do than the server log, and not on every line */
    }
}

void ks_audit_event(const struct ks_session *s, const char *op, const char *result, int64_t start)
{
    if (audit_fd >= 0)
        emit(s, op, NULL, result, start);
}

void ks_audit_request(const struct ks_session *s, const Keystore__Request *req,
                      const Keystore__Response *resp, int64_t start)
{
    const char *op, *key, *result = "ok";

    if (audit_fd < 0)
        return;
    op = ks_op_kind_name(ks_op_kind_of(req, &key));
    if (resp->body_case == KEYSTORE__RESPONSE__BODY_ERROR && resp->error != NULL)
        result = ks_error_code_name(resp->error->code);
    emit(s, op, key, result, start);
}
