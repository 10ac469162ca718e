/*
 * Active health checks on the main thread.
 *
 * Each probe is an ordinary upstream call (call.c) with a fixed target: no
 * balancer, no retry, nothing recorded as a request.  It runs on the main
 * loop with its own keep-alive pool, which stays empty because checks ask
 * for `Connection: close`: each check opens a connection, as a client
 * would after the target restarted.  A probe ends at its response head (the
 * body is not read) or at `timeout`, whichever comes first.
 *
 * A reload re-creates the checkers from the new services (cancelling the
 * checks in flight); the health state, the pass/fail streaks and the time
 * of each target's next check live in the registry entry, so they carry
 * over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/compiler.h"
#include "core/log.h"
#include "http/reqid.h"
#include "upstream/call.h"
#include "upstream/checker.h"
#include "upstream/health.h"
#include "upstream/pool.h"

struct checker;

struct probe {
    struct pt_upcall call;
    struct pt_timer timer; /* the next check; while one runs, its timeout */
    struct checker *ck;
    size_t idx;
    bool running;
};

struct checker {
    struct pt_health_checks *hc;
    struct pt_service *svc;
    struct probe *probes; /* one per target */
    size_t n;
};

struct pt_health_checks {
    struct pt_loop *loop;
    struct pt_pool pool;
    struct pt_upstream_ctx env;
    struct checker *checkers;
    size_t n;
    void *owner;
    void (*release)(void *owner);
};

static void probe_timer(struct pt_loop *loop, struct pt_timer *t);

static struct pt_target *target_of(const struct probe *p)
{
    return &p->ck->svc->targets[p->idx];
}

static void schedule(struct probe *p, uint64_t at)
{
    struct pt_target_health *h = target_of(p)->health;
    if (h != NULL)
        h->next_check_ms = at;
    pt_timer_arm_at(p->ck->hc->loop, &p->timer, at, probe_timer);
}

static void complete(struct probe *p, bool ok, int why)
{
    struct pt_loop *loop = p->ck->hc->loop;
    const struct pt_service *svc = p->ck->svc;
    const struct pt_target *t = target_of(p);
    p->running = false;
    if (pt_health_active_result(svc, t, ok, why, loop->wall_ms)) {
        char what[48];
        if (why > 0)
            snprintf(what, sizeof(what), "HTTP %d", why);
        else
            snprintf(what, sizeof(what), "%s",
                     why == PT_HEALTH_WHY_CONNECT   ? "connection failed"
                     : why == PT_HEALTH_WHY_TIMEOUT ? "timed out"
                                                    : "connection closed");
        pt_log(ok ? PT_LOG_INFO : PT_LOG_WARN, "health: %s target %s is %s (%s %s: %s)", svc->name,
               t->address, ok ? "healthy again" : "unhealthy", ok ? "passed" : "failed",
               svc->active.path, what);
    }
    struct pt_target_health *h = t->health;
    uint64_t next = h != NULL ? h->next_check_ms : pt_loop_now(loop) + svc->active.interval_ms;
    if (next <= pt_loop_now(loop))
        next = pt_loop_now(loop) + 1;
    schedule(p, next);
}

/* ---- the probe as an upstream call ---- */

static int probe_head(struct pt_upcall *c, const struct pt_target *t, struct pt_buf *out)
{
    const struct pt_service *svc = c->svc;
    const char *host = svc->host != NULL ? svc->host : t->authority;
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portico-health-check\r\n"
                     "Connection: close\r\n",
                     svc->active.path, host);
    if (n < 0 || (size_t)n >= sizeof(head))
        return -1;
    return pt_buf_append(out, head, (size_t)n, SIZE_MAX) == 0 ? 0 : -1;
}

static int probe_body_peek(struct pt_upcall *c, struct pt_str *data, bool *end)
{
    (void)c;
    *data = (struct pt_str){NULL, 0};
    *end = true;
    return 0;
}

static void probe_body_consume(struct pt_upcall *c, size_t n)
{
    (void)c;
    (void)n;
}

static void probe_on_head(struct pt_upcall *c, const struct pt_h1_response *resp,
                          const struct pt_h1_meta *meta)
{
    (void)meta;
    struct probe *p = c->ctx;
    int status = resp->status;
    pt_upcall_cancel(c); /* the status is all we wanted */
    complete(p, pt_status_set_has(&p->ck->svc->active.statuses, status), status);
}

static bool probe_on_body(struct pt_upcall *c, const char *data, size_t n, bool end)
{
    (void)c;
    (void)data;
    (void)n;
    (void)end;
    return false;
}

static void probe_on_error(struct pt_upcall *c, enum pt_upcall_error err, bool head_delivered)
{
    (void)head_delivered;
    struct probe *p = c->ctx;
    int why = err == PT_UPERR_CONNECT                                      ? PT_HEALTH_WHY_CONNECT
              : err == PT_UPERR_CONNECT_TIMEOUT || err == PT_UPERR_TIMEOUT ? PT_HEALTH_WHY_TIMEOUT
                                                                           : PT_HEALTH_WHY_IO;
    complete(p, false, why);
}

static const struct pt_upcall_ops probe_ops = {
    .build_head = probe_head,
    .body_peek = probe_body_peek,
    .body_consume = probe_body_consume,
    .on_head = probe_on_head,
    .on_body = probe_on_body,
    .on_error = probe_on_error,
};

static void probe_timer(struct pt_loop *loop, struct pt_timer *t)
{
    struct probe *p = PT_CONTAINER_OF(t, struct probe, timer);
    const struct pt_service *svc = p->ck->svc;
    if (p->running) { /* timeout */
        pt_upcall_cancel(&p->call);
        complete(p, false, PT_HEALTH_WHY_TIMEOUT);
        return;
    }
    struct pt_target_health *h = target_of(p)->health;
    if (h != NULL)
        h->next_check_ms = pt_loop_now(loop) + svc->active.interval_ms;
    pt_upcall_init(&p->call, &p->ck->hc->env, svc, &probe_ops, p);
    p->call.method = PT_METHOD_GET;
    p->call.body = PT_BODY_NONE;
    p->call.fixed_target = (ssize_t)p->idx;
    p->running = true;
    pt_timer_arm(loop, &p->timer, svc->active.timeout_ms, probe_timer);
    pt_upcall_start(&p->call); /* may complete at once (connection refused) */
}

/* ---- lifecycle ---- */

struct pt_health_checks *pt_health_checks_new(struct pt_loop *loop)
{
    struct pt_health_checks *hc = pt_calloc(1, sizeof(*hc));
    if (hc == NULL)
        return NULL;
    hc->loop = loop;
    if (pt_pool_init(&hc->pool, loop) != 0) {
        free(hc);
        return NULL;
    }
    hc->env.loop = loop;
    hc->env.pool = &hc->pool;
    hc->env.worker_id = 0;
    hc->env.metrics = NULL;
    return hc;
}

static void stop_all(struct pt_health_checks *hc)
{
    for (size_t i = 0; i < hc->n; i++) {
        struct checker *ck = &hc->checkers[i];
        for (size_t k = 0; k < ck->n; k++) {
            struct probe *p = &ck->probes[k];
            pt_timer_disarm(hc->loop, &p->timer);
            if (p->running)
                pt_upcall_cancel(&p->call);
            p->running = false;
        }
        free(ck->probes);
    }
    free(hc->checkers);
    hc->checkers = NULL;
    hc->n = 0;
    if (hc->release != NULL)
        hc->release(hc->owner);
    hc->release = NULL;
    hc->owner = NULL;
}

/* When a target's first check is due: its kept schedule, or soon (spread over a quarter interval).
 */
static uint64_t first_due(const struct pt_service *svc, const struct pt_target *t, uint64_t now)
{
    const struct pt_target_health *h = t->health;
    if (h != NULL && h->next_check_ms != 0)
        return h->next_check_ms > now ? h->next_check_ms : now + 1;
    return now + 1 + pt_random_u64() % (svc->active.interval_ms / 4 + 1);
}

void pt_health_checks_sync(struct pt_health_checks *hc, struct pt_service *const *services,
                           size_t n, void *owner, void (*release)(void *owner))
{
    stop_all(hc);
    hc->owner = owner;
    hc->release = release;
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        if (services[i]->active.enabled && services[i]->ntargets > 0)
            want++;
    if (want == 0)
        return;
    hc->checkers = pt_calloc(want, sizeof(*hc->checkers));
    if (hc->checkers == NULL) {
        pt_log_err("health: out of memory; active checks stopped");
        return;
    }
    uint64_t now = pt_loop_now(hc->loop);
    for (size_t i = 0; i < n; i++) {
        struct pt_service *svc = services[i];
        if (!svc->active.enabled || svc->ntargets == 0)
            continue;
        struct checker *ck = &hc->checkers[hc->n];
        ck->probes = pt_calloc(svc->ntargets, sizeof(*ck->probes));
        if (ck->probes == NULL) {
            pt_log_err("health: out of memory; no active checks for %s", svc->name);
            continue;
        }
        ck->hc = hc;
        ck->svc = svc;
        ck->n = svc->ntargets;
        hc->n++;
        for (size_t k = 0; k < ck->n; k++) {
            struct probe *p = &ck->probes[k];
            p->ck = ck;
            p->idx = k;
            pt_timer_init(&p->timer);
            bool dup = false; /* a target listed twice is checked once (one shared state) */
            for (size_t j = 0; j < k && !dup; j++)
                dup = svc->targets[j].health == svc->targets[k].health &&
                      svc->targets[k].health != NULL;
            if (!dup)
                schedule(p, first_due(svc, &svc->targets[k], now));
        }
    }
}

void pt_health_checks_free(struct pt_health_checks *hc)
{
    if (hc == NULL)
        return;
    stop_all(hc);
    pt_pool_destroy(&hc->pool);
    free(hc);
}
