#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/compiler.h"

#define MAX_SPARE 256

struct spare {
    struct spare *next;
};

static _Thread_local struct spare *spares;
static _Thread_local unsigned nspares;

static char *block_get(void)
{
#ifndef PT_ARENA_PASSTHROUGH
    if (spares != NULL) {
        struct spare *s = spares;
        spares = s->next;
        nspares--;
        return (char *)s;
    }
#endif
    return pt_malloc(PT_BUF_SIZE);
}

static void block_put(char *p, size_t cap)
{
#ifndef PT_ARENA_PASSTHROUGH
    if (cap == PT_BUF_SIZE && nspares < MAX_SPARE) {
        struct spare *s = (struct spare *)(void *)p;
        s->next = spares;
        spares = s;
        nspares++;
        return;
    }
#endif
    (void)cap;
    free(p);
}

void pt_buf_thread_cleanup(void)
{
    while (spares != NULL) {
        struct spare *s = spares;
        spares = s->next;
        free(s);
    }
    nspares = 0;
}

char *pt_buf_reserve(struct pt_buf *b, size_t min, size_t max_cap)
{
    if (b->data == NULL) {
        if (min > max_cap)
            return NULL;
        if (min <= PT_BUF_SIZE) {
            b->data = block_get();
            b->cap = PT_BUF_SIZE;
        } else {
            b->data = pt_malloc(min);
            b->cap = (uint32_t)min;
        }
        if (b->data == NULL) {
            b->cap = 0;
            return NULL;
        }
        b->start = b->end = 0;
        return b->data;
    }
    if (b->cap - b->end >= min)
        return b->data + b->end;
    size_t used = b->end - b->start;
    if (b->cap - used >= min && b->start > 0) {
        memmove(b->data, b->data + b->start, used);
        b->start = 0;
        b->end = (uint32_t)used;
        return b->data + b->end;
    }
    size_t want = used + min;
    if (want > max_cap || want > UINT32_MAX / 2)
        return NULL;
    size_t ncap = b->cap * 2;
    while (ncap < want)
        ncap *= 2;
    if (ncap > max_cap)
        ncap = want > max_cap ? want : max_cap;
    char *n = pt_malloc(ncap);
    if (n == NULL)
        return NULL;
    memcpy(n, b->data + b->start, used);
    block_put(b->data, b->cap);
    b->data = n;
    b->cap = (uint32_t)ncap;
    b->start = 0;
    b->end = (uint32_t)used;
    return b->data + b->end;
}

int pt_buf_append(struct pt_buf *b, const void *p, size_t n, size_t max_cap)
{
    char *dst = pt_buf_reserve(b, n, max_cap);
    if (dst == NULL)
        return PT_ERR_NOMEM;
    memcpy(dst, p, n);
    pt_buf_commit(b, n);
    return 0;
}

void pt_buf_release_if_empty(struct pt_buf *b)
{
    if (b->data != NULL && b->start == b->end)
        pt_buf_free(b);
}

void pt_buf_free(struct pt_buf *b)
{
    if (b->data != NULL)
        block_put(b->data, b->cap);
    pt_buf_init(b);
}
