/*
 * JSON field edits (see json_edit.h).
 *
 * The edits form a trie of member names: the root stands for the document,
 * each node for one path segment, marked "remove", "rename" or neither (an
 * inner segment of a longer path).  The rewriter is a recursive-descent
 * validator that copies its input to the output as it goes, carrying the
 * trie node that applies at the current depth (NULL once no edit can apply
 * below, which turns the walk into plain validation and copying).
 *
 * Output shape: a kept member is written as it came (the whitespace before
 * its key, the key or its new name, the separator, the value, the
 * whitespace after the value), preceded by a comma unless it is the first
 * kept member, which takes the spacing the object's first member had; a
 * removed member is dropped with its whitespace.  So a pretty-printed
 * document stays pretty-printed.
 */
#include <stdint.h>
#include <string.h>

#include "core/str.h"
#include "http/problem.h"
#include "plugins/json_edit.h"

enum action {
    ACT_NONE = 0,
    ACT_REMOVE,
    ACT_RENAME,
};

struct node {
    const char *key; /* decoded member name */
    size_t keylen;
    enum action action;
    const char *new_key; /* RENAME: the new name, JSON-encoded with its quotes */
    size_t new_key_len;
    struct node *child, *next;
};

struct pt_json_edit {
    struct node root;
    size_t max_key; /* longest segment: longer member names cannot match */
};

struct pt_json_edit *pt_json_edit_new(struct pt_arena *a)
{
    return pt_arena_calloc(a, sizeof(struct pt_json_edit));
}

bool pt_json_edit_empty(const struct pt_json_edit *e)
{
    return e == NULL || e->root.child == NULL;
}

static struct node *find_child(const struct node *n, const char *key, size_t len)
{
    for (struct node *c = n->child; c != NULL; c = c->next)
        if (c->keylen == len && memcmp(c->key, key, len) == 0)
            return c;
    return NULL;
}

int pt_json_edit_add(struct pt_json_edit *e, struct pt_arena *a, const char *path,
                     const char *rename_to, const char **err)
{
    struct node *n = &e->root;
    const char *p = path;
    if (*p == '\0') {
        *err = "the path is empty";
        return -1;
    }
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (len == 0) {
            *err = "the path has an empty segment (\"a..b\", or a leading or trailing dot)";
            return -1;
        }
        if (len > PT_JSON_EDIT_MAX_KEY) {
            *err = "a path segment is longer than 256 bytes";
            return -1;
        }
        struct node *c = find_child(n, p, len);
        if (c == NULL) {
            c = pt_arena_calloc(a, sizeof(*c));
            char *k = pt_arena_strndup(a, p, len);
            if (c == NULL || k == NULL) {
                *err = "out of memory";
                return -1;
            }
            c->key = k;
            c->keylen = len;
            c->next = n->child;
            n->child = c;
            if (len > e->max_key)
                e->max_key = len;
        }
        n = c;
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    if (n->action != ACT_NONE) {
        *err = "this path is already edited (by remove_fields or rename_fields)";
        return -1;
    }
    if (rename_to == NULL) {
        n->action = ACT_REMOVE;
        return 0;
    }
    struct pt_str s = pt_str_cstr(rename_to);
    size_t need = pt_json_escape(NULL, 0, s);
    char *q = pt_arena_alloc(a, need + 3);
    if (q == NULL) {
        *err = "out of memory";
        return -1;
    }
    q[0] = '"';
    pt_json_escape(q + 1, need + 1, s);
    q[need + 1] = '"';
    q[need + 2] = '\0';
    n->action = ACT_RENAME;
    n->new_key = q;
    n->new_key_len = need + 2;
    return 0;
}

/* ---- the rewriter ---- */

struct rw {
    const char *p, *end;
    struct pt_buf *out;
    size_t max_out;
    size_t max_key;
    int depth;
    bool changed;
    bool failed; /* invalid input or output limit */
};

static void emit(struct rw *w, bool on, const char *s, size_t n)
{
    if (!on || n == 0 || w->failed)
        return;
    if (pt_buf_append(w->out, s, n, w->max_out) != 0)
        w->failed = true;
}

static void skip_ws(struct rw *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r'))
        w->p++;
}

static int hex4(const char *p, const char *end, uint32_t *out)
{
    if (end - p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = pt_hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | cp >> 12);
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | cp >> 18);
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * A string at w->p (the opening quote).  Validates it, advances past the
 * closing quote and, when key != NULL, decodes it into key[0..keycap) (*keylen
 * = SIZE_MAX when it did not fit).  Copies nothing.
 */
static int scan_string(struct rw *w, char *key, size_t keycap, size_t *keylen)
{
    const char *p = w->p + 1;
    size_t k = 0;
    bool fits = true;
    for (;;) {
        if (p >= w->end)
            return -1;
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        char tmp[4];
        size_t tl = 0;
        if (c == '\\') {
            if (p + 1 >= w->end)
                return -1;
            char e = p[1];
            p += 2;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                tmp[tl++] = e;
                break;
            case 'b':
                tmp[tl++] = '\b';
                break;
            case 'f':
                tmp[tl++] = '\f';
                break;
            case 'n':
                tmp[tl++] = '\n';
                break;
            case 'r':
                tmp[tl++] = '\r';
                break;
            case 't':
                tmp[tl++] = '\t';
                break;
            case 'u': {
                uint32_t cp;
                if (hex4(p, w->end, &cp) != 0)
                    return -1;
                p += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && w->end - p >= 6 && p[0] == '\\' &&
                    p[1] == 'u') {
                    uint32_t lo;
                    if (hex4(p + 2, w->end, &lo) != 0)
                        return -1;
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        p += 6;
                    }
                }
                if (cp >= 0xd800 && cp <= 0xdfff)
                    cp = 0xfffd; /* a lone surrogate names nothing we could match */
                tl = put_utf8(tmp, cp);
                break;
            }
            default:
                return -1;
            }
        } else {
            tmp[tl++] = (char)c;
            p++;
        }
        if (key != NULL && fits) {
            if (k + tl > keycap)
                fits = false;
            else
                memcpy(key + k, tmp, tl);
            k += tl;
        }
    }
    w->p = p + 1;
    if (keylen != NULL)
        *keylen = fits ? k : SIZE_MAX;
    return 0;
}

static int scan_number(struct rw *w)
{
    const char *p = w->p, *e = w->end;
    if (p < e && *p == '-')
        p++;
    if (p >= e)
        return -1;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    } else {
        return -1;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return -1;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return -1;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    w->p = p;
    return 0;
}

static int scan_literal(struct rw *w, const char *lit, size_t n)
{
    if ((size_t)(w->end - w->p) < n || memcmp(w->p, lit, n) != 0)
        return -1;
    w->p += n;
    return 0;
}

static int value(struct rw *w, const struct node *n, bool on);

static int object(struct rw *w, const struct node *n, bool on)
{
    char key[PT_JSON_EDIT_MAX_KEY];
    size_t keycap = w->max_key;
    emit(w, on, "{", 1);
    w->p++;
    const char *ws = w->p;
    skip_ws(w);
    if (w->p < w->end && *w->p == '}') { /* {} */
        emit(w, on, ws, (size_t)(w->p - ws));
        emit(w, on, "}", 1);
        w->p++;
        return 0;
    }
    w->p = ws;
    const char *first_ws = ws, *first_ws_end = NULL; /* the spacing after '{' */
    size_t kept = 0;
    for (;;) {
        ws = w->p;
        skip_ws(w);
        if (first_ws_end == NULL)
            first_ws_end = w->p;
        if (w->p >= w->end || *w->p != '"')
            return -1; /* also a trailing comma */
        const char *kstart = w->p;
        size_t klen = 0;
        bool match = n != NULL && n->child != NULL;
        if (scan_string(w, match ? key : NULL, keycap, &klen) != 0)
            return -1;
        const char *kend = w->p;
        const struct node *c = match && klen != SIZE_MAX ? find_child(n, key, klen) : NULL;
        const char *sep = w->p;
        skip_ws(w);
        if (w->p >= w->end || *w->p != ':')
            return -1;
        w->p++;
        skip_ws(w);
        const char *sep_end = w->p;
        bool keep = c == NULL || c->action != ACT_REMOVE;
        bool mon = on && keep;
        if (mon) {
            if (kept > 0)
                emit(w, true, ",", 1);
            if (kept == 0) /* members before were removed: space it as the first one was */
                emit(w, true, first_ws, (size_t)(first_ws_end - first_ws));
            else
                emit(w, true, ws, (size_t)(kstart - ws));
            if (c != NULL && c->action == ACT_RENAME) {
                emit(w, true, c->new_key, c->new_key_len);
                w->changed = true;
            } else {
                emit(w, true, kstart, (size_t)(kend - kstart));
            }
            emit(w, true, sep, (size_t)(sep_end - sep));
        } else if (on) {
            w->changed = true;
        }
        if (value(w, c, mon) != 0)
            return -1;
        const char *after = w->p;
        skip_ws(w);
        emit(w, mon, after, (size_t)(w->p - after));
        if (keep)
            kept++;
        if (w->p >= w->end)
            return -1;
        if (*w->p == ',') {
            w->p++;
            continue;
        }
        if (*w->p != '}')
            return -1;
        break;
    }
    emit(w, on, "}", 1);
    w->p++;
    return 0;
}

static int array(struct rw *w, const struct node *n, bool on)
{
    emit(w, on, "[", 1);
    w->p++;
    const char *ws = w->p;
    skip_ws(w);
    if (w->p < w->end && *w->p == ']') {
        emit(w, on, ws, (size_t)(w->p - ws));
        emit(w, on, "]", 1);
        w->p++;
        return 0;
    }
    w->p = ws;
    for (;;) {
        ws = w->p;
        skip_ws(w);
        emit(w, on, ws, (size_t)(w->p - ws));
        if (value(w, n, on) != 0)
            return -1;
        ws = w->p;
        skip_ws(w);
        emit(w, on, ws, (size_t)(w->p - ws));
        if (w->p >= w->end)
            return -1;
        if (*w->p == ',') {
            emit(w, on, ",", 1);
            w->p++;
            continue;
        }
        if (*w->p != ']')
            return -1;
        emit(w, on, "]", 1);
        w->p++;
        return 0;
    }
}

/* One value at w->p (no leading whitespace).  n: the trie node for it (NULL: no edits below). */
static int value(struct rw *w, const struct node *n, bool on)
{
    if (w->p >= w->end)
        return -1;
    const char *start = w->p;
    int rc;
    switch (*w->p) {
    case '{':
    case '[':
        if (++w->depth > PT_JSON_EDIT_MAX_DEPTH)
            return -1;
        rc = *w->p == '{' ? object(w, n, on) : array(w, n, on);
        w->depth--;
        return rc;
    case '"':
        rc = scan_string(w, NULL, 0, NULL);
        break;
    case 't':
        rc = scan_literal(w, "true", 4);
        break;
    case 'f':
        rc = scan_literal(w, "false", 5);
        break;
    case 'n':
        rc = scan_literal(w, "null", 4);
        break;
    default:
        rc = scan_number(w);
        break;
    }
    if (rc == 0)
        emit(w, on, start, (size_t)(w->p - start));
    return rc;
}

enum pt_json_edit_result pt_json_edit_apply(const struct pt_json_edit *e, const char *in,
                                            size_t len, struct pt_buf *out, size_t max_out)
{
    struct rw w = {
        .p = in,
        .end = in + len,
        .out = out,
        .max_out = max_out,
        .max_key = e->max_key,
    };
    if (pt_buf_reserve(out, len + 64 < max_out ? len + 64 : max_out, max_out) == NULL)
        return PT_JSON_EDIT_INVALID;
    const char *ws = w.p;
    skip_ws(&w);
    emit(&w, true, ws, (size_t)(w.p - ws));
    if (value(&w, &e->root, true) != 0)
        return PT_JSON_EDIT_INVALID;
    ws = w.p;
    skip_ws(&w);
    emit(&w, true, ws, (size_t)(w.p - ws));
    if (w.p != w.end || w.failed)
        return PT_JSON_EDIT_INVALID;
    return w.changed ? PT_JSON_EDIT_CHANGED : PT_JSON_EDIT_UNCHANGED;
}
