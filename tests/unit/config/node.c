/*
 * YAML -> node tree: positions, scalars (raw and expanded), duplicate and
 * non-scalar keys, aliases (and their blow-up), limits, JSON input, and the
 * tree -> JSON conversion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "test.h"
#include "core/arena.h"
#include "config/diag.h"
#include "config/node.h"

static const char *fake_env(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "PORT") == 0)
        return "9001";
    if (strcmp(name, "TOKEN") == 0)
        return "s3cret";
    return NULL;
}

static const struct pt_conf_env env = {fake_env, NULL};

struct parsed {
    struct pt_arena a;
    struct pt_diag d;
    struct pt_conf_node *root;
    int rc;
};

static void parse(struct parsed *p, const char *text)
{
    pt_arena_init(&p->a);
    pt_diag_init(&p->d);
    p->rc = pt_conf_parse(&p->a, "t.yaml", text, strlen(text), &env, &p->d, &p->root);
}

static void done(struct parsed *p)
{
    pt_diag_free(&p->d);
    pt_arena_destroy(&p->a);
}

/* The formatted diagnostic i ("t.yaml:L:C: msg"), in a static buffer. */
static const char *diag_line(const struct parsed *p, size_t i)
{
    static char buf[512];
    if (i >= p->d.n)
        return "(none)";
    char *s = pt_diag_format(&p->d.entries[i]);
    snprintf(buf, sizeof(buf), "%s", s ? s : "(nomem)");
    free(s);
    return buf;
}

static bool diag_has(const struct parsed *p, const char *prefix)
{
    for (size_t i = 0; i < p->d.n; i++) {
        char *s = pt_diag_format(&p->d.entries[i]);
        bool hit = s != NULL && strncmp(s, prefix, strlen(prefix)) == 0;
        free(s);
        if (hit)
            return true;
    }
    return false;
}

static void test_positions(void)
{
    struct parsed p;
    parse(&p, "server:\n"
              "  listen:\n"
              "    - \"0.0.0.0:8080\"\n"
              "    - address: 127.0.0.1:9000\n"
              "  workers: 4\n"
              "# comment\n"
              "routes: [ {name: a}, 'b' ]\n");
    is_int(p.rc, 0, "parses");
    is_int(p.d.n, 0, "no diagnostics");
    const struct pt_conf_node *r = p.root;
    ok(r != NULL && r->kind == PT_CONF_MAP, "root is a map");
    is_int(r->line, 1, "root line");
    is_int(r->col, 1, "root col");
    is_int(r->map.n, 2, "two top-level keys");
    const struct pt_conf_node *server = pt_conf_map_get(r, "server");
    is_int(server->line, 2, "server value starts on line 2");
    is_int(server->col, 3, "server value col 3");
    is_int(r->map.pairs[0].key->line, 1, "key server line");
    is_int(r->map.pairs[0].key->col, 1, "key server col");
    const struct pt_conf_node *listen = pt_conf_map_get(server, "listen");
    ok(listen->kind == PT_CONF_SEQ && listen->seq.n == 2, "listen is a list of 2");
    is_int(listen->seq.items[0]->line, 3, "first item line");
    is_int(listen->seq.items[0]->col, 7, "first item col (the quote)");
    ok(listen->seq.items[0]->scalar.quoted, "quoted");
    is_str(listen->seq.items[0]->scalar.value, "0.0.0.0:8080", "quoted value");
    const struct pt_conf_node *addr = pt_conf_map_get(listen->seq.items[1], "address");
    is_int(addr->line, 4, "address line");
    is_int(addr->col, 16, "address col");
    ok(!addr->scalar.quoted, "plain");
    const struct pt_conf_node *workers = pt_conf_map_get(server, "workers");
    is_int(workers->line, 5, "workers line");
    is_int(workers->col, 12, "workers col");
    const struct pt_conf_node *routes = pt_conf_map_get(r, "routes");
    is_int(routes->line, 7, "flow seq line");
    is_int(routes->col, 9, "flow seq col");
    is_int(routes->seq.items[0]->col, 11, "flow map col");
    is_int(routes->seq.items[1]->col, 22, "single-quoted col");
    ok(routes->seq.items[1]->scalar.quoted, "single-quoted is quoted");
    is_int(r->weight, 17, "weight counts every node, keys included");
    done(&p);
}

static void test_scalars(void)
{
    struct parsed p;
    parse(&p, "a: ${PORT}\n"
              "b: \"${TOKEN}\"\n"
              "c: x-$${PORT}\n"
              "d: !!str 42\n"
              "e: |\n  block ${PORT}\n"
              "f: ~\n"
              "g:\n"
              "h: ''\n"
              "${PORT}: key\n");
    is_int(p.rc, 0, "parses");
    is_int(p.d.n, 0, "no diagnostics: %s", diag_line(&p, 0));
    const struct pt_conf_node *a = pt_conf_map_get(p.root, "a");
    is_str(a->scalar.raw, "${PORT}", "raw keeps ${PORT}");
    is_str(a->scalar.value, "9001", "value expanded");
    is_int(a->scalar.len, 4, "expanded length");
    const struct pt_conf_node *b = pt_conf_map_get(p.root, "b");
    is_str(b->scalar.value, "s3cret", "quoted scalars expand too");
    is_str(pt_conf_map_get(p.root, "c")->scalar.value, "x-${PORT}", "$${ escapes");
    is_str(pt_conf_map_get(p.root, "c")->scalar.raw, "x-$${PORT}", "raw keeps the escape");
    ok(pt_conf_map_get(p.root, "d")->scalar.quoted, "!!str is a string");
    is_str(pt_conf_map_get(p.root, "e")->scalar.value, "block 9001\n", "block scalar");
    ok(pt_conf_map_get(p.root, "e")->scalar.quoted, "block scalar is a string");
    ok(pt_conf_is_null(pt_conf_map_get(p.root, "f")), "~ is null");
    ok(pt_conf_is_null(pt_conf_map_get(p.root, "g")), "nothing is null");
    ok(!pt_conf_is_null(pt_conf_map_get(p.root, "h")), "'' is an empty string, not null");
    ok(pt_conf_map_get(p.root, "${PORT}") != NULL, "keys are not expanded");
    ok(pt_conf_is_null(NULL), "a missing node is null");
    done(&p);
}

static void test_env_errors(void)
{
    struct parsed p;
    parse(&p, "a: ${NOPE}\n"
              "b: \"x ${NOPE2}\"\n"
              "c: >\n  folded\n  ${NOPE3}\n"
              "d: ok ${PORT} ${NOPE4:-}\n");
    is_int(p.rc, 0, "unset variables do not stop the parse");
    is_int(p.d.nerrors, 3, "three errors");
    ok(diag_has(&p, "t.yaml:1:4: environment variable NOPE is not set"), "plain: %s",
       diag_line(&p, 0));
    ok(diag_has(&p, "t.yaml:2:7: environment variable NOPE2 is not set"), "quoted: %s",
       diag_line(&p, 1));
    ok(diag_has(&p, "t.yaml:3:4: environment variable NOPE3"), "folded: at the scalar's start: %s",
       diag_line(&p, 2));
    ok(pt_conf_map_get(p.root, "a")->scalar.invalid, "marked invalid");
    ok(!pt_conf_map_get(p.root, "d")->scalar.invalid, "a default makes it valid");
    done(&p);
}

static void test_duplicates(void)
{
    struct parsed p;
    parse(&p, "a: 1\nb: 2\na: 3\nc: {x: 1, x: 2, y: 3}\n");
    is_int(p.rc, 0, "duplicates do not stop the parse");
    is_int(p.d.nerrors, 2, "two duplicates");
    is_str(diag_line(&p, 0), "t.yaml:4:11: duplicate key \"x\" (first defined at line 4, column 5)",
           "inner duplicate");
    is_str(diag_line(&p, 1), "t.yaml:3:1: duplicate key \"a\" (first defined at line 1, column 1)",
           "outer duplicate at the second one");
    is_int(p.root->map.n, 3, "the duplicate is dropped");
    is_str(pt_conf_map_get(p.root, "a")->scalar.value, "1", "the first one stays");
    is_int(pt_conf_map_get(p.root, "c")->map.n, 2, "inner map keeps x and y");
    done(&p);

    parse(&p, "? [a, b]\n: 1\n{x: 1}: 2\nok: 3\n");
    is_int(p.rc, 0, "non-scalar keys do not stop the parse");
    is_int(p.d.nerrors, 2, "two bad keys");
    is_str(diag_line(&p, 0), "t.yaml:1:3: map keys must be scalars, not a list", "list key");
    is_str(diag_line(&p, 1), "t.yaml:3:1: map keys must be scalars, not a map", "map key");
    is_int(p.root->map.n, 1, "only the good pair stays");
    done(&p);

    parse(&p, "base: &b {x: 1}\nother:\n  <<: *b\n");
    ok(diag_has(&p, "t.yaml:3:3: YAML merge keys (<<) are not supported"), "merge keys: %s",
       diag_line(&p, 0));
    done(&p);
}

static void test_aliases(void)
{
    struct parsed p;
    parse(&p, "defaults: &d\n  connect: 1s\n  read: 2s\n"
              "a: *d\n"
              "b: &s hello\n"
              "c: *s\n"
              "d: *nope\n");
    is_int(p.rc, 0, "parses");
    is_int(p.d.nerrors, 1, "one error (unknown alias)");
    is_str(diag_line(&p, 0), "t.yaml:7:4: unknown alias *nope (anchors must be defined before use)",
           "unknown alias");
    const struct pt_conf_node *a = pt_conf_map_get(p.root, "a");
    ok(a->kind == PT_CONF_MAP && a->map.n == 2, "alias to a map");
    is_int(a->line, 4, "alias has its own line");
    is_int(a->col, 4, "alias has its own col");
    is_str(pt_conf_map_get(a, "read")->scalar.value, "2s", "shared content");
    is_int(pt_conf_map_get(a, "read")->line, 3, "children keep the anchor's positions");
    is_str(pt_conf_map_get(p.root, "c")->scalar.value, "hello", "alias to a scalar");
    done(&p);

    /* billion laughs: 9 levels of 9 references = 9^9 nodes if expanded */
    char doc[2048];
    size_t n = (size_t)snprintf(doc, sizeof(doc), "l0: &l0 [x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i <= 9; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n,
                              "l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n",
                              i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    parse(&p, doc);
    is_int(p.rc, -1, "billion laughs is rejected");
    ok(p.d.n == 1 && strstr(diag_line(&p, 0), "configuration too large: aliases expand it") != NULL,
       "%s", diag_line(&p, 0));
    ok(p.d.n == 1 && p.d.entries[0].line > 1, "with a position");
    done(&p);

    /* anchors may be redefined (the latest wins), and many anchors stay fast */
    char big[40000];
    size_t m = 0;
    for (int i = 0; i < 1000; i++)
        m += (size_t)snprintf(big + m, sizeof(big) - m, "k%d: &a%d v%d\n", i, i, i);
    m +=
        (size_t)snprintf(big + m, sizeof(big) - m, "r1: *a7\nk7b: &a7 again\nr2: *a7\nr3: *a999\n");
    parse(&p, big);
    is_int(p.rc, 0, "1000 anchors");
    is_str(pt_conf_map_get(p.root, "r1")->scalar.value, "v7", "alias before the redefinition");
    is_str(pt_conf_map_get(p.root, "r2")->scalar.value, "again", "alias after it: the latest");
    is_str(pt_conf_map_get(p.root, "r3")->scalar.value, "v999", "the last anchor");
    done(&p);

    /* a few levels are fine */
    parse(&p, "a: &a [1, 2, 3]\nb: &b [*a, *a, *a]\nc: [*b, *b]\n");
    is_int(p.rc, 0, "modest aliasing is fine");
    is_int(p.root->weight, 1 + 3 + 4 + (1 + 3 * 4) + (1 + 2 * 13), "weight counts expanded nodes");
    done(&p);
}

static void test_errors(void)
{
    struct parsed p;
    parse(&p, "a: [1, 2\nb: 3\n");
    is_int(p.rc, -1, "syntax error");
    is_int(p.d.nerrors, 1, "one error");
    ok(strncmp(diag_line(&p, 0), "t.yaml:2:2: invalid YAML: did not find expected ',' or ']'",
               52) == 0,
       "with libyaml's position: %s", diag_line(&p, 0));
    done(&p);

    parse(&p, "a: 1\n  b: 2\n");
    is_int(p.rc, -1, "bad indentation");
    ok(strncmp(diag_line(&p, 0), "t.yaml:2:4: invalid YAML: mapping values are not allowed", 56) ==
           0,
       "%s", diag_line(&p, 0));
    done(&p);

    parse(&p, "a: 1\n---\nb: 2\n");
    is_int(p.rc, -1, "two documents");
    is_str(diag_line(&p, 0), "t.yaml:2:1: only one YAML document is allowed (found a second '---')",
           "message");
    done(&p);

    parse(&p, "a: ok\nb: \xff\n");
    is_int(p.rc, -1, "invalid UTF-8");
    ok(strncmp(diag_line(&p, 0), "t.yaml:2:4: invalid YAML: invalid leading UTF-8 octet", 50) == 0,
       "%s", diag_line(&p, 0));
    done(&p);

    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 70; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    parse(&p, deep);
    is_int(p.rc, -1, "too deep");
    is_str(diag_line(&p, 0), "t.yaml:1:65: nesting is deeper than 64 levels", "depth message");
    done(&p);

    parse(&p, "a: !custom x\n");
    ok(diag_has(&p, "t.yaml:1:4: unsupported YAML tag \"!custom\""), "%s", diag_line(&p, 0));
    done(&p);

    parse(&p, "a: \"x\\0y\"\n");
    ok(diag_has(&p, "t.yaml:1:4: NUL characters are not allowed"), "%s", diag_line(&p, 0));
    done(&p);

    parse(&p, "");
    is_int(p.rc, 0, "empty input");
    ok(p.root == NULL, "no root");
    done(&p);

    parse(&p, "# only a comment\n");
    is_int(p.rc, 0, "comment only");
    ok(p.root == NULL, "no root");
    done(&p);

    parse(&p, "---\n");
    is_int(p.rc, 0, "empty document");
    ok(pt_conf_is_null(p.root), "null root");
    done(&p);
}

static void test_json_input(void)
{
    struct parsed p;
    parse(&p, "{\n"
              "\t\"server\": {\"listen\": [\"127.0.0.1:8080\"], \"workers\": 2},\n"
              "\t\"routes\": [{\"match\": {\"paths\": [\"/x\"]}, \"service\": \"s\"}]\n"
              "}\n");
    is_int(p.rc, 0, "JSON parses: %s", diag_line(&p, 0));
    const struct pt_conf_node *server = pt_conf_map_get(p.root, "server");
    ok(server != NULL && server->kind == PT_CONF_MAP, "server map");
    const struct pt_conf_node *w = pt_conf_map_get(server, "workers");
    is_int(w->line, 2, "workers line");
    is_int(w->col, 54, "workers col (a tab counts as one)");
    ok(!w->scalar.quoted, "JSON number is plain");
    ok(pt_conf_map_get(server, "listen")->seq.items[0]->scalar.quoted, "JSON string is quoted");
    done(&p);

    parse(&p, "{\"a\": 1, \"a\": 2}");
    is_int(p.d.nerrors, 1, "JSON duplicate keys are caught too");
    done(&p);
}

static void test_to_json(void)
{
    struct parsed p;
    parse(&p, "port: ${PORT}\n"
              "quoted: \"${PORT}\"\n"
              "n: 12\n"
              "q: \"12\"\n"
              "f: 0.5\n"
              "b: true\n"
              "nul: ~\n"
              "s: hello\n"
              "list: [1, two, {k: v}]\n"
              "alias: &x {y: 1}\n"
              "again: *x\n");
    is_int(p.rc, 0, "parses");
    json_t *raw = pt_conf_node_to_json(p.root, true);
    json_t *exp = pt_conf_node_to_json(p.root, false);
    char *rs = json_dumps(raw, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *es = json_dumps(exp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    is_str(
        rs,
        "{\"port\":\"${PORT}\",\"quoted\":\"${PORT}\",\"n\":12,\"q\":\"12\",\"f\":0.5,\"b\":true,"
        "\"nul\":null,\"s\":\"hello\",\"list\":[1,\"two\",{\"k\":\"v\"}],\"alias\":{\"y\":1},"
        "\"again\":{\"y\":1}}",
        "raw JSON");
    is_str(es,
           "{\"port\":9001,\"quoted\":\"9001\",\"n\":12,\"q\":\"12\",\"f\":0.5,\"b\":true,"
           "\"nul\":null,\"s\":\"hello\",\"list\":[1,\"two\",{\"k\":\"v\"}],\"alias\":{\"y\":1},"
           "\"again\":{\"y\":1}}",
           "expanded JSON");
    free(rs);
    free(es);
    json_decref(raw);
    json_decref(exp);
    json_t *empty = pt_conf_node_to_json(NULL, true);
    ok(json_is_object(empty) && json_object_size(empty) == 0, "no tree: {}");
    json_decref(empty);
    done(&p);
}

static void test_pos_at(void)
{
    struct parsed p;
    parse(&p, "a: /x/{id}\nb: \"/é/{id}\"\nc: \"/\\t{id}\"\n");
    int line, col;
    pt_conf_node_pos_at(pt_conf_map_get(p.root, "a"), 3, &line, &col);
    ok(line == 1 && col == 7, "plain: offset 3 -> 1:7 (%d:%d)", line, col);
    pt_conf_node_pos_at(pt_conf_map_get(p.root, "b"), 4, &line, &col);
    ok(line == 2 && col == 8, "quoted with UTF-8: byte 4 -> 2:8 (%d:%d)", line, col);
    pt_conf_node_pos_at(pt_conf_map_get(p.root, "c"), 2, &line, &col);
    ok(line == 3 && col == 4, "with an escape: the scalar's start (%d:%d)", line, col);
    done(&p);
}

int main(void)
{
    test_positions();
    test_scalars();
    test_env_errors();
    test_duplicates();
    test_aliases();
    test_errors();
    test_json_input();
    test_to_json();
    test_pos_at();
    return done_testing();
}
