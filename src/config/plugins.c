/*
 * `plugins:` maps (global, per service, per route) → plugin instances, and
 * each route's effective chain: for every plugin name the route's instance
 * wins over the service's, which wins over the global one; the chain is
 * sorted by the plugins' fixed order (SPEC §3).
 *
 * An instance is configured once where it is written: a global plugin's
 * state is shared by every route that inherits it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "plugins/plugin.h"
#include "config/compile.h"
#include "config/node.h"
#include "config/schema.h"
#include "config/value.h"

static void destroy_state(void *arg)
{
    struct pt_plugin_instance *in = arg;
    if (in->ops->destroy != NULL && in->state != NULL)
        in->ops->destroy(in->state);
}

static size_t plugin_names(const char **names, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; pt_plugin_registry[i] != NULL && k < cap; i++)
        names[k++] = pt_plugin_registry[i]->name;
    return k;
}

int pt__conf_plugins(struct pt_conf_ctx *c, const struct pt_conf_node *map,
                     enum pt_plugin_scope scope, const char *where, struct pt_plugin_chain *out)
{
    out->n = 0;
    out->items = NULL;
    if (map == NULL || pt_conf_is_null(map))
        return 0;
    if (pt_conf_expect_map(c, where, map) != 0)
        return -1;
    out->items = pt_arena_calloc(c->a, (map->map.n + 1) * sizeof(*out->items));
    if (out->items == NULL) {
        pt_conf_error(c, map, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < map->map.n; i++) {
        const struct pt_conf_node *key = map->map.pairs[i].key;
        const struct pt_conf_node *opts = map->map.pairs[i].value;
        const struct pt_plugin_ops *ops = pt_plugin_find(key->scalar.value);
        if (ops == NULL) {
            const char *names[64];
            size_t nn = plugin_names(names, 64);
            const char *hint = pt_conf_suggest(key->scalar.value, names, nn);
            if (hint != NULL)
                pt_conf_error(c, key, "unknown plugin \"%.100s\" (did you mean \"%s\"?)",
                              key->scalar.value, hint);
            else
                pt_conf_error(c, key, "unknown plugin \"%.100s\"", key->scalar.value);
            rc = -1;
            continue;
        }
        if (opts != NULL && !pt_conf_is_null(opts) && opts->kind != PT_CONF_MAP) {
            pt_conf_error(c, opts, "%s: options must be a map (use {} for none)", ops->name);
            rc = -1;
            continue;
        }
        struct pt_plugin_instance *in = &out->items[out->n];
        in->ops = ops;
        in->scope = scope;
        in->state = NULL;
        if (ops->configure != NULL && ops->configure(c, opts, &in->state) != 0) {
            rc = -1;
            continue;
        }
        if (ops->destroy != NULL && pt_arena_defer(c->a, destroy_state, in) != 0) {
            ops->destroy(in->state);
            pt_conf_error(c, key, "out of memory");
            rc = -1;
            continue;
        }
        out->n++;
    }
    return rc;
}

static int by_order(const void *a, const void *b)
{
    const struct pt_plugin_instance *x = a, *y = b;
    if (x->ops->order != y->ops->order)
        return x->ops->order < y->ops->order ? -1 : 1;
    return strcmp(x->ops->name, y->ops->name);
}

static void add_missing(struct pt_plugin_chain *out, const struct pt_plugin_chain *from)
{
    if (from == NULL)
        return;
    for (size_t i = 0; i < from->n; i++)
        if (pt_plugin_chain_find(out, from->items[i].ops) == NULL)
            out->items[out->n++] = from->items[i];
}

int pt__conf_plugin_chain(struct pt_conf_ctx *c, const struct pt_plugin_chain *global,
                          const struct pt_plugin_chain *service,
                          const struct pt_plugin_chain *route, struct pt_plugin_chain *out)
{
    size_t cap = (global ? global->n : 0) + (service ? service->n : 0) + (route ? route->n : 0);
    out->n = 0;
    out->items = NULL;
    out->any_request_body = out->any_response_body = false;
    if (cap == 0)
        return 0;
    out->items = pt_arena_calloc(c->a, cap * sizeof(*out->items));
    if (out->items == NULL)
        return -1;
    add_missing(out, route);
    add_missing(out, service);
    add_missing(out, global);
    qsort(out->items, out->n, sizeof(*out->items), by_order);
    for (size_t i = 0; i < out->n; i++) {
        out->any_request_body |= out->items[i].ops->wants_request_body != NULL;
        out->any_response_body |= out->items[i].ops->wants_response_body != NULL;
    }
    return 0;
}
