/*
 * Fuzz target for composition results: body decoding
 * (pt_json_from_body), the fields filter, group and shallow merges, and
 * the serialiser.
 *
 * Input: parts separated by "\n--\n".  The first part lists fields (paths
 * separated by ','); each further part (at most 8) is a response body
 * whose first byte picks its media type (JSON, none, other).
 *
 * Checks: decoding never crashes and a JSON-typed body either fails or
 * gives a value; the filtered and merged documents serialise to valid JSON
 * that jansson reads back to an equal value and that serialises to the same
 * text again.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "compose/json.h"
#include "compose/merge.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define MAX_PARTS 8

static struct pt_str next_part(struct pt_str *rest)
{
    const char *p = rest->len >= 4 ? memmem(rest->ptr, rest->len, "\n--\n", 4) : NULL;
    size_t n = p == NULL ? rest->len : (size_t)(p - rest->ptr);
    struct pt_str part = pt_str_make(rest->ptr, n);
    size_t skip = p == NULL ? n : n + 4;
    rest->ptr += skip;
    rest->len -= skip;
    return part;
}

/* The serialised text of v reads back as an equal value and serialises the same. */
static void check_roundtrip(const json_t *v)
{
    struct pt_jbuf a, b;
    pt_jbuf_init(&a);
    pt_jbuf_init(&b);
    CHECK(pt_json_dump(v, &a) == 0);
    json_error_t err;
    json_t *back = json_loadb(a.p, a.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    CHECK(back != NULL);
    CHECK(pt_json_dump(back, &b) == 0);
    CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
    /* json_equal compares reals exactly: equal only if nothing was lost */
    CHECK(json_equal(back, (json_t *)v));
    json_decref(back);
    pt_jbuf_free(&a);
    pt_jbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_str rest = pt_str_make((const char *)data, size);
    struct pt_str spec = next_part(&rest);
    struct pt_arena a;
    pt_arena_init(&a);

    /* fields: comma-separated, each NUL-terminated in the arena */
    const char *paths[16];
    size_t npaths = 0;
    size_t s = 0;
    for (size_t i = 0; i <= spec.len && npaths < 16; i++) {
        if (i < spec.len && spec.ptr[i] != ',')
            continue;
        paths[npaths++] = pt_arena_strndup(&a, spec.ptr + s, i - s);
        s = i + 1;
    }
    size_t bad = 0;
    struct pt_fields *fields =
        npaths > 0 && spec.len > 0 ? pt_fields_compile(&a, paths, npaths, &bad) : NULL;

    json_t *values[MAX_PARTS] = {0};
    json_t *shown[MAX_PARTS] = {0};
    struct pt_str keys[MAX_PARTS];
    static const char *const names[MAX_PARTS] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    size_t n = 0;
    while (rest.len > 0 && n < MAX_PARTS) {
        struct pt_str body = next_part(&rest);
        enum pt_json_media media = PT_MEDIA_OTHER;
        if (body.len > 0) {
            media = (enum pt_json_media)((unsigned char)body.ptr[0] % PT_MEDIA_COUNT);
            body.ptr++;
            body.len--;
        }
        const char *why = NULL;
        json_t *v = pt_json_from_body(body.ptr, body.len, media, &why);
        if (v == NULL) {
            CHECK(media == PT_MEDIA_JSON && why != NULL);
        } else {
            CHECK(why == NULL);
            if (media == PT_MEDIA_OTHER && body.len > 0)
                CHECK(json_is_string(v));
            check_roundtrip(v);
            shown[n] = pt_fields_apply(fields, v);
            CHECK(shown[n] != NULL);
            check_roundtrip(shown[n]);
        }
        values[n] = v;
        keys[n] = pt_str_cstr(names[n]);
        n++;
    }
    for (int mode = 0; mode < PT_MERGE_COUNT; mode++) {
        json_t *doc = pt_merge((enum pt_merge_mode)mode, keys, shown, n);
        CHECK(doc != NULL && json_is_object(doc));
        check_roundtrip(doc);
        if (mode == PT_MERGE_GROUP)
            for (size_t i = 0; i < n; i++)
                CHECK((json_object_get(doc, names[i]) != NULL) == (shown[i] != NULL));
        json_decref(doc);
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(values[i]);
        json_decref(shown[i]);
    }
    pt_arena_destroy(&a);
    return 0;
}
