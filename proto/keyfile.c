/* Static X25519 private key files for the TCP channel; see secure.h.
 * Format: "# comment" lines, then one line with the base64 secret. */
#include "secure.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define SETERR(...) do { if (err != NULL && errlen > 0) snprintf(err, errlen, __VA_ARGS__); } while (0)
#define KEYFILE_MAX 1024   /* a key file is ~150 bytes; anything larger is not one */

int ks_keyfile_read(const char *path, uint8_t sk[32], uint8_t pk[32], char *err, size_t errlen)
{
    char buf[KEYFILE_MAX + 1];
    struct stat st;
    ssize_t n;
    size_t got = 0, binlen = 0;
    char *line, *save = NULL;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        SETERR("cannot open key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        SETERR("cannot stat key file %s: %s", path, strerror(errno));
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        SETERR("key file %s has mode %04o: group and others must have no access "
               "(chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            SETERR("cannot read key file %s: %s", path, strerror(errno));
            goto out;
        }
        got += (size_t)n;
    }
    if (got >= KEYFILE_MAX) {
        SETERR("%s is larger than %d bytes: not a keystore key file", path, KEYFILE_MAX);
        goto out;
    }
    buf[got] = '\0';
    for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        size_t len = strcspn(line, " \t\r");

        if (line[0] == '#' || len == 0)
            continue;
        line[len] = '\0';
        if (sodium_base642bin(sk, 32, line, len, NULL, &binlen, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0 || binlen != 32)
            break;
        if (crypto_scalarmult_base(pk, sk) != 0)
            break;
        rc = 0;
        break;
    }
    if (rc != 0) {
        sodium_memzero(sk, 32);
        SETERR("%s is not a keystore key file (expected a base64 X25519 private key; create "
               "one with keystorectl client-keygen or keystored --gen-server-key)", path);
    }
out:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

int ks_keyfile_generate(const char *path, const char *comment, uint8_t pk[32],
                        char *err, size_t errlen)
{
    uint8_t sk[32];
    char sk64[KS_PUBKEY_B64_LEN + 1], pk64[KS_PUBKEY_B64_LEN + 1];
    char text[512];
    int fd, n, rc = -1;

    randombytes_buf(sk, sizeof(sk));
    if (crypto_scalarmult_base(pk, sk) != 0) {
        SETERR("X25519 key generation failed");
        goto out;
    }
    sodium_bin2base64(sk64, sizeof(sk64), sk, sizeof(sk), sodium_base64_VARIANT_ORIGINAL);
    ks_pubkey_format(pk, pk64);
    n = snprintf(text, sizeof(text),
                 "# keystore X25519 private key (%s); keep it secret, mode 0600\n"
                 "# public key: %s\n%s\n", comment, pk64, sk64);
    if (n < 0 || (size_t)n >= sizeof(text)) {
        SETERR("key comment too long");
        goto out;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        SETERR("cannot create %s: %s%s", path, strerror(errno),
               errno == EEXIST ? " (refusing to overwrite an existing key)" : "");
        goto out;
    }
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        SETERR("cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        goto out;
    }
    if (close(fd) != 0) {
        SETERR("cannot write %s: %s", path, strerror(errno));
        unlink(path);
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(sk64, sizeof(sk64));
    sodium_memzero(text, sizeof(text));
    return rc;
}
