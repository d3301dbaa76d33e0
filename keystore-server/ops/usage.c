/* Key usage checks; see usage.h. */
#include "usage.h"

#include <stdio.h>

#include "store/keytable.h"

int ks_usage_permit(struct ks_op *op, uint32_t want, const char *name, uint32_t version)
{
    enum ks_store_status st;
    uint32_t current;
    uint64_t when;
    struct ks_key *k = ks_store_get_version(name, version, &st, &current, &when);
    char u[KS_USAGE_TEXT_MAX];
    int ok;

    if (k == NULL)
        return 1;
    ok = (k->usage & want) != 0 || (ks_usage_possible(k->type) & want) == 0;
    if (!ok)
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_WRONG_USAGE,
                    "key '%s' is for %s only: it may not %s (its usage is fixed when generated "
                    "or imported)", k->name, ks_usage_format(k->usage, u),
                    want == KS_USAGE_SIGN ? "sign" : want == KS_USAGE_DECRYPT ? "decrypt"
                                                                            : "derive");
    ks_key_put(k);
    return ok;
}

int ks_usage_for_new_key(struct ks_op *op, Keystore__KeyType type, uint32_t requested,
                         uint32_t *usage)
{
    char why[256];

    /* default: sign, or the only usage of a key-agreement type */
    *usage = requested != 0 ? requested
             : (ks_usage_possible(type) & KS_USAGE_SIGN) ? KS_USAGE_SIGN : ks_usage_possible(type);
    if (ks_usage_check(type, *usage, why, sizeof(why)) != 0) {
        ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_BAD_PARAMETER, "%s", why);
        return -1;
    }
    return 0;
}
