/* Master key handling; see masterkey.h. */
#include "masterkey.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"

_Static_assert(KS_SEAL_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(KS_SEAL_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(KS_MASTER_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");

static unsigned char *master;   /* sodium_malloc'd, PROT_NONE when idle */
static unsigned char *next;     /* the new key of a rotation, likewise */
/* Serializes the readable window: one thread must not re-protect the page
 * while another is still using it. */
static pthread_mutex_t master_lock = PTHREAD_MUTEX_INITIALIZER;

/* Read and check a key file into a new protected page *into. */
static int load_into(const char *path, unsigned char **into)
{
    unsigned char *k = NULL;
    struct stat st;
    size_t got = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ks_log("error: cannot open master key %s: %s%s", path, strerror(errno),
               errno == ENOENT ? " (create one with: keystored --gen-master-key PATH)" : "");
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        ks_log("error: cannot stat master key %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        ks_log("error: master key %s is not a regular file", path);
        goto fail;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        ks_log("error: master key %s is accessible by group or others (mode %04o); "
               "refusing to use it. Fix with: chmod 600 %s",
               path, (unsigned)(st.st_mode & 07777), path);
        goto fail;
    }
    if (st.st_size != KS_MASTER_KEY_LEN) {
        ks_log("error: master key %s is %lld bytes; it must be exactly %d "
               "(create one with: keystored --gen-master-key PATH)",
               path, (long long)st.st_size, KS_MASTER_KEY_LEN);
        goto fail;
    }
    k = sodium_malloc(KS_MASTER_KEY_LEN);
    if (k == NULL) {
        ks_log("error: cannot allocate protected memory for the master key");
        goto fail;
    }
    while (got < KS_MASTER_KEY_LEN) {
        ssize_t r = read(fd, k + got, KS_MASTER_KEY_LEN - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            ks_log("error: reading master key %s: %s", path,
                   r < 0 ? strerror(errno) : "file shrank while being read");
            goto fail;
        }
        got += (size_t)r;
    }
    close(fd);
    if (sodium_mprotect_noaccess(k) != 0) {
        ks_log("error: cannot protect the master key page (mprotect): %s", strerror(errno));
        sodium_free(k);
        return -1;
    }
    *into = k;
    return 0;
fail:
    close(fd);
    if (k != NULL)
        sodium_free(k);
    return -1;
}

int ks_master_load(const char *path)
{
    if (master != NULL)
        return -1;
    return load_into(path, &master);
}

int ks_master_load_next(const char *path)
{
    if (next != NULL) {
        sodium_mprotect_readwrite(next);
        sodium_free(next);
        next = NULL;
    }
    return load_into(path, &next);
}

void ks_master_unload(void)
{
    if (master != NULL) {
        sodium_mprotect_readwrite(master);
        sodium_free(master);   /* wipes */
        master = NULL;
    }
    if (next != NULL) {
        sodium_mprotect_readwrite(next);
        sodium_free(next);
        next = NULL;
    }
}

void ks_master_switch(void)
{
    unsigned char *n = next;

    next = NULL;
    pthread_mutex_lock(&master_lock);
    if (master != NULL) {
        sodium_mprotect_readwrite(master);
        sodium_free(master);
    }
    master = n;
    pthread_mutex_unlock(&master_lock);
}

/* Set while ks_master_hold() keeps the page readable (master_lock). */
static int held;

/* Open the readable window, or fail without touching the key. */
static int open_window(void)
{
    if (master == NULL)
        return -1;
    if (pthread_mutex_lock(&master_lock) != 0)
        return -1;
    if (!held && sodium_mprotect_readonly(master) != 0) {
        pthread_mutex_unlock(&master_lock);
        ks_log("error: cannot unprotect the master key page: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void close_window(void)
{
    if (!held && sodium_mprotect_noaccess(master) != 0)
        ks_log("warning: cannot re-protect the master key page: %s", strerror(errno));
    pthread_mutex_unlock(&master_lock);
}

int ks_master_hold(void)
{
    if (open_window() != 0)
        return -1;
    held = 1;
    pthread_mutex_unlock(&master_lock);
    return 0;
}

void ks_master_release(void)
{
    if (master == NULL || pthread_mutex_lock(&master_lock) != 0)
        return;
    held = 0;
    close_window();
}

int ks_master_seal(const uint8_t *pt, size_t ptlen, const uint8_t *ad, size_t adlen,
                   const uint8_t nonce[KS_SEAL_NONCE_LEN], uint8_t *ct)
{
    unsigned long long ctlen;
    int r;

    if (open_window() != 0)
        return -1;
    r = crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ctlen, pt, ptlen, ad, adlen,
                                                   NULL, nonce, master);
    close_window();
    return r == 0 ? 0 : -1;
}

int ks_master_unseal(const uint8_t *ct, size_t ctlen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[KS_SEAL_NONCE_LEN], uint8_t *pt)
{
    unsigned long long ptlen;
    int r;

    if (ctlen < KS_SEAL_TAG_LEN)
        return -1;
    if (open_window() != 0)
        return -2;
    r = crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &ptlen, NULL, ct, ctlen, ad, adlen,
                                                   nonce, master);
    close_window();
    return r == 0 ? 0 : -1;
}

int ks_master_reseal(const uint8_t *ct, size_t ctlen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[KS_SEAL_NONCE_LEN], const uint8_t *new_ad,
                     size_t new_adlen, const uint8_t new_nonce[KS_SEAL_NONCE_LEN],
                     uint8_t *out)
{
    unsigned long long ptlen, outlen;
    unsigned char *pt;
    int r;

    if (ctlen < KS_SEAL_TAG_LEN || next == NULL)
        return -2;
    pt = sodium_malloc(ctlen - KS_SEAL_TAG_LEN + 1);
    if (pt == NULL)
        return -2;
    if (open_window() != 0) {
        sodium_free(pt);
        return -2;
    }
    r = crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &ptlen, NULL, ct, ctlen, ad, adlen,
                                                   nonce, master);
    if (r == 0 && sodium_mprotect_readonly(next) == 0) {
        r = crypto_aead_xchacha20poly1305_ietf_encrypt(out, &outlen, pt, ptlen, new_ad,
                                                       new_adlen, NULL, new_nonce, next)
            == 0 ? 0 : -2;
        sodium_mprotect_noaccess(next);
    } else if (r != 0)
        r = -1;
    else
        r = -2;
    close_window();
    sodium_free(pt);   /* wipes */
    return r;
}

