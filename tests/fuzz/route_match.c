/*
 * libFuzzer target for the route matcher (src/router/).
 *
 * Input: lines.  "pN PATTERN" adds a route with that path pattern and
 * constraint set N (a digit, see extra_constraints); any other line is a
 * request path, matched raw and, when valid, after pt_path_normalize, under
 * several method/host/header combinations, against a fixed set of routes
 * plus the input's.
 *
 * Invariants:
 *   - pt_router_pattern_has_capture() says -1 exactly for patterns the
 *     build rejects (the build then succeeds on the others);
 *   - status is 200, 404 or 405; a 200 names a route and carries its data;
 *     captures are at most PT_ROUTER_MAX_CAPTURES and lie inside the path;
 *   - pt_router_explain(), which tries every pattern without the trie,
 *     picks the same winner and status;
 *   - a route reported as shadowed never wins.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/path.h"
#include "router/router.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define MAX_EXTRA    32
#define MAX_REQUESTS 48
#define MAX_LINE     512

static const char *const get[] = {"GET"};
static const char *const get_post[] = {"GET", "POST"};
static const char *const purge[] = {"PURGE", "DELETE"};
static const char *const api_host[] = {"api.example.com"};
static const char *const wild_host[] = {"*.example.com", "other.test"};
static const struct pt_router_header_match v2[] = {{"X-Version", "2"}};

#define ROUTE(n, p, ...)                                                                           \
    {                                                                                              \
        .name = n, .paths = (const char *const[]){p}, .npaths = 1, __VA_ARGS__                     \
    }

static const struct pt_router_route fixed[] = {
    ROUTE("root", "/"),
    ROUTE("users", "/api/users", .methods = get_post, .nmethods = 2),
    ROUTE("user", "/api/users/{id}"),
    ROUTE("user-get", "/api/users/{id}", .methods = get, .nmethods = 1),
    ROUTE("user-files", "/api/users/{id}/files/{path*}"),
    ROUTE("api", "/api/*", .hosts = api_host, .nhosts = 1),
    ROUTE("api-any", "/api/*", .hosts = wild_host, .nhosts = 2),
    ROUTE("static", "/static/*"),
    ROUTE("v2", "/v/{a}/{b}", .headers = v2, .nheaders = 1),
    ROUTE("purge", "/cache/{key}", .methods = purge, .nmethods = 2),
    ROUTE("regex", "~ ^/re/(?<year>[0-9]{4})/(?<slug>[^/]+)$"),
    ROUTE("regex-get", "~ ^/(?<all>.*)x$", .methods = get, .nmethods = 1),
    ROUTE("slash", "/dir/"),
    ROUTE("deep", "/a/b/c/d/e/f/g"),
};
#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

/* Constraint sets for the input's routes, chosen by the digit after 'p'. */
static void extra_constraints(struct pt_router_route *rt, int n)
{
    switch (n % 5) {
    case 1:
        rt->methods = get;
        rt->nmethods = 1;
        break;
    case 2:
        rt->hosts = wild_host;
        rt->nhosts = 2;
        break;
    case 3:
        rt->headers = v2;
        rt->nheaders = 1;
        break;
    case 4:
        rt->methods = purge;
        rt->nmethods = 2;
        rt->hosts = api_host;
        rt->nhosts = 1;
        break;
    default:
        break;
    }
}

static bool header(void *ctx, struct pt_str name, struct pt_str *value)
{
    if (ctx != NULL && pt_str_case_eq(name, PT_STR_LIT("x-version"))) {
        *value = PT_STR_LIT("2");
        return true;
    }
    return false;
}

static void diag(void *ctx, bool is_error, size_t route, ssize_t path, const char *message)
{
    (void)ctx, (void)is_error, (void)route, (void)path;
    CHECK(message != NULL);
}

static void check_request(const struct pt_router *r, size_t nroutes, const bool *shadowed,
                          struct pt_str path, struct pt_router_explain_entry *entries)
{
    static const struct {
        const char *method, *host;
        bool v2;
    } combos[] = {
        {"GET", "api.example.com", false},
        {"POST", "www.EXAMPLE.com", true},
        {"PURGE", "", false},
        {"DELETE", "api.example.com", true},
    };
    for (size_t c = 0; c < sizeof(combos) / sizeof(combos[0]); c++) {
        struct pt_router_request req = {pt_str_cstr(combos[c].method), pt_str_cstr(combos[c].host),
                                        path, header, combos[c].v2 ? (void *)1 : NULL};
        struct pt_router_match m, m2;
        pt_router_match(r, &req, &m);
        CHECK(m.status == 200 || m.status == 404 || m.status == 405);
        CHECK(m.ncaptures <= PT_ROUTER_MAX_CAPTURES);
        if (m.status == 200) {
            CHECK(m.route < nroutes);
            CHECK(m.data == (void *)(uintptr_t)(m.route + 1));
            CHECK(!shadowed[m.route]);
        } else {
            CHECK(m.data == NULL && m.ncaptures == 0);
        }
        CHECK(m.status == 405 ? (m.allow_mask != 0 || m.nallow_other != 0) : m.allow_mask == 0);
        for (size_t i = 0; i < m.ncaptures; i++) {
            const struct pt_capture *cp = &m.captures[i];
            CHECK(cp->name.ptr != NULL && cp->name.len > 0);
            CHECK(cp->value.len == 0 || (cp->value.ptr >= path.ptr &&
                                         cp->value.ptr + cp->value.len <= path.ptr + path.len));
        }
        pt_router_explain(r, &req, &m2, entries);
        CHECK(m2.status == m.status && m2.route == m.route);
        size_t nwon = 0;
        for (size_t i = 0; i < nroutes; i++) {
            CHECK(entries[i].route == i && entries[i].detail != NULL);
            if (entries[i].verdict == PT_ROUTER_WON) {
                CHECK(i == m.route);
                nwon++;
            }
        }
        CHECK(nwon == (m.status == 200));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char lines[MAX_EXTRA + MAX_REQUESTS][MAX_LINE + 1];
    static const char *patterns[MAX_EXTRA];
    struct pt_router_route routes[NFIXED + MAX_EXTRA];
    struct pt_str requests[MAX_REQUESTS];
    size_t nextra = 0, nreq = 0, nlines = 0;

    memcpy(routes, fixed, sizeof(fixed));
    for (size_t i = 0; i < size && nlines < MAX_EXTRA + MAX_REQUESTS;) {
        const uint8_t *nl = memchr(data + i, '\n', size - i);
        size_t end = nl != NULL ? (size_t)(nl - data) : size, len = end - i;
        if (len > MAX_LINE)
            len = MAX_LINE;
        char *line = lines[nlines++];
        memcpy(line, data + i, len);
        line[len] = '\0';
        i = end + 1;
        if (len >= 3 && line[0] == 'p' && line[2] == ' ' && nextra < MAX_EXTRA) {
            if (strlen(line) != len) /* an embedded NUL: the pattern would be cut */
                continue;
            const char *pat = line + 3;
            int valid = pt_router_pattern_has_capture(pat, "id");
            CHECK(valid >= -1 && valid <= 1);
            if (valid < 0)
                continue;
            struct pt_router_route *rt = &routes[NFIXED + nextra];
            memset(rt, 0, sizeof(*rt));
            rt->name = line;
            patterns[nextra] = pat;
            rt->paths = &patterns[nextra];
            rt->npaths = 1;
            extra_constraints(rt, line[1]);
            nextra++;
        } else if (nreq < MAX_REQUESTS) {
            requests[nreq++] = pt_str_make(line, len);
        }
    }
    size_t n = NFIXED + nextra;
    for (size_t i = 0; i < n; i++)
        routes[i].data = (void *)(uintptr_t)(i + 1);

    struct pt_router *r = pt_router_build(routes, n, diag, NULL);
    CHECK(r != NULL); /* has_capture accepted every extra pattern */
    CHECK(pt_router_count(r) == n);
    bool shadowed[NFIXED + MAX_EXTRA] = {false};
    size_t sh[NFIXED + MAX_EXTRA];
    size_t nsh = pt_router_shadowed(r, sh);
    CHECK(nsh <= n);
    for (size_t i = 0; i < nsh; i++) {
        CHECK(sh[i] < n);
        shadowed[sh[i]] = true;
    }

    struct pt_router_explain_entry entries[NFIXED + MAX_EXTRA];
    char norm[MAX_LINE + 1];
    for (size_t i = 0; i < nreq; i++) {
        check_request(r, n, shadowed, requests[i], entries);
        ssize_t nn = pt_path_normalize(requests[i].ptr, requests[i].len, norm);
        if (nn > 0)
            check_request(r, n, shadowed, pt_str_make(norm, (size_t)nn), entries);
    }
    pt_router_free(r);
    pt_router_thread_cleanup();
    return 0;
}
