/*
 * libFuzzer target: the chunked decoder.  The input is decoded whole, split
 * at pseudo-random points derived from the input, and one byte at a time;
 * all three must agree on the outcome (error, done, incomplete), on the
 * number of bytes consumed and on the payload.  Each call's payload view
 * must lie within the bytes that call consumed, the decoder must never
 * consume past the end of the body, and bytes it was not given are poisoned
 * so ASan sees any read beyond them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "portico/status.h"
#include "http/chunked.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct outcome {
    bool error, done;
    size_t consumed;
    size_t out_len;
    uint64_t total;
    char *out; /* at least size bytes */
};

static void expose(const char *buf, size_t len, size_t size)
{
    ASAN_UNPOISON_MEMORY_REGION(buf, size);
    if (size > len)
        ASAN_POISON_MEMORY_REGION(buf + len, size - len);
}

/* cuts: increasing arrival points; the input is complete after the last. */
static void run(const char *buf, size_t size, const size_t *cuts, size_t ncuts, struct outcome *o)
{
    struct pt_chunked c;
    size_t pos = 0, received = 0;
    pt_chunked_init(&c);
    o->error = o->done = false;
    o->out_len = 0;

    for (size_t i = 0; i <= ncuts; i++) {
        size_t next = i < ncuts ? cuts[i] : size;
        if (next <= received && i < ncuts)
            continue;
        received = next;
        expose(buf, received, size);
        while (pos < received && !c.done) {
            struct pt_str data;
            ssize_t rc = pt_chunked_decode(&c, buf + pos, received - pos, &data);
            if (rc < 0) {
                CHECK(rc == PT_PARSE_INVALID);
                o->error = true;
                goto out;
            }
            CHECK((size_t)rc <= received - pos);
            CHECK(data.len <= (size_t)rc);
            if (data.len > 0) {
                CHECK(data.ptr >= buf + pos && data.ptr + data.len <= buf + pos + rc);
                memcpy(o->out + o->out_len, data.ptr, data.len);
                o->out_len += data.len;
            }
            CHECK(rc > 0 || c.done);
            if (rc == 0)
                break;
            pos += (size_t)rc;
        }
        if (c.done)
            break;
    }
out:
    expose(buf, size, size);
    o->done = c.done;
    o->consumed = pos;
    o->total = c.total;
    if (!o->error)
        CHECK(o->total == o->out_len);
}

static bool same(const struct outcome *a, const struct outcome *b)
{
    if (a->error != b->error)
        return false;
    if (a->error)
        return true;
    return a->done == b->done && a->consumed == b->consumed && a->out_len == b->out_len &&
           memcmp(a->out, b->out, a->out_len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size == 0 ? 1 : size);
    char *o1 = malloc(size + 1), *o2 = malloc(size + 1);
    size_t *cuts = malloc((size + 1) * sizeof(*cuts));
    if (buf == NULL || o1 == NULL || o2 == NULL || cuts == NULL)
        abort();
    memcpy(buf, data, size);

    struct outcome whole = {.out = o1}, other = {.out = o2};
    run(buf, size, NULL, 0, &whole);
    if (whole.done) {
        /* the decoder stops exactly at the end of the body: a second decoder
         * given only those bytes finishes too */
        struct outcome exact = {.out = o2};
        run(buf, whole.consumed, NULL, 0, &exact);
        CHECK(exact.done && exact.consumed == whole.consumed);
    } else if (!whole.error) {
        CHECK(whole.consumed == size);
    }

    /* a few random splits */
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 16777619u;
    seed |= 1;
    for (int round = 0; round < 4 && size > 1; round++) {
        size_t n = 0, at = 0;
        while (n < 8) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            at += 1 + seed % (round == 0 ? 3 : size);
            if (at >= size)
                break;
            cuts[n++] = at;
        }
        run(buf, size, cuts, n, &other);
        CHECK(same(&whole, &other));
    }

    /* one byte at a time */
    for (size_t i = 0; i <= size; i++)
        cuts[i] = i;
    run(buf, size, cuts, size + 1, &other);
    CHECK(same(&whole, &other));

    free(cuts);
    free(o2);
    free(o1);
    free(buf);
    return 0;
}
