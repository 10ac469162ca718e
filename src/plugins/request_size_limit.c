/*
 * request-size-limit (SPEC §3): refuse request bodies larger than
 * max_body_bytes with 413 (problem type payload-too-large).
 *
 *   plugins:
 *     request-size-limit: { max_body_bytes: 1m }
 *
 * A declared Content-Length is checked at once, before any body byte is
 * read (a client waiting for 100 Continue gets the 413 instead).  A body
 * without a length (chunked) is counted as it streams: the plugin lowers
 * the exchange's body limit, which the downstream codec enforces on every
 * chunk; crossing it ends the request with the same 413 (the upstream call,
 * if it started, is abandoned).  The limit only ever goes down: the route's
 * max_body_bytes and server.limits.max_body_bytes still apply.
 */
#include <inttypes.h>

#include "config/schema.h"
#include "plugins/plugin.h"
#include "proxy/proxy.h"

struct size_limit {
    uint64_t max;
};

static const struct pt_conf_key keys[] = {
    {.name = "max_body_bytes",
     .type = PT_CONF_T_SIZE,
     .offset = offsetof(struct size_limit, max),
     .min = 0,
     .max = PT_CONF_NO_MAX,
     .required = true},
    {0},
};

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    struct size_limit *s = pt_arena_calloc(c->a, sizeof(*s));
    if (s == NULL || pt_conf_apply(c, keys, opts, s, "request-size-limit", NULL) != 0)
        return -1;
    *state = s;
    return 0;
}

static int on_request(void *state, struct pt_exchange *ex)
{
    const struct size_limit *s = state;
    if (ex->req.body == PT_BODY_LENGTH && ex->req.content_length > s->max) {
        char *detail =
            pt_arena_printf(&ex->arena, "the request body exceeds %" PRIu64 " bytes", s->max);
        pt_proxy_respond_problem(ex, 413, "payload-too-large",
                                 detail != NULL ? detail : "the request body is too large", NULL,
                                 0);
        return PT_PLUGIN_RESPONDED;
    }
    if (s->max < ex->body_limit)
        ex->body_limit = s->max;
    return PT_PLUGIN_CONTINUE;
}

const struct pt_plugin_ops pt_plugin_request_size_limit = {
    .name = "request-size-limit",
    .order = PT_ORDER_REQUEST_SIZE_LIMIT,
    .configure = configure,
    .on_request = on_request,
};
