/* stderr logging; see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#define LOG_LINE_MAX 2048

void ks_log(const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    int saved = errno;
    size_t n;
    int r;
    va_list ap;

    memcpy(line, "keystored: ", 11);
    va_start(ap, fmt);
    r = vsnprintf(line + 11, sizeof(line) - 12, fmt, ap);
    va_end(ap);
    if (r < 0)
        r = 0;
    n = 11 + ((size_t)r < sizeof(line) - 12 ? (size_t)r : sizeof(line) - 13);
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
