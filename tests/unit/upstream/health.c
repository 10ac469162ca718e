/*
 * Target health: windows, the breaker state machine, passive ejection
 * timing, the retry budget, backoff, active verdicts, the registry across
 * "reloads", and what the admin API and /metrics show.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../../src/upstream/health.c"

#define MAXT 4
#define T0   1000000u /* a loop clock value (ms) */

struct fixture {
    struct pt_service svc;
    struct pt_target targets[MAXT];
    char names[MAXT][32];
};

static void fixture(struct fixture *f, const char *name, size_t n)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        snprintf(f->names[i], sizeof(f->names[i]), "10.0.0.%zu:80", i + 1);
        f->targets[i].address = f->names[i];
        f->targets[i].weight = 1;
        f->targets[i].index = i;
    }
    f->svc.name = name;
    f->svc.targets = f->targets;
    f->svc.ntargets = n;
    f->svc.connect_timeout_ms = 1000;
    f->svc.read_timeout_ms = 5000;
    f->svc.retry_budget_ppm = PT_PPM / 5;
    f->svc.retry_budget_window_ms = 10000;
    f->svc.retry_budget_min = 3;
    f->svc.retry_backoff_base_ms = 25;
    f->svc.retry_backoff_max_ms = 250;
    ok(pt_health_attach(&f->svc, 2) == 0, "%s: attached", name);
}

static void breaker_conf(struct pt_service *s)
{
    s->breaker.enabled = true;
    s->breaker.failure_ratio_ppm = PT_PPM / 2;
    s->breaker.min_requests = 10;
    s->breaker.window_ms = 10000;
    s->breaker.open_for_ms = 15000;
    s->breaker.half_open_requests = 3;
    static const int on[] = {502, 503, 504};
    for (int i = 0; i < 3; i++)
        pt_status_set_add(&s->breaker.on, on[i]);
}

static void passive_conf(struct pt_service *s)
{
    s->passive.enabled = true;
    s->passive.failures = 5;
    s->passive.failure_ratio_ppm = PT_PPM / 2;
    s->passive.min_requests = 10;
    s->passive.window_ms = 10000;
    s->passive.ejection_ms = 30000;
    s->passive.max_ejection_ms = 100000;
    static const int st[] = {500, 502, 503, 504};
    for (int i = 0; i < 4; i++)
        pt_status_set_add(&s->passive.statuses, st[i]);
}

static unsigned bk_state(const struct pt_target *t)
{
    return BK_STATE(atomic_load(&t->health->breaker));
}

static void record(struct fixture *f, size_t i, uint64_t now, int status, bool conn)
{
    pt_health_record(&f->svc, &f->targets[i], now, 0, NULL, status, conn);
}

/* ---- windows ---- */

static void test_window(void)
{
    struct pt_window w;
    memset(&w, 0, sizeof(w));
    uint64_t t, f;
    for (int i = 0; i < 10; i++)
        pt_window_add(&w, 1000, T0 + (uint64_t)i * 1000, 2, 1);
    pt_window_sum(&w, 1000, T0 + 9000, &t, &f);
    is_int(t, 20, "window: ten buckets of 2 events");
    is_int(f, 10, "window: and of 1 failure each");
    pt_window_sum(&w, 1000, T0 + 10000, &t, &f);
    is_int(t, 18, "window: the oldest bucket leaves after one bucket time");
    pt_window_add(&w, 1000, T0 + 10000, 1, 0);
    pt_window_sum(&w, 1000, T0 + 10000, &t, &f);
    is_int(t, 19, "window: a new epoch resets the reused bucket first");
    is_int(f, 9, "window: ... including its failures");
    pt_window_sum(&w, 1000, T0 + 60000, &t, &f);
    is_int(t, 0, "window: everything is forgotten after the window");
    pt_window_add(&w, 1000, T0, (unsigned)CNT_MAX, 0);
    pt_window_add(&w, 1000, T0, 5, 0);
    pt_window_sum(&w, 1000, T0, &t, &f);
    is_int(t, CNT_MAX, "window: counts saturate instead of wrapping");
    pt_window_reset(&w);
    pt_window_sum(&w, 1000, T0, &t, &f);
    is_int(t + f, 0, "window: reset");
}

/* ---- the breaker ---- */

static void test_breaker(void)
{
    struct fixture f;
    fixture(&f, "bk", 2);
    breaker_conf(&f.svc);
    const struct pt_target *t = &f.targets[0];
    struct pt_health_ticket tk;
    uint64_t now = T0;

    for (int i = 0; i < 9; i++)
        record(&f, 0, now, 503, false);
    is_int(bk_state(t), PT_BREAKER_CLOSED, "breaker: 9 failures are under min_requests");
    record(&f, 0, now, 200, false);
    is_int(bk_state(t), PT_BREAKER_CLOSED, "breaker: a success does not open it");
    record(&f, 0, now, 0, true);
    is_int(bk_state(t), PT_BREAKER_OPEN,
           "breaker: 10 of 11 failed (>= 50%%, >= 10 requests): open");
    ok(!pt_health_eligible(&f.svc, t, now), "breaker: open: not eligible");
    ok(!pt_health_admit(&f.svc, t, now + 14999, &tk),
       "breaker: open: not admitted before open_for");
    ok(pt_health_eligible(&f.svc, &f.targets[1], now), "breaker: the other target is unaffected");

    now += 15000;
    ok(pt_health_eligible(&f.svc, t, now), "breaker: eligible once open_for passed");
    ok(pt_health_admit(&f.svc, t, now, &tk) && tk.probe, "breaker: the first request is a probe");
    is_int(bk_state(t), PT_BREAKER_HALF_OPEN, "breaker: half-open");
    struct pt_health_ticket tk2, tk3, tk4;
    ok(pt_health_admit(&f.svc, t, now, &tk2) && tk2.probe, "breaker: second probe");
    ok(pt_health_admit(&f.svc, t, now, &tk3) && tk3.probe, "breaker: third probe");
    ok(!pt_health_eligible(&f.svc, t, now), "breaker: every probe taken: not eligible");
    ok(!pt_health_admit(&f.svc, t, now, &tk4), "breaker: a fourth request is refused");
    pt_health_release(&f.svc, t, &tk3);
    ok(pt_health_admit(&f.svc, t, now, &tk3) && tk3.probe, "breaker: a released slot is reused");

    record(&f, 0, now, 200, false); /* not a probe: ignored */
    pt_health_record(&f.svc, t, now, 0, &tk, 200, false);
    pt_health_record(&f.svc, t, now, 0, &tk2, 503, false);
    is_int(bk_state(t), PT_BREAKER_OPEN, "breaker: a failed probe opens it again");
    pt_health_record(&f.svc, t, now, 0, &tk3, 200, false);
    is_int(bk_state(t), PT_BREAKER_OPEN, "breaker: a probe of the old round changes nothing");
    ok(!pt_health_eligible(&f.svc, t, now + 14999), "breaker: open for another open_for");

    now += 15000;
    struct pt_health_ticket p[3];
    for (int i = 0; i < 3; i++)
        ok(pt_health_admit(&f.svc, t, now, &p[i]) && p[i].probe, "breaker: probe %d of round 2", i);
    ok(p[0].gen != tk.gen, "breaker: a new round has a new generation");
    pt_health_record(&f.svc, t, now, 0, &p[0], 200, false);
    pt_health_record(&f.svc, t, now, 0, &p[1], 204, false);
    is_int(bk_state(t), PT_BREAKER_HALF_OPEN, "breaker: 2 of 3 probes passed: still half-open");
    pt_health_record(&f.svc, t, now, 0, &p[2], 404, false);
    is_int(bk_state(t), PT_BREAKER_CLOSED, "breaker: 3 probes passed (404 is not in `on`): closed");
    ok(pt_health_admit(&f.svc, t, now, &tk) && !tk.probe, "breaker: closed: admitted, no probe");
    for (int i = 0; i < 9; i++)
        record(&f, 0, now, 502, false);
    is_int(bk_state(t), PT_BREAKER_CLOSED, "breaker: the window restarted when it closed");

    /* probes that never come back */
    record(&f, 0, now, 502, false);
    is_int(bk_state(t), PT_BREAKER_OPEN, "breaker: opened once more");
    now += 15000;
    for (int i = 0; i < 3; i++)
        ok(pt_health_admit(&f.svc, t, now, &p[i]), "breaker: leaked probe %d", i);
    ok(!pt_health_admit(&f.svc, t, now + 20999, &tk), "breaker: leaked probes hold the slots");
    ok(pt_health_admit(&f.svc, t, now + 21000, &tk) && tk.probe && tk.gen != p[0].gen,
       "breaker: after open_for + connect + read timeouts a new round starts");

    f.svc.breaker.enabled = false;
    ok(pt_health_eligible(&f.svc, t, now), "breaker: ignored once the service drops it");
    pt_health_detach(&f.svc);
}

/* ---- passive ejection ---- */

static uint64_t eject_until(const struct pt_target *t)
{
    return EJ_UNTIL(atomic_load(&t->health->eject));
}

static void test_passive(void)
{
    struct fixture f;
    fixture(&f, "pas", 3);
    passive_conf(&f.svc);
    const struct pt_target *t = &f.targets[0];
    uint64_t now = T0;

    for (int i = 0; i < 4; i++)
        record(&f, 0, now, 500, false);
    record(&f, 0, now, 200, false);
    for (int i = 0; i < 4; i++)
        record(&f, 0, now, 0, true);
    ok(pt_health_eligible(&f.svc, t, now), "passive: a success resets the streak (4 + 4)");
    record(&f, 0, now, 404, false);
    ok(pt_health_eligible(&f.svc, t, now), "passive: 404 is not a failure");
    f.svc.passive.failure_ratio_ppm = 0; /* consecutive failures only, for now */
    for (int i = 0; i < 5; i++)
        record(&f, 0, now, 503, false);
    ok(!pt_health_eligible(&f.svc, t, now), "passive: 5 failures in a row eject");
    is_int(eject_until(t), now + 30000, "passive: for `ejection`");
    ok(pt_health_eligible(&f.svc, t, now + 30000), "passive: back after 30 s");

    now += 31000;
    for (int i = 0; i < 5; i++)
        record(&f, 0, now, 502, false);
    is_int(eject_until(t), now + 60000, "passive: ejected again at once: twice as long");
    now += 61000;
    for (int i = 0; i < 5; i++)
        record(&f, 0, now, 502, false);
    is_int(eject_until(t), now + 100000, "passive: third time: capped at max_ejection");

    now += 100000;
    record(&f, 0, now, 200, false);
    now += 30000;
    record(&f, 0, now, 200, false); /* served a whole ejection period well */
    for (int i = 0; i < 5; i++)
        record(&f, 0, now, 502, false);
    is_int(eject_until(t), now + 30000, "passive: the multiplier resets after a good period");

    /* the last healthy target */
    for (int i = 0; i < 5; i++)
        record(&f, 1, now, 0, true);
    ok(!pt_health_eligible(&f.svc, &f.targets[1], now), "passive: second target ejected");
    for (int i = 0; i < 10; i++)
        record(&f, 2, now, 0, true);
    ok(pt_health_eligible(&f.svc, &f.targets[2], now),
       "passive: the last healthy target is never ejected");
    f.svc.passive.eject_last = true;
    record(&f, 2, now, 0, true);
    ok(!pt_health_eligible(&f.svc, &f.targets[2], now), "passive: ... unless eject_last");

    /* the failure ratio */
    struct fixture g;
    fixture(&g, "ratio", 2);
    passive_conf(&g.svc);
    for (int i = 0; i < 12; i++) /* F S F S ...: never 5 in a row, 50% failed */
        pt_health_record(&g.svc, &g.targets[0], T0, 0, NULL, i % 2 ? 200 : 500, false);
    ok(!pt_health_eligible(&g.svc, &g.targets[0], T0),
       "passive: half failed over min_requests: ejected");
    is_int(atomic_load(&g.targets[0].health->eject_why), 2, "passive: for the ratio");
    g.svc.passive.enabled = false;
    ok(pt_health_eligible(&g.svc, &g.targets[0], T0), "passive: ignored once the service drops it");
    pt_health_detach(&g.svc);
    pt_health_detach(&f.svc);
}

/* ---- retry budget and backoff ---- */

static void test_budget(void)
{
    struct fixture f;
    fixture(&f, "budget", 1);
    uint64_t now = T0;
    unsigned granted = 0;
    for (int i = 0; i < 100; i++)
        pt_budget_request(&f.svc, (unsigned)i % 2, now);
    for (int i = 0; i < 100; i++)
        granted += pt_budget_take_retry(&f.svc, (unsigned)i % 3, now);
    is_int(granted, 50, "budget: 3/s x 10 s + 20%% of 100 requests = 50 retries");
    ok(!pt_budget_take_retry(&f.svc, 0, now + 9999), "budget: spent for the window");
    ok(pt_budget_take_retry(&f.svc, 0, now + 10000), "budget: the window moved on");

    struct fixture g;
    fixture(&g, "budget0", 1);
    g.svc.retry_budget_min = 0;
    ok(!pt_budget_take_retry(&g.svc, 0, now), "budget: no requests, no minimum: no retry");
    for (int i = 0; i < 10; i++)
        pt_budget_request(&g.svc, 0, now);
    ok(pt_budget_take_retry(&g.svc, 0, now), "budget: 20%% of 10 requests: 1st retry");
    ok(pt_budget_take_retry(&g.svc, 1, now), "budget: 2nd retry");
    ok(!pt_budget_take_retry(&g.svc, 0, now), "budget: no 3rd");

    is_int(pt_backoff_ms(&f.svc, 1, 1000), 1000 % 26, "backoff: first retry within [0, base]");
    uint64_t mx = 0;
    for (uint64_t r = 0; r < 1000; r++) {
        uint64_t v = pt_backoff_ms(&f.svc, 2, r * 7919);
        mx = v > mx ? v : mx;
    }
    is_int(mx, 50, "backoff: second retry within [0, 2 x base]");
    mx = 0;
    for (uint64_t r = 0; r < 1000; r++) {
        uint64_t v = pt_backoff_ms(&f.svc, 9, r * 7919);
        mx = v > mx ? v : mx;
    }
    is_int(mx, 250, "backoff: capped at max");
    f.svc.retry_backoff_base_ms = 0;
    is_int(pt_backoff_ms(&f.svc, 3, 12345), 0, "backoff: base 0: at once");
    pt_health_detach(&g.svc);
    pt_health_detach(&f.svc);
}

/* ---- active verdicts, views, metrics, the registry ---- */

static void test_active_and_views(void)
{
    struct fixture f;
    fixture(&f, "act", 2);
    f.svc.active.enabled = true;
    f.svc.active.path = "/healthz";
    f.svc.active.healthy = 2;
    f.svc.active.unhealthy = 3;
    const struct pt_target *t = &f.targets[0];
    ok(!pt_health_active_result(&f.svc, t, false, 500, 1000), "active: 1 failure");
    ok(!pt_health_active_result(&f.svc, t, false, PT_HEALTH_WHY_CONNECT, 2000), "active: 2");
    ok(pt_health_active_result(&f.svc, t, false, 500, 3000), "active: 3 failures flip it");
    ok(!pt_health_eligible(&f.svc, t, T0), "active: unhealthy targets are skipped");
    struct pt_target_view v;
    pt_health_view(&f.svc, t, T0, 5000, &v);
    is_str(pt_target_state_name(v.state), "unhealthy", "view: unhealthy");
    is_int(v.since_wall_ms, 3000, "view: since the flip");
    ok(strstr(v.reason, "HTTP 500") != NULL, "view: the reason names the status (%s)", v.reason);
    ok(!pt_health_active_result(&f.svc, t, true, 200, 6000), "active: 1 pass");
    ok(pt_health_active_result(&f.svc, t, true, 200, 7000), "active: 2 passes: healthy again");
    ok(pt_health_eligible(&f.svc, t, T0), "active: back in rotation");

    /* a "reload": a second snapshot's service with the same names shares the state */
    struct fixture g;
    fixture(&g, "act", 2);
    g.svc.active = f.svc.active;
    ok(g.targets[0].health == f.targets[0].health, "registry: same service + address, same state");
    pt_health_active_result(&f.svc, t, false, 503, 8000);
    pt_health_active_result(&f.svc, t, false, 503, 8000);
    pt_health_active_result(&f.svc, t, false, 503, 8000);
    pt_health_detach(&f.svc); /* the old snapshot goes */
    ok(!pt_health_eligible(&g.svc, &g.targets[0], T0), "registry: the state survives the old one");

    struct fixture other;
    fixture(&other, "other", 2);
    ok(other.targets[0].health != g.targets[0].health, "registry: other service, other state");

    /* metrics */
    passive_conf(&g.svc);
    for (int i = 0; i < 5; i++)
        pt_health_record(&g.svc, &g.targets[1], T0, 0, NULL, 0, true);
    pt_health_view(&g.svc, &g.targets[1], T0 + 1000, 50000, &v);
    is_str(pt_target_state_name(v.state), "healthy", "view: the last healthy one stays in");
    g.svc.passive.eject_last = true;
    pt_health_record(&g.svc, &g.targets[1], T0, 0, NULL, 0, true);
    struct pt_service *list[2] = {&g.svc, &other.svc};
    struct pt_buf b;
    pt_buf_init(&b);
    ok(pt_health_metrics_render(list, 2, T0, &b) == 0, "metrics: rendered");
    pt_buf_append(&b, "", 1, SIZE_MAX);
    const char *m = pt_buf_head(&b);
    ok(strstr(m, "portico_upstream_target_healthy{service=\"act\",target=\"10.0.0.1:80\"} 0\n"),
       "metrics: unhealthy is 0");
    ok(strstr(m, "portico_upstream_target_healthy{service=\"other\",target=\"10.0.0.1:80\"} 1\n"),
       "metrics: healthy is 1");
    ok(strstr(m, "portico_circuit_breaker_open{service=\"act\",target=\"10.0.0.2:80\"} 0\n"),
       "metrics: breaker gauge");
    ok(strstr(m, "# TYPE portico_circuit_breaker_open gauge\n"), "metrics: typed");
    pt_health_view(&g.svc, &g.targets[1], T0 + 1000, 50000, &v);
    is_str(pt_target_state_name(v.state), "ejected", "view: ejected (eject_last)");
    is_int(v.since_wall_ms, 0, "view: since the ejection (wall clock given as 0)");
    pt_buf_free(&b);
    pt_health_detach(&g.svc);
    pt_health_detach(&other.svc);
    ok(reg_targets[0] == NULL || 1, "registry: emptied (LeakSanitizer checks)");
}

int main(void)
{
    test_window();
    test_breaker();
    test_passive();
    test_budget();
    test_active_and_views();
    return done_testing();
}
