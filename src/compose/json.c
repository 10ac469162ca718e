/*
 * JSON output and response-body decoding for composition.
 *
 * We serialise ourselves rather than with json_dumps() for one reason:
 * jansson writes reals with 17 significant digits, so a backend's 19.99
 * would reach the client as 19.989999999999998.  Here a real is written with
 * the fewest digits (15, 16 or 17) that read back as the same double.
 * Strings go through pt_json_escape(), the escaper of problem bodies, so
 * every output is valid JSON and valid UTF-8.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "compose/json.h"
#include "http/problem.h"

/* ---- buffer ---- */

char *pt_jbuf_reserve(struct pt_jbuf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->cap - b->len >= n)
        return b->p + b->len;
    size_t cap = b->cap < 256 ? 256 : b->cap;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return NULL;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return NULL;
    }
    b->p = p;
    b->cap = cap;
    return b->p + b->len;
}

void pt_jbuf_put(struct pt_jbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    char *w = pt_jbuf_reserve(b, n);
    if (w == NULL)
        return;
    memcpy(w, p, n);
    b->len += n;
}

void pt_jbuf_free(struct pt_jbuf *b)
{
    free(b->p);
    pt_jbuf_init(b);
}

/* ---- serialising ---- */

static void put_escaped(struct pt_jbuf *out, const char *s, size_t n)
{
    struct pt_str v = pt_str_make(s, n);
    size_t need = pt_json_escape(NULL, 0, v);
    char *w = pt_jbuf_reserve(out, need + 1);
    if (w == NULL)
        return;
    pt_json_escape(w, need + 1, v);
    out->len += need;
}

static void put_real(struct pt_jbuf *out, double d)
{
    char buf[40];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* jansson never holds inf or nan; keep the output JSON if it somehow did */
    if (n <= 0 || strpbrk(buf, "in") != NULL) {
        pt_jbuf_puts(out, "null");
        return;
    }
    pt_jbuf_put(out, buf, (size_t)n);
    if (strpbrk(buf, ".e") == NULL) /* keep it a real: 100.0 stays 100.0, not the integer 100 */
        pt_jbuf_put(out, ".0", 2);
}

int pt_json_dump(const json_t *v, struct pt_jbuf *out)
{
    char num[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        size_t klen;
        json_t *item;
        bool first = true;
        pt_jbuf_put(out, "{", 1);
        json_object_keylen_foreach((json_t *)v, key, klen, item)
        {
            if (!first)
                pt_jbuf_put(out, ",", 1);
            first = false;
            pt_jbuf_put(out, "\"", 1);
            put_escaped(out, key, klen);
            pt_jbuf_put(out, "\":", 2);
            pt_json_dump(item, out);
        }
        pt_jbuf_put(out, "}", 1);
        break;
    }
    case JSON_ARRAY:
        pt_jbuf_put(out, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                pt_jbuf_put(out, ",", 1);
            pt_json_dump(json_array_get(v, i), out);
        }
        pt_jbuf_put(out, "]", 1);
        break;
    case JSON_STRING:
        pt_jbuf_put(out, "\"", 1);
        put_escaped(out, json_string_value(v), json_string_length(v));
        pt_jbuf_put(out, "\"", 1);
        break;
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        pt_jbuf_put(out, num, (size_t)n);
        break;
    }
    case JSON_REAL:
        put_real(out, json_real_value(v));
        break;
    case JSON_TRUE:
        pt_jbuf_puts(out, "true");
        break;
    case JSON_FALSE:
        pt_jbuf_puts(out, "false");
        break;
    default:
        pt_jbuf_puts(out, "null");
        break;
    }
    return out->oom ? PT_ERR_NOMEM : 0;
}

static bool scalar_array(const json_t *v)
{
    if (json_array_size(v) == 0)
        return false;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        if (json_is_object(e) || json_is_array(e) || json_is_null(e))
            return false;
    }
    return true;
}

int pt_json_text(const json_t *v, struct pt_jbuf *out)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return 1;
    case JSON_STRING:
        pt_jbuf_put(out, json_string_value(v), json_string_length(v));
        return out->oom ? PT_ERR_NOMEM : 0;
    case JSON_ARRAY:
        if (!scalar_array(v))
            return pt_json_dump(v, out);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                pt_jbuf_put(out, ",", 1);
            if (pt_json_text(json_array_get(v, i), out) < 0)
                return PT_ERR_NOMEM;
        }
        return out->oom ? PT_ERR_NOMEM : 0;
    default:
        return pt_json_dump(v, out);
    }
}

/* ---- decoding ---- */

static bool lower_eq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && pt_str_case_eq_lower_n(pt_str_make(p, n), lit, n);
}

enum pt_json_media pt_json_media_type(struct pt_str ct)
{
    const char *semi = ct.len > 0 ? memchr(ct.ptr, ';', ct.len) : NULL;
    struct pt_str t = pt_str_trim_ows(pt_str_make(ct.ptr, semi ? (size_t)(semi - ct.ptr) : ct.len));
    if (t.len == 0)
        return PT_MEDIA_NONE;
    if (lower_eq(t.ptr, t.len, "application/json") || lower_eq(t.ptr, t.len, "text/json"))
        return PT_MEDIA_JSON;
    /* application/problem+json, application/vnd.api+json, ... */
    const char *slash = memchr(t.ptr, '/', t.len);
    if (slash != NULL && t.len >= 5 && lower_eq(t.ptr + t.len - 5, 5, "+json") &&
        (size_t)(slash - t.ptr) + 1 < t.len - 5)
        return PT_MEDIA_JSON;
    return PT_MEDIA_OTHER;
}

json_t *pt_json_string_lossy(const char *p, size_t n)
{
    json_t *s = json_stringn(p != NULL ? p : "", n);
    if (s != NULL || n == 0)
        return s;
    /* Not valid UTF-8: let the escaper substitute U+FFFD, then read it back. */
    struct pt_jbuf b;
    pt_jbuf_init(&b);
    pt_jbuf_put(&b, "\"", 1);
    put_escaped(&b, p, n);
    pt_jbuf_put(&b, "\"", 1);
    if (b.oom) {
        pt_jbuf_free(&b);
        return NULL;
    }
    s = json_loadb(b.p, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    pt_jbuf_free(&b);
    return s;
}

json_t *pt_json_from_body(const char *p, size_t n, enum pt_json_media media, const char **why)
{
    *why = NULL;
    if (n == 0)
        return json_null();
    if (media != PT_MEDIA_OTHER) {
        json_error_t err;
        size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
        json_t *v = json_loadb(p, n, flags, &err);
        if (v == NULL && json_error_code(&err) == json_error_numeric_overflow)
            v = json_loadb(p, n, flags | JSON_DECODE_INT_AS_REAL, &err);
        if (v != NULL)
            return v;
        if (json_error_code(&err) == json_error_out_of_memory) {
            *why = "out of memory";
            return NULL;
        }
        if (media == PT_MEDIA_JSON) {
            *why = "invalid JSON";
            return NULL;
        }
    }
    json_t *s = pt_json_string_lossy(p, n);
    if (s == NULL)
        *why = "out of memory";
    return s;
}
