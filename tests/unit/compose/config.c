/*
 * `aggregate:` in the configuration (src/config/aggregate.c): a valid
 * composition compiles to the expected plan (dependencies, templates bound
 * to captures and calls, defaults), and every mistake is reported at its
 * line and column (unknown names, cycles, max_calls, reserved headers,
 * bodies that are not JSON...).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "compose/plan.h"
#include "config/config.h"
#include "proxy/route.h"
#include "upstream/service.h"

static struct pt_snapshot *load(const char *text, struct pt_diag *d)
{
    pt_diag_init(d);
    return pt_config_load_buffer("t.yaml", NULL, text, strlen(text), d);
}

static const char *entry(const struct pt_diag *d, size_t i)
{
    static char buf[700];
    if (i >= d->n)
        return "(none)";
    char *s = pt_diag_format(&d->entries[i]);
    snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "(nomem)");
    free(s);
    return buf;
}

#define HEAD                                                                                       \
    "services:\n"                                                                                  \
    "  orders: {targets: [\"127.0.0.1:9001\"]}\n"                                                  \
    "  users: {targets: [\"127.0.0.1:9002\"]}\n"                                                   \
    "routes:\n"                                                                                    \
    "  - name: details\n"                                                                          \
    "    match: {paths: [\"/api/orders/{id}/details\"]}\n"                                         \
    "    aggregate:\n"

static void test_valid(void)
{
    struct pt_diag d;
    struct pt_snapshot *s =
        load(HEAD "      timeout: 800ms\n"
                  "      merge: shallow\n"
                  "      expose_headers: [Cache-Control]\n"
                  "      forward_headers: [Authorization]\n"
                  "      calls:\n"
                  "        - {key: order, service: orders, path: \"/orders/{id}\"}\n"
                  "        - key: customer\n"
                  "          service: users\n"
                  "          method: POST\n"
                  "          path: \"/users/{order.customer_id}?v={query.v:-1}\"\n"
                  "          query: {expand: \"{query.expand}\", \"a b\": x}\n"
                  "          headers: {X-Order: \"{order.id}\"}\n"
                  "          body: {note: \"order {id}\"}\n"
                  "          forward_headers: [Accept-Language, authorization]\n"
                  "          timeout: 300ms\n"
                  "          fields: [name, address.city]\n"
                  "          fallback: {name: unknown}\n"
                  "        - {key: items, service: orders, path: \"/items\","
                  " optional: true, fallback: ~, max_body_bytes: 1k}\n",
             &d);
    for (size_t i = 0; i < d.n; i++)
        note("%s", entry(&d, i));
    ok(s == NULL && d.nerrors == 1, "one error: fallback with optional");
    ok(strstr(entry(&d, 0), "t.yaml:25:83:") != NULL && strstr(entry(&d, 0), "fallback") != NULL,
       "at the fallback: %s", entry(&d, 0));
    if (s != NULL)
        pt_snapshot_unref(s);
    pt_diag_free(&d);

    s = load(HEAD "      timeout: 800ms\n"
                  "      merge: shallow\n"
                  "      expose_headers: [Cache-Control]\n"
                  "      forward_headers: [Authorization]\n"
                  "      calls:\n"
                  "        - {key: order, service: orders, path: \"/orders/{id}\"}\n"
                  "        - key: customer\n"
                  "          service: users\n"
                  "          method: POST\n"
                  "          path: \"/users/{order.customer_id}?v={query.v:-1}\"\n"
                  "          query: {expand: \"{query.expand}\", \"a b\": x}\n"
                  "          headers: {X-Order: \"{order.id}\", Content-Type: text/plain}\n"
                  "          body: {note: \"order {id}\"}\n"
                  "          forward_headers: [Accept-Language, authorization]\n"
                  "          timeout: 300ms\n"
                  "          fields: [name, address.city]\n"
                  "          fallback: {name: unknown}\n"
                  "        - {key: items, service: orders, path: \"/items\", fallback: ~,"
                  " max_body_bytes: 1k}\n",
             &d);
    for (size_t i = 0; i < d.n; i++)
        note("%s", entry(&d, i));
    ok(s != NULL && d.nerrors == 0, "a valid aggregate");
    const struct pt_aggregate *a = s != NULL && s->nroutes == 1 ? s->routes[0]->aggregate : NULL;
    ok(a != NULL && s->routes[0]->service == NULL, "the route has an aggregate, no service");
    if (a != NULL) {
        is_int(a->timeout_ms, 800, "timeout");
        is_int(a->merge, PT_MERGE_SHALLOW, "merge");
        is_int(a->max_calls, 16, "max_calls default");
        is_int(a->ncalls, 3, "three calls");
        ok(a->nexpose == 1 && pt_str_eq_lit(a->expose[0], "Cache-Control"), "expose_headers");
        const struct pt_compose_call *o = &a->calls[0], *c = &a->calls[1], *i = &a->calls[2];
        ok(o->deps == 0 && c->deps == 1 && i->deps == 0, "customer depends on order");
        ok(o->method_id == PT_METHOD_GET && c->method_id == PT_METHOD_POST, "methods");
        ok(o->path.parts[1].src == PT_TPL_CAPTURE, "{id} is the capture");
        ok(c->path.parts[1].src == PT_TPL_RESULT && c->path.parts[1].call == 0,
           "{order.customer_id} reads call 0");
        is_int(c->nquery, 2, "query arguments");
        ok(c->nquery == 2 && pt_str_eq_lit(c->query[1].name, "a%20b") &&
               c->query[0].omit_if_missing && !c->query[1].omit_if_missing,
           "query names encoded; a lone placeholder may be left out");
        ok(c->nforward == 2 && pt_str_eq_lit(c->forward[0], "Authorization") &&
               pt_str_eq_lit(c->forward[1], "Accept-Language"),
           "forward_headers: the aggregate's, then the call's, without duplicates");
        ok(c->has_body && c->body_has_type, "body and its content type");
        ok(c->has_fallback && pt_str_eq_lit(c->fallback, "{\"name\":\"unknown\"}"),
           "fallback JSON");
        ok(i->has_fallback && pt_str_eq_lit(i->fallback, "null"), "fallback: ~ is null");
        is_int(c->timeout_ms, 300, "call timeout");
        is_int(o->timeout_ms, 0, "no call timeout by default");
        is_int(o->max_body_bytes, 4 << 20, "max_body_bytes default 4m");
        is_int(i->max_body_bytes, 1024, "max_body_bytes");
        ok(c->fields != NULL && c->fields->child != NULL, "fields");
    }
    if (s != NULL)
        pt_snapshot_unref(s);
    pt_diag_free(&d);
}

struct mistake {
    const char *yaml; /* after HEAD */
    const char *want; /* an entry starting with this */
};

static void test_mistakes(void)
{
    static const struct mistake m[] = {
        {"      calls:\n"
         "        - {key: order, service: orders, path: \"/orders/{idd}\"}\n",
         "t.yaml:9:57: path: unknown name \"idd\": not a call key of this aggregate nor a capture"},
        {"      calls:\n"
         "        - {key: order, service: orders, path: \"/o/{ordr.x}\"}\n"
         "        - {key: user, service: users, path: \"/u/{order.x}\"}\n",
         "t.yaml:9:52: path: unknown name \"ordr\""},
        {"      calls:\n"
         "        - {key: a, service: orders, path: \"/a/{c.x}\"}\n"
         "        - {key: b, service: orders, path: \"/b/{a.x}\"}\n"
         "        - {key: c, service: orders, path: \"/c/{b.x}\"}\n",
         "t.yaml:10:48: calls form a cycle (each reads the next): a -> c -> b -> a"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: \"/a/{a.x}\"}\n",
         "t.yaml:9:48: path: a call cannot use its own result"},
        {"      max_calls: 2\n"
         "      calls:\n"
         "        - {key: a, service: orders, path: /a}\n"
         "        - {key: b, service: orders, path: /b}\n"
         "        - {key: c, service: orders, path: /c}\n",
         "t.yaml:12:11: calls: 3 calls, more than max_calls (2)"},
        {"      calls:\n"
         "        - {key: a, service: order, path: /a}\n",
         "t.yaml:9:29: service: unknown service \"order\" (did you mean \"orders\"?)"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: /a, headers: {Host: x}}\n",
         "t.yaml:9:57: headers: Host is set by the gateway itself"},
        {"      forward_headers: [Content-Length]\n"
         "      calls:\n"
         "        - {key: a, service: orders, path: /a}\n",
         "t.yaml:8:25: forward_headers: Content-Length is set by the gateway itself"},
        {"      expose_headers: [Content-Type]\n"
         "      calls:\n"
         "        - {key: a, service: orders, path: /a}\n",
         "t.yaml:8:24: expose_headers: Content-Type is set by the gateway itself"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: /a, body: \"{\\\"x\\\": \\\"{id}\\\"\"}\n",
         "t.yaml:9:53: body: not JSON once its placeholders are filled"},
        {"      calls:\n"
         "        - {key: query, service: orders, path: /a}\n",
         "t.yaml:9:17: key: \"query\" is reserved"},
        {"      calls:\n"
         "        - {key: id, service: orders, path: /a}\n",
         "t.yaml:9:17: key: \"id\" is also a capture of the route's path"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: /a}\n"
         "        - {key: a, service: orders, path: /b}\n",
         "t.yaml:10:17: key: \"a\" is already used at line 9"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: \"/a/../b\"}\n",
         "t.yaml:9:43: path: must not contain '.' or '..' segments"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: \"/a/{id.x}\"}\n",
         "t.yaml:9:48: path: {id} is a capture of the route's path: it has no members"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: \"/a/{id\"}\n",
         "t.yaml:9:47: path: '{' starts a placeholder that is not closed"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: /a, method: get}\n",
         "t.yaml:9:55: method: \"get\" is not an upper-case method name"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: /a, fields: [\"x..y\"]}\n",
         "t.yaml:9:56: fields: \"x..y\" is not a member path"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: /a, timeout: 20s}\n",
         "t.yaml:9:56: warning: timeout: longer than the composition's timeout"},
        {"      calls: []\n", "t.yaml:8:14: calls: expected a list of at least one call"},
        {"      calls:\n"
         "        - {key: a, service: orders, path: /a, retries: 3}\n",
         "t.yaml:9:47: unknown key \"retries\" in routes.details.aggregate.calls[1]"},
        {"      merge: deep\n"
         "      calls:\n"
         "        - {key: a, service: orders, path: /a}\n",
         "t.yaml:8:14: merge: unknown value \"deep\" (expected one of: group, shallow)"},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        char text[2048];
        snprintf(text, sizeof(text), HEAD "%s", m[i].yaml);
        struct pt_diag d;
        struct pt_snapshot *s = load(text, &d);
        bool found = false;
        for (size_t k = 0; k < d.n && !found; k++)
            found = strncmp(entry(&d, k), m[i].want, strlen(m[i].want)) == 0;
        ok(found, "mistake %zu: %s", i + 1, m[i].want);
        if (!found)
            for (size_t k = 0; k < d.n; k++)
                note("got %s", entry(&d, k));
        bool warning_only = strstr(m[i].want, "warning:") != NULL;
        ok(warning_only ? s != NULL : s == NULL, "mistake %zu: %s", i + 1,
           warning_only ? "loads" : "does not load");
        if (s != NULL)
            pt_snapshot_unref(s);
        pt_diag_free(&d);
    }

    struct pt_diag d;
    struct pt_snapshot *s = load("services: {a: {targets: [\"127.0.0.1:1\"]}}\n"
                                 "routes:\n"
                                 "  - match: {paths: [/x]}\n"
                                 "    service: a\n"
                                 "    strip_prefix: /x\n"
                                 "    aggregate: {calls: [{key: k, service: a, path: /}]}\n",
                                 &d);
    ok(s == NULL &&
           strncmp(entry(&d, 0), "t.yaml:6:16: aggregate: a route has either a service", 51) == 0,
       "service and aggregate: %s", entry(&d, 0));
    pt_diag_free(&d);
    s = load("services: {a: {targets: [\"127.0.0.1:1\"]}}\n"
             "routes:\n"
             "  - match: {paths: [/x]}\n"
             "    strip_prefix: /x\n"
             "    aggregate: {calls: [{key: k, service: a, path: /}]}\n",
             &d);
    ok(s == NULL && strncmp(entry(&d, 0), "t.yaml:4:19: strip_prefix: has no effect", 40) == 0,
       "strip_prefix with aggregate: %s", entry(&d, 0));
    pt_diag_free(&d);
}

static void test_cycle_finder(void)
{
    uint64_t deps[4] = {0, 1, 2, 0};
    unsigned cyc[64];
    size_t len;
    ok(pt_compose_find_cycle(deps, 4, cyc, &len) == 0, "a chain has no cycle");
    deps[0] = 1u << 2; /* 0 needs 2, 2 needs 1, 1 needs 0 */
    ok(pt_compose_find_cycle(deps, 4, cyc, &len) == 1 && len == 3, "a cycle of three");
    uint64_t self[1] = {1};
    ok(pt_compose_find_cycle(self, 1, cyc, &len) == 1 && len == 1 && cyc[0] == 0, "a self-loop");
    uint64_t wide[64];
    for (unsigned i = 0; i < 64; i++)
        wide[i] = i > 0 ? (uint64_t)1 << (i - 1) : 0;
    ok(pt_compose_find_cycle(wide, 64, cyc, &len) == 0, "a chain of 64");
    wide[0] = (uint64_t)1 << 63;
    ok(pt_compose_find_cycle(wide, 64, cyc, &len) == 1 && len == 64, "a ring of 64");
    ok(pt_compose_request_header_reserved(PT_STR_LIT("X-Forwarded-For")) &&
           pt_compose_request_header_reserved(PT_STR_LIT("accept-encoding")) &&
           !pt_compose_request_header_reserved(PT_STR_LIT("Authorization")),
       "reserved request headers");
    ok(pt_compose_response_header_reserved(PT_STR_LIT("Content-Type")) &&
           !pt_compose_response_header_reserved(PT_STR_LIT("Set-Cookie")),
       "reserved response headers");
}

int main(void)
{
    test_valid();
    test_mistakes();
    test_cycle_finder();
    return done_testing();
}
