/*
 * Plugin options: each plugin's mistakes are reported at their line and
 * column with a useful message, good options load; and the header
 * operations of the transforms (remove → set → add) and the JSON
 * Content-Type test.
 */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "config/config.h"
#include "plugins/headers.h"
#include "plugins/plugin.h"
#include "plugins/transform.h"
#include "proxy/route.h"

static char text[4096];

/* A route with `plugins: {NAME: OPTS}` on its own line 5 (column 7 is the name). */
static const char *with(const char *name, const char *opts)
{
    snprintf(text, sizeof(text),
             "services: {s: {targets: [\"127.0.0.1:1\"]}}\n"
             "routes:\n"
             "  - name: r\n"
             "    match: {paths: [/]}\n"
             "    service: s\n"
             "    plugins:\n"
             "      %s: %s\n",
             name, opts);
    return text;
}

/* First error as "LINE:COL: message", or "" when the configuration loads. */
static const char *first_error(const char *yaml)
{
    static char out[512];
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_snapshot *s = pt_config_load_buffer("t.yaml", "/tmp", yaml, strlen(yaml), &d);
    out[0] = '\0';
    if (d.nerrors > 0 && d.n > 0)
        snprintf(out, sizeof(out), "%d:%d: %s", d.entries[0].line, d.entries[0].col,
                 d.entries[0].message);
    pt_diag_free(&d);
    pt_snapshot_unref(s);
    return out;
}

#define LOADS(name, opts)       is_str(first_error(with(name, opts)), "", "%s %s loads", name, opts)
#define FAILS(name, opts, want) is_str(first_error(with(name, opts)), want, "%s %s", name, opts)

static void test_ip_restriction(void)
{
    LOADS("ip-restriction", "{allow: [10.0.0.0/8, \"2001:db8::/32\", 127.0.0.1]}");
    LOADS("ip-restriction", "{deny: [\"::1\"]}");
    FAILS("ip-restriction", "{}",
          "7:23: ip-restriction: set allow, deny or both (an empty rule would let everyone in)");
    FAILS("ip-restriction", "{allow: [10.0.0.0/33]}",
          "7:32: allow: \"10.0.0.0/33\" is not an IP address or CIDR block (e.g. 10.0.0.0/8, "
          "2001:db8::/32)");
    FAILS("ip-restriction", "{deny: 10.0.0.1}", "7:30: deny: expected a list, got a scalar");
    FAILS("ip-restriction", "{alow: []}",
          "7:24: unknown key \"alow\" in ip-restriction (did you mean \"allow\"?)");
}

static void test_bot_detection(void)
{
    LOADS("bot-detection", "{}");
    LOADS("bot-detection", "{deny: [\"^curl/\", \"(?i)bad\"], allow: [good], builtin: false}");
    FAILS("bot-detection", "{deny: [\"ok\", \"a(b\"]}",
          "7:40: deny: invalid regular expression: missing closing parenthesis");
    FAILS("bot-detection", "{builtin: maybe}",
          "7:32: builtin: expected true or false, got \"maybe\"");
}

static void test_request_size_limit(void)
{
    LOADS("request-size-limit", "{max_body_bytes: 1m}");
    LOADS("request-size-limit", "{max_body_bytes: 0}");
    FAILS("request-size-limit", "{}",
          "7:27: missing required key \"max_body_bytes\" in "
          "request-size-limit");
    FAILS("request-size-limit", "",
          "7:26: missing required key \"max_body_bytes\" in "
          "request-size-limit");
    FAILS("request-size-limit", "{max_body_bytes: lots}",
          "7:44: max_body_bytes: expected a number");
}

static void test_transforms(void)
{
    LOADS("request-transform", "{set: {X-A: \"1\", X-N: 2}, add: {X-B: [a, b]}, remove: [Cookie],"
                               " remove_fields: [a.b, c], rename_fields: {d: e}}");
    LOADS("response-transform", "{set: {Content-Type: text/plain}}");
    FAILS("request-transform", "{set: {Content-Length: \"5\"}}",
          "7:33: set: Content-Length is managed by the gateway (framing and connection fields "
          "cannot be changed)");
    FAILS("request-transform", "{remove: [Host]}",
          "7:36: remove: Host cannot be changed here; use the route's preserve_host or the "
          "service's host");
    LOADS("response-transform", "{remove: [Host]}");
    FAILS("response-transform", "{add: {\"X Y\": a}}",
          "7:36: add: \"X Y\" is not a valid header name");
    FAILS("response-transform", "{add: {X-A: \"a\\nb\"}}",
          "7:39: add: header values may not contain control characters");
    FAILS("response-transform", "{add: {X-A: }}",
          "7:39: add: X-A needs a value (write \"\" for an empty one)");
    FAILS("response-transform", "{add: {X-A: {b: c}}}",
          "7:39: add: expected a string or a list of strings, got a map");
    FAILS("request-transform", "{remove_fields: [\"a..b\"]}",
          "7:43: remove_fields: \"a..b\": the path has an empty segment (\"a..b\", or a leading "
          "or trailing dot)");
    FAILS("request-transform", "{remove_fields: [a], rename_fields: {a: b}}",
          "7:63: rename_fields: \"a\": this path is already edited (by remove_fields or "
          "rename_fields)");
    FAILS("request-transform", "{rename_fields: [a]}",
          "7:42: rename_fields: expected a map of paths to new names, got a list");
    FAILS("request-transform", "{rename_fields: {a: \"\"}}",
          "7:46: rename_fields: the new name must not be empty");
}

static void test_access_log(void)
{
    LOADS("access-log", "{}");
    LOADS("access-log", "{format: combined, path: stderr}");
    FAILS("access-log", "{format: xml}",
          "7:28: format: unknown value \"xml\" (expected one of: json, combined)");
    FAILS("access-log", "{path: /nonexistent-dir/a.log}",
          "7:26: path: /nonexistent-dir/a.log: cannot open: No such file or directory");
    FAILS("access-log", "{path: \"\"}",
          "7:26: path: must not be empty (use stderr or a file name)");
}

static void test_unknown_plugin(void)
{
    FAILS("ip-restrict", "{}",
          "7:7: unknown plugin \"ip-restrict\" (did you mean \"ip-restriction\"?)");
}

/* ---- header operations ---- */

static const char *show(const struct pt_h1_header *hs, size_t n)
{
    static char out[1024];
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(out + k, sizeof(out) - k, "%s%.*s=%.*s", i ? "|" : "",
                              PT_STR_FMT(hs[i].name), PT_STR_FMT(hs[i].value));
    return out;
}

static void test_header_ops(void)
{
    const char *yaml =
        with("request-transform",
             "{set: {X-Env: prod, X-Multi: [1, 2]}, add: {X-Tag: [a, b], X-Env: extra},"
             " remove: [x-secret, X-Env]}");
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_snapshot *s = pt_config_load_buffer("t.yaml", "/tmp", yaml, strlen(yaml), &d);
    pt_diag_free(&d);
    ok(s != NULL, "loads");
    if (s == NULL)
        return;
    extern const struct pt_plugin_ops pt_plugin_request_transform;
    const struct pt_plugin_instance *in =
        pt_plugin_chain_find(&s->routes[0]->chain, &pt_plugin_request_transform);
    const struct pt_transform *t = in->state;
    struct pt_arena a;
    pt_arena_init(&a);
    struct pt_h1_header orig[] = {
        {PT_STR_LIT("Accept"), PT_STR_LIT("*/*")},  {PT_STR_LIT("X-Secret"), PT_STR_LIT("s1")},
        {PT_STR_LIT("x-env"), PT_STR_LIT("dev")},   {PT_STR_LIT("X-Tag"), PT_STR_LIT("orig")},
        {PT_STR_LIT("X-SECRET"), PT_STR_LIT("s2")}, {PT_STR_LIT("X-Multi"), PT_STR_LIT("0")},
    };
    struct pt_h1_header *hs = orig;
    size_t n = PT_ARRAY_SIZE(orig);
    ok(pt_hdr_ops_apply(&t->hdr, &a, &hs, &n) == 0, "apply");
    is_str(show(hs, n),
           "Accept=*/*|X-Tag=orig|X-Env=prod|X-Multi=1|X-Multi=2|X-Tag=a|X-Tag=b|X-Env=extra",
           "remove (any case), set replaces every value, add appends");
    is_str(show(orig, PT_ARRAY_SIZE(orig)),
           "Accept=*/*|X-Secret=s1|x-env=dev|X-Tag=orig|X-SECRET=s2|X-Multi=0",
           "the original array is untouched");
    ok(t->json == NULL, "no JSON edits: bodies stream");
    pt_arena_destroy(&a);
    pt_snapshot_unref(s);
}

static void test_json_type(void)
{
    ok(pt_hdr_is_json_type(PT_STR_LIT("application/json")), "application/json");
    ok(pt_hdr_is_json_type(PT_STR_LIT("Application/JSON; charset=utf-8")), "case, parameters");
    ok(pt_hdr_is_json_type(PT_STR_LIT("application/problem+json")), "+json suffix");
    ok(pt_hdr_is_json_type(PT_STR_LIT("application/vnd.api+json ;x=1")), "vendor +json");
    ok(!pt_hdr_is_json_type(PT_STR_LIT("text/json")), "text/json is not");
    ok(!pt_hdr_is_json_type(PT_STR_LIT("application/jsonp")), "jsonp is not");
    ok(!pt_hdr_is_json_type(PT_STR_LIT("application/x-www-form-urlencoded")), "forms are not");
    ok(!pt_hdr_is_json_type(PT_STR_LIT("+json")), "a bare suffix is not");
    ok(!pt_hdr_is_json_type(PT_STR_NULL), "empty is not");
    struct pt_h1_header gz[] = {{PT_STR_LIT("Content-Type"), PT_STR_LIT("application/json")},
                                {PT_STR_LIT("Content-Encoding"), PT_STR_LIT("gzip")}};
    ok(!pt_hdr_body_is_json(gz, 2), "gzip'd JSON cannot be edited");
    ok(pt_hdr_body_is_json(gz, 1), "plain JSON can");
}

int main(void)
{
    test_ip_restriction();
    test_bot_detection();
    test_request_size_limit();
    test_transforms();
    test_access_log();
    test_unknown_plugin();
    test_header_ops();
    test_json_type();
    return done_testing();
}
