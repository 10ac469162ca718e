/*
 * Shared by request-transform and response-transform (see transform.h and
 * docs/plugins.md):
 *
 *   request-transform:
 *     set:    { X-Env: prod }                  # replace (or add) these fields
 *     add:    { X-Tag: [a, b] }                # append, keeping existing fields
 *     remove: [X-Internal]                     # drop every field with the name
 *     remove_fields: [password, user.ssn]      # JSON bodies: drop members
 *     rename_fields: { user.id: user_id }      # JSON bodies: rename members
 */
#include <stdint.h>

#include "config/schema.h"
#include "plugins/plugin.h"
#include "plugins/transform.h"

struct options {
    const struct pt_conf_node *set, *add, *remove, *remove_fields, *rename_fields;
};

static const struct pt_conf_key keys[] = {
    PT_CONF_NODE("set", struct options, set),
    PT_CONF_NODE("add", struct options, add),
    PT_CONF_NODE("remove", struct options, remove),
    PT_CONF_NODE("remove_fields", struct options, remove_fields),
    PT_CONF_NODE("rename_fields", struct options, rename_fields),
    {0},
};

static int add_path(struct pt_conf_ctx *c, struct pt_transform *t, const char *opt,
                    const struct pt_conf_node *at, const char *path, const char *rename_to)
{
    const char *err = NULL;
    if (t->json == NULL && (t->json = pt_json_edit_new(c->a)) == NULL) {
        pt_conf_error(c, at, "out of memory");
        return -1;
    }
    if (pt_json_edit_add(t->json, c->a, path, rename_to, &err) != 0) {
        pt_conf_error(c, at, "%s: \"%.100s\": %s", opt, path, err);
        return -1;
    }
    return 0;
}

static int fields(struct pt_conf_ctx *c, struct pt_transform *t, const struct options *o)
{
    int rc = 0;
    const struct pt_conf_node *rm = o->remove_fields, *rn = o->rename_fields;
    if (rm != NULL && !pt_conf_is_null(rm)) {
        if (pt_conf_expect_seq(c, "remove_fields", rm) != 0)
            return -1;
        for (size_t i = 0; i < rm->seq.n; i++) {
            const char *path;
            if (pt_conf_get_string(c, "remove_fields", rm->seq.items[i], &path) != 0 ||
                add_path(c, t, "remove_fields", rm->seq.items[i], path, NULL) != 0)
                rc = -1;
        }
    }
    if (rn != NULL && !pt_conf_is_null(rn)) {
        if (rn->kind != PT_CONF_MAP) {
            pt_conf_error(c, rn, "rename_fields: expected a map of paths to new names, got %s",
                          pt_conf_kind_name(rn));
            return -1;
        }
        for (size_t i = 0; i < rn->map.n; i++) {
            const struct pt_conf_node *k = rn->map.pairs[i].key, *v = rn->map.pairs[i].value;
            const char *to;
            if (pt_conf_get_string(c, "rename_fields", v, &to) != 0) {
                rc = -1;
                continue;
            }
            if (to[0] == '\0') {
                pt_conf_error(c, v, "rename_fields: the new name must not be empty");
                rc = -1;
                continue;
            }
            if (add_path(c, t, "rename_fields", k, k->scalar.value, to) != 0)
                rc = -1;
        }
    }
    return rc;
}

int pt__transform_configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts,
                            enum pt_hdr_side side, const char *name, void **state)
{
    struct options o = {0};
    struct pt_transform *t = pt_arena_calloc(c->a, sizeof(*t));
    if (t == NULL)
        return -1;
    int rc = pt_conf_apply(c, keys, opts, &o, name, NULL);
    if (pt_hdr_ops_configure(c, side, o.set, o.add, o.remove, &t->hdr) != 0)
        rc = -1;
    if (fields(c, t, &o) != 0)
        rc = -1;
    *state = t;
    return rc;
}

int pt__transform_body(const struct pt_transform *t, struct pt_buf *body)
{
    size_t len = pt_buf_len(body);
    if (t->json == NULL || len == 0)
        return 0;
    struct pt_buf out;
    pt_buf_init(&out);
    size_t max_out = len < (size_t)UINT32_MAX / 8 ? 2 * len + 65536 : (size_t)UINT32_MAX / 4;
    enum pt_json_edit_result r = pt_json_edit_apply(t->json, pt_buf_head(body), len, &out, max_out);
    if (r == PT_JSON_EDIT_CHANGED) {
        pt_buf_free(body);
        *body = out;
        return 0;
    }
    pt_buf_free(&out);
    return 0;
}
