/* The socketpair protocol between keystored's key process and its catalogue
 * agent (daemon/catalogue_agent.c).  Frames are a u32 BE length and that
 * many bytes; every field is length-prefixed and bounded.  The key process
 * treats every frame from the agent as hostile: the records inside are
 * checked by store/catalogue.c and the manifest rules before any use.
 *
 * Two socketpairs, so that a writer waiting for its transaction's result
 * never waits behind watch events (which need the store's write lock):
 *   requests (key process -> agent, one at a time, answered in order):
 *     'T' u8 namelen name u64 expect_mod_revision u32 len record
 *       -> 'R' u8 status (1 written, 0 compare failed, 2 etcd unavailable)
 *              u64 revision u16 msglen message
 *   events (agent -> key process):
 *     'P' u8 namelen name u64 mod_revision u32 len record   a record (range or watch)
 *     'D' u8 namelen name u64 mod_revision                  deleted in etcd (not a tombstone)
 *     'S' u64 revision                                      the range read up to revision is sent
 *     'E' u8 0 u64 0 u16 msglen message                     etcd unreachable or the watch stopped
 *                                                           (for status; the agent retries) */
#ifndef KS_CATALOGUE_WIRE_H
#define KS_CATALOGUE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define KS_CATW_FRAME_MAX (17u * 1024 * 1024 + 1024)

struct ks_catw_msg {
    uint8_t type;
    uint8_t status;
    char name[256];
    uint64_t rev;
    const uint8_t *data;   /* record or message, points into the frame */
    size_t len;
};

/* Build and send one message (blocking).  0 or -1 with errno. */
int ks_catw_send(int fd, const struct ks_catw_msg *m);

/* Receive one frame (malloc'd into *frame) and parse it into *m, waiting at
 * most timeout_ms (-1: forever).  0, -1 error or malformed, -2 timeout, -3 closed.
 * *frame is NULL unless 0 is returned. */
int ks_catw_recv(int fd, uint8_t **frame, struct ks_catw_msg *m, int timeout_ms);

/* Parse one frame's body (after the length) into *m, whose pointers point
 * into f.  0, or -1 malformed.  (Also the fuzz target's entry point.) */
int ks_catw_parse(const uint8_t *f, size_t len, struct ks_catw_msg *m);

#endif
