/*
 * Unit tests for the route matcher (src/router/).  Every match made through
 * do_match() is cross-checked against pt_router_explain(), which decides
 * the winner without the trie.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "core/alloc.h"
#include "router/router.h"

/* ---- helpers ------------------------------------------------------------ */

#define NARGS(...)   (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define PATHS(...)   .paths = (const char *const[]){__VA_ARGS__}, .npaths = NARGS(__VA_ARGS__)
#define METHODS(...) .methods = (const char *const[]){__VA_ARGS__}, .nmethods = NARGS(__VA_ARGS__)
#define HOSTS(...)   .hosts = (const char *const[]){__VA_ARGS__}, .nhosts = NARGS(__VA_ARGS__)
#define HEADERS(...)                                                                               \
    .headers = (const struct pt_router_header_match[]){__VA_ARGS__},                               \
    .nheaders = sizeof((const struct pt_router_header_match[]){__VA_ARGS__}) /                     \
                sizeof(struct pt_router_header_match)
#define N(a) (sizeof(a) / sizeof((a)[0]))

static char diag_log[65536];
static size_t diag_len;
static int diag_errors, diag_warnings;

static void diag_cb(void *ctx, bool is_error, size_t route, ssize_t path, const char *msg)
{
    (void)ctx;
    if (is_error)
        diag_errors++;
    else
        diag_warnings++;
    int n = snprintf(diag_log + diag_len, sizeof(diag_log) - diag_len, "%s %zu %zd: %s\n",
                     is_error ? "E" : "W", route, path, msg);
    if (n > 0 && (size_t)n < sizeof(diag_log) - diag_len)
        diag_len += (size_t)n;
}

static void diag_reset(void)
{
    diag_log[0] = '\0';
    diag_len = 0;
    diag_errors = diag_warnings = 0;
}

static bool diag_has(const char *s)
{
    bool found = strstr(diag_log, s) != NULL;
    if (!found)
        printf("# diag log was:\n%s", diag_log);
    return found;
}

static struct pt_router *build(const struct pt_router_route *routes, size_t n)
{
    diag_reset();
    return pt_router_build(routes, n, diag_cb, NULL);
}

struct hdr {
    const char *name, *value;
};

struct hdrs {
    const struct hdr *h;
    size_t n;
};

static bool get_header(void *ctx, struct pt_str name, struct pt_str *value)
{
    const struct hdrs *hs = ctx;
    for (size_t i = 0; i < hs->n; i++) {
        if (pt_str_case_eq(name, pt_str_cstr(hs->h[i].name))) {
            *value = pt_str_cstr(hs->h[i].value);
            return true;
        }
    }
    return false;
}

static int explain_disagreements;
static bool cross_check = true;
static struct pt_router_match last;
static const char *last_path;

/* Returns the winning route's index, or -404 / -405. */
static int match_h(struct pt_router *r, const char *method, const char *host, const char *path,
                   const struct hdr *h, size_t nh)
{
    struct hdrs hs = {h, nh};
    struct pt_router_request req = {pt_str_cstr(method), pt_str_cstr(host), pt_str_cstr(path),
                                    get_header, &hs};
    pt_router_match(r, &req, &last);
    last_path = path;
    if (cross_check) {
        size_t n = pt_router_count(r);
        struct pt_router_explain_entry *e = calloc(n + 1, sizeof(*e));
        struct pt_router_match m2;
        pt_router_explain(r, &req, &m2, e);
        size_t won = SIZE_MAX, nwon = 0;
        for (size_t i = 0; i < n; i++)
            if (e[i].verdict == PT_ROUTER_WON) {
                won = i;
                nwon++;
            }
        bool agree = m2.status == last.status && m2.route == last.route &&
                     (last.status == 200 ? nwon == 1 && won == last.route : nwon == 0);
        if (!agree) {
            explain_disagreements++;
            printf("# explain disagrees on %s %s%s: match %d/%zu, explain won %zu\n", method, host,
                   path, last.status, last.route, won);
        }
        free(e);
    }
    return last.status == 200 ? (int)last.route : -last.status;
}

static int match(struct pt_router *r, const char *method, const char *host, const char *path)
{
    return match_h(r, method, host, path, NULL, 0);
}

/* The value of capture name in the last match ("<none>" if absent); checks it points into the path.
 */
static const char *cap(const char *name)
{
    static char buf[8][256];
    static int slot;
    for (size_t i = 0; i < last.ncaptures; i++) {
        const struct pt_capture *c = &last.captures[i];
        if (!pt_str_eq(c->name, pt_str_cstr(name)))
            continue;
        size_t plen = strlen(last_path);
        if (c->value.len > 0 &&
            (c->value.ptr < last_path || c->value.ptr + c->value.len > last_path + plen))
            return "<outside the path>";
        char *b = buf[slot++ % 8];
        snprintf(b, 256, "%.*s", PT_STR_FMT(c->value));
        return b;
    }
    return "<none>";
}

/* ---- path kinds ----------------------------------------------------------- */

static void test_kinds(void)
{
    struct pt_router_route routes[] = {
        {.name = "exact", PATHS("/a/b")},
        {.name = "prefix", PATHS("/p/*")},
        {.name = "param", PATHS("/u/{id}")},
        {.name = "rest", PATHS("/files/{path*}")},
        {.name = "root", PATHS("/")},
        {.name = "slash", PATHS("/t/")},
        {.name = "regex", PATHS("~ ^/r/(?<year>[0-9]{4})/(?<slug>[a-z-]+)$")},
        {.name = "unanchored", PATHS("~/x/([0-9]+)")},
        {.name = "deep", PATHS("/d/{a}/e/{b}/f")},
    };
    struct pt_router *r = build(routes, N(routes));
    ok(r != NULL, "build the kinds table");
    is_int(diag_errors + diag_warnings, 0, "no diagnostics");
    is_int(pt_router_count(r), N(routes), "route count");

    is_int(match(r, "GET", "", "/a/b"), 0, "exact");
    is_int(match(r, "GET", "", "/a/b/"), -404, "exact does not match with a trailing slash");
    is_int(match(r, "GET", "", "/a"), -404, "exact does not match a prefix of itself");
    is_int(match(r, "GET", "", "/a/b/c"), -404, "exact does not match below itself");
    is_int(last.ncaptures, 0, "404: no captures");
    ok(last.data == NULL && last.route == SIZE_MAX, "404: no data, route SIZE_MAX");

    is_int(match(r, "GET", "", "/p/"), 1, "prefix matches /p/");
    is_int(match(r, "GET", "", "/p/x/y/z"), 1, "prefix matches below");
    is_int(match(r, "GET", "", "/p"), -404, "prefix does not match /p");
    is_int(match(r, "GET", "", "/px"), -404, "prefix is on a segment boundary");

    is_int(match(r, "GET", "", "/u/42"), 2, "param");
    is_str(cap("id"), "42", "param captured");
    is_int(last.ncaptures, 1, "one capture");
    is_int(match(r, "GET", "", "/u/"), -404, "param needs a non-empty segment");
    is_int(match(r, "GET", "", "/u/42/x"), -404, "param is one segment");
    is_int(match(r, "GET", "", "/u/a%2Fb"), 2, "%%2F does not split a segment");
    is_str(cap("id"), "a%2Fb", "... and stays in the capture");

    is_int(match(r, "GET", "", "/files/"), 3, "rest matches empty");
    is_str(cap("path"), "", "empty rest capture");
    is_int(match(r, "GET", "", "/files/a/b/c.txt"), 3, "rest matches below");
    is_str(cap("path"), "a/b/c.txt", "rest capture is the remainder");
    is_int(match(r, "GET", "", "/files"), -404, "rest does not match without the slash");

    is_int(match(r, "GET", "", "/"), 4, "root");
    is_int(match(r, "GET", "", "/t/"), 5, "trailing slash exact");
    is_int(match(r, "GET", "", "/t"), -404, "trailing slash exact is not /t");

    is_int(match(r, "GET", "", "/r/2024/hello-world"), 6, "regex");
    is_str(cap("year"), "2024", "regex named group 1");
    is_str(cap("slug"), "hello-world", "regex named group 2");
    is_int(last.ncaptures, 2, "regex: only named groups");
    is_int(match(r, "GET", "", "/r/24/hello"), -404, "regex does not match");
    is_int(match(r, "GET", "", "/zz/x/12/yy"), 7, "regex is unanchored unless anchored");
    is_int(last.ncaptures, 0, "unnamed groups are not captures");

    is_int(match(r, "GET", "", "/d/1/e/2/f"), 8, "two params between statics");
    is_str(cap("a"), "1", "first");
    is_str(cap("b"), "2", "second");

    is_int(match(r, "GET", "", ""), -404, "empty path");
    is_int(match(r, "GET", "", "*"), -404, "asterisk form");
    is_int(match(r, "GET", "", "//a/b"), -404,
           "non-normalised path is not normalised by the router");
    pt_router_free(r);
}

/* ---- priority -------------------------------------------------------------- */

static void test_priority_classes(void)
{
    /* every order of declaration: exact > param > prefix > regex */
    const char *pats[4] = {"/a/b", "/a/{x}", "/a/*", "~ ^/a/b$"};
    int perm[24][4], np = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++)
                for (int d = 0; d < 4; d++)
                    if (a != b && a != c && a != d && b != c && b != d && c != d) {
                        perm[np][0] = a, perm[np][1] = b, perm[np][2] = c, perm[np][3] = d;
                        np++;
                    }
    int bad = 0;
    for (int p = 0; p < np; p++) {
        struct pt_router_route routes[4];
        memset(routes, 0, sizeof(routes));
        for (int i = 0; i < 4; i++) {
            routes[i].name = pats[perm[p][i]];
            routes[i].paths = &pats[perm[p][i]];
            routes[i].npaths = 1;
        }
        struct pt_router *r = build(routes, 4);
        int want_kind[4]; /* which kind wins once the better ones are excluded by method */
        (void)want_kind;
        int idx[4];
        for (int i = 0; i < 4; i++)
            idx[perm[p][i]] = i;
        if (match(r, "GET", "", "/a/b") != idx[0])
            bad++;
        if (match(r, "GET", "", "/a/c") != idx[1])
            bad++;
        if (match(r, "GET", "", "/a/c/d") != idx[2])
            bad++;
        pt_router_free(r);
    }
    is_int(bad, 0, "exact > param > prefix > regex in all 24 declaration orders");

    /* a class falls through to the next one when constraints fail */
    struct pt_router_route routes[] = {
        {.name = "regex", PATHS("~ ^/a/b$")},
        {.name = "prefix", PATHS("/a/*"), METHODS("GET", "POST")},
        {.name = "param", PATHS("/a/{x}"), METHODS("GET")},
        {.name = "exact", PATHS("/a/b"), HOSTS("example.com")},
    };
    struct pt_router *r = build(routes, N(routes));
    is_int(match(r, "GET", "example.com", "/a/b"), 3, "exact with its host");
    is_int(match(r, "GET", "other.com", "/a/b"), 2, "exact's host fails: param");
    is_str(cap("x"), "b", "param captures from the winning pattern");
    is_int(match(r, "POST", "other.com", "/a/b"), 1, "param's method fails: prefix");
    is_int(last.ncaptures, 0, "prefix has no captures");
    is_int(match(r, "PUT", "other.com", "/a/b"), 0, "all but regex fail: regex");
    pt_router_free(r);
}

static void test_priority_within(void)
{
    struct pt_router_route params[] = {
        {.name = "p0", PATHS("/{x}/{y}/{z}")},
        {.name = "p1", PATHS("/a/{y}/{z}")},
        {.name = "p2", PATHS("/a/{y}/c")},
        {.name = "p3", PATHS("/{x}/b/c")},
    };
    struct pt_router *r = build(params, N(params));
    is_int(match(r, "GET", "", "/a/b/c"), 2, "more static segments win; tie -> earlier");
    is_int(match(r, "GET", "", "/a/q/c"), 2, "two statics");
    is_int(match(r, "GET", "", "/z/b/c"), 3, "two statics, other route");
    is_int(match(r, "GET", "", "/a/q/q"), 1, "one static");
    is_int(match(r, "GET", "", "/q/q/q"), 0, "no static");
    is_str(cap("x"), "q", "captures x");
    pt_router_free(r);

    struct pt_router_route prefixes[] = {
        {.name = "all", PATHS("/*")},
        {.name = "a", PATHS("/a/*")},
        {.name = "ab", PATHS("/a/b/*")},
        {.name = "a-param", PATHS("/a/{x}/*")},
        {.name = "a-rest", PATHS("/a/{rest*}")},
        {.name = "abc-rest", PATHS("/a/b/c/{rest*}")},
    };
    r = build(prefixes, N(prefixes));
    is_int(match(r, "GET", "", "/zzz"), 0, "/* catches everything");
    is_int(match(r, "GET", "", "/"), 0, "/* matches /");
    is_int(match(r, "GET", "", "/a"), 0, "/a is not under /a/*");
    is_int(match(r, "GET", "", "/a/"), 1, "/a/ is under /a/*; /a/{rest*} ties and is later");
    is_int(match(r, "GET", "", "/a/b/"), 2, "longest static prefix");
    is_int(match(r, "GET", "", "/a/b/c"), 2, "longest static prefix below");
    is_int(match(r, "GET", "", "/a/q/c"), 3, "/a/{x}/* beats /a/* (same static prefix, deeper)");
    is_int(match(r, "GET", "", "/a/b/c/"), 5, "/a/b/c/{rest*} is the longest");
    is_str(cap("rest"), "", "rest empty");
    is_int(match(r, "GET", "", "/a/b/c/d/e"), 5, "longest, deeper");
    is_str(cap("rest"), "d/e", "rest");
    pt_router_free(r);

    struct pt_router_route ties[] = {
        {.name = "first", PATHS("/t/{a}")},
        {.name = "second", PATHS("/t/{b}")},
        {.name = "re1", PATHS("~ ^/re/(?<one>.*)$")},
        {.name = "re2", PATHS("~ ^/re/(?<two>x)$")},
    };
    r = build(ties, N(ties));
    is_int(match(r, "GET", "", "/t/1"), 0, "ties go to the earlier route");
    is_str(cap("a"), "1", "with its capture name");
    is_int(match(r, "GET", "", "/re/x"), 2, "regexes in declaration order");
    is_str(cap("one"), "x", "first regex's groups");
    pt_router_free(r);

    /* within one route, the more specific pattern provides the captures */
    struct pt_router_route multi[] = {
        {.name = "m", PATHS("/m/{rest*}", "/m/{id}", "/m/x")},
    };
    r = build(multi, N(multi));
    is_int(match(r, "GET", "", "/m/7"), 0, "multi-pattern route");
    is_str(cap("id"), "7", "the param pattern wins over the rest pattern");
    is_int(match(r, "GET", "", "/m/x"), 0, "exact pattern");
    is_int(last.ncaptures, 0, "exact pattern: no captures");
    is_int(match(r, "GET", "", "/m/7/8"), 0, "rest pattern");
    is_str(cap("rest"), "7/8", "rest pattern captures");
    pt_router_free(r);
}

static void test_backtracking(void)
{
    struct pt_router_route routes[] = {
        {.name = "abc", PATHS("/a/b/c")},
        {.name = "axz", PATHS("/a/{x}/{z}")},
        {.name = "abcd", PATHS("/a/b/c/d")},
        {.name = "a", PATHS("/a/*")},
        {.name = "ab-get", PATHS("/a/b/{y}"), METHODS("GET")},
        {.name = "xyz", PATHS("/{p}/{q}/{r}/{s}/{t}")},
    };
    struct pt_router *r = build(routes, N(routes));
    is_int(match(r, "GET", "", "/a/b/d"), 4, "static branch b, then its param (more static)");
    is_int(match(r, "POST", "", "/a/b/d"), 1, "static branch fails on method; param branch");
    is_str(cap("x"), "b", "capture from the param branch");
    is_int(match(r, "GET", "", "/a/b/c/e"), 3, "dead end on the static branch; prefix at /a");
    is_int(match(r, "GET", "", "/a/b/c/e/f"), 5, "five params beat the prefix");
    is_int(match(r, "GET", "", "/a/b/c/d"), 2, "exact deep");
    pt_router_free(r);
}

/* ---- 405 ---------------------------------------------------------------------- */

static void test_405(void)
{
    struct pt_router_route routes[] = {
        {.name = "get", PATHS("/a"), METHODS("GET", "HEAD")},
        {.name = "post", PATHS("/a", "/b"), METHODS("POST", "PURGE")},
        {.name = "host", PATHS("/a"), METHODS("PUT"), HOSTS("only.example.com")},
        {.name = "hdr", PATHS("/a"), METHODS("PATCH"), HEADERS({"X-V", "2"})},
        {.name = "other", PATHS("/o/{x}"), METHODS("PURGE", "LINK")},
        {.name = "o2", PATHS("/o/*"), METHODS("UNLINK", "PURGE", "GET")},
        {.name = "re", PATHS("~ ^/re$"), METHODS("DELETE")},
    };
    struct pt_router *r = build(routes, N(routes));
    is_int(match(r, "GET", "", "/a"), 0, "GET /a");
    is_int(match(r, "POST", "", "/a"), 1, "POST /a");
    is_int(match(r, "PURGE", "", "/a"), 1, "non-standard method matched by name");
    is_int(match(r, "get", "", "/a"), -405, "methods are case-sensitive");
    is_int(match(r, "DELETE", "", "/a"), -405, "DELETE /a: 405");
    ok(last.data == NULL, "405: no data");
    is_int(last.allow_mask,
           PT_METHOD_BIT(PT_METHOD_GET) | PT_METHOD_BIT(PT_METHOD_HEAD) |
               PT_METHOD_BIT(PT_METHOD_POST),
           "Allow: the union of the routes that matched but for the method");
    is_int(last.nallow_other, 1, "one non-standard method");
    is_str(last.nallow_other ? last.allow_other[0] : NULL, "PURGE", "PURGE allowed");
    is_int(match(r, "DELETE", "only.example.com", "/a"), -405, "with the host: 405");
    ok(last.allow_mask & PT_METHOD_BIT(PT_METHOD_PUT), "... and PUT is allowed too");
    struct hdr v2 = {"x-v", "2"};
    is_int(match_h(r, "DELETE", "", "/a", &v2, 1), -405, "with the header");
    ok(last.allow_mask & PT_METHOD_BIT(PT_METHOD_PATCH), "... PATCH is allowed too");
    is_int(match(r, "DELETE", "", "/b"), -405, "second pattern of a route");
    is_int(last.allow_mask, PT_METHOD_BIT(PT_METHOD_POST), "only POST");
    is_int(match(r, "DELETE", "", "/c"), -404, "no path: 404");
    is_int(match(r, "GET", "", "/o/1"), 5, "prefix route allows GET, param does not");
    is_int(match(r, "POST", "", "/o/1"), -405, "405 over two routes");
    is_int(last.nallow_other, 3, "PURGE, LINK, UNLINK deduplicated");
    ok(last.allow_mask == PT_METHOD_BIT(PT_METHOD_GET), "GET from the prefix route");
    is_int(match(r, "GET", "", "/re"), -405, "regex: 405");
    is_int(last.allow_mask, PT_METHOD_BIT(PT_METHOD_DELETE), "regex Allow");
    pt_router_free(r);

    struct pt_router_route hostonly[] = {
        {.name = "h", PATHS("/a"), METHODS("GET"), HOSTS("a.com")},
        {.name = "hd", PATHS("/a"), METHODS("GET"), HEADERS({"X-A", "1"})},
    };
    r = build(hostonly, N(hostonly));
    is_int(match(r, "POST", "b.com", "/a"), -404, "host and method fail: 404, not 405");
    is_int(last.allow_mask, 0, "no Allow on 404");
    pt_router_free(r);
}

/* ---- hosts and headers ------------------------------------------------------------ */

static void test_hosts(void)
{
    struct pt_router_route routes[] = {
        {.name = "api", PATHS("/x"), HOSTS("API.Example.com")},
        {.name = "wild", PATHS("/x"), HOSTS("*.example.com")},
        {.name = "two", PATHS("/y"), HOSTS("a.test", "*.b.test")},
        {.name = "v6", PATHS("/z"), HOSTS("[::1]")},
    };
    struct pt_router *r = build(routes, N(routes));
    ok(r != NULL, "build hosts");
    is_int(match(r, "GET", "api.example.com", "/x"), 0, "exact host, case-insensitive");
    is_int(match(r, "GET", "API.EXAMPLE.COM", "/x"), 0, "upper case request host");
    is_int(match(r, "GET", "www.example.com", "/x"), 1, "wildcard, one level");
    is_int(match(r, "GET", "a.b.c.Example.COM", "/x"), 1, "wildcard, any depth");
    is_int(match(r, "GET", "example.com", "/x"), -404, "wildcard does not match the apex");
    is_int(match(r, "GET", "xexample.com", "/x"), -404, "wildcard matches on a dot");
    is_int(match(r, "GET", ".example.com", "/x"), -404, "empty label does not count");
    is_int(match(r, "GET", "", "/x"), -404, "no host");
    is_int(match(r, "GET", "a.test", "/y"), 2, "host list, exact");
    is_int(match(r, "GET", "q.b.test", "/y"), 2, "host list, wildcard");
    is_int(match(r, "GET", "b.test", "/y"), -404, "host list, miss");
    is_int(match(r, "GET", "[::1]", "/z"), 3, "IPv6 literal host");
    pt_router_free(r);
}

static void test_headers(void)
{
    struct pt_router_route routes[] = {
        {.name = "v2", PATHS("/h"), HEADERS({"X-Api-Version", "2"})},
        {.name = "both", PATHS("/h2"), HEADERS({"X-A", "1"}, {"x-b", "Two"})},
        {.name = "fallback", PATHS("/h")},
    };
    struct pt_router *r = build(routes, N(routes));
    struct hdr good = {"x-api-version", "2"}, bad = {"X-Api-Version", "3"};
    is_int(match_h(r, "GET", "", "/h", &good, 1), 0, "header present, name case-insensitive");
    is_int(match_h(r, "GET", "", "/h", &bad, 1), 2, "header differs: fallback");
    is_int(match(r, "GET", "", "/h"), 2, "header missing: fallback");
    struct hdr ab[] = {{"X-A", "1"}, {"X-B", "Two"}};
    struct hdr a_only[] = {{"X-A", "1"}};
    struct hdr ab_case[] = {{"X-A", "1"}, {"X-B", "two"}};
    is_int(match_h(r, "GET", "", "/h2", ab, 2), 1, "all headers");
    is_int(match_h(r, "GET", "", "/h2", a_only, 1), -404, "one header missing");
    is_int(match_h(r, "GET", "", "/h2", ab_case, 2), -404, "values are case-sensitive");
    struct pt_router_request req = {PT_STR_LIT("GET"), PT_STR_LIT(""), PT_STR_LIT("/h2"), NULL,
                                    NULL};
    struct pt_router_match m;
    pt_router_match(r, &req, &m);
    is_int(m.status, 404, "no header callback: header constraints fail");
    pt_router_free(r);
}

/* ---- captures --------------------------------------------------------------------- */

static void test_captures(void)
{
    struct pt_router_route routes[] = {
        {.name = "many",
         PATHS("/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{rest*}")},
        {.name = "opt", PATHS("~ ^/opt(/(?<x>[a-z]+))?(/(?<y>[0-9]+))?$")},
        {.name = "dash", PATHS("/v/{user-id}/{_x9}")},
    };
    struct pt_router *r = build(routes, N(routes));
    ok(r != NULL, "16 captures are allowed");
    const char *p = "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17";
    is_int(match(r, "GET", "", p), 0, "16 captures");
    is_int(last.ncaptures, 16, "all 16 reported");
    is_str(cap("o"), "15", "15th");
    is_str(cap("rest"), "16/17", "rest");
    is_int(match(r, "GET", "", "/opt/abc"), 1, "regex with an optional group");
    is_str(cap("x"), "abc", "set group");
    is_str(cap("y"), "<none>", "unset group is not reported");
    is_int(match(r, "GET", "", "/opt/abc/12"), 1, "both groups");
    is_str(cap("y"), "12", "second group");
    is_int(match(r, "GET", "", "/v/u1/x"), 2, "names with '-' and '_'");
    is_str(cap("user-id"), "u1", "dash name");
    pt_router_free(r);
}

/* ---- invalid patterns ------------------------------------------------------------ */

static void test_invalid(void)
{
    static const struct {
        const char *pattern, *message;
    } bad[] = {
        {"a/b", "must start with '/' or '~'"},
        {"", "must start with '/' or '~'"},
        {"/a/{id", "'{' without a matching '}'"},
        {"/a/{id/x}", "'{' without a matching '}'"},
        {"/a/id}", "'}' without a matching '{'"},
        {"/a/{}", "empty capture name"},
        {"/a/{*}", "empty capture name"},
        {"/a/{id}/{id}", "duplicate capture name \"id\""},
        {"/a/{x}/{rest*}/b", "{rest*} must be the last segment"},
        {"/a/*/b", "'*' must be the last segment"},
        {"/a/b*", "'*' is only allowed as a whole last segment"},
        {"/a/{id}.json", "mixing static text and a capture in one segment is not supported"},
        {"/a/x{id}", "mixing static text and a capture in one segment is not supported"},
        {"/a/{a.b}", "invalid capture name \"a.b\""},
        {"/a b", "not a valid path"},
        {"/a/%zz", "not a valid path"},
        {"/../a", "\"..\" climbs above the root"},
        {"~ ", "empty regex after '~'"},
        {"~ (abc", "bad regex: missing closing parenthesis at offset 4"},
        {"~ ^/(?<n>a)(?<n>b)$", "bad regex: two named subpatterns have the same name"},
        {"~ [z-a]", "bad regex: range out of order in character class at offset 3"},
    };
    for (size_t i = 0; i < N(bad); i++) {
        struct pt_router_route routes[] = {
            {.name = "ok", PATHS("/fine")},
            {.name = "bad", .paths = &bad[i].pattern, .npaths = 1},
        };
        struct pt_router *r = build(routes, 2);
        ok(r == NULL && diag_errors == 1, "\"%s\" is rejected", bad[i].pattern);
        ok(diag_has("E 1 0: ") && diag_has(bad[i].message), "... with \"%s\"", bad[i].message);
        pt_router_free(r);
    }

    /* every problem is reported, with route and path indexes */
    const char *many17 = "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p}/{q}";
    struct pt_router_route routes[] = {
        {.name = "r0", PATHS("/ok", "/bad/{", "nope")},
        {.name = "r1", PATHS("/x"), METHODS("GET", "BAD METHOD", "")},
        {.name = "r2", PATHS("/x"), HOSTS("a.com:8080", "a.*.com", "*.")},
        {.name = "r3", PATHS("/x"), HEADERS({"Bad Name", "1"}, {"X-Ok", NULL})},
        {.name = "r4"},
        {.name = "r5", .paths = &many17, .npaths = 1},
    };
    struct pt_router *r = build(routes, N(routes));
    ok(r == NULL, "build fails on errors");
    is_int(diag_errors, 11, "every problem reported");
    ok(diag_has("E 0 1: path pattern \"/bad/{\": '{' without a matching '}'"), "route 0 path 1");
    ok(diag_has("E 0 2: path pattern \"nope\": must start with '/' or '~'"), "route 0 path 2");
    ok(diag_has("E 1 -1: invalid method \"BAD METHOD\""), "bad method");
    ok(diag_has("E 1 -1: invalid method \"\""), "empty method");
    ok(diag_has("E 2 -1: host \"a.com:8080\": a host must not include a port"), "host port");
    ok(diag_has("E 2 -1: host \"a.*.com\": a wildcard host must look like"), "bad wildcard");
    ok(diag_has("E 2 -1: host \"*.\": empty host"), "empty wildcard host");
    ok(diag_has("E 3 -1: header match \"Bad Name\": invalid header name"), "bad header name");
    ok(diag_has("E 3 -1: header match \"X-Ok\": no value"), "header without value");
    ok(diag_has("E 4 -1: route \"r4\" has no path pattern"), "no paths");
    ok(diag_has("E 5 0: path pattern \"/{a}/{b}/{c}") && diag_has("more than 16 captures"),
       "17 captures");

    char deep[64 * 2 + 8];
    size_t n = 0;
    for (int i = 0; i < 65; i++) {
        deep[n++] = '/';
        deep[n++] = 'a';
    }
    deep[n] = '\0';
    const char *deepp = deep;
    struct pt_router_route deep_route = {.name = "deep", .paths = &deepp, .npaths = 1};
    r = build(&deep_route, 1);
    ok(r == NULL && diag_has("too many segments"), "65 segments are too many");
    deep[n - 2] = '\0';
    r = build(&deep_route, 1);
    ok(r != NULL, "64 segments are fine");
    pt_router_free(r);

    ok(pt_router_build(routes, 1, NULL, NULL) == NULL, "a NULL diag callback is allowed");

    struct pt_router_route normalised = {.name = "n", PATHS("/a/./b//c/../{id}")};
    r = build(&normalised, 1);
    ok(r != NULL, "patterns are normalised");
    is_int(match(r, "GET", "", "/a/b/7"), 0, "/a/./b//c/../{id} is /a/b/{id}");
    is_str(cap("id"), "7", "capture");
    pt_router_free(r);

    r = build(NULL, 0);
    ok(r != NULL, "an empty router");
    is_int(match(r, "GET", "", "/"), -404, "matches nothing");
    pt_router_free(r);
    pt_router_free(NULL);
}

/* ---- shadowing ------------------------------------------------------------------ */

static size_t shadowed(struct pt_router *r, size_t *out)
{
    return r == NULL ? 999 : pt_router_shadowed(r, out);
}

static void test_shadowed(void)
{
    size_t out[16];
    struct pt_router_route same_exact[] = {
        {.name = "a", PATHS("/x")},
        {.name = "b", PATHS("/x"), METHODS("GET")},
    };
    struct pt_router *r = build(same_exact, 2);
    is_int(shadowed(r, out), 1, "same exact path, earlier route with no constraint");
    is_int(out[0], 1, "the later one");
    is_int(diag_warnings, 1, "one warning");
    ok(diag_has("W 1 -1: route \"b\" can never match: route \"a\" always wins"), "warning text");
    is_int(match(r, "GET", "", "/x"), 0, "and indeed a wins");
    is_str(pt_router_shadow_reason(r, 1), "route \"b\" can never match: route \"a\" always wins",
           "the reason is kept for the admin API");
    ok(pt_router_shadow_reason(r, 0) == NULL && pt_router_shadow_reason(r, 9) == NULL,
       "no reason for a route that can match, or none at all");
    pt_router_free(r);

    struct pt_router_route narrower_first[] = {
        {.name = "a", PATHS("/x"), METHODS("GET")},
        {.name = "b", PATHS("/x")},
    };
    r = build(narrower_first, 2);
    is_int(shadowed(r, out), 0, "earlier route narrower on methods: not shadowed");
    is_int(match(r, "POST", "", "/x"), 1, "the later one still matches POST");
    pt_router_free(r);

    struct pt_router_route methods_superset[] = {
        {.name = "a", PATHS("/x"), METHODS("GET", "POST", "PURGE")},
        {.name = "b", PATHS("/x"), METHODS("PURGE", "GET")},
        {.name = "c", PATHS("/x"), METHODS("GET", "LINK")},
    };
    r = build(methods_superset, 3);
    is_int(shadowed(r, out), 1, "method superset shadows, partial overlap does not");
    is_int(out[0], 1, "b");
    pt_router_free(r);

    struct pt_router_route same_shape[] = {
        {.name = "prefix", PATHS("/p/*")},        {.name = "rest", PATHS("/p/{rest*}")},
        {.name = "id", PATHS("/u/{id}")},         {.name = "name", PATHS("/u/{name}")},
        {.name = "re", PATHS("~ ^/r$")},          {.name = "re2", PATHS("~ ^/r$")},
        {.name = "more-specific", PATHS("/p/x")}, {.name = "deeper", PATHS("/p/{x}/*")},
    };
    r = build(same_shape, N(same_shape));
    is_int(shadowed(r, out), 3, "identical shapes are shadowed; more specific ones are not");
    ok(out[0] == 1 && out[1] == 3 && out[2] == 5, "rest, name, re2");
    pt_router_free(r);

    struct pt_router_route hosts[] = {
        {.name = "wild", PATHS("/h"), HOSTS("*.ex.com")},
        {.name = "api", PATHS("/h"), HOSTS("api.ex.com", "b.a.ex.com")},
        {.name = "subwild", PATHS("/h"), HOSTS("*.a.ex.com")},
        {.name = "apex", PATHS("/h"), HOSTS("ex.com")},
        {.name = "any", PATHS("/h")},
        {.name = "exact", PATHS("/g"), HOSTS("api.ex.com")},
        {.name = "wider", PATHS("/g"), HOSTS("*.ex.com")},
        {.name = "same", PATHS("/g"), HOSTS("API.EX.COM")},
    };
    r = build(hosts, N(hosts));
    is_int(shadowed(r, out), 3, "hosts covered by an earlier wildcard or an equal name");
    ok(out[0] == 1 && out[1] == 2 && out[2] == 7, "api, subwild, same");
    pt_router_free(r);

    struct pt_router_route headers[] = {
        {.name = "x1", PATHS("/h"), HEADERS({"X", "1"})},
        {.name = "x1y2", PATHS("/h"), HEADERS({"y", "2"}, {"x", "1"})},
        {.name = "y2", PATHS("/h"), HEADERS({"Y", "2"})},
        {.name = "x2", PATHS("/h"), HEADERS({"X", "2"})},
    };
    r = build(headers, N(headers));
    is_int(shadowed(r, out), 1, "a route requiring more headers is shadowed");
    is_int(out[0], 1, "x1y2");
    pt_router_free(r);

    struct pt_router_route multi[] = {
        {.name = "a", PATHS("/x")},       {.name = "b", PATHS("/x", "/y")},
        {.name = "c", PATHS("/y")},       {.name = "d", PATHS("/y", "/x")},
        {.name = "e", PATHS("/x", "/z")},
    };
    r = build(multi, N(multi));
    is_int(shadowed(r, out), 2, "every pattern must be shadowed");
    ok(out[0] == 2 && out[1] == 3, "c (by b) and d (by a and b), but not b nor e");
    ok(diag_has("W 3 -1: route \"d\" can never match: routes \"b\", \"a\" always win"),
       "names every shadowing route");
    pt_router_free(r);

    struct pt_router_route never[] = {
        {.name = "all", PATHS("/*")},
        {.name = "regex", PATHS("~ ^/a")},
        {.name = "param", PATHS("/{x}")},
        {.name = "exact", PATHS("/a")},
    };
    r = build(never, N(never));
    is_int(shadowed(r, out), 0, "conservative: broader patterns do not shadow narrower ones");
    is_int(diag_warnings, 0, "no warnings");
    pt_router_free(r);
}

/* ---- explain -------------------------------------------------------------------- */

static void test_explain(void)
{
    struct pt_router_route routes[] = {
        {.name = "path", PATHS("/other")},
        {.name = "host", PATHS("/e/{id}"), HOSTS("a.com", "*.b.com")},
        {.name = "header", PATHS("/e/1"), HEADERS({"X-Api-Version", "2"})},
        {.name = "header-missing", PATHS("/e/1"), HEADERS({"X-Gone", "1"})},
        {.name = "method", PATHS("/nope", "/e/*"), METHODS("POST", "PUT")},
        {.name = "winner", PATHS("/e/{id}")},
        {.name = "loser", PATHS("/e/*")},
        {.name = "shadow", PATHS("/e/{x}")},
    };
    struct pt_router *r = build(routes, N(routes));
    struct hdr h = {"X-Api-Version", "3"};
    struct hdrs hs = {&h, 1};
    struct pt_router_request req = {PT_STR_LIT("GET"), PT_STR_LIT("c.com"), PT_STR_LIT("/e/1"),
                                    get_header, &hs};
    struct pt_router_explain_entry e[N(routes)];
    struct pt_router_match m;
    pt_router_explain(r, &req, &m, e);
    is_int(m.status, 200, "explain fills the match");
    is_int(m.route, 5, "winner");
    is_str(m.ncaptures ? m.captures[0].name.ptr : NULL, "id", "with captures");
    static const struct {
        enum pt_router_verdict v;
        ssize_t path;
        const char *detail;
    } want[] = {
        {PT_ROUTER_LOST_PATH, -1, "no path pattern matched"},
        {PT_ROUTER_LOST_HOST, 0, "host must be one of: a.com, *.b.com"},
        {PT_ROUTER_LOST_HEADER, 0, "header X-Api-Version differs"},
        {PT_ROUTER_LOST_HEADER, 0, "header X-Gone is missing"},
        {PT_ROUTER_LOST_METHOD, 1, "method must be one of: POST, PUT"},
        {PT_ROUTER_WON, 0, "parameterised match"},
        {PT_ROUTER_LOST_PRIORITY, 0, "route \"winner\" won"},
        {PT_ROUTER_LOST_PRIORITY, 0, "route \"winner\" won"},
    };
    for (size_t i = 0; i < N(want); i++) {
        is_int(e[i].route, i, "entry %zu is route %zu", i, i);
        is_str(pt_router_verdict_name(e[i].verdict), pt_router_verdict_name(want[i].v),
               "route %s: verdict", routes[i].name);
        is_int(e[i].path, want[i].path, "route %s: pattern index", routes[i].name);
        is_str(e[i].detail, want[i].detail, "route %s: detail", routes[i].name);
    }
    size_t sh[8];
    is_int(pt_router_shadowed(r, sh), 1, "shadow is shadowed");

    req.method = PT_STR_LIT("DELETE");
    req.path = PT_STR_LIT("/e/1/2");
    pt_router_explain(r, &req, &m, e);
    is_int(m.status, 200, "DELETE /e/1/2 goes to the prefix route");
    is_int(e[4].verdict, PT_ROUTER_LOST_METHOD, "method route lost on method");
    is_int(e[6].verdict, PT_ROUTER_WON, "loser won this time");
    is_str(e[6].detail, "prefix match", "prefix detail");

    is_str(pt_router_verdict_name(PT_ROUTER_WON), "won", "verdict name won");
    is_str(pt_router_verdict_name(PT_ROUTER_LOST_PATH), "path", "verdict name path");
    is_str(pt_router_verdict_name(PT_ROUTER_LOST_HOST), "host", "verdict name host");
    is_str(pt_router_verdict_name(PT_ROUTER_LOST_METHOD), "method", "verdict name method");
    is_str(pt_router_verdict_name(PT_ROUTER_LOST_HEADER), "header", "verdict name header");
    is_str(pt_router_verdict_name(PT_ROUTER_LOST_PRIORITY), "priority", "verdict name priority");
    is_str(pt_router_verdict_name(PT_ROUTER_VERDICT_COUNT), "?", "verdict name out of range");
    pt_router_free(r);
}

static void test_has_capture(void)
{
    is_int(pt_router_pattern_has_capture("/a/{id}", "id"), 1, "param");
    is_int(pt_router_pattern_has_capture("/a/{id}", "x"), 0, "absent");
    is_int(pt_router_pattern_has_capture("/a/{rest*}", "rest"), 1, "rest");
    is_int(pt_router_pattern_has_capture("/a/{rest*}", "rest*"), 0, "the star is not in the name");
    is_int(pt_router_pattern_has_capture("/a/*", "rest"), 0, "anonymous wildcard");
    is_int(pt_router_pattern_has_capture("~ ^/(?<user>[^/]+)$", "user"), 1, "regex named group");
    is_int(pt_router_pattern_has_capture("~ ^/([^/]+)$", "1"), 0, "unnamed group");
    is_int(pt_router_pattern_has_capture("/a/{id", "id"), -1, "invalid pattern");
    is_int(pt_router_pattern_has_capture("~ (", "id"), -1, "invalid regex");
    is_int(pt_router_pattern_has_capture(NULL, "id"), -1, "NULL pattern");
}

/* ---- scale ------------------------------------------------------------------------- */

static void test_10k(void)
{
    enum { NR = 10000 };
    struct pt_router_route *routes = calloc(NR, sizeof(*routes));
    char(*paths)[64] = calloc(NR, 64);
    const char **pp = calloc(NR, sizeof(*pp));
    for (int i = 0; i < NR; i++) {
        switch (i % 5) {
        case 0:
            snprintf(paths[i], 64, "/svc%d/items", i);
            break;
        case 1:
            snprintf(paths[i], 64, "/svc%d/items/{id}", i - 1);
            break;
        case 2:
            snprintf(paths[i], 64, "/svc%d/files/{rest*}", i - 2);
            break;
        case 3:
            snprintf(paths[i], 64, "/api/v1/res%d", i);
            break;
        default:
            snprintf(paths[i], 64, "/api/v1/res%d/*", i - 1);
            break;
        }
        pp[i] = paths[i];
        routes[i].paths = &pp[i];
        routes[i].npaths = 1;
        routes[i].data = (void *)(uintptr_t)(i + 1);
    }
    struct pt_router *r = build(routes, NR);
    ok(r != NULL && diag_errors == 0 && diag_warnings == 0, "10,000 routes build cleanly");
    cross_check = false;
    int bad = 0;
    char path[128];
    for (int i = 0; i < NR; i += 5) {
        snprintf(path, sizeof(path), "/svc%d/items", i);
        bad += match(r, "GET", "", path) != i || last.data != (void *)(uintptr_t)(i + 1);
        snprintf(path, sizeof(path), "/svc%d/items/abc%d", i, i);
        bad += match(r, "GET", "", path) != i + 1;
        char want[32];
        snprintf(want, sizeof(want), "abc%d", i);
        bad += strcmp(cap("id"), want) != 0;
        snprintf(path, sizeof(path), "/svc%d/files/a/b", i);
        bad += match(r, "GET", "", path) != i + 2 || strcmp(cap("rest"), "a/b") != 0;
        snprintf(path, sizeof(path), "/api/v1/res%d", i + 3);
        bad += match(r, "GET", "", path) != i + 3;
        snprintf(path, sizeof(path), "/api/v1/res%d/x/y", i + 3);
        bad += match(r, "GET", "", path) != i + 4;
        snprintf(path, sizeof(path), "/api/v1/res%d/x", i + 2); /* no such resource */
        bad += match(r, "GET", "", path) != -404;
        snprintf(path, sizeof(path), "/svc%d/other", i);
        bad += match(r, "GET", "", path) != -404;
    }
    is_int(bad, 0, "every one of 14,000 lookups among 10,000 routes is right");
    cross_check = true;
    is_int(match(r, "GET", "", "/api/v1/res9998/q"), 9999, "cross-checked with explain too");
    pt_router_free(r);
    free(routes);
    free(paths);
    free(pp);
}

/* ---- threads ------------------------------------------------------------------------ */

static struct pt_router *shared;

static void *thread_main(void *arg)
{
    intptr_t bad = 0;
    char path[64];
    for (int i = 0; i < 5000; i++) {
        int k = (i + (int)(intptr_t)arg) % 100;
        snprintf(path, sizeof(path), "/r/%d/x%d", k, k);
        struct pt_router_request req = {PT_STR_LIT("GET"), PT_STR_LIT(""), pt_str_cstr(path), NULL,
                                        NULL};
        struct pt_router_match m;
        pt_router_match(shared, &req, &m);
        char want[16];
        snprintf(want, sizeof(want), "x%d", k);
        bad += m.status != 200 || m.route != (size_t)(k % 2) || m.ncaptures != 1 ||
               !pt_str_eq(m.captures[0].value, pt_str_cstr(want));
    }
    pt_router_thread_cleanup();
    return (void *)bad;
}

static void test_threads(void)
{
    struct pt_router_route routes[] = {
        {.name = "even", PATHS("~ ^/r/[0-9]*[02468]/(?<v>[a-z0-9]+)$")},
        {.name = "odd", PATHS("~ ^/r/[0-9]*[13579]/(?<v>[a-z0-9]+)$")},
    };
    shared = build(routes, 2);
    pthread_t t[4];
    for (intptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thread_main, (void *)i);
    intptr_t bad = 0;
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        bad += (intptr_t)rv;
    }
    is_int(bad, 0, "4 threads matching regex routes concurrently");
    pt_router_free(shared);
}

static void test_regex_budget(void)
{
    struct pt_router_route routes[] = {
        {.name = "evil", PATHS("~ ^(a+)+$")},
        {.name = "all", PATHS("/*")},
    };
    struct pt_router *r = build(routes, 2);
    char path[64];
    memset(path, 'a', 40);
    path[40] = '!';
    path[41] = '\0';
    is_int(match(r, "GET", "", path), -404, "catastrophic backtracking ends (as no match)");
    pt_router_free(r);
}

/* With allocation failures injected, a build either fails cleanly or gives a working router. */
static void test_alloc_failures(void)
{
    struct pt_router_route routes[] = {
        {.name = "a", PATHS("/a/{id}", "/a/b", "~ ^/re/(?<x>.)$"), METHODS("GET", "PURGE")},
        {.name = "b",
         PATHS("/a/*", "/c/{rest*}"),
         HOSTS("*.ex.com", "x.com"),
         HEADERS({"X-A", "1"})},
        {.name = "c", PATHS("/a/b"), METHODS("PURGE")},
        {.name = "d",
         PATHS("/d/1", "/d/2", "/d/3", "/d/4", "/d/5", "/d/6", "/d/7", "/d/8", "/d/9", "/d/10",
               "/d/{n}/x")},
    };
    int built = 0, bad = 0;
    for (unsigned pct = 1; pct <= 4; pct *= 2) {
        pt__fail_alloc_percent = pct;
        for (int i = 0; i < 200; i++) {
            struct pt_router *r = pt_router_build(routes, N(routes), NULL, NULL);
            if (r == NULL)
                continue;
            built++;
            pt__fail_alloc_percent = 0;
            bad += match(r, "GET", "", "/a/7") != 0 || match(r, "GET", "", "/d/9") != 3;
            pt__fail_alloc_percent = pct;
            pt_router_free(r);
        }
    }
    pt__fail_alloc_percent = 0;
    ok(built > 0 && built < 600, "with 1-4%% of allocations failing, %d of 600 builds succeeded",
       built);
    is_int(bad, 0, "and those routers work");
}

int main(void)
{
    test_kinds();
    test_priority_classes();
    test_priority_within();
    test_backtracking();
    test_405();
    test_hosts();
    test_headers();
    test_captures();
    test_invalid();
    test_shadowed();
    test_explain();
    test_has_capture();
    test_10k();
    test_threads();
    test_regex_budget();
    test_alloc_failures();
    is_int(explain_disagreements, 0, "explain agreed with match every time");
    pt_router_thread_cleanup();
    return done_testing();
}
