/*
 * Fuzz target for composition templates: pt_tpl_parse and pt_tpl_fill.
 *
 * Input:
 *   byte 0    the kind (path, query, header, body)
 *   line 1    the template
 *   line 2    the value of every capture, query argument and header
 *   rest      a JSON document: the result of call "r" (when it parses)
 * Placeholders {r...} read the result; every other name is a capture.
 *
 * Besides "no crash, no sanitizer report", it checks that no value can
 * change the structure of what it is put in:
 *   - path: starts with '/', no '#', no space or control byte, no dot
 *     segment, and as many '/' before the '?' as the literal text has;
 *   - query: nothing but unreserved characters and %XX;
 *   - header: no CR, LF or NUL;
 *   - body: when the template is JSON with sample values, the filled body
 *     is JSON too.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "compose/template.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static struct pt_str value;
static json_t *result;

static struct pt_str next_line(struct pt_str *rest)
{
    const char *nl = rest->len == 0 ? NULL : memchr(rest->ptr, '\n', rest->len);
    size_t n = nl == NULL ? rest->len : (size_t)(nl - rest->ptr);
    struct pt_str line = pt_str_make(rest->ptr, n);
    size_t skip = nl == NULL ? n : n + 1;
    rest->ptr += skip;
    rest->len -= skip;
    return line;
}

static bool text_value(void *ctx, struct pt_str name, struct pt_str *out)
{
    (void)ctx;
    (void)name;
    *out = value;
    return true;
}

static const json_t *get_result(void *ctx, unsigned call)
{
    (void)ctx;
    return call == 0 ? result : NULL;
}

static size_t slashes(const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && p[i] != '?'; i++)
        k += p[i] == '/';
    return k;
}

static bool unreserved_or_pct(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~' || c == '%';
        if (!ok)
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    enum pt_tpl_kind kind = (enum pt_tpl_kind)(data[0] % PT_TPL_KIND_COUNT);
    struct pt_str rest = pt_str_make((const char *)data + 1, size - 1);
    struct pt_str src = next_line(&rest);
    value = next_line(&rest);
    result = json_loadb(rest.ptr, rest.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    struct pt_arena a;
    pt_arena_init(&a);
    struct pt_tpl t;
    struct pt_tpl_error err;
    int rc = pt_tpl_parse(&a, src, kind, &t, &err);
    CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        CHECK(err.off <= src.len && err.msg[0] != '\0');
        goto out;
    }
    size_t literal_slashes = 0;
    bool in_query = false;
    for (size_t i = 0; i < t.nparts; i++) {
        struct pt_tpl_part *p = &t.parts[i];
        if (p->src == PT_TPL_LITERAL) {
            if (!in_query)
                literal_slashes += slashes(p->text.ptr, p->text.len);
            in_query = in_query || memchr(p->text.ptr, '?', p->text.len) != NULL;
            continue;
        }
        CHECK(p->off + p->len <= src.len && src.ptr[p->off] == '{' &&
              src.ptr[p->off + p->len - 1] == '}');
        if (p->src == PT_TPL_REF) {
            p->src = pt_str_eq_lit(p->text, "r") ? PT_TPL_RESULT : PT_TPL_CAPTURE;
            p->call = 0;
        }
    }
    struct pt_tpl_scope scope = {NULL, text_value, text_value, text_value, NULL, get_result};
    struct pt_jbuf out, probe;
    pt_jbuf_init(&out);
    pt_jbuf_init(&probe);
    struct pt_tpl_failure f;
    rc = pt_tpl_fill(&t, &scope, &out, &f);
    CHECK(rc == PT_TPL_OK || rc == PT_TPL_MISSING || rc == PT_TPL_INVALID);
    if (rc != PT_TPL_OK) {
        CHECK(f.why != NULL);
        goto done;
    }
    const char *o = out.p != NULL ? out.p : "";
    switch (kind) {
    case PT_TPL_PATH:
        CHECK(out.len > 0 && o[0] == '/');
        CHECK(memchr(o, '#', out.len) == NULL);
        for (size_t i = 0; i < out.len; i++)
            CHECK((unsigned char)o[i] > 0x20 && (unsigned char)o[i] < 0x7f);
        CHECK(!pt_tpl_has_dot_segment(pt_str_make(o, out.len)));
        CHECK(slashes(o, out.len) == literal_slashes);
        break;
    case PT_TPL_QUERY:
        CHECK(unreserved_or_pct(o, out.len));
        break;
    case PT_TPL_HEADER:
        for (size_t i = 0; i < out.len; i++)
            CHECK(o[i] != '\r' && o[i] != '\n' && o[i] != '\0');
        break;
    default:
        CHECK(pt_tpl_probe(&t, &probe) == 0);
        json_t *pj = json_loadb(probe.p != NULL ? probe.p : "", probe.len,
                                JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (pj != NULL) {
            json_t *oj = json_loadb(o, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            CHECK(oj != NULL);
            json_decref(oj);
        }
        json_decref(pj);
        break;
    }
done:
    pt_jbuf_free(&out);
    pt_jbuf_free(&probe);
out:
    pt_arena_destroy(&a);
    json_decref(result);
    return 0;
}
