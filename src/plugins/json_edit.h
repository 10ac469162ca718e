/*
 * JSON field edits for the transform plugins: remove members and rename
 * members, addressed by dotted paths ("user.password"), applied to a JSON
 * text in one pass.
 *
 * The document is rewritten as text, not through a DOM: members that are
 * not touched are copied byte for byte, so numbers keep their exact
 * spelling (no 0.1 → 0.10000000000000001, no refusal of integers beyond
 * 64 bits), key order and formatting are kept.  The scan validates the
 * document as RFC 8259 JSON; anything else (and nesting deeper than
 * PT_JSON_EDIT_MAX_DEPTH) is "invalid" and the caller passes the body on
 * unchanged.
 *
 * Paths: segments separated by '.', each an exact (case-sensitive) member
 * name.  An array on the way applies the rest of the path to each element,
 * so "items.price" reaches every items[i].price, and "password" on a
 * top-level array removes it from every element.  Duplicate member names
 * are all edited.  Renaming keeps the member where it is; a rename and
 * deeper edits of the same member combine (paths name the original keys).
 */
#ifndef PT_PLUGINS_JSON_EDIT_H
#define PT_PLUGINS_JSON_EDIT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"

#define PT_JSON_EDIT_MAX_DEPTH 256
#define PT_JSON_EDIT_MAX_KEY   256 /* longest path segment, in bytes */

struct pt_json_edit;

/** An empty edit set from a (lives as long as a). NULL on ENOMEM. */
struct pt_json_edit *pt_json_edit_new(struct pt_arena *a);

/**
 * Add one edit: remove the member at path (rename_to NULL) or rename it to
 * rename_to (a plain member name, any characters).  Returns 0, or -1 with
 * *err set to a static message (empty path or segment, the same path given
 * twice, out of memory).
 */
int pt_json_edit_add(struct pt_json_edit *e, struct pt_arena *a, const char *path,
                     const char *rename_to, const char **err);

/** Does the set hold any edit? */
bool pt_json_edit_empty(const struct pt_json_edit *e);

enum pt_json_edit_result {
    PT_JSON_EDIT_INVALID = -1,  /* not JSON (or too deep, or out of memory): out is unusable */
    PT_JSON_EDIT_UNCHANGED = 0, /* valid JSON that no edit touched */
    PT_JSON_EDIT_CHANGED = 1,   /* out holds the edited document */
};

/**
 * Apply e to the JSON text in[0..len).  out must be empty; it receives the
 * rewritten text (at most max_out bytes) and is left for the caller to free
 * whatever the result.
 */
enum pt_json_edit_result pt_json_edit_apply(const struct pt_json_edit *e, const char *in,
                                            size_t len, struct pt_buf *out, size_t max_out);

#endif
