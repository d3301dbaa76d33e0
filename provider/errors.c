/* Error reporting through the core's error upcalls. */
#include "errors.h"
#include "provider.h"

#include <stdarg.h>

static const OSSL_ITEM reason_strings[] = {
    { KS_R_SERVER_UNREACHABLE, "keystore server unreachable" },
    { KS_R_SERVER_ERROR, "keystore server error" },
    { KS_R_NO_SUCH_KEY, "no such key in the keystore" },
    { KS_R_NOT_EXTRACTABLE, "keystore keys are not extractable" },
    { KS_R_BAD_URI, "malformed keystore URI" },
    { KS_R_UNSUPPORTED, "operation not supported for keystore keys" },
    { KS_R_INVALID_PARAMETER, "invalid parameter" },
    { KS_R_PROTOCOL, "keystore protocol error" },
    { KS_R_BUFFER_TOO_SMALL, "output buffer too small" },
    { KS_R_TOO_LARGE, "input too large for the keystore server" },
    { KS_R_INTERNAL, "internal error in the keystore provider" },
    { KS_R_PUBLIC_ONLY, "key has no private half in the keystore" },
    { KS_R_PERMISSION_DENIED, "keystore server denied the operation" },
    { KS_R_OPERATION_FAILED, "keystore operation failed" },
    { KS_R_WRONG_KEY_TYPE, "wrong key type for this operation" },
    { KS_R_RAW_RSA, "raw RSA is not available for keystore keys" },
    { KS_R_NEEDS_DEFAULT_PROVIDER, "the keystore provider needs the default provider loaded too" },
    { KS_R_BAD_SETTING, "keystore provider setting is wrong" },
    { KS_R_SERVER_REFUSED, "keystore server refused this client" },
    { KS_R_SERVER_NOT_AUTHENTIC, "keystore server is not the one whose key is pinned" },
    { KS_R_NO_CERTIFICATE, "key has no certificate in the keystore" },
    { KS_R_WRONG_USAGE, "the keystore key's usage does not allow this operation" },
    { KS_R_KEY_MISMATCH, "keystore servers hold different keys under this name" },
    { KS_R_PROVIDER_ORDER, "the keystore provider is activated before the default provider" },
    { 0, NULL }
};

const OSSL_ITEM *ks_reason_strings(void)
{
    return reason_strings;
}

void ks_raise(const struct ks_provctx_st *pc, int reason, const char *file, int line,
              const char *func, const char *fmt, ...)
{
    va_list ap;

    /* Without the upcalls (never expected) there is nowhere to report to. */
    if (pc == NULL || pc->core_new_error == NULL || pc->core_vset_error == NULL)
        return;
    pc->core_new_error(pc->handle);
    if (pc->core_set_error_debug != NULL)
        pc->core_set_error_debug(pc->handle, file, line, func);
    va_start(ap, fmt);
    pc->core_vset_error(pc->handle, (uint32_t)reason, fmt, ap);
    va_end(ap);
}
