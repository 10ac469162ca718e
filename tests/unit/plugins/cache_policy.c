/* Cache-Control parsing, HTTP dates, storability, freshness and keys (src/plugins/cache_policy.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/cache_policy.h"
#include "test.h"

static struct pt_cache_control cc_of(const char *s)
{
    struct pt_cache_control cc;
    memset(&cc, 0, sizeof(cc));
    pt_cache_control_parse(pt_str_cstr(s), &cc);
    return cc;
}

static void test_cache_control(void)
{
    struct pt_cache_control cc = cc_of("max-age=60");
    ok(cc.flags == PT_CC_MAX_AGE && cc.max_age == 60, "max-age");
    cc = cc_of("public, max-age=60, s-maxage=120");
    ok((cc.flags & PT_CC_PUBLIC) && cc.max_age == 60 && cc.s_maxage == 120, "list");
    cc = cc_of("NO-STORE");
    ok(cc.flags & PT_CC_NO_STORE, "names are case-insensitive");
    cc = cc_of("no-cache=\"Set-Cookie, X-Foo\", max-age=5");
    ok((cc.flags & PT_CC_NO_CACHE) && cc.max_age == 5, "quoted argument with a comma inside");
    cc = cc_of("private=\"a\"");
    ok(cc.flags & PT_CC_PRIVATE, "private with fields");
    cc = cc_of("max-age=\"30\"");
    ok(cc.max_age == 30 && !(cc.flags & PT_CC_INVALID), "quoted delta-seconds");
    cc = cc_of("max-age=abc");
    ok((cc.flags & PT_CC_INVALID) && (cc.flags & PT_CC_MAX_AGE) && cc.max_age == 0,
       "invalid max-age reads as 0 (stale)");
    cc = cc_of("max-age");
    ok((cc.flags & PT_CC_INVALID) && cc.max_age == 0, "max-age without a value");
    cc = cc_of("max-age=99999999999999999999");
    ok(cc.max_age == PT_CC_DELTA_MAX, "huge delta clamps to 2^31");
    cc = cc_of("max-age=60, max-age=10");
    ok(cc.max_age == 10, "a repeated directive: the smallest wins");
    cc = cc_of("  ,, max-age = 7 ,");
    ok(cc.max_age == 7, "spaces and empty elements");
    cc = cc_of("stale-while-revalidate=30, stale-if-error=600");
    ok((cc.flags & PT_CC_SWR) && (cc.flags & PT_CC_SIE) && cc.stale_while_revalidate == 30 &&
           cc.stale_if_error == 600,
       "RFC 5861 directives");
    cc = cc_of("stale-if-error=x");
    ok(!(cc.flags & PT_CC_SIE) && (cc.flags & PT_CC_INVALID), "invalid stale-if-error is ignored");
    cc = cc_of("must-revalidate, proxy-revalidate, no-transform, x-ext=\"a,b\", immutable");
    ok((cc.flags & PT_CC_MUST_REVALIDATE) && (cc.flags & PT_CC_PROXY_REVALIDATE) &&
           (cc.flags & PT_CC_NO_TRANSFORM),
       "extensions are skipped");
    cc = cc_of("foo\"bar,baz\", max-age=3");
    ok(cc.max_age == 3, "garbage with quotes then a directive");
    cc = cc_of("\"unterminated, max-age=3");
    ok(!(cc.flags & PT_CC_MAX_AGE), "an unterminated quote swallows the rest");
    cc = cc_of("");
    ok(cc.flags == 0, "empty");
    struct pt_cache_control z;
    memset(&z, 0, sizeof(z));
    pt_cache_control_parse(PT_STR_NULL, &z);
    ok(z.flags == 0, "null view");
    struct pt_h1_header hs[] = {
        {PT_STR_LIT("Cache-Control"), PT_STR_LIT("public")},
        {PT_STR_LIT("X"), PT_STR_LIT("max-age=1")},
        {PT_STR_LIT("cache-control"), PT_STR_LIT("max-age=9")},
    };
    memset(&z, 0, sizeof(z));
    pt_cache_control_from_headers(hs, 3, &z);
    ok((z.flags & PT_CC_PUBLIC) && z.max_age == 9, "several field lines merge");
}

static void test_dates(void)
{
    int64_t t = 0;
    ok(pt_http_date_parse(PT_STR_LIT("Sun, 06 Nov 1994 08:49:37 GMT"), &t) == 0 && t == 784111777,
       "IMF-fixdate");
    t = 0;
    ok(pt_http_date_parse(PT_STR_LIT("Sunday, 06-Nov-94 08:49:37 GMT"), &t) == 0 && t == 784111777,
       "RFC 850");
    t = 0;
    ok(pt_http_date_parse(PT_STR_LIT("Sun Nov  6 08:49:37 1994"), &t) == 0 && t == 784111777,
       "asctime");
    ok(pt_http_date_parse(PT_STR_LIT("Thu, 01 Jan 1970 00:00:00 GMT"), &t) == 0 && t == 0, "epoch");
    ok(pt_http_date_parse(PT_STR_LIT("Tue, 29 Feb 2000 12:00:00 GMT"), &t) == 0 && t == 951825600,
       "leap day");
    ok(pt_http_date_parse(PT_STR_LIT("Wed, 29 Feb 2001 12:00:00 GMT"), &t) != 0, "no such day");
    ok(pt_http_date_parse(PT_STR_LIT("0"), &t) != 0, "\"0\" is not a date");
    ok(pt_http_date_parse(PT_STR_LIT("-1"), &t) != 0, "\"-1\" is not a date");
    ok(pt_http_date_parse(PT_STR_LIT("Sun, 06 Nov 1994 08:49:37 UTC"), &t) != 0, "GMT only");
    ok(pt_http_date_parse(PT_STR_LIT("Sun, 06 Nov 1994 25:49:37 GMT"), &t) != 0, "hour range");
    ok(pt_http_date_parse(PT_STR_LIT("Sun, 06 Nov 1994 08:49:37 GMT trailing"), &t) != 0,
       "trailing bytes");
    char buf[30];
    size_t n = pt_http_date_format(784111777, buf);
    ok(n == 29 && strcmp(buf, "Sun, 06 Nov 1994 08:49:37 GMT") == 0, "format");
    int64_t back = 0;
    ok(pt_http_date_parse(pt_str_make(buf, n), &back) == 0 && back == 784111777, "round trip");
}

static struct pt_cache_response_info info(const struct pt_h1_header *hs, size_t n)
{
    struct pt_cache_response_info ri;
    pt_cache_response_info(hs, n, &ri);
    return ri;
}

#define H(n, v)                                                                                    \
    {                                                                                              \
        PT_STR_LIT(n), PT_STR_LIT(v)                                                               \
    }

static void test_storable(void)
{
    struct pt_h1_header a[] = {H("Cache-Control", "max-age=10")};
    struct pt_cache_response_info ri = info(a, 1);
    is_int(pt_cache_storable(&ri, false), PT_CACHE_STORABLE, "plain max-age");
    is_int(pt_cache_storable(&ri, true), PT_CACHE_AUTHORIZATION, "Authorization without public");
    struct pt_h1_header b[] = {H("Cache-Control", "public, max-age=10")};
    ri = info(b, 1);
    is_int(pt_cache_storable(&ri, true), PT_CACHE_STORABLE, "Authorization with public");
    struct pt_h1_header c[] = {H("Cache-Control", "s-maxage=10")};
    ri = info(c, 1);
    is_int(pt_cache_storable(&ri, true), PT_CACHE_STORABLE, "Authorization with s-maxage");
    struct pt_h1_header d[] = {H("Cache-Control", "no-store, public")};
    ri = info(d, 1);
    is_int(pt_cache_storable(&ri, false), PT_CACHE_NO_STORE, "no-store wins");
    struct pt_h1_header e[] = {H("Cache-Control", "private")};
    ri = info(e, 1);
    is_int(pt_cache_storable(&ri, false), PT_CACHE_PRIVATE, "private");
    struct pt_h1_header f[] = {H("Cache-Control", "no-cache")};
    ri = info(f, 1);
    is_int(pt_cache_storable(&ri, false), PT_CACHE_NO_CACHE, "no-cache");
    struct pt_h1_header g[] = {H("Set-Cookie", "a=b")};
    ri = info(g, 1);
    is_int(pt_cache_storable(&ri, false), PT_CACHE_SET_COOKIE, "Set-Cookie");
    struct pt_h1_header h[] = {H("Vary", "Accept, *")};
    ri = info(h, 1);
    is_int(pt_cache_storable(&ri, false), PT_CACHE_VARY_STAR, "Vary: *");
    struct pt_h1_header i[] = {H("Vary", "Accept-Encoding")};
    ri = info(i, 1);
    is_int(pt_cache_storable(&ri, false), PT_CACHE_STORABLE, "Vary naming a header");
    is_str(pt_cache_verdict_name(PT_CACHE_NO_STORE), "no-store", "verdict names");
}

static void test_freshness(void)
{
    const int64_t now = 1000000;
    struct pt_h1_header a[] = {H("Cache-Control", "max-age=10, s-maxage=20")};
    struct pt_cache_response_info ri = info(a, 1);
    is_int(pt_cache_freshness_ms(&ri, now, 5000), 20000, "s-maxage over max-age");
    struct pt_h1_header b[] = {H("Cache-Control", "max-age=10"),
                               H("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")};
    ri = info(b, 2);
    is_int(pt_cache_freshness_ms(&ri, now, 5000), 10000, "max-age over Expires");
    struct pt_h1_header c[] = {H("Date", "Mon, 12 Jan 1970 13:46:40 GMT"),
                               H("Expires", "Mon, 12 Jan 1970 13:47:40 GMT")};
    ri = info(c, 2);
    is_int(pt_cache_freshness_ms(&ri, now, 5000), 60000, "Expires - Date");
    struct pt_h1_header d[] = {H("Expires", "0")};
    ri = info(d, 1);
    is_int(pt_cache_freshness_ms(&ri, now, 5000), 0, "invalid Expires: already stale");
    struct pt_h1_header e[] = {H("X", "y")};
    ri = info(e, 1);
    is_int(pt_cache_freshness_ms(&ri, now, 5000), 5000, "nothing said: the configured ttl");
    struct pt_h1_header f[] = {H("Cache-Control", "max-age=oops")};
    ri = info(f, 1);
    is_int(pt_cache_freshness_ms(&ri, now, 5000), 0, "invalid max-age: stale");
    struct pt_h1_header g[] = {H("Expires", "Mon, 12 Jan 1970 13:47:40 GMT")};
    ri = info(g, 1);
    is_int(pt_cache_freshness_ms(&ri, now, 5000), 60000, "Expires without Date: against now");

    struct pt_h1_header h[] = {H("Age", "30"), H("Date", "Mon, 12 Jan 1970 13:46:30 GMT")};
    ri = info(h, 2);
    is_int(pt_cache_initial_age_s(&ri, now), 30, "Age over apparent age (10 s)");
    struct pt_h1_header i[] = {H("Age", "3"), H("Date", "Mon, 12 Jan 1970 13:46:00 GMT")};
    ri = info(i, 2);
    is_int(pt_cache_initial_age_s(&ri, now), 40, "apparent age over Age");
    struct pt_h1_header j[] = {H("Date", "Mon, 12 Jan 1970 13:50:00 GMT")};
    ri = info(j, 1);
    is_int(pt_cache_initial_age_s(&ri, now), 0, "a Date in the future: age 0");
    struct pt_h1_header k[] = {H("Age", "x")};
    ri = info(k, 1);
    ok(!ri.has_age, "a bad Age is ignored");
}

static struct pt_str key_of(struct pt_buf *b, const struct pt_cache_key_input *in)
{
    size_t off;
    pt_buf_free(b);
    pt_buf_init(b);
    if (pt_cache_key_build(in, b, &off) != 0)
        return PT_STR_NULL;
    return pt_buf_str(b);
}

static void test_keys(void)
{
    struct pt_h1_header hs[] = {
        H("Accept-Language", "fr"),
        H("X-Tenant", "a"),
        H("Cookie", "x=1; team=red"),
        H("Accept-Language", "de"),
    };
    static const char *const vary[] = {"accept-language"};
    struct pt_cache_key_part parts[] = {
        {PT_CACHE_KEY_CONSUMER, NULL},
        {PT_CACHE_KEY_HEADER, "X-Tenant"},
        {PT_CACHE_KEY_COOKIE, "team"},
    };
    struct pt_cache_key_input in = {
        .route = PT_STR_LIT("r"),
        .method = PT_STR_LIT("GET"),
        .host = PT_STR_LIT("Api.Example.COM"),
        .path = PT_STR_LIT("/a/b"),
        .query = PT_STR_LIT("x=1"),
        .has_query = true,
        .consumer = PT_STR_LIT("alice"),
        .headers = hs,
        .nheaders = 4,
        .vary = vary,
        .nvary = 1,
        .parts = parts,
        .nparts = 3,
    };
    struct pt_buf b1, b2;
    pt_buf_init(&b1);
    pt_buf_init(&b2);
    struct pt_str k1 = key_of(&b1, &in);
    static const char want[] = "r\0GET\0api.example.com\0/a/b?x=1\0vaccept-language=fr, de\x01\0"
                               "c=alice\0hx-tenant=a\x01\0kteam=red";
    ok(k1.len == sizeof(want) && memcmp(k1.ptr, want, sizeof(want)) == 0,
       "key layout (host lower-cased, vary values joined)");
    size_t off;
    pt_buf_free(&b2);
    pt_buf_init(&b2);
    pt_cache_key_build(&in, &b2, &off);
    ok(memcmp(pt_buf_head(&b2) + off, "/a/b?x=1", 8) == 0, "path offset");

    in.has_query = false;
    in.query = PT_STR_NULL;
    struct pt_str k2 = key_of(&b2, &in);
    ok(!pt_str_eq(k1, k2), "no query differs");
    in.has_query = true;
    in.query = PT_STR_LIT("");
    struct pt_str k3 = key_of(&b2, &in);
    ok(!pt_str_eq(k1, k3), "an empty query differs from x=1");
    in.query = PT_STR_LIT("x=1");
    in.consumer = PT_STR_LIT("bob");
    ok(!pt_str_eq(k1, key_of(&b2, &in)), "consumer");
    in.consumer = PT_STR_LIT("alice");
    in.route = PT_STR_LIT("r2");
    ok(!pt_str_eq(k1, key_of(&b2, &in)), "route");
    in.route = PT_STR_LIT("r");
    in.host = PT_STR_LIT("api.example.com");
    ok(pt_str_eq(k1, key_of(&b2, &in)), "host case does not matter");
    hs[1].value = PT_STR_LIT("b");
    ok(!pt_str_eq(k1, key_of(&b2, &in)), "header part");
    hs[1].value = PT_STR_LIT("a");
    hs[2].value = PT_STR_LIT("team=red;x=2");
    ok(pt_str_eq(k1, key_of(&b2, &in)), "other cookies do not matter");
    hs[2].value = PT_STR_LIT("team=blue");
    ok(!pt_str_eq(k1, key_of(&b2, &in)), "cookie part");
    hs[2].value = PT_STR_LIT("x=1; team=red");
    hs[0].value = PT_STR_LIT("en");
    ok(!pt_str_eq(k1, key_of(&b2, &in)), "vary header");
    hs[0].value = PT_STR_LIT("fr");
    in.nheaders = 3; /* the second Accept-Language line gone */
    ok(!pt_str_eq(k1, key_of(&b2, &in)), "every line of a vary header counts");

    /* absent vs empty header */
    struct pt_h1_header e1[] = {H("X-Tenant", "")};
    struct pt_cache_key_part p1[] = {{PT_CACHE_KEY_HEADER, "X-Tenant"}};
    struct pt_cache_key_input a = {.route = PT_STR_LIT("r"),
                                   .method = PT_STR_LIT("GET"),
                                   .host = PT_STR_LIT("h"),
                                   .path = PT_STR_LIT("/"),
                                   .headers = e1,
                                   .nheaders = 1,
                                   .parts = p1,
                                   .nparts = 1};
    struct pt_str ka = key_of(&b1, &a);
    a.nheaders = 0;
    ok(!pt_str_eq(ka, key_of(&b2, &a)), "an empty header differs from none");

    is_int(pt_cache_cookie(hs, 3, PT_STR_LIT("team")).len, 3, "cookie lookup");
    ok(pt_cache_cookie(hs, 3, PT_STR_LIT("tea")).ptr == NULL, "cookie names match whole");
    struct pt_h1_header odd[] = {H("Cookie", "novalue; ; =x; team = red ")};
    struct pt_str cv = pt_cache_cookie(odd, 1, PT_STR_LIT("team "));
    ok(cv.len == 3 && memcmp(cv.ptr, "red", 3) == 0, "odd cookie syntax");

    ok(pt_cache_hash("abc", 3) != pt_cache_hash("abd", 3), "hash");
    pt_buf_free(&b1);
    pt_buf_free(&b2);
}

static void test_vary_signature(void)
{
    struct pt_h1_header resp[] = {H("Vary", "Accept-Encoding, X-A"), H("vary", " ,x-b")};
    struct pt_h1_header r1[] = {H("accept-encoding", "gzip"), H("X-B", "1")};
    struct pt_h1_header r2[] = {H("Accept-Encoding", "gzip"), H("x-b", "1")};
    struct pt_h1_header r3[] = {H("Accept-Encoding", "br"), H("x-b", "1")};
    struct pt_buf a, b, c;
    pt_buf_init(&a);
    pt_buf_init(&b);
    pt_buf_init(&c);
    ok(pt_cache_vary_signature(resp, 2, r1, 2, &a) == 0, "signature");
    pt_cache_vary_signature(resp, 2, r2, 2, &b);
    pt_cache_vary_signature(resp, 2, r3, 2, &c);
    ok(pt_str_eq(pt_buf_str(&a), pt_buf_str(&b)), "same values, other spelling of names");
    ok(!pt_str_eq(pt_buf_str(&a), pt_buf_str(&c)), "another value");
    pt_buf_free(&a);
    pt_buf_free(&b);
    pt_buf_free(&c);
}

static void test_etags(void)
{
    struct pt_str t;
    bool w = true;
    ok(pt_etag_parse(PT_STR_LIT("\"abc\""), &t, &w) == 0 && pt_str_eq_lit(t, "\"abc\"") && !w,
       "strong");
    ok(pt_etag_parse(PT_STR_LIT(" W/\"abc\"\t"), &t, &w) == 0 && pt_str_eq_lit(t, "\"abc\"") && w,
       "weak, with spaces around");
    ok(pt_etag_parse(PT_STR_LIT("\"\""), &t, &w) == 0 && t.len == 2, "empty opaque-tag");
    ok(pt_etag_parse(PT_STR_LIT("\"\xc3\xa9\""), &t, &w) == 0, "obs-text");
    ok(pt_etag_parse(PT_STR_LIT("abc"), &t, &w) != 0, "unquoted");
    ok(pt_etag_parse(PT_STR_LIT("\"abc"), &t, &w) != 0, "unterminated");
    ok(pt_etag_parse(PT_STR_LIT("\""), &t, &w) != 0, "a lone quote");
    ok(pt_etag_parse(PT_STR_LIT("w/\"abc\""), &t, &w) != 0, "W/ is case-sensitive");
    ok(pt_etag_parse(PT_STR_LIT("\"a b\""), &t, &w) != 0, "no space inside");
    ok(pt_etag_parse(PT_STR_LIT("\"a\"b\""), &t, &w) != 0, "no quote inside");
    ok(pt_etag_parse(PT_STR_LIT("\"a\x7f\""), &t, &w) != 0, "no DEL");
    ok(pt_etag_parse(PT_STR_NULL, &t, &w) != 0, "null view");

    struct pt_str v1 = PT_STR_LIT("\"v1\""), wv1 = PT_STR_LIT("W/\"v1\"");
    ok(pt_etag_list_match(PT_STR_LIT("\"v1\""), v1, false), "same tag");
    ok(pt_etag_list_match(PT_STR_LIT("W/\"v1\""), v1, false), "weak comparison (request weak)");
    ok(pt_etag_list_match(PT_STR_LIT("\"v1\""), wv1, false), "weak comparison (stored weak)");
    ok(pt_etag_list_match(PT_STR_LIT("\"a\", \"b\",W/\"v1\""), v1, false), "in a list");
    ok(pt_etag_list_match(PT_STR_LIT(" ,\"a\" ,, \"v1\" ,"), v1, false), "empty members");
    ok(!pt_etag_list_match(PT_STR_LIT("\"v2\""), v1, false), "another tag");
    ok(!pt_etag_list_match(PT_STR_LIT("\"V1\""), v1, false), "case-sensitive");
    ok(!pt_etag_list_match(PT_STR_LIT("v1"), v1, false), "unquoted member");
    ok(!pt_etag_list_match(PT_STR_LIT("\"a\", junk, \"v1\""), v1, false), "garbage ends the list");
    ok(pt_etag_list_match(PT_STR_LIT("\"v1\", junk"), v1, false), "what came before counts");
    ok(!pt_etag_list_match(PT_STR_LIT("\"a\" \"v1\""), v1, false), "members need commas");
    ok(!pt_etag_list_match(PT_STR_LIT("\"v1"), v1, false), "unterminated member");
    ok(pt_etag_list_match(PT_STR_LIT(" * "), v1, false), "* matches a tag");
    ok(!pt_etag_list_match(PT_STR_LIT("*"), PT_STR_NULL, false), "* without a representation");
    ok(pt_etag_list_match(PT_STR_LIT("*"), PT_STR_NULL, true), "* with one");
    ok(!pt_etag_list_match(PT_STR_LIT("\"a\", *"), v1, true), "* inside a list is garbage");
    ok(!pt_etag_list_match(PT_STR_LIT("\"v1\""), PT_STR_LIT("v1"), true), "invalid stored tag");
    ok(!pt_etag_list_match(PT_STR_LIT(""), v1, true), "empty list");
    ok(!pt_etag_list_match(PT_STR_NULL, v1, true), "null list");
}

static void test_not_modified(void)
{
    const int64_t lm = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    struct pt_str et = PT_STR_LIT("\"v1\"");
    struct pt_h1_header a[] = {H("Accept", "*/*"), H("if-none-match", "\"v1\"")};
    ok(pt_cache_not_modified(a, 2, et, true, lm), "If-None-Match matches");
    ok(!pt_cache_not_modified(a, 2, PT_STR_NULL, true, lm), "no stored ETag");
    struct pt_h1_header b[] = {H("If-None-Match", "\"x\""), H("If-None-Match", "\"v1\"")};
    ok(pt_cache_not_modified(b, 2, et, false, 0), "several field lines");
    struct pt_h1_header c[] = {H("If-None-Match", "\"x\""),
                               H("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")};
    ok(!pt_cache_not_modified(c, 2, et, true, lm), "If-None-Match wins over If-Modified-Since");
    struct pt_h1_header d[] = {H("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")};
    ok(pt_cache_not_modified(d, 1, et, true, lm), "same date: not modified");
    ok(!pt_cache_not_modified(d, 1, et, true, lm + 1), "modified after the date");
    ok(pt_cache_not_modified(d, 1, et, true, lm - 100), "modified before the date");
    ok(!pt_cache_not_modified(d, 1, et, false, 0), "no Last-Modified: never");
    struct pt_h1_header e[] = {H("If-Modified-Since", "Sun, 06 Nov 1994")};
    ok(!pt_cache_not_modified(e, 1, et, true, lm), "an invalid date is ignored");
    struct pt_h1_header f[] = {H("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"),
                               H("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")};
    ok(!pt_cache_not_modified(f, 2, et, true, lm), "a repeated If-Modified-Since is ignored");
    struct pt_h1_header g[] = {H("X", "y")};
    ok(!pt_cache_not_modified(g, 1, et, true, lm), "no conditionals");
    ok(!pt_cache_has_conditionals(g, 1) && pt_cache_has_conditionals(d, 1) &&
           pt_cache_has_conditionals(a, 2),
       "has_conditionals");
    ok(pt_cache_is_conditional_field(PT_STR_LIT("IF-NONE-MATCH")) &&
           !pt_cache_is_conditional_field(PT_STR_LIT("If-Match")),
       "conditional field names");
}

static void test_merge(void)
{
    struct pt_h1_header st[] = {H("Content-Type", "text/plain"), H("Cache-Control", "max-age=1"),
                                H("ETag", "\"v1\""), H("X-A", "1"), H("x-a", "2")};
    struct pt_h1_header upd[] = {H("cache-control", "max-age=60"),
                                 H("Content-Length", "0"),
                                 H("Connection", "keep-alive"),
                                 H("Age", "4"),
                                 H("X-Request-Id", "r"),
                                 H("X-A", "3"),
                                 H("Date", "d")};
    struct pt_h1_header out[12];
    size_t n = pt_cache_merge_headers(st, 5, upd, 7, PT_STR_LIT("x-request-id"), out);
    is_int(n, 5, "merged count");
    ok(pt_str_eq_lit(out[0].name, "Content-Type") && pt_str_eq_lit(out[1].name, "ETag"),
       "stored fields the 304 does not carry stay");
    ok(pt_str_eq_lit(out[2].value, "max-age=60") && pt_str_eq_lit(out[3].value, "3") &&
           pt_str_eq_lit(out[4].name, "Date"),
       "the 304's replace (every line of a name) and add");
    struct pt_h1_header nc[] = {H("Cache-Control", "no-cache"), H("ETag", "\"v1\"")};
    struct pt_cache_response_info ri = info(nc, 2);
    ok(ri.has_etag && !ri.has_last_modified, "ETag seen");
    is_int(pt_cache_storable(&ri, false), PT_CACHE_STORABLE, "no-cache with a validator");
    struct pt_h1_header nl[] = {H("Cache-Control", "no-cache"),
                                H("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")};
    ri = info(nl, 2);
    ok(ri.has_last_modified && ri.last_modified_s == 784111777, "Last-Modified seen");
    is_int(pt_cache_storable(&ri, false), PT_CACHE_STORABLE, "no-cache with Last-Modified");
    struct pt_h1_header nf[] = {H("Cache-Control", "no-cache=\"X-A\""), H("ETag", "\"v1\"")};
    ri = info(nf, 2);
    ok(ri.cc.flags & PT_CC_NO_CACHE_FIELDS, "no-cache with field names");
    is_int(pt_cache_storable(&ri, false), PT_CACHE_NO_CACHE, "... is not stored");
    struct pt_h1_header bad[] = {H("Cache-Control", "no-cache"), H("ETag", "v1"),
                                 H("Last-Modified", "soon")};
    ri = info(bad, 3);
    is_int(pt_cache_storable(&ri, false), PT_CACHE_NO_CACHE, "invalid validators are none");
}

/* pt_range_parse of s against a body of len bytes; "206 a-b", "416" or "200" (ignored). */
static const char *range_of(const char *s, uint64_t len)
{
    static char out[64];
    struct pt_byte_range r = {7, 7};
    enum pt_range_verdict v = pt_range_parse(pt_str_cstr(s), len, &r);
    if (v == PT_RANGE_PARTIAL)
        snprintf(out, sizeof(out), "206 %llu-%llu", (unsigned long long)r.first,
                 (unsigned long long)r.last);
    else
        snprintf(out, sizeof(out), "%s", v == PT_RANGE_UNSATISFIABLE ? "416" : "200");
    return out;
}

static void test_ranges(void)
{
    is_str(range_of("bytes=0-9", 100), "206 0-9", "first-last");
    is_str(range_of("bytes=10-", 100), "206 10-99", "first-");
    is_str(range_of("bytes=-5", 100), "206 95-99", "suffix");
    is_str(range_of("bytes=-100", 100), "206 0-99", "suffix of the whole length");
    is_str(range_of("bytes=-1000", 100), "206 0-99", "suffix longer than the body");
    is_str(range_of("bytes=90-200", 100), "206 90-99", "last clamped");
    is_str(range_of("bytes=99-99", 100), "206 99-99", "the last byte");
    is_str(range_of("bytes=0-0", 1), "206 0-0", "one byte of one");
    is_str(range_of("Bytes=1-2", 100), "206 1-2", "unit is case-insensitive");
    is_str(range_of("  bytes=1-2  ", 100), "206 1-2", "surrounding whitespace");
    is_str(range_of("bytes=, ,1-2", 100), "206 1-2", "empty elements first");
    is_str(range_of("bytes=1-2 , ", 100), "206 1-2", "empty elements last");
    is_str(range_of("bytes=0007-0008", 100), "206 7-8", "leading zeros");
    is_str(range_of("bytes=5-99999999999999999999999999", 100), "206 5-99", "huge last saturates");
    is_str(range_of("bytes=-99999999999999999999999999", 100), "206 0-99", "huge suffix");
    is_str(range_of("bytes=100-", 100), "416", "first at the end");
    is_str(range_of("bytes=100-100", 100), "416", "first-last at the end");
    is_str(range_of("bytes=99999999999999999999999999-", 100), "416", "huge first");
    is_str(range_of("bytes=-0", 100), "416", "suffix of zero");
    is_str(range_of("bytes=0-", 0), "416", "any first on an empty body");
    is_str(range_of("bytes=-5", 0), "200", "a suffix on an empty body: ignored");
    is_str(range_of("bytes=0-1,3-4", 100), "200", "several ranges");
    is_str(range_of("bytes=0-1, 200-300", 100), "200", "several, one unsatisfiable");
    is_str(range_of("bytes=0-1,x", 100), "200", "several, one malformed");
    is_str(range_of("items=0-1", 100), "200", "another unit");
    is_str(range_of("byte=0-1", 100), "200", "a near-miss unit");
    is_str(range_of("bytes =0-1", 100), "200", "space before =");
    is_str(range_of("bytes 0-1", 100), "200", "no =");
    is_str(range_of("bytes=5-2", 100), "200", "last before first: invalid");
    is_str(range_of("bytes=", 100), "200", "empty set");
    is_str(range_of("bytes=,", 100), "200", "only empty elements");
    is_str(range_of("bytes=-", 100), "200", "dash alone");
    is_str(range_of("bytes=a-b", 100), "200", "letters");
    is_str(range_of("bytes=1 -2", 100), "200", "space inside");
    is_str(range_of("bytes=1-2-3", 100), "200", "two dashes");
    is_str(range_of("bytes=1-2x", 100), "200", "trailing garbage");
    is_str(range_of("bytes=+1-2", 100), "200", "a sign");
    is_str(range_of("", 100), "200", "empty value");
    struct pt_byte_range r;
    is_int(pt_range_parse(PT_STR_NULL, 100, &r), PT_RANGE_IGNORE, "null view");

    /* every prefix of a valid value, in an exact-size copy (ASan catches over-reads) */
    static const char full[] = "bytes=123-4567, ";
    for (size_t n = 0; n <= sizeof(full) - 1; n++) {
        char *p = malloc(n > 0 ? n : 1);
        memcpy(p, full, n);
        enum pt_range_verdict v = pt_range_parse(pt_str_make(p, n), 10000, &r);
        /* "bytes=123-", then from "bytes=123-456" (123-4 and 123-45 end before they start) */
        bool want_partial = n == 10 || n >= 13;
        ok(want_partial ? v == PT_RANGE_PARTIAL : v == PT_RANGE_IGNORE, "prefix of %zu bytes", n);
        free(p);
    }
}

static void test_if_range(void)
{
    const int64_t lm = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    struct pt_str et = PT_STR_LIT("\"v1\"");
    ok(pt_if_range_match(PT_STR_LIT("\"v1\""), et, false, 0, false, 0), "same strong tag");
    ok(pt_if_range_match(PT_STR_LIT(" \"v1\" "), et, false, 0, false, 0), "with whitespace");
    ok(!pt_if_range_match(PT_STR_LIT("\"v2\""), et, false, 0, false, 0), "another tag");
    ok(!pt_if_range_match(PT_STR_LIT("W/\"v1\""), et, false, 0, false, 0), "a weak tag");
    ok(!pt_if_range_match(PT_STR_LIT("\"v1\""), PT_STR_LIT("W/\"v1\""), false, 0, false, 0),
       "a weak stored tag");
    ok(!pt_if_range_match(PT_STR_LIT("W/\"v1\""), PT_STR_LIT("W/\"v1\""), false, 0, false, 0),
       "weak on both sides");
    ok(!pt_if_range_match(PT_STR_LIT("\"v1\", \"v2\""), et, false, 0, false, 0), "not a list");
    ok(!pt_if_range_match(PT_STR_LIT("\"v1"), et, false, 0, false, 0), "unterminated");
    ok(!pt_if_range_match(PT_STR_LIT("\"v1\""), PT_STR_NULL, false, 0, false, 0), "no ETag");
    ok(!pt_if_range_match(PT_STR_LIT(""), et, true, lm, true, lm + 5), "empty");
    ok(!pt_if_range_match(PT_STR_NULL, et, true, lm, true, lm + 5), "null view");
    struct pt_str d = PT_STR_LIT("Sun, 06 Nov 1994 08:49:37 GMT");
    ok(pt_if_range_match(d, et, true, lm, true, lm + 1), "date = Last-Modified, Date a second on");
    ok(pt_if_range_match(PT_STR_LIT("Sunday, 06-Nov-94 08:49:37 GMT"), et, true, lm, true, lm + 60),
       "another date form, same second");
    ok(!pt_if_range_match(d, et, true, lm, true, lm), "Date = Last-Modified: weak");
    ok(!pt_if_range_match(d, et, true, lm, false, 0), "no Date: weak");
    ok(!pt_if_range_match(d, et, true, lm - 1, true, lm + 5), "Last-Modified differs");
    ok(!pt_if_range_match(d, et, false, 0, true, lm + 5), "no Last-Modified");
    ok(!pt_if_range_match(PT_STR_LIT("Sun, 06 Nov 1994"), et, true, lm, true, lm + 5),
       "not a date");
    ok(!pt_if_range_match(d, et, true, INT64_MAX, true, INT64_MAX), "no overflow");

    struct pt_h1_header st[] = {H("ETag", "\"v1\""),
                                H("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
                                H("Date", "Sun, 06 Nov 1994 09:00:00 GMT")};
    struct pt_byte_range r = {0, 0};
    struct pt_h1_header q1[] = {H("Accept", "*/*"), H("range", "bytes=2-3")};
    is_int(pt_cache_range(q1, 2, st, 3, 10, &r), PT_RANGE_PARTIAL, "Range alone");
    ok(r.first == 2 && r.last == 3, "... its bytes");
    struct pt_h1_header q2[] = {H("Accept", "*/*")};
    is_int(pt_cache_range(q2, 1, st, 3, 10, &r), PT_RANGE_IGNORE, "no Range");
    struct pt_h1_header q3[] = {H("Range", "bytes=2-3"), H("If-Range", "\"v1\"")};
    is_int(pt_cache_range(q3, 2, st, 3, 10, &r), PT_RANGE_PARTIAL, "If-Range tag holds");
    struct pt_h1_header q4[] = {H("Range", "bytes=20-"), H("If-Range", "\"v2\"")};
    is_int(pt_cache_range(q4, 2, st, 3, 10, &r), PT_RANGE_IGNORE,
           "If-Range fails before the range is unsatisfiable");
    struct pt_h1_header q5[] = {H("Range", "bytes=20-"), H("If-Range", "\"v1\"")};
    is_int(pt_cache_range(q5, 2, st, 3, 10, &r), PT_RANGE_UNSATISFIABLE, "If-Range holds: 416");
    struct pt_h1_header q6[] = {H("Range", "bytes=0-1"),
                                H("If-Range", "Sun, 06 Nov 1994 08:49:37 GMT")};
    is_int(pt_cache_range(q6, 2, st, 3, 10, &r), PT_RANGE_PARTIAL, "If-Range date holds");
    struct pt_h1_header q7[] = {H("Range", "bytes=0-1"), H("Range", "bytes=2-3")};
    is_int(pt_cache_range(q7, 2, st, 3, 10, &r), PT_RANGE_IGNORE, "two Range lines");
    struct pt_h1_header q8[] = {H("Range", "bytes=0-1"), H("If-Range", "\"v1\""),
                                H("If-Range", "\"v1\"")};
    is_int(pt_cache_range(q8, 3, st, 3, 10, &r), PT_RANGE_IGNORE, "two If-Range lines");
    ok(pt_cache_is_range_field(PT_STR_LIT("RANGE")) &&
           pt_cache_is_range_field(PT_STR_LIT("if-range")) &&
           !pt_cache_is_range_field(PT_STR_LIT("If-Match")) &&
           !pt_cache_is_range_field(PT_STR_LIT("Ranges")),
       "range field names");
}

int main(void)
{
    test_cache_control();
    test_etags();
    test_not_modified();
    test_ranges();
    test_if_range();
    test_merge();
    test_dates();
    test_storable();
    test_freshness();
    test_keys();
    test_vary_signature();
    return done_testing();
}
