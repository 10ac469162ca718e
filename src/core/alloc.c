#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

unsigned pt__fail_alloc_percent;
static _Thread_local uint64_t fail_state = 0x9e3779b97f4a7c15ull;

void pt_alloc_init(void)
{
    const char *s = getenv("PT_FAIL_ALLOC");
    if (s != NULL) {
        long v = strtol(s, NULL, 10);
        pt__fail_alloc_percent = v < 0 ? 0 : v > 100 ? 100 : (unsigned)v;
    }
}

int pt__alloc_should_fail(void)
{
    if (pt__fail_alloc_percent == 0)
        return 0;
    /* xorshift: cheap, thread-local, deterministic per thread */
    fail_state ^= fail_state << 13;
    fail_state ^= fail_state >> 7;
    fail_state ^= fail_state << 17;
    return (fail_state % 100) < pt__fail_alloc_percent;
}

void *pt_malloc(size_t n)
{
    if (pt__alloc_should_fail())
        return NULL;
    return malloc(n);
}

void *pt_calloc(size_t count, size_t n)
{
    if (pt__alloc_should_fail())
        return NULL;
    return calloc(count, n);
}

void *pt_realloc(void *p, size_t n)
{
    if (pt__alloc_should_fail())
        return NULL;
    return realloc(p, n);
}

char *pt_strndup(const char *s, size_t n)
{
    char *p = pt_malloc(n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *pt_strdup(const char *s)
{
    return pt_strndup(s, strlen(s));
}
