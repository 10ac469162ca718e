/*
 * Results of a composition (docs/composition.md "Results"): the `fields`
 * filter applied to each call's result, and the merge of the results into
 * one document.
 *
 *   fields: [id, customer.name, items.sku]
 *     keeps only those members, nested paths keeping their parents; an
 *     array is filtered element by element (at any depth), so `items.sku`
 *     keeps the sku of every item; scalars pass through unchanged.
 *
 *   merge: group     {"order": {...}, "customer": {...}}: each result under its key
 *   merge: shallow   the members of every object result in one object; a
 *                    member set by several calls takes the value of the call
 *                    declared last; a result that is not an object goes
 *                    under its key, like a member
 */
#ifndef PT_COMPOSE_MERGE_H
#define PT_COMPOSE_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/arena.h"
#include "core/str.h"

/** A compiled `fields` list: a tree of member names (the root has no name). */
struct pt_fields {
    struct pt_str name;
    bool whole; /* keep the whole member (a listed path ends here) */
    struct pt_fields *child, *next;
};

/**
 * Compile paths[0..n) ("a", "a.b.c") into a tree in arena memory.  Member
 * names are the text between dots (not empty).  A path covered by a shorter
 * one ("a" and "a.b") adds nothing.  Returns the root, or NULL with
 * *bad set to the index of the first empty or malformed path (or n on
 * ENOMEM).
 */
struct pt_fields *pt_fields_compile(struct pt_arena *a, const char *const *paths, size_t n,
                                    size_t *bad);

/** The filtered copy of v (a new reference; v itself is not changed).  NULL on ENOMEM. */
json_t *pt_fields_apply(const struct pt_fields *f, json_t *v);

enum pt_merge_mode { PT_MERGE_GROUP = 0, PT_MERGE_SHALLOW, PT_MERGE_COUNT };

/**
 * Merge n results in declaration order into a new object.  values[i] NULL
 * means call i was left out.  keys[i] names call i.  Returns a new
 * reference, or NULL on ENOMEM.
 */
json_t *pt_merge(enum pt_merge_mode mode, const struct pt_str *keys, json_t *const *values,
                 size_t n);

#endif
