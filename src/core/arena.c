/*
 * Arena allocator.  Chunks are PT_ARENA_CHUNK_SIZE bytes; requests larger
 * than a quarter chunk get their own malloc (the "large" list) so that a
 * single big allocation never wastes a chunk.  Spare chunks are kept on a
 * small per-thread free list so a busy worker does not call malloc/free for
 * every request.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/arena.h"

struct pt_arena_chunk {
    struct pt_arena_chunk *next;
    /* data follows, aligned to 16 */
};

struct pt_arena_large {
    struct pt_arena_large *next;
};

struct pt_arena_defer {
    struct pt_arena_defer *next;
    void (*fn)(void *);
    void *arg;
};

#define HDR_SIZE         ((sizeof(struct pt_arena_chunk) + 15) & ~(size_t)15)
#define LARGE_HDR_SIZE   ((sizeof(struct pt_arena_large) + 15) & ~(size_t)15)
#define MAX_SPARE_CHUNKS 256

static _Thread_local struct pt_arena_chunk *spare_chunks;
static _Thread_local unsigned spare_count;

void pt_arena_init(struct pt_arena *a)
{
    a->cur = a->end = NULL;
    a->chunks = NULL;
    a->large = NULL;
    a->defers = NULL;
}

static __attribute__((unused)) struct pt_arena_chunk *chunk_get(void)
{
    struct pt_arena_chunk *c = spare_chunks;
    if (c != NULL) {
        spare_chunks = c->next;
        spare_count--;
        return c;
    }
    return pt_malloc(PT_ARENA_CHUNK_SIZE);
}

static void chunk_put(struct pt_arena_chunk *c)
{
    if (spare_count >= MAX_SPARE_CHUNKS) {
        free(c);
        return;
    }
    c->next = spare_chunks;
    spare_chunks = c;
    spare_count++;
}

void pt_arena_thread_cleanup(void)
{
    while (spare_chunks != NULL) {
        struct pt_arena_chunk *c = spare_chunks;
        spare_chunks = c->next;
        free(c);
    }
    spare_count = 0;
}

static void *alloc_large(struct pt_arena *a, size_t n)
{
    if (n > SIZE_MAX - LARGE_HDR_SIZE)
        return NULL;
    struct pt_arena_large *l = pt_malloc(LARGE_HDR_SIZE + n);
    if (l == NULL)
        return NULL;
    l->next = a->large;
    a->large = l;
    return (char *)l + LARGE_HDR_SIZE;
}

void *pt_arena_alloc(struct pt_arena *a, size_t n)
{
#ifdef PT_ARENA_PASSTHROUGH
    return alloc_large(a, n == 0 ? 1 : n);
#else
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if ((size_t)(a->end - a->cur) >= n) {
        void *p = a->cur;
        a->cur += n;
        return p;
    }
    if (n > (PT_ARENA_CHUNK_SIZE - HDR_SIZE) / 4)
        return alloc_large(a, n);
    struct pt_arena_chunk *c = chunk_get();
    if (c == NULL)
        return NULL;
    c->next = a->chunks;
    a->chunks = c;
    a->cur = (char *)c + HDR_SIZE + n;
    a->end = (char *)c + PT_ARENA_CHUNK_SIZE;
    return (char *)c + HDR_SIZE;
#endif
}

void *pt_arena_calloc(struct pt_arena *a, size_t n)
{
    void *p = pt_arena_alloc(a, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

char *pt_arena_strndup(struct pt_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = pt_arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

struct pt_str pt_arena_strdup_str(struct pt_arena *a, struct pt_str s)
{
    char *p = pt_arena_strndup(a, s.ptr, s.len);
    return (struct pt_str){p, p == NULL ? 0 : s.len};
}

char *pt_arena_printf(struct pt_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = pt_arena_alloc(a, (size_t)n + 1);
    if (p == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int pt_arena_defer(struct pt_arena *a, void (*fn)(void *), void *arg)
{
    struct pt_arena_defer *d = pt_arena_alloc(a, sizeof(*d));
    if (d == NULL)
        return PT_ERR_NOMEM;
    d->fn = fn;
    d->arg = arg;
    d->next = a->defers;
    a->defers = d;
    return 0;
}

static void run_defers(struct pt_arena *a)
{
    /* A deferred callback may itself allocate or defer; loop until quiet. */
    while (a->defers != NULL) {
        struct pt_arena_defer *d = a->defers;
        a->defers = d->next;
        d->fn(d->arg);
    }
}

static void free_large(struct pt_arena *a)
{
    struct pt_arena_large *l = a->large;
    while (l != NULL) {
        struct pt_arena_large *next = l->next;
        free(l);
        l = next;
    }
    a->large = NULL;
}

void pt_arena_reset(struct pt_arena *a)
{
    run_defers(a);
    free_large(a);
    struct pt_arena_chunk *c = a->chunks;
    if (c == NULL)
        return;
    /* Keep the oldest chunk (the tail) so a steady request size never mallocs. */
    while (c->next != NULL) {
        struct pt_arena_chunk *next = c->next;
        chunk_put(c);
        c = next;
    }
    a->chunks = c;
    a->cur = (char *)c + HDR_SIZE;
    a->end = (char *)c + PT_ARENA_CHUNK_SIZE;
}

void pt_arena_destroy(struct pt_arena *a)
{
    run_defers(a);
    free_large(a);
    struct pt_arena_chunk *c = a->chunks;
    while (c != NULL) {
        struct pt_arena_chunk *next = c->next;
        chunk_put(c);
        c = next;
    }
    pt_arena_init(a);
}
