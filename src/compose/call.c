/*
 * One call of a composition: its request is built from templates when its
 * dependencies are done, then sent through struct pt_upcall exactly like a
 * proxied request (same balancer, pool, timeouts and retries), and its
 * response is collected up to max_body_bytes and decoded.
 *
 * The request carries what a proxied one does (X-Forwarded-For / -Proto /
 * -Host, X-Request-Id, a child traceparent of the client's trace and its
 * tracestate when that trace is continued), plus the
 * client headers listed in forward_headers and the call's own headers.
 *
 * Callbacks from the upcall only record what happened and tell run.c
 * (pt_ccall_succeeded / pt_ccall_failed), which decides later, after the
 * current event batch.
 */
#include <stdio.h>
#include <string.h>

#include "portico/status.h"
#include "compose/run-int.h"
#include "compose/template.h"
#include "net/cidr.h"
#include "proxy/forward.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"
#include "upstream/service.h"

/* ---- building the request ---- */

static void put_header(struct pt_jbuf *b, struct pt_str name, struct pt_str value)
{
    pt_jbuf_put(b, name.ptr, name.len);
    pt_jbuf_put(b, ": ", 2);
    pt_jbuf_put(b, value.ptr, value.len);
    pt_jbuf_put(b, "\r\n", 2);
}

/* Does the call write this header itself (its `headers`, or the body's Content-Type)? */
static bool call_sets(const struct pt_compose_call *def, struct pt_str name)
{
    if (def->has_body && pt_str_case_eq_lit(name, "content-type"))
        return true;
    for (size_t i = 0; i < def->nheaders; i++)
        if (pt_str_case_eq(def->headers[i].name, name))
            return true;
    return false;
}

/* The template failure as text for the problem detail. */
static const char *template_why(struct pt_ccall *cc, const struct pt_tpl *t,
                                const struct pt_tpl_failure *f, const char *where)
{
    struct pt_arena *a = &cc->run->ex->arena;
    if (f->part == NULL)
        return pt_arena_printf(a, "its %s %s", where, f->why);
    struct pt_str ph = pt_str_make(t->src.ptr + f->part->off, f->part->len);
    const char *extra = "";
    if (f->part->src == PT_TPL_RESULT) {
        const struct pt_ccall *dep = &cc->run->calls[f->part->call];
        if (dep->result == NULL)
            extra = pt_arena_printf(a, " (call \"%s\" has no result)", dep->def->key);
    }
    return pt_arena_printf(a, "%s placeholder %.*s %s%s", where, (int)(ph.len > 100 ? 100 : ph.len),
                           ph.ptr, f->why, extra != NULL ? extra : "");
}

/* Fill t; on failure fail the call and return false. */
static bool fill(struct pt_ccall *cc, const struct pt_tpl *t, const struct pt_tpl_scope *s,
                 struct pt_jbuf *out, const char *where)
{
    struct pt_tpl_failure f;
    int rc = pt_tpl_fill(t, s, out, &f);
    if (rc == PT_TPL_OK)
        return true;
    pt_ccall_failed(
        cc, rc < 0 ? "could not be built (out of memory)" : template_why(cc, t, &f, where), false);
    return false;
}

static struct pt_str to_arena(struct pt_ccall *cc, const struct pt_jbuf *b)
{
    return pt_arena_strdup_str(&cc->run->ex->arena, pt_str_make(b->p != NULL ? b->p : "", b->len));
}

/* Path and query: the path template, then each `query:` argument. */
static bool build_target(struct pt_ccall *cc, const struct pt_tpl_scope *s, struct pt_jbuf *out)
{
    const struct pt_compose_call *def = cc->def;
    if (!fill(cc, &def->path, s, out, "path"))
        return false;
    bool has_q = out->len > 0 && memchr(out->p, '?', out->len) != NULL;
    struct pt_jbuf v;
    pt_jbuf_init(&v);
    for (size_t i = 0; i < def->nquery; i++) {
        const struct pt_compose_query *q = &def->query[i];
        struct pt_tpl_failure f;
        v.len = 0;
        int rc = pt_tpl_fill(&q->value, s, &v, &f);
        if (rc == PT_TPL_MISSING && q->omit_if_missing)
            continue;
        if (rc != PT_TPL_OK) {
            pt_ccall_failed(cc,
                            rc < 0 ? "could not be built (out of memory)"
                                   : template_why(cc, &q->value, &f, "query"),
                            false);
            pt_jbuf_free(&v);
            return false;
        }
        char last = out->len > 0 ? out->p[out->len - 1] : '\0';
        if (!has_q)
            pt_jbuf_put(out, "?", 1);
        else if (last != '?' && last != '&')
            pt_jbuf_put(out, "&", 1);
        has_q = true;
        pt_jbuf_put(out, q->name.ptr, q->name.len);
        pt_jbuf_put(out, "=", 1);
        pt_jbuf_put(out, v.p, v.len);
    }
    pt_jbuf_free(&v);
    return true;
}

/* Every header line after Host.  The framing (Content-Length) is the upcall's. */
static bool build_headers(struct pt_ccall *cc, const struct pt_tpl_scope *s, struct pt_jbuf *out)
{
    const struct pt_compose_call *def = cc->def;
    struct pt_exchange *ex = cc->run->ex;
    const struct pt_request *r = &ex->req;
    for (size_t i = 0; i < def->nforward; i++) {
        if (call_sets(def, def->forward[i]))
            continue; /* the call's own value wins */
        for (size_t k = 0; k < r->nheaders; k++)
            if (pt_str_case_eq(r->headers[k].name, def->forward[i]))
                put_header(out, r->headers[k].name, r->headers[k].value);
    }
    for (size_t i = 0; i < def->nheaders; i++) {
        pt_jbuf_put(out, def->headers[i].name.ptr, def->headers[i].name.len);
        pt_jbuf_put(out, ": ", 2);
        if (!fill(cc, &def->headers[i].value, s, out, "header"))
            return false;
        pt_jbuf_put(out, "\r\n", 2);
    }
    if (def->has_body && !def->body_has_type)
        put_header(out, PT_STR_LIT("Content-Type"), PT_STR_LIT("application/json"));

    /* as a proxied request (proxy/forward.c): the peer appended to the client's X-Forwarded-For */
    struct pt_str xff;
    char ip[64];
    size_t iplen = pt_ip_format(&ex->peer, ip, sizeof(ip));
    pt_jbuf_puts(out, "X-Forwarded-For: ");
    if (pt__compose_client_header(ex, PT_STR_LIT("X-Forwarded-For"), &xff) && xff.len > 0) {
        pt_jbuf_put(out, xff.ptr, xff.len);
        pt_jbuf_put(out, ", ", 2);
    }
    pt_jbuf_put(out, ip, iplen);
    pt_jbuf_put(out, "\r\n", 2);
    struct pt_str v;
    if (ex->peer_trusted && pt__compose_client_header(ex, PT_STR_LIT("X-Forwarded-Proto"), &v))
        put_header(out, PT_STR_LIT("X-Forwarded-Proto"), v);
    else
        put_header(out, PT_STR_LIT("X-Forwarded-Proto"), r->scheme);
    if (ex->peer_trusted && pt__compose_client_header(ex, PT_STR_LIT("X-Forwarded-Host"), &v))
        put_header(out, PT_STR_LIT("X-Forwarded-Host"), v);
    else if (r->authority.len > 0)
        put_header(out, PT_STR_LIT("X-Forwarded-Host"), r->authority);
    put_header(out, ex->request_id_header, pt_str_make(ex->request_id, ex->request_id_len));
    char tp[PT_TRACEPARENT_LEN];
    pt_traceparent_child(&ex->trace, &cc->trace);
    pt_traceparent_format(&cc->trace, tp);
    put_header(out, PT_STR_LIT("traceparent"), pt_str_make(tp, sizeof(tp)));
    if (ex->trace_continued && pt__compose_client_header(ex, PT_STR_LIT("tracestate"), &v))
        put_header(out, PT_STR_LIT("tracestate"), v);
    if (out->oom) {
        pt_ccall_failed(cc, "could not be built (out of memory)", false);
        return false;
    }
    return true;
}

/* ---- upcall callbacks ---- */

static struct pt_ccall *cc_of(struct pt_upcall *c)
{
    return c->ctx;
}

static int up_build_head(struct pt_upcall *c, const struct pt_target *t, struct pt_buf *out)
{
    struct pt_ccall *cc = cc_of(c);
    const struct pt_service *svc = cc->def->service;
    struct pt_str host = svc->host != NULL ? pt_str_cstr(svc->host) : pt_str_cstr(t->authority);
    struct pt_str m = cc->def->method;
    size_t need = m.len + cc->target.len + host.len + cc->head_rest.len + 32;
    char *start = pt_buf_reserve(out, need, SIZE_MAX);
    if (start == NULL)
        return PT_ERR_NOMEM;
    char *p = start;
    memcpy(p, m.ptr, m.len);
    p += m.len;
    *p++ = ' ';
    memcpy(p, cc->target.ptr, cc->target.len);
    p += cc->target.len;
    memcpy(p, " HTTP/1.1\r\nHost: ", 17);
    p += 17;
    memcpy(p, host.ptr, host.len);
    p += host.len;
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, cc->head_rest.ptr, cc->head_rest.len);
    p += cc->head_rest.len;
    pt_buf_commit(out, (size_t)(p - start));
    return 0;
}

static int up_body_peek(struct pt_upcall *c, struct pt_str *data, bool *end)
{
    struct pt_ccall *cc = cc_of(c);
    *data = pt_str_make(cc->body.ptr + cc->body_off, cc->body.len - cc->body_off);
    *end = true;
    return 0;
}

static void up_body_consume(struct pt_upcall *c, size_t n)
{
    cc_of(c)->body_off += n;
}

static bool exposed_name(const struct pt_aggregate *agg, struct pt_str name)
{
    for (size_t i = 0; i < agg->nexpose; i++)
        if (pt_str_case_eq(agg->expose[i], name))
            return true;
    return false;
}

static void up_on_head(struct pt_upcall *c, const struct pt_h1_response *resp,
                       const struct pt_h1_meta *meta)
{
    struct pt_ccall *cc = cc_of(c);
    const struct pt_aggregate *agg = cc->run->agg;
    struct pt_arena *a = &cc->run->ex->arena;
    cc->status = resp->status;
    cc->media = PT_MEDIA_NONE;
    bool ok = resp->status >= 200 && resp->status < 300;
    for (size_t i = 0; i < resp->num_headers; i++) {
        const struct pt_h1_header *h = &resp->headers[i];
        if (pt_str_case_eq_lit(h->name, "content-type"))
            cc->media = pt_json_media_type(h->value);
    }
    if (ok && agg->nexpose > 0) {
        cc->exposed = pt_arena_alloc(a, resp->num_headers * sizeof(*cc->exposed) + 1);
        for (size_t i = 0; cc->exposed != NULL && i < resp->num_headers; i++) {
            const struct pt_h1_header *h = &resp->headers[i];
            if (!exposed_name(agg, h->name))
                continue;
            struct pt_h1_header *e = &cc->exposed[cc->nexposed++];
            e->name = pt_arena_strdup_str(a, h->name);
            e->value = pt_arena_strdup_str(a, h->value);
            if (e->name.ptr == NULL || e->value.ptr == NULL)
                cc->nexposed--;
        }
    }
    if (meta->body == PT_H1_BODY_LENGTH && meta->content_length > cc->def->max_body_bytes) {
        pt_upcall_cancel(c);
        pt_ccall_failed(cc,
                        ok ? pt_arena_printf(a,
                                             "sent a body of %llu bytes, more than "
                                             "max_body_bytes (%llu)",
                                             (unsigned long long)meta->content_length,
                                             (unsigned long long)cc->def->max_body_bytes)
                           : pt_arena_printf(a, "answered %d", resp->status),
                        false);
    }
}

static bool up_on_body(struct pt_upcall *c, const char *p, size_t n, bool end)
{
    struct pt_ccall *cc = cc_of(c);
    struct pt_arena *a = &cc->run->ex->arena;
    bool ok = cc->status >= 200 && cc->status < 300;
    if (cc->resp.len + n > cc->def->max_body_bytes) {
        pt_upcall_cancel(c);
        pt_ccall_failed(cc,
                        ok ? pt_arena_printf(a, "sent a body larger than max_body_bytes (%llu)",
                                             (unsigned long long)cc->def->max_body_bytes)
                           : pt_arena_printf(a, "answered %d", cc->status),
                        false);
        return false;
    }
    if (ok)
        pt_jbuf_put(&cc->resp, p, n);
    else
        cc->resp.len += n; /* only counted: an error body is not kept */
    if (!end)
        return false;
    if (!ok) {
        pt_ccall_failed(cc, pt_arena_printf(a, "answered %d", cc->status), false);
        return false;
    }
    if (cc->resp.oom) {
        pt_ccall_failed(cc, "could not be read (out of memory)", false);
        return false;
    }
    const char *why = NULL;
    json_t *v = pt_json_from_body(cc->resp.p, cc->resp.len, cc->media, &why);
    pt_jbuf_free(&cc->resp);
    if (v == NULL) {
        pt_ccall_failed(cc,
                        why != NULL && strcmp(why, "invalid JSON") == 0
                            ? "sent invalid JSON (its Content-Type says JSON)"
                            : "could not be read (out of memory)",
                        false);
        return false;
    }
    pt_ccall_succeeded(cc, v);
    return false;
}

static void up_on_error(struct pt_upcall *c, enum pt_upcall_error err, bool head_delivered)
{
    struct pt_ccall *cc = cc_of(c);
    (void)head_delivered;
    const char *why;
    bool timeout = false;
    switch (err) {
    case PT_UPERR_NO_TARGET:
        why = "has no available target";
        break;
    case PT_UPERR_CONNECT:
        why = "could not be reached (connection failed)";
        break;
    case PT_UPERR_CONNECT_TIMEOUT:
        why = "did not accept the connection in time";
        timeout = true;
        break;
    case PT_UPERR_TIMEOUT:
        why = "did not answer in time (the service's read timeout)";
        timeout = true;
        break;
    case PT_UPERR_PROTOCOL:
        why = "sent an invalid response";
        break;
    case PT_UPERR_NOMEM:
        why = "could not be called (out of memory)";
        break;
    default:
        why = "closed the connection unexpectedly";
        break;
    }
    pt_ccall_failed(cc, why, timeout);
}

static const struct pt_upcall_ops ccall_ops = {
    .build_head = up_build_head,
    .body_peek = up_body_peek,
    .body_consume = up_body_consume,
    .on_head = up_on_head,
    .on_body = up_on_body,
    .on_error = up_on_error,
};

/* ---- lifetime ---- */

static void on_call_timeout(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct pt_ccall *cc = PT_CONTAINER_OF(t, struct pt_ccall, timer);
    if (cc->state != PT_CCALL_RUNNING)
        return;
    if (cc->up_started && !cc->up.done)
        pt_upcall_cancel(&cc->up);
    pt_ccall_failed(cc,
                    pt_arena_printf(&cc->run->ex->arena,
                                    "did not answer within its timeout (%llums)",
                                    (unsigned long long)cc->def->timeout_ms),
                    true);
}

void pt_ccall_start(struct pt_ccall *cc)
{
    const struct pt_compose_call *def = cc->def;
    struct pt_exchange *ex = cc->run->ex;
    struct pt_tpl_scope scope;
    struct pt_jbuf b;
    pt__compose_scope(cc, &scope);
    cc->state = PT_CCALL_RUNNING;
    pt_jbuf_init(&b);
    if (!build_target(cc, &scope, &b))
        goto out;
    cc->target = to_arena(cc, &b);
    b.len = 0;
    if (def->has_body) {
        if (!fill(cc, &def->body, &scope, &b, "body"))
            goto out;
        cc->body = to_arena(cc, &b);
        b.len = 0;
    }
    if (!build_headers(cc, &scope, &b))
        goto out;
    cc->head_rest = to_arena(cc, &b);
    if (cc->target.ptr == NULL || cc->head_rest.ptr == NULL ||
        (def->has_body && cc->body.ptr == NULL)) {
        pt_ccall_failed(cc, "could not be built (out of memory)", false);
        goto out;
    }
    pt_jbuf_free(&b);
    pt_upcall_init(&cc->up, &ex->worker->up, def->service, &ccall_ops, cc);
    cc->up.method = def->method_id;
    cc->up.body = def->has_body ? PT_BODY_LENGTH : PT_BODY_NONE;
    cc->up.content_length = cc->body.len;
    cc->up.hash_key = pt_forward_hash_key(ex, def->service);
    cc->up_started = true;
    if (def->timeout_ms > 0)
        pt_timer_arm(&ex->worker->loop, &cc->timer, def->timeout_ms, on_call_timeout);
    pt_upcall_start(&cc->up);
    return;
out:
    pt_jbuf_free(&b);
}

void pt_ccall_cancel(struct pt_ccall *cc)
{
    struct pt_exchange *ex = cc->run->ex;
    if (cc->up_started && !cc->up.done)
        pt_upcall_cancel(&cc->up);
    pt_timer_disarm(&ex->worker->loop, &cc->timer);
}

void pt_ccall_release(struct pt_ccall *cc)
{
    pt_jbuf_free(&cc->resp);
    json_decref(cc->result);
    json_decref(cc->shown);
    cc->result = cc->shown = NULL;
}
