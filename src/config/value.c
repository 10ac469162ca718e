/*
 * Scalar value parsers.  Every parser takes a view, accepts exactly the
 * documented forms (no leading or trailing spaces, no signs, no hex) and
 * reports overflow instead of wrapping.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "config/value.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Read decimal digits at s[*i..]; false on overflow or when there are none. */
static bool read_number(struct pt_str s, size_t *i, uint64_t *out, bool *overflow)
{
    uint64_t v = 0;
    size_t start = *i;
    *overflow = false;
    while (*i < s.len && is_digit(s.ptr[*i])) {
        unsigned d = (unsigned)(s.ptr[*i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            *overflow = true;
        else
            v = v * 10 + d;
        (*i)++;
    }
    *out = v;
    return *i > start && !*overflow;
}

int pt_conf_parse_uint(struct pt_str s, uint64_t *out)
{
    size_t i = 0;
    bool overflow;
    if (!read_number(s, &i, out, &overflow) || i != s.len)
        return -1;
    return 0;
}

int pt_conf_parse_bool(struct pt_str s, bool *out)
{
    if (pt_str_eq_lit(s, "true") || pt_str_eq_lit(s, "True") || pt_str_eq_lit(s, "TRUE")) {
        *out = true;
        return 0;
    }
    if (pt_str_eq_lit(s, "false") || pt_str_eq_lit(s, "False") || pt_str_eq_lit(s, "FALSE")) {
        *out = false;
        return 0;
    }
    return -1;
}

static bool mul_add(uint64_t *acc, uint64_t n, uint64_t unit)
{
    if (n != 0 && unit > UINT64_MAX / n)
        return false;
    if (*acc > UINT64_MAX - n * unit)
        return false;
    *acc += n * unit;
    return true;
}

int pt_conf_parse_duration(struct pt_str s, uint64_t *ms, const char **err)
{
    uint64_t total = 0;
    size_t i = 0;
    if (s.len == 0) {
        *err = "empty duration";
        return -1;
    }
    if (pt_str_eq_lit(s, "0")) {
        *ms = 0;
        return 0;
    }
    while (i < s.len) {
        uint64_t n;
        bool overflow;
        if (!read_number(s, &i, &n, &overflow)) {
            *err = overflow ? "duration is too large" : "expected a number";
            return -1;
        }
        if (i == s.len) {
            *err = "duration needs a unit, e.g. 5s or 250ms";
            return -1;
        }
        uint64_t unit;
        char c = s.ptr[i++];
        if (c == 'm' && i < s.len && s.ptr[i] == 's') {
            unit = 1;
            i++;
        } else if (c == 's') {
            unit = 1000;
        } else if (c == 'm') {
            unit = 60 * 1000;
        } else if (c == 'h') {
            unit = 3600 * 1000;
        } else if (c == 'd') {
            unit = 24 * 3600 * 1000;
        } else if (c == '.' || c == ',') {
            *err = "fractions are not supported; use a smaller unit, e.g. 1500ms";
            return -1;
        } else {
            *err = "unknown duration unit (use ms, s, m, h or d)";
            return -1;
        }
        if (!mul_add(&total, n, unit)) {
            *err = "duration is too large";
            return -1;
        }
    }
    *ms = total;
    return 0;
}

int pt_conf_parse_size(struct pt_str s, uint64_t *bytes, const char **err)
{
    size_t i = 0;
    uint64_t n, unit = 1;
    bool overflow;
    if (s.len == 0) {
        *err = "empty size";
        return -1;
    }
    if (!read_number(s, &i, &n, &overflow)) {
        *err = overflow ? "size is too large" : "expected a number";
        return -1;
    }
    if (i < s.len) {
        switch (s.ptr[i++]) {
        case 'k':
        case 'K':
            unit = 1024;
            break;
        case 'm':
        case 'M':
            unit = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            unit = 1024 * 1024 * 1024;
            break;
        case '.':
        case ',':
            *err = "fractions are not supported; use a smaller unit, e.g. 1536k";
            return -1;
        default:
            *err = "unknown size unit (use k, m or g)";
            return -1;
        }
        if (i != s.len) {
            *err = "unknown size unit (use k, m or g)";
            return -1;
        }
    }
    uint64_t total = 0;
    if (!mul_add(&total, n, unit)) {
        *err = "size is too large";
        return -1;
    }
    *bytes = total;
    return 0;
}

/* --- ${ENV} interpolation ------------------------------------------------ */

struct out_buf {
    char *p;
    size_t len, cap;
    bool nomem;
};

static void out_put(struct out_buf *b, const char *s, size_t n)
{
    if (b->nomem || n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 64 : b->cap;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = pt_realloc(b->p, cap);
        if (p == NULL) {
            b->nomem = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || is_digit(c);
}

static const char *lookup(const struct pt_conf_env *env, const char *name)
{
    if (env != NULL && env->fn != NULL)
        return env->fn(env->ctx, name);
    return getenv(name);
}

/*
 * One ${...} reference starting at s[i] (which is "${").  Appends the value
 * and returns the index just past the closing '}', or returns 0 after
 * reporting a problem (the caller stops reporting for this reference and
 * carries on after it).
 */
static size_t expand_one(const char *s, size_t len, size_t i, const struct pt_conf_env *env,
                         struct out_buf *b, pt_conf_expand_err_fn err, void *err_ctx, bool *bad)
{
    size_t start = i, name_start = i + 2, j = name_start;
    while (j < len && is_name_char(s[j]))
        j++;
    size_t name_end = j;
    const char *def = NULL;
    size_t def_len = 0;
    if (j < len && s[j] == ':' && j + 1 < len && s[j + 1] == '-') {
        def = s + j + 2;
        j += 2;
        while (j < len && s[j] != '}') {
            if (s[j] == '$' && j + 1 < len && s[j + 1] == '{') {
                err(err_ctx, j, "nested ${...} in a default value is not supported");
                *bad = true;
                return 0;
            }
            j++;
        }
        def_len = (size_t)(s + j - def);
    }
    if (j >= len) {
        err(err_ctx, start, "unterminated ${ (missing '}'; write $${ for a literal ${)");
        *bad = true;
        return 0;
    }
    if (s[j] != '}') {
        err(err_ctx, start, "invalid variable reference: expected '}' or ':-' after the name");
        *bad = true;
        return 0;
    }
    if (name_end == name_start) {
        err(err_ctx, start, "empty variable name in ${}");
        *bad = true;
        return 0;
    }
    if (!is_name_start(s[name_start])) {
        err(err_ctx, start, "invalid variable name (must start with a letter or '_')");
        *bad = true;
        return 0;
    }
    char name[256];
    size_t nlen = name_end - name_start;
    if (nlen >= sizeof(name)) {
        err(err_ctx, start, "variable name is too long");
        *bad = true;
        return 0;
    }
    memcpy(name, s + name_start, nlen);
    name[nlen] = '\0';
    const char *v = lookup(env, name);
    if (def != NULL && (v == NULL || v[0] == '\0')) {
        out_put(b, def, def_len);
    } else if (v == NULL) {
        char msg[640];
        snprintf(msg, sizeof(msg),
                 "environment variable %s is not set (use ${%s:-default} for a default)", name,
                 name);
        err(err_ctx, start, msg);
        *bad = true;
    } else {
        out_put(b, v, strlen(v));
    }
    return j + 1;
}

int pt_conf_expand_env(struct pt_arena *a, const char *s, size_t len, const struct pt_conf_env *env,
                       struct pt_str *out, pt_conf_expand_err_fn err, void *err_ctx)
{
    *out = pt_str_make(s, len);
    if (len == 0 || memchr(s, '$', len) == NULL)
        return 0;
    struct out_buf b = {0};
    bool bad = false;
    size_t i = 0, lit = 0; /* s[lit..i) is pending literal text */
    while (i < len) {
        if (s[i] != '$') {
            i++;
            continue;
        }
        if (i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
            out_put(&b, s + lit, i - lit); /* "$${" -> "${" */
            out_put(&b, "${", 2);
            i += 3;
            lit = i;
        } else if (i + 1 < len && s[i + 1] == '{') {
            out_put(&b, s + lit, i - lit);
            size_t next = expand_one(s, len, i, env, &b, err, err_ctx, &bad);
            if (next == 0) {
                /* skip to the closing brace (or the end) and keep scanning */
                const char *close = memchr(s + i, '}', len - i);
                next = close == NULL ? len : (size_t)(close - s) + 1;
            }
            i = lit = next;
        } else {
            i++;
        }
    }
    out_put(&b, s + lit, len - lit);
    out_put(&b, "", 0);
    int rc = 0;
    if (b.nomem) {
        rc = PT_ERR_NOMEM;
    } else if (bad) {
        rc = -1;
    } else {
        char *p = pt_arena_strndup(a, b.p == NULL ? "" : b.p, b.len);
        if (p == NULL)
            rc = PT_ERR_NOMEM;
        else
            *out = pt_str_make(p, b.len);
    }
    free(b.p);
    return rc;
}

/* --- did you mean -------------------------------------------------------- */

#define MAX_EDIT_LEN 64

size_t pt_conf_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAX_EDIT_LEN || lb > MAX_EDIT_LEN)
        return SIZE_MAX;
    /* three rows: i-2, i-1, i */
    size_t rows[3][MAX_EDIT_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    size_t *pp = NULL, *prev = rows[0], *cur = rows[1];
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            char ca = pt_tolower_ascii(a[i - 1]), cb = pt_tolower_ascii(b[j - 1]);
            size_t cost = ca == cb ? 0 : 1;
            size_t v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v)
                v = prev[j - 1] + cost;
            if (pp != NULL && j > 1 && ca == pt_tolower_ascii(b[j - 2]) &&
                pt_tolower_ascii(a[i - 2]) == cb && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
        }
        size_t *t = pp == NULL ? rows[2] : pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *pt_conf_suggest(const char *word, const char *const *candidates, size_t n)
{
    size_t wl = strlen(word);
    size_t limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (candidates[i] == NULL)
            continue;
        size_t d = pt_conf_edit_distance(word, candidates[i]);
        if (d <= limit && d < best_d && d < strlen(candidates[i])) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}
