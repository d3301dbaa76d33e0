/* The RSA "pad-mode" parameter, shared by signature.c and asym_cipher.c:
 * OpenSSL accepts it as a number or as a name. */
#include "provider.h"

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <string.h>

static const struct {
    const char *name;
    int pad;
} PAD_NAMES[] = {
    { OSSL_PKEY_RSA_PAD_MODE_PKCSV15, RSA_PKCS1_PADDING },
    { OSSL_PKEY_RSA_PAD_MODE_OAEP, RSA_PKCS1_OAEP_PADDING },
    { "oeap", RSA_PKCS1_OAEP_PADDING },   /* OpenSSL's historical misspelling */
    { OSSL_PKEY_RSA_PAD_MODE_PSS, RSA_PKCS1_PSS_PADDING },
    { OSSL_PKEY_RSA_PAD_MODE_X931, RSA_X931_PADDING },
    { OSSL_PKEY_RSA_PAD_MODE_NONE, RSA_NO_PADDING },
};

int ks_rsa_pad_from_param(const OSSL_PARAM *p, int *pad)
{
    size_t i;

    if (p->data_type != OSSL_PARAM_UTF8_STRING)
        return OSSL_PARAM_get_int(p, pad);
    if (p->data == NULL)
        return 0;
    *pad = -1;
    for (i = 0; i < sizeof(PAD_NAMES) / sizeof(PAD_NAMES[0]); i++)
        if (strcmp(p->data, PAD_NAMES[i].name) == 0)
            *pad = PAD_NAMES[i].pad;
    return 1;
}
