/*
 * Node tree -> JSON (jansson), for the admin API's GET /config.
 *
 * Plain scalars are typed the way YAML's core schema would read them (null,
 * booleans, integers, floats); everything else, and every quoted scalar,
 * is a string.  In raw mode a scalar that still holds a ${NAME} reference
 * is a string whatever it looks like.  Alias nesting is bounded by
 * PT_CONF_MAX_NODES, so the expanded output is bounded too.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "config/node.h"

static bool looks_int(struct pt_str v)
{
    size_t i = 0;
    if (v.len > 0 && (v.ptr[0] == '-' || v.ptr[0] == '+'))
        i++;
    if (i == v.len)
        return false;
    for (; i < v.len; i++)
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return false;
    return true;
}

/* [-+]? digits [. digits] [eE [-+] digits], with at least one digit before or after '.' */
static bool looks_float(struct pt_str v)
{
    size_t i = 0, digits = 0;
    if (i < v.len && (v.ptr[i] == '-' || v.ptr[i] == '+'))
        i++;
    while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9')
        i++, digits++;
    if (i < v.len && v.ptr[i] == '.') {
        i++;
        while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return false;
    if (i < v.len && (v.ptr[i] == 'e' || v.ptr[i] == 'E')) {
        i++;
        if (i < v.len && (v.ptr[i] == '-' || v.ptr[i] == '+'))
            i++;
        size_t exp = 0;
        while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9')
            i++, exp++;
        if (exp == 0)
            return false;
    }
    return i == v.len;
}

/* A JSON string; bytes that are not valid UTF-8 (possible from the environment) become '?'. */
static json_t *string_json(struct pt_str v)
{
    json_t *j = json_stringn(v.ptr, v.len);
    if (j != NULL || v.len == 0)
        return j;
    char *copy = pt_malloc(v.len);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < v.len; i++)
        copy[i] = (unsigned char)v.ptr[i] < 0x80 ? v.ptr[i] : '?';
    j = json_stringn(copy, v.len);
    free(copy);
    return j;
}

static json_t *scalar_json(const struct pt_conf_node *n, bool raw)
{
    struct pt_str v = raw ? pt_str_make(n->scalar.raw, n->scalar.raw_len)
                          : pt_str_make(n->scalar.value, n->scalar.len);
    if (n->scalar.quoted || (raw && memchr(v.ptr, '$', v.len) != NULL))
        return string_json(v);
    if (v.len == 0 || pt_str_eq_lit(v, "~") || pt_str_eq_lit(v, "null") ||
        pt_str_eq_lit(v, "Null") || pt_str_eq_lit(v, "NULL"))
        return json_null();
    bool b;
    if (pt_conf_parse_bool(v, &b) == 0)
        return json_boolean(b);
    if (v.len < 64 && (looks_int(v) || looks_float(v))) {
        char buf[64];
        memcpy(buf, v.ptr, v.len);
        buf[v.len] = '\0';
        if (looks_int(v)) {
            errno = 0;
            long long x = strtoll(buf, NULL, 10);
            if (errno == 0)
                return json_integer((json_int_t)x);
        }
        double d = strtod(buf, NULL);
        if (isfinite(d))
            return json_real(d);
    }
    return string_json(v);
}

json_t *pt_conf_node_to_json(const struct pt_conf_node *n, bool raw)
{
    if (n == NULL)
        return json_object();
    json_t *j = NULL;
    switch (n->kind) {
    case PT_CONF_SCALAR:
        return scalar_json(n, raw);
    case PT_CONF_SEQ:
        if ((j = json_array()) == NULL)
            return NULL;
        for (size_t i = 0; i < n->seq.n; i++) {
            json_t *item = pt_conf_node_to_json(n->seq.items[i], raw);
            if (item == NULL || json_array_append_new(j, item) != 0)
                goto fail;
        }
        return j;
    case PT_CONF_MAP:
        if ((j = json_object()) == NULL)
            return NULL;
        for (size_t i = 0; i < n->map.n; i++) {
            const struct pt_conf_node *k = n->map.pairs[i].key;
            json_t *v = pt_conf_node_to_json(n->map.pairs[i].value, raw);
            if (v == NULL || json_object_setn_new(j, k->scalar.raw, k->scalar.raw_len, v) != 0)
                goto fail;
        }
        return j;
    default:
        return NULL;
    }
fail:
    json_decref(j);
    return NULL;
}
