/*
 * The request handler.
 *
 *   identity (request id, trace context, client IP) → route → limits
 *   → upstream call (head built per attempt by forward.c) → response head
 *   filtered and sent → body streamed with back-pressure both ways
 *
 * Everything the gateway answers itself goes through
 * pt_proxy_respond_problem() (RFC 9457).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/log.h"
#include "config/snapshot.h"
#include "compose/compose.h"
#include "http/problem.h"
#include "proxy/forward.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "proxy/worker.h"
#include "upstream/service.h"

#define MAX_FREE_EXCHANGES 1024

/* ---- exchange lifetime ---- */

struct pt_exchange *pt_exchange_new(struct pt_worker *w)
{
    struct pt_exchange *ex = w->free_exchanges;
    if (ex != NULL) {
        w->free_exchanges = ex->next_free;
        w->nfree_exchanges--;
    } else {
        ex = pt_malloc(sizeof(*ex));
        if (ex == NULL)
            return NULL;
        pt_arena_init(&ex->arena);
    }
    struct pt_arena keep = ex->arena;
    memset(ex, 0, sizeof(*ex));
    ex->arena = keep;
    ex->worker = w;
    ex->snap = w->snap;
    return ex;
}

void pt_exchange_free(struct pt_exchange *ex)
{
    struct pt_worker *w = ex->worker;
    if (ex->up_started && !ex->up.done)
        pt_upcall_cancel(&ex->up);
    pt_arena_reset(&ex->arena);
    if (w->nfree_exchanges >= MAX_FREE_EXCHANGES) {
        pt_arena_destroy(&ex->arena);
        free(ex);
        return;
    }
    ex->next_free = w->free_exchanges;
    w->free_exchanges = ex;
    w->nfree_exchanges++;
}

/* ---- local answers ---- */

static void ensure_request_id(struct pt_exchange *ex)
{
    if (ex->request_id_len == 0) {
        pt_reqid_generate(ex->request_id);
        ex->request_id_len = PT_REQID_GEN_LEN;
    }
}

void pt_proxy_respond_problem(struct pt_exchange *ex, int status, const char *type,
                              const char *detail, const struct pt_h1_header *extra,
                              size_t nextra)
{
    if (ex->up_started && !ex->up.done)
        pt_upcall_cancel(&ex->up);
    if (ex->responded) {
        ex->down->abort(ex);
        return;
    }
    ensure_request_id(ex);
    struct pt_str d = pt_str_cstr(detail);
    struct pt_str id = pt_str_make(ex->request_id, ex->request_id_len);
    size_t cap = 256 + d.len * 6 + id.len;
    char *body = pt_arena_alloc(&ex->arena, cap);
    struct pt_h1_header *hs = pt_arena_alloc(&ex->arena, sizeof(*hs) * (nextra + 2));
    if (body == NULL || hs == NULL) {
        ex->down->abort(ex);
        return;
    }
    size_t len = pt_problem_json(body, cap, status, type, d, id);
    if (len >= cap)
        len = cap - 1;
    hs[0].name = PT_STR_LIT("Content-Type");
    hs[0].value = PT_STR_LIT("application/problem+json");
    hs[1].name = PT_STR_LIT("X-Request-Id");
    hs[1].value = id;
    for (size_t i = 0; i < nextra; i++)
        hs[2 + i] = extra[i];
    struct pt_response_head head = {
        .status = status,
        .headers = hs,
        .nheaders = nextra + 2,
        .body = PT_BODY_LENGTH,
        .content_length = len,
        .head_only = ex->req.method_id == PT_METHOD_HEAD,
    };
    ex->down->send_head(ex, &head);
    ex->down->send_body(ex, body, len, true);
}

static void respond_405(struct pt_exchange *ex, const struct pt_router_match *m)
{
    char allow[512];
    size_t n = 0;
    for (int i = 1; i < PT_METHOD_COUNT; i++) {
        if (!(m->allow_mask & PT_METHOD_BIT(i)))
            continue;
        n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "",
                              pt_method_name((enum pt_method)i));
    }
    for (size_t i = 0; i < m->nallow_other && n < sizeof(allow) - 64; i++)
        n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%.40s", n ? ", " : "",
                              m->allow_other[i]);
    struct pt_str a = pt_arena_strdup_str(&ex->arena, pt_str_make(allow, n));
    struct pt_h1_header h = {PT_STR_LIT("Allow"), a};
    char *detail = pt_arena_printf(&ex->arena, "%.*s is not allowed here; allowed: %s",
                                   PT_STR_FMT(ex->req.method), allow);
    pt_proxy_respond_problem(ex, 405, NULL, detail, &h, a.ptr != NULL ? 1 : 0);
}

static void respond_404(struct pt_exchange *ex)
{
    char *detail = pt_arena_printf(&ex->arena, "no route for %.*s %.*s",
                                   PT_STR_FMT(ex->req.method),
                                   (int)(ex->req.path.len > 200 ? 200 : ex->req.path.len),
                                   ex->req.path.ptr);
    pt_proxy_respond_problem(ex, 404, NULL, detail, NULL, 0);
}

/* ---- upstream call callbacks ---- */

static struct pt_exchange *ex_of(struct pt_upcall *c)
{
    return c->ctx;
}

static int up_build_head(struct pt_upcall *c, const struct pt_target *t, struct pt_buf *out)
{
    return pt_forward_request_head(ex_of(c), t, out);
}

static int up_body_peek(struct pt_upcall *c, struct pt_str *data, bool *end)
{
    struct pt_exchange *ex = ex_of(c);
    return ex->down->body_peek(ex, data, end);
}

static void up_body_consume(struct pt_upcall *c, size_t n)
{
    struct pt_exchange *ex = ex_of(c);
    ex->down->body_consume(ex, n);
}

static void up_on_head(struct pt_upcall *c, const struct pt_h1_response *resp,
                       const struct pt_h1_meta *meta)
{
    struct pt_exchange *ex = ex_of(c);
    struct pt_response_head head;
    if (pt_forward_response_head(ex, resp, meta, &head) != 0) {
        pt_upcall_cancel(c);
        pt_proxy_respond_problem(ex, 502, NULL, "out of memory", NULL, 0);
        return;
    }
    ex->down->send_head(ex, &head);
    if (resp->status == 101)
        ex->down->upgrade(ex);
}

static bool up_on_body(struct pt_upcall *c, const char *p, size_t n, bool end)
{
    struct pt_exchange *ex = ex_of(c);
    if (ex->finished)
        return true;
    return ex->down->send_body(ex, p, n, end);
}

static void up_on_error(struct pt_upcall *c, enum pt_upcall_error err, bool head_delivered)
{
    struct pt_exchange *ex = ex_of(c);
    if (head_delivered || ex->responded) {
        if (!ex->finished)
            ex->down->abort(ex);
        return;
    }
    const char *svc = c->svc->name;
    int status;
    const char *what;
    switch (err) {
    case PT_UPERR_NO_TARGET:
        status = 503;
        what = "has no available target";
        break;
    case PT_UPERR_CONNECT_TIMEOUT:
        status = 504;
        what = "did not accept the connection in time";
        break;
    case PT_UPERR_TIMEOUT:
        status = 504;
        what = "did not answer in time";
        break;
    case PT_UPERR_CONNECT:
        status = 502;
        what = "could not be reached";
        break;
    case PT_UPERR_PROTOCOL:
        status = 502;
        what = "sent an invalid response";
        break;
    case PT_UPERR_CLIENT:
        status = ex->client_error != 0 ? ex->client_error : 400;
        pt_proxy_respond_problem(ex, status, NULL,
                                 status == 413   ? "the request body is too large"
                                 : status == 408 ? "the request body took too long"
                                                 : "invalid request body",
                                 NULL, 0);
        return;
    case PT_UPERR_NOMEM:
        status = 503;
        what = "could not be called (out of memory)";
        break;
    default:
        status = 502;
        what = "closed the connection unexpectedly";
        break;
    }
    char *detail = pt_arena_printf(&ex->arena, "service %s %s", svc, what);
    pt_proxy_respond_problem(ex, status, NULL, detail, NULL, 0);
}

static const struct pt_upcall_ops upcall_ops = {
    .build_head = up_build_head,
    .body_peek = up_body_peek,
    .body_consume = up_body_consume,
    .on_head = up_on_head,
    .on_body = up_on_body,
    .on_error = up_on_error,
};

/* ---- the handler ---- */

static bool header_lookup(void *ctx, struct pt_str name, struct pt_str *value)
{
    const struct pt_request *r = ctx;
    const struct pt_h1_header *h = pt_h1_find_header(r->headers, r->nheaders, name);
    if (h == NULL)
        return false;
    *value = h->value;
    return true;
}

void pt_proxy_handle(struct pt_exchange *ex)
{
    struct pt_worker *w = ex->worker;
    const struct pt_snapshot *snap = ex->snap;
    struct pt_request *req = &ex->req;
    pt_forward_identity(ex);

    struct pt_router_request rr = {
        .method = req->method,
        .host = req->host,
        .path = req->path,
        .header = header_lookup,
        .header_ctx = req,
    };
    struct pt_router_match *m = &ex->match;
    if (snap->router == NULL) {
        respond_404(ex);
        return;
    }
    pt_router_match(snap->router, &rr, m);
    if (m->status == 405) {
        respond_405(ex, m);
        return;
    }
    if (m->status != 200 || m->data == NULL) {
        respond_404(ex);
        return;
    }
    const struct pt_route *route = m->data;
    ex->route = route;
    ex->body_limit = route->max_body_bytes ? route->max_body_bytes : snap->server.max_body_bytes;
    if (req->body == PT_BODY_LENGTH && req->content_length > ex->body_limit) {
        char *detail = pt_arena_printf(&ex->arena, "the request body exceeds %llu bytes",
                                       (unsigned long long)ex->body_limit);
        pt_proxy_respond_problem(ex, 413, NULL, detail, NULL, 0);
        return;
    }
    if (route->aggregate != NULL) {
        pt_compose_handle(ex);
        return;
    }
    if (pt_forward_upstream_path(ex) != 0) {
        pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
        return;
    }
    const struct pt_service *svc = route->service;
    struct pt_upcall *c = &ex->up;
    pt_upcall_init(c, &w->up, svc, &upcall_ops, ex);
    c->method = req->method_id;
    c->body = req->body;
    c->content_length = req->content_length;
    c->upgrade = req->upgrade;
    c->hash_key = pt_forward_hash_key(ex, svc);
    ex->up_started = true;
    pt_upcall_start(c);
}

void pt_proxy_on_body_ready(struct pt_exchange *ex)
{
    if (ex->up_started && !ex->up.done)
        pt_upcall_body_ready(&ex->up);
}

void pt_proxy_on_drain(struct pt_exchange *ex)
{
    if (ex->up_started && !ex->up.done)
        pt_upcall_resume(&ex->up);
}

void pt_proxy_on_client_gone(struct pt_exchange *ex)
{
    if (ex->up_started && !ex->up.done)
        pt_upcall_cancel(&ex->up);
    ex->finished = true;
}
