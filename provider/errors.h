/* Provider error reasons and the helper that raises them through the core,
 * so they land in the application's error queue under our library code. */
#ifndef KEYSTORE_ERRORS_H
#define KEYSTORE_ERRORS_H

#include <openssl/core.h>
#include <openssl/crypto.h>

struct ks_provctx_st;

enum {
    KS_R_SERVER_UNREACHABLE = 1,
    KS_R_SERVER_ERROR,
    KS_R_NO_SUCH_KEY,
    KS_R_NOT_EXTRACTABLE,
    KS_R_BAD_URI,
    KS_R_UNSUPPORTED,
    KS_R_INVALID_PARAMETER,
    KS_R_PROTOCOL,
    KS_R_BUFFER_TOO_SMALL,
    KS_R_TOO_LARGE,
    KS_R_INTERNAL,
    KS_R_PUBLIC_ONLY,
    KS_R_PERMISSION_DENIED,
    KS_R_OPERATION_FAILED,
    KS_R_WRONG_KEY_TYPE,
    KS_R_RAW_RSA,
    KS_R_NEEDS_DEFAULT_PROVIDER,
    KS_R_BAD_SETTING,
    KS_R_SERVER_REFUSED,
    KS_R_SERVER_NOT_AUTHENTIC,
    KS_R_NO_CERTIFICATE,
    KS_R_WRONG_USAGE,
    KS_R_KEY_MISMATCH,
    KS_R_PROVIDER_ORDER,
};

/* The reason strings handed to the core by get_reason_strings. */
const OSSL_ITEM *ks_reason_strings(void);

void ks_raise(const struct ks_provctx_st *pc, int reason, const char *file, int line,
              const char *func, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define KS_RAISE(pc, reason, ...) \
    ks_raise((pc), (reason), OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, __VA_ARGS__)

#endif
