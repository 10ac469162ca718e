/*
 * `fields` filtering and result merging (see merge.h for the rules).
 *
 * Filtering builds new containers and shares the untouched leaves with the
 * input by reference (jansson reference counts), so a result is never
 * copied twice; nothing is modified in place, which lets a dependent call
 * read the unfiltered result while the response uses the filtered one.
 */
#include <string.h>

#include "compose/merge.h"

/* ---- fields ---- */

static struct pt_fields *child_named(struct pt_arena *a, struct pt_fields *parent,
                                     struct pt_str name)
{
    struct pt_fields **pp = &parent->child;
    for (; *pp != NULL; pp = &(*pp)->next)
        if (pt_str_eq((*pp)->name, name))
            return *pp;
    struct pt_fields *f = pt_arena_calloc(a, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->name = name;
    *pp = f;
    return f;
}

struct pt_fields *pt_fields_compile(struct pt_arena *a, const char *const *paths, size_t n,
                                    size_t *bad)
{
    struct pt_fields *root = pt_arena_calloc(a, sizeof(*root));
    if (root == NULL) {
        *bad = n;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i];
        size_t len = strlen(p);
        struct pt_fields *node = root;
        size_t s = 0;
        if (len == 0) {
            *bad = i;
            return NULL;
        }
        for (size_t k = 0; k <= len; k++) {
            if (k < len && p[k] != '.')
                continue;
            if (k == s) { /* empty member name: "a..b", ".a", "a." */
                *bad = i;
                return NULL;
            }
            if (node->whole)
                break; /* already kept whole */
            node = child_named(a, node, pt_str_make(p + s, k - s));
            if (node == NULL) {
                *bad = n;
                return NULL;
            }
            s = k + 1;
        }
        if (!node->whole && node != root) {
            node->whole = true;
            node->child = NULL; /* a whole member needs no sub-list */
        }
    }
    return root;
}

static json_t *filter(const struct pt_fields *f, json_t *v);

static json_t *filter_object(const struct pt_fields *f, json_t *obj)
{
    json_t *out = json_object();
    if (out == NULL)
        return NULL;
    for (const struct pt_fields *c = f->child; c != NULL; c = c->next) {
        json_t *m = json_object_getn(obj, c->name.ptr, c->name.len);
        if (m == NULL)
            continue;
        json_t *keep;
        if (c->whole)
            keep = json_incref(m);
        else if (json_is_object(m) || json_is_array(m))
            keep = filter(c, m);
        else
            continue; /* the path goes deeper than the value does */
        if (keep == NULL || json_object_setn_new(out, c->name.ptr, c->name.len, keep) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *filter(const struct pt_fields *f, json_t *v)
{
    if (json_is_object(v))
        return filter_object(f, v);
    if (!json_is_array(v))
        return json_incref(v);
    json_t *out = json_array();
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = filter(f, json_array_get(v, i));
        if (e == NULL || json_array_append_new(out, e) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

json_t *pt_fields_apply(const struct pt_fields *f, json_t *v)
{
    if (f == NULL)
        return json_incref(v);
    return filter(f, v);
}

/* ---- merging ---- */

json_t *pt_merge(enum pt_merge_mode mode, const struct pt_str *keys, json_t *const *values,
                 size_t n)
{
    json_t *doc = json_object();
    if (doc == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *v = values[i];
        if (v == NULL)
            continue;
        int rc;
        if (mode == PT_MERGE_SHALLOW && json_is_object(v))
            rc = json_object_update(doc, v);
        else
            rc = json_object_setn(doc, keys[i].ptr, keys[i].len, v);
        if (rc != 0) {
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}
