/*
 * HTTP/1 head parser and framing analysis.  Includes the .c to reach the
 * scanners (SSE2 vs scalar must agree).  Every input is copied into a buffer
 * of exactly its length, so ASan sees any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../../src/http/h1.c"

#define IN(s) s, sizeof(s) - 1
#define MAXH  16

static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n == 0 ? 1 : n);
    if (p == NULL)
        abort();
    memcpy(p, s, n);
    return p;
}

static bool str_is(struct pt_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static bool within(struct pt_str s, const char *buf, int head_len)
{
    return s.len == 0 || (s.ptr >= buf && s.ptr + s.len <= buf + head_len);
}

/* Parse in[0..len) from an exact copy; kind 0 = request, 1 = response. */
static int parse_copy(int kind, const char *in, size_t len, size_t last_len, size_t max_headers)
{
    struct pt_h1_request req;
    struct pt_h1_response resp;
    struct pt_h1_header h[MAXH];
    char *b = dup_exact(in, len);
    int rc = kind == 0 ? pt_h1_parse_request(b, len, last_len, &req, h, max_headers)
                       : pt_h1_parse_response(b, len, last_len, &resp, h, max_headers);
    free(b);
    return rc;
}

/*
 * The incremental contract, for an input whose whole-buffer answer is want:
 * every strict prefix answers PARTIAL or want (prefix consistency), and
 * feeding one byte at a time with last_len ends in want.  When want is a
 * length, every prefix shorter than it must answer PARTIAL.
 */
static void check_incremental(int kind, const char *name, const char *in, size_t len, int want)
{
    size_t bad_prefix = SIZE_MAX, k;
    int rc = PT_PARSE_PARTIAL;

    for (k = 0; k < len; k++) {
        rc = parse_copy(kind, in, k, 0, MAXH);
        bool good = rc == PT_PARSE_PARTIAL || (rc == want && (want < 0 || (size_t)want <= k));
        if (want >= 0 && k < (size_t)want)
            good = rc == PT_PARSE_PARTIAL;
        if (!good && bad_prefix == SIZE_MAX)
            bad_prefix = k;
    }
    ok(bad_prefix == SIZE_MAX, "%s: every prefix is PARTIAL or the final answer", name);
    if (bad_prefix != SIZE_MAX)
        note("first bad prefix length %zu", bad_prefix);

    rc = PT_PARSE_PARTIAL;
    for (k = 1; k <= len && rc == PT_PARSE_PARTIAL; k++)
        rc = parse_copy(kind, in, k, k - 1, MAXH);
    is_int(rc, want, "%s: byte by byte with last_len", name);
    if (want >= 0)
        is_int(k - 1, want, "%s: byte by byte completes exactly at the end of the head", name);
}

/* ---- valid requests ------------------------------------------------------ */

struct hdr {
    const char *name, *value;
};

struct req_case {
    const char *name;
    const char *in;
    size_t len;
    int head_len; /* expected return; -1 = len */
    const char *method;
    enum pt_method method_id;
    const char *target;
    int minor;
    size_t nh;
    struct hdr h[6];
};

static const struct req_case valid_requests[] = {
    {"simple GET",
     IN("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
     -1,
     "GET",
     PT_METHOD_GET,
     "/",
     1,
     1,
     {{"Host", "example.com"}}},
    {"HTTP/1.0 without headers",
     IN("GET /index.html HTTP/1.0\r\n\r\n"),
     -1,
     "GET",
     PT_METHOD_GET,
     "/index.html",
     0,
     0,
     {{NULL, NULL}}},
    {"typical browser request",
     IN("GET /api/v1/items?id=42&x=%2F HTTP/1.1\r\nHost: api.example.com:8080\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
        "Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\n"
        "Accept-Encoding: gzip, deflate, br\r\nCookie: a=b; c=d\r\n"
        "Connection: keep-alive\r\n\r\n"),
     -1,
     "GET",
     PT_METHOD_GET,
     "/api/v1/items?id=42&x=%2F",
     1,
     6,
     {{"Host", "api.example.com:8080"},
      {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
      {"Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"},
      {"Accept-Encoding", "gzip, deflate, br"},
      {"Cookie", "a=b; c=d"},
      {"Connection", "keep-alive"}}},
    {"one leading empty line is ignored",
     IN("\r\nPOST /x HTTP/1.1\r\nHost: a\r\n\r\n"),
     -1,
     "POST",
     PT_METHOD_POST,
     "/x",
     1,
     1,
     {{"Host", "a"}}},
    {"pipelined bytes after the head are not consumed",
     IN("GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\n"),
     28,
     "GET",
     PT_METHOD_GET,
     "/a",
     1,
     1,
     {{"Host", "a"}}},
    {"OWS around values is trimmed, inner whitespace kept",
     IN("PUT /p HTTP/1.1\r\nHost:a\r\nX-A: \t v  1 \t\r\nX-B:\r\nX-C:   \r\n\r\n"),
     -1,
     "PUT",
     PT_METHOD_PUT,
     "/p",
     1,
     4,
     {{"Host", "a"}, {"X-A", "v  1"}, {"X-B", ""}, {"X-C", ""}}},
    {"obs-text and HTAB in values, long value (SIMD path)",
     IN("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcdef\tghijklmnopqrstuvwxyz\xc3\xa9\xff"
        "0123456789abcdef0123456789\r\n\r\n"),
     -1,
     "GET",
     PT_METHOD_GET,
     "/",
     1,
     2,
     {{"Host", "a"},
      {"X-Long", "0123456789abcdef\tghijklmnopqrstuvwxyz\xc3\xa9\xff"
                 "0123456789abcdef0123456789"}}},
    {"every tchar in names and methods",
     IN("M!#$%&'*+-.^_`|~09az "
        "* HTTP/1.1\r\n!#$%&'*+-.^_`|~09AZaz: v\r\nHost: h\r\n\r\n"),
     -1,
     "M!#$%&'*+-.^_`|~09az",
     PT_METHOD_OTHER,
     "*",
     1,
     2,
     {{"!#$%&'*+-.^_`|~09AZaz", "v"}, {"Host", "h"}}},
    {"absolute-form target with every VCHAR",
     IN("GET http://a/!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~ HTTP/1.1\r\nHost: a\r\n\r\n"),
     -1,
     "GET",
     PT_METHOD_GET,
     "http://a/!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~",
     1,
     1,
     {{"Host", "a"}}},
    {"authority-form CONNECT",
     IN("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
     -1,
     "CONNECT",
     PT_METHOD_CONNECT,
     "example.com:443",
     1,
     1,
     {{"Host", "example.com:443"}}},
    {"lower-case method is another method",
     IN("get / HTTP/1.1\r\nHost: a\r\n\r\n"),
     -1,
     "get",
     PT_METHOD_OTHER,
     "/",
     1,
     1,
     {{"Host", "a"}}},
    {"colons in a value",
     IN("OPTIONS * HTTP/1.1\r\nHost: a\r\nX: ::1:\r\n\r\n"),
     -1,
     "OPTIONS",
     PT_METHOD_OPTIONS,
     "*",
     1,
     2,
     {{"Host", "a"}, {"X", "::1:"}}},
};

static void test_valid_requests(void)
{
    for (size_t i = 0; i < PT_ARRAY_SIZE(valid_requests); i++) {
        const struct req_case *t = &valid_requests[i];
        int want = t->head_len < 0 ? (int)t->len : t->head_len;
        struct pt_h1_request req;
        struct pt_h1_header h[MAXH];
        char *b = dup_exact(t->in, t->len);
        int rc = pt_h1_parse_request(b, t->len, 0, &req, h, MAXH);
        is_int(rc, want, "%s: parses", t->name);
        if (rc == want) {
            bool fields = str_is(req.method, t->method) && req.method_id == t->method_id &&
                          str_is(req.target, t->target) && req.minor_version == t->minor &&
                          req.num_headers == t->nh && req.headers == h;
            bool views = within(req.method, b, rc) && within(req.target, b, rc);
            for (size_t j = 0; fields && j < t->nh; j++) {
                fields = str_is(h[j].name, t->h[j].name) && str_is(h[j].value, t->h[j].value);
                views = views && within(h[j].name, b, rc) && within(h[j].value, b, rc);
            }
            ok(fields, "%s: method, target, version, fields", t->name);
            ok(views, "%s: views lie within the head", t->name);
        }
        free(b);
        check_incremental(0, t->name, t->in, t->len, want);
    }
}

/* ---- rejected requests --------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *in;
    size_t len;
    int rc;
};

#define HOST "Host: a\r\n"
static const struct bad_case bad_requests[] = {
    /* line endings */
    {"bare LF after the request line", IN("GET / HTTP/1.1\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"bare LF after a field", IN("GET / HTTP/1.1\r\nHost: a\n\r\n"), PT_PARSE_INVALID},
    {"LF-only lines", IN("GET / HTTP/1.1\nHost: a\n\n"), PT_PARSE_INVALID},
    {"bare LF as the empty line", IN("GET / HTTP/1.1\r\n" HOST "\n"), PT_PARSE_INVALID},
    {"bare CR inside a value", IN("GET / HTTP/1.1\r\nX: a\rb\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"CR CR LF", IN("GET / HTTP/1.1\r\nX: a\r\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"bare CR after the request line", IN("GET / HTTP/1.1\r" HOST "\r\n"), PT_PARSE_INVALID},
    {"bare CR as the empty line", IN("GET / HTTP/1.1\r\n" HOST "\rX\r\n\r\n"), PT_PARSE_INVALID},
    {"leading bare LF", IN("\nGET / HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"two leading empty lines", IN("\r\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"leading bare CR", IN("\rGET / HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"leading space", IN(" GET / HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    /* field lines */
    {"obs-fold with SP", IN("GET / HTTP/1.1\r\n" HOST "X: a\r\n b\r\n\r\n"), PT_PARSE_INVALID},
    {"obs-fold with HTAB", IN("GET / HTTP/1.1\r\n" HOST "X: a\r\n\tb\r\n\r\n"), PT_PARSE_INVALID},
    {"whitespace before the first field", IN("GET / HTTP/1.1\r\n " HOST "\r\n"), PT_PARSE_INVALID},
    {"Transfer-Encoding : chunked (SP before colon)",
     IN("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding : chunked\r\n\r\n"), PT_PARSE_INVALID},
    {"HTAB before colon", IN("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), PT_PARSE_INVALID},
    {"empty field name", IN("GET / HTTP/1.1\r\n" HOST ": x\r\n\r\n"), PT_PARSE_INVALID},
    {"field without colon", IN("GET / HTTP/1.1\r\n" HOST "X-Foo\r\n\r\n"), PT_PARSE_INVALID},
    {"separator in name", IN("GET / HTTP/1.1\r\n" HOST "X(y): z\r\n\r\n"), PT_PARSE_INVALID},
    {"at sign in name", IN("GET / HTTP/1.1\r\n" HOST "X@y: z\r\n\r\n"), PT_PARSE_INVALID},
    {"obs-text in name", IN("GET / HTTP/1.1\r\n" HOST "X\xe9: z\r\n\r\n"), PT_PARSE_INVALID},
    {"NUL in name", IN("GET / HTTP/1.1\r\n" HOST "X\0Y: z\r\n\r\n"), PT_PARSE_INVALID},
    {"NUL in value", IN("GET / HTTP/1.1\r\n" HOST "X: a\0b\r\n\r\n"), PT_PARSE_INVALID},
    {"NUL at the start of a value", IN("GET / HTTP/1.1\r\n" HOST "X:\0\r\n\r\n"), PT_PARSE_INVALID},
    {"Transfer-Encoding:\\x0bchunked (VT)",
     IN("POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\x0b"
        "chunked\r\n\r\n"),
     PT_PARSE_INVALID},
    {"form feed in value", IN("GET / HTTP/1.1\r\n" HOST "X: a\fb\r\n\r\n"), PT_PARSE_INVALID},
    {"ESC in value", IN("GET / HTTP/1.1\r\n" HOST "X: a\x1b[0m\r\n\r\n"), PT_PARSE_INVALID},
    {"DEL in value", IN("GET / HTTP/1.1\r\n" HOST "X: a\x7f\r\n\r\n"), PT_PARSE_INVALID},
    {"CTL deep in a long value (SIMD path)",
     IN("GET / HTTP/1.1\r\n" HOST "X: 0123456789abcdef0123456789\x01"
        "abcdef\r\n\r\n"),
     PT_PARSE_INVALID},
    /* request line */
    {"non-token method", IN("G(T / HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"method with obs-text", IN("G\xc9T / HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"method with NUL", IN("GE\0T / HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"HTAB after method", IN("GET\t/ HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"two spaces after method", IN("GET  / HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"two spaces before version", IN("GET /  HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"space after version", IN("GET / HTTP/1.1 \r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"space in target", IN("GET /a b HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"HTAB in target", IN("GET /a\tb HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"NUL in target", IN("GET /a\0b HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"DEL in target", IN("GET /a\x7f HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"obs-text in target", IN("GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"obs-text deep in a long target (SIMD path)",
     IN("GET /0123456789abcdef0123456789\x80 HTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"lower-case HTTP-name", IN("GET / http/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"version without minor", IN("GET / HTTP/1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"version with two-digit minor", IN("GET / HTTP/1.10\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"version with two-digit major", IN("GET / HTTP/11.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"version letters", IN("GET / HTTP/A.B\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"version garbage", IN("GET / XTTP/1.1\r\n" HOST "\r\n"), PT_PARSE_INVALID},
    {"short garbage version then end", IN("GET / XYZ\r\n\r\n"), PT_PARSE_INVALID},
    {"request line without anything", IN("\r\n\r\n"), PT_PARSE_INVALID},
    {"HTTP/0.9 request line with bare LF", IN("GET /\n\r\n"), PT_PARSE_INVALID},
    /* versions we do not speak */
    {"HTTP/2.0", IN("GET / HTTP/2.0\r\n" HOST "\r\n"), PT_H1_BAD_VERSION},
    {"HTTP/1.2", IN("GET / HTTP/1.2\r\n" HOST "\r\n"), PT_H1_BAD_VERSION},
    {"HTTP/0.9", IN("GET / HTTP/0.9\r\n" HOST "\r\n"), PT_H1_BAD_VERSION},
    {"HTTP/3.0", IN("GET / HTTP/3.0\r\n\r\n"), PT_H1_BAD_VERSION},
    {"HTTP/0.9-style request line without version", IN("GET /\r\n\r\n"), PT_H1_BAD_VERSION},
    {"request line without target reads as HTTP/0.9", IN("GET HTTP/1.1\r\n" HOST "\r\n"),
     PT_H1_BAD_VERSION},
    {"bad version wins over a later bad field", IN("GET / HTTP/2.0\r\nX : y\r\n\r\n"),
     PT_H1_BAD_VERSION},
};

static void test_bad_requests(void)
{
    for (size_t i = 0; i < PT_ARRAY_SIZE(bad_requests); i++) {
        const struct bad_case *t = &bad_requests[i];
        is_int(parse_copy(0, t->in, t->len, 0, MAXH), t->rc, "rejects %s", t->name);
        check_incremental(0, t->name, t->in, t->len, t->rc);
    }
}

/* ---- field count limit --------------------------------------------------- */

static void test_too_many_headers(void)
{
    static const char three[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    static const char bad_fourth[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD : 4\r\n\r\n";
    struct pt_h1_request req;
    struct pt_h1_header h[3];
    int rc;

    rc = pt_h1_parse_request(three, sizeof(three) - 1, 0, &req, h, 3);
    is_int(rc, sizeof(three) - 1, "exactly max_headers fields are accepted");
    rc = pt_h1_parse_request(three, sizeof(three) - 1, 0, &req, h, 2);
    is_int(rc, PT_H1_TOO_MANY_HEADERS, "max_headers + 1 fields: TOO_MANY_HEADERS");
    ok(req.num_headers == 2 && str_is(h[1].name, "B"), "the first max_headers fields are kept");
    rc = pt_h1_parse_request(three, sizeof(three) - 1, 0, &req, NULL, 0);
    is_int(rc, PT_H1_TOO_MANY_HEADERS, "max_headers 0 with fields: TOO_MANY_HEADERS");
    rc = pt_h1_parse_request(IN("GET / HTTP/1.0\r\n\r\n"), 0, &req, NULL, 0);
    is_int(rc, 18, "max_headers 0 without fields is fine");
    rc = pt_h1_parse_request(three, sizeof(three) - 3, 0, &req, h, 2);
    is_int(rc, PT_PARSE_PARTIAL, "too many fields but incomplete: PARTIAL (decided at the end)");
    rc = pt_h1_parse_request(bad_fourth, sizeof(bad_fourth) - 1, 0, &req, h, 2);
    is_int(rc, PT_PARSE_INVALID, "too many fields and a bad one: INVALID wins");
    struct pt_h1_response resp;
    rc = pt_h1_parse_response(IN("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"), 0, &resp, h, 1);
    is_int(rc, PT_H1_TOO_MANY_HEADERS, "responses have the same limit");
}

/* ---- responses ----------------------------------------------------------- */

struct resp_case {
    const char *name;
    const char *in;
    size_t len;
    int minor, status;
    const char *reason;
    size_t nh;
};

static const struct resp_case valid_responses[] = {
    {"200 OK", IN("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 1, 200, "OK", 1},
    {"HTTP/1.0 404", IN("HTTP/1.0 404 Not Found\r\nServer: x\r\nDate: y\r\n\r\n"), 0, 404,
     "Not Found", 2},
    {"empty reason after SP", IN("HTTP/1.1 204 \r\n\r\n"), 1, 204, "", 0},
    {"no SP and no reason", IN("HTTP/1.1 304\r\nETag: \"x\"\r\n\r\n"), 1, 304, "", 1},
    {"reason with HTAB, obs-text and extra SP", IN("HTTP/1.1 500  Erreur\tinterne \xe9\r\n\r\n"), 1,
     500, " Erreur\tinterne \xe9", 0},
    {"101 Switching Protocols",
     IN("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), 1,
     101, "Switching Protocols", 2},
    {"status 999", IN("HTTP/1.1 999 Weird\r\n\r\n"), 1, 999, "Weird", 0},
};

static void test_valid_responses(void)
{
    for (size_t i = 0; i < PT_ARRAY_SIZE(valid_responses); i++) {
        const struct resp_case *t = &valid_responses[i];
        struct pt_h1_response resp;
        struct pt_h1_header h[MAXH];
        char *b = dup_exact(t->in, t->len);
        int rc = pt_h1_parse_response(b, t->len, 0, &resp, h, MAXH);
        is_int(rc, t->len, "%s: parses", t->name);
        if (rc == (int)t->len)
            ok(resp.minor_version == t->minor && resp.status == t->status &&
                   str_is(resp.reason, t->reason) && resp.num_headers == t->nh &&
                   within(resp.reason, b, rc),
               "%s: version, status, reason, fields", t->name);
        free(b);
        check_incremental(1, t->name, t->in, t->len, (int)t->len);
    }
}

static const struct bad_case bad_responses[] = {
    {"two-digit status", IN("HTTP/1.1 20 OK\r\n\r\n"), PT_PARSE_INVALID},
    {"four-digit status", IN("HTTP/1.1 2000 OK\r\n\r\n"), PT_PARSE_INVALID},
    {"status below 100", IN("HTTP/1.1 099 Odd\r\n\r\n"), PT_PARSE_INVALID},
    {"letters in status", IN("HTTP/1.1 2x0 OK\r\n\r\n"), PT_PARSE_INVALID},
    {"two spaces before status", IN("HTTP/1.1  200 OK\r\n\r\n"), PT_PARSE_INVALID},
    {"HTAB before status", IN("HTTP/1.1\t200 OK\r\n\r\n"), PT_PARSE_INVALID},
    {"nothing after version", IN("HTTP/1.1\r\n\r\n"), PT_PARSE_INVALID},
    {"bare LF after status line", IN("HTTP/1.1 200 OK\nServer: x\r\n\r\n"), PT_PARSE_INVALID},
    {"NUL in reason", IN("HTTP/1.1 200 O\0K\r\n\r\n"), PT_PARSE_INVALID},
    {"lower-case HTTP-name", IN("http/1.1 200 OK\r\n\r\n"), PT_PARSE_INVALID},
    {"leading empty line", IN("\r\nHTTP/1.1 200 OK\r\n\r\n"), PT_PARSE_INVALID},
    {"obs-fold in response", IN("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), PT_PARSE_INVALID},
    {"space before colon in response", IN("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n"),
     PT_PARSE_INVALID},
    {"HTTP/2.0 status line", IN("HTTP/2.0 200 OK\r\n\r\n"), PT_H1_BAD_VERSION},
    {"HTTP/1.2 status line", IN("HTTP/1.2 200 OK\r\n\r\n"), PT_H1_BAD_VERSION},
    {"HTTP/0.9 status line", IN("HTTP/0.9 200 OK\r\n\r\n"), PT_H1_BAD_VERSION},
};

static void test_bad_responses(void)
{
    for (size_t i = 0; i < PT_ARRAY_SIZE(bad_responses); i++) {
        const struct bad_case *t = &bad_responses[i];
        is_int(parse_copy(1, t->in, t->len, 0, MAXH), t->rc, "rejects response: %s", t->name);
        check_incremental(1, t->name, t->in, t->len, t->rc);
    }
}

/* ---- last_len behaviour -------------------------------------------------- */

static void test_last_len(void)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct pt_h1_request r;
    struct pt_h1_header h[4];
    size_t n = sizeof(req) - 1;

    /* the CRLFCRLF straddles the previous length at every offset */
    for (size_t split = n - 4; split < n; split++) {
        int rc = pt_h1_parse_request(req, n, split, &r, h, 4);
        is_int(rc, n, "end of head straddling last_len=%zu is found", split);
    }
    is_int(pt_h1_parse_request(req, n - 1, n - 2, &r, h, 4), PT_PARSE_PARTIAL,
           "no new end of head: PARTIAL without re-parsing");
    /* a bad byte that is not a control character, arriving after the first
     * call, is reported when the head ends */
    static const char late[] = "GET / HTTP/1.1\r\nX : y\r\n";
    is_int(pt_h1_parse_request(late, sizeof(late) - 1, 10, &r, h, 4), PT_PARSE_PARTIAL,
           "late non-CTL error: PARTIAL until the end arrives (documented)");
    is_int(pt_h1_parse_request(late, sizeof(late) - 1, 0, &r, h, 4), PT_PARSE_INVALID,
           "same bytes with last_len 0: INVALID at once");
    static const char late_ctl[] = "GET / HTTP/1.1\r\nX: \001";
    is_int(pt_h1_parse_request(late_ctl, sizeof(late_ctl) - 1, 17, &r, h, 4), PT_PARSE_INVALID,
           "late control character: INVALID at once");
    static const char late_cr[] = "GET / HTTP/1.1\r\nX: a\rb";
    is_int(pt_h1_parse_request(late_cr, sizeof(late_cr) - 1, sizeof(late_cr) - 2, &r, h, 4),
           PT_PARSE_INVALID, "CR ending the old bytes, non-LF first new byte: INVALID at once");
    static const char late_lf[] = "GET / HTTP/1.1\r\nX: a\n";
    is_int(pt_h1_parse_request(late_lf, sizeof(late_lf) - 1, sizeof(late_lf) - 2, &r, h, 4),
           PT_PARSE_INVALID, "bare LF as the only new byte: INVALID at once");
    is_int(pt_h1_parse_request(req, n, n + 5, &r, h, 4), (int)n,
           "last_len beyond len is ignored (full parse)");
}

/* ---- request meta -------------------------------------------------------- */

struct meta_case {
    const char *name;
    const char *in;
    int rc;
    enum pt_h1_body body;
    uint64_t cl;
    bool keep_alive, expect_continue, upgrade, conn_tokens;
    const char *proto; /* upgrade_proto, NULL = don't care */
    const char *why;   /* NULL = no reason expected */
};

#define R11 "POST / HTTP/1.1\r\nHost: a\r\n"
#define R10 "POST / HTTP/1.0\r\n"
static const struct meta_case req_meta[] = {
    {"no body", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, PT_H1_BODY_NONE, 0, true},
    {"Content-Length", R11 "Content-Length: 5\r\n\r\n", 0, PT_H1_BODY_LENGTH, 5, true},
    {"Content-Length 0", R11 "Content-Length: 0\r\n\r\n", 0, PT_H1_BODY_LENGTH, 0, true},
    {"Content-Length leading zeros", R11 "content-length: 007\r\n\r\n", 0, PT_H1_BODY_LENGTH, 7,
     true},
    {"Content-Length INT64_MAX", R11 "Content-Length: 9223372036854775807\r\n\r\n", 0,
     PT_H1_BODY_LENGTH, INT64_MAX, true},
    {"Content-Length INT64_MAX + 1", R11 "Content-Length: 9223372036854775808\r\n\r\n",
     PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "Content-Length too large"},
    {"Content-Length 2^64", R11 "Content-Length: 18446744073709551616\r\n\r\n", PT_PARSE_INVALID, 0,
     0, 0, 0, 0, 0, NULL, "Content-Length too large"},
    {"Content-Length: +5", R11 "Content-Length: +5\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0,
     NULL, "invalid Content-Length"},
    {"Content-Length: -5", R11 "Content-Length: -5\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0,
     NULL, "invalid Content-Length"},
    {"Content-Length: 5, 5", R11 "Content-Length: 5, 5\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0,
     NULL, "invalid Content-Length"},
    {"Content-Length: 5 5", R11 "Content-Length: 5 5\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0,
     NULL, "invalid Content-Length"},
    {"Content-Length: 0x5", R11 "Content-Length: 0x5\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0,
     NULL, "invalid Content-Length"},
    {"Content-Length empty", R11 "Content-Length: \r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0,
     NULL, "invalid Content-Length"},
    {"duplicated Content-Length (same value)", R11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
     PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "conflicting Content-Length headers"},
    {"duplicated Content-Length (different)", R11 "Content-Length: 5\r\ncontent-length: 6\r\n\r\n",
     PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "conflicting Content-Length headers"},
    {"chunked", R11 "Transfer-Encoding: chunked\r\n\r\n", 0, PT_H1_BODY_CHUNKED, 0, true},
    {"chunked, case and OWS", R11 "transfer-encoding:  ChUnKeD \t\r\n\r\n", 0, PT_H1_BODY_CHUNKED,
     0, true},
    {"CL.TE", R11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", PT_PARSE_INVALID, 0, 0,
     0, 0, 0, 0, NULL, "Content-Length with Transfer-Encoding"},
    {"TE.CL", R11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", PT_PARSE_INVALID, 0, 0,
     0, 0, 0, 0, NULL, "Content-Length with Transfer-Encoding"},
    {"Transfer-Encoding: chunked, chunked", R11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
     PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "unsupported Transfer-Encoding"},
    {"Transfer-Encoding twice",
     R11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", PT_PARSE_INVALID, 0, 0,
     0, 0, 0, 0, NULL, "repeated Transfer-Encoding headers"},
    {"Transfer-Encoding: gzip, chunked", R11 "Transfer-Encoding: gzip, chunked\r\n\r\n",
     PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "unsupported Transfer-Encoding"},
    {"Transfer-Encoding: gzip", R11 "Transfer-Encoding: gzip\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0,
     0, 0, NULL, "unsupported Transfer-Encoding"},
    {"Transfer-Encoding: identity", R11 "Transfer-Encoding: identity\r\n\r\n", PT_PARSE_INVALID, 0,
     0, 0, 0, 0, 0, NULL, "unsupported Transfer-Encoding"},
    {"Transfer-Encoding: xchunked", R11 "Transfer-Encoding: xchunked\r\n\r\n", PT_PARSE_INVALID, 0,
     0, 0, 0, 0, 0, NULL, "unsupported Transfer-Encoding"},
    {"Transfer-Encoding: chunked;x=1", R11 "Transfer-Encoding: chunked;x=1\r\n\r\n",
     PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "unsupported Transfer-Encoding"},
    {"Transfer-Encoding empty", R11 "Transfer-Encoding:\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0,
     0, NULL, "unsupported Transfer-Encoding"},
    {"Transfer-Encoding on HTTP/1.0", R10 "Transfer-Encoding: chunked\r\n\r\n", PT_PARSE_INVALID, 0,
     0, 0, 0, 0, 0, NULL, "Transfer-Encoding in an HTTP/1.0 message"},
    {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL,
     "missing Host header"},
    {"two Host headers", R11 "Host: b\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL,
     "repeated Host headers"},
    {"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0,
     NULL, "invalid Host header"},
    {"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0,
     NULL, "invalid Host header"},
    {"Host IPv6 literal with port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0,
     PT_H1_BODY_NONE, 0, true},
    {"empty Host (allowed by RFC 9110)", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, PT_H1_BODY_NONE, 0,
     true},
    {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 0, PT_H1_BODY_NONE, 0, false},
    {"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, PT_H1_BODY_NONE,
     0, true},
    {"HTTP/1.1 close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0, PT_H1_BODY_NONE,
     0, false},
    {"close wins over keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0,
     PT_H1_BODY_NONE, 0, false},
    {"empty list elements", "GET / HTTP/1.1\r\nHost: a\r\nConnection: , ,CLOSE,,\r\n\r\n", 0,
     PT_H1_BODY_NONE, 0, false},
    {"other Connection tokens",
     "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Foo, keep-alive\r\n\r\n", 0, PT_H1_BODY_NONE, 0,
     true, false, false, true},
    {"Connection element that is not a token",
     "GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n", PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0,
     NULL, "invalid Connection header"},
    {"websocket upgrade",
     "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0,
     PT_H1_BODY_NONE, 0, true, false, true, false, "websocket"},
    {"upgrade token in a second Connection field",
     "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nUpgrade: h2c\r\nConnection: "
     "upgrade\r\n\r\n",
     0, PT_H1_BODY_NONE, 0, true, false, true, false, "h2c"},
    {"Upgrade without the Connection token",
     "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", 0, PT_H1_BODY_NONE, 0, true,
     false, false, false, ""},
    {"Connection: upgrade without Upgrade",
     "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", 0, PT_H1_BODY_NONE, 0, true,
     false, false, false, ""},
    {"Upgrade ignored in HTTP/1.0",
     "GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 0, PT_H1_BODY_NONE, 0,
     false, false, false, false, ""},
    {"Expect: 100-continue", R11 "Content-Length: 3\r\nExpect: 100-Continue\r\n\r\n", 0,
     PT_H1_BODY_LENGTH, 3, true, true},
    {"Expect: 100-continue ignored in HTTP/1.0",
     R10 "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n", 0, PT_H1_BODY_LENGTH, 3, false,
     false},
    {"other expectation", R11 "Content-Length: 3\r\nExpect: 200-ok\r\n\r\n", PT_DECLINED,
     PT_H1_BODY_LENGTH, 3, true, false, false, false, NULL, "unsupported expectation"},
    {"bad framing wins over a bad expectation",
     R11 "Content-Length: 3\r\nContent-Length: 3\r\nExpect: 200-ok\r\n\r\n", PT_PARSE_INVALID, 0, 0,
     0, 0, 0, 0, NULL, "conflicting Content-Length headers"},
};

static void check_meta(const char *name, int rc, const struct pt_h1_meta *m, const char *why,
                       const struct meta_case *t)
{
    is_int(rc, t->rc, "%s: result", name);
    if (t->why != NULL || rc != 0)
        is_str(why, t->why, "%s: reason", name);
    else
        ok(why == NULL, "%s: no reason on success", name);
    if (rc == 0 || rc == PT_DECLINED) {
        bool same = m->body == t->body && m->keep_alive == t->keep_alive &&
                    m->expect_continue == t->expect_continue && m->upgrade == t->upgrade &&
                    m->has_connection_tokens == t->conn_tokens &&
                    (m->body != PT_H1_BODY_LENGTH || m->content_length == t->cl) &&
                    (t->proto == NULL || str_is(m->upgrade_proto, t->proto));
        ok(same, "%s: body=%d cl=%llu keep_alive=%d expect=%d upgrade=%d tokens=%d", name,
           (int)m->body, (unsigned long long)m->content_length, m->keep_alive, m->expect_continue,
           m->upgrade, m->has_connection_tokens);
    }
}

static void test_request_meta(void)
{
    for (size_t i = 0; i < PT_ARRAY_SIZE(req_meta); i++) {
        const struct meta_case *t = &req_meta[i];
        struct pt_h1_request req;
        struct pt_h1_header h[MAXH];
        struct pt_h1_meta m;
        const char *why = "unset";
        size_t len = strlen(t->in);
        int rc = pt_h1_parse_request(t->in, len, 0, &req, h, MAXH);
        if (rc != (int)len) {
            is_int(rc, len, "%s: head parses", t->name);
            continue;
        }
        rc = pt_h1_request_meta(&req, &m, &why);
        check_meta(t->name, rc, &m, why, t);
    }

    struct pt_h1_request req;
    struct pt_h1_header h[4];
    struct pt_h1_meta m;
    static const char in[] = "GET / HTTP/1.1\r\nHost: Example.COM:80\r\n\r\n";
    pt_h1_parse_request(in, sizeof(in) - 1, 0, &req, h, 4);
    is_int(pt_h1_request_meta(&req, &m, NULL), 0, "why may be NULL");
    ok(str_is(m.host, "Example.COM:80"), "meta.host is the Host value as sent");
    pt_h1_parse_request(IN("GET / HTTP/1.0\r\n\r\n"), 0, &req, h, 4);
    pt_h1_request_meta(&req, &m, NULL);
    ok(m.host.ptr != NULL && m.host.len == 0, "meta.host is empty, not NULL, when absent");
}

/* ---- response meta ------------------------------------------------------- */

struct resp_meta_case {
    const char *name;
    const char *in;
    enum pt_method method;
    struct meta_case m;
};

#define M(...)                                                                                     \
    {                                                                                              \
        NULL, NULL, __VA_ARGS__                                                                    \
    }
static const struct resp_meta_case resp_meta[] = {
    {"Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", PT_METHOD_GET,
     M(0, PT_H1_BODY_LENGTH, 12, true)},
    {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", PT_METHOD_GET,
     M(0, PT_H1_BODY_CHUNKED, 0, true)},
    {"no framing: until close", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", PT_METHOD_GET,
     M(0, PT_H1_BODY_UNTIL_CLOSE, 0, false)},
    {"HTTP/1.0 keep-alive with length",
     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", PT_METHOD_GET,
     M(0, PT_H1_BODY_LENGTH, 1, true)},
    {"HTTP/1.0 default close", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", PT_METHOD_GET,
     M(0, PT_H1_BODY_LENGTH, 1, false)},
    {"HTTP/1.1 close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
     PT_METHOD_GET, M(0, PT_H1_BODY_LENGTH, 1, false)},
    {"204 ignores Content-Length", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
     PT_METHOD_GET, M(0, PT_H1_BODY_NONE, 0, true)},
    {"304 ignores Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
     PT_METHOD_GET, M(0, PT_H1_BODY_NONE, 0, true)},
    {"1xx has no body", "HTTP/1.1 100 Continue\r\n\r\n", PT_METHOD_POST,
     M(0, PT_H1_BODY_NONE, 0, true)},
    {"HEAD response has no body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", PT_METHOD_HEAD,
     M(0, PT_H1_BODY_NONE, 0, true)},
    {"HEAD response with chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
     PT_METHOD_HEAD, M(0, PT_H1_BODY_NONE, 0, true)},
    {"2xx to CONNECT has no body", "HTTP/1.1 200 Connection Established\r\n\r\n", PT_METHOD_CONNECT,
     M(0, PT_H1_BODY_NONE, 0, true)},
    {"407 to CONNECT has a body", "HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n",
     PT_METHOD_CONNECT, M(0, PT_H1_BODY_LENGTH, 2, true)},
    {"101 upgrade",
     "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
     PT_METHOD_GET, M(0, PT_H1_BODY_NONE, 0, true, false, true, false, "websocket")},
    {"426 with Upgrade is not an upgrade",
     "HTTP/1.1 426 Upgrade Required\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: "
     "0\r\n\r\n",
     PT_METHOD_GET, M(0, PT_H1_BODY_LENGTH, 0, true, false, false, false, "")},
    {"Connection tokens in a response",
     "HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nContent-Length: 0\r\n\r\n", PT_METHOD_GET,
     M(0, PT_H1_BODY_LENGTH, 0, true, false, false, true)},
    {"duplicated Content-Length",
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", PT_METHOD_GET,
     M(PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "conflicting Content-Length headers")},
    {"CL with TE", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
     PT_METHOD_GET,
     M(PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "Content-Length with Transfer-Encoding")},
    {"CL with TE on a 304 is still refused",
     "HTTP/1.1 304 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", PT_METHOD_GET,
     M(PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "Content-Length with Transfer-Encoding")},
    {"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", PT_METHOD_GET,
     M(PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "unsupported Transfer-Encoding")},
    {"TE in HTTP/1.0 response", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
     PT_METHOD_GET,
     M(PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "Transfer-Encoding in an HTTP/1.0 message")},
    {"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1a\r\n\r\n", PT_METHOD_GET,
     M(PT_PARSE_INVALID, 0, 0, 0, 0, 0, 0, NULL, "invalid Content-Length")},
    {"Expect in a response means nothing",
     "HTTP/1.1 200 OK\r\nExpect: x\r\nContent-Length: 0\r\n\r\n", PT_METHOD_GET,
     M(0, PT_H1_BODY_LENGTH, 0, true)},
};

static void test_response_meta(void)
{
    for (size_t i = 0; i < PT_ARRAY_SIZE(resp_meta); i++) {
        const struct resp_meta_case *t = &resp_meta[i];
        struct pt_h1_response resp;
        struct pt_h1_header h[MAXH];
        struct pt_h1_meta m;
        const char *why = "unset";
        size_t len = strlen(t->in);
        int rc = pt_h1_parse_response(t->in, len, 0, &resp, h, MAXH);
        if (rc != (int)len) {
            is_int(rc, len, "%s: head parses", t->name);
            continue;
        }
        rc = pt_h1_response_meta(&resp, t->method, &m, &why);
        check_meta(t->name, rc, &m, why, &t->m);
    }
}

/* ---- helpers ------------------------------------------------------------- */

static void test_hop_by_hop(void)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Private , keep-alive\r\n"
                             "connection: x-other\r\nX-Public: 1\r\n\r\n";
    static const char *const fixed[] = {"Connection", "keep-alive",        "Proxy-Connection", "TE",
                                        "Trailer",    "TRANSFER-ENCODING", "upgrade"};
    struct pt_h1_request req;
    struct pt_h1_header h[8];
    pt_h1_parse_request(in, sizeof(in) - 1, 0, &req, h, 8);

    for (size_t i = 0; i < PT_ARRAY_SIZE(fixed); i++)
        ok(pt_h1_is_hop_by_hop(pt_str_cstr(fixed[i]), NULL, 0), "%s is hop-by-hop", fixed[i]);
    ok(pt_h1_is_hop_by_hop(PT_STR_LIT("x-private"), req.headers, req.num_headers),
       "a name listed in Connection is hop-by-hop");
    ok(pt_h1_is_hop_by_hop(PT_STR_LIT("X-Other"), req.headers, req.num_headers),
       "a name listed in a second Connection field is hop-by-hop");
    ok(!pt_h1_is_hop_by_hop(PT_STR_LIT("X-Public"), req.headers, req.num_headers),
       "other names are end-to-end");
    ok(!pt_h1_is_hop_by_hop(PT_STR_LIT("Host"), req.headers, req.num_headers),
       "Host is end-to-end");
    ok(!pt_h1_is_hop_by_hop(PT_STR_LIT("Content-Length"), req.headers, req.num_headers),
       "Content-Length is not in the fixed set");
    ok(!pt_h1_is_hop_by_hop(PT_STR_LIT("X-Privat"), req.headers, req.num_headers),
       "prefixes of listed names do not match");
    ok(!pt_h1_is_hop_by_hop(PT_STR_LIT("TEE"), NULL, 0), "TEE is not TE");

    const struct pt_h1_header *f =
        pt_h1_find_header(req.headers, req.num_headers, PT_STR_LIT("CONNECTION"));
    ok(f == &h[1], "find_header is case-insensitive and returns the first match");
    ok(pt_h1_find_header(req.headers, req.num_headers, PT_STR_LIT("X-Missing")) == NULL,
       "find_header returns NULL when absent");
    ok(pt_h1_find_header(NULL, 0, PT_STR_LIT("Host")) == NULL, "find_header on no fields");
}

static void test_tchar(void)
{
    static const char tchars[] = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    int wrong = 0;
    for (int c = 0; c < 256; c++) {
        bool want = c != 0 && memchr(tchars, c, sizeof(tchars) - 1) != NULL;
        if ((pt_h1_tchar[c] != 0) != want)
            wrong++;
    }
    is_int(wrong, 0, "pt_h1_tchar is exactly RFC 9110 tchar");
}

/* The scanners in use (SSE2 on x86-64) and the scalar ones must both agree
 * with a naive definition, at every length and offset. */
static const char *naive_ctl(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p >= 0x20 && *p != 0x7f)
        p++;
    return p;
}

static const char *naive_non_vchar(const char *p, const char *end)
{
    while (p < end && *p >= 0x21 && *p <= 0x7e)
        p++;
    return p;
}

static void test_scanners(void)
{
    static const unsigned char special[] = {0,   '\t', '\n', '\r', 0x1f, ' ',
                                            '!', 0x7e, 0x7f, 0x80, 0xff};
    unsigned seed = 12345;
    int mismatches = 0;
    char buf[80];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % 70);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) & 0xff;
            /* mostly printable, sometimes a boundary byte */
            buf[i] = (char)(r < 16 ? special[r % sizeof(special)] : 0x21 + r % 0x5e);
        }
        const char *end = buf + n, *want_ctl = naive_ctl(buf, end);
        const char *want_vchar = naive_non_vchar(buf, end);
        if (find_ctl(buf, end) != want_ctl || find_ctl_scalar(buf, end) != want_ctl)
            mismatches++;
        if (find_non_vchar(buf, end) != want_vchar || find_non_vchar_scalar(buf, end) != want_vchar)
            mismatches++;
    }
    is_int(mismatches, 0, "SIMD and scalar scanners agree with the definition");
}

int main(void)
{
    test_valid_requests();
    test_bad_requests();
    test_too_many_headers();
    test_valid_responses();
    test_bad_responses();
    test_last_len();
    test_request_meta();
    test_response_meta();
    test_hop_by_hop();
    test_tchar();
    test_scanners();
    return done_testing();
}
