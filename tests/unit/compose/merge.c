/*
 * Composition results: group and shallow merges, the fields filter (nested
 * paths, arrays at any depth), the decoding of response bodies (JSON or
 * not) and the serialiser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../../src/compose/merge.c"
#include "../../../src/compose/json.c"

static struct pt_arena arena;

/* v as compact JSON (static buffer); consumes v. */
static const char *dump(json_t *v)
{
    static char buf[2048];
    struct pt_jbuf o;
    pt_jbuf_init(&o);
    if (v == NULL) {
        snprintf(buf, sizeof(buf), "(null)");
    } else {
        pt_json_dump(v, &o);
        snprintf(buf, sizeof(buf), "%.*s", (int)o.len, o.p);
    }
    pt_jbuf_free(&o);
    json_decref(v);
    return buf;
}

static json_t *J(const char *s)
{
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    if (v == NULL)
        note("bad fixture %s", s);
    return v;
}

static const char *filtered(const char *doc, const char *const *paths, size_t n)
{
    size_t bad;
    struct pt_fields *f = pt_fields_compile(&arena, paths, n, &bad);
    if (f == NULL)
        return "(bad fields)";
    json_t *in = J(doc);
    const char *out = dump(pt_fields_apply(f, in));
    json_decref(in);
    return out;
}

static void test_fields(void)
{
    const char *doc =
        "{\"id\":1,\"name\":\"a\",\"secret\":\"s\","
        "\"customer\":{\"name\":\"Ada\",\"email\":\"e\",\"addr\":{\"city\":\"L\",\"zip\":\"1\"}},"
        "\"items\":[{\"sku\":\"x\",\"qty\":1},{\"sku\":\"y\",\"qty\":2},3,[{\"sku\":\"z\",\"q\":0}]"
        "]}";
    const char *a[] = {"id", "name"};
    is_str(filtered(doc, a, 2), "{\"id\":1,\"name\":\"a\"}", "top-level fields, in list order");
    const char *b[] = {"customer.name", "customer.addr.city"};
    is_str(filtered(doc, b, 2), "{\"customer\":{\"name\":\"Ada\",\"addr\":{\"city\":\"L\"}}}",
           "nested paths keep their parents");
    const char *c[] = {"items.sku"};
    is_str(filtered(doc, c, 1), "{\"items\":[{\"sku\":\"x\"},{\"sku\":\"y\"},3,[{\"sku\":\"z\"}]]}",
           "a path through an array filters each element (scalars pass, nested arrays too)");
    const char *d[] = {"customer", "customer.name"};
    is_str(
        filtered(doc, d, 2),
        "{\"customer\":{\"name\":\"Ada\",\"email\":\"e\",\"addr\":{\"city\":\"L\",\"zip\":\"1\"}}}",
        "a whole member wins over a sub-path");
    const char *e[] = {"customer.name", "customer"};
    is_str(
        filtered(doc, e, 2),
        "{\"customer\":{\"name\":\"Ada\",\"email\":\"e\",\"addr\":{\"city\":\"L\",\"zip\":\"1\"}}}",
        "in either order");
    const char *g[] = {"nope", "name.deeper", "id"};
    is_str(filtered(doc, g, 3), "{\"id\":1}", "missing members and too-deep paths are left out");
    const char *h[] = {"sku"};
    is_str(filtered("[{\"sku\":1,\"x\":2},{\"x\":3},\"s\"]", h, 1), "[{\"sku\":1},{},\"s\"]",
           "a result that is an array: each element");
    is_str(filtered("\"text\"", h, 1), "\"text\"", "a string result is kept");
    is_str(filtered("null", h, 1), "null", "null kept");

    size_t bad = 99;
    const char *bad1[] = {"ok", "a..b"};
    ok(pt_fields_compile(&arena, bad1, 2, &bad) == NULL && bad == 1, "empty member name");
    const char *bad2[] = {".a"};
    ok(pt_fields_compile(&arena, bad2, 1, &bad) == NULL && bad == 0, "leading dot");
    const char *bad3[] = {"a."};
    ok(pt_fields_compile(&arena, bad3, 1, &bad) == NULL && bad == 0, "trailing dot");
    const char *bad4[] = {""};
    ok(pt_fields_compile(&arena, bad4, 1, &bad) == NULL && bad == 0, "empty path");

    json_t *in = J("{\"a\":{\"b\":1,\"c\":2}}");
    const char *p[] = {"a.b"};
    struct pt_fields *f = pt_fields_compile(&arena, p, 1, &bad);
    json_t *out = pt_fields_apply(f, in);
    is_str(dump(json_incref(in)), "{\"a\":{\"b\":1,\"c\":2}}", "the input is not modified");
    json_decref(out);
    json_decref(in);
}

static void test_merge(void)
{
    struct pt_str keys[] = {PT_STR_LIT("order"), PT_STR_LIT("user"), PT_STR_LIT("tags"),
                            PT_STR_LIT("note"), PT_STR_LIT("gone")};
    json_t *v[] = {J("{\"id\":1,\"name\":\"o\"}"), J("{\"name\":\"u\",\"age\":3}"), J("[1,2]"),
                   J("\"hi\""), NULL};
    is_str(
        dump(pt_merge(PT_MERGE_GROUP, keys, v, 5)),
        "{\"order\":{\"id\":1,\"name\":\"o\"},\"user\":{\"name\":\"u\",\"age\":3},\"tags\":[1,2],"
        "\"note\":\"hi\"}",
        "group: each under its key, left-out calls absent");
    is_str(dump(pt_merge(PT_MERGE_SHALLOW, keys, v, 5)),
           "{\"id\":1,\"name\":\"u\",\"age\":3,\"tags\":[1,2],\"note\":\"hi\"}",
           "shallow: objects merged, the later call wins, non-objects under their key");
    json_t *w[] = {J("{\"tags\":\"from order\"}"), J("[9]")};
    struct pt_str k2[] = {PT_STR_LIT("order"), PT_STR_LIT("tags")};
    is_str(dump(pt_merge(PT_MERGE_SHALLOW, k2, w, 2)), "{\"tags\":[9]}",
           "shallow: a non-object result competes with members by declaration order");
    json_t *w2[] = {J("[9]"), J("{\"tags\":\"later\",\"x\":{\"deep\":1}}")};
    struct pt_str k3[] = {PT_STR_LIT("tags"), PT_STR_LIT("order")};
    is_str(dump(pt_merge(PT_MERGE_SHALLOW, k3, w2, 2)), "{\"tags\":\"later\",\"x\":{\"deep\":1}}",
           "shallow: ... either way round; nested objects are not merged");
    json_t *none[] = {NULL, NULL};
    is_str(dump(pt_merge(PT_MERGE_GROUP, k2, none, 2)), "{}", "nothing: an empty object");
    for (size_t i = 0; i < 5; i++)
        json_decref(v[i]);
    for (size_t i = 0; i < 2; i++) {
        json_decref(w[i]);
        json_decref(w2[i]);
    }
}

static const char *body(const char *p, size_t n, enum pt_json_media m)
{
    const char *why = NULL;
    json_t *v = pt_json_from_body(p, n, m, &why);
    if (v == NULL)
        return why;
    return dump(v);
}

static void test_bodies(void)
{
    is_int(pt_json_media_type(PT_STR_LIT("application/json")), PT_MEDIA_JSON, "json");
    is_int(pt_json_media_type(PT_STR_LIT("Application/JSON; charset=utf-8")), PT_MEDIA_JSON,
           "case and parameters");
    is_int(pt_json_media_type(PT_STR_LIT("application/problem+json")), PT_MEDIA_JSON, "+json");
    is_int(pt_json_media_type(PT_STR_LIT("text/json")), PT_MEDIA_JSON, "text/json");
    is_int(pt_json_media_type(PT_STR_LIT("+json")), PT_MEDIA_OTHER, "not a media type");
    is_int(pt_json_media_type(PT_STR_LIT("text/plain")), PT_MEDIA_OTHER, "text");
    is_int(pt_json_media_type(PT_STR_LIT("application/jsonx")), PT_MEDIA_OTHER, "jsonx");
    is_int(pt_json_media_type(PT_STR_LIT("")), PT_MEDIA_NONE, "none");

    is_str(body("{\"a\":1}", 7, PT_MEDIA_JSON), "{\"a\":1}", "JSON body");
    is_str(body("{\"a\":", 5, PT_MEDIA_JSON), "invalid JSON", "invalid JSON with a JSON type");
    is_str(body("{\"a\":", 5, PT_MEDIA_NONE), "\"{\\\"a\\\":\"", "no type: a string when not JSON");
    is_str(body("42", 2, PT_MEDIA_NONE), "42", "no type: JSON when it parses");
    is_str(body("42", 2, PT_MEDIA_OTHER), "\"42\"", "text/plain: a string");
    is_str(body("", 0, PT_MEDIA_JSON), "null", "empty: null");
    is_str(body("<p>\"hi\"\n</p>", 12, PT_MEDIA_OTHER), "\"<p>\\\"hi\\\"\\n</p>\"",
           "HTML embedded");
    is_str(body("a\xff"
                "b\xc3",
                4, PT_MEDIA_OTHER),
           "\"a\xef\xbf\xbd"
           "b\xef\xbf\xbd\"",
           "invalid UTF-8 becomes U+FFFD");
    is_str(body("a\0b", 3, PT_MEDIA_OTHER), "\"a\\u0000b\"", "NUL kept, escaped");
    is_str(body("[12345678901234567890]", 22, PT_MEDIA_JSON), "[1.2345678901234567e+19]",
           "an integer beyond 64 bits is read as a double");
    is_str(body("[1e999]", 7, PT_MEDIA_JSON), "invalid JSON", "an overflowing real");
    is_str(body("\"\\u0000\"", 8, PT_MEDIA_JSON), "\"\\u0000\"", "\\u0000 accepted");
}

static void test_dump(void)
{
    is_str(dump(J("[0.1,19.99,1e300,-0.0,1.5,100.0,3.141592653589793,5e-324]")),
           "[0.1,19.99,1e+300,-0.0,1.5,100.0,3.141592653589793,4.94065645841247e-324]",
           "reals read back exactly, in the fewest digits");
    is_str(dump(J("{\"a\\\"b\":\"\\n\\u2028\\ud83d\\ude00\",\"c\":[true,false,null,-7]}")),
           "{\"a\\\"b\":\"\\n\xe2\x80\xa8\xf0\x9f\x98\x80\",\"c\":[true,false,null,-7]}",
           "strings and literals");
    struct pt_jbuf o;
    pt_jbuf_init(&o);
    json_t *s = J("\"x y\"");
    ok(pt_json_text(s, &o) == 0 && o.len == 3 && memcmp(o.p, "x y", 3) == 0, "text of a string");
    json_decref(s);
    json_t *n = json_null();
    ok(pt_json_text(n, &o) == 1 && o.len == 3, "null has no text");
    o.len = 0;
    json_t *arr = J("[1,\"a b\",true,2.5]");
    ok(pt_json_text(arr, &o) == 0 && o.len == 14 && memcmp(o.p, "1,a b,true,2.5", 14) == 0,
       "an array of scalars joined with commas");
    json_decref(arr);
    o.len = 0;
    arr = J("[1,{\"a\":2}]");
    ok(pt_json_text(arr, &o) == 0 && o.len == 11 && memcmp(o.p, "[1,{\"a\":2}]", 11) == 0,
       "an array holding an object as JSON");
    json_decref(arr);
    o.len = 0;
    arr = J("[1,null]");
    ok(pt_json_text(arr, &o) == 0 && o.len == 8 && memcmp(o.p, "[1,null]", 8) == 0,
       "an array holding null as JSON");
    json_decref(arr);
    pt_jbuf_free(&o);
}

int main(void)
{
    pt_arena_init(&arena);
    test_fields();
    test_merge();
    test_bodies();
    test_dump();
    pt_arena_destroy(&arena);
    return done_testing();
}
