/*
 * The key-table walker and the typed value readers every section uses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/compiler.h"
#include "config/schema.h"
#include "config/value.h"

__attribute__((format(printf, 6, 0))) static void vreport(struct pt_conf_ctx *c, bool is_error,
                                                          const char *file, int line, int col,
                                                          const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (is_error)
        pt_diag_error(c->d, file, line, col, "%s", msg);
    else
        pt_diag_warn(c->d, file, line, col, "%s", msg);
}

void pt_conf_error(struct pt_conf_ctx *c, const struct pt_conf_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, true, n->file, n->line, n->col, fmt, ap);
    va_end(ap);
}

void pt_conf_error_at(struct pt_conf_ctx *c, const struct pt_conf_node *n, size_t off,
                      const char *fmt, ...)
{
    int line = n->line, col = n->col;
    if (n->kind == PT_CONF_SCALAR && n->scalar.value == n->scalar.raw)
        pt_conf_node_pos_at(n, off, &line, &col); /* offsets into an expansion do not map */
    va_list ap;
    va_start(ap, fmt);
    vreport(c, true, n->file, line, col, fmt, ap);
    va_end(ap);
}

void pt_conf_warn(struct pt_conf_ctx *c, const struct pt_conf_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, false, n->file, n->line, n->col, fmt, ap);
    va_end(ap);
}

/* --- formatting bounds the way they would be written ---------------------- */

static void fmt_duration(uint64_t ms, char *buf, size_t size)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < PT_ARRAY_SIZE(units); i++) {
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, size, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(buf, size, "%llums", (unsigned long long)ms);
}

static void fmt_size(uint64_t n, char *buf, size_t size)
{
    static const struct {
        uint64_t n;
        const char *unit;
    } units[] = {{1u << 30, "g"}, {1u << 20, "m"}, {1u << 10, "k"}};
    for (size_t i = 0; i < PT_ARRAY_SIZE(units); i++) {
        if (n != 0 && n % units[i].n == 0) {
            snprintf(buf, size, "%llu%s", (unsigned long long)(n / units[i].n), units[i].unit);
            return;
        }
    }
    snprintf(buf, size, "%llu", (unsigned long long)n);
}

static void fmt_plain(uint64_t n, char *buf, size_t size)
{
    snprintf(buf, size, "%llu", (unsigned long long)n);
}

typedef void (*fmt_fn)(uint64_t, char *, size_t);

static int check_bounds(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                        uint64_t v, uint64_t min, uint64_t max, fmt_fn fmt)
{
    if (v >= min && v <= max)
        return 0;
    char lo[32], hi[32];
    fmt(min, lo, sizeof(lo));
    fmt(max, hi, sizeof(hi));
    if (max == PT_CONF_NO_MAX)
        pt_conf_error(c, n, "%s: must be at least %s", name, lo);
    else if (min == 0)
        pt_conf_error(c, n, "%s: must be at most %s", name, hi);
    else
        pt_conf_error(c, n, "%s: must be between %s and %s", name, lo, hi);
    return -1;
}

/* --- typed readers -------------------------------------------------------- */

/* A scalar's expanded text, or -1 after reporting what it was instead. */
static int scalar(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                  const char *what, struct pt_str *out)
{
    if (n->kind != PT_CONF_SCALAR) {
        pt_conf_error(c, n, "%s: expected %s, got %s", name, what, pt_conf_kind_name(n));
        return -1;
    }
    if (n->scalar.invalid)
        return -1;
    *out = pt_str_make(n->scalar.value, n->scalar.len);
    return 0;
}

int pt_conf_get_string(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                       const char **out)
{
    struct pt_str s;
    if (scalar(c, name, n, "a string", &s) != 0)
        return -1;
    *out = s.ptr;
    return 0;
}

int pt_conf_get_uint(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                     uint64_t min, uint64_t max, uint64_t *out)
{
    struct pt_str s;
    if (scalar(c, name, n, "an integer", &s) != 0)
        return -1;
    uint64_t v;
    if (pt_conf_parse_uint(s, &v) != 0) {
        pt_conf_error(c, n, "%s: expected an integer, got \"%.*s\"", name, PT_STR_FMT(s));
        return -1;
    }
    if (check_bounds(c, name, n, v, min, max, fmt_plain) != 0)
        return -1;
    *out = v;
    return 0;
}

int pt_conf_get_duration(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                         uint64_t *out)
{
    struct pt_str s;
    const char *err;
    if (scalar(c, name, n, "a duration (e.g. 5s)", &s) != 0)
        return -1;
    if (pt_conf_parse_duration(s, out, &err) != 0) {
        pt_conf_error(c, n, "%s: %s", name, err);
        return -1;
    }
    return 0;
}

int pt_conf_get_size(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                     uint64_t *out)
{
    struct pt_str s;
    const char *err;
    if (scalar(c, name, n, "a size (e.g. 16k)", &s) != 0)
        return -1;
    if (pt_conf_parse_size(s, out, &err) != 0) {
        pt_conf_error(c, n, "%s: %s", name, err);
        return -1;
    }
    return 0;
}

int pt_conf_get_bool(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                     bool *out)
{
    struct pt_str s;
    if (scalar(c, name, n, "true or false", &s) != 0)
        return -1;
    if (pt_conf_parse_bool(s, out) != 0) {
        pt_conf_error(c, n, "%s: expected true or false, got \"%.*s\"", name, PT_STR_FMT(s));
        return -1;
    }
    return 0;
}

int pt_conf_expect_seq(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n)
{
    if (pt_conf_is_null(n) || n->kind == PT_CONF_SEQ)
        return 0;
    pt_conf_error(c, n, "%s: expected a list, got %s", name, pt_conf_kind_name(n));
    return -1;
}

int pt_conf_expect_map(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n)
{
    if (pt_conf_is_null(n) || n->kind == PT_CONF_MAP)
        return 0;
    pt_conf_error(c, n, "%s: expected a map, got %s", name, pt_conf_kind_name(n));
    return -1;
}

/* --- storing -------------------------------------------------------------- */

static void store_uint(void *field, size_t size, uint64_t v)
{
    switch (size) {
    case 1: {
        uint8_t x = (uint8_t)v;
        memcpy(field, &x, 1);
        break;
    }
    case 2: {
        uint16_t x = (uint16_t)v;
        memcpy(field, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, 4);
        break;
    }
    case 8:
        memcpy(field, &v, 8);
        break;
    default:
        PT_BUG_ON("unsupported field size" != NULL);
    }
}

static int find_name(const char *const *names, struct pt_str s)
{
    for (int i = 0; names[i] != NULL; i++)
        if (strlen(names[i]) == s.len && memcmp(names[i], s.ptr, s.len) == 0)
            return i;
    return -1;
}

static int get_enum(struct pt_conf_ctx *c, const struct pt_conf_key *k,
                    const struct pt_conf_node *n, int *out)
{
    struct pt_str s;
    if (scalar(c, k->name, n, "a name", &s) != 0)
        return -1;
    int i = find_name(k->names, s);
    if (i >= 0) {
        *out = i;
        return 0;
    }
    char list[256] = "";
    size_t count = 0;
    for (const char *const *p = k->names; *p != NULL; p++, count++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", *p);
    }
    char word[128];
    snprintf(word, sizeof(word), "%.*s", (int)(s.len < 127 ? s.len : 127), s.ptr);
    const char *hint = pt_conf_suggest(word, k->names, count);
    if (hint != NULL)
        pt_conf_error(c, n, "%s: unknown value \"%s\" (did you mean \"%s\"?)", k->name, word, hint);
    else
        pt_conf_error(c, n, "%s: unknown value \"%s\" (expected one of: %s)", k->name, word, list);
    return -1;
}

static int apply_value(struct pt_conf_ctx *c, const struct pt_conf_key *k,
                       const struct pt_conf_node *key, const struct pt_conf_node *n, void *target,
                       const char *where)
{
    void *field = (char *)target + k->offset;
    uint64_t v;
    switch (k->type) {
    case PT_CONF_T_STRING: {
        const char *s;
        if (pt_conf_get_string(c, k->name, n, &s) != 0)
            return -1;
        memcpy(field, &s, sizeof(s));
        return 0;
    }
    case PT_CONF_T_BOOL: {
        bool b;
        if (pt_conf_get_bool(c, k->name, n, &b) != 0)
            return -1;
        memcpy(field, &b, sizeof(b));
        return 0;
    }
    case PT_CONF_T_UINT:
        if (pt_conf_get_uint(c, k->name, n, k->min, k->max, &v) != 0)
            return -1;
        store_uint(field, k->size, v);
        return 0;
    case PT_CONF_T_DURATION:
        if (pt_conf_get_duration(c, k->name, n, &v) != 0 ||
            check_bounds(c, k->name, n, v, k->min, k->max, fmt_duration) != 0)
            return -1;
        memcpy(field, &v, sizeof(v));
        return 0;
    case PT_CONF_T_SIZE:
        if (pt_conf_get_size(c, k->name, n, &v) != 0 ||
            check_bounds(c, k->name, n, v, k->min, k->max, fmt_size) != 0)
            return -1;
        memcpy(field, &v, sizeof(v));
        return 0;
    case PT_CONF_T_ENUM: {
        int e;
        PT_BUG_ON(k->size != sizeof(int));
        if (get_enum(c, k, n, &e) != 0)
            return -1;
        memcpy(field, &e, sizeof(e));
        return 0;
    }
    case PT_CONF_T_SECTION: {
        char sub[256];
        snprintf(sub, sizeof(sub), "%s%s%s", where ? where : "", where ? "." : "", k->name);
        if (pt_conf_expect_map(c, k->name, n) != 0)
            return -1;
        return pt_conf_apply(c, k->sub, n, target, sub, NULL);
    }
    case PT_CONF_T_NODE:
        memcpy(field, &n, sizeof(n));
        return 0;
    case PT_CONF_T_CUSTOM:
        return k->parse(c, n, target);
    case PT_CONF_T_UNSUPPORTED:
        if (k->def != NULL)
            pt_conf_error(c, key, "%s", k->def);
        else
            pt_conf_error(c, key, "%s is not supported yet", k->name);
        return -1;
    default:
        PT_BUG_ON("unknown key type" != NULL);
        return -1;
    }
}

void pt_conf_apply_defaults(const struct pt_conf_key *keys, void *target)
{
    for (const struct pt_conf_key *k = keys; k->name != NULL; k++) {
        void *field = (char *)target + k->offset;
        uint64_t v = 0;
        const char *err = NULL;
        if (k->type == PT_CONF_T_SECTION) {
            pt_conf_apply_defaults(k->sub, target);
            continue;
        }
        if (k->def == NULL || k->type == PT_CONF_T_UNSUPPORTED)
            continue;
        struct pt_str d = pt_str_cstr(k->def);
        switch (k->type) {
        case PT_CONF_T_STRING:
            memcpy(field, &k->def, sizeof(k->def));
            break;
        case PT_CONF_T_BOOL: {
            bool b = false;
            PT_BUG_ON(pt_conf_parse_bool(d, &b) != 0);
            memcpy(field, &b, sizeof(b));
            break;
        }
        case PT_CONF_T_UINT:
            PT_BUG_ON(pt_conf_parse_uint(d, &v) != 0);
            store_uint(field, k->size, v);
            break;
        case PT_CONF_T_DURATION:
            PT_BUG_ON(pt_conf_parse_duration(d, &v, &err) != 0);
            memcpy(field, &v, sizeof(v));
            break;
        case PT_CONF_T_SIZE:
            PT_BUG_ON(pt_conf_parse_size(d, &v, &err) != 0);
            memcpy(field, &v, sizeof(v));
            break;
        case PT_CONF_T_ENUM: {
            int e = find_name(k->names, d);
            PT_BUG_ON(e < 0);
            memcpy(field, &e, sizeof(e));
            break;
        }
        default:
            break;
        }
    }
}

static void unknown_key(struct pt_conf_ctx *c, const struct pt_conf_key *keys,
                        const struct pt_conf_node *key, const char *where)
{
    const char *names[64];
    size_t n = 0;
    for (const struct pt_conf_key *k = keys; k->name != NULL && n < PT_ARRAY_SIZE(names); k++)
        names[n++] = k->name;
    const char *hint = pt_conf_suggest(key->scalar.raw, names, n);
    char in[300] = "";
    if (where != NULL)
        snprintf(in, sizeof(in), " in %s", where);
    if (hint != NULL)
        pt_conf_error(c, key, "unknown key \"%.100s\"%s (did you mean \"%s\"?)", key->scalar.raw,
                      in, hint);
    else
        pt_conf_error(c, key, "unknown key \"%.100s\"%s", key->scalar.raw, in);
}

int pt_conf_apply(struct pt_conf_ctx *c, const struct pt_conf_key *keys,
                  const struct pt_conf_node *map, void *target, const char *where, uint64_t *seen)
{
    size_t before = c->d->nerrors;
    uint64_t present = 0;
    int rc = 0;
    pt_conf_apply_defaults(keys, target);
    if (map != NULL && !pt_conf_is_null(map) && map->kind != PT_CONF_MAP) {
        pt_conf_error(c, map, "%s%sexpected a map, got %s", where ? where : "", where ? ": " : "",
                      pt_conf_kind_name(map));
        map = NULL;
    }
    size_t npairs = map != NULL && map->kind == PT_CONF_MAP ? map->map.n : 0;
    for (size_t i = 0; i < npairs; i++) {
        const struct pt_conf_pair *p = &map->map.pairs[i];
        size_t ki = 0;
        while (keys[ki].name != NULL && strcmp(keys[ki].name, p->key->scalar.raw) != 0)
            ki++;
        const struct pt_conf_key *k = &keys[ki];
        if (k->name == NULL) {
            unknown_key(c, keys, p->key, where);
            continue;
        }
        if (ki < 64)
            present |= (uint64_t)1 << ki;
        if (pt_conf_is_null(p->value) && k->type != PT_CONF_T_SECTION &&
            k->type != PT_CONF_T_CUSTOM && k->type != PT_CONF_T_UNSUPPORTED) {
            if (k->required) {
                pt_conf_error(c, p->value, "%s: a value is required", k->name);
                rc = -1;
            }
            continue; /* null: the default stays */
        }
        if (apply_value(c, k, p->key, p->value, target, where) != 0)
            rc = -1; /* maybe silently: a value already reported (e.g. an unset ${VAR}) */
    }
    for (size_t ki = 0; keys[ki].name != NULL; ki++) {
        if (!keys[ki].required || (ki < 64 && (present & ((uint64_t)1 << ki))))
            continue;
        if (map != NULL)
            pt_conf_error(c, map, "missing required key \"%s\"%s%s", keys[ki].name,
                          where ? " in " : "", where ? where : "");
    }
    if (seen != NULL)
        *seen = present;
    return c->d->nerrors > before ? -1 : rc;
}

void pt_conf_note_file(struct pt_conf_ctx *c, const char *path)
{
    struct pt_snapshot *s = c->snap;
    if (path == NULL)
        return;
    for (size_t i = 0; i < s->nfiles; i++)
        if (strcmp(s->files[i], path) == 0)
            return;
    if (s->nfiles == s->files_cap) {
        size_t cap = s->files_cap ? s->files_cap * 2 : 8;
        const char **v = pt_arena_alloc(c->a, cap * sizeof(*v));
        if (v == NULL)
            return;
        if (s->nfiles > 0)
            memcpy(v, s->files, s->nfiles * sizeof(*v));
        s->files = v;
        s->files_cap = cap;
    }
    s->files[s->nfiles++] = path;
}
