/*
 * Compiler helpers and invariant checks used everywhere.
 */
#ifndef PT_CORE_COMPILER_H
#define PT_CORE_COMPILER_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define pt_likely(x)   __builtin_expect(!!(x), 1)
#define pt_unlikely(x) __builtin_expect(!!(x), 0)

#define PT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/** Recover the outer struct from a pointer to one of its members. */
#define PT_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define PT_CACHE_LINE 64

/* Sanitizer builds allocate every object on its own (no pooling, no bump
 * allocation) so that out-of-bounds accesses are caught. */
#if defined(__SANITIZE_ADDRESS__)
#ifndef PT_ARENA_PASSTHROUGH
#define PT_ARENA_PASSTHROUGH 1
#endif
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#ifndef PT_ARENA_PASSTHROUGH
#define PT_ARENA_PASSTHROUGH 1
#endif
#endif
#endif

/**
 * An invariant that must hold whatever the input.  Stays compiled in release
 * builds because it is cheap.  Never use it on bytes from the network.
 */
#define PT_BUG_ON(cond)                                                                            \
    do {                                                                                           \
        if (pt_unlikely(cond)) {                                                                   \
            fprintf(stderr, "BUG at %s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#ifdef PT_DEBUG
#define PT_DEBUG_ASSERT(cond) PT_BUG_ON(!(cond))
#else
#define PT_DEBUG_ASSERT(cond) ((void)0)
#endif

#endif
