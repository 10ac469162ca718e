/*
 * Template parsing and filling (see template.h for the syntax and the
 * encoding rules).
 *
 * The parser is a single left-to-right scan.  Literal text is copied into
 * the arena (so `{{` can become `{`, and QUERY literals can be encoded once
 * at load); placeholders become parts with their source offset, so the
 * configuration loader can point at the exact character of a mistake.  In a
 * BODY the scan also tracks whether it is inside a JSON string literal (a
 * `"` not escaped by `\`), which decides how each placeholder is encoded.
 *
 * Filling never lets a value's bytes act as syntax: values are
 * percent-encoded in paths and queries, JSON-encoded in bodies, and refused
 * in headers when they hold control characters.  After a path is filled,
 * its segments are checked for `.` and `..`, which a value could otherwise
 * form on its own (`{id}` = "..").
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "portico/status.h"
#include "compose/template.h"
#include "core/str.h"
#include "http/problem.h"

/* ---- character classes ---- */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool name_start(char c)
{
    return is_alpha(c) || c == '_';
}

/* call keys, capture names, member names in a path */
static bool name_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '_' || c == '-';
}

/* query argument names: also '.', '~' and brackets (filter[name]) */
static bool arg_char(char c)
{
    return name_char(c) || c == '.' || c == '~' || c == '[' || c == ']';
}

static bool token_char(char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool unreserved(unsigned char c)
{
    return is_alpha((char)c) || is_digit((char)c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool pt_tpl_reserved(struct pt_str n)
{
    return pt_str_eq_lit(n, "query") || pt_str_eq_lit(n, "header") || pt_str_eq_lit(n, "consumer");
}

/* ---- encoding helpers ---- */

static const char hexdig[] = "0123456789ABCDEF";

void pt_tpl_percent_encode(struct pt_jbuf *out, struct pt_str s)
{
    char *w = pt_jbuf_reserve(out, s.len * 3);
    if (w == NULL)
        return;
    char *p = w;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (unreserved(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hexdig[c >> 4];
            *p++ = hexdig[c & 15];
        }
    }
    out->len += (size_t)(p - w);
}

size_t pt_tpl_percent_decode(char *dst, struct pt_str src, bool plus_space)
{
    size_t n = 0;
    for (size_t i = 0; i < src.len; i++) {
        char c = src.ptr[i];
        if (c == '%' && i + 2 < src.len) {
            int hi = pt_hexval(src.ptr[i + 1]);
            int lo = pt_hexval(src.ptr[i + 2]);
            if (hi >= 0 && lo >= 0) {
                dst[n++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        dst[n++] = plus_space && c == '+' ? ' ' : c;
    }
    return n;
}

static void put_json_escaped(struct pt_jbuf *out, struct pt_str s)
{
    size_t need = pt_json_escape(NULL, 0, s);
    char *w = pt_jbuf_reserve(out, need + 1);
    if (w == NULL)
        return;
    pt_json_escape(w, need + 1, s);
    out->len += need;
}

/* ---- parsing ---- */

struct parser {
    struct pt_arena *a;
    struct pt_str src;
    enum pt_tpl_kind kind;
    struct pt_tpl *t;
    struct pt_tpl_error *err;
    char *lit; /* literal storage: every literal is appended here */
    size_t litlen;
    size_t lit_start; /* start of the literal being gathered */
    bool in_query;    /* PATH: after the first literal '?' */
    bool in_string;   /* BODY: inside a JSON string literal */
    bool escaped;     /* BODY: the previous literal byte was a '\' inside a string */
};

__attribute__((format(printf, 3, 4))) static int fail(struct parser *ps, size_t off,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
    va_end(ap);
    ps->err->off = off;
    return -1;
}

static void flush_literal(struct parser *ps)
{
    if (ps->litlen == ps->lit_start)
        return;
    struct pt_tpl_part *p = &ps->t->parts[ps->t->nparts++];
    memset(p, 0, sizeof(*p));
    p->src = PT_TPL_LITERAL;
    p->text = pt_str_make(ps->lit + ps->lit_start, ps->litlen - ps->lit_start);
    ps->lit_start = ps->litlen;
}

static enum pt_tpl_enc current_enc(const struct parser *ps)
{
    switch (ps->kind) {
    case PT_TPL_PATH:
        return ps->in_query ? PT_TPL_ENC_QUERY : PT_TPL_ENC_PATH;
    case PT_TPL_QUERY:
        return PT_TPL_ENC_QUERY;
    case PT_TPL_HEADER:
        return PT_TPL_ENC_HEADER;
    default:
        return ps->in_string ? PT_TPL_ENC_JSON_STRING : PT_TPL_ENC_JSON;
    }
}

/* Steps (.name or [N]) in ref[i..n); off is the ref's offset in the source. */
static int parse_steps(struct parser *ps, struct pt_tpl_part *p, const char *ref, size_t i,
                       size_t n, size_t off)
{
    /* at most one step per two bytes */
    struct pt_tpl_step *steps = NULL;
    if (i < n) {
        steps = pt_arena_calloc(ps->a, ((n - i) / 2 + 1) * sizeof(*steps));
        if (steps == NULL)
            return PT_ERR_NOMEM;
    }
    size_t k = 0;
    while (i < n) {
        if (ref[i] == '.') {
            size_t s = ++i;
            while (i < n && name_char(ref[i]))
                i++;
            if (i == s)
                return fail(ps, off + s, "expected a member name after '.'");
            steps[k++] = (struct pt_tpl_step){pt_str_make(ref + s, i - s), 0, false};
        } else if (ref[i] == '[') {
            size_t s = ++i;
            uint64_t v = 0;
            while (i < n && is_digit(ref[i]) && i - s < 10)
                v = v * 10 + (uint64_t)(ref[i++] - '0');
            if (i == s || i >= n || ref[i] != ']' || v > INT32_MAX)
                return fail(ps, off + s - 1,
                            "an index is written [N], N a number up to 2147483647");
            i++;
            steps[k++] = (struct pt_tpl_step){PT_STR_NULL, (uint32_t)v, true};
        } else {
            return fail(ps, off + i, "unexpected '%c' in a placeholder (write {name.member[0]})",
                        ref[i]);
        }
    }
    p->steps = steps;
    p->nsteps = k;
    return 0;
}

/* The placeholder starting at src[start] == '{'; returns the offset after its '}'. */
static ssize_t parse_placeholder(struct parser *ps, size_t start)
{
    const char *s = ps->src.ptr;
    size_t end = ps->src.len;
    const char *close = memchr(s + start, '}', end - start);
    if (close == NULL)
        return fail(ps, start,
                    "'{' starts a placeholder that is not closed by '}' (write {{ for "
                    "a literal '{')");
    size_t cend = (size_t)(close - s); /* offset of '}' */
    size_t rs = start + 1;             /* ref start */
    size_t re = cend;                  /* ref end */
    struct pt_tpl_part *p = &ps->t->parts[ps->t->nparts];
    memset(p, 0, sizeof(*p));
    for (size_t i = rs; i + 1 < cend; i++) {
        if (s[i] == ':' && s[i + 1] == '-') {
            re = i;
            p->has_def = true;
            p->def = pt_str_make(s + i + 2, cend - i - 2);
            break;
        }
    }
    for (size_t i = 0; i < p->def.len; i++)
        if (is_ctl((unsigned char)p->def.ptr[i]))
            return fail(ps, (size_t)(p->def.ptr - s) + i,
                        "a default cannot hold control characters");
    size_t i = rs;
    while (i < re && name_char(s[i]))
        i++;
    struct pt_str head = pt_str_make(s + rs, i - rs);
    p->enc = current_enc(ps);
    p->off = start;
    p->len = cend + 1 - start;
    if (pt_str_eq_lit(head, "query") || pt_str_eq_lit(head, "header")) {
        bool q = head.len == 5;
        if (i >= re || s[i] != '.')
            return fail(ps, i, "write {%s.NAME}", q ? "query" : "header");
        size_t ns = ++i;
        while (i < re && (q ? arg_char(s[i]) : token_char(s[i])))
            i++;
        if (i == ns)
            return fail(ps, ns, "expected a %s name after '%s.'", q ? "query argument" : "header",
                        q ? "query" : "header");
        if (i < re)
            return fail(ps, i, "unexpected '%c' in a %s name", s[i],
                        q ? "query argument" : "header");
        p->src = q ? PT_TPL_QUERY_ARG : PT_TPL_HEADER_VAL;
        p->text = pt_str_make(s + ns, i - ns);
    } else {
        p->src = pt_str_eq_lit(head, "consumer") ? PT_TPL_CONSUMER : PT_TPL_REF;
        p->text = head;
        int rc = parse_steps(ps, p, s, i, re, 0);
        if (rc != 0)
            return rc;
    }
    ps->t->nparts++;
    ps->t->nrefs++;
    return (ssize_t)(cend + 1);
}

static void add_literal_byte(struct parser *ps, char c)
{
    if (ps->kind == PT_TPL_QUERY && !unreserved((unsigned char)c)) {
        ps->lit[ps->litlen++] = '%';
        ps->lit[ps->litlen++] = hexdig[(unsigned char)c >> 4];
        ps->lit[ps->litlen++] = hexdig[(unsigned char)c & 15];
        return;
    }
    ps->lit[ps->litlen++] = c;
    if (ps->kind != PT_TPL_BODY)
        return;
    if (ps->in_string) {
        if (ps->escaped)
            ps->escaped = false;
        else if (c == '\\')
            ps->escaped = true;
        else if (c == '"')
            ps->in_string = false;
    } else if (c == '"') {
        ps->in_string = true;
    }
}

/* Literal checks for paths and headers; 0 or -1. */
static int check_literal(struct parser *ps, size_t i)
{
    unsigned char c = (unsigned char)ps->src.ptr[i];
    switch (ps->kind) {
    case PT_TPL_PATH:
        if (c == '#')
            return fail(ps, i, "a path cannot hold a fragment ('#')");
        if (c <= 0x20 || c >= 0x7f)
            return fail(ps, i,
                        "a path cannot hold spaces, control characters or non-ASCII "
                        "bytes (percent-encode them)");
        if (c == '{' || c == '}')
            return fail(ps, i,
                        "a literal '%c' is not allowed in a path (a placeholder is "
                        "{name})",
                        c);
        if (c == '?')
            ps->in_query = true;
        return 0;
    case PT_TPL_HEADER:
        if (is_ctl(c) && c != '\t')
            return fail(ps, i, "a header value cannot hold control characters");
        return 0;
    case PT_TPL_BODY:
        if (c == '\0') /* never JSON, and JSON parsers disagree on where it ends the text */
            return fail(ps, i, "a body cannot hold a NUL byte");
        return 0;
    default:
        return 0;
    }
}

int pt_tpl_parse(struct pt_arena *a, struct pt_str src, enum pt_tpl_kind kind, struct pt_tpl *out,
                 struct pt_tpl_error *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    out->kind = kind;
    out->src = src;
    struct parser ps = {.a = a, .src = src, .kind = kind, .t = out, .err = err};
    /* parts: at most one literal between placeholders, and a placeholder takes >= 2 bytes */
    out->parts = pt_arena_calloc(a, (src.len + 2) * sizeof(*out->parts));
    ps.lit = pt_arena_alloc(a, src.len * 3 + 1);
    if (out->parts == NULL || ps.lit == NULL)
        return PT_ERR_NOMEM;
    if (kind == PT_TPL_PATH && (src.len == 0 || src.ptr[0] != '/'))
        return fail(&ps, 0, "must start with '/'");
    size_t i = 0;
    while (i < src.len) {
        char c = src.ptr[i];
        if (c == '{' && i + 1 < src.len && src.ptr[i + 1] == '{') {
            if (kind == PT_TPL_PATH)
                return fail(&ps, i, "a literal '{' is not allowed in a path");
            add_literal_byte(&ps, '{');
            i += 2;
            continue;
        }
        if (c == '{' && i + 1 < src.len && name_start(src.ptr[i + 1])) {
            flush_literal(&ps);
            ssize_t next = parse_placeholder(&ps, i);
            if (next < 0)
                return (int)next;
            i = (size_t)next;
            continue;
        }
        if (check_literal(&ps, i) != 0)
            return -1;
        add_literal_byte(&ps, c);
        i++;
    }
    flush_literal(&ps);
    return 0;
}

/* ---- filling ---- */

static const json_t *walk(const json_t *v, const struct pt_tpl_step *steps, size_t n)
{
    for (size_t i = 0; i < n && v != NULL; i++) {
        if (steps[i].is_index)
            v = json_is_array(v) ? json_array_get(v, steps[i].index) : NULL;
        else
            v = json_is_object(v) ? json_object_getn(v, steps[i].name.ptr, steps[i].name.len)
                                  : NULL;
    }
    return v;
}

/* A value: either text (from the request) or JSON (a result, the consumer). */
struct value {
    struct pt_str str;
    const json_t *json;
    bool found;
};

static struct value lookup(const struct pt_tpl_part *p, const struct pt_tpl_scope *s)
{
    struct value v = {PT_STR_NULL, NULL, false};
    switch (p->src) {
    case PT_TPL_CAPTURE:
        v.found = s->capture != NULL && s->capture(s->ctx, p->text, &v.str);
        break;
    case PT_TPL_QUERY_ARG:
        v.found = s->query != NULL && s->query(s->ctx, p->text, &v.str);
        break;
    case PT_TPL_HEADER_VAL:
        v.found = s->header != NULL && s->header(s->ctx, p->text, &v.str);
        break;
    case PT_TPL_CONSUMER:
        v.json = walk(s->consumer != NULL ? s->consumer(s->ctx) : NULL, p->steps, p->nsteps);
        v.found = v.json != NULL;
        break;
    case PT_TPL_RESULT:
        v.json = walk(s->result != NULL ? s->result(s->ctx, p->call) : NULL, p->steps, p->nsteps);
        v.found = v.json != NULL;
        break;
    default: /* an unbound reference has no value */
        break;
    }
    if (v.found && v.json != NULL && json_is_null(v.json) && p->enc != PT_TPL_ENC_JSON)
        v.found = false; /* null has no text form */
    return v;
}

static bool has_ctl(struct pt_str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (is_ctl((unsigned char)s.ptr[i]) && s.ptr[i] != '\t')
            return true;
    return false;
}

/* Write one value; PT_TPL_OK, PT_TPL_INVALID (f->why set) or PT_ERR_NOMEM. */
static int put_value(const struct pt_tpl_part *p, const struct value *v, struct pt_jbuf *out,
                     struct pt_jbuf *tmp, struct pt_tpl_failure *f)
{
    if (p->enc == PT_TPL_ENC_JSON) {
        if (v->json != NULL)
            return pt_json_dump(v->json, out);
        pt_jbuf_put(out, "\"", 1);
        put_json_escaped(out, v->str);
        pt_jbuf_put(out, "\"", 1);
        return out->oom ? PT_ERR_NOMEM : PT_TPL_OK;
    }
    struct pt_str text = v->str;
    if (v->json != NULL) {
        tmp->len = 0;
        if (pt_json_text(v->json, tmp) < 0)
            return PT_ERR_NOMEM;
        text = pt_str_make(tmp->p, tmp->len);
    }
    switch (p->enc) {
    case PT_TPL_ENC_PATH:
        if (text.len == 0) {
            f->part = p;
            f->why = "is empty, and a path segment cannot be";
            return PT_TPL_INVALID;
        }
        pt_tpl_percent_encode(out, text);
        break;
    case PT_TPL_ENC_QUERY:
        pt_tpl_percent_encode(out, text);
        break;
    case PT_TPL_ENC_HEADER:
        if (has_ctl(text)) {
            f->part = p;
            f->why = "holds a control character, which a header cannot";
            return PT_TPL_INVALID;
        }
        pt_jbuf_put(out, text.ptr, text.len);
        break;
    default: /* PT_TPL_ENC_JSON_STRING */
        put_json_escaped(out, text);
        break;
    }
    return out->oom ? PT_ERR_NOMEM : PT_TPL_OK;
}

bool pt_tpl_has_dot_segment(struct pt_str path)
{
    const char *p = path.ptr;
    size_t n = path.len;
    if (n == 0)
        return false;
    const char *q = memchr(p, '?', n);
    if (q != NULL)
        n = (size_t)(q - p);
    size_t seg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        size_t len = i - seg;
        if ((len == 1 && p[seg] == '.') || (len == 2 && p[seg] == '.' && p[seg + 1] == '.'))
            return true;
        seg = i + 1;
    }
    return false;
}

int pt_tpl_fill(const struct pt_tpl *t, const struct pt_tpl_scope *s, struct pt_jbuf *out,
                struct pt_tpl_failure *f)
{
    size_t start = out->len;
    struct pt_jbuf tmp;
    pt_jbuf_init(&tmp);
    int rc = PT_TPL_OK;
    f->part = NULL;
    f->why = NULL;
    for (size_t i = 0; i < t->nparts && rc == PT_TPL_OK; i++) {
        const struct pt_tpl_part *p = &t->parts[i];
        if (p->src == PT_TPL_LITERAL) {
            pt_jbuf_put(out, p->text.ptr, p->text.len);
            continue;
        }
        struct value v = lookup(p, s);
        if (!v.found) {
            if (!p->has_def) {
                f->part = p;
                f->why = "has no value";
                rc = PT_TPL_MISSING;
                break;
            }
            v.str = p->def;
            v.json = NULL;
        }
        rc = put_value(p, &v, out, &tmp, f);
    }
    pt_jbuf_free(&tmp);
    if (rc == PT_TPL_OK && out->oom)
        rc = PT_ERR_NOMEM;
    if (rc == PT_TPL_OK && t->kind == PT_TPL_PATH &&
        pt_tpl_has_dot_segment(pt_str_make(out->p + start, out->len - start))) {
        f->part = NULL;
        f->why = "would make a '.' or '..' path segment";
        rc = PT_TPL_INVALID;
    }
    return rc;
}

int pt_tpl_probe(const struct pt_tpl *t, struct pt_jbuf *out)
{
    for (size_t i = 0; i < t->nparts; i++) {
        const struct pt_tpl_part *p = &t->parts[i];
        if (p->src == PT_TPL_LITERAL)
            pt_jbuf_put(out, p->text.ptr, p->text.len);
        else
            /* null, being a word, cannot join a neighbouring literal into a valid token
             * ("1{a}" probes as "1null", not "10"), so a body that is JSON with it is JSON
             * with any value */
            pt_jbuf_puts(out, p->enc == PT_TPL_ENC_JSON ? "null" : "x");
    }
    return out->oom ? PT_ERR_NOMEM : 0;
}
