/*
 * Admin API without sockets: the YAML write-back round trip (what is read
 * back equals what was there, typing and ${NAME} included), tree edits, and
 * the session (partial input, pipelining, bodies, limits).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin/admin-int.h"
#include "config/config.h"
#include "config/node.h"
#include "config/snapshot.h"
#include "proxy/route.h"
#include "core/arena.h"
#include "test.h"

static const char *env_fn(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "X") == 0 ? "ex" : NULL;
}

static const struct pt_conf_env env = {env_fn, NULL};

static char *dump(const struct pt_conf_node *n, bool raw)
{
    json_t *j = pt_conf_node_to_json(n, raw);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return s;
}

/* text -> tree -> YAML -> tree: the same raw and expanded JSON. */
static void round_trip(const char *text, const char *what)
{
    struct pt_arena a;
    pt_arena_init(&a);
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_conf_node *t1 = NULL, *t2 = NULL;
    int rc = pt_conf_parse(&a, "in.yaml", text, strlen(text), &env, &d, &t1);
    char *yaml = NULL;
    size_t len = 0;
    int erc = rc == 0 ? pt_admin_emit_yaml(t1, &yaml, &len) : -1;
    int rc2 = erc == 0 ? pt_conf_parse(&a, "out.yaml", yaml, len, &env, &d, &t2) : -1;
    ok(rc == 0 && erc == 0 && rc2 == 0 && d.nerrors == 0, "%s: parses, emits, parses again", what);
    char *r1 = dump(t1, true), *r2 = dump(t2, true);
    char *e1 = dump(t1, false), *e2 = dump(t2, false);
    ok(r1 != NULL && r2 != NULL && strcmp(r1, r2) == 0, "%s: raw values kept", what);
    if (r1 == NULL || r2 == NULL || strcmp(r1, r2) != 0)
        note("before %s\n# after  %s\n# yaml:\n%s", r1, r2, yaml);
    ok(e1 != NULL && e2 != NULL && strcmp(e1, e2) == 0, "%s: expanded values and types kept", what);
    free(r1);
    free(r2);
    free(e1);
    free(e2);
    free(yaml);
    pt_diag_free(&d);
    pt_arena_destroy(&a);
}

static void test_round_trips(void)
{
    round_trip("a: 1\nb: [x, 'y', \"z\"]\nc: {d: e}\n", "simple");
    round_trip(
        "s: [\"yes\", \"true\", \"123\", \"1.5\", \"\", \"~\", \"null\", \"1e3\", \".inf\"]\n"
        "p: [yes, true, 123, 1.5, ~, null, 1e3]\n",
        "quoted lookalikes stay strings, plain ones stay typed");
    round_trip("e:\nf: ''\ng: []\nh: {}\n", "nulls and empties");
    round_trip(
        "r: [\"~ ^/a/(?<id>[0-9]+)$\", \"a: b\", \"#x\", \"x #y\", \"- x\", \"[x]\", \"{x}\", "
        "\"@x\", \"`x\", \"  lead\", \"trail  \", \"tab\\there\", \"ctl\\x01\", \"h\\u00e9llo\", "
        "\"it's\", \"q\\\"q\"]\n",
        "awkward strings");
    round_trip("env: ${X}\nq: \"${X}\"\nd: ${Y:-a b}\nlit: \"$${X}\"\nport: \"127.0.0.1:${X}\"\n",
               "${NAME} references");
    round_trip("block: |\n  line one\n  line two\nfolded: >\n  a\n  b\nkeep: |+\n  x\n\n",
               "block scalars");
    round_trip("base: &b {x: 1, y: [2, 3]}\nuse: *b\n", "aliases are written out");
    round_trip("\"quoted key\": 1\n\"123\": 2\n? complex key\n: 3\n", "keys");
    round_trip("- 1\n- - 2\n  - {a: [3]}\n", "a list at the top");
    round_trip("", "an empty document");
    round_trip("{\"routes\": [{\"name\": \"r\", \"match\": {\"paths\": [\"/a\"]}, \"n\": 10, "
               "\"f\": 0.25, \"b\": false, \"z\": null}]}\n",
               "JSON");
}

static struct pt_snapshot *load(const char *text)
{
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_config_options opts = {.workers_override = 1};
    struct pt_snapshot *s =
        pt_config_load_buffer_opts("t.yaml", "/tmp", text, strlen(text), &opts, &d);
    if (s == NULL)
        pt_diag_print(&d, stdout);
    pt_diag_free(&d);
    return s;
}

static const char cfg[] =
    "server: {listen: [\"127.0.0.1:1\"]}\n"
    "services:\n  a: {targets: [\"127.0.0.1:2\"]}\n  b: {targets: [\"127.0.0.1:3\"]}\n"
    "routes:\n"
    "  - {name: one, match: {paths: [/one]}, service: a}\n"
    "  - {match: {paths: [/two]}, service: b}\n";

static void test_edits(void)
{
    struct pt_snapshot *s = load(cfg);
    ok(s != NULL, "the test configuration loads");
    is_int(pt_admin_find(s, PT_ADMIN_ROUTES, "one"), 0, "route by name");
    is_int(pt_admin_find(s, PT_ADMIN_ROUTES, "route-2"), 1, "an unnamed route by its default name");
    is_int(pt_admin_find(s, PT_ADMIN_ROUTES, "nope"), -1, "unknown route");
    is_int(pt_admin_find(s, PT_ADMIN_SERVICES, "b"), 1, "service by name");
    is_int(pt_admin_find(s, PT_ADMIN_CONSUMERS, "x"), -1, "no consumers section");

    struct pt_arena a;
    pt_arena_init(&a);
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_conf_node *body;
    ok(pt_admin_parse_body(&a, PT_STR_LIT("{match: {paths: [/three]}, service: a}"), &d, &body) ==
           0,
       "a body parses");
    struct pt_conf_node *named = pt_admin_with_name(&a, body, "three");
    struct pt_conf_node *root = pt_admin_edit(&a, s->tree, PT_ADMIN_ROUTES, -1, "three", named);
    char *text;
    size_t len;
    ok(pt_admin_emit_yaml(root, &text, &len) == 0, "emit after adding a route");
    struct pt_snapshot *s2 = load(text);
    ok(s2 != NULL && s2->nroutes == 3 && strcmp(s2->routes[2]->name, "three") == 0,
       "the route is appended, named, and the result is valid");
    ok(s2 != NULL && strcmp(s2->routes[1]->name, "route-2") == 0, "the others are untouched");
    free(text);
    root = pt_admin_edit(&a, s->tree, PT_ADMIN_ROUTES, 0, "one", NULL);
    ok(pt_admin_emit_yaml(root, &text, &len) == 0, "emit after deleting a route");
    struct pt_snapshot *s3 = load(text);
    ok(s3 != NULL && s3->nroutes == 1 && strcmp(s3->routes[0]->name, "route-1") == 0,
       "deleted: the unnamed route is now route-1");
    free(text);
    ok(pt_admin_parse_body(&a, PT_STR_LIT("targets: [\"127.0.0.1:4\"]"), &d, &body) == 0,
       "a YAML service body");
    root = pt_admin_edit(&a, s->tree, PT_ADMIN_SERVICES, 1, "b", body);
    ok(pt_admin_emit_yaml(root, &text, &len) == 0 && strstr(text, "127.0.0.1:4") != NULL &&
           strstr(text, "127.0.0.1:3") == NULL,
       "a service replaced in place");
    free(text);
    root = pt_admin_edit(&a, NULL, PT_ADMIN_CONSUMERS, -1, "alice", named);
    ok(root != NULL && root->kind == PT_CONF_MAP && root->map.n == 1, "a section added to nothing");
    ok(pt_admin_parse_body(&a, PT_STR_LIT("{a: [}"), &d, &body) != 0 && d.nerrors > 0 &&
           d.entries[0].line == 1,
       "a bad body reports a position");
    pt_diag_free(&d);
    pt_arena_destroy(&a);
    pt_snapshot_unref(s);
    pt_snapshot_unref(s2);
    pt_snapshot_unref(s3);
}

/* ---- the session against a fake host ---- */

static struct pt_snapshot *cur;
static int applied;

static struct pt_snapshot *h_snap(void *ctx)
{
    (void)ctx;
    return pt_snapshot_ref(cur);
}

static void h_status(void *ctx, struct pt_admin_status *st)
{
    (void)ctx;
    memset(st, 0, sizeof(*st));
    st->config_version = 1 + (uint64_t)applied;
    st->workers = 1;
    st->ready = true;
}

static int h_apply(void *ctx, const char *text, size_t len, struct pt_diag *d)
{
    (void)ctx;
    struct pt_config_options opts = {.workers_override = 1};
    struct pt_snapshot *s =
        pt_config_load_buffer_opts("/secret/dir/portico.yaml", "/tmp", text, len, &opts, d);
    if (s == NULL)
        return -1;
    pt_snapshot_unref(cur);
    cur = s;
    applied++;
    return 0;
}

static int h_metrics(void *ctx, struct pt_buf *out)
{
    (void)ctx;
    return pt_buf_append(out, "m 1\n", 4, SIZE_MAX);
}

static const struct pt_admin_host host = {h_snap, h_status, h_apply, h_metrics};

/* Feed text in pieces of `piece` bytes; returns everything written (malloc'd). */
static char *converse(const char *text, size_t len, size_t piece, int *responses)
{
    struct pt_admin_api api = {&host, NULL};
    struct pt_admin_session s;
    pt_admin_session_init(&s);
    struct pt_buf out;
    pt_buf_init(&out);
    *responses = 0;
    for (size_t off = 0; off < len || off == 0;) {
        size_t n = len - off < piece ? len - off : piece;
        pt_buf_append(&s.in, text + off, n, SIZE_MAX);
        off += n;
        int r;
        while ((r = pt_admin_session_step(&api, &s, &out, off == len)) == 1) {
            (*responses)++;
            if (s.close)
                break;
        }
        if (s.close || off == len)
            break;
    }
    char *res = calloc(1, pt_buf_len(&out) + 1);
    if (pt_buf_len(&out) > 0)
        memcpy(res, pt_buf_head(&out), pt_buf_len(&out));
    pt_buf_free(&out);
    pt_admin_session_free(&s);
    return res;
}

static void test_session(void)
{
    cur = load(cfg);
    int n;
    static const char two[] = "GET /status HTTP/1.1\r\nHost: a\r\n\r\n"
                              "GET /routes/one HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t piece = 1; piece <= sizeof(two); piece += 7) {
        char *out = converse(two, sizeof(two) - 1, piece, &n);
        ok(n == 2 && strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
               strstr(out + 17, "HTTP/1.1 200 OK\r\n") != NULL && strstr(out, "\"one\"") != NULL,
           "two pipelined requests in pieces of %zu bytes", piece);
        free(out);
    }
    static const char put[] = "PUT /routes/new HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\n\r\n"
                              "{\"match\":{\"paths\":[\"/n\"]},\"service\":\"b\"}    ";
    char *out = converse(put, sizeof(put) - 1, 5, &n);
    ok(n == 1 && strncmp(out, "HTTP/1.1 201 Created\r\n", 22) == 0 &&
           strstr(out, "Location: /routes/new\r\n") != NULL,
       "PUT with a body split in pieces creates (201)");
    free(out);
    ok(cur->nroutes == 3, "and it was applied");
    static const char chunked[] =
        "PUT /routes/new HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "10\r\n{\"match\":{\"paths\r\n"
        "18\r\n\":[\"/m\"]},\"service\":\"a\"}\r\n0\r\n\r\n";
    out = converse(chunked, sizeof(chunked) - 1, 3, &n);
    ok(n == 1 && strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0, "chunked PUT replaces (200)");
    free(out);
    static const char bad[] = "PUT /config HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n"
                              "routes: [{bogus: 1}]";
    out = converse(bad, sizeof(bad) - 1, 1000, &n);
    ok(n == 1 && strncmp(out, "HTTP/1.1 400 ", 13) == 0 && strstr(out, "\"errors\"") != NULL &&
           strstr(out, "portico.yaml:1:") != NULL && strstr(out, "/secret/dir") == NULL,
       "an invalid configuration: 400 with FILE:LINE:COL errors, no directory");
    free(out);
    static const char big[] =
        "PUT /config HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999\r\n\r\n";
    out = converse(big, sizeof(big) - 1, 1000, &n);
    ok(n == 1 && strncmp(out, "HTTP/1.1 413 ", 13) == 0 && strstr(out, "Connection: close") != NULL,
       "a declared body over 16 MiB: 413 and close");
    free(out);
    static const char badchunk[] =
        "PUT /config HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "zz\r\n";
    out = converse(badchunk, sizeof(badchunk) - 1, 1000, &n);
    ok(n == 1 && strncmp(out, "HTTP/1.1 400 ", 13) == 0, "a bad chunk size: 400");
    free(out);
    static const char cut[] = "GET /status HTTP/1.1\r\nHost: a\r\n";
    out = converse(cut, sizeof(cut) - 1, 1000, &n);
    ok(n == 1 && strncmp(out, "HTTP/1.1 400 ", 13) == 0, "a request cut short by the close: 400");
    free(out);
    char *huge = malloc(70000);
    memcpy(huge, "GET / HTTP/1.1\r\nX: ", 19);
    memset(huge + 19, 'a', 70000 - 19);
    out = converse(huge, 70000, 4096, &n);
    ok(n == 1 && strncmp(out, "HTTP/1.1 431 ", 13) == 0, "a head over 64 KiB: 431");
    free(out);
    free(huge);
    static const char cont[] = "PUT /routes/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                               "Content-Length: 2\r\n\r\n";
    out = converse(cont, sizeof(cont) - 1, 1000, &n);
    ok(n == 1 && strncmp(out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 ", 38) == 0,
       "Expect: 100-continue is answered before the body (then the close cuts it: 400)");
    free(out);
    static const char head[] = "HEAD /metrics HTTP/1.0\r\n\r\n";
    out = converse(head, sizeof(head) - 1, 1000, &n);
    ok(n == 1 && strstr(out, "Content-Length: 4\r\n") != NULL &&
           strstr(out, "Connection: close\r\n\r\n") != NULL &&
           strcmp(strstr(out, "\r\n\r\n"), "\r\n\r\n") == 0,
       "HEAD: the length, no body; HTTP/1.0 closes");
    free(out);
    pt_snapshot_unref(cur);
}

int main(void)
{
    test_round_trips();
    test_edits();
    test_session();
    return done_testing();
}
