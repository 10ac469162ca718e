/*
 * cache: serve GET (and HEAD) responses from memory (SPEC §3, §10 "Cache").
 *
 *   plugins:
 *     cache: { ttl: 1m, vary: [Accept-Language], key: [consumer, header:X-Tenant],
 *              stale_if_error: 5m, stale_while_revalidate: 10s, max_memory: 256m }
 *
 * One request, in hooks:
 *
 *   on_request           build the key; look it up (cache_store.c):
 *                          fresh entry            → answer it (X-Cache: HIT, Age)
 *                          stale, within s-w-r    → answer it (STALE); the first
 *                                                   such request starts a refresh
 *                          someone else fetching  → wait for them (PAUSE), then
 *                                                   answer their entry, or go on
 *                          nothing usable         → go upstream as the key's
 *                                                   filler (X-Cache: MISS), with
 *                                                   the stale entry's validators
 *                                                   instead of the client's
 *                                                   conditionals
 *   on_upstream_response a 304 to our validators: refresh the entry and answer
 *                        from it (HIT).  May the response be stored (status,
 *                        Cache-Control, Set-Cookie, Vary: *, Authorization)?
 *                        If not: BYPASS, and the waiters go upstream
 *                        themselves.  A failure status with a stale entry at
 *                        hand: answer it (STALE).
 *   wants_response_body  yes when storing: the proxy collects the body
 *   on_response_head     after every plugin's on_response_body (so the body is
 *                        what response-transform made of it): store the entry
 *                        with the upstream's own headers, wake the waiters;
 *                        add X-Cache
 *   on_upstream_error    a stale entry at hand (within stale_if_error): answer it
 *
 * Every answer from a stored 200 to a GET/HEAD whose own If-None-Match or
 * If-Modified-Since matches it is a 304 instead (serve(), make_not_modified()).
 * Otherwise one byte range (Range, subject to If-Range) makes it a 206 with a
 * slice of the stored body, or a 416 (serve(), range_filled()); the filler
 * asks the service for the whole response (set_conditionals()).
 *
 * Entries hold the upstream's headers as they came (before any plugin's
 * on_response_head), so that on a hit every plugin's on_response_head runs
 * again for the new request (CORS, rate-limit headers, response-transform).
 *
 * Waiting requests may sit on other workers: the filler wakes each one by
 * posting a task to the waiter's own loop (pt_loop_post); a waiter whose
 * exchange ends first, or whose wait times out (the service's connect +
 * read timeouts), takes itself off the queue (struct cache_wait below).
 *
 * Refreshes for stale-while-revalidate run in the background on the
 * worker, as their own upstream call (struct refresh below).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "config/config.h"
#include "config/schema.h"
#include "config/snapshot.h"
#include "core/alloc.h"
#include "core/log.h"
#include "http/problem.h"
#include "plugins/cache.h"
#include "plugins/cache-int.h"
#include "plugins/cache_policy.h"
#include "plugins/cache_store.h"
#include "plugins/plugin.h"
#include "proxy/forward.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "proxy/worker.h"
#include "upstream/service.h"

extern const struct pt_plugin_ops pt_plugin_cache;

/* ---- counters (per worker thread, summed on demand) ---- */

const char *const pt_cache_result_names[PT_CACHE_RESULT_COUNT] = {"hit", "miss", "stale", "bypass"};
static const char *const xcache_values[PT_CACHE_RESULT_COUNT] = {"HIT", "MISS", "STALE", "BYPASS"};

struct counter {
    struct counter *next;     /* this thread's */
    struct counter *all_next; /* every thread's */
    char *route;
    _Atomic uint64_t n[PT_CACHE_RESULT_COUNT]; /* written by the owning thread only */
};

static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;
static struct counter *all_counters;
static _Thread_local struct counter *my_counters;

static void count(const char *route, enum pt_cache_result r)
{
    if (route == NULL)
        route = "";
    struct counter *k = my_counters;
    while (k != NULL && strcmp(k->route, route) != 0)
        k = k->next;
    if (k == NULL) {
        k = pt_calloc(1, sizeof(*k));
        char *name = pt_strdup(route);
        if (k == NULL || name == NULL) {
            free(k);
            free(name);
            return;
        }
        k->route = name;
        k->next = my_counters;
        my_counters = k;
        pthread_mutex_lock(&counters_lock);
        k->all_next = all_counters;
        all_counters = k;
        pthread_mutex_unlock(&counters_lock);
    }
    /* one writer: a plain load + store, no locked read-modify-write */
    uint64_t v = atomic_load_explicit(&k->n[r], memory_order_relaxed);
    atomic_store_explicit(&k->n[r], v + 1, memory_order_relaxed);
}

void pt_cache_counts_foreach(void (*fn)(void *arg, const char *route,
                                        const struct pt_cache_counts *c),
                             void *arg)
{
    pthread_mutex_lock(&counters_lock);
    for (struct counter *k = all_counters; k != NULL; k = k->all_next) {
        bool first = true; /* sum the threads' records of this route at its first record */
        for (struct counter *j = all_counters; j != k; j = j->all_next)
            if (strcmp(j->route, k->route) == 0)
                first = false;
        if (!first)
            continue;
        struct pt_cache_counts sum;
        memset(&sum, 0, sizeof(sum));
        for (struct counter *j = k; j != NULL; j = j->all_next)
            if (strcmp(j->route, k->route) == 0)
                for (int r = 0; r < PT_CACHE_RESULT_COUNT; r++)
                    sum.n[r] += atomic_load_explicit(&j->n[r], memory_order_relaxed);
        fn(arg, k->route, &sum);
    }
    pthread_mutex_unlock(&counters_lock);
}

struct render_ctx {
    struct pt_buf *out;
    int rc;
};

static void render_one(void *arg, const char *route, const struct pt_cache_counts *c)
{
    struct render_ctx *rc = arg;
    for (int r = 0; r < PT_CACHE_RESULT_COUNT && rc->rc == 0; r++) {
        char line[512];
        int n = snprintf(line, sizeof(line),
                         "portico_cache_requests_total{route=\"%s\",result=\"%s\"} %llu\n", route,
                         pt_cache_result_names[r], (unsigned long long)c->n[r]);
        if (n < 0 || (size_t)n >= sizeof(line) ||
            pt_buf_append(rc->out, line, (size_t)n, SIZE_MAX) != 0)
            rc->rc = PT_ERR_NOMEM;
    }
}

int pt_cache_metrics_render(struct pt_buf *out)
{
    pthread_mutex_lock(&counters_lock);
    bool any = all_counters != NULL;
    pthread_mutex_unlock(&counters_lock);
    if (!any)
        return 0;
    static const char head[] =
        "# HELP portico_cache_requests_total Requests seen by the cache plugin, by result.\n"
        "# TYPE portico_cache_requests_total counter\n";
    if (pt_buf_append(out, head, sizeof(head) - 1, SIZE_MAX) != 0)
        return PT_ERR_NOMEM;
    struct render_ctx rc = {out, 0};
    pt_cache_counts_foreach(render_one, &rc);
    return rc.rc;
}

int pt_cache_purge(const char *route, const char *prefix, size_t *purged)
{
    size_t n = pt_cache_store_purge(route, prefix);
    if (purged != NULL)
        *purged = n;
    return 0;
}

/* ---- per request ---- */

struct cache_wait;

/* What may be stored of a response: its lifetimes (see decide()). */
struct decision {
    bool storable;
    uint64_t fresh_ms, swr_ms, sie_ms, age_s;
    uint64_t keep_ms; /* past freshness, kept this long to be revalidated (when it can be) */
};

struct cache_ex {
    const struct cache_conf *cf;
    struct pt_exchange *ex;
    struct pt_str key;
    size_t path_off;
    uint64_t hash;
    struct pt_str vary_req;                /* unused until an entry with Vary is met */
    struct pt_cache_fill *fill;            /* we fetch for the key: finish it exactly once */
    struct pt_cache_entry *stale;          /* kept for stale-if-error */
    struct pt_cache_entry *served;         /* the entry we answered from */
    struct pt_cache_entry *reval;          /* the stale entry whose validators went upstream */
    struct cache_wait *wait;               /* queued on someone's fill */
    const struct pt_h1_header *cl_headers; /* the client's request headers, as it sent them */
    size_t cl_nheaders;
    enum pt_cache_result result;
    bool lookup;     /* the key was looked up (GET/HEAD handled by the cache) */
    bool may_store;  /* a response to this request may be stored (GET, not no-store) */
    bool will_store; /* the upstream's response head is storable */
    bool body_ready; /* on_response_body saw the whole (final) body */
    bool stored;     /* done with storing (or decided not to) */
    bool counted;
    /* the storable response's head, captured in on_upstream_response */
    int st_status;
    struct pt_h1_header *st_headers;
    size_t st_nheaders;
    struct decision st_d;
};

static uint64_t now_ms(struct pt_exchange *ex)
{
    return pt_loop_now(&ex->worker->loop);
}

static int64_t wall_s(struct pt_exchange *ex)
{
    return ex->worker->loop.wall_ms / 1000;
}

static const char *route_name(const struct pt_exchange *ex)
{
    return ex->route != NULL && ex->route->name != NULL ? ex->route->name : "";
}

static void set_result(struct cache_ex *cx, enum pt_cache_result r)
{
    cx->result = r;
    cx->ex->cache_result = pt_cache_result_names[r];
}

static void finish_fill(struct cache_ex *cx, struct pt_cache_entry *e, struct pt_cache_entry *stale)
{
    if (cx->fill == NULL)
        return;
    struct pt_cache_fill *f = cx->fill;
    cx->fill = NULL;
    pt_cache_fill_finish(f, e, stale);
}

/*
 * The fields a 304 carries of the 200 it stands for (RFC 9110 §15.4.5):
 * Content-Location, Date, ETag, Vary, Cache-Control and Expires, and
 * Last-Modified when there is no ETag (to guide caches that only have it).
 */
static bool kept_in_304(struct pt_str name, bool has_etag)
{
    switch (name.len) {
    case 4:
        return pt_str_case_eq_lit(name, "etag") || pt_str_case_eq_lit(name, "date") ||
               pt_str_case_eq_lit(name, "vary");
    case 7:
        return pt_str_case_eq_lit(name, "expires");
    case 13:
        return pt_str_case_eq_lit(name, "cache-control") ||
               (!has_etag && pt_str_case_eq_lit(name, "last-modified"));
    case 16:
        return pt_str_case_eq_lit(name, "content-location");
    default:
        return false;
    }
}

/* Does the client's own If-None-Match / If-Modified-Since make e's answer a 304? */
static bool client_not_modified(const struct cache_ex *cx, const struct pt_cache_entry *e)
{
    enum pt_method m = cx->ex->req.method_id;
    return e->status == 200 && (m == PT_METHOD_GET || m == PT_METHOD_HEAD) &&
           pt_cache_not_modified(cx->cl_headers, cx->cl_nheaders, e->etag, e->last_modified.len > 0,
                                 e->last_modified_s);
}

/*
 * Which range of e (a stored 200) the client's Range and If-Range ask for
 * (RFC 9110 §14, §13.2.2 step 5): GET and HEAD only, and never when the
 * answer is a 304 (the conditionals come first).  Allocates nothing: a
 * request without Range costs one scan of its header names.
 */
static enum pt_range_verdict client_range(const struct cache_ex *cx, const struct pt_cache_entry *e,
                                          struct pt_byte_range *r)
{
    enum pt_method m = cx->ex->req.method_id;
    if (e->status != 200 || (m != PT_METHOD_GET && m != PT_METHOD_HEAD))
        return PT_RANGE_IGNORE;
    return pt_cache_range(cx->cl_headers, cx->cl_nheaders, e->headers, e->nheaders, e->body_len, r);
}

static const char range_416_detail[] = "the requested range is beyond the end of the response";

/* 416 Range Not Satisfiable for a stored body of len bytes, as a problem (RFC 9457). */
static void respond_416(struct pt_exchange *ex, uint64_t len)
{
    char *cr = pt_arena_printf(&ex->arena, "bytes */%llu", (unsigned long long)len);
    struct pt_h1_header h = {PT_STR_LIT("Content-Range"), pt_str_cstr(cr)};
    pt_proxy_respond_problem(ex, 416, NULL, range_416_detail, &h, cr != NULL ? 1 : 0);
}

/*
 * Answer the request from entry e (whose reference cx now owns): the
 * stored response, 304 Not Modified when the client's conditionals match
 * it, or one range of a stored 200 (206, or 416 when the range lies beyond
 * the end).  The body, or its slice, is sent straight from the entry.
 */
static void serve(struct cache_ex *cx, struct pt_cache_entry *e, enum pt_cache_result r)
{
    struct pt_exchange *ex = cx->ex;
    cx->served = e;
    set_result(cx, r);
    if (ex->up_started && !ex->up.done) /* replacing a failed upstream answer */
        pt_upcall_cancel(&ex->up);
    bool head_req = ex->req.method_id == PT_METHOD_HEAD;
    bool not_modified = client_not_modified(cx, e);
    struct pt_byte_range br = {0, 0};
    enum pt_range_verdict rv = not_modified ? PT_RANGE_IGNORE : client_range(cx, e, &br);
    if (rv == PT_RANGE_UNSATISFIABLE) {
        respond_416(ex, e->body_len);
        return;
    }
    size_t n = 0;
    /* stored fields + Age, request id, Content-Length, Accept-Ranges, Content-Range */
    struct pt_h1_header *hs = pt_arena_alloc(&ex->arena, sizeof(*hs) * (e->nheaders + 5));
    char *txt = pt_arena_alloc(&ex->arena, 128); /* Age [0,24), Content-Length [24,48), range */
    if (hs == NULL || txt == NULL) {
        pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
        return;
    }
    if (!not_modified) {
        memcpy(hs, e->headers, sizeof(*hs) * e->nheaders);
        n = e->nheaders;
    } else {
        for (size_t i = 0; i < e->nheaders; i++)
            if (kept_in_304(e->headers[i].name, e->etag.len > 0))
                hs[n++] = e->headers[i];
    }
    uint64_t now = now_ms(ex);
    uint64_t resident = now > e->stored_ms ? (now - e->stored_ms) / 1000 : 0;
    int k = snprintf(txt, 24, "%llu", (unsigned long long)(e->initial_age_s + resident));
    hs[n].name = PT_STR_LIT("Age");
    hs[n++].value = pt_str_make(txt, (size_t)k);
    hs[n].name = ex->request_id_header;
    hs[n++].value = pt_str_make(ex->request_id, ex->request_id_len);
    int status = not_modified ? 304 : e->status;
    size_t off = 0, len = e->body_len;
    if (status == 200)
        hs[n++] = (struct pt_h1_header){PT_STR_LIT("Accept-Ranges"), PT_STR_LIT("bytes")};
    if (rv == PT_RANGE_PARTIAL) {
        status = 206;
        off = (size_t)br.first;
        len = (size_t)(br.last - br.first + 1);
        k = snprintf(txt + 48, 80, "bytes %llu-%llu/%zu", (unsigned long long)br.first,
                     (unsigned long long)br.last, e->body_len);
        hs[n].name = PT_STR_LIT("Content-Range");
        hs[n++].value = pt_str_make(txt + 48, (size_t)k);
    }
    bool no_body = e->status == 204 || e->status == 304 || not_modified;
    if (head_req && !no_body) { /* a HEAD answer keeps the framing it would have had */
        k = snprintf(txt + 24, 24, "%zu", len);
        hs[n].name = PT_STR_LIT("Content-Length");
        hs[n++].value = pt_str_make(txt + 24, (size_t)k);
    }
    struct pt_response_head head = {
        .status = status,
        .headers = hs,
        .nheaders = n,
        .body = not_modified ? PT_BODY_NONE : PT_BODY_LENGTH,
        .content_length = not_modified ? 0 : len,
        .head_only = head_req || no_body,
    };
    pt_proxy_send_head(ex, &head);
    ex->down->send_body(ex, off > 0 ? e->body + off : e->body, head.head_only ? 0 : len, true);
}

/* Does entry e (found under our key) suit this request's Vary-nominated headers? */
static bool vary_match(const struct pt_cache_entry *e, void *arg)
{
    struct cache_ex *cx = arg;
    if (!e->has_vary)
        return true;
    struct pt_buf b;
    pt_buf_init(&b);
    const struct pt_request *r = &cx->ex->req;
    bool same =
        pt_cache_vary_signature(e->headers, e->nheaders, r->headers, r->nheaders, &b) == 0 &&
        pt_str_eq(pt_buf_str(&b), pt_str_make(e->vary_sig, e->vary_sig_len));
    pt_buf_free(&b);
    return same;
}

/* ---- waiting on another request's fill ---- */

struct cache_wait {
    struct pt_cache_waiter w; /* first */
    atomic_int refs;          /* the exchange's + the queue's (then the posted task's) */
    atomic_bool post_failed;
    struct pt_exchange *ex; /* NULL once the exchange ended (its worker's thread only) */
    struct pt_loop *loop;
    struct pt_timer timer;
    struct pt_cache_entry *entry; /* handed over by the wake */
    bool stale;
};

static void wait_unref(struct cache_wait *cw)
{
    if (atomic_fetch_sub_explicit(&cw->refs, 1, memory_order_acq_rel) == 1) {
        if (cw->entry != NULL)
            pt_cache_entry_unref(cw->entry);
        free(cw);
    }
}

/* The wait is over for the exchange: serve what came, or go upstream. */
static void wait_done(struct cache_ex *cx, struct cache_wait *cw)
{
    struct pt_exchange *ex = cx->ex;
    pt_timer_disarm(&ex->worker->loop, &cw->timer);
    cx->wait = NULL;
    cw->ex = NULL;
    struct pt_cache_entry *e = cw->entry;
    bool stale = cw->stale;
    cw->entry = NULL;
    wait_unref(cw); /* the exchange's reference */
    if (ex->responded || ex->finished) {
        if (e != NULL)
            pt_cache_entry_unref(e);
        return;
    }
    if (e != NULL) {
        serve(cx, e, stale ? PT_CACHE_RESULT_STALE : PT_CACHE_RESULT_HIT);
        return;
    }
    set_result(cx, PT_CACHE_RESULT_MISS);
    pt_proxy_resume(ex);
}

static void wake_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct cache_wait *cw = arg;
    if (cw->ex != NULL)
        wait_done(cw->ex->cache_ctx, cw);
    wait_unref(cw); /* the queue's reference, which the task carried */
}

/* On the filler's thread: hand the result over to the waiter's worker. */
static void wake(struct pt_cache_waiter *w, struct pt_cache_entry *e, bool stale)
{
    struct cache_wait *cw = (struct cache_wait *)w;
    cw->entry = e;
    cw->stale = stale;
    if (pt_loop_post(cw->loop, wake_task, cw) != 0) {
        /* The waiter's timer will send it upstream; it must not use e. */
        atomic_store(&cw->post_failed, true);
        wait_unref(cw);
    }
}

static void wait_timeout(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct cache_wait *cw = PT_CONTAINER_OF(t, struct cache_wait, timer);
    if (cw->ex == NULL)
        return;
    bool removed = pt_cache_wait_cancel(&cw->w);
    if (!removed && !atomic_load(&cw->post_failed))
        return; /* the wake is on its way */
    pt_log_ratelimited(PT_LOG_WARN, 1,
                       "cache: waited too long for another request's response "
                       "(route %s): going upstream",
                       route_name(cw->ex));
    struct cache_ex *cx = cw->ex->cache_ctx;
    if (removed)
        wait_unref(cw); /* the queue's */
    if (cw->entry != NULL && atomic_load(&cw->post_failed)) {
        pt_cache_entry_unref(cw->entry);
        cw->entry = NULL;
    }
    wait_done(cx, cw);
}

static uint64_t wait_limit_ms(const struct pt_exchange *ex)
{
    const struct pt_service *svc = ex->route->service;
    return svc->connect_timeout_ms + svc->read_timeout_ms + 1000;
}

/* ---- background refresh (stale-while-revalidate) ---- */

/*
 * A refresh is an upstream call of its own, made with a private copy of the
 * request that found the stale entry (a shadow exchange: the forwarding
 * rules of forward.c apply as for any request).  It keeps the snapshot and
 * the worker alive (counted as a connection, so a drain waits for it) until
 * it ends, and then stores the response like a miss would.  When the stale
 * entry has a validator the refresh is conditional, and a 304 refreshes the
 * entry without its body being sent again.
 */
struct refresh {
    struct pt_exchange sh; /* the shadow exchange: req, route, identity; no downstream */
    const struct cache_conf *cf;
    struct pt_cache_fill *fill;
    struct pt_snapshot *snap;
    struct pt_cache_entry *reval; /* the stale entry whose validators went upstream, or NULL */
    struct pt_buf body;
    bool storable;
    int status;
    struct pt_h1_header *headers;
    size_t nheaders;
    struct decision d;
    struct pt_str key;
    size_t path_off;
    struct pt_defer end_defer;
    struct pt_worker_job job; /* stopped with the worker if it outlives a drain */
};

static void refresh_free_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct refresh *r = arg;
    struct pt_worker *w = r->sh.worker;
    pt_worker_job_remove(w, &r->job);
    if (r->fill != NULL)
        pt_cache_fill_finish(r->fill, NULL, NULL);
    if (r->reval != NULL)
        pt_cache_entry_unref(r->reval);
    pt_buf_free(&r->body);
    pt_arena_destroy(&r->sh.arena);
    pt_snapshot_unref(r->snap);
    free(r);
    pt_worker_conn_removed(w);
}

static void refresh_end(struct refresh *r)
{
    pt_loop_defer(&r->sh.worker->loop, &r->end_defer, refresh_free_task, r);
}

/* The worker stops (drain_timeout) while the refresh still runs or waits
 * to be freed: cancel the call and free it now. */
static void refresh_kill(struct pt_worker_job *j)
{
    struct refresh *r = PT_CONTAINER_OF(j, struct refresh, job);
    struct pt_loop *loop = &r->sh.worker->loop;
    pt_loop_cancel_defer(loop, &r->end_defer);
    pt_upcall_cancel(&r->sh.up);
    refresh_free_task(loop, r);
}

static int rf_build_head(struct pt_upcall *c, const struct pt_target *t, struct pt_buf *out)
{
    struct refresh *r = c->ctx;
    return pt_forward_request_head(&r->sh, t, out);
}

static int rf_body_peek(struct pt_upcall *c, struct pt_str *data, bool *end)
{
    (void)c;
    *data = PT_STR_NULL;
    *end = true;
    return 0;
}

static void rf_body_consume(struct pt_upcall *c, size_t n)
{
    (void)c;
    (void)n;
}

/*
 * May a response with this head be stored?  (Also computes its lifetimes.)
 * age_ri: what the age is computed from when not hs itself (a 304 merged
 * over a stored response: the 304's own Date and Age), or NULL.
 */
static bool decide(const struct cache_conf *cf, const struct pt_exchange *ex, int status,
                   const struct pt_h1_header *hs, size_t n, int64_t now_s,
                   const struct pt_cache_response_info *age_ri, struct decision *d)
{
    memset(d, 0, sizeof(*d));
    if (status == 206 || !status_in(&cf->statuses, status))
        return false; /* a part is never stored, even when `statuses` lists 206 */
    struct pt_cache_response_info ri;
    pt_cache_response_info(hs, n, &ri);
    bool authorized =
        pt_h1_find_header(ex->req.headers, ex->req.nheaders, PT_STR_LIT("Authorization")) != NULL;
    enum pt_cache_verdict v = pt_cache_storable(&ri, authorized);
    if (v != PT_CACHE_STORABLE)
        return false;
    d->age_s = pt_cache_initial_age_s(age_ri != NULL ? age_ri : &ri, now_s);
    d->keep_ms = cf->revalidate_window_ms;
    if (ri.cc.flags & PT_CC_NO_CACHE) {
        /* stored only to be revalidated (it has a validator): stale at once, never served
         * stale without a successful revalidation (RFC 9111 §5.2.2.4) */
        if (d->keep_ms == 0)
            return false;
        d->storable = true;
        return true;
    }
    d->fresh_ms = pt_cache_freshness_ms(&ri, now_s, cf->ttl_ms);
    if (d->fresh_ms == 0)
        return false;
    if (d->age_s * 1000 >= d->fresh_ms)
        return false; /* stale on arrival */
    d->fresh_ms -= d->age_s * 1000;
    bool revalidate = (ri.cc.flags & (PT_CC_MUST_REVALIDATE | PT_CC_PROXY_REVALIDATE)) != 0;
    if (!revalidate) {
        d->swr_ms = ri.cc.flags & PT_CC_SWR ? (uint64_t)ri.cc.stale_while_revalidate * 1000
                                            : cf->stale_while_revalidate_ms;
        d->sie_ms =
            ri.cc.flags & PT_CC_SIE ? (uint64_t)ri.cc.stale_if_error * 1000 : cf->stale_if_error_ms;
    }
    d->storable = true;
    return true;
}

/* Deep-copy header views (valid only during an upstream callback) into an arena. */
static struct pt_h1_header *copy_headers(struct pt_arena *a, const struct pt_h1_header *hs,
                                         size_t n)
{
    struct pt_h1_header *out = pt_arena_alloc(a, sizeof(*out) * (n + 1));
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i].name = pt_arena_strdup_str(a, hs[i].name);
        out[i].value = pt_arena_strdup_str(a, hs[i].value);
        if (out[i].name.ptr == NULL || out[i].value.ptr == NULL)
            return NULL;
    }
    return out;
}

static struct pt_cache_entry *make_entry(const struct pt_exchange *ex, struct pt_str key,
                                         size_t path_off, int status, const struct pt_h1_header *hs,
                                         size_t n, struct pt_str body, const struct decision *d)
{
    uint64_t now = pt_loop_now(&ex->worker->loop);
    struct pt_buf sig;
    pt_buf_init(&sig);
    if (pt_cache_vary_signature(hs, n, ex->req.headers, ex->req.nheaders, &sig) != 0) {
        pt_buf_free(&sig);
        return NULL;
    }
    struct pt_cache_entry_spec sp = {
        .key = key,
        .path_off = path_off,
        .route = route_name(ex),
        .status = status,
        .headers = hs,
        .nheaders = n,
        .body = body,
        .vary_sig = pt_buf_str(&sig),
        .stored_ms = now,
        .initial_age_s = d->age_s,
        .fresh_until = now + d->fresh_ms,
        .swr_until = now + d->fresh_ms + d->swr_ms,
        .sie_until = now + d->fresh_ms + d->sie_ms,
        .keep_until = now + d->fresh_ms + d->keep_ms,
    };
    struct pt_cache_entry *e = pt_cache_entry_new(&sp, ex->request_id_header);
    pt_buf_free(&sig);
    return e;
}

/* Does the request carry a field the filler's upstream request must not? */
static bool has_fill_removed_fields(const struct pt_request *req)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (pt_cache_is_conditional_field(req->headers[i].name) ||
            pt_cache_is_range_field(req->headers[i].name))
            return true;
    return false;
}

/*
 * The request goes upstream to fill (or refresh) the key: its conditionals
 * are the cache's, not the client's, and it asks for the whole
 * representation.  The client's If-None-Match, If-Modified-Since, Range and
 * If-Range are taken out (they are evaluated here, against what the cache
 * answers; a 206 would never be stored) and, when the stale entry e has
 * validators, they go upstream instead (RFC 9111 §4.3.1).  Returns the entry to remember as
 * revalidated (a new reference), or NULL.  Out of memory: left as it was.
 */
static struct pt_cache_entry *set_conditionals(struct pt_arena *a, struct pt_request *req,
                                               struct pt_cache_entry *e)
{
    bool reval = e != NULL && req->method_id == PT_METHOD_GET && pt_cache_entry_has_validator(e);
    if (!reval && !has_fill_removed_fields(req))
        return NULL;
    struct pt_h1_header *hs = pt_arena_alloc(a, sizeof(*hs) * (req->nheaders + 2));
    if (hs == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        if (!pt_cache_is_conditional_field(req->headers[i].name) &&
            !pt_cache_is_range_field(req->headers[i].name))
            hs[k++] = req->headers[i];
    if (reval && e->etag.len > 0) {
        hs[k].name = PT_STR_LIT("If-None-Match");
        if ((hs[k++].value = pt_arena_strdup_str(a, e->etag)).ptr == NULL)
            return NULL;
    }
    if (reval && e->last_modified.len > 0) {
        hs[k].name = PT_STR_LIT("If-Modified-Since");
        if ((hs[k++].value = pt_arena_strdup_str(a, e->last_modified)).ptr == NULL)
            return NULL;
    }
    req->headers = hs;
    req->nheaders = k;
    return reval ? pt_cache_entry_ref(e) : NULL;
}

/* Does a 304's ETag (if any) name another representation than the stored one's? */
static bool other_representation(const struct pt_cache_entry *old, const struct pt_h1_header *hs,
                                 size_t n)
{
    const struct pt_h1_header *h = pt_h1_find_header(hs, n, PT_STR_LIT("ETag"));
    struct pt_str a, b;
    bool wa, wb;
    if (h == NULL || old->etag.len == 0 || pt_etag_parse(h->value, &a, &wa) != 0 ||
        pt_etag_parse(old->etag, &b, &wb) != 0)
        return false;
    return !pt_str_eq(a, b);
}

/*
 * The service answered 304 to the cache's conditional request for old:
 * the stored response with the 304's fields merged in (RFC 9111 §3.2,
 * §4.3.4) and new lifetimes computed from them.  *e: the refreshed entry
 * (NULL on ENOMEM); returns whether it may be stored (the 304 may have
 * made it unstorable: it still answers this one request).  -1: the 304 is
 * for another representation (its ETag differs), and old is no use.
 */
static int refreshed_entry(const struct cache_conf *cf, struct pt_exchange *ex, struct pt_str key,
                           size_t path_off, const struct pt_cache_entry *old,
                           const struct pt_h1_header *upd, size_t nupd, struct pt_cache_entry **e)
{
    *e = NULL;
    if (other_representation(old, upd, nupd))
        return -1;
    struct pt_h1_header *m = pt_arena_alloc(&ex->arena, sizeof(*m) * (old->nheaders + nupd + 1));
    if (m == NULL)
        return 0;
    size_t n =
        pt_cache_merge_headers(old->headers, old->nheaders, upd, nupd, ex->request_id_header, m);
    struct pt_cache_response_info upd_ri;
    pt_cache_response_info(upd, nupd, &upd_ri);
    struct decision d;
    bool ok = decide(cf, ex, old->status, m, n, ex->worker->loop.wall_ms / 1000, &upd_ri, &d);
    if (!ok) /* this request only: served, not stored */
        memset(&d, 0, sizeof(d));
    *e =
        make_entry(ex, key, path_off, old->status, m, n, pt_str_make(old->body, old->body_len), &d);
    return ok && *e != NULL ? 1 : 0;
}

static void rf_on_head(struct pt_upcall *c, const struct pt_h1_response *resp,
                       const struct pt_h1_meta *meta)
{
    struct refresh *r = c->ctx;
    struct decision d;
    r->status = resp->status;
    if (resp->status == 304 && r->reval != NULL) {
        struct pt_cache_entry *e;
        int rc = refreshed_entry(r->cf, &r->sh, r->key, r->path_off, r->reval, resp->headers,
                                 resp->num_headers, &e);
        if (rc <= 0)
            pt_cache_store_remove(r->reval); /* unusable now: the next request fetches */
        struct pt_cache_fill *f = r->fill;
        r->fill = NULL;
        pt_cache_fill_finish(f, rc > 0 ? e : NULL, NULL);
        if (e != NULL)
            pt_cache_entry_unref(e);
        return;
    }
    if (resp->status == 101 || meta->body == PT_H1_BODY_NONE || c->method != PT_METHOD_GET ||
        !decide(r->cf, &r->sh, resp->status, resp->headers, resp->num_headers,
                r->sh.worker->loop.wall_ms / 1000, NULL, &d)) {
        pt_log_debug("cache: refresh of route %s: not storable", route_name(&r->sh));
        return;
    }
    if (meta->body == PT_H1_BODY_LENGTH && meta->content_length > PT_PLUGIN_MAX_BODY)
        return;
    r->headers = copy_headers(&r->sh.arena, resp->headers, resp->num_headers);
    if (r->headers == NULL)
        return;
    r->nheaders = resp->num_headers;
    r->d = d;
    r->storable = true;
}

/* Let the plugins after the cache rewrite the body, as they would for a miss. */
static int rf_transform(struct refresh *r, struct pt_response_head *head)
{
    const struct pt_plugin_chain *ch = r->sh.chain;
    for (size_t i = 0; ch != NULL && i < ch->n; i++) {
        const struct pt_plugin_instance *in = &ch->items[i];
        if (in->ops->order <= PT_ORDER_CACHE || in->ops->on_response_body == NULL ||
            in->ops->wants_response_body == NULL ||
            !in->ops->wants_response_body(in->state, &r->sh, head))
            continue;
        if (in->ops->on_response_body(in->state, &r->sh, head, &r->body) != 0)
            return -1;
    }
    return 0;
}

static bool rf_on_body(struct pt_upcall *c, const char *p, size_t n, bool end)
{
    struct refresh *r = c->ctx;
    if (!r->storable)
        goto out;
    if (pt_buf_len(&r->body) + n > PT_PLUGIN_MAX_BODY ||
        (n > 0 && pt_buf_append(&r->body, p, n, PT_PLUGIN_MAX_BODY) != 0)) {
        r->storable = false;
        pt_buf_free(&r->body);
        goto out;
    }
    if (!end)
        return false;
    struct pt_response_head head = {
        .status = r->status,
        .headers = r->headers,
        .nheaders = r->nheaders,
        .body = PT_BODY_LENGTH,
        .content_length = pt_buf_len(&r->body),
    };
    if (rf_transform(r, &head) != 0)
        goto out;
    struct pt_cache_entry *e = make_entry(&r->sh, r->key, r->path_off, head.status, head.headers,
                                          head.nheaders, pt_buf_str(&r->body), &r->d);
    struct pt_cache_fill *f = r->fill;
    r->fill = NULL;
    pt_cache_fill_finish(f, e, NULL);
    if (e != NULL)
        pt_cache_entry_unref(e);
out:
    if (end)
        refresh_end(r);
    return false;
}

static void rf_on_error(struct pt_upcall *c, enum pt_upcall_error err, bool head_delivered)
{
    struct refresh *r = c->ctx;
    (void)head_delivered;
    pt_log_ratelimited(PT_LOG_WARN, 1, "cache: background refresh for route %s failed: %s",
                       route_name(&r->sh), pt_upcall_error_name(err));
    refresh_end(r);
}

static const struct pt_upcall_ops refresh_ops = {
    .build_head = rf_build_head,
    .body_peek = rf_body_peek,
    .body_consume = rf_body_consume,
    .on_head = rf_on_head,
    .on_body = rf_on_body,
    .on_error = rf_on_error,
};

/* Copy what forward.c reads of a request into the shadow's arena. */
static struct pt_str dup(struct pt_arena *a, struct pt_str s)
{
    return s.len == 0 ? PT_STR_LIT("") : pt_arena_strdup_str(a, s);
}

static int copy_request(struct pt_arena *a, struct pt_request *dst, const struct pt_request *src)
{
    *dst = *src;
    dst->method = PT_STR_LIT("GET");
    dst->method_id = PT_METHOD_GET;
    dst->body = PT_BODY_NONE;
    dst->content_length = 0;
    dst->expect_continue = false;
    dst->upgrade = false;
    dst->authority = dup(a, src->authority);
    dst->host = dup(a, src->host);
    dst->path = dup(a, src->path);
    dst->query = dup(a, src->query);
    dst->headers = copy_headers(a, src->headers, src->nheaders);
    if (dst->authority.ptr == NULL || dst->host.ptr == NULL || dst->path.ptr == NULL ||
        dst->query.ptr == NULL || dst->headers == NULL)
        return PT_ERR_NOMEM;
    return 0;
}

/*
 * Start refreshing cx's key (we hold its fill) whose stale entry is e (the
 * refresh is conditional when e has a validator).  On failure the fill ends
 * empty.
 */
static void start_refresh(struct cache_ex *cx, struct pt_cache_fill *fill, struct pt_cache_entry *e)
{
    struct pt_exchange *ex = cx->ex;
    struct refresh *r = pt_calloc(1, sizeof(*r));
    if (r == NULL)
        goto fail;
    pt_arena_init(&r->sh.arena);
    struct pt_exchange *sh = &r->sh;
    sh->worker = ex->worker;
    sh->snap = ex->snap;
    sh->route = ex->route;
    sh->chain = ex->chain;
    sh->peer = ex->peer;
    sh->peer_port = ex->peer_port;
    sh->client_ip = ex->client_ip;
    sh->peer_trusted = ex->peer_trusted;
    sh->tls = ex->tls;
    sh->request_id_header = ex->request_id_header;
    sh->consumer = ex->consumer;
    pt_reqid_generate(sh->request_id);
    sh->request_id_len = PT_REQID_GEN_LEN;
    pt_traceparent_child(&ex->trace, &sh->trace);
    sh->upstream_path = dup(&sh->arena, ex->upstream_path);
    r->key = dup(&sh->arena, cx->key);
    if (copy_request(&sh->arena, &sh->req, &ex->req) != 0 || r->key.ptr == NULL) {
        pt_arena_destroy(&sh->arena);
        free(r);
        goto fail;
    }
    r->reval = set_conditionals(&sh->arena, &sh->req, e);
    r->path_off = cx->path_off;
    r->cf = cx->cf;
    r->fill = fill;
    r->snap = pt_snapshot_ref(ex->snap);
    pt_buf_init(&r->body);
    pt_worker_conn_added(ex->worker); /* a drain waits for us */
    pt_worker_job_add(ex->worker, &r->job, refresh_kill);
    struct pt_upcall *c = &sh->up;
    pt_upcall_init(c, &ex->worker->up, ex->route->service, &refresh_ops, r);
    c->method = PT_METHOD_GET;
    c->body = PT_BODY_NONE;
    c->hash_key = pt_forward_hash_key(sh, ex->route->service);
    sh->up_started = true;
    pt_upcall_start(c);
    return;
fail:
    pt_cache_fill_finish(fill, NULL, NULL);
}

/* ---- hooks ---- */

static void cx_cleanup(void *arg)
{
    struct cache_ex *cx = arg;
    struct pt_exchange *ex = cx->ex;
    if (cx->wait != NULL) {
        struct cache_wait *cw = cx->wait;
        cx->wait = NULL;
        pt_timer_disarm(&ex->worker->loop, &cw->timer);
        if (pt_cache_wait_cancel(&cw->w))
            wait_unref(cw); /* the queue's */
        cw->ex = NULL;
        wait_unref(cw); /* ours */
    }
    finish_fill(cx, NULL, NULL);
    if (cx->stale != NULL)
        pt_cache_entry_unref(cx->stale);
    if (cx->served != NULL)
        pt_cache_entry_unref(cx->served);
    if (cx->reval != NULL)
        pt_cache_entry_unref(cx->reval);
    cx->stale = cx->served = cx->reval = NULL;
    if (!cx->counted && ex->cache_result != NULL)
        count(route_name(ex), cx->result);
    cx->counted = true;
    ex->cache_ctx = NULL;
}

static bool header_has_token(const struct pt_request *r, const char *field, const char *token)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!pt_str_case_eq(r->headers[i].name, pt_str_cstr(field)))
            continue;
        struct pt_str v = r->headers[i].value;
        size_t tl = strlen(token);
        for (size_t j = 0; j + tl <= v.len; j++)
            if (pt_str_case_eq_lower_n(pt_str_make(v.ptr + j, tl), token, tl) &&
                (j == 0 || v.ptr[j - 1] == ',' || v.ptr[j - 1] == ' ') &&
                (j + tl == v.len || v.ptr[j + tl] == ',' || v.ptr[j + tl] == ' ' ||
                 v.ptr[j + tl] == '\t'))
                return true;
    }
    return false;
}

static struct cache_ex *new_cx(const struct cache_conf *cf, struct pt_exchange *ex)
{
    struct cache_ex *cx = pt_arena_calloc(&ex->arena, sizeof(*cx));
    if (cx == NULL || pt_arena_defer(&ex->arena, cx_cleanup, cx) != 0)
        return NULL;
    cx->cf = cf;
    cx->ex = ex;
    cx->cl_headers = ex->req.headers;
    cx->cl_nheaders = ex->req.nheaders;
    ex->cache_ctx = cx;
    return cx;
}

static int build_key(struct cache_ex *cx)
{
    struct pt_exchange *ex = cx->ex;
    const struct cache_conf *cf = cx->cf;
    struct pt_cache_key_input in = {
        .route = pt_str_cstr(route_name(ex)),
        .method = PT_STR_LIT("GET"), /* HEAD reads GET entries */
        .host = ex->req.host,
        .path = ex->req.path,
        .query = ex->req.query,
        .has_query = ex->req.has_query,
        .consumer = pt_str_cstr(ex->consumer),
        .headers = ex->req.headers,
        .nheaders = ex->req.nheaders,
        .vary = cf->vary,
        .nvary = cf->nvary,
        .parts = cf->parts,
        .nparts = cf->nparts,
    };
    if (ex->req.method_id == PT_METHOD_POST)
        in.method = PT_STR_LIT("POST");
    struct pt_buf b;
    pt_buf_init(&b);
    if (pt_cache_key_build(&in, &b, &cx->path_off) != 0) {
        pt_buf_free(&b);
        return PT_ERR_NOMEM;
    }
    cx->key = pt_arena_strdup_str(&ex->arena, pt_buf_str(&b));
    pt_buf_free(&b);
    if (cx->key.ptr == NULL)
        return PT_ERR_NOMEM;
    cx->hash = pt_cache_hash(cx->key.ptr, cx->key.len);
    return 0;
}

static int cache_on_request(void *state, struct pt_exchange *ex)
{
    const struct cache_conf *cf = state;
    struct cache_ex *cx = new_cx(cf, ex);
    if (cx == NULL)
        return PT_PLUGIN_CONTINUE; /* out of memory: the request just is not cached */
    enum pt_method m = ex->req.method_id;
    bool head = m == PT_METHOD_HEAD;
    if (!(cf->methods & PT_METHOD_BIT(m)) || ex->req.upgrade ||
        (head && !(cf->methods & PT_METHOD_BIT(PT_METHOD_GET))) ||
        (ex->req.body != PT_BODY_NONE &&
         !(ex->req.body == PT_BODY_LENGTH && ex->req.content_length == 0))) {
        set_result(cx, PT_CACHE_RESULT_BYPASS);
        return PT_PLUGIN_CONTINUE;
    }
    if (build_key(cx) != 0) {
        set_result(cx, PT_CACHE_RESULT_BYPASS);
        return PT_PLUGIN_CONTINUE;
    }
    cx->may_store = !head;
    if (cf->honor_client_no_cache && (header_has_token(&ex->req, "cache-control", "no-cache") ||
                                      header_has_token(&ex->req, "cache-control", "no-store") ||
                                      header_has_token(&ex->req, "pragma", "no-cache"))) {
        /* the client wants a fresh answer: fetch, and let it refresh the entry */
        cx->may_store = !head && !header_has_token(&ex->req, "cache-control", "no-store");
        set_result(cx, PT_CACHE_RESULT_BYPASS);
        return PT_PLUGIN_CONTINUE;
    }
    cx->lookup = true;
    struct pt_cache_get_args a = {
        .key = cx->key,
        .hash = cx->hash,
        .now = now_ms(ex),
        .may_lead = !head,
        .waiter = NULL,
        .match = vary_match,
        .match_arg = cx,
    };
    struct pt_cache_entry *e;
    struct pt_cache_fill *f;
    struct cache_wait *cw = NULL;
    enum pt_cache_get_result r = pt_cache_get(&a, &e, &f);
    if (r == PT_CACHE_GET_MISS && (cw = pt_calloc(1, sizeof(*cw))) != NULL) {
        /* someone else is fetching it (or we may not): queue and ask again */
        if (e != NULL)
            pt_cache_entry_unref(e);
        cw->w.wake = wake;
        atomic_init(&cw->refs, 2);
        cw->ex = ex;
        cw->loop = &ex->worker->loop;
        pt_timer_init(&cw->timer);
        a.waiter = &cw->w;
        r = pt_cache_get(&a, &e, &f);
    }
    if (cw != NULL && r != PT_CACHE_GET_WAIT) {
        free(cw);
        cw = NULL;
    }
    switch (r) {
    case PT_CACHE_GET_HIT:
        serve(cx, e, PT_CACHE_RESULT_HIT);
        return PT_PLUGIN_RESPONDED;
    case PT_CACHE_GET_REFRESH:
        if (pt_forward_upstream_path(ex) != 0)
            pt_cache_fill_finish(f, NULL, NULL);
        else
            start_refresh(cx, f, e);
        serve(cx, e, PT_CACHE_RESULT_STALE);
        return PT_PLUGIN_RESPONDED;
    case PT_CACHE_GET_STALE:
        serve(cx, e, PT_CACHE_RESULT_STALE);
        return PT_PLUGIN_RESPONDED;
    case PT_CACHE_GET_LEAD:
        cx->fill = f;
        cx->stale = e;
        cx->reval = set_conditionals(&ex->arena, &ex->req, e);
        set_result(cx, PT_CACHE_RESULT_MISS);
        return PT_PLUGIN_CONTINUE;
    case PT_CACHE_GET_WAIT:
        cx->stale = e;
        cx->wait = cw;
        set_result(cx, PT_CACHE_RESULT_MISS);
        pt_timer_arm(&ex->worker->loop, &cw->timer, wait_limit_ms(ex), wait_timeout);
        return PT_PLUGIN_PAUSE;
    default:
        cx->stale = e;
        set_result(cx, PT_CACHE_RESULT_MISS);
        return PT_PLUGIN_CONTINUE;
    }
}

/* Answer with the stale entry kept for stale-if-error, if it may still serve. */
static bool serve_stale_on_error(struct cache_ex *cx)
{
    struct pt_cache_entry *e = cx->stale;
    if (e == NULL || now_ms(cx->ex) >= e->sie_until || cx->ex->responded)
        return false;
    cx->stale = NULL;
    finish_fill(cx, NULL, e); /* waiters get the stale entry too */
    serve(cx, e, PT_CACHE_RESULT_STALE);
    return true;
}

/*
 * The service answered 304 to our conditional request: refresh the entry
 * with the 304's fields, wake the waiters with it and answer from it (HIT;
 * a 304 when the client's own conditionals match).  The upstream
 * connection is closed rather than reused (as for any answer a plugin
 * gives in on_upstream_response).
 */
static int revalidated(struct cache_ex *cx, const struct pt_response_head *head)
{
    struct pt_exchange *ex = cx->ex;
    struct pt_cache_entry *e;
    int rc = refreshed_entry(cx->cf, ex, cx->key, cx->path_off, cx->reval, head->headers,
                             head->nheaders, &e);
    cx->stored = true;
    if (rc <= 0) /* not to be used again (or the 304 named another representation) */
        pt_cache_store_remove(cx->reval);
    if (rc < 0 || e == NULL) {
        pt_log_ratelimited(PT_LOG_WARN, 1, "cache: route %s: the service's 304 %s", route_name(ex),
                           rc < 0 ? "names another representation than the stored one"
                                  : "could not be used (out of memory)");
        finish_fill(cx, NULL, NULL);
        if (serve_stale_on_error(cx))
            return PT_PLUGIN_RESPONDED;
        pt_proxy_respond_problem(ex, 502, NULL,
                                 rc < 0 ? "the service answered 304 Not Modified for another "
                                          "representation"
                                        : "out of memory",
                                 NULL, 0);
        return PT_PLUGIN_RESPONDED;
    }
    finish_fill(cx, rc > 0 ? e : NULL, NULL);
    serve(cx, e, PT_CACHE_RESULT_HIT);
    return PT_PLUGIN_RESPONDED;
}

static int cache_on_upstream_response(void *state, struct pt_exchange *ex,
                                      const struct pt_response_head *head)
{
    const struct cache_conf *cf = state;
    struct cache_ex *cx = ex->cache_ctx;
    if (cx == NULL || cx->cf != cf)
        return PT_PLUGIN_CONTINUE;
    if (status_in(&cf->stale_on, head->status) && serve_stale_on_error(cx))
        return PT_PLUGIN_RESPONDED;
    if (head->status == 304 && cx->reval != NULL)
        return revalidated(cx, head);
    if (!cx->may_store)
        return PT_PLUGIN_CONTINUE;
    struct decision d;
    if (head->status == 101 ||
        !decide(cf, ex, head->status, head->headers, head->nheaders, wall_s(ex), NULL, &d) ||
        (head->body == PT_BODY_LENGTH && head->content_length > PT_PLUGIN_MAX_BODY)) {
        set_result(cx, PT_CACHE_RESULT_BYPASS);
        cx->stored = true;
        finish_fill(cx, NULL, NULL); /* the waiters go upstream themselves */
        return PT_PLUGIN_CONTINUE;
    }
    cx->st_headers = copy_headers(&ex->arena, head->headers, head->nheaders);
    if (cx->st_headers == NULL) {
        finish_fill(cx, NULL, NULL);
        return PT_PLUGIN_CONTINUE;
    }
    cx->st_nheaders = head->nheaders;
    cx->st_status = head->status;
    cx->st_d = d;
    cx->will_store = true;
    return PT_PLUGIN_CONTINUE;
}

static bool cache_wants_response_body(void *state, struct pt_exchange *ex,
                                      const struct pt_response_head *head)
{
    struct cache_ex *cx = ex->cache_ctx;
    (void)head;
    return cx != NULL && cx->cf == state && cx->will_store && !cx->stored;
}

static int cache_on_response_body(void *state, struct pt_exchange *ex,
                                  struct pt_response_head *head, struct pt_buf *body)
{
    struct cache_ex *cx = ex->cache_ctx;
    (void)head;
    (void)body;
    if (cx != NULL && cx->cf == state && cx->will_store)
        cx->body_ready = true; /* stored in on_response_head, once every plugin is done */
    return 0;
}

/* Store the response; returns the entry (a reference the caller drops), or NULL. */
static struct pt_cache_entry *store_now(struct cache_ex *cx, struct pt_str body)
{
    struct pt_exchange *ex = cx->ex;
    struct pt_cache_entry *e = make_entry(ex, cx->key, cx->path_off, cx->st_status, cx->st_headers,
                                          cx->st_nheaders, body, &cx->st_d);
    cx->stored = true;
    if (cx->fill != NULL) {
        finish_fill(cx, e, NULL);
    } else if (e != NULL) { /* no fill (a client's no-cache, or after a wait): replace */
        pt_cache_store_put(e, cx->hash);
    }
    return e;
}

static bool entry_has_field(const struct pt_cache_entry *e, struct pt_str name)
{
    return pt_h1_find_header(e->headers, e->nheaders, name) != NULL;
}

/*
 * The response just stored as e is about to go to a client whose own
 * conditionals match it: make it a 304.  The fields that came from the
 * service (those e has) are kept only when a 304 carries them; those the
 * gateway's plugins added are kept.
 */
static void make_not_modified(struct pt_response_head *head, const struct pt_cache_entry *e)
{
    size_t k = 0;
    for (size_t i = 0; i < head->nheaders; i++) {
        struct pt_str name = head->headers[i].name;
        if (kept_in_304(name, e->etag.len > 0) || !entry_has_field(e, name))
            head->headers[k++] = head->headers[i];
    }
    head->nheaders = k;
    head->status = 304;
    head->body = PT_BODY_NONE;
    head->content_length = 0;
    head->head_only = true;
}

static void add_header(struct pt_exchange *ex, struct pt_response_head *head, struct pt_str name,
                       struct pt_str value)
{
    struct pt_h1_header *hs = pt_arena_alloc(&ex->arena, sizeof(*hs) * (head->nheaders + 1));
    if (hs == NULL)
        return;
    memcpy(hs, head->headers, sizeof(*hs) * head->nheaders);
    hs[head->nheaders].name = name;
    hs[head->nheaders].value = value;
    head->headers = hs;
    head->nheaders++;
}

/* Drop the fields named Accept-Ranges or Content-Range (ours replace the upstream's). */
static void drop_range_fields(struct pt_response_head *head)
{
    size_t k = 0;
    for (size_t i = 0; i < head->nheaders; i++) {
        struct pt_str name = head->headers[i].name;
        if (!pt_str_case_eq_lit(name, "accept-ranges") &&
            !pt_str_case_eq_lit(name, "content-range"))
            head->headers[k++] = head->headers[i];
    }
    head->nheaders = k;
}

/*
 * The filler's client asked for a range beyond the end of the response just
 * stored as e: a 416 problem in place of it, as a hit would get.  The
 * stored response's fields go (the gateway's stay) and the buffered body
 * becomes the problem's.
 */
static void filled_416(struct cache_ex *cx, struct pt_response_head *head,
                       const struct pt_cache_entry *e)
{
    struct pt_exchange *ex = cx->ex;
    enum { CAP = 512 };
    char *cr = pt_arena_printf(&ex->arena, "bytes */%zu", e->body_len);
    char *body = pt_arena_alloc(&ex->arena, CAP);
    if (cr == NULL || body == NULL)
        return; /* out of memory: the whole response, which is allowed */
    size_t len = pt_problem_json(body, CAP, 416, NULL, pt_str_cstr(range_416_detail),
                                 pt_str_make(ex->request_id, ex->request_id_len));
    if (len >= CAP)
        len = CAP - 1;
    struct pt_buf *b = &ex->resp_body;
    b->start = b->end = 0;
    if (pt_buf_append(b, body, len, SIZE_MAX) != 0)
        b->start = b->end = 0; /* out of memory: a 416 without a body */
    drop_range_fields(head);
    size_t k = 0;
    for (size_t i = 0; i < head->nheaders; i++)
        if (!entry_has_field(e, head->headers[i].name) &&
            !pt_str_case_eq_lit(head->headers[i].name, "age"))
            head->headers[k++] = head->headers[i];
    head->nheaders = k;
    add_header(ex, head, PT_STR_LIT("Content-Type"), PT_STR_LIT("application/problem+json"));
    add_header(ex, head, PT_STR_LIT("Content-Range"), pt_str_cstr(cr));
    head->status = 416;
    head->content_length = pt_buf_len(b);
    if (ex->error == NULL)
        ex->error = range_416_detail;
}

/*
 * The response just stored as e goes to the filler's own client (and is not
 * a 304): advertise ranges and, when the client asked for one, answer it as
 * a hit would: 206 with that slice of the buffered body, or 416.  This
 * relies on the proxy sending ex->resp_body as it is after the
 * on_response_head hooks (finish_buffered() in proxy.c).
 */
static void range_filled(struct cache_ex *cx, struct pt_response_head *head,
                         const struct pt_cache_entry *e)
{
    struct pt_exchange *ex = cx->ex;
    struct pt_buf *b = &ex->resp_body;
    if (e->status != 200 || head->status != 200 || head->head_only || e->body_len != pt_buf_len(b))
        return;
    struct pt_byte_range br;
    enum pt_range_verdict rv = client_range(cx, e, &br);
    if (rv == PT_RANGE_UNSATISFIABLE) {
        filled_416(cx, head, e);
        return;
    }
    drop_range_fields(head);
    add_header(ex, head, PT_STR_LIT("Accept-Ranges"), PT_STR_LIT("bytes"));
    if (rv == PT_RANGE_PARTIAL) {
        char *cr = pt_arena_printf(&ex->arena, "bytes %llu-%llu/%zu", (unsigned long long)br.first,
                                   (unsigned long long)br.last, e->body_len);
        if (cr == NULL)
            return; /* the whole response */
        add_header(ex, head, PT_STR_LIT("Content-Range"), pt_str_cstr(cr));
        head->status = 206;
        b->start += (uint32_t)br.first;
        b->end = b->start + (uint32_t)(br.last - br.first + 1);
        head->content_length = pt_buf_len(b);
    }
}

static void cache_on_response_head(void *state, struct pt_exchange *ex,
                                   struct pt_response_head *head)
{
    struct cache_ex *cx = ex->cache_ctx;
    if (cx == NULL || cx->cf != state || ex->cache_result == NULL)
        return;
    if (cx->will_store && !cx->stored) {
        if (head == &ex->resp_head && cx->body_ready) {
            struct pt_cache_entry *e = store_now(cx, pt_buf_str(&ex->resp_body));
            if (e != NULL && client_not_modified(cx, e))
                make_not_modified(head, e);
            else if (e != NULL)
                range_filled(cx, head, e);
            if (e != NULL)
                pt_cache_entry_unref(e);
        } else if (head->head_only && head->status == cx->st_status &&
                   ex->upstream_status == cx->st_status && head->status == 204) {
            struct pt_cache_entry *e = store_now(cx, PT_STR_NULL);
            if (e != NULL)
                pt_cache_entry_unref(e);
        } else { /* passed through unbuffered (too large), or replaced by an error */
            cx->stored = true;
            finish_fill(cx, NULL, NULL);
            if (cx->result == PT_CACHE_RESULT_MISS)
                set_result(cx, PT_CACHE_RESULT_BYPASS);
        }
    }
    add_header(ex, head, PT_STR_LIT("X-Cache"), pt_str_cstr(xcache_values[cx->result]));
}

static int cache_on_upstream_error(void *state, struct pt_exchange *ex, int status)
{
    struct cache_ex *cx = ex->cache_ctx;
    (void)status;
    if (cx == NULL || cx->cf != state)
        return PT_PLUGIN_CONTINUE;
    if (serve_stale_on_error(cx))
        return PT_PLUGIN_RESPONDED;
    finish_fill(cx, NULL, NULL);
    return PT_PLUGIN_CONTINUE;
}

const struct pt_plugin_ops pt_plugin_cache = {
    .name = "cache",
    .order = PT_ORDER_CACHE,
    .configure = pt__cache_configure,
    .destroy = pt__cache_destroy,
    .on_request = cache_on_request,
    .on_upstream_response = cache_on_upstream_response,
    .wants_response_body = cache_wants_response_body,
    .on_response_body = cache_on_response_body,
    .on_response_head = cache_on_response_head,
    .on_upstream_error = cache_on_upstream_error,
};
