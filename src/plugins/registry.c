/*
 * The plugin registry: every plugin the gateway knows, one line each.
 * Adding a plugin: write src/plugins/NAME.c (start from trace.c), declare its
 * ops here and add it to the array.
 */
#include <string.h>

#include "plugins/plugin.h"

extern const struct pt_plugin_ops pt_plugin_access_log;
extern const struct pt_plugin_ops pt_plugin_bot_detection;
extern const struct pt_plugin_ops pt_plugin_cache;
extern const struct pt_plugin_ops pt_plugin_cors;
extern const struct pt_plugin_ops pt_plugin_fallback;
extern const struct pt_plugin_ops pt_plugin_ip_restriction;
extern const struct pt_plugin_ops pt_plugin_request_id;
extern const struct pt_plugin_ops pt_plugin_request_size_limit;
extern const struct pt_plugin_ops pt_plugin_request_transform;
extern const struct pt_plugin_ops pt_plugin_response_transform;
extern const struct pt_plugin_ops pt_plugin_trace;

const struct pt_plugin_ops *const pt_plugin_registry[] = {
    &pt_plugin_access_log,
    &pt_plugin_bot_detection,
    &pt_plugin_cache,
    &pt_plugin_cors,
    &pt_plugin_fallback,
    &pt_plugin_ip_restriction,
    &pt_plugin_request_id,
    &pt_plugin_request_size_limit,
    &pt_plugin_request_transform,
    &pt_plugin_response_transform,
    &pt_plugin_trace,
    NULL,
};

const struct pt_plugin_ops *pt_plugin_find(const char *name)
{
    for (size_t i = 0; pt_plugin_registry[i] != NULL; i++)
        if (strcmp(pt_plugin_registry[i]->name, name) == 0)
            return pt_plugin_registry[i];
    return NULL;
}

const struct pt_plugin_instance *pt_plugin_chain_find(const struct pt_plugin_chain *chain,
                                                      const struct pt_plugin_ops *ops)
{
    if (chain == NULL)
        return NULL;
    for (size_t i = 0; i < chain->n; i++)
        if (chain->items[i].ops == ops)
            return &chain->items[i];
    return NULL;
}
