#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../../src/http/problem.c"

static const char *esc(const char *s, size_t n)
{
    static char buf[256];
    pt_json_escape(buf, sizeof(buf), pt_str_make(s, n));
    return buf;
}
#define ESC(lit) esc((lit), sizeof(lit) - 1)

/* Does body parse as a JSON object?  NUL escapes are valid JSON. */
static json_t *parse(const char *body, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        note("json error: %s at %d: %.*s", err.text, err.position, (int)len, body);
    return j;
}

static void test_reasons(void)
{
    is_str(pt_http_reason(200), "OK", "200");
    is_str(pt_http_reason(404), "Not Found", "404");
    is_str(pt_http_reason(413), "Content Too Large", "413 (RFC 9110 name)");
    is_str(pt_http_reason(429), "Too Many Requests", "429");
    is_str(pt_http_reason(431), "Request Header Fields Too Large", "431");
    is_str(pt_http_reason(511), "Network Authentication Required", "511");
    is_str(pt_http_reason(103), "Early Hints", "103");
    is_str(pt_http_reason(308), "Permanent Redirect", "308");
    is_str(pt_http_reason(306), "Unknown", "306 unused");
    is_str(pt_http_reason(299), "Unknown", "299");
    is_str(pt_http_reason(599), "Unknown", "599");
    is_str(pt_http_reason(0), "Unknown", "0");
    is_str(pt_http_reason(-1), "Unknown", "-1");
    is_str(pt_http_reason(600), "Unknown", "600");
    is_str(pt_http_reason(1000000), "Unknown", "huge");
    /* every registered code in 100..599 has a name that is not "Unknown" */
    static const int registered[] = {
        100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301,
        302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409,
        410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 425, 426, 428, 429,
        431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511};
    int missing = 0;
    for (size_t i = 0; i < PT_ARRAY_SIZE(registered); i++)
        missing += strcmp(pt_http_reason(registered[i]), "Unknown") == 0;
    is_int(missing, 0, "all IANA-registered statuses named");
}

static void test_types(void)
{
    static const struct {
        int status;
        const char *slug;
    } want[] = {
        {400, "bad-request"},
        {401, "unauthorized"},
        {403, "forbidden"},
        {404, "not-found"},
        {405, "method-not-allowed"},
        {408, "request-timeout"},
        {413, "payload-too-large"},
        {417, "expectation-failed"},
        {429, "rate-limited"},
        {431, "request-header-fields-too-large"},
        {500, "internal-error"},
        {502, "bad-gateway"},
        {503, "service-unavailable"},
        {504, "gateway-timeout"},
        {505, "http-version-not-supported"},
        {499, "client-error"},
        {418, "client-error"},
        {599, "server-error"},
        {200, "error"},
        {0, "error"},
        {-5, "error"},
    };
    for (size_t i = 0; i < PT_ARRAY_SIZE(want); i++)
        is_str(pt_problem_default_type(want[i].status), want[i].slug, "slug for %d",
               want[i].status);
}

static void test_escape(void)
{
    is_str(ESC("plain"), "plain", "plain ASCII");
    is_str(ESC("a\"b\\c"), "a\\\"b\\\\c", "quote and backslash");
    is_str(ESC("\b\f\n\r\t"), "\\b\\f\\n\\r\\t", "short escapes");
    is_str(ESC("\x01\x1f\x7f"), "\\u0001\\u001f\\u007f", "other controls");
    is_str(ESC("a\0b"), "a\\u0000b", "NUL");
    is_str(ESC("/</script>"), "/</script>", "slash left alone");
    is_str(ESC("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"),
           "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", "valid UTF-8 passes through");
    is_str(ESC("\xef\xbf\xbf\xf4\x8f\xbf\xbf"), "\xef\xbf\xbf\xf4\x8f\xbf\xbf",
           "U+FFFF and U+10FFFF pass");
#define FFFD "\xef\xbf\xbd"
    is_str(ESC("a\x80z"), "a" FFFD "z", "stray continuation");
    is_str(ESC("\xc0\xaf"), FFFD FFFD, "overlong 2-byte: two replacements");
    is_str(ESC("\xe0\x80\xaf"), FFFD FFFD FFFD, "overlong 3-byte");
    is_str(ESC("\xed\xa0\x80"), FFFD FFFD FFFD, "surrogate");
    is_str(ESC("\xf4\x90\x80\x80"), FFFD FFFD FFFD FFFD, "above U+10FFFF");
    is_str(ESC("\xf5\xff\xfe"), FFFD FFFD FFFD, "never-valid bytes");
    is_str(ESC("\xe2\x82"), FFFD, "truncated 3-byte at end: one replacement");
    is_str(ESC("\xe2\x82z"), FFFD "z", "truncated 3-byte then ASCII");
    is_str(ESC("\xf0\x9f\x98"), FFFD, "truncated 4-byte");
    is_str(ESC("\xf0\x9f\x98\""), FFFD "\\\"", "truncated 4-byte then quote");

    char small[5];
    size_t n = pt_json_escape(small, sizeof(small), pt_str_cstr("\"\"\"\""));
    is_int(n, 8, "returns the length needed");
    is_int(strlen(small), 4, "truncated output terminated");
    is_int(pt_json_escape(NULL, 0, pt_str_cstr("abc\n")), 5, "size 0: just measure");
    char one[1] = {'x'};
    pt_json_escape(one, 1, pt_str_cstr("abc"));
    is_int(one[0], 0, "size 1: empty string");
}

static void test_body(void)
{
    char buf[512];
    size_t n =
        pt_problem_json(buf, sizeof(buf), 429, NULL, pt_str_cstr("100 requests per 1m for alice"),
                        pt_str_cstr("abc-123"));
    is_str(
        buf,
        "{\"type\":\"urn:portico:error:rate-limited\",\"title\":\"Too Many Requests\","
        "\"status\":429,\"detail\":\"100 requests per 1m for alice\",\"request_id\":\"abc-123\"}",
        "SPEC §7 example shape");
    is_int(n, strlen(buf), "length returned");
    json_t *j = parse(buf, n);
    ok(j != NULL, "parses");
    if (j != NULL) {
        is_str(json_string_value(json_object_get(j, "type")), "urn:portico:error:rate-limited",
               "type");
        is_int(json_integer_value(json_object_get(j, "status")), 429, "status is a number");
        json_decref(j);
    }

    n = pt_problem_json(buf, sizeof(buf), 404, NULL, PT_STR_NULL, PT_STR_NULL);
    is_str(buf, "{\"type\":\"urn:portico:error:not-found\",\"title\":\"Not Found\",\"status\":404}",
           "empty detail and request id are left out");

    n = pt_problem_json(buf, sizeof(buf), 401, "invalid-token", pt_str_cstr("bad \"sig\"\n"),
                        pt_str_cstr("r1"));
    j = parse(buf, n);
    ok(j != NULL, "custom type parses");
    if (j != NULL) {
        is_str(json_string_value(json_object_get(j, "type")), "urn:portico:error:invalid-token",
               "custom type");
        is_str(json_string_value(json_object_get(j, "title")), "Unauthorized", "title");
        is_str(json_string_value(json_object_get(j, "detail")), "bad \"sig\"\n", "detail escaped");
        json_decref(j);
    }
    pt_problem_json(buf, sizeof(buf), 500, "", PT_STR_NULL, PT_STR_NULL);
    ok(strstr(buf, "internal-error") != NULL, "empty type means default");
    pt_problem_json(buf, sizeof(buf), 799, NULL, PT_STR_NULL, PT_STR_NULL);
    is_str(buf, "{\"type\":\"urn:portico:error:error\",\"title\":\"Unknown\",\"status\":799}",
           "unknown status");
    pt_problem_json(buf, sizeof(buf), -2147483647 - 1, NULL, PT_STR_NULL, PT_STR_NULL);
    ok(strstr(buf, "\"status\":-2147483648}") != NULL, "INT_MIN printed");

    /* truncation: snprintf-like, for every buffer size */
    char full[256];
    size_t want = pt_problem_json(full, sizeof(full), 502, NULL, pt_str_cstr("upstream \xff reset"),
                                  pt_str_cstr("id"));
    int bad = 0;
    for (size_t size = 0; size <= want + 1; size++) {
        char *b = malloc(size == 0 ? 1 : size);
        size_t got = pt_problem_json(size == 0 ? NULL : b, size, 502, NULL,
                                     pt_str_cstr("upstream \xff reset"), pt_str_cstr("id"));
        if (got != want || (size > 0 && (strlen(b) != (size - 1 < want ? size - 1 : want) ||
                                         memcmp(b, full, strlen(b)) != 0)))
            bad++;
        free(b);
    }
    is_int(bad, 0, "every buffer size: same length, prefix of the full body, terminated");
}

/* Random bytes as detail: the body is always valid JSON and the detail
 * decodes to the input when the input was valid UTF-8. */
static void test_random(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int invalid = 0, mismatch = 0, valid_utf8 = 0;
    for (int i = 0; i < 20000; i++) {
        uint8_t in[64];
        size_t n = (size_t)(x % sizeof(in));
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* bias towards the interesting bytes */
            static const uint8_t pool[] = {'"',  '\\', 0,    0x1f, 0x7f, 0x80, 0xbf, 0xc2,
                                           0xe0, 0xed, 0xf0, 0xf4, 0xff, 'a',  0xa0, 0x90};
            in[k] = (x >> 8) % 4 == 0 ? (uint8_t)(x >> 16) : pool[(x >> 24) % sizeof(pool)];
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        char body[1024];
        size_t len = pt_problem_json(body, sizeof(body), 400, NULL,
                                     pt_str_make((const char *)in, n), pt_str_make("r", 1));
        json_t *j = len < sizeof(body) ? parse(body, len) : NULL;
        if (j == NULL) {
            invalid++;
            continue;
        }
        /* when the input was valid UTF-8 (jansson agrees), it decodes back unchanged */
        json_t *ref = n > 0 ? json_stringn((const char *)in, n) : NULL;
        if (ref != NULL) {
            valid_utf8++;
            json_t *d = json_object_get(j, "detail");
            if (!json_equal(d, ref))
                mismatch++;
            json_decref(ref);
        }
        json_decref(j);
    }
    is_int(invalid, 0, "20000 random details: always valid JSON");
    is_int(mismatch, 0, "valid UTF-8 details decode unchanged (%d of them)", valid_utf8);
}

/* Every 2-byte input, and 3- and 4-byte inputs around the UTF-8 boundaries:
 * the escaped text is valid JSON, and equals the input exactly when jansson
 * says the input is valid UTF-8. */
static void test_exhaustive(void)
{
    static const uint8_t edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                   0xbf, 0xc0, 0xc1, 0xc2, 0xe0, 0xed, 0xf0, 0xf4};
    int bad = 0, checked = 0;
    uint8_t in[4];
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (size_t c = 0; c <= PT_ARRAY_SIZE(edge); c++) {
                for (size_t d = 0; d <= (c == 0 ? 0 : PT_ARRAY_SIZE(edge)); d++) {
                    size_t n = 2;
                    in[0] = (uint8_t)a, in[1] = (uint8_t)b;
                    if (c > 0) {
                        if (a < 0xe0)
                            continue; /* 3+ bytes only matter after a long lead */
                        in[n++] = edge[c - 1];
                        if (d > 0) {
                            if (a < 0xf0)
                                continue;
                            in[n++] = edge[d - 1];
                        }
                    }
                    char q[64];
                    q[0] = '"';
                    size_t len = pt_json_escape(q + 1, sizeof(q) - 2, pt_str_make((char *)in, n));
                    q[len + 1] = '"';
                    json_error_t err;
                    json_t *j = json_loadb(q, len + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
                    json_t *ref = json_stringn((const char *)in, n);
                    checked++;
                    if (j == NULL || (ref != NULL && !json_equal(j, ref)) ||
                        (ref == NULL && json_string_length(j) == n &&
                         memcmp(json_string_value(j), in, n) == 0)) {
                        if (bad++ < 3)
                            note("bad escape of %02x %02x (%zu bytes)", a, b, n);
                    }
                    json_decref(j);
                    json_decref(ref);
                }
            }
        }
    }
    is_int(bad, 0, "%d short byte sequences escape to the right JSON", checked);
}

int main(void)
{
    test_reasons();
    test_types();
    test_escape();
    test_body();
    test_random();
    test_exhaustive();
    return done_testing();
}
