/*
 * libFuzzer target: the cache's parsers (src/plugins/cache_policy.c).
 *
 * The input is used as a Cache-Control value, as an HTTP date, as an
 * entity-tag and an If-None-Match list (split at the first newline: stored
 * ETag, then the list), and, split at newlines, as the fields of a response
 * (name: value) that pt_cache_response_info, storability, freshness, the
 * Vary signature, the cache key, conditional evaluation and the 304 header
 * merge read.  Invariants: parsing never reads outside the input (ASan),
 * the same input parses the same way twice, delta-seconds are clamped,
 * a parsed date formats back to the same second, freshness never exceeds
 * what the directives allow, a valid entity-tag matches itself and `*`,
 * and a merge only hands back fields of its inputs.  The input is also a
 * Range value against a few lengths, an If-Range value against stored
 * validators, and (as fields) a request whose Range/If-Range are
 * evaluated against the same fields as a stored response: a partial range
 * always lies inside the body, and a Range whose unit is not `bytes=` is
 * ignored.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/cache_policy.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_FIELDS 32

static void cache_control(const char *p, size_t n)
{
    struct pt_cache_control a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    pt_cache_control_parse(pt_str_make(p, n), &a);
    pt_cache_control_parse(pt_str_make(p, n), &b);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
    CHECK(a.max_age <= PT_CC_DELTA_MAX && a.s_maxage <= PT_CC_DELTA_MAX);
    CHECK(a.stale_while_revalidate <= PT_CC_DELTA_MAX && a.stale_if_error <= PT_CC_DELTA_MAX);
    CHECK((a.flags & PT_CC_MAX_AGE) || a.max_age == 0);
    CHECK((a.flags & PT_CC_S_MAXAGE) || a.s_maxage == 0);
    /* parsing the same value twice into one struct changes nothing (smallest wins) */
    pt_cache_control_parse(pt_str_make(p, n), &b);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0);
}

static void date(const char *p, size_t n)
{
    int64_t t;
    if (pt_http_date_parse(pt_str_make(p, n), &t) != 0)
        return;
    CHECK(t > -62200000000ll && t < 253402300800ll); /* years 0000..9999 */
    if (t < 0)
        return;
    char buf[30];
    size_t k = pt_http_date_format(t, buf);
    CHECK(k == 29);
    int64_t back;
    CHECK(pt_http_date_parse(pt_str_make(buf, k), &back) == 0 && back == t);
}

static void etags(const char *p, size_t n)
{
    struct pt_str t;
    bool w;
    if (pt_etag_parse(pt_str_make(p, n), &t, &w) == 0) {
        CHECK(t.ptr >= p && t.ptr + t.len <= p + n && t.len >= 2);
        CHECK(t.ptr[0] == '"' && t.ptr[t.len - 1] == '"');
        CHECK(pt_etag_list_match(pt_str_make(p, n), pt_str_make(p, n), false));
        CHECK(pt_etag_list_match(PT_STR_LIT("*"), pt_str_make(p, n), false));
    }
    const char *nl = memchr(p, '\n', n);
    struct pt_str stored = pt_str_make(p, nl != NULL ? (size_t)(nl - p) : n);
    struct pt_str list = nl != NULL ? pt_str_make(nl + 1, n - stored.len - 1) : PT_STR_NULL;
    bool a = pt_etag_list_match(list, stored, true);
    CHECK(a == pt_etag_list_match(list, stored, true));
    if (a && pt_etag_parse(stored, &t, &w) != 0) /* an invalid stored tag matches only `*` */
        CHECK(pt_str_trim_ows(list).len == 1);
}

static void check_range(struct pt_str v, uint64_t len)
{
    struct pt_byte_range r = {UINT64_MAX, 0}, r2 = {0, 0};
    enum pt_range_verdict a = pt_range_parse(v, len, &r);
    CHECK((unsigned)a < PT_RANGE_VERDICT_COUNT);
    CHECK(a == pt_range_parse(v, len, &r2));
    if (a == PT_RANGE_PARTIAL) {
        CHECK(r.first <= r.last && r.last < len);
        CHECK(r.first == r2.first && r.last == r2.last);
    }
    struct pt_str t = pt_str_trim_ows(v);
    if (a != PT_RANGE_IGNORE) /* only the bytes unit is honoured */
        CHECK(t.len >= 6 && pt_str_case_eq_lit(pt_str_make(t.ptr, 6), "bytes="));
}

static void ranges(const char *p, size_t n)
{
    static const uint64_t lens[] = {0, 1, 100, 1u << 20, UINT64_MAX};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        check_range(pt_str_make(p, n), lens[i]);
    /* first line: If-Range value; second: stored ETag */
    const char *nl = memchr(p, '\n', n);
    struct pt_str ir = pt_str_make(p, nl != NULL ? (size_t)(nl - p) : n);
    struct pt_str et = nl != NULL ? pt_str_make(nl + 1, n - ir.len - 1) : ir;
    int64_t t = 0;
    bool has_lm = pt_http_date_parse(ir, &t) == 0;
    bool m = pt_if_range_match(ir, et, has_lm, t, true, t + 1);
    CHECK(m == pt_if_range_match(ir, et, has_lm, t, true, t + 1));
    if (has_lm) /* a date equal to the Date is weak: it never holds */
        CHECK(!pt_if_range_match(ir, et, true, t, true, t));
    struct pt_str tag;
    bool weak;
    if (m && !has_lm) /* an entity-tag match is strong on both sides */
        CHECK(pt_etag_parse(ir, &tag, &weak) == 0 && !weak && pt_etag_parse(et, &tag, &weak) == 0 &&
              !weak);
}

static size_t fields(const char *p, size_t n, struct pt_h1_header *hs)
{
    size_t k = 0;
    const char *e = p + n;
    while (p < e && k < MAX_FIELDS) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *end = nl != NULL ? nl : e;
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon != NULL) {
            hs[k].name = pt_str_make(p, (size_t)(colon - p));
            hs[k].value = pt_str_trim_ows(pt_str_make(colon + 1, (size_t)(end - colon - 1)));
            k++;
        }
        p = nl != NULL ? nl + 1 : e;
    }
    return k;
}

static void response(const char *p, size_t n)
{
    struct pt_h1_header hs[MAX_FIELDS];
    size_t k = fields(p, n, hs);
    struct pt_cache_response_info ri;
    pt_cache_response_info(hs, k, &ri);
    enum pt_cache_verdict v = pt_cache_storable(&ri, (n & 1) != 0);
    CHECK((unsigned)v < PT_CACHE_VERDICT_COUNT);
    CHECK(pt_cache_verdict_name(v)[0] != '?');
    uint64_t f = pt_cache_freshness_ms(&ri, 1700000000, 60000);
    if (ri.cc.flags & PT_CC_S_MAXAGE)
        CHECK(f == (uint64_t)ri.cc.s_maxage * 1000);
    else if (ri.cc.flags & PT_CC_MAX_AGE)
        CHECK(f == (uint64_t)ri.cc.max_age * 1000);
    else if (!ri.has_expires)
        CHECK(f == 60000);
    (void)pt_cache_initial_age_s(&ri, 1700000000);

    /* the same fields as a request: Vary signature and key must be deterministic */
    struct pt_buf a, b;
    pt_buf_init(&a);
    pt_buf_init(&b);
    CHECK(pt_cache_vary_signature(hs, k, hs, k, &a) == 0);
    CHECK(pt_cache_vary_signature(hs, k, hs, k, &b) == 0);
    CHECK(pt_str_eq(pt_buf_str(&a), pt_buf_str(&b)));
    pt_buf_free(&a);
    pt_buf_free(&b);
    static const char *const vary[] = {"accept", "x-a"};
    struct pt_cache_key_part parts[] = {
        {PT_CACHE_KEY_HEADER, "x-b"}, {PT_CACHE_KEY_COOKIE, "s"}, {PT_CACHE_KEY_CONSUMER, NULL}};
    struct pt_cache_key_input in = {
        .route = PT_STR_LIT("r"),
        .method = PT_STR_LIT("GET"),
        .host = k > 0 ? hs[0].value : PT_STR_LIT("h"),
        .path = PT_STR_LIT("/p"),
        .query = k > 1 ? hs[1].value : PT_STR_NULL,
        .has_query = k > 1,
        .headers = hs,
        .nheaders = k,
        .vary = vary,
        .nvary = 2,
        .parts = parts,
        .nparts = 3,
    };
    size_t off;
    pt_buf_init(&a);
    CHECK(pt_cache_key_build(&in, &a, &off) == 0);
    CHECK(off <= pt_buf_len(&a));
    (void)pt_cache_hash(pt_buf_head(&a), pt_buf_len(&a));
    pt_buf_free(&a);
    (void)pt_cache_cookie(hs, k, PT_STR_LIT("s"));

    /* the same fields as a conditional request against themselves as a stored response */
    const struct pt_h1_header *et = pt_h1_find_header(hs, k, PT_STR_LIT("etag"));
    bool nm = pt_cache_not_modified(hs, k, et != NULL ? et->value : PT_STR_NULL,
                                    ri.has_last_modified, ri.last_modified_s);
    CHECK(!nm || pt_cache_has_conditionals(hs, k));

    /* the same fields as a ranged request against themselves as a stored 200 */
    static const uint64_t lens[] = {0, 10, 1u << 20};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct pt_byte_range br = {UINT64_MAX, 0};
        enum pt_range_verdict rv = pt_cache_range(hs, k, hs, k, lens[i], &br);
        CHECK((unsigned)rv < PT_RANGE_VERDICT_COUNT);
        if (rv == PT_RANGE_PARTIAL)
            CHECK(br.first <= br.last && br.last < lens[i]);
        if (rv != PT_RANGE_IGNORE)
            CHECK(pt_h1_find_header(hs, k, PT_STR_LIT("range")) != NULL);
    }
    for (size_t i = 0; i < k; i++)
        if (pt_cache_is_range_field(hs[i].name))
            CHECK(hs[i].name.len == 5 || hs[i].name.len == 8);

    /* the first half stored, the second half a 304 */
    struct pt_h1_header out[MAX_FIELDS];
    size_t half = k / 2;
    size_t m =
        pt_cache_merge_headers(hs, half, hs + half, k - half, PT_STR_LIT("x-request-id"), out);
    CHECK(m <= k);
    for (size_t i = 0; i < m; i++) {
        bool from_input = false;
        for (size_t j = 0; j < k && !from_input; j++)
            from_input = out[i].name.ptr == hs[j].name.ptr && out[i].value.ptr == hs[j].value.ptr;
        CHECK(from_input);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    /* an exact-size copy, so ASan sees any read past the end */
    char *p = malloc(size > 0 ? size : 1);
    if (p == NULL)
        return 0;
    memcpy(p, data, size);
    cache_control(p, size);
    date(p, size);
    etags(p, size);
    ranges(p, size);
    response(p, size);
    free(p);
    return 0;
}
