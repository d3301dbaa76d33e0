/* ksgenkeys: a bench-only generator of many sealed key files, written
 * straight into an empty key directory (no manifest, no rollback counter)
 * so that keystored's first start takes them all and writes the manifest.
 * Creating 100,000 keys through keystorectl would rewrite the manifest once
 * per key (quadratic); this is for tests/bench/scale.sh and tests that need
 * a big store, never for a real server.
 *
 *   ksgenkeys MASTER_KEY KEY_DIR COUNT [PREFIX=k] [TYPE=ec|ed25519]
 *
 * Writes PREFIX1.key .. PREFIXCOUNT.key (version 2, usage sign) with the
 * server's own sealing code (store/sealed_file.c), without fsync. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "store/keytable.h"
#include "store/keyutil.h"
#include "store/masterkey.h"
#include "store/sealed_file.h"

static EVP_PKEY *new_key(int ed25519)
{
    return ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                   : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int write_all(int dfd, const char *fname, const uint8_t *buf, size_t len)
{
    int fd = openat(dfd, fname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ssize_t w;

    if (fd < 0)
        return -1;
    w = write(fd, buf, len);
    if (close(fd) != 0 || w != (ssize_t)len)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *prefix = argc > 4 ? argv[4] : "k";
    int ed25519 = argc > 5 && strcmp(argv[5], "ed25519") == 0;
    struct ks_keyfile_meta meta = { KS_KEYFILE_VERSION, 0, 0, KS_USAGE_SIGN };
    long i, n;
    int dfd;

    if (argc < 4 || (n = strtol(argv[3], NULL, 10)) <= 0 || n > 10000000) {
        fprintf(stderr, "usage: ksgenkeys MASTER_KEY KEY_DIR COUNT [PREFIX] [ec|ed25519]\n");
        return 1;
    }
    if (sodium_init() < 0 || ks_master_load(argv[1]) != 0 || ks_master_hold() != 0)
        return 1;
    dfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        fprintf(stderr, "ksgenkeys: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    meta.key_type = ed25519 ? KEYSTORE__KEY_TYPE__KEY_TYPE_ED25519 : KEYSTORE__KEY_TYPE__KEY_TYPE_EC;
    meta.created = (uint64_t)time(NULL);
    for (i = 1; i <= n; i++) {
        char name[KS_MAX_KEY_NAME + 1], fname[KS_MAX_KEY_NAME + 8];
        EVP_PKEY *pkey = new_key(ed25519);
        uint8_t *der = NULL, *file = NULL;
        size_t derlen, filelen;

        snprintf(name, sizeof(name), "%s%ld", prefix, i);
        snprintf(fname, sizeof(fname), "%s.key", name);
        if (pkey == NULL || ks_pkey_to_pkcs8(pkey, &der, &derlen) != 0 ||
            ks_seal_key(name, &meta, der, derlen, &file, &filelen) != 0 ||
            write_all(dfd, fname, file, filelen) != 0) {
            fprintf(stderr, "ksgenkeys: cannot make %s/%s: %s\n", argv[2], fname,
                        strerror(errno));
            return 1;
        }
        sodium_free(der);
        free(file);
        EVP_PKEY_free(pkey);
    }
    close(dfd);
    ks_master_release();
    ks_master_unload();
    return 0;
}
