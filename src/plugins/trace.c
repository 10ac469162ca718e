/*
 * trace: the reference plugin.  It logs every hook it receives, at info
 * level, with the request id, so that the pipeline can be watched; new
 * plugins start by copying this file.
 *
 *   plugins:
 *     trace: { label: checkout }
 */
#include "config/schema.h"
#include "core/log.h"
#include "plugins/plugin.h"
#include "proxy/proxy.h"

struct trace {
    const char *label;
};

static const struct pt_conf_key keys[] = {
    PT_CONF_STRING("label", struct trace, label, "trace"),
    {0},
};

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    struct trace *t = pt_arena_calloc(c->a, sizeof(*t));
    if (t == NULL || pt_conf_apply(c, keys, opts, t, "trace", NULL) != 0)
        return -1;
    *state = t;
    return 0;
}

#define ID(ex) (int)(ex)->request_id_len, (ex)->request_id

static int on_request(void *state, struct pt_exchange *ex)
{
    const struct trace *t = state;
    pt_log_info("%s: %.*s on_request %.*s %.*s", t->label, ID(ex), PT_STR_FMT(ex->req.method),
                (int)(ex->req.path.len > 200 ? 200 : ex->req.path.len), ex->req.path.ptr);
    return PT_PLUGIN_CONTINUE;
}

static void on_response_head(void *state, struct pt_exchange *ex, struct pt_response_head *head)
{
    const struct trace *t = state;
    pt_log_info("%s: %.*s on_response_head %d", t->label, ID(ex), head->status);
}

static int on_upstream_error(void *state, struct pt_exchange *ex, int status)
{
    const struct trace *t = state;
    pt_log_info("%s: %.*s on_upstream_error %d", t->label, ID(ex), status);
    return PT_PLUGIN_CONTINUE;
}

static void on_log(void *state, struct pt_exchange *ex)
{
    const struct trace *t = state;
    pt_log_info("%s: %.*s on_log status=%d", t->label, ID(ex), ex->status);
}

const struct pt_plugin_ops pt_plugin_trace = {
    .name = "trace",
    .order = PT_ORDER_TRACE,
    .configure = configure,
    .on_request = on_request,
    .on_response_head = on_response_head,
    .on_upstream_error = on_upstream_error,
    .on_log = on_log,
};
