/*
 * response-transform (SPEC §3): change the response's header fields and
 * the members of a JSON body before they go to the client.  Options and
 * their semantics: transform.c and docs/plugins.md.
 *
 * Header edits apply to every response on the route, the gateway's own
 * answers included (so security headers set here are always there).  Body
 * edits apply to upstream responses with a JSON Content-Type and no
 * Content-Encoding, up to PT_PLUGIN_MAX_BODY (a larger body streams through
 * untouched); the proxy then sends the result with its new Content-Length.
 */
#include "plugins/plugin.h"
#include "plugins/transform.h"
#include "proxy/proxy.h"

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    return pt__transform_configure(c, opts, PT_HDR_RESPONSE, "response-transform", state);
}

static void on_response_head(void *state, struct pt_exchange *ex, struct pt_response_head *head)
{
    const struct pt_transform *t = state;
    if (!pt_hdr_ops_empty(&t->hdr))
        (void)pt_hdr_ops_apply(&t->hdr, &ex->arena, &head->headers, &head->nheaders);
}

static bool wants_response_body(void *state, struct pt_exchange *ex,
                                const struct pt_response_head *head)
{
    (void)ex;
    const struct pt_transform *t = state;
    return t->json != NULL && !head->head_only &&
           pt_hdr_body_is_json(head->headers, head->nheaders);
}

static int on_response_body(void *state, struct pt_exchange *ex, struct pt_response_head *head,
                            struct pt_buf *body)
{
    (void)ex;
    (void)head;
    return pt__transform_body(state, body);
}

const struct pt_plugin_ops pt_plugin_response_transform = {
    .name = "response-transform",
    .order = PT_ORDER_RESPONSE_TRANSFORM,
    .configure = configure,
    .on_response_head = on_response_head,
    .wants_response_body = wants_response_body,
    .on_response_body = on_response_body,
};
