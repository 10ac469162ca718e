/*
 * Fuzz target for the transform plugins' JSON rewriter (pt_json_edit_apply):
 * request and response bodies are attacker-controlled.
 *
 * The input is the body.  A fixed set of edits (removals and renames, at the
 * top level, nested and through arrays) is applied.  Besides "no crash, no
 * sanitizer report", it checks properties:
 *   - when jansson accepts the body (and it is not deeper than our limit),
 *     the rewriter does not call it invalid, and its result, parsed by
 *     jansson, equals jansson's own edit of the document;
 *   - a rewritten body is itself valid JSON for the rewriter (no edit
 *     applies to it a second time: the edited members are gone or renamed
 *     to names no edit names);
 *   - an "unchanged" answer means the edits had nothing to do.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/json_edit.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static struct pt_arena arena;
static struct pt_json_edit *edits, *none;

static void init(void)
{
    const char *err;
    pt_arena_init(&arena);
    edits = pt_json_edit_new(&arena);
    none = pt_json_edit_new(&arena);
    CHECK(pt_json_edit_add(edits, &arena, "a", NULL, &err) == 0);
    CHECK(pt_json_edit_add(edits, &arena, "b.c", NULL, &err) == 0);
    CHECK(pt_json_edit_add(edits, &arena, "d", "renamed_d", &err) == 0);
    CHECK(pt_json_edit_add(edits, &arena, "d.e", NULL, &err) == 0);
    CHECK(pt_json_edit_add(edits, &arena, "f.g", "renamed_g", &err) == 0);
}

/* jansson's version of the edits (on an object, or each object of an array, recursively as ours) */
static void edit_node(json_t *v, int level);

static void edit_object(json_t *o, int level)
{
    if (level == 0) {
        json_object_del(o, "a");
        json_t *d = json_object_get(o, "d");
        if (d != NULL) {
            json_incref(d);
            json_object_del(o, "d");
            edit_node(d, 10); /* d.e */
            json_object_set_new(o, "renamed_d", d);
        }
        json_t *b = json_object_get(o, "b");
        if (b != NULL)
            edit_node(b, 20); /* b.c */
        json_t *f = json_object_get(o, "f");
        if (f != NULL)
            edit_node(f, 30); /* f.g */
    } else if (level == 10) {
        json_object_del(o, "e");
    } else if (level == 20) {
        json_object_del(o, "c");
    } else if (level == 30) {
        json_t *g = json_object_get(o, "g");
        if (g != NULL) {
            json_incref(g);
            json_object_del(o, "g");
            json_object_set_new(o, "renamed_g", g);
        }
    }
}

static void edit_node(json_t *v, int level)
{
    if (json_is_object(v)) {
        edit_object(v, level);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            edit_node(json_array_get(v, i), level);
    }
}

static int depth(const uint8_t *p, size_t n)
{
    int d = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '[' || p[i] == '{')
            max = ++d > max ? d : max;
        else if (p[i] == ']' || p[i] == '}')
            d--;
    }
    return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (edits == NULL)
        init();
    struct pt_buf out, again;
    pt_buf_init(&out);
    pt_buf_init(&again);
    enum pt_json_edit_result r = pt_json_edit_apply(edits, (const char *)data, size, &out, 1 << 24);

    /* duplicate keys make jansson's edit differ (it keeps one), and jansson stops at a NUL byte:
     * skip the comparison for those */
    json_t *doc = memchr(data, 0, size) != NULL
                      ? NULL
                      : json_loadb((const char *)data, size,
                                   JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (doc != NULL && depth(data, size) <= PT_JSON_EDIT_MAX_DEPTH) {
        CHECK(r != PT_JSON_EDIT_INVALID);
        json_t *got = r == PT_JSON_EDIT_CHANGED ? json_loadb(pt_buf_head(&out), pt_buf_len(&out),
                                                             JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                                                : json_incref(doc);
        json_t *want = json_deep_copy(doc);
        edit_node(want, 0);
        CHECK(got != NULL);
        CHECK(json_equal(got, want));
        json_decref(got);
        json_decref(want);
    }
    json_decref(doc);

    if (r == PT_JSON_EDIT_CHANGED) {
        CHECK(pt_json_edit_apply(none, pt_buf_head(&out), pt_buf_len(&out), &again, 1 << 24) ==
              PT_JSON_EDIT_UNCHANGED);
    } else if (r == PT_JSON_EDIT_UNCHANGED) {
        CHECK(pt_json_edit_apply(none, (const char *)data, size, &again, 1 << 24) ==
              PT_JSON_EDIT_UNCHANGED);
    }
    pt_buf_free(&out);
    pt_buf_free(&again);
    return 0;
}
