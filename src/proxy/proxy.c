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
#include "core/metrics.h"
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
    ex->hold = pt_worker_hold_snapshot(w);
    ex->snap = ex->hold->snap;
    ex->request_id_header = PT_STR_LIT("X-Request-Id");
    pt_buf_init(&ex->req_body);
    pt_buf_init(&ex->resp_body);
    return ex;
}

static void run_log_plugins(struct pt_exchange *ex)
{
    const struct pt_plugin_chain *ch = ex->chain;
    if (ch == NULL)
        return;
    for (size_t i = 0; i < ch->n; i++)
        if (ch->items[i].ops->on_log != NULL)
            ch->items[i].ops->on_log(ch->items[i].state, ex);
}

/* One finished request into the worker's metrics (one clock read).  An
 * exchange that never got a request (its head could not be copied) is not
 * counted; one whose client left before a response head went out counts
 * with status 0. */
static void record_metrics(struct pt_exchange *ex)
{
    struct pt_worker *w = ex->worker;
    if (w->metrics == NULL || ex->req.method.len == 0)
        return;
    const struct pt_route *r = ex->route;
    struct pt_str route = r != NULL ? pt_str_cstr(r->name) : PT_STR_NULL;
    struct pt_str service =
        r != NULL && r->service != NULL ? pt_str_cstr(r->service->name) : PT_STR_NULL;
    uint64_t now = pt_clock_us();
    uint64_t us = now > ex->start_us ? now - ex->start_us : 0;
    pt_metrics_request(w->metrics, route, service, PT_STR_NULL, ex->status, us, ex->bytes_in,
                       ex->bytes_out);
}

void pt_exchange_free(struct pt_exchange *ex)
{
    struct pt_worker *w = ex->worker;
    if (ex->up_started && !ex->up.done)
        pt_upcall_cancel(&ex->up);
    pt_loop_cancel_defer(&w->loop, &ex->resume_defer);
    run_log_plugins(ex);
    record_metrics(ex);
    pt_buf_free(&ex->req_body);
    pt_buf_free(&ex->resp_body);
    pt_arena_reset(&ex->arena);
    pt_worker_release_snapshot(w, ex->hold);
    ex->hold = NULL;
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
                              const char *detail, const struct pt_h1_header *extra, size_t nextra)
{
    if (ex->up_started && !ex->up.done)
        pt_upcall_cancel(&ex->up);
    if (ex->responded) {
        ex->down->abort(ex);
        return;
    }
    ensure_request_id(ex);
    ex->resp_buffering = false;
    if (ex->error == NULL)
        ex->error = detail;
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
    hs[1].name = ex->request_id_header;
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
    pt_proxy_send_head(ex, &head);
    ex->down->send_body(ex, body, len, true);
}

void pt_proxy_send_head(struct pt_exchange *ex, struct pt_response_head *head)
{
    const struct pt_plugin_chain *ch = ex->chain;
    if (ch != NULL)
        for (size_t i = 0; i < ch->n; i++)
            if (ch->items[i].ops->on_response_head != NULL)
                ch->items[i].ops->on_response_head(ch->items[i].state, ex, head);
    ex->down->send_head(ex, head);
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
    char *detail =
        pt_arena_printf(&ex->arena, "no route for %.*s %.*s", PT_STR_FMT(ex->req.method),
                        (int)(ex->req.path.len > 200 ? 200 : ex->req.path.len), ex->req.path.ptr);
    pt_proxy_respond_problem(ex, 404, NULL, detail, NULL, 0);
}

/* ---- local answers for plugins ---- */

void pt_proxy_respond(struct pt_exchange *ex, int status, const struct pt_h1_header *headers,
                      size_t nheaders, const char *body, size_t len)
{
    if (ex->up_started && !ex->up.done)
        pt_upcall_cancel(&ex->up);
    if (ex->responded) {
        ex->down->abort(ex);
        return;
    }
    ensure_request_id(ex);
    ex->resp_buffering = false;
    struct pt_h1_header *hs = pt_arena_alloc(&ex->arena, sizeof(*hs) * (nheaders + 1));
    char *copy = len > 0 ? pt_arena_alloc(&ex->arena, len) : NULL;
    if (hs == NULL || (len > 0 && copy == NULL)) {
        ex->down->abort(ex);
        return;
    }
    for (size_t i = 0; i < nheaders; i++)
        hs[i] = headers[i];
    hs[nheaders].name = ex->request_id_header;
    hs[nheaders].value = pt_str_make(ex->request_id, ex->request_id_len);
    if (len > 0)
        memcpy(copy, body, len);
    struct pt_response_head head = {
        .status = status,
        .headers = hs,
        .nheaders = nheaders + 1,
        .body = PT_BODY_LENGTH,
        .content_length = len,
        .head_only = ex->req.method_id == PT_METHOD_HEAD || status == 204 || status == 304,
    };
    pt_proxy_send_head(ex, &head);
    ex->down->send_body(ex, copy, len, true);
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
    if (ex->req_body_read) { /* a plugin read (and maybe rewrote) the whole body */
        *data = pt_buf_str(&ex->req_body);
        *end = true;
        return 0;
    }
    return ex->down->body_peek(ex, data, end);
}

static void up_body_consume(struct pt_upcall *c, size_t n)
{
    struct pt_exchange *ex = ex_of(c);
    if (ex->req_body_read)
        pt_buf_consume(&ex->req_body, n);
    else
        ex->down->body_consume(ex, n);
}

/* Deep-copy a head whose views point into the upstream connection's buffer. */
static int keep_head(struct pt_exchange *ex, const struct pt_response_head *h)
{
    struct pt_h1_header *hs = pt_arena_alloc(&ex->arena, sizeof(*hs) * (h->nheaders + 1));
    if (hs == NULL)
        return PT_ERR_NOMEM;
    for (size_t i = 0; i < h->nheaders; i++) {
        hs[i].name = pt_arena_strdup_str(&ex->arena, h->headers[i].name);
        hs[i].value = pt_arena_strdup_str(&ex->arena, h->headers[i].value);
        if (hs[i].name.ptr == NULL || hs[i].value.ptr == NULL)
            return PT_ERR_NOMEM;
    }
    ex->resp_head = *h;
    ex->resp_head.headers = hs;
    return 0;
}

static bool wants_body(struct pt_exchange *ex, const struct pt_response_head *head)
{
    const struct pt_plugin_chain *ch = ex->chain;
    if (ch == NULL || !ch->any_response_body || head->head_only || head->status == 101)
        return false;
    if (head->body == PT_BODY_LENGTH && head->content_length > PT_PLUGIN_MAX_BODY)
        return false;
    for (size_t i = 0; i < ch->n; i++)
        if (ch->items[i].ops->wants_response_body != NULL &&
            ch->items[i].ops->wants_response_body(ch->items[i].state, ex, head))
            return true;
    return false;
}

static void up_on_head(struct pt_upcall *c, const struct pt_h1_response *resp,
                       const struct pt_h1_meta *meta)
{
    struct pt_exchange *ex = ex_of(c);
    struct pt_response_head head;
    ex->upstream_ms = pt_loop_now(&ex->worker->loop) - ex->upstream_start_ms;
    if (pt_forward_response_head(ex, resp, meta, &head) != 0) {
        pt_proxy_respond_problem(ex, 502, NULL, "out of memory", NULL, 0);
        return;
    }
    ex->upstream_status = resp->status;
    const struct pt_plugin_chain *ch = ex->chain;
    for (size_t i = 0; ch != NULL && i < ch->n; i++)
        if (ch->items[i].ops->on_upstream_response != NULL &&
            (ch->items[i].ops->on_upstream_response(ch->items[i].state, ex, &head) ==
                 PT_PLUGIN_RESPONDED ||
             ex->responded || ex->finished))
            return;
    if (wants_body(ex, &head)) {
        if (keep_head(ex, &head) != 0) {
            pt_proxy_respond_problem(ex, 502, NULL, "out of memory", NULL, 0);
            return;
        }
        ex->resp_buffering = true;
        return;
    }
    pt_proxy_send_head(ex, &head);
    if (resp->status == 101)
        ex->down->upgrade(ex);
}

/* The whole body is here: let the plugins rewrite it, then send it with a length. */
static void finish_buffered(struct pt_exchange *ex)
{
    const struct pt_plugin_chain *ch = ex->chain;
    struct pt_response_head *head = &ex->resp_head;
    ex->resp_buffering = false;
    for (size_t i = 0; i < ch->n; i++) {
        const struct pt_plugin_instance *in = &ch->items[i];
        if (in->ops->on_response_body == NULL || in->ops->wants_response_body == NULL ||
            !in->ops->wants_response_body(in->state, ex, head))
            continue;
        if (in->ops->on_response_body(in->state, ex, head, &ex->resp_body) != 0) {
            pt_proxy_respond_problem(ex, 502, NULL, "the response could not be transformed", NULL,
                                     0);
            return;
        }
    }
    head->body = PT_BODY_LENGTH;
    head->content_length = pt_buf_len(&ex->resp_body);
    pt_proxy_send_head(ex, head);
    ex->down->send_body(ex, pt_buf_head(&ex->resp_body), pt_buf_len(&ex->resp_body), true);
}

static bool up_on_body(struct pt_upcall *c, const char *p, size_t n, bool end)
{
    struct pt_exchange *ex = ex_of(c);
    if (ex->finished)
        return true;
    if (ex->resp_buffering) {
        if (pt_buf_len(&ex->resp_body) + n > PT_PLUGIN_MAX_BODY) {
            /* too big to rewrite: send it as it came */
            ex->resp_buffering = false;
            pt_proxy_send_head(ex, &ex->resp_head);
            ex->down->send_body(ex, pt_buf_head(&ex->resp_body), pt_buf_len(&ex->resp_body), false);
            pt_buf_free(&ex->resp_body);
            return ex->down->send_body(ex, p, n, end);
        }
        if (n > 0 && pt_buf_append(&ex->resp_body, p, n, PT_PLUGIN_MAX_BODY) != 0) {
            pt_proxy_respond_problem(ex, 502, NULL, "out of memory", NULL, 0);
            return true;
        }
        if (end)
            finish_buffered(ex);
        return false;
    }
    return ex->down->send_body(ex, p, n, end);
}

static int error_status(struct pt_exchange *ex, enum pt_upcall_error err, const char **what)
{
    switch (err) {
    case PT_UPERR_NO_TARGET:
        *what = "has no available target";
        return 503;
    case PT_UPERR_CONNECT_TIMEOUT:
        *what = "did not accept the connection in time";
        return 504;
    case PT_UPERR_TIMEOUT:
        *what = "did not answer in time";
        return 504;
    case PT_UPERR_CONNECT:
        *what = "could not be reached";
        return 502;
    case PT_UPERR_PROTOCOL:
        *what = "sent an invalid response";
        return 502;
    case PT_UPERR_CLIENT: {
        int st = ex->client_error != 0 ? ex->client_error : 400;
        *what = st == 413   ? "the request body is too large"
                : st == 408 ? "the request body took too long"
                            : "invalid request body";
        return st;
    }
    case PT_UPERR_NOMEM:
        *what = "could not be called (out of memory)";
        return 503;
    default:
        *what = "closed the connection unexpectedly";
        return 502;
    }
}

static void up_on_error(struct pt_upcall *c, enum pt_upcall_error err, bool head_delivered)
{
    struct pt_exchange *ex = ex_of(c);
    if ((head_delivered && !ex->resp_buffering) || ex->responded) {
        bool retracted = head_delivered && !ex->finished && ex->down->retract_head != NULL &&
                         ex->down->retract_head(ex);
        if (!retracted) {
            if (!ex->finished)
                ex->down->abort(ex);
            return;
        }
    }
    const char *what;
    int status = error_status(ex, err, &what);
    if (err == PT_UPERR_CLIENT) {
        pt_proxy_respond_problem(ex, status, NULL, what, NULL, 0);
        return;
    }
    ex->error = pt_upcall_error_name(err);
    const struct pt_plugin_chain *ch = ex->chain;
    for (size_t i = 0; ch != NULL && i < ch->n; i++)
        if (ch->items[i].ops->on_upstream_error != NULL &&
            ch->items[i].ops->on_upstream_error(ch->items[i].state, ex, status) ==
                PT_PLUGIN_RESPONDED)
            return;
    char *detail = pt_arena_printf(&ex->arena, "service %s %s", c->svc->name, what);
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

static void start_upstream(struct pt_exchange *ex)
{
    struct pt_worker *w = ex->worker;
    struct pt_request *req = &ex->req;
    const struct pt_route *route = ex->route;
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
    if (ex->req_body_read) {
        c->body = pt_buf_len(&ex->req_body) > 0 || req->body != PT_BODY_NONE ? PT_BODY_LENGTH
                                                                             : PT_BODY_NONE;
        c->content_length = pt_buf_len(&ex->req_body);
    } else {
        c->body = req->body;
        c->content_length = req->content_length;
    }
    c->upgrade = req->upgrade;
    c->hash_key = pt_forward_hash_key(ex, svc);
    ex->up_started = true;
    ex->upstream_start_ms = pt_loop_now(&w->loop);
    pt_upcall_start(c);
}

static void run_request_plugins(struct pt_exchange *ex);

/* Read the whole request body into ex->req_body for a plugin that asked for it. */
static void collect_body(struct pt_exchange *ex)
{
    for (;;) {
        struct pt_str data;
        bool end = false;
        int r = ex->down->body_peek(ex, &data, &end);
        if (r == PT_AGAIN)
            return; /* pt_proxy_on_body_ready brings us back */
        if (r < 0) {
            ex->collecting_body = false;
            int st = ex->client_error != 0 ? ex->client_error : 400;
            pt_proxy_respond_problem(
                ex, st, NULL, st == 413 ? "the request body is too large" : "invalid request body",
                NULL, 0);
            return;
        }
        if (pt_buf_len(&ex->req_body) + data.len > ex->body_limit) {
            ex->collecting_body = false;
            pt_proxy_respond_problem(ex, 413, NULL, "the request body is too large", NULL, 0);
            return;
        }
        if (data.len > 0 && pt_buf_append(&ex->req_body, data.ptr, data.len, SIZE_MAX) != 0) {
            ex->collecting_body = false;
            pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
            return;
        }
        ex->down->body_consume(ex, data.len);
        if (end) {
            ex->collecting_body = false;
            ex->req_body_read = true;
            run_request_plugins(ex);
            return;
        }
    }
}

static void run_request_plugins(struct pt_exchange *ex)
{
    const struct pt_plugin_chain *ch = ex->chain;
    while (ch != NULL && ex->plugin_pos < ch->n) {
        const struct pt_plugin_instance *in = &ch->items[ex->plugin_pos];
        if (in->ops->wants_request_body != NULL && !ex->req_body_read &&
            ex->req.body != PT_BODY_NONE && !ex->req.upgrade &&
            in->ops->wants_request_body(in->state, ex)) {
            ex->collecting_body = true;
            collect_body(ex);
            return;
        }
        ex->plugin_pos++;
        if (in->ops->on_request == NULL)
            continue;
        int v = in->ops->on_request(in->state, ex);
        if (v == PT_PLUGIN_RESPONDED || v == PT_PLUGIN_PAUSE || ex->responded || ex->finished)
            return;
    }
    start_upstream(ex);
}

static void resume_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct pt_exchange *ex = arg;
    if (!ex->responded && !ex->finished)
        run_request_plugins(ex);
}

void pt_proxy_resume(struct pt_exchange *ex)
{
    pt_loop_defer(&ex->worker->loop, &ex->resume_defer, resume_task, ex);
}

void pt_proxy_handle(struct pt_exchange *ex)
{
    const struct pt_snapshot *snap = ex->snap;
    struct pt_request *req = &ex->req;
    ex->chain = &snap->global_chain;
    pt_forward_identity(ex);

    struct pt_router_request rr = {
        .method = req->method,
        .host = req->host,
        .path = req->path,
        .header = header_lookup,
        .header_ctx = req,
    };
    struct pt_router_match *m = &ex->match;
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
    ex->chain = &route->chain;
    ex->body_limit = route->max_body_bytes ? route->max_body_bytes : snap->server.max_body_bytes;
    if (req->body == PT_BODY_LENGTH && req->content_length > ex->body_limit) {
        char *detail = pt_arena_printf(&ex->arena, "the request body exceeds %llu bytes",
                                       (unsigned long long)ex->body_limit);
        pt_proxy_respond_problem(ex, 413, NULL, detail, NULL, 0);
        return;
    }
    ex->plugin_pos = 0;
    run_request_plugins(ex);
}

void pt_proxy_on_body_ready(struct pt_exchange *ex)
{
    if (ex->collecting_body) {
        collect_body(ex);
        return;
    }
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
