/*
 * Header-list helpers for plugins: compiled `set` / `add` / `remove`
 * operations (request-transform, response-transform) and small edits of a
 * request's or a response head's fields.
 *
 * A header list is an array of struct pt_h1_header plus a count, as in
 * struct pt_request and struct pt_response_head.  Edits never write into
 * the array they are given (it may belong to someone else, e.g. a head
 * copied by the codec): they build a new array in the request arena and
 * store it through the pointers.
 */
#ifndef PT_PLUGINS_HEADERS_H
#define PT_PLUGINS_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/str.h"
#include "http/h1.h"

struct pt_conf_ctx;
struct pt_conf_node;

/** Which message the operations apply to (some names are refused on one side only). */
enum pt_hdr_side {
    PT_HDR_REQUEST = 0,
    PT_HDR_RESPONSE,
};

/**
 * Compiled header operations, applied in the order remove → set → add:
 *   remove: every field with one of these names goes;
 *   set:    every field with the name goes, then the given values are added
 *           (a list value gives one field per element);
 *   add:    the given values are appended, existing fields are kept.
 * Names compare case-insensitively.  Immutable after configuration.
 */
struct pt_hdr_ops {
    struct pt_str *remove;
    size_t nremove;
    struct pt_h1_header *set; /* the same name may repeat (list values) */
    size_t nset;
    struct pt_h1_header *add;
    size_t nadd;
};

static inline bool pt_hdr_ops_empty(const struct pt_hdr_ops *ops)
{
    return ops->nremove == 0 && ops->nset == 0 && ops->nadd == 0;
}

/**
 * Parse the `set` (map), `add` (map) and `remove` (list) option nodes (each
 * may be NULL or null) into ops, allocating from c->a.  Names must be
 * tokens and may not be framing or hop-by-hop fields (Content-Length,
 * Transfer-Encoding, Connection, ...), nor Host on the request side; a
 * value is a string (numbers and booleans are taken as written) or a list
 * of them, without control characters.  Reports every problem at its node;
 * 0 or -1.
 */
int pt_hdr_ops_configure(struct pt_conf_ctx *c, enum pt_hdr_side side,
                         const struct pt_conf_node *set, const struct pt_conf_node *add,
                         const struct pt_conf_node *remove, struct pt_hdr_ops *ops);

/**
 * Apply ops to the list (*hs, *n): the result is a new array from a (the
 * old one is left as it was).  0, or -1 when the arena is out of memory
 * (the list is then unchanged).
 */
int pt_hdr_ops_apply(const struct pt_hdr_ops *ops, struct pt_arena *a, struct pt_h1_header **hs,
                     size_t *n);

/**
 * Remove every field whose name is in names[0..nnames) and append extra[0..nextra),
 * as one new array from a.  0 or -1 (out of memory: the list is unchanged).
 */
int pt_hdr_edit(struct pt_arena *a, struct pt_h1_header **hs, size_t *n, const struct pt_str *names,
                size_t nnames, const struct pt_h1_header *extra, size_t nextra);

/** Is this header's media type JSON (application/json or any +json, parameters ignored)? */
bool pt_hdr_is_json_type(struct pt_str content_type);

/**
 * May a body with these fields be read as JSON text: a JSON Content-Type
 * and no Content-Encoding other than identity?
 */
bool pt_hdr_body_is_json(const struct pt_h1_header *hs, size_t n);

#endif
