/*
 * Private to the cache plugin: its compiled options (cache_conf.c builds
 * them from the configuration; cache.c reads them per request).
 */
#ifndef PT_PLUGINS_CACHE_INT_H
#define PT_PLUGINS_CACHE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/schema.h"
#include "plugins/cache_policy.h"
#include "plugins/cache_store.h"

enum cache_backend { STORE_MEMORY = 0, STORE_REDIS };

struct status_set {
    uint64_t bits[10]; /* 0..639 */
};

static inline bool status_in(const struct status_set *s, int st)
{
    return st >= 0 && st < 640 && (s->bits[st / 64] >> (st % 64)) & 1;
}

struct cache_conf {
    uint64_t ttl_ms;
    uint64_t stale_if_error_ms, stale_while_revalidate_ms;
    uint64_t revalidate_window_ms;
    uint64_t max_memory;
    bool honor_client_no_cache;
    const struct pt_conf_node *methods_n, *vary_n, *key_n, *statuses_n, *stale_on_n, *store_n;
    uint32_t methods; /* PT_METHOD_BIT()s */
    const char **vary;
    size_t nvary;
    struct pt_cache_key_part *parts;
    size_t nparts;
    struct status_set statuses, stale_on;
    int reg; /* pt_cache_store_register handle */
};

/** The plugin's configure and destroy hooks (struct pt_plugin_ops). */
int pt__cache_configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state);
void pt__cache_destroy(void *state);

#endif
