/* Reply arena; see arena.h. */
#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

struct ks_arena_chunk {
    struct ks_arena_chunk *next;
    size_t len;
    max_align_t data[];
};

void *ks_arena_alloc(struct ks_arena *a, size_t len)
{
    struct ks_arena_chunk *c;
    size_t align = _Alignof(max_align_t), at = (a->used + align - 1) & ~(align - 1);

    if (len <= KS_ARENA_INLINE && at <= KS_ARENA_INLINE - len) {
        memset(a->first + at, 0, len);   /* like calloc */
        a->used = at + len;
        return a->first + at;
    }

    if (len > ((size_t)-1) / 2 || (c = calloc(1, sizeof(*c) + len)) == NULL) {
        a->failed = 1;
        return NULL;
    }
    c->len = len;
    c->next = a->head;
    a->head = c;
    return c->data;
}

void *ks_arena_memdup(struct ks_arena *a, const void *p, size_t len)
{
    void *d = ks_arena_alloc(a, len);

    if (d != NULL && len > 0)
        memcpy(d, p, len);
    return d;
}

char *ks_arena_printf(struct ks_arena *a, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (s = ks_arena_alloc(a, (size_t)n + 1)) == NULL) {
        a->failed = 1;
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void ks_arena_free(struct ks_arena *a)
{
    struct ks_arena_chunk *c = a->head, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        sodium_memzero(c->data, c->len);
        free(c);
    }
    a->head = NULL;
    a->failed = 0;
    sodium_memzero(a->first, a->used);
    a->used = 0;
}

static void *pb_alloc(void *data, size_t size)
{
    return ks_arena_alloc(data, size > 0 ? size : 1);
}

static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

void ks_arena_protobuf(struct ks_arena *a, ProtobufCAllocator *out)
{
    out->alloc = pb_alloc;
    out->free = pb_free;
    out->allocator_data = a;
}
