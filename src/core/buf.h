/*
 * Contiguous byte buffers with reserve / commit / consume.
 *
 * Storage comes from a per-thread pool of PT_BUF_SIZE blocks so that a busy
 * worker recycles buffers instead of calling malloc, and an idle connection
 * holds no buffer at all (pt_buf_release() gives the block back as soon as
 * the buffer is empty).  Views into a buffer die on the next reserve, which
 * may move the data.
 */
#ifndef PT_CORE_BUF_H
#define PT_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define PT_BUF_SIZE 32768

struct pt_buf {
    char *data;     /* NULL while the buffer holds nothing */
    uint32_t start; /* first unread byte */
    uint32_t end;   /* one past the last written byte */
    uint32_t cap;   /* allocated size of data */
};

static inline void pt_buf_init(struct pt_buf *b)
{
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

static inline size_t pt_buf_len(const struct pt_buf *b)
{
    return b->end - b->start;
}

static inline char *pt_buf_head(const struct pt_buf *b)
{
    return b->data + b->start;
}

static inline struct pt_str pt_buf_str(const struct pt_buf *b)
{
    return (struct pt_str){b->data + b->start, b->end - b->start};
}

/**
 * Make room for at least min bytes after end (compacting or growing) and
 * return where to write them, or NULL when the allocation fails or the
 * buffer would exceed max_cap bytes.  Existing views into the buffer die.
 */
char *pt_buf_reserve(struct pt_buf *b, size_t min, size_t max_cap);

/** Free space after end (without compacting). */
static inline size_t pt_buf_room(const struct pt_buf *b)
{
    return b->cap - b->end;
}

static inline void pt_buf_commit(struct pt_buf *b, size_t n)
{
    b->end += (uint32_t)n;
}

/** Drop n bytes from the front; an emptied buffer rewinds to offset 0. */
static inline void pt_buf_consume(struct pt_buf *b, size_t n)
{
    b->start += (uint32_t)n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

/** Append bytes; 0 or PT_ERR_NOMEM. */
int pt_buf_append(struct pt_buf *b, const void *p, size_t n, size_t max_cap);

/** Give the storage back to the thread's pool if the buffer is empty. */
void pt_buf_release_if_empty(struct pt_buf *b);

/** Give the storage back unconditionally (content is lost). */
void pt_buf_free(struct pt_buf *b);

/** Free the calling thread's pool of spare blocks. */
void pt_buf_thread_cleanup(void);

#endif
