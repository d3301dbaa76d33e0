/* Per-request allocation arena for building replies.  Everything is wiped
 * and freed at once, so a reply carrying plaintext (Decrypt) never leaves
 * copies behind and error paths need no per-field cleanup. */
#ifndef KS_ARENA_H
#define KS_ARENA_H

#include <stddef.h>

struct ks_arena_chunk;

struct ks_arena {
    struct ks_arena_chunk *head;
    int failed;   /* an allocation failed: the reply is incomplete */
};

#define KS_ARENA_INIT { NULL, 0 }

/* Zeroed memory, or NULL (and a->failed set). */
void *ks_arena_alloc(struct ks_arena *a, size_t len);
void *ks_arena_memdup(struct ks_arena *a, const void *p, size_t len);
char *ks_arena_printf(struct ks_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Wipe and free everything. */
void ks_arena_free(struct ks_arena *a);

#endif
