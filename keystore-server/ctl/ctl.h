/* keystorectl internals shared by its source files. */
#ifndef KS_CTL_H
#define KS_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "wire.h"

/* Stable exit codes (documented in keystorectl --help). */
enum {
    CTL_OK = 0,
    CTL_USAGE = 1,        /* bad command line */
    CTL_UNREACHABLE = 2,  /* server unreachable or protocol error */
    CTL_REFUSED = 3,      /* the server answered with an error */
    CTL_INPUT = 4,        /* local input: unreadable file, bad PEM, wrong passphrase */
    CTL_NONE_EXPIRING = 5,  /* list --expiring: no key's certificate expires that soon */
};

/* Print "keystorectl: ..." to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Read a private key (PEM or DER, encrypted or not) from path.  passin is
 * NULL or "pass:TEXT", "env:VAR", "file:PATH".  Returns NULL after printing
 * why (exit code CTL_INPUT or CTL_USAGE in *code). */
EVP_PKEY *ctl_read_private_key(const char *path, const char *passin, int *code);

/* PKCS#8 DER in a sodium_malloc'd buffer (sodium_free it). 0 or -1. */
int ctl_pkcs8_der(EVP_PKEY *pkey, uint8_t **der, size_t *len);

/* Append every certificate (PEM or DER) in path to the arrays ders and lens (malloc'd,
 * grown as needed).  Returns 0 or -1 after printing why. */
int ctl_read_certs(const char *path, uint8_t ***ders, size_t **lens, size_t *n);

/* Write a PEM SubjectPublicKeyInfo to path (or stdout if NULL).  With
 * json_name set, print {"name", "public_key_pem"} (or {"name", "file"} when
 * writing to path) on stdout instead of bare PEM. */
int ctl_write_pubkey_as(const uint8_t *spki, size_t len, const char *path, const char *json_name);

/* The leaf certificate's not-after time; -1 without a (parsable) leaf. */
int ctl_leaf_not_after(const Keystore__KeyInfo *k, time_t *t);

/* Output of key information. */
void ctl_print_key(const Keystore__KeyInfo *k, int json, const char *verb);
void ctl_print_list(Keystore__KeyInfo **keys, size_t n, int json);
void ctl_json_string(const char *s);

/* keystorectl status (text or JSON) and metrics (Prometheus text format). */
void ctl_print_status(const Keystore__StatusResponse *st, int json);
void ctl_print_metrics(const Keystore__StatusResponse *st);
/* metrics when the server does not answer: keystore_up 0 */
void ctl_print_metrics_down(void);

#endif
