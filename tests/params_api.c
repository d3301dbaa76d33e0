/* The parameters an application can set and get on a keystore key's
 * operation context are the default provider's: every name the default
 * provider lists for signing (RSA, RSA-PSS key, ECDSA) and decryption (RSA)
 * is listed by keystore too, and values set through EVP_PKEY_CTX_set_params
 * read back the same.  Only the default provider's self-test hook "kat" is
 * left out.
 *
 * usage: params_api  (provider from OPENSSL_CONF; keys keystore:rsa,
 * keystore:pss, keystore:ec must exist) */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"



enum op { SIGN, DECRYPT };

static EVP_PKEY_CTX *op_ctx(EVP_PKEY *k, enum op op)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);

    if (c == NULL || (op == SIGN ? EVP_PKEY_sign_init(c) : EVP_PKEY_decrypt_init(c)) != 1) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

/* Every name in want (but "kat") is in have. */
static void covers(const char *what, const OSSL_PARAM *have, const OSSL_PARAM *want)
{
    const OSSL_PARAM *w;
    char msg[256];

    for (w = want; w != NULL && w->key != NULL; w++) {
        if (strcmp(w->key, "kat") == 0)
            continue;
        snprintf(msg, sizeof(msg), "%s lists '%s' like the default provider", what, w->key);
        tu_check(OSSL_PARAM_locate_const(have, w->key) != NULL, msg);
    }
}

static void compare(const char *name, EVP_PKEY *ks, EVP_PKEY *def, enum op op)
{
    EVP_PKEY_CTX *a = op_ctx(ks, op), *b = op_ctx(def, op);
    char what[128];

    snprintf(what, sizeof(what), "%s context", name);
    tu_check(a != NULL && b != NULL, what);
    if (a != NULL && b != NULL) {
        snprintf(what, sizeof(what), "%s settable", name);
        covers(what, EVP_PKEY_CTX_settable_params(a), EVP_PKEY_CTX_settable_params(b));
        snprintf(what, sizeof(what), "%s gettable", name);
        covers(what, EVP_PKEY_CTX_gettable_params(a), EVP_PKEY_CTX_gettable_params(b));
    }
    EVP_PKEY_CTX_free(a);
    EVP_PKEY_CTX_free(b);
}

/* Set values through the generic params API and read them back. */
static void roundtrip(EVP_PKEY *rsa)
{
    EVP_PKEY_CTX *c = op_ctx(rsa, SIGN), *d = op_ctx(rsa, DECRYPT);
    char md[32] = "", mgf1[32] = "", pad[32] = "";
    int saltlen = 0;
    unsigned char label[] = "label", *got = NULL;
    size_t gotlen = 0;
    unsigned int ver = 0;
    OSSL_PARAM set[5], get[5];

    set[0] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, (char *)"pss", 0);
    set[1] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, (char *)"SHA384", 0);
    set[2] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, (char *)"SHA256", 0);
    set[3] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, (char *)"max", 0);
    set[4] = OSSL_PARAM_construct_end();
    get[0] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, pad, sizeof(pad));
    get[1] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, md, sizeof(md));
    get[2] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, mgf1, sizeof(mgf1));
    get[3] = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, &saltlen);
    get[4] = OSSL_PARAM_construct_end();
    tu_check(c != NULL && EVP_PKEY_CTX_set_params(c, set) == 1 && EVP_PKEY_CTX_get_params(c, get) == 1
          && strcmp(pad, "pss") == 0 && strcmp(md, "SHA384") == 0 && strcmp(mgf1, "SHA256") == 0
          && saltlen == RSA_PSS_SALTLEN_MAX,
          "signature parameters set with EVP_PKEY_CTX_set_params read back");

    set[0] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, (char *)"oaep", 0);
    set[1] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, (char *)"SHA512", 0);
    set[2] = OSSL_PARAM_construct_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, label, sizeof(label));
    set[3] = OSSL_PARAM_construct_end();
    md[0] = mgf1[0] = '\0';
    get[0] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, md, sizeof(md));
    get[1] = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, mgf1, sizeof(mgf1));
    get[2] = OSSL_PARAM_construct_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, (void **)&got, 0);
    get[3] = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, &ver);
    get[4] = OSSL_PARAM_construct_end();
    if (d != NULL && EVP_PKEY_CTX_set_params(d, set) == 1 && EVP_PKEY_CTX_get_params(d, get) == 1)
        gotlen = get[2].return_size;
    tu_check(d != NULL && strcmp(md, "SHA512") == 0 && strcmp(mgf1, "SHA512") == 0 && got != NULL
          && gotlen == sizeof(label) && memcmp(got, label, gotlen) == 0 && ver == 0,
          "OAEP parameters set with EVP_PKEY_CTX_set_params read back (MGF1 follows the OAEP digest)");
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_CTX_free(d);
}

/* EVP_PKEY_Q_keygen has no RSA-PSS in 3.0. */
static EVP_PKEY *keygen_pss(void)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", "provider=default");
    EVP_PKEY *k = NULL;

    if (c == NULL || EVP_PKEY_keygen_init(c) != 1 || EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048) != 1
        || EVP_PKEY_generate(c, &k) != 1)
        k = NULL;
    EVP_PKEY_CTX_free(c);
    return k;
}

int main(void)
{
    EVP_PKEY *rsa = tu_load_pkey("keystore:rsa"), *pss = tu_load_pkey("keystore:pss");
    EVP_PKEY *ec = tu_load_pkey("keystore:ec");
    EVP_PKEY *drsa = EVP_PKEY_Q_keygen(NULL, "provider=default", "RSA", (size_t)2048);
    EVP_PKEY *dpss = keygen_pss();
    EVP_PKEY *dec = EVP_PKEY_Q_keygen(NULL, "provider=default", "EC", "P-256");

    if (rsa == NULL || pss == NULL || ec == NULL || drsa == NULL || dpss == NULL || dec == NULL) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "params_api: cannot load or make the keys\n");
        return 2;
    }
    compare("RSA signature", rsa, drsa, SIGN);
    compare("RSA-PSS key signature", pss, dpss, SIGN);
    compare("ECDSA signature", ec, dec, SIGN);
    compare("RSA decryption", rsa, drsa, DECRYPT);
    roundtrip(rsa);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(pss);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(drsa);
    EVP_PKEY_free(dpss);
    EVP_PKEY_free(dec);
    printf("%d failure(s)\n", tu_failures);
    return tu_failures == 0 ? 0 : 1;
}
