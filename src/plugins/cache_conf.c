/*
 * The cache plugin's options (docs/cache.md): parsed and checked once per
 * configuration load into a struct cache_conf, which also registers the
 * instance's memory budget with the shared store.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/schema.h"
#include "core/alloc.h"
#include "http/h1.h"
#include "http/method.h"
#include "plugins/cache-int.h"

static const struct pt_conf_key keys[] = {
    PT_CONF_DURATION("ttl", struct cache_conf, ttl_ms, 0, PT_CONF_NO_MAX, "1m"),
    PT_CONF_NODE("methods", struct cache_conf, methods_n),
    PT_CONF_NODE("vary", struct cache_conf, vary_n),
    PT_CONF_NODE("key", struct cache_conf, key_n),
    PT_CONF_DURATION("stale_if_error", struct cache_conf, stale_if_error_ms, 0, PT_CONF_NO_MAX,
                     "5m"),
    PT_CONF_DURATION("stale_while_revalidate", struct cache_conf, stale_while_revalidate_ms, 0,
                     PT_CONF_NO_MAX, "0"),
    PT_CONF_DURATION("revalidate_window", struct cache_conf, revalidate_window_ms, 0,
                     PT_CONF_NO_MAX, "10m"),
    PT_CONF_NODE("store", struct cache_conf, store_n),
    PT_CONF_SIZE("max_memory", struct cache_conf, max_memory, 4096, PT_CONF_NO_MAX, "256m"),
    PT_CONF_BOOL("honor_client_no_cache", struct cache_conf, honor_client_no_cache, "false"),
    PT_CONF_NODE("statuses", struct cache_conf, statuses_n),
    PT_CONF_NODE("stale_on", struct cache_conf, stale_on_n),
    {0},
};

/* A list of scalars: each item's text through *item (or an error). */
static int each_item(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                     int (*item)(struct pt_conf_ctx *c, const struct pt_conf_node *it,
                                 const char *text, void *arg),
                     void *arg)
{
    if (pt_conf_expect_seq(c, name, n) != 0)
        return -1;
    if (pt_conf_is_null(n))
        return 0;
    int rc = 0;
    for (size_t i = 0; i < n->seq.n; i++) {
        const char *s;
        if (pt_conf_get_string(c, name, n->seq.items[i], &s) != 0) {
            rc = -1;
            continue;
        }
        if (item(c, n->seq.items[i], s, arg) != 0)
            rc = -1;
    }
    return rc;
}

static int method_item(struct pt_conf_ctx *c, const struct pt_conf_node *it, const char *s,
                       void *arg)
{
    struct cache_conf *cf = arg;
    enum pt_method m = pt_method_from_str(pt_str_cstr(s));
    if (m != PT_METHOD_GET && m != PT_METHOD_HEAD && m != PT_METHOD_POST) {
        pt_conf_error(c, it, "methods: \"%.40s\" cannot be cached (GET, HEAD or POST)", s);
        return -1;
    }
    cf->methods |= PT_METHOD_BIT(m);
    return 0;
}

static int vary_item(struct pt_conf_ctx *c, const struct pt_conf_node *it, const char *s, void *arg)
{
    struct cache_conf *cf = arg;
    if (!pt_h1_is_token_cstr(s)) {
        pt_conf_error(c, it, "vary: \"%.60s\" is not a header name", s);
        return -1;
    }
    cf->vary[cf->nvary++] = s;
    return 0;
}

static int key_item(struct pt_conf_ctx *c, const struct pt_conf_node *it, const char *s, void *arg)
{
    struct cache_conf *cf = arg;
    struct pt_cache_key_part *kp = &cf->parts[cf->nparts];
    if (strcmp(s, "consumer") == 0) {
        kp->kind = PT_CACHE_KEY_CONSUMER;
    } else if (strcmp(s, "query") == 0) {
        kp->kind = PT_CACHE_KEY_QUERY;
    } else if (strncmp(s, "header:", 7) == 0 && pt_h1_is_token_cstr(s + 7)) {
        kp->kind = PT_CACHE_KEY_HEADER;
        kp->name = s + 7;
    } else if (strncmp(s, "cookie:", 7) == 0 && pt_h1_is_token_cstr(s + 7)) {
        kp->kind = PT_CACHE_KEY_COOKIE;
        kp->name = s + 7;
    } else {
        pt_conf_error(c, it,
                      "key: \"%.60s\" is not a key part (consumer, query, header:NAME, "
                      "cookie:NAME)",
                      s);
        return -1;
    }
    cf->nparts++;
    return 0;
}

static int status_item(struct pt_conf_ctx *c, const struct pt_conf_node *it, const char *s,
                       void *arg)
{
    struct status_set *set = arg;
    uint64_t v;
    (void)s;
    if (pt_conf_get_uint(c, "status", it, 100, 599, &v) != 0)
        return -1;
    set->bits[v / 64] |= 1ull << (v % 64);
    return 0;
}

static void statuses_default(struct status_set *set, const int *list, size_t n)
{
    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < n; i++)
        set->bits[list[i] / 64] |= 1ull << (list[i] % 64);
}

static size_t seq_len(const struct pt_conf_node *n)
{
    return n != NULL && n->kind == PT_CONF_SEQ ? n->seq.n : 0;
}

void pt__cache_destroy(void *state)
{
    struct cache_conf *cf = state;
    if (cf->reg >= 0)
        pt_cache_store_unregister(cf->reg);
}

int pt__cache_configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    struct cache_conf *cf = pt_arena_calloc(c->a, sizeof(*cf));
    if (cf == NULL)
        return -1;
    cf->reg = -1;
    int rc = pt_conf_apply(c, keys, opts, cf, "cache", NULL);
    /* store: memory | redis */
    if (cf->store_n != NULL && !pt_conf_is_null(cf->store_n)) {
        const char *s;
        if (pt_conf_get_string(c, "store", cf->store_n, &s) != 0) {
            rc = -1;
        } else if (strcmp(s, "redis") == 0) {
            pt_conf_error(c, cf->store_n,
                          "cache: store: redis is not supported yet (use store: memory)");
            rc = -1;
        } else if (strcmp(s, "memory") != 0) {
            pt_conf_error(c, cf->store_n, "cache: store: \"%.40s\" is not memory or redis", s);
            rc = -1;
        }
    }
    if (cf->methods_n != NULL && !pt_conf_is_null(cf->methods_n)) {
        if (each_item(c, "methods", cf->methods_n, method_item, cf) != 0)
            rc = -1;
    } else {
        cf->methods = PT_METHOD_BIT(PT_METHOD_GET) | PT_METHOD_BIT(PT_METHOD_HEAD);
    }
    cf->vary = pt_arena_calloc(c->a, (seq_len(cf->vary_n) + 1) * sizeof(*cf->vary));
    cf->parts = pt_arena_calloc(c->a, (seq_len(cf->key_n) + 2) * sizeof(*cf->parts));
    if (cf->vary == NULL || cf->parts == NULL)
        return -1;
    if (cf->vary_n != NULL && each_item(c, "vary", cf->vary_n, vary_item, cf) != 0)
        rc = -1;
    if (cf->key_n != NULL && !pt_conf_is_null(cf->key_n)) {
        if (each_item(c, "key", cf->key_n, key_item, cf) != 0)
            rc = -1;
    } else { /* SPEC §3: key: [consumer, query] */
        cf->parts[cf->nparts++].kind = PT_CACHE_KEY_CONSUMER;
        cf->parts[cf->nparts++].kind = PT_CACHE_KEY_QUERY;
    }
    static const int def_statuses[] = {200, 203, 204, 300, 301, 308, 404, 410};
    static const int def_stale_on[] = {500, 502, 503, 504};
    statuses_default(&cf->statuses, def_statuses, sizeof(def_statuses) / sizeof(int));
    statuses_default(&cf->stale_on, def_stale_on, sizeof(def_stale_on) / sizeof(int));
    if (cf->statuses_n != NULL && !pt_conf_is_null(cf->statuses_n)) {
        memset(&cf->statuses, 0, sizeof(cf->statuses));
        if (each_item(c, "statuses", cf->statuses_n, status_item, &cf->statuses) != 0)
            rc = -1;
    }
    if (cf->stale_on_n != NULL && !pt_conf_is_null(cf->stale_on_n)) {
        memset(&cf->stale_on, 0, sizeof(cf->stale_on));
        if (each_item(c, "stale_on", cf->stale_on_n, status_item, &cf->stale_on) != 0)
            rc = -1;
    }
    if (rc != 0)
        return -1;
    cf->reg = pt_cache_store_register(cf->max_memory);
    if (cf->reg < 0) {
        pt_conf_error(c, opts != NULL ? opts : cf->store_n, "cache: out of memory");
        return -1;
    }
    *state = cf;
    return 0;
}
