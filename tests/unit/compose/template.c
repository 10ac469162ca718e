/*
 * Composition templates: parsing (parts, errors and their offsets), filling
 * from every source, and the encoding of hostile values in each place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../../src/compose/template.c"

static struct pt_arena arena;

/* ---- a scope with fixed values ---- */

static json_t *results[4];

static bool cap(void *ctx, struct pt_str name, struct pt_str *out)
{
    (void)ctx;
    if (pt_str_eq_lit(name, "id")) {
        *out = PT_STR_LIT("42");
        return true;
    }
    if (pt_str_eq_lit(name, "evil")) {
        *out = PT_STR_LIT("../a?b#c d\"e\n");
        return true;
    }
    if (pt_str_eq_lit(name, "dots")) {
        *out = PT_STR_LIT("..");
        return true;
    }
    if (pt_str_eq_lit(name, "empty")) {
        *out = PT_STR_LIT("");
        return true;
    }
    return false;
}

static bool query(void *ctx, struct pt_str name, struct pt_str *out)
{
    (void)ctx;
    if (pt_str_eq_lit(name, "q")) {
        *out = PT_STR_LIT("a&b=c");
        return true;
    }
    return false;
}

static bool header(void *ctx, struct pt_str name, struct pt_str *out)
{
    (void)ctx;
    if (pt_str_case_eq_lit(name, "x-user")) {
        *out = PT_STR_LIT("ada");
        return true;
    }
    if (pt_str_case_eq_lit(name, "x-crlf")) {
        *out = PT_STR_LIT("a\r\nInjected: 1");
        return true;
    }
    return false;
}

static const json_t *result(void *ctx, unsigned call)
{
    (void)ctx;
    return call < 4 ? results[call] : NULL;
}

static const struct pt_tpl_scope scope = {NULL, cap, query, header, NULL, result};

/* Parse (must succeed) and bind NAME refs: "order" -> call 0, "user" -> call 1, else capture. */
static struct pt_tpl parse(const char *src, enum pt_tpl_kind kind)
{
    struct pt_tpl t;
    struct pt_tpl_error err;
    int rc = pt_tpl_parse(&arena, pt_str_cstr(src), kind, &t, &err);
    if (rc != 0) {
        note("parse of %s failed at %zu: %s", src, err.off, err.msg);
        memset(&t, 0, sizeof(t));
        return t;
    }
    for (size_t i = 0; i < t.nparts; i++) {
        struct pt_tpl_part *p = &t.parts[i];
        if (p->src != PT_TPL_REF)
            continue;
        if (pt_str_eq_lit(p->text, "order") || pt_str_eq_lit(p->text, "user")) {
            p->src = PT_TPL_RESULT;
            p->call = pt_str_eq_lit(p->text, "order") ? 0 : 1;
        } else {
            p->src = PT_TPL_CAPTURE;
        }
    }
    return t;
}

/* Fill; returns a static copy of the output (or "<rc>" on failure). */
static const char *fill_str(const char *src, enum pt_tpl_kind kind)
{
    static char buf[1024];
    struct pt_tpl t = parse(src, kind);
    struct pt_jbuf out;
    struct pt_tpl_failure f;
    pt_jbuf_init(&out);
    int rc = pt_tpl_fill(&t, &scope, &out, &f);
    if (rc != PT_TPL_OK)
        snprintf(buf, sizeof(buf), "<%d>", rc);
    else
        snprintf(buf, sizeof(buf), "%.*s", (int)out.len, out.p ? out.p : "");
    pt_jbuf_free(&out);
    return buf;
}

static int parse_error(const char *src, enum pt_tpl_kind kind, size_t *off)
{
    struct pt_tpl t;
    struct pt_tpl_error err;
    int rc = pt_tpl_parse(&arena, pt_str_cstr(src), kind, &t, &err);
    *off = err.off;
    return rc;
}

static void test_parse(void)
{
    struct pt_tpl t = parse("/orders/{id}/x?a={query.a:-1}&h={header.X-Y}", PT_TPL_PATH);
    is_int(t.nparts, 6, "parts: literal, ref, literal, query, literal, header");
    is_int(t.nrefs, 3, "three placeholders");
    ok(t.parts[1].src == PT_TPL_CAPTURE && t.parts[1].enc == PT_TPL_ENC_PATH, "{id} in the path");
    ok(t.parts[3].src == PT_TPL_QUERY_ARG && t.parts[3].enc == PT_TPL_ENC_QUERY &&
           t.parts[3].has_def && pt_str_eq_lit(t.parts[3].def, "1"),
       "{query.a:-1} after '?' is query-encoded, with its default");
    ok(t.parts[5].src == PT_TPL_HEADER_VAL && pt_str_eq_lit(t.parts[5].text, "X-Y"),
       "{header.X-Y}");
    is_int(t.parts[1].off, 8, "offset of the placeholder");
    is_int(t.parts[1].len, 4, "length of the placeholder");

    t = parse("/u/{order.items[2].id}", PT_TPL_PATH);
    ok(t.nparts == 2 && t.parts[1].nsteps == 3 && t.parts[1].steps[1].is_index &&
           t.parts[1].steps[1].index == 2 && pt_str_eq_lit(t.parts[1].steps[2].name, "id"),
       "dotted path with an index");

    t = parse("{\"a\": {order}, \"b\": \"x{id}y\", \"c\": {{}", PT_TPL_BODY);
    ok(t.nrefs == 2 && t.parts[1].enc == PT_TPL_ENC_JSON &&
           t.parts[3].enc == PT_TPL_ENC_JSON_STRING,
       "body: outside a string JSON, inside a string escaped");
    t = parse("{\"a\": \"q\\\"{id}\", \"b\": {id}}", PT_TPL_BODY);
    ok(t.nrefs == 2 && t.parts[1].enc == PT_TPL_ENC_JSON_STRING &&
           t.parts[3].enc == PT_TPL_ENC_JSON,
       "an escaped quote does not end the string");
    t = parse("{ \"x\": 1 }", PT_TPL_BODY);
    ok(t.nrefs == 0 && t.nparts == 1, "JSON braces are literal");
    t = parse("{consumer.metadata.plan}", PT_TPL_HEADER);
    ok(t.nparts == 1 && t.parts[0].src == PT_TPL_CONSUMER && t.parts[0].nsteps == 2, "consumer");
    t = parse("a b", PT_TPL_QUERY);
    ok(t.nparts == 1 && pt_str_eq_lit(t.parts[0].text, "a%20b"), "query literals are encoded");

    size_t off;
    ok(parse_error("orders/{id}", PT_TPL_PATH, &off) == -1 && off == 0, "path must start with /");
    ok(parse_error("/a/{id", PT_TPL_PATH, &off) == -1 && off == 3, "unclosed placeholder at '{'");
    ok(parse_error("/a/{id.}", PT_TPL_PATH, &off) == -1 && off == 7, "empty member at its place");
    ok(parse_error("/a/{id[x]}", PT_TPL_PATH, &off) == -1 && off == 6, "bad index");
    ok(parse_error("/a/{id[99999999999]}", PT_TPL_PATH, &off) == -1, "index too large");
    ok(parse_error("/a/{id x}", PT_TPL_PATH, &off) == -1 && off == 6, "space in a placeholder");
    ok(parse_error("/a/{query}", PT_TPL_PATH, &off) == -1, "{query} alone");
    ok(parse_error("/a/{query.}", PT_TPL_PATH, &off) == -1, "{query.} without a name");
    ok(parse_error("/a/{header.a b}", PT_TPL_PATH, &off) == -1, "bad header name");
    ok(parse_error("/a#b", PT_TPL_PATH, &off) == -1 && off == 2, "fragment in a path");
    ok(parse_error("/a b", PT_TPL_PATH, &off) == -1 && off == 2, "space in a path");
    ok(parse_error("/a/{1}", PT_TPL_PATH, &off) == -1 && off == 3, "literal { in a path");
    ok(parse_error("/a/{{", PT_TPL_PATH, &off) == -1, "{{ in a path");
    ok(parse_error("a\nb", PT_TPL_HEADER, &off) == -1 && off == 1, "newline in a header literal");
    ok(parse_error("{id:-a\nb}", PT_TPL_HEADER, &off) == -1, "control character in a default");
    ok(parse_error("", PT_TPL_BODY, &off) == 0, "an empty body template");
}

static void test_fill(void)
{
    is_str(fill_str("/orders/{id}", PT_TPL_PATH), "/orders/42", "capture");
    is_str(fill_str("/users/{order.customer_id}", PT_TPL_PATH), "/users/7", "result member");
    is_str(fill_str("/items/{order.items[1].id}", PT_TPL_PATH), "/items/b%2Fc", "array index");
    is_str(fill_str("/p/{order.price}", PT_TPL_PATH), "/p/19.99", "real in shortest form");
    is_str(fill_str("/p/{order.flag}", PT_TPL_PATH), "/p/true", "boolean");
    is_str(fill_str("/p/{order.items[0]}", PT_TPL_PATH), "/p/%7B%22id%22%3A1%7D",
           "an object as JSON text, encoded");
    is_str(fill_str("/p?ids={order.ids}", PT_TPL_PATH), "/p?ids=1%2C2%2C3",
           "an array of scalars joined with commas (encoded)");
    is_str(fill_str("/p/{order.nothing}", PT_TPL_PATH), "<1>", "missing member");
    is_str(fill_str("/p/{order.items[9].id}", PT_TPL_PATH), "<1>", "index out of range");
    is_str(fill_str("/p/{order.customer_id.x}", PT_TPL_PATH), "<1>", "member of a number");
    is_str(fill_str("/p/{order.none}", PT_TPL_PATH), "<1>", "null is missing in a path");
    is_str(fill_str("/p/{user}", PT_TPL_PATH), "<1>", "a call without result");
    is_str(fill_str("/p/{user:-anon}", PT_TPL_PATH), "/p/anon", "default");
    is_str(fill_str("/p/{user:-a b}", PT_TPL_PATH), "/p/a%20b", "defaults are encoded too");
    is_str(fill_str("/p?x={query.q}", PT_TPL_PATH), "/p?x=a%26b%3Dc", "query value encoded");
    is_str(fill_str("/p?x={query.nope:-}", PT_TPL_PATH), "/p?x=", "empty default");
    is_str(fill_str("/p?x={query.nope}", PT_TPL_PATH), "<1>", "missing query argument");
    is_str(fill_str("Bearer {header.X-User}", PT_TPL_HEADER), "Bearer ada", "header");
    is_str(fill_str("{consumer.name:-none}", PT_TPL_HEADER), "none", "no consumer yet");
    is_str(fill_str("{consumer.name}", PT_TPL_HEADER), "<1>", "consumer missing");
    is_str(fill_str("{\"c\": {order.customer_id}, \"n\": {order.none}, \"o\": {order.items[0]}}",
                    PT_TPL_BODY),
           "{\"c\": 7, \"n\": null, \"o\": {\"id\":1}}", "body: JSON values, null kept");
    is_str(fill_str("{\"s\": \"id={id};c={order.customer_id}\"}", PT_TPL_BODY),
           "{\"s\": \"id=42;c=7\"}", "body: text inside a string");
    is_str(fill_str("{\"s\": {id}}", PT_TPL_BODY), "{\"s\": \"42\"}",
           "a capture is a string in a body");
    is_str(fill_str("{{{id}", PT_TPL_BODY), "{\"42\"", "{{ is a literal {");
}

/* Hostile values never change the structure of what they are put in. */
static void test_hostile(void)
{
    is_str(fill_str("/a/{evil}/b", PT_TPL_PATH), "/a/..%2Fa%3Fb%23c%20d%22e%0A/b",
           "path: ../ ? # space quote newline are encoded");
    is_str(fill_str("/a/{dots}/b", PT_TPL_PATH), "<2>", "a value of '..' is refused");
    is_str(fill_str("/a/{empty}/b", PT_TPL_PATH), "<2>", "an empty path value is refused");
    is_str(fill_str("/a/x{dots}", PT_TPL_PATH), "/a/x..", "'..' inside a segment is fine");
    is_str(fill_str("/a?x={evil}&y=1", PT_TPL_PATH), "/a?x=..%2Fa%3Fb%23c%20d%22e%0A&y=1",
           "query: the value stays one argument");
    is_str(fill_str("/a?x={dots}", PT_TPL_PATH), "/a?x=..", "'..' in a query is data");
    is_str(fill_str("{header.X-Crlf}", PT_TPL_HEADER), "<2>", "header: CR LF refused");
    is_str(fill_str("{evil}", PT_TPL_HEADER), "<2>", "header: a newline refused");
    is_str(fill_str("{\"v\": {evil}}", PT_TPL_BODY), "{\"v\": \"../a?b#c d\\\"e\\n\"}",
           "body: quotes and newlines escaped in a JSON string");
    is_str(fill_str("{\"v\": \"<{evil}>\"}", PT_TPL_BODY), "{\"v\": \"<../a?b#c d\\\"e\\n>\"}",
           "body: inside a string, escaped without new quotes");
    const char *b = fill_str("{\"v\": {order.inject}, \"w\": \"{order.inject}\"}", PT_TPL_BODY);
    json_t *j = json_loads(b, 0, NULL);
    ok(j != NULL && json_object_size(j) == 2 &&
           strcmp(json_string_value(json_object_get(j, "v")), "\", \"x\": \"1") == 0,
       "body with a value built to break out is still two members: %s", b);
    json_decref(j);
}

static void test_codec(void)
{
    char d[64];
    size_t n = pt_tpl_percent_decode(d, PT_STR_LIT("a%2Fb+c%zz%4"), true);
    ok(n == 10 && memcmp(d, "a/b c%zz%4", 10) == 0, "decode: %%XX, plus, bad escapes kept");
    n = pt_tpl_percent_decode(d, PT_STR_LIT("a+b%41"), false);
    ok(n == 4 && memcmp(d, "a+bA", 4) == 0, "decode without plus");
    struct pt_jbuf o;
    pt_jbuf_init(&o);
    pt_tpl_percent_encode(&o, pt_str_make("Az09-._~ /\xff", 11));
    ok(o.len == 17 && memcmp(o.p, "Az09-._~%20%2F%FF", 17) == 0, "encode keeps unreserved only");
    pt_jbuf_free(&o);
    ok(pt_tpl_has_dot_segment(PT_STR_LIT("/a/./b")), "dot segment");
    ok(pt_tpl_has_dot_segment(PT_STR_LIT("/a/..")), "trailing ..");
    ok(!pt_tpl_has_dot_segment(PT_STR_LIT("/a/...?x=/../")), "... and a query are fine");
    ok(pt_tpl_reserved(PT_STR_LIT("query")) && !pt_tpl_reserved(PT_STR_LIT("order")), "reserved");
}

static void test_probe(void)
{
    struct pt_tpl t = parse("{\"a\": {id}, \"b\": \"{id}\"}", PT_TPL_BODY);
    struct pt_jbuf o;
    pt_jbuf_init(&o);
    pt_tpl_probe(&t, &o);
    ok(o.len == 21 && memcmp(o.p, "{\"a\": null, \"b\": \"x\"}", 21) == 0, "probe");
    pt_jbuf_free(&o);
}

int main(void)
{
    pt_arena_init(&arena);
    results[0] = json_loads("{\"customer_id\": 7, \"price\": 19.99, \"flag\": true, \"none\": null,"
                            " \"items\": [{\"id\": 1}, {\"id\": \"b/c\"}], \"ids\": [1, 2, 3],"
                            " \"inject\": \"\\\", \\\"x\\\": \\\"1\"}",
                            0, NULL);
    ok(results[0] != NULL, "fixture");
    test_parse();
    test_fill();
    test_hostile();
    test_codec();
    test_probe();
    json_decref(results[0]);
    pt_arena_destroy(&arena);
    return done_testing();
}
