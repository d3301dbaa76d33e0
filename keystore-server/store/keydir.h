/* Every file operation in the key directory, and the one list of the file
 * names the server may use there.
 *
 * Until confinement these run directly on the directory's descriptor.  At
 * confinement the descriptor moves to the file helper, a separate process
 * (sandbox/broker.c) that alone can reach the directory; from then on each
 * call below is a request to it over a socket, and the helper checks the
 * name (ks_keydir_name_class) before touching anything.  The dirfd argument
 * is then ignored.  Injected code in the server can therefore only ask for
 * what these functions can do, on the names listed in keydir.c. */
#ifndef KS_KEYDIR_H
#define KS_KEYDIR_H

#include <stddef.h>
#include <stdint.h>

enum ks_name_class {
    KS_NAME_REFUSED = 0,
    KS_NAME_FINAL,       /* NAME.key, NAME.crt, .manifest: read, replaced atomically, removed */
    KS_NAME_TEMP,        /* .NAME.tmp, .NAME.crt.tmp, .manifest.tmp: written, then renamed */
};

/* Which kind of server file name `fname` is; KS_NAME_REFUSED for any other
 * (paths, "..", names the server never writes). */
enum ks_name_class ks_keydir_name_class(const char *fname);

/* Read a whole file relative to dirfd, refusing files over maxlen and
 * anything but a regular file (symlinks are not followed).  Returns 0, or -1
 * with a reason in err and errno set (ENOENT for a missing file). */
int ks_read_file_at(int dirfd, const char *fname, size_t maxlen,
                    uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* Atomically replace dirfd/fname with buf: write tmpname (O_EXCL, 0600),
 * fsync, rename, fsync the directory.  Returns 0 or -1 with err. */
int ks_write_file_atomic_at(int dirfd, const char *fname, const char *tmpname,
                            const uint8_t *buf, size_t len, char *err, size_t errlen);

/* unlinkat(dirfd, fname, 0) of a server file name; 0 or -1 with errno. */
int ks_unlink_at(int dirfd, const char *fname);

/* fsync of the directory; 0 or -1 with errno. */
int ks_sync_dir(int dirfd);

/* From now on every call above goes to the file helper on socket `fd`. */
void ks_keydir_use_broker(int fd);

/* The file helper's side: answer requests on `sock` with operations on
 * `dirfd` until the server closes the socket (returns 0) or sends something
 * malformed (returns -1 after logging). */
int ks_keydir_serve(int sock, int dirfd);

#endif
