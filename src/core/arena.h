/*
 * Per-request (and per-connection) arenas: bump allocation from 4 KiB chunks,
 * large blocks tracked on their own, everything released at once by
 * pt_arena_reset() or pt_arena_destroy().  Nothing allocated from an arena is
 * ever freed on its own.
 *
 * Non-memory resources (timers, upstream connections, references) are tied to
 * the arena's lifetime with pt_arena_defer(); deferred callbacks run in
 * reverse registration order on reset/destroy.
 *
 * Under AddressSanitizer (or with PT_ARENA_PASSTHROUGH defined) every
 * allocation is its own malloc() so that overflows past one object are caught.
 */
#ifndef PT_CORE_ARENA_H
#define PT_CORE_ARENA_H

#include <stddef.h>

#include "core/compiler.h"
#include "core/str.h"

#define PT_ARENA_CHUNK_SIZE 4096

struct pt_arena_chunk;
struct pt_arena_large;
struct pt_arena_defer;

struct pt_arena {
    char *cur; /* next free byte in the current chunk */
    char *end; /* end of the current chunk */
    struct pt_arena_chunk *chunks;
    struct pt_arena_large *large;
    struct pt_arena_defer *defers;
};

/** Initialise an empty arena; no memory is taken until the first allocation. */
void pt_arena_init(struct pt_arena *a);

/**
 * Allocate n bytes aligned to 16.  Returns NULL only when malloc fails (or
 * allocation-failure injection says so).  The memory lives until the next
 * reset or destroy.
 */
void *pt_arena_alloc(struct pt_arena *a, size_t n);

/** Like pt_arena_alloc, zero-filled. */
void *pt_arena_calloc(struct pt_arena *a, size_t n);

/** Copy n bytes and append a NUL; NULL on allocation failure. */
char *pt_arena_strndup(struct pt_arena *a, const char *s, size_t n);

/** Copy a view into the arena (NUL-terminated copy); ptr is NULL on failure. */
struct pt_str pt_arena_strdup_str(struct pt_arena *a, struct pt_str s);

/** Format into the arena; NULL on failure. */
char *pt_arena_printf(struct pt_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Run fn(arg) when the arena is reset or destroyed.  Returns 0, or
 * PT_ERR_NOMEM (in which case fn is NOT registered and the caller must clean
 * up itself).
 */
int pt_arena_defer(struct pt_arena *a, void (*fn)(void *), void *arg);

/** Run deferred callbacks, free everything but the first chunk, keep the arena usable. */
void pt_arena_reset(struct pt_arena *a);

/** Run deferred callbacks and free all memory. */
void pt_arena_destroy(struct pt_arena *a);

/** Release the calling thread's cache of spare chunks (at thread exit). */
void pt_arena_thread_cleanup(void);

#endif
