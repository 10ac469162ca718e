/*
 * Heap allocation wrappers.  They behave like the libc functions but honour
 * allocation-failure injection: with PT_FAIL_ALLOC=<percent> in the
 * environment (read once by pt_alloc_init()), that share of allocations
 * fails, which exercises every error path (HAProxy's POOL_DBG_FAIL_ALLOC).
 */
#ifndef PT_CORE_ALLOC_H
#define PT_CORE_ALLOC_H

#include <stddef.h>

extern unsigned pt__fail_alloc_percent;

/** Read PT_FAIL_ALLOC from the environment.  Call once at start-up. */
void pt_alloc_init(void);

int pt__alloc_should_fail(void);

void *pt_malloc(size_t n);
void *pt_calloc(size_t count, size_t n);
void *pt_realloc(void *p, size_t n);
char *pt_strdup(const char *s);
char *pt_strndup(const char *s, size_t n);

#endif
