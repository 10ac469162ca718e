/*
 * request-transform (SPEC §3): change the request's header fields and the
 * members of a JSON body before it goes upstream.  Options and their
 * semantics: transform.c and docs/plugins.md.
 *
 * Headers are edited on the exchange's request (later plugins and the
 * upstream see the result).  A JSON body (Content-Type application/json or
 * +json, no Content-Encoding) is read whole, rewritten and sent with a new
 * Content-Length; other bodies keep streaming untouched.
 */
#include "plugins/plugin.h"
#include "plugins/transform.h"
#include "proxy/proxy.h"

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    return pt__transform_configure(c, opts, PT_HDR_REQUEST, "request-transform", state);
}

static bool wants_request_body(void *state, struct pt_exchange *ex)
{
    const struct pt_transform *t = state;
    const struct pt_request *r = &ex->req;
    if (t->json == NULL || !pt_hdr_body_is_json(r->headers, r->nheaders))
        return false;
    return !(r->body == PT_BODY_LENGTH && r->content_length > PT_PLUGIN_MAX_BODY);
}

static int on_request(void *state, struct pt_exchange *ex)
{
    const struct pt_transform *t = state;
    struct pt_request *r = &ex->req;
    bool json =
        t->json != NULL && ex->req_body_read && pt_hdr_body_is_json(r->headers, r->nheaders);
    if (!pt_hdr_ops_empty(&t->hdr) &&
        pt_hdr_ops_apply(&t->hdr, &ex->arena, &r->headers, &r->nheaders) != 0) {
        pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
        return PT_PLUGIN_RESPONDED;
    }
    if (json)
        pt__transform_body(t, &ex->req_body);
    return PT_PLUGIN_CONTINUE;
}

const struct pt_plugin_ops pt_plugin_request_transform = {
    .name = "request-transform",
    .order = PT_ORDER_REQUEST_TRANSFORM,
    .configure = configure,
    .on_request = on_request,
    .wants_request_body = wants_request_body,
};
