/*
 * The CORS decision (cors_headers): which Access-Control-* fields a
 * response gets for an origin, a preflight's request method and headers,
 * under each option, as the Fetch standard's CORS protocol wants them.
 * Options come from real configurations, so the parsing is tested too.
 */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../../src/plugins/cors.c"
#include "config/config.h"
#include "proxy/route.h"

static struct pt_snapshot *snap;

/* The cors state of a one-route configuration with these plugin options (NULL on error). */
static const struct cors *conf(const char *opts)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "services: {s: {targets: [\"127.0.0.1:1\"]}}\n"
             "routes: [{name: r, match: {paths: [/]}, service: s, plugins: {cors: %s}}]\n",
             opts);
    pt_snapshot_unref(snap);
    struct pt_diag d;
    pt_diag_init(&d);
    snap = pt_config_load_buffer("t.yaml", "/tmp", text, strlen(text), &d);
    for (size_t i = 0; i < d.n; i++) {
        char *m = pt_diag_format(&d.entries[i]);
        note("%s", m);
        free(m);
    }
    pt_diag_free(&d);
    if (snap == NULL)
        return NULL;
    const struct pt_plugin_instance *in =
        pt_plugin_chain_find(&snap->routes[0]->chain, &pt_plugin_cors);
    return in != NULL ? in->state : NULL;
}

/* The error for these options ("LINE:COL: message"), or "" when it loads. */
static const char *error_of(const char *opts)
{
    static char out[512];
    char text[2048];
    snprintf(text, sizeof(text),
             "services: {s: {targets: [\"127.0.0.1:1\"]}}\n"
             "routes: [{name: r, match: {paths: [/]}, service: s, plugins: {cors: %s}}]\n",
             opts);
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_snapshot *s = pt_config_load_buffer("t.yaml", "/tmp", text, strlen(text), &d);
    out[0] = '\0';
    if (d.nerrors > 0 && d.n > 0)
        snprintf(out, sizeof(out), "%d:%d: %s", d.entries[0].line, d.entries[0].col,
                 d.entries[0].message);
    pt_diag_free(&d);
    pt_snapshot_unref(s);
    return out;
}

/* The answer as "Name: value|Name: value" (fields in the order given). */
static const char *answer(const struct cors *c, const char *origin, bool preflight,
                          const char *acrm, const char *acrh)
{
    static char out[2048];
    struct pt_h1_header hs[CORS_MAX_OUT];
    size_t n = cors_headers(c, origin ? pt_str_cstr(origin) : PT_STR_NULL, preflight,
                            acrm ? pt_str_cstr(acrm) : PT_STR_NULL,
                            acrh ? pt_str_cstr(acrh) : PT_STR_NULL, hs);
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(out + k, sizeof(out) - k, "%s%.*s: %.*s", i ? "|" : "",
                              PT_STR_FMT(hs[i].name), PT_STR_FMT(hs[i].value));
    return out;
}

static void test_defaults(void)
{
    const struct cors *c = conf("{}");
    ok(c != NULL, "{} loads");
    if (c == NULL)
        return;
    is_str(answer(c, NULL, false, NULL, NULL), "", "no Origin: nothing (and no Vary for *)");
    is_str(answer(c, "https://a.example", false, NULL, NULL), "Access-Control-Allow-Origin: *",
           "any origin: *");
    is_str(answer(c, "https://a.example", true, "PUT", "X-A, Content-Type"),
           "Access-Control-Allow-Origin: *|"
           "Access-Control-Allow-Methods: GET, HEAD, PUT, PATCH, POST, DELETE|"
           "Access-Control-Allow-Headers: X-A, Content-Type",
           "preflight: default methods, requested headers reflected, no max age");
    is_str(answer(c, "https://a.example", true, "GET", NULL),
           "Access-Control-Allow-Origin: *|"
           "Access-Control-Allow-Methods: GET, HEAD, PUT, PATCH, POST, DELETE",
           "preflight without requested headers");
    is_str(answer(c, "null", false, NULL, NULL), "Access-Control-Allow-Origin: *",
           "null origin under * without credentials");
}

static void test_list(void)
{
    const struct cors *c =
        conf("{origins: [\"https://App.Example.com:443\", \"http://b.test:8080\"],"
             " methods: [GET, POST], headers: [Content-Type],"
             " expose: [X-Request-Id, X-Total], max_age: 10m}");
    ok(c != NULL, "list loads");
    if (c == NULL)
        return;
    is_str(answer(c, "https://app.example.com", false, NULL, NULL),
           "Vary: Origin|Access-Control-Allow-Origin: https://app.example.com|"
           "Access-Control-Expose-Headers: X-Request-Id, X-Total",
           "listed origin (configured in another case, with its default port)");
    is_str(answer(c, "http://b.test:8080", false, NULL, NULL),
           "Vary: Origin|Access-Control-Allow-Origin: http://b.test:8080|"
           "Access-Control-Expose-Headers: X-Request-Id, X-Total",
           "second origin with its port");
    is_str(answer(c, "http://b.test", false, NULL, NULL), "Vary: Origin",
           "another port is another origin");
    is_str(answer(c, "https://evil.example", false, NULL, NULL), "Vary: Origin",
           "unlisted origin: no CORS fields");
    is_str(answer(c, "https://app.example.com.evil", false, NULL, NULL), "Vary: Origin",
           "suffix is not a match");
    is_str(answer(c, NULL, false, NULL, NULL), "Vary: Origin", "no Origin: Vary only");
    is_str(answer(c, "https://app.example.com", true, "DELETE", "X-Other"),
           "Vary: Origin|Access-Control-Allow-Origin: https://app.example.com|"
           "Access-Control-Allow-Methods: GET, POST|Access-Control-Allow-Headers: Content-Type|"
           "Access-Control-Max-Age: 600",
           "preflight: configured lists, not the requested ones; max age in seconds");
    is_str(answer(c, "https://evil.example", true, "GET", NULL), "Vary: Origin",
           "preflight from an unlisted origin: nothing");
}

static void test_credentials(void)
{
    const struct cors *c = conf("{origins: [\"*\"], credentials: true, methods: [\"*\"],"
                                " headers: [\"*\"], max_age: 30}");
    ok(c != NULL, "credentials loads");
    if (c == NULL)
        return;
    is_str(answer(c, "https://a.example", false, NULL, NULL),
           "Vary: Origin|Access-Control-Allow-Origin: https://a.example|"
           "Access-Control-Allow-Credentials: true",
           "* with credentials reflects the origin");
    is_str(answer(c, "null", false, NULL, NULL), "Vary: Origin", "but never the null origin");
    is_str(
        answer(c, "https://a.example", true, "PATCH", "X-A"),
        "Vary: Origin|Access-Control-Allow-Origin: https://a.example|"
        "Access-Control-Allow-Credentials: true|Access-Control-Allow-Methods: PATCH|"
        "Access-Control-Allow-Headers: X-A|Access-Control-Max-Age: 30",
        "wildcards reflect the request under credentials (the Fetch standard reads * literally)");

    c = conf("{methods: [\"*\"], headers: [\"*\"], expose: [\"*\"]}");
    ok(c != NULL, "wildcards without credentials load");
    if (c == NULL)
        return;
    is_str(answer(c, "https://a.example", true, "PATCH", "X-A"),
           "Access-Control-Allow-Origin: *|Access-Control-Allow-Methods: *|"
           "Access-Control-Allow-Headers: *",
           "wildcards kept without credentials");
    is_str(answer(c, "https://a.example", false, NULL, NULL),
           "Access-Control-Allow-Origin: *|Access-Control-Expose-Headers: *", "expose *");

    c = conf("{origins: [\"null\", \"https://x.test\"], credentials: true}");
    ok(c != NULL, "explicit null loads");
    if (c != NULL)
        is_str(answer(c, "null", false, NULL, NULL),
               "Vary: Origin|Access-Control-Allow-Origin: null|"
               "Access-Control-Allow-Credentials: true",
               "an explicitly listed null origin is allowed");
}

static void test_errors(void)
{
    is_str(
        error_of("{origins: [\"https://a.test/\"]}"),
        "2:80: origins: \"https://a.test/\" is not an origin: write scheme://host[:port] without "
        "a path (e.g. https://app.example.com), \"null\" or \"*\"",
        "a path in an origin");
    is_str(error_of("{origins: [a.test]}"),
           "2:80: origins: \"a.test\" is not an origin: write scheme://host[:port] without a path "
           "(e.g. https://app.example.com), \"null\" or \"*\"",
           "no scheme");
    is_str(error_of("{origins: []}"),
           "2:79: origins: the list is empty (no origin would be allowed)", "empty list");
    is_str(error_of("{methods: [\"GET POST\"]}"), "2:80: methods: \"GET POST\" is not a valid name",
           "method with a space");
    is_str(error_of("{credentials: true, expose: [\"*\"]}"),
           "2:97: expose: \"*\" does not work with credentials: true (the Fetch standard reads it "
           "as a header name); list the headers",
           "expose * with credentials");
    is_str(error_of("{max_age: soon}"), "2:79: max_age: expected a number", "bad max_age");
    is_str(error_of("{origin: [\"*\"]}"),
           "2:70: unknown key \"origin\" in cors (did you mean \"origins\"?)", "typo");
}

int main(void)
{
    test_defaults();
    test_list();
    test_credentials();
    test_errors();
    pt_snapshot_unref(snap);
    return done_testing();
}
