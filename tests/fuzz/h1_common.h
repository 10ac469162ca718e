/*
 * Shared by the h1_request and h1_response fuzz targets (not a target: the
 * Makefile builds only the .c files there).
 *
 * The input is copied into a buffer of exactly its length, and the bytes a
 * call is not given are poisoned, so ASan catches any read past `len` even
 * when the parser is handed a prefix of the buffer.
 */
#ifndef PT_FUZZ_H1_COMMON_H
#define PT_FUZZ_H1_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "portico/status.h"
#include "http/h1.h"

#define FUZZ_MAXH       32
#define FUZZ_SMALL_MAXH 2

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Make buf[0..len) readable and buf[len..size) poisoned. */
static inline void expose(const char *buf, size_t len, size_t size)
{
    ASAN_UNPOISON_MEMORY_REGION(buf, size);
    if (size > len)
        ASAN_POISON_MEMORY_REGION(buf + len, size - len);
}

static inline bool view_within(struct pt_str s, const char *buf, int head_len)
{
    return s.len == 0 || (s.ptr >= buf && s.ptr + s.len <= buf + head_len);
}

static inline bool known_result(int rc)
{
    return rc >= 0 || rc == PT_PARSE_PARTIAL || rc == PT_PARSE_INVALID ||
           rc == PT_H1_TOO_MANY_HEADERS || rc == PT_H1_BAD_VERSION;
}

/* What every accepted field must look like. */
static inline void check_fields(const struct pt_h1_header *h, size_t n, const char *buf,
                                int head_len)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(h[i].name.len > 0);
        CHECK(view_within(h[i].name, buf, head_len));
        CHECK(view_within(h[i].value, buf, head_len));
        for (size_t j = 0; j < h[i].name.len; j++)
            CHECK(pt_h1_tchar[(unsigned char)h[i].name.ptr[j]]);
        for (size_t j = 0; j < h[i].value.len; j++) {
            unsigned char c = (unsigned char)h[i].value.ptr[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h[i].value.len > 0) {
            char first = h[i].value.ptr[0], last = h[i].value.ptr[h[i].value.len - 1];
            CHECK(first != ' ' && first != '\t' && last != ' ' && last != '\t');
        }
        /* must not crash, whatever the fields */
        (void)pt_h1_is_hop_by_hop(h[i].name, h, n);
        CHECK(pt_h1_find_header(h, n, h[i].name) != NULL);
    }
}

/* Framing facts that must hold whenever a meta function says 0. */
static inline void check_meta(int rc, const struct pt_h1_meta *m, const char *why,
                              const struct pt_h1_header *h, size_t n, int minor)
{
    CHECK(rc == 0 || rc == PT_PARSE_INVALID || rc == PT_DECLINED);
    if (rc != 0) {
        CHECK(why != NULL);
        if (rc == PT_PARSE_INVALID)
            return;
    }
    const struct pt_h1_header *cl = pt_h1_find_header(h, n, PT_STR_LIT("content-length"));
    const struct pt_h1_header *te = pt_h1_find_header(h, n, PT_STR_LIT("transfer-encoding"));
    CHECK(cl == NULL || te == NULL);
    if (m->body == PT_H1_BODY_LENGTH)
        CHECK(cl != NULL);
    if (m->body == PT_H1_BODY_CHUNKED)
        CHECK(te != NULL && minor == 1);
    if (m->body == PT_H1_BODY_UNTIL_CLOSE)
        CHECK(!m->keep_alive);
    if (m->upgrade)
        CHECK(pt_h1_find_header(h, n, PT_STR_LIT("upgrade")) != NULL);
    CHECK(m->host.ptr != NULL && m->upgrade_proto.ptr != NULL);
}

/* A small deterministic PRNG seeded from the input, to pick split points. */
static inline uint32_t fuzz_seed(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    return h | 1;
}

static inline uint32_t fuzz_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/*
 * The incremental contract for a parse function (kind 0 request, 1 response):
 *  - any prefix parsed from scratch answers PARTIAL or the whole answer, and
 *    PARTIAL when it is shorter than a successful head;
 *  - feeding one byte at a time with last_len ends in the whole answer; it may
 *    stay PARTIAL only when the whole answer is INVALID or BAD_VERSION (an
 *    error made of non-control bytes that arrived after the first call and
 *    before any end of head: see h1.c).
 */
typedef int (*parse_fn)(const char *buf, size_t len, size_t last_len, void *msg,
                        struct pt_h1_header *h, size_t maxh);

static inline void check_incremental(parse_fn parse, void *msg, char *buf, size_t size, int whole,
                                     const uint8_t *data)
{
    struct pt_h1_header h[FUZZ_MAXH];
    uint32_t seed = fuzz_seed(data, size);
    size_t samples = size <= 256 ? size : 64;

    for (size_t i = 0; i < samples; i++) {
        size_t k = size <= 256 ? i : fuzz_next(&seed) % size;
        expose(buf, k, size);
        int rc = parse(buf, k, 0, msg, h, FUZZ_MAXH);
        if (whole >= 0 && k < (size_t)whole)
            CHECK(rc == PT_PARSE_PARTIAL);
        else
            CHECK(rc == PT_PARSE_PARTIAL || rc == whole);
    }

    int rc = PT_PARSE_PARTIAL;
    size_t k;
    for (k = 1; k <= size && rc == PT_PARSE_PARTIAL; k++) {
        expose(buf, k, size);
        rc = parse(buf, k, k - 1, msg, h, FUZZ_MAXH);
    }
    expose(buf, size, size);
    if (whole >= 0) {
        CHECK(rc == whole && k - 1 == (size_t)whole);
    } else if (whole == PT_H1_TOO_MANY_HEADERS || whole == PT_PARSE_PARTIAL) {
        CHECK(rc == whole);
    } else {
        CHECK(rc == whole || rc == PT_PARSE_PARTIAL);
    }
}

#endif
