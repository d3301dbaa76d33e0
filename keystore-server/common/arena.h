/* Per-request allocation arena for building replies.  Everything is wiped
 * and freed at once, so a reply carrying plaintext (Decrypt) never leaves
 * copies behind and error paths need no per-field cleanup. */
#ifndef KS_ARENA_H
#define KS_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct ks_arena_chunk;

#define KS_ARENA_INLINE 2048

struct ks_arena {
    struct ks_arena_chunk *head;
    int failed;   /* an allocation failed: the reply is incomplete */
    /* A small request and its reply (a signature) fit here without any
     * malloc; larger allocations get chunks of their own. */
    size_t used;
    _Alignas(max_align_t) unsigned char first[KS_ARENA_INLINE];
};

#define KS_ARENA_INIT { NULL, 0 }

/* Zeroed memory, or NULL (and a->failed set). */
void *ks_arena_alloc(struct ks_arena *a, size_t len);
void *ks_arena_memdup(struct ks_arena *a, const void *p, size_t len);
char *ks_arena_printf(struct ks_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Wipe and free everything. */
void ks_arena_free(struct ks_arena *a);

/* A protobuf-c allocator that unpacks into a (its free does nothing: the
 * message goes, wiped, with the arena). */
void ks_arena_protobuf(struct ks_arena *a, ProtobufCAllocator *out);

#endif
