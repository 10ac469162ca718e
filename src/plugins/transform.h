/*
 * What request-transform and response-transform share: the options (header
 * `set` / `add` / `remove`, JSON `remove_fields` / `rename_fields`) and the
 * body rewrite.  Private to src/plugins.
 */
#ifndef PT_PLUGINS_TRANSFORM_H
#define PT_PLUGINS_TRANSFORM_H

#include "core/buf.h"
#include "plugins/headers.h"
#include "plugins/json_edit.h"

struct pt_conf_ctx;
struct pt_conf_node;

struct pt_transform {
    struct pt_hdr_ops hdr;
    struct pt_json_edit *json; /* NULL: no body edits */
};

/** Parse the options of a transform plugin (name for messages) into a new state from c->a. */
int pt__transform_configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts,
                            enum pt_hdr_side side, const char *name, void **state);

/**
 * Rewrite the JSON body in *body with t's field edits.  The body is
 * replaced only when an edit applied; a body that is not JSON stays as it
 * is.  0, or -1 when memory ran out (the body is then unchanged too).
 */
int pt__transform_body(const struct pt_transform *t, struct pt_buf *body);

#endif
