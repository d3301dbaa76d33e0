/* Client side of the shared-memory fast path (layout: shm_ring.h).  One
 * struct ks_shm belongs to one connection of one thread of one process. */
#ifndef KEYSTORE_SHM_H
#define KEYSTORE_SHM_H

#include <stddef.h>
#include <sys/types.h>

#include "keystore.pb-c.h"

struct ks_shm;

/* Create and seal a memfd of KS_SHM_HDR + 2 * ring bytes and map it (not
 * inherited across fork: MADV_DONTFORK).  NULL with a message on failure. */
struct ks_shm *ks_shm_create(uint32_t ring, char *err, size_t errlen);
int ks_shm_fd(const struct ks_shm *m);
uint32_t ks_shm_ring(const struct ks_shm *m);

/* Hello over the Unix socket fd with the memfd attached (SCM_RIGHTS).
 * *accepted is 1 if the server maps the rings (then every later request
 * must go through ks_shm_call), else 0 and *m is no longer needed.
 * Returns 0, or -1 with a message (the connection should be dropped). */
int ks_shm_hello(int fd, struct ks_shm *m, const char *client_name, size_t *server_max_frame,
                 int *accepted, char *err, size_t errlen);

/* One request and its reply through the rings; the socket fd is the
 * liveness channel (EOF or an error there: the server is gone).  Waits no
 * longer than the thread's operation deadline (ks_io_set_deadline) or the
 * default timeout.  Same contract as ks_call. */
int ks_shm_call(struct ks_shm *m, int fd, size_t max_frame, const Keystore__Request *req,
                Keystore__Response **resp, char *err, size_t errlen);

/* Unmap and close.  In a forked child (other pid than the creator's) the
 * mapping was never inherited, so only the descriptor is closed. */
void ks_shm_free(struct ks_shm *m);

#endif
