/*
 * JSON field edits: removal and renaming by dotted path, through arrays,
 * byte-exact copying of what is not edited, and refusal of anything that is
 * not RFC 8259 JSON (such bodies pass unchanged).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "test.h"
#include "plugins/json_edit.h"

static struct pt_arena arena;

static struct pt_json_edit *edits(const char *const *remove, const char *const *rename)
{
    struct pt_json_edit *e = pt_json_edit_new(&arena);
    const char *err = NULL;
    for (size_t i = 0; remove != NULL && remove[i] != NULL; i++)
        if (pt_json_edit_add(e, &arena, remove[i], NULL, &err) != 0)
            note("add %s: %s", remove[i], err);
    for (size_t i = 0; rename != NULL && rename[i] != NULL; i += 2)
        if (pt_json_edit_add(e, &arena, rename[i], rename[i + 1], &err) != 0)
            note("rename %s: %s", rename[i], err);
    return e;
}

/* Apply and return the text (static buffer), "UNCHANGED" or "INVALID". */
static const char *run(const struct pt_json_edit *e, const char *in)
{
    static char res[4096];
    struct pt_buf out;
    pt_buf_init(&out);
    enum pt_json_edit_result r = pt_json_edit_apply(e, in, strlen(in), &out, 1 << 20);
    if (r == PT_JSON_EDIT_INVALID)
        strcpy(res, "INVALID");
    else if (r == PT_JSON_EDIT_UNCHANGED)
        strcpy(res, "UNCHANGED");
    else
        snprintf(res, sizeof(res), "%.*s", (int)pt_buf_len(&out), pt_buf_head(&out));
    pt_buf_free(&out);
    return res;
}

static void test_remove(void)
{
    const char *rm[] = {"password", "user.ssn", "items.secret", NULL};
    struct pt_json_edit *e = edits(rm, NULL);
    is_str(run(e, "{\"a\":1,\"password\":\"x\",\"b\":2}"), "{\"a\":1,\"b\":2}", "middle member");
    is_str(run(e, "{\"password\":\"x\",\"b\":2}"), "{\"b\":2}", "first member");
    is_str(run(e, "{\"password\": \"x\", \"b\": 2}"), "{\"b\": 2}",
           "first member: the next one takes its spacing");
    is_str(run(e, "{\n  \"password\": 1,\n  \"b\": 2\n}"), "{\n  \"b\": 2\n}",
           "first member, pretty-printed");
    is_str(run(e, "{\"b\":2,\"password\":\"x\"}"), "{\"b\":2}", "last member");
    is_str(run(e, "{\"password\":{\"deep\":[1,2]}}"), "{}", "only member, object value");
    is_str(run(e, "{ \"a\" : 1 , \"password\" : 2 }"), "{ \"a\" : 1 }", "spaces kept");
    is_str(run(e, "{\n  \"a\": 1,\n  \"password\": 2,\n  \"c\": 3\n}"),
           "{\n  \"a\": 1,\n  \"c\": 3\n}", "pretty printing kept");
    is_str(run(e, "{\"user\":{\"name\":\"n\",\"ssn\":\"1\"},\"ssn\":5}"),
           "{\"user\":{\"name\":\"n\"},\"ssn\":5}", "nested path; same name elsewhere kept");
    is_str(run(e, "{\"items\":[{\"secret\":1,\"k\":2},{\"k\":3},{\"secret\":4}],\"secret\":0}"),
           "{\"items\":[{\"k\":2},{\"k\":3},{}],\"secret\":0}", "through an array");
    is_str(run(e, "[{\"password\":1},{\"password\":2,\"x\":1}]"), "[{},{\"x\":1}]",
           "top-level array");
    is_str(run(e, "{\"password\":1,\"password\":2}"), "{}", "duplicates all removed");
    is_str(run(e, "{\"pass\\u0077ord\":1,\"a\":2}"), "{\"a\":2}", "escaped key decoded");
    is_str(run(e, "{\"a\":1}"), "UNCHANGED", "nothing matched");
    is_str(run(e, "{\"user\":\"ssn\"}"), "UNCHANGED", "a scalar where an object was expected");
    is_str(run(e, "{\"n\":0.1,\"big\":123456789012345678901234567890,\"password\":1,\"e\":1E+400}"),
           "{\"n\":0.1,\"big\":123456789012345678901234567890,\"e\":1E+400}",
           "numbers copied byte for byte");
    is_str(run(e, "\"password\""), "UNCHANGED", "a scalar document");
}

static void test_rename(void)
{
    const char *rn[] = {"name", "full_name", "user.id", "user_id", "list.a", "b\"q", NULL};
    struct pt_json_edit *e = edits(NULL, rn);
    is_str(run(e, "{\"name\":\"x\",\"k\":1}"), "{\"full_name\":\"x\",\"k\":1}", "top level");
    is_str(run(e, "{\"user\":{\"id\":7,\"name\":\"n\"}}"),
           "{\"user\":{\"user_id\":7,\"name\":\"n\"}}", "nested; the inner name is another path");
    is_str(run(e, "{\"list\":[{\"a\":1},{\"a\":2}]}"), "{\"list\":[{\"b\\\"q\":1},{\"b\\\"q\":2}]}",
           "new name JSON-escaped, in arrays");

    const char *rm[] = {"user.secret", NULL};
    const char *rn2[] = {"user", "account", NULL};
    struct pt_json_edit *e2 = edits(rm, rn2);
    is_str(run(e2, "{\"user\":{\"secret\":1,\"x\":2}}"), "{\"account\":{\"x\":2}}",
           "rename and a deeper removal combine");
}

static void test_invalid(void)
{
    const char *rm[] = {"a", NULL};
    struct pt_json_edit *e = edits(rm, NULL);
    const char *bad[] = {
        "",
        "{",
        "{\"a\":1,}",
        "{\"a\":1 \"b\":2}",
        "{a:1}",
        "[1,2,]",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":-}",
        "{\"a\":NaN}",
        "{\"a\":tru}",
        "{\"a\":\"x\ny\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":1} x",
        "{\"a\":1}{}",
        "\xef\xbb\xbf{\"a\":1}",
        "{\"a\":1} // comment",
        "{'a':1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        is_str(run(e, bad[i]), "INVALID", "invalid: %s", bad[i]);
    is_str(run(e, " {\"a\":1} \n"), " {} \n", "surrounding whitespace kept");
    is_str(run(e, "{}"), "UNCHANGED", "empty object");
    is_str(run(e, "[]"), "UNCHANGED", "empty array");
    is_str(run(e, "[ ]"), "UNCHANGED", "empty array with space");
    is_str(run(e, "{\"b\":[1,{\"a\":[]}],\"a\":null}"), "{\"b\":[1,{\"a\":[]}]}",
           "only the top-level a");

    char deep[2 * PT_JSON_EDIT_MAX_DEPTH + 8];
    size_t k = 0;
    for (int i = 0; i < PT_JSON_EDIT_MAX_DEPTH + 1; i++)
        deep[k++] = '[';
    for (int i = 0; i < PT_JSON_EDIT_MAX_DEPTH + 1; i++)
        deep[k++] = ']';
    deep[k] = '\0';
    is_str(run(e, deep), "INVALID", "deeper than the limit");
    deep[0] = ' ';
    deep[k - 1] = ' ';
    is_str(run(e, deep), "UNCHANGED", "at the limit");
}

static void test_config_errors(void)
{
    struct pt_json_edit *e = pt_json_edit_new(&arena);
    const char *err = NULL;
    ok(pt_json_edit_add(e, &arena, "", NULL, &err) == -1 && err != NULL, "empty path");
    ok(pt_json_edit_add(e, &arena, "a..b", NULL, &err) == -1, "empty segment");
    ok(pt_json_edit_add(e, &arena, ".a", NULL, &err) == -1, "leading dot");
    ok(pt_json_edit_add(e, &arena, "a.", NULL, &err) == -1, "trailing dot");
    ok(pt_json_edit_add(e, &arena, "a.b", NULL, &err) == 0, "a.b");
    ok(pt_json_edit_add(e, &arena, "a.b", "c", &err) == -1, "the same path twice");
    ok(pt_json_edit_add(e, &arena, "a", "z", &err) == 0, "a prefix of another path");
    ok(!pt_json_edit_empty(e), "not empty");
    ok(pt_json_edit_empty(pt_json_edit_new(&arena)), "empty");
}

/* Random documents from jansson: the edited text parses and equals jansson's own edit. */
static void test_against_jansson(void)
{
    const char *rm[] = {"k1", "k2.k0", NULL};
    struct pt_json_edit *e = edits(rm, NULL);
    srand(7);
    int agree = 0, total = 200;
    for (int round = 0; round < total; round++) {
        json_t *doc = json_object();
        for (int i = 0; i < 5; i++) {
            char k[8];
            snprintf(k, sizeof(k), "k%d", rand() % 4);
            json_t *v;
            if (rand() % 2) {
                v = json_object();
                json_object_set_new(v, "k0", json_integer(rand()));
                json_object_set_new(v, "s", json_string("\xc3\xa9\"\\"));
            } else {
                v = json_array();
                json_array_append_new(v, json_real(rand() / 7.0));
            }
            json_object_set_new(doc, k, v);
        }
        char *text = json_dumps(doc, rand() % 2 ? JSON_INDENT(2) : JSON_COMPACT);
        json_object_del(doc, "k1");
        json_t *k2 = json_object_get(doc, "k2");
        if (json_is_object(k2))
            json_object_del(k2, "k0");
        struct pt_buf out;
        pt_buf_init(&out);
        enum pt_json_edit_result r = pt_json_edit_apply(e, text, strlen(text), &out, 1 << 20);
        json_t *got = NULL;
        if (r == PT_JSON_EDIT_CHANGED)
            got = json_loadb(pt_buf_head(&out), pt_buf_len(&out), 0, NULL);
        else if (r == PT_JSON_EDIT_UNCHANGED)
            got = json_loads(text, 0, NULL);
        agree += got != NULL && json_equal(got, doc);
        json_decref(got);
        json_decref(doc);
        pt_buf_free(&out);
        free(text);
    }
    is_int(agree, total, "the same result as editing with jansson");
}

int main(void)
{
    pt_arena_init(&arena);
    test_remove();
    test_rename();
    test_invalid();
    test_config_errors();
    test_against_jansson();
    pt_arena_destroy(&arena);
    pt_buf_thread_cleanup();
    return done_testing();
}
