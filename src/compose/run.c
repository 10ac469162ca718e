/*
 * A running composition: which calls may start, when the answer is known,
 * and the answer itself.
 *
 * Calls start as soon as every call they read from is done, so independent
 * calls run concurrently on the worker's loop and a chain runs in order.
 * Upcall callbacks only record results (call.c); every decision is taken in
 * pump(), which runs after the current event batch (pt_loop_defer), so no
 * decision is ever taken inside an upcall's callback and a call that
 * finishes frees its connection to the pool before a dependent call looks
 * for one.
 *
 * The answer is decided when
 *   - a required call failed (no fallback, not optional): 502 naming it;
 *   - the composition's timeout expired with a required call unfinished:
 *     504 naming the unfinished ones (unfinished optional or fallback calls
 *     are given up and the document is built without them);
 *   - every call is done: 200 with the merged document, and
 *     X-Portico-Partial: true when a result was replaced or left out.
 * Whatever still runs then is cancelled.  If the client leaves first, the
 * cleanup registered on the exchange's arena cancels everything instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "core/log.h"
#include "compose/compose.h"
#include "compose/merge.h"
#include "compose/run-int.h"
#include "compose/template.h"
#include "plugins/plugin.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "proxy/worker.h"
#include "upstream/service.h"

static void pump(struct pt_compose_run *run);

static struct pt_loop *loop_of(const struct pt_compose_run *run)
{
    return &run->ex->worker->loop;
}

static bool required(const struct pt_compose_call *d)
{
    return !d->has_fallback && !d->optional;
}

static void pump_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    pump(arg);
}

static void schedule(struct pt_compose_run *run)
{
    if (!run->decided)
        pt_loop_defer(loop_of(run), &run->pump, pump_task, run);
}

/* ---- values for templates ---- */

static struct pt_str decoded(struct pt_exchange *ex, struct pt_str s, bool plus_space)
{
    if (memchr(s.ptr, '%', s.len) == NULL && (!plus_space || memchr(s.ptr, '+', s.len) == NULL))
        return s;
    char *d = pt_arena_alloc(&ex->arena, s.len + 1);
    if (d == NULL)
        return s;
    return pt_str_make(d, pt_tpl_percent_decode(d, s, plus_space));
}

static bool scope_capture(void *ctx, struct pt_str name, struct pt_str *out)
{
    struct pt_ccall *cc = ctx;
    struct pt_exchange *ex = cc->run->ex;
    for (size_t i = 0; i < ex->match.ncaptures; i++) {
        if (pt_str_eq(ex->match.captures[i].name, name)) {
            *out = ex->match.captures[i].value.len > 0
                       ? decoded(ex, ex->match.captures[i].value, false)
                       : ex->match.captures[i].value;
            return true;
        }
    }
    return false;
}

static bool scope_query(void *ctx, struct pt_str name, struct pt_str *out)
{
    struct pt_ccall *cc = ctx;
    struct pt_exchange *ex = cc->run->ex;
    struct pt_str q = ex->req.query;
    size_t i = 0;
    while (i < q.len) {
        const char *amp = memchr(q.ptr + i, '&', q.len - i);
        size_t end = amp != NULL ? (size_t)(amp - q.ptr) : q.len;
        struct pt_str arg = pt_str_make(q.ptr + i, end - i);
        i = end + 1;
        if (arg.len == 0)
            continue;
        const char *eq = memchr(arg.ptr, '=', arg.len);
        struct pt_str k = pt_str_make(arg.ptr, eq != NULL ? (size_t)(eq - arg.ptr) : arg.len);
        if (!pt_str_eq(decoded(ex, k, true), name))
            continue;
        *out = eq == NULL ? pt_str_make("", 0)
                          : decoded(ex, pt_str_make(eq + 1, arg.len - k.len - 1), true);
        return true;
    }
    return false;
}

bool pt__compose_client_header(struct pt_exchange *ex, struct pt_str name, struct pt_str *out)
{
    const struct pt_request *r = &ex->req;
    size_t count = 0, total = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!pt_str_case_eq(r->headers[i].name, name))
            continue;
        if (count++ == 0)
            *out = r->headers[i].value;
        total += r->headers[i].value.len + 2;
    }
    if (count <= 1)
        return count == 1;
    char *p = pt_arena_alloc(&ex->arena, total);
    if (p == NULL)
        return true; /* the first value */
    size_t n = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!pt_str_case_eq(r->headers[i].name, name))
            continue;
        if (n > 0) {
            p[n++] = ',';
            p[n++] = ' ';
        }
        memcpy(p + n, r->headers[i].value.ptr, r->headers[i].value.len);
        n += r->headers[i].value.len;
    }
    *out = pt_str_make(p, n);
    return true;
}

static bool scope_header(void *ctx, struct pt_str name, struct pt_str *out)
{
    struct pt_ccall *cc = ctx;
    return pt__compose_client_header(cc->run->ex, name, out);
}

/*
 * The consumer, for {consumer.*} placeholders: the object authentication
 * will attach to the exchange ({"name": ..., "groups": [...], "metadata":
 * {...}}).  There is no authentication yet, so there is never a consumer
 * and such placeholders are missing (their default applies).  When the
 * auth plugins land, this is the one place to connect.
 */
static const json_t *scope_consumer(void *ctx)
{
    (void)ctx;
    return NULL;
}

static const json_t *scope_result(void *ctx, unsigned call)
{
    struct pt_ccall *cc = ctx;
    if (call >= cc->run->agg->ncalls)
        return NULL;
    return cc->run->calls[call].result;
}

void pt__compose_scope(struct pt_ccall *cc, struct pt_tpl_scope *s)
{
    s->ctx = cc;
    s->capture = scope_capture;
    s->query = scope_query;
    s->header = scope_header;
    s->consumer = scope_consumer;
    s->result = scope_result;
}

/* ---- call outcomes ---- */

void pt_ccall_failed(struct pt_ccall *cc, const char *why, bool timeout)
{
    struct pt_compose_run *run = cc->run;
    const struct pt_compose_call *d = cc->def;
    if (cc->state == PT_CCALL_DONE || run->decided)
        return;
    pt_timer_disarm(loop_of(run), &cc->timer);
    cc->state = PT_CCALL_DONE;
    cc->failed = true;
    cc->timed_out = timeout;
    cc->why = why != NULL ? why : "failed";
    pt_log_ratelimited(PT_LOG_WARN, 10, "route %s: call %s (service %s) %s%s", run->ex->route->name,
                       d->key, d->service->name, cc->why,
                       d->has_fallback ? "; using its fallback"
                       : d->optional   ? "; leaving it out"
                                       : "");
    if (d->has_fallback) {
        cc->result = json_loadb(d->fallback.ptr, d->fallback.len, JSON_DECODE_ANY, NULL);
        cc->shown = json_incref(cc->result);
        run->partial = true;
    } else if (d->optional) {
        run->partial = true;
    }
    schedule(run);
}

void pt_ccall_succeeded(struct pt_ccall *cc, json_t *result)
{
    struct pt_compose_run *run = cc->run;
    if (cc->state == PT_CCALL_DONE || run->decided) {
        json_decref(result);
        return;
    }
    json_t *shown = pt_fields_apply(cc->def->fields, result);
    if (shown == NULL) {
        json_decref(result);
        pt_ccall_failed(cc, "could not be read (out of memory)", false);
        return;
    }
    pt_timer_disarm(loop_of(run), &cc->timer);
    cc->state = PT_CCALL_DONE;
    cc->result = result;
    cc->shown = shown;
    schedule(run);
}

/* ---- deciding ---- */

/* Nothing more may run: stop every call and timer.  Idempotent. */
static void stop_all(struct pt_compose_run *run)
{
    run->decided = true;
    for (size_t i = 0; i < run->agg->ncalls; i++)
        pt_ccall_cancel(&run->calls[i]);
    pt_timer_disarm(loop_of(run), &run->timer);
    pt_loop_cancel_defer(loop_of(run), &run->pump);
}

/*
 * A failed composition is a failed upstream for the route's plugins: one of
 * them (fallback, cache's stale_if_error) may answer instead.  True when one did.
 */
static bool plugin_answered(struct pt_exchange *ex, int status)
{
    const struct pt_plugin_chain *ch = ex->chain;
    for (size_t i = 0; ch != NULL && i < ch->n; i++)
        if (ch->items[i].ops->on_upstream_error != NULL &&
            ch->items[i].ops->on_upstream_error(ch->items[i].state, ex, status) ==
                PT_PLUGIN_RESPONDED)
            return true;
    return false;
}

static void respond_failed(struct pt_compose_run *run, const struct pt_ccall *cc)
{
    struct pt_exchange *ex = run->ex;
    stop_all(run);
    char *detail = pt_arena_printf(&ex->arena, "call \"%s\" (service %s) %s", cc->def->key,
                                   cc->def->service->name, cc->why);
    ex->error = detail != NULL ? detail : "a call of the composition failed";
    if (plugin_answered(ex, 502))
        return;
    pt_proxy_respond_problem(ex, 502, "composition-call-failed", ex->error, NULL, 0);
}

static void respond_timeout(struct pt_compose_run *run)
{
    struct pt_exchange *ex = run->ex;
    char names[512];
    size_t n = 0;
    names[0] = '\0';
    for (size_t i = 0; i < run->agg->ncalls && n < sizeof(names) - 80; i++) {
        const struct pt_ccall *cc = &run->calls[i];
        if (cc->state == PT_CCALL_DONE || !required(cc->def))
            continue;
        n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "", cc->def->key);
    }
    stop_all(run);
    char *detail = pt_arena_printf(&ex->arena,
                                   "the composition did not finish within %llums; still waiting "
                                   "for: %s",
                                   (unsigned long long)run->agg->timeout_ms, names);
    ex->error = detail != NULL ? detail : "the composition timed out";
    if (plugin_answered(ex, 504))
        return;
    pt_proxy_respond_problem(ex, 504, "composition-timeout", ex->error, NULL, 0);
}

static void respond_document(struct pt_compose_run *run)
{
    struct pt_exchange *ex = run->ex;
    const struct pt_aggregate *agg = run->agg;
    size_t n = agg->ncalls;
    json_t **values = pt_arena_alloc(&ex->arena, n * sizeof(*values));
    size_t nh = 3;
    for (size_t i = 0; i < n; i++)
        nh += run->calls[i].nexposed;
    struct pt_h1_header *hs = pt_arena_alloc(&ex->arena, nh * sizeof(*hs));
    stop_all(run);
    if (values == NULL || hs == NULL) {
        pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
        return;
    }
    for (size_t i = 0; i < n; i++)
        values[i] = run->calls[i].shown;
    json_t *doc = pt_merge(agg->merge, agg->keys, values, n);
    struct pt_jbuf out;
    pt_jbuf_init(&out);
    if (doc == NULL || pt_json_dump(doc, &out) != 0) {
        json_decref(doc);
        pt_jbuf_free(&out);
        pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
        return;
    }
    json_decref(doc);
    size_t k = 0;
    hs[k].name = PT_STR_LIT("Content-Type");
    hs[k++].value = PT_STR_LIT("application/json");
    hs[k].name = ex->request_id_header;
    hs[k++].value = pt_str_make(ex->request_id, ex->request_id_len);
    if (run->partial) {
        hs[k].name = PT_STR_LIT("X-Portico-Partial");
        hs[k++].value = PT_STR_LIT("true");
    }
    /* exposed headers in declaration order; the same field and value once */
    size_t first_exposed = k;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < run->calls[i].nexposed; j++) {
            const struct pt_h1_header *e = &run->calls[i].exposed[j];
            bool dup = false;
            for (size_t m = first_exposed; m < k && !dup; m++)
                dup = pt_str_case_eq(hs[m].name, e->name) && pt_str_eq(hs[m].value, e->value);
            if (!dup)
                hs[k++] = *e;
        }
    }
    struct pt_response_head head = {
        .status = 200,
        .headers = hs,
        .nheaders = k,
        .body = PT_BODY_LENGTH,
        .content_length = out.len,
        .head_only = ex->req.method_id == PT_METHOD_HEAD,
    };
    pt_proxy_send_head(ex, &head);
    ex->down->send_body(ex, out.p, out.len, true);
    pt_jbuf_free(&out);
}

static bool deps_done(const struct pt_compose_run *run, uint64_t deps)
{
    for (size_t i = 0; deps != 0; i++, deps >>= 1)
        if ((deps & 1) && run->calls[i].state != PT_CCALL_DONE)
            return false;
    return true;
}

/* Start what can start; answer when the answer is known. */
static void pump(struct pt_compose_run *run)
{
    size_t n = run->agg->ncalls;
    bool started = true;
    while (started && !run->decided) {
        for (size_t i = 0; i < n; i++) {
            const struct pt_ccall *cc = &run->calls[i];
            if (cc->state == PT_CCALL_DONE && cc->failed && required(cc->def)) {
                respond_failed(run, cc);
                return;
            }
        }
        started = false;
        for (size_t i = 0; i < n && !run->decided; i++) {
            struct pt_ccall *cc = &run->calls[i];
            if (cc->state == PT_CCALL_WAITING && deps_done(run, cc->def->deps)) {
                pt_ccall_start(cc);
                started = true;
            }
        }
    }
    if (run->decided)
        return;
    for (size_t i = 0; i < n; i++)
        if (run->calls[i].state != PT_CCALL_DONE)
            return;
    respond_document(run);
}

static void on_timeout(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct pt_compose_run *run = PT_CONTAINER_OF(t, struct pt_compose_run, timer);
    if (run->decided)
        return;
    for (size_t i = 0; i < run->agg->ncalls; i++) {
        const struct pt_ccall *cc = &run->calls[i];
        if (cc->state != PT_CCALL_DONE && required(cc->def)) {
            respond_timeout(run);
            return;
        }
    }
    /* only optional or fallback calls are unfinished: give them up */
    for (size_t i = 0; i < run->agg->ncalls; i++) {
        struct pt_ccall *cc = &run->calls[i];
        if (cc->state == PT_CCALL_DONE)
            continue;
        pt_ccall_cancel(cc);
        pt_ccall_failed(cc, "did not finish within the composition's timeout", true);
    }
    pump(run);
}

/* ---- lifetime ---- */

/* On the exchange's arena: runs when the exchange ends, however it ends. */
static void cleanup(void *arg)
{
    struct pt_compose_run *run = arg;
    stop_all(run);
    for (size_t i = 0; i < run->agg->ncalls; i++)
        pt_ccall_release(&run->calls[i]);
}

void pt_compose_handle(struct pt_exchange *ex)
{
    const struct pt_aggregate *agg = ex->route->aggregate;
    struct pt_compose_run *run = pt_arena_calloc(&ex->arena, sizeof(*run));
    struct pt_ccall *calls = pt_arena_calloc(&ex->arena, agg->ncalls * sizeof(*calls));
    if (run == NULL || calls == NULL) {
        pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
        return;
    }
    run->ex = ex;
    run->agg = agg;
    run->calls = calls;
    pt_timer_init(&run->timer);
    for (size_t i = 0; i < agg->ncalls; i++) {
        calls[i].run = run;
        calls[i].def = &agg->calls[i];
        pt_timer_init(&calls[i].timer);
        pt_jbuf_init(&calls[i].resp);
    }
    if (pt_arena_defer(&ex->arena, cleanup, run) != 0) {
        pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
        return;
    }
    pt_timer_arm(loop_of(run), &run->timer, agg->timeout_ms, on_timeout);
    pump(run);
}
