/* stderr logging; see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#define LOG_LINE_MAX 2048
#define STAMP_LEN 25          /* "2026-12-01T19:50:00.123Z " */

/* systemd's journal stamps every line itself (it sets JOURNAL_STREAM for
 * a service whose stderr it reads); anywhere else each line carries its
 * own UTC time.  Decided once, before confinement (ks_log_init). */
static int stamp_lines = -1;

void ks_log_init(void)
{
    const char *j = getenv("JOURNAL_STREAM");

    stamp_lines = j == NULL || j[0] == '\0';
}

/* UTC, so no time zone file is needed inside the jail. */
static size_t stamp(char *out)
{
    struct timespec ts;
    struct tm tm;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL)
        return 0;
    return strftime(out, 21, "%Y-%m-%dT%H:%M:%S", &tm) == 19
           ? 19 + (size_t)snprintf(out + 19, 7, ".%03ldZ ", ts.tv_nsec / 1000000) : 0;
}

void ks_log(const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    int saved = errno;
    size_t n = 0, room;
    int r;
    va_list ap;

    if (stamp_lines < 0)
        ks_log_init();
    if (stamp_lines)
        n = stamp(line);
    memcpy(line + n, "keystored: ", 11);
    n += 11;
    room = sizeof(line) - n - 1;   /* keep one byte for the newline */
    va_start(ap, fmt);
    r = vsnprintf(line + n, room, fmt, ap);
    va_end(ap);
    if (r < 0)
        r = 0;
    n += (size_t)r < room ? (size_t)r : room - 1;
    line[n++] = '\n';
    /* One write per line; a short write to stderr is not worth retrying. */
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report this */
    }
    errno = saved;
}

void ks_log_sanitize(const char *in, char *out, size_t outlen)
{
    size_t i = 0;

    if (outlen == 0)
        return;
    for (; in != NULL && *in != '\0' && i + 1 < outlen; in++)
        out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    out[i] = '\0';
}

const char *ks_ossl_reason(char *buf, size_t len)
{
    /* The last error is usually the most specific one. */
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    const char *lib = e != 0 ? ERR_lib_error_string(e) : NULL;

    if (e == 0)
        snprintf(buf, len, "unknown OpenSSL error");
    else if (reason != NULL)
        snprintf(buf, len, "%s%s%s", lib != NULL ? lib : "", lib != NULL ? ": " : "", reason);
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}
