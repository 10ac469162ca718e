/*
 * Header-list helpers for plugins (see headers.h).
 */
#include <string.h>

#include "config/schema.h"
#include "plugins/headers.h"

/* Fields a transform may not touch: the codecs own the framing and the connection. */
static const char *const framing_names[] = {
    "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
    "trailer",        "upgrade",           NULL,
};

static bool name_in(struct pt_str name, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (pt_str_case_eq(name, pt_str_cstr(list[i])))
            return true;
    return false;
}

static int check_name(struct pt_conf_ctx *c, enum pt_hdr_side side, const char *opt,
                      const struct pt_conf_node *n, const char *name)
{
    struct pt_str s = pt_str_cstr(name);
    if (s.len == 0) {
        pt_conf_error(c, n, "%s: a header name must not be empty", opt);
        return -1;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (!pt_h1_tchar[(unsigned char)s.ptr[i]]) {
            pt_conf_error_at(c, n, i, "%s: \"%.100s\" is not a valid header name", opt, name);
            return -1;
        }
    }
    if (name_in(s, framing_names)) {
        pt_conf_error(c, n,
                      "%s: %s is managed by the gateway (framing and connection fields "
                      "cannot be changed)",
                      opt, name);
        return -1;
    }
    if (side == PT_HDR_REQUEST && pt_str_case_eq_lit(s, "host")) {
        pt_conf_error(c, n,
                      "%s: Host cannot be changed here; use the route's preserve_host or "
                      "the service's host",
                      opt);
        return -1;
    }
    return 0;
}

static int check_value(struct pt_conf_ctx *c, const char *opt, const struct pt_conf_node *n,
                       struct pt_str v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.ptr[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            pt_conf_error_at(c, n, i, "%s: header values may not contain control characters", opt);
            return -1;
        }
    }
    return 0;
}

/* Count the fields a `set`/`add` map yields (a list value gives one per element). */
static size_t count_values(const struct pt_conf_node *map)
{
    size_t k = 0;
    for (size_t i = 0; i < map->map.n; i++) {
        const struct pt_conf_node *v = map->map.pairs[i].value;
        k += v->kind == PT_CONF_SEQ ? v->seq.n : 1;
    }
    return k;
}

static int one_value(struct pt_conf_ctx *c, const char *opt, const struct pt_conf_node *v,
                     struct pt_str name, struct pt_h1_header *out, size_t *k)
{
    if (v->kind != PT_CONF_SCALAR) {
        pt_conf_error(c, v, "%s: expected a string or a list of strings, got %s", opt,
                      pt_conf_kind_name(v));
        return -1;
    }
    if (v->scalar.invalid)
        return -1;
    if (pt_conf_is_null(v)) {
        pt_conf_error(c, v, "%s: %.*s needs a value (write \"\" for an empty one)", opt,
                      PT_STR_FMT(name));
        return -1;
    }
    struct pt_str s = pt_str_make(v->scalar.value, v->scalar.len);
    if (check_value(c, opt, v, s) != 0)
        return -1;
    out[*k].name = name;
    out[*k].value = s;
    (*k)++;
    return 0;
}

static int parse_map(struct pt_conf_ctx *c, enum pt_hdr_side side, const char *opt,
                     const struct pt_conf_node *map, struct pt_h1_header **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (map == NULL || pt_conf_is_null(map))
        return 0;
    if (map->kind != PT_CONF_MAP) {
        pt_conf_error(c, map, "%s: expected a map of header names to values, got %s", opt,
                      pt_conf_kind_name(map));
        return -1;
    }
    size_t cap = count_values(map);
    struct pt_h1_header *hs = pt_arena_calloc(c->a, (cap + 1) * sizeof(*hs));
    if (hs == NULL) {
        pt_conf_error(c, map, "out of memory");
        return -1;
    }
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < map->map.n; i++) {
        const struct pt_conf_node *key = map->map.pairs[i].key;
        const struct pt_conf_node *v = map->map.pairs[i].value;
        if (check_name(c, side, opt, key, key->scalar.value) != 0) {
            rc = -1;
            continue;
        }
        struct pt_str name = pt_str_cstr(key->scalar.value);
        if (v->kind == PT_CONF_SEQ) {
            if (v->seq.n == 0) {
                pt_conf_error(c, v, "%s: %s: the list of values is empty", opt, key->scalar.value);
                rc = -1;
            }
            for (size_t j = 0; j < v->seq.n; j++)
                if (one_value(c, opt, v->seq.items[j], name, hs, &k) != 0)
                    rc = -1;
        } else if (one_value(c, opt, v, name, hs, &k) != 0) {
            rc = -1;
        }
    }
    *out = hs;
    *nout = k;
    return rc;
}

static int parse_list(struct pt_conf_ctx *c, enum pt_hdr_side side, const char *opt,
                      const struct pt_conf_node *seq, struct pt_str **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (seq == NULL || pt_conf_is_null(seq))
        return 0;
    if (pt_conf_expect_seq(c, opt, seq) != 0)
        return -1;
    struct pt_str *names = pt_arena_calloc(c->a, (seq->seq.n + 1) * sizeof(*names));
    if (names == NULL) {
        pt_conf_error(c, seq, "out of memory");
        return -1;
    }
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < seq->seq.n; i++) {
        const char *s;
        if (pt_conf_get_string(c, opt, seq->seq.items[i], &s) != 0 ||
            check_name(c, side, opt, seq->seq.items[i], s) != 0) {
            rc = -1;
            continue;
        }
        names[k++] = pt_str_cstr(s);
    }
    *out = names;
    *nout = k;
    return rc;
}

int pt_hdr_ops_configure(struct pt_conf_ctx *c, enum pt_hdr_side side,
                         const struct pt_conf_node *set, const struct pt_conf_node *add,
                         const struct pt_conf_node *remove, struct pt_hdr_ops *ops)
{
    int rc = 0;
    memset(ops, 0, sizeof(*ops));
    if (parse_map(c, side, "set", set, &ops->set, &ops->nset) != 0)
        rc = -1;
    if (parse_map(c, side, "add", add, &ops->add, &ops->nadd) != 0)
        rc = -1;
    if (parse_list(c, side, "remove", remove, &ops->remove, &ops->nremove) != 0)
        rc = -1;
    return rc;
}

static bool removed(const struct pt_hdr_ops *ops, struct pt_str name)
{
    for (size_t i = 0; i < ops->nremove; i++)
        if (pt_str_case_eq(name, ops->remove[i]))
            return true;
    for (size_t i = 0; i < ops->nset; i++)
        if (pt_str_case_eq(name, ops->set[i].name))
            return true;
    return false;
}

int pt_hdr_ops_apply(const struct pt_hdr_ops *ops, struct pt_arena *a, struct pt_h1_header **hs,
                     size_t *n)
{
    struct pt_h1_header *out = pt_arena_alloc(a, (*n + ops->nset + ops->nadd + 1) * sizeof(*out));
    if (out == NULL)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (!removed(ops, (*hs)[i].name))
            out[k++] = (*hs)[i];
    for (size_t i = 0; i < ops->nset; i++)
        out[k++] = ops->set[i];
    for (size_t i = 0; i < ops->nadd; i++)
        out[k++] = ops->add[i];
    *hs = out;
    *n = k;
    return 0;
}

int pt_hdr_edit(struct pt_arena *a, struct pt_h1_header **hs, size_t *n, const struct pt_str *names,
                size_t nnames, const struct pt_h1_header *extra, size_t nextra)
{
    struct pt_h1_header *out = pt_arena_alloc(a, (*n + nextra + 1) * sizeof(*out));
    if (out == NULL)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        bool drop = false;
        for (size_t j = 0; j < nnames && !drop; j++)
            drop = pt_str_case_eq((*hs)[i].name, names[j]);
        if (!drop)
            out[k++] = (*hs)[i];
    }
    for (size_t i = 0; i < nextra; i++)
        out[k++] = extra[i];
    *hs = out;
    *n = k;
    return 0;
}

bool pt_hdr_is_json_type(struct pt_str ct)
{
    const char *semi = ct.len > 0 ? memchr(ct.ptr, ';', ct.len) : NULL;
    struct pt_str mt =
        pt_str_trim_ows(semi != NULL ? pt_str_make(ct.ptr, (size_t)(semi - ct.ptr)) : ct);
    if (pt_str_case_eq_lit(mt, "application/json"))
        return true;
    /* structured syntax suffix (RFC 6839): application/problem+json, vnd.api+json, ... */
    return mt.len > 17 && pt_str_case_eq_lower_n(pt_str_make(mt.ptr, 12), "application/", 12) &&
           pt_str_case_eq_lit(pt_str_make(mt.ptr + mt.len - 5, 5), "+json");
}

bool pt_hdr_body_is_json(const struct pt_h1_header *hs, size_t n)
{
    const struct pt_h1_header *ct = pt_h1_find_header(hs, n, PT_STR_LIT("Content-Type"));
    if (ct == NULL || !pt_hdr_is_json_type(ct->value))
        return false;
    const struct pt_h1_header *ce = pt_h1_find_header(hs, n, PT_STR_LIT("Content-Encoding"));
    return ce == NULL || ce->value.len == 0 || pt_str_case_eq_lit(ce->value, "identity");
}
