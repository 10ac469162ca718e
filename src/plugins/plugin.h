/*
 * Plugins (SPEC §3, DESIGN principle 7, STYLE §8).
 *
 * A plugin is one file that fills a struct pt_plugin_ops and one line in
 * src/plugins/registry.c.  Its options are parsed once, when the
 * configuration loads (configure), into a state that is immutable
 * afterwards and shared by every request of the routes it applies to.
 *
 * Where plugins are set: globally (`plugins:`), per service and per route;
 * for each plugin name the route's configuration wins over the service's,
 * which wins over the global one.  A route's effective plugins form its
 * chain, sorted by `order` (the fixed order of SPEC §3), built at load.
 *
 * Hooks (all optional; everything runs on the request's worker thread):
 *
 *   on_request           before the upstream call, in chain order.  Returns
 *                        PT_PLUGIN_CONTINUE, PT_PLUGIN_RESPONDED (it answered
 *                        with pt_proxy_respond_*), or PT_PLUGIN_PAUSE (it
 *                        will call pt_proxy_resume(ex) exactly once, later,
 *                        from the same worker).
 *   wants_request_body   true: the whole request body is read into
 *                        ex->req_body (within the route's body limit) before
 *                        this plugin's on_request runs; the upstream then gets
 *                        ex->req_body with a Content-Length.
 *   on_upstream_response the upstream's response head arrived
 *                        (ex->upstream_status is set), in chain order, before
 *                        wants_response_body and on_response_head: answer
 *                        instead (pt_proxy_respond*, then PT_PLUGIN_RESPONDED:
 *                        the upstream response is dropped and its connection
 *                        closed), or PT_PLUGIN_CONTINUE.  For a fallback or a
 *                        stale cache entry on an upstream 503.
 *   on_response_head     every response (upstream or local), in chain order;
 *                        may add, change or remove headers (arena memory).
 *   wants_response_body  per response: true makes the proxy collect the
 *                        whole upstream body (up to PT_PLUGIN_MAX_BODY; a
 *                        larger one is passed through untouched) and call
 *                        on_response_body before anything is sent.
 *   on_upstream_error    the service failed (502/503/504 about to be sent):
 *                        answer instead and return PT_PLUGIN_RESPONDED, or
 *                        PT_PLUGIN_CONTINUE.
 *   on_log               after the response, in chain order (access log,
 *                        usage...).  Must not block.
 */
#ifndef PT_PLUGINS_PLUGIN_H
#define PT_PLUGINS_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "http/exchange.h"

struct pt_conf_ctx;
struct pt_conf_node;
struct pt_exchange;

enum pt_plugin_verdict {
    PT_PLUGIN_CONTINUE = 0,
    PT_PLUGIN_RESPONDED,
    PT_PLUGIN_PAUSE,
};

/** Run order (SPEC §3); lower runs first.  Leave gaps for later plugins. */
enum pt_plugin_order {
    PT_ORDER_REQUEST_ID = 0,
    PT_ORDER_TRACE = 5,
    PT_ORDER_IP_RESTRICTION = 10,
    PT_ORDER_BOT_DETECTION = 20,
    PT_ORDER_CORS = 30,
    PT_ORDER_KEY_AUTH = 40,
    PT_ORDER_BASIC_AUTH = 41,
    PT_ORDER_JWT = 42,
    PT_ORDER_MTLS_AUTH = 43,
    PT_ORDER_ACL = 50,
    PT_ORDER_RATE_LIMIT = 60,
    PT_ORDER_QUOTA = 70,
    PT_ORDER_REQUEST_SIZE_LIMIT = 80,
    PT_ORDER_CACHE = 90,
    PT_ORDER_REQUEST_TRANSFORM = 100,
    PT_ORDER_FALLBACK = 105,
    PT_ORDER_RESPONSE_TRANSFORM = 110,
    PT_ORDER_GRPC = 120,
    PT_ORDER_ACCESS_LOG = 200,
};

/** Largest body a plugin may ask to see whole (request or response). */
#define PT_PLUGIN_MAX_BODY (8u << 20)

struct pt_plugin_ops {
    const char *name;
    int order;
    /**
     * Parse options (a map node, or NULL/null for `{}`) into *state, using
     * the config schema helpers (src/config/schema.h); allocate from c->a
     * (the snapshot's arena).  Report problems with pt_conf_error and
     * return -1; 0 on success.
     */
    int (*configure)(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state);
    /** Release what configure took besides arena memory (when the snapshot dies). */
    void (*destroy)(void *state);
    int (*on_request)(void *state, struct pt_exchange *ex);
    bool (*wants_request_body)(void *state, struct pt_exchange *ex);
    void (*on_response_head)(void *state, struct pt_exchange *ex, struct pt_response_head *head);
    bool (*wants_response_body)(void *state, struct pt_exchange *ex,
                                const struct pt_response_head *head);
    /** Rewrite the collected body in place (body may be replaced); 0 or -1 (→ 502). */
    int (*on_response_body)(void *state, struct pt_exchange *ex, struct pt_response_head *head,
                            struct pt_buf *body);
    int (*on_upstream_error)(void *state, struct pt_exchange *ex, int status);
    /** head: the upstream's, filtered (views valid during the call only). */
    int (*on_upstream_response)(void *state, struct pt_exchange *ex,
                                const struct pt_response_head *head);
    void (*on_log)(void *state, struct pt_exchange *ex);
};

/** Where an instance was configured (for /routes/explain). */
enum pt_plugin_scope {
    PT_PLUGIN_GLOBAL = 0,
    PT_PLUGIN_SERVICE,
    PT_PLUGIN_ROUTE,
};

struct pt_plugin_instance {
    const struct pt_plugin_ops *ops;
    void *state;
    enum pt_plugin_scope scope;
};

/** A route's effective plugins, sorted by order. */
struct pt_plugin_chain {
    size_t n;
    struct pt_plugin_instance *items;
    bool any_response_body; /* some plugin has wants_response_body */
    bool any_request_body;
};

/** The registry (src/plugins/registry.c): NULL-terminated. */
extern const struct pt_plugin_ops *const pt_plugin_registry[];

/** Look a plugin up by name; NULL when unknown. */
const struct pt_plugin_ops *pt_plugin_find(const char *name);

/** The plugin's instance in a chain, or NULL. */
const struct pt_plugin_instance *pt_plugin_chain_find(const struct pt_plugin_chain *chain,
                                                      const struct pt_plugin_ops *ops);

/** The header the request-id plugin in chain names, or NULL (src/plugins/request_id.c). */
const char *pt_plugin_request_id_header(const struct pt_plugin_chain *chain);

#endif
