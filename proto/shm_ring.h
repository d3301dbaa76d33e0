/* The shared-memory fast path between the provider and a local keystored:
 * the layout of the memfd both map, and the ring primitives both sides use.
 * docs/protocol.md ("Shared-memory rings") is the specification.
 *
 * One memfd per connection, created and sealed (F_SEAL_SHRINK|F_SEAL_GROW)
 * by the client, of exactly KS_SHM_HDR + 2 * ring bytes:
 *   [0, 4096)                 control words, each on its own cache line
 *   [4096, 4096 + ring)       request ring (client produces, server consumes)
 *   [4096 + ring, end)        reply ring (server produces, client consumes)
 * Indices are free-running 32-bit byte counts; a position is index & (ring-1).
 * Each ring carries frames exactly as the socket does: a 4-byte big-endian
 * length, then that many bytes of protobuf, wrapping at the ring's end.
 * Nothing in the memory is a pointer; for the server every word is hostile. */
#ifndef KEYSTORE_SHM_RING_H
#define KEYSTORE_SHM_RING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define KS_SHM_HDR 4096u
#define KS_SHM_MIN_RING 4096u
#define KS_SHM_MAX_RING (32u * 1024 * 1024)
#define KS_SHM_DEFAULT_RING (128u * 1024)

/* Byte offsets of the control words (uint32_t each). */
#define KS_SHM_REQ_HEAD 64u        /* client: request bytes produced */
#define KS_SHM_REQ_TAIL 128u       /* server: request bytes consumed */
#define KS_SHM_REP_HEAD 192u       /* server: reply bytes produced; the client's futex word */
#define KS_SHM_REP_TAIL 256u       /* client: reply bytes consumed */
#define KS_SHM_SRV_SLEEP 320u      /* server: 1 while its worker may block in epoll_wait */
#define KS_SHM_CLI_SLEEP 384u      /* client: 1 while it may block in FUTEX_WAIT */

static inline uint32_t *ks_shm_word(uint8_t *base, unsigned off)
{
    return (uint32_t *)(void *)(base + off);
}

static inline uint32_t ks_shm_load(uint8_t *base, unsigned off)
{
    return __atomic_load_n(ks_shm_word(base, off), __ATOMIC_ACQUIRE);
}

static inline void ks_shm_store(uint8_t *base, unsigned off, uint32_t v)
{
    __atomic_store_n(ks_shm_word(base, off), v, __ATOMIC_RELEASE);
}

/* Store then load with a full barrier between (the sleeping-flag handshake:
 * one side sets its flag and re-reads the other's index; the other publishes
 * its index and reads the flag; at least one sees the other). */
static inline void ks_shm_fence(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* A spin-wait hint to the CPU (and to a sibling hyperthread). */
static inline void ks_shm_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Copy len bytes out of / into a ring of size ring (a power of two) at
 * index pos, wrapping at its end.  len <= ring. */
static inline void ks_shm_copy_out(void *dst, const uint8_t *ring, uint32_t size, uint32_t pos,
                                   size_t len)
{
    size_t at = pos & (size - 1), first = size - at < len ? size - at : len;

    memcpy(dst, ring + at, first);
    memcpy((uint8_t *)dst + first, ring, len - first);
}

static inline void ks_shm_copy_in(uint8_t *ring, uint32_t size, uint32_t pos, const void *src,
                                  size_t len)
{
    size_t at = pos & (size - 1), first = size - at < len ? size - at : len;

    memcpy(ring + at, src, first);
    memcpy(ring, (const uint8_t *)src + first, len - first);
}

/* The largest ring a server maps for frames of up to max_frame bytes: twice
 * the smallest power of two that holds one (the pages are the server's to
 * populate: a client must not make it lock more than it needs). */
static inline uint32_t ks_shm_max_ring(size_t max_frame)
{
    uint32_t r = KS_SHM_MIN_RING;

    while (r < 4 + max_frame && r < KS_SHM_MAX_RING)
        r *= 2;
    return r < KS_SHM_MAX_RING ? 2 * r : r;
}

/* 1 if ring is a size this protocol allows. */
static inline int ks_shm_ring_size_ok(uint32_t ring)
{
    return ring >= KS_SHM_MIN_RING && ring <= KS_SHM_MAX_RING && (ring & (ring - 1)) == 0;
}

#endif
