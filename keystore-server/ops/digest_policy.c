/* Weak signature digests; see digest_policy.h. */
#include "digest_policy.h"

#include <fnmatch.h>
#include <string.h>

/* 224 bits: SHA-224 and SHA-512/224 are the shortest digests accepted. */
#define MIN_DIGEST_BYTES 28

static int is_weak(const EVP_MD *md)
{
    int size = EVP_MD_get_size(md);

    /* MD5-SHA1 is 36 bytes long but no stronger than its SHA-1 half (the
     * name lookup only for that size: it costs more than the rest of this
     * request's checks together) */
    return size < MIN_DIGEST_BYTES || (size == 36 && EVP_MD_is_a(md, "MD5-SHA1"));
}

/* Does key name match one of the space-separated globs in list? */
static int listed(const char *list, const char *name)
{
    char pat[KS_MAX_KEY_NAME + 1];
    size_t n;

    while (*list != '\0') {
        list += strspn(list, " \t");
        n = strcspn(list, " \t");
        if (n > 0 && n < sizeof(pat)) {   /* config.c bounds each pattern */
            memcpy(pat, list, n);
            pat[n] = '\0';
            if (fnmatch(pat, name, 0) == 0)
                return 1;
        }
        list += n;
    }
    return 0;
}

int ks_digest_permitted(struct ks_op *op, const struct ks_key *k, const EVP_MD *md)
{
    if (!is_weak(md) || listed(op->cfg->allow_weak_digests, k->name))
        return 1;
    /* short: the provider shows 200 characters of a server's message */
    ks_op_error(op, KEYSTORE__ERROR_CODE__ERROR_PERMISSION_DENIED,
                "key '%s' may not sign with %s (too weak against collisions): use SHA-256 or "
                "stronger, or set allow_weak_digests = %s in the server configuration",
                k->name, EVP_MD_get0_name(md), k->name);
    return 0;
}
