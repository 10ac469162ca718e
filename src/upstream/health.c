/*
 * Target health: the registry, passive outlier ejection, the circuit
 * breaker, the retry budget.
 *
 * Registry.  Entries are keyed by service name and target address and
 * reference-counted by the snapshots that name them (pt_health_attach /
 * pt_health_detach, under one mutex: only configuration loads and frees
 * take it).  So a reload that keeps "users" + "127.0.0.1:9001" hands the
 * new snapshot the very same state.
 *
 * Hot path.  A pick reads three words per candidate (active, eject,
 * breaker), which change only on state changes, so they stay shared in
 * every core's cache.  Recording an outcome costs a compare-and-swap on a
 * window bucket and, for the passive check, an add or a load on the
 * consecutive-failure counter; those sit on a line of their own.
 *
 * Breaker.  One 64-bit word holds the whole state (state, generation,
 * probes issued, probes that succeeded, and a deadline), and every
 * transition is a compare-and-swap on it:
 *
 *   CLOSED --failure ratio over min_requests in window--> OPEN(until = now + open_for)
 *   OPEN --a pick after `until`--> HALF_OPEN(gen + 1, issued 1): that request is a probe
 *   HALF_OPEN --half_open_requests probes succeeded--> CLOSED (window cleared)
 *   HALF_OPEN --a probe failed--> OPEN(until = now + open_for)
 *
 * Only probes (tickets of the current generation) move a half-open
 * breaker; requests admitted before it opened are ignored.  A half-open
 * breaker whose probes never came back (a leaked ticket) admits new probes
 * after its deadline.
 *
 * Ejection.  Deciding to eject takes the service's mutex (a rare event,
 * never on the success path) so that two workers cannot both eject "the
 * other" target and leave none: unless passive.eject_last, a target is not
 * ejected when no other target of the service could take its traffic.
 * The ejection time doubles with each ejection in a row, up to
 * max_ejection, and resets once the target has served an ejection period
 * without being ejected again.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/compiler.h"
#include "core/hash.h"
#include "core/log.h"
#include "upstream/health.h"

/* ---- windows ---- */

#define EPOCH_BITS 20
#define CNT_BITS   22
#define EPOCH_MASK ((1ull << EPOCH_BITS) - 1)
#define CNT_MAX    ((1ull << CNT_BITS) - 1)

static inline uint64_t win_pack(uint64_t epoch, uint64_t total, uint64_t failed)
{
    return epoch << (2 * CNT_BITS) | total << CNT_BITS | failed;
}

#define WIN_EPOCH(v)  ((v) >> (2 * CNT_BITS))
#define WIN_TOTAL(v)  (((v) >> CNT_BITS) & CNT_MAX)
#define WIN_FAILED(v) ((v)&CNT_MAX)

static inline uint64_t bucket_of(uint64_t window_ms)
{
    uint64_t b = window_ms / PT_WINDOW_BUCKETS;
    return b == 0 ? 1 : b;
}

void pt_window_add(struct pt_window *w, uint64_t bucket_ms, uint64_t now_ms, unsigned total,
                   unsigned failed)
{
    uint64_t tick = now_ms / bucket_ms, ep = tick & EPOCH_MASK;
    _Atomic uint64_t *p = &w->b[tick % PT_WINDOW_BUCKETS];
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    for (;;) {
        uint64_t t = total, f = failed;
        if (WIN_EPOCH(old) == ep) {
            t += WIN_TOTAL(old);
            f += WIN_FAILED(old);
        }
        if (t > CNT_MAX)
            t = CNT_MAX;
        if (f > CNT_MAX)
            f = CNT_MAX;
        if (atomic_compare_exchange_weak_explicit(p, &old, win_pack(ep, t, f), memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

void pt_window_sum(const struct pt_window *w, uint64_t bucket_ms, uint64_t now_ms, uint64_t *total,
                   uint64_t *failed)
{
    uint64_t ep = (now_ms / bucket_ms) & EPOCH_MASK, t = 0, f = 0;
    for (size_t i = 0; i < PT_WINDOW_BUCKETS; i++) {
        uint64_t v = atomic_load_explicit(&w->b[i], memory_order_relaxed);
        if (v == 0 || ((ep - WIN_EPOCH(v)) & EPOCH_MASK) >= PT_WINDOW_BUCKETS)
            continue;
        t += WIN_TOTAL(v);
        f += WIN_FAILED(v);
    }
    *total = t;
    *failed = f;
}

void pt_window_reset(struct pt_window *w)
{
    for (size_t i = 0; i < PT_WINDOW_BUCKETS; i++)
        atomic_store_explicit(&w->b[i], 0, memory_order_relaxed);
}

/* Is failed/total at or above ratio (ppm), over at least min_requests? */
static bool ratio_reached(uint64_t total, uint64_t failed, unsigned min_requests, uint32_t ppm)
{
    return ppm > 0 && total > 0 && total >= min_requests &&
           failed * PT_PPM >= (uint64_t)ppm * total;
}

/* ---- the registry ---- */

struct budget_slot {
    _Alignas(64) struct pt_window w;
};

struct pt_service_health {
    struct pt_service_health *next;
    unsigned long refs;
    uint64_t hash;
    pthread_mutex_t lock; /* ejection decisions */
    unsigned nslots;
    struct budget_slot *slots; /* retry budget: (requests, retries) per worker */
    char name[];
};

#define REG_BUCKETS 1024

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pt_target_health *reg_targets[REG_BUCKETS];
static struct pt_service_health *reg_services[REG_BUCKETS];

static uint64_t fnv(const char *p, size_t n)
{
    return pt_fnv1a(p, n, PT_FNV1A_OFFSET);
}

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct pt_service_health *service_get_locked(const char *name, unsigned nworkers)
{
    size_t n = strlen(name);
    uint64_t h = fnv(name, n);
    struct pt_service_health **head = &reg_services[h % REG_BUCKETS];
    for (struct pt_service_health *s = *head; s != NULL; s = s->next)
        if (s->hash == h && strcmp(s->name, name) == 0) {
            s->refs++;
            return s;
        }
    struct pt_service_health *s = pt_calloc(1, sizeof(*s) + n + 1);
    if (s == NULL)
        return NULL;
    s->nslots = nworkers == 0 ? 1 : nworkers;
    s->slots = pt__alloc_should_fail()
                   ? NULL
                   : aligned_alloc(_Alignof(struct budget_slot), s->nslots * sizeof(*s->slots));
    if (s->slots == NULL) {
        free(s);
        return NULL;
    }
    memset(s->slots, 0, s->nslots * sizeof(*s->slots));
    pthread_mutex_init(&s->lock, NULL);
    memcpy(s->name, name, n + 1);
    s->hash = h;
    s->refs = 1;
    s->next = *head;
    *head = s;
    return s;
}

static void service_put_locked(struct pt_service_health *s)
{
    if (--s->refs > 0)
        return;
    struct pt_service_health **pp = &reg_services[s->hash % REG_BUCKETS];
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    pthread_mutex_destroy(&s->lock);
    free(s->slots);
    free(s);
}

static struct pt_target_health *target_get_locked(const char *service, const char *address)
{
    size_t ns = strlen(service), na = strlen(address);
    uint64_t h = fnv(address, na) ^ fnv(service, ns) * 31;
    struct pt_target_health **head = &reg_targets[h % REG_BUCKETS];
    for (struct pt_target_health *t = *head; t != NULL; t = t->next)
        if (t->hash == h && strcmp(t->key, service) == 0 && strcmp(t->key + ns + 1, address) == 0) {
            t->refs++;
            return t;
        }
    struct pt_target_health *t = pt__alloc_should_fail()
                                     ? NULL
                                     : aligned_alloc(64, (sizeof(*t) + ns + na + 2 + 63) / 64 * 64);
    if (t == NULL)
        return NULL;
    memset(t, 0, sizeof(*t));
    memcpy(t->key, service, ns + 1);
    memcpy(t->key + ns + 1, address, na + 1);
    atomic_init(&t->created_wall, wall_now());
    t->hash = h;
    t->refs = 1;
    t->next = *head;
    *head = t;
    return t;
}

static void target_put_locked(struct pt_target_health *t)
{
    if (--t->refs > 0)
        return;
    struct pt_target_health **pp = &reg_targets[t->hash % REG_BUCKETS];
    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    free(t);
}

int pt_health_attach(struct pt_service *svc, unsigned nworkers)
{
    int rc = 0;
    pthread_mutex_lock(&reg_lock);
    svc->health = service_get_locked(svc->name, nworkers);
    if (svc->health == NULL)
        rc = PT_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < svc->ntargets; i++) {
        struct pt_target *t = &svc->targets[i];
        t->health = target_get_locked(svc->name, t->address != NULL ? t->address : "");
        if (t->health == NULL)
            rc = PT_ERR_NOMEM;
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

void pt_health_detach(struct pt_service *svc)
{
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < svc->ntargets; i++) {
        if (svc->targets[i].health != NULL)
            target_put_locked(svc->targets[i].health);
        svc->targets[i].health = NULL;
    }
    if (svc->health != NULL)
        service_put_locked(svc->health);
    svc->health = NULL;
    pthread_mutex_unlock(&reg_lock);
}

/* ---- packed words ---- */

#define UNTIL_MASK ((1ull << 40) - 1)

#define BK_STATE(w)  ((unsigned)((w) >> 62))
#define BK_GEN(w)    ((unsigned)((w) >> 56) & 0x3f)
#define BK_ISSUED(w) ((unsigned)((w) >> 48) & 0xff)
#define BK_OK(w)     ((unsigned)((w) >> 40) & 0xff)
#define BK_UNTIL(w)  ((w)&UNTIL_MASK)

static inline uint64_t bk_make(unsigned state, unsigned gen, unsigned issued, unsigned okn,
                               uint64_t until)
{
    return (uint64_t)state << 62 | (uint64_t)(gen & 0x3f) << 56 | (uint64_t)(issued & 0xff) << 48 |
           (uint64_t)(okn & 0xff) << 40 | (until & UNTIL_MASK);
}

#define EJ_COUNT(w) ((unsigned)((w) >> 40) & 0xff)
#define EJ_UNTIL(w) ((w)&UNTIL_MASK)

static inline uint64_t ej_make(unsigned count, uint64_t until)
{
    return (uint64_t)(count & 0xff) << 40 | (until & UNTIL_MASK);
}

static inline unsigned half_open_n(const struct pt_service *svc)
{
    unsigned n = svc->breaker.half_open_requests;
    return n == 0 ? 1 : n > 255 ? 255 : n;
}

/* How long a half-open breaker waits for its probes before admitting new ones. */
static inline uint64_t probe_guard_ms(const struct pt_service *svc)
{
    return svc->breaker.open_for_ms + svc->connect_timeout_ms + svc->read_timeout_ms;
}

/* ---- eligibility ---- */

static bool breaker_eligible(const struct pt_service *svc, uint64_t w, uint64_t now_ms)
{
    switch (BK_STATE(w)) {
    case PT_BREAKER_OPEN:
        return now_ms >= BK_UNTIL(w);
    case PT_BREAKER_HALF_OPEN:
        return BK_ISSUED(w) < half_open_n(svc) || now_ms >= BK_UNTIL(w);
    default:
        return true;
    }
}

bool pt_health_eligible(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms)
{
    const struct pt_target_health *h = t->health;
    if (h == NULL)
        return true;
    if (svc->active.enabled && atomic_load_explicit(&h->active, memory_order_relaxed) != 0)
        return false;
    if (svc->passive.enabled &&
        now_ms < EJ_UNTIL(atomic_load_explicit(&h->eject, memory_order_relaxed)))
        return false;
    if (svc->breaker.enabled &&
        !breaker_eligible(svc, atomic_load_explicit(&h->breaker, memory_order_relaxed), now_ms))
        return false;
    return true;
}

/* ---- the breaker ---- */

static void breaker_log(const struct pt_service *svc, const struct pt_target *t, const char *what)
{
    pt_log_ratelimited(PT_LOG_WARN, 20, "upstream %s: circuit breaker of %s %s", svc->name,
                       t->address, what);
}

bool pt_health_admit(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                     struct pt_health_ticket *tk)
{
    tk->probe = false;
    struct pt_target_health *h = t->health;
    if (h == NULL || !svc->breaker.enabled)
        return true;
    uint64_t w = atomic_load_explicit(&h->breaker, memory_order_acquire);
    for (;;) {
        unsigned st = BK_STATE(w), gen = BK_GEN(w);
        uint64_t nw;
        if (st == PT_BREAKER_CLOSED)
            return true;
        if (st == PT_BREAKER_OPEN && now_ms < BK_UNTIL(w))
            return false;
        if (st == PT_BREAKER_HALF_OPEN && now_ms < BK_UNTIL(w)) {
            if (BK_ISSUED(w) >= half_open_n(svc))
                return false;
            nw = bk_make(st, gen, BK_ISSUED(w) + 1, BK_OK(w), BK_UNTIL(w));
        } else { /* open_for is over (or the probes never came back): a new round of probes */
            gen = (gen + 1) & 0x3f;
            nw = bk_make(PT_BREAKER_HALF_OPEN, gen, 1, 0, now_ms + probe_guard_ms(svc));
        }
        if (atomic_compare_exchange_weak_explicit(&h->breaker, &w, nw, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            if (BK_STATE(w) != PT_BREAKER_HALF_OPEN || BK_GEN(w) != gen) {
                atomic_store_explicit(&h->breaker_wall, wall_now(), memory_order_relaxed);
                breaker_log(svc, t, "is half-open: probing");
            }
            tk->probe = true;
            tk->gen = (uint8_t)gen;
            return true;
        }
    }
}

void pt_health_release(const struct pt_service *svc, const struct pt_target *t,
                       const struct pt_health_ticket *tk)
{
    (void)svc;
    struct pt_target_health *h = t->health;
    if (h == NULL || tk == NULL || !tk->probe)
        return;
    uint64_t w = atomic_load_explicit(&h->breaker, memory_order_acquire);
    while (BK_STATE(w) == PT_BREAKER_HALF_OPEN && BK_GEN(w) == tk->gen && BK_ISSUED(w) > 0) {
        uint64_t nw =
            bk_make(PT_BREAKER_HALF_OPEN, BK_GEN(w), BK_ISSUED(w) - 1, BK_OK(w), BK_UNTIL(w));
        if (atomic_compare_exchange_weak_explicit(&h->breaker, &w, nw, memory_order_acq_rel,
                                                  memory_order_acquire))
            return;
    }
}

static void probe_outcome(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                          int64_t wall_ms, const struct pt_health_ticket *tk, bool failed)
{
    struct pt_target_health *h = t->health;
    uint64_t w = atomic_load_explicit(&h->breaker, memory_order_acquire);
    while (BK_STATE(w) == PT_BREAKER_HALF_OPEN && BK_GEN(w) == tk->gen) {
        uint64_t nw;
        unsigned okn = BK_OK(w) + 1;
        if (failed)
            nw = bk_make(PT_BREAKER_OPEN, BK_GEN(w), 0, 0, now_ms + svc->breaker.open_for_ms);
        else if (okn >= half_open_n(svc))
            nw = bk_make(PT_BREAKER_CLOSED, BK_GEN(w), 0, 0, 0);
        else
            nw = bk_make(PT_BREAKER_HALF_OPEN, BK_GEN(w), BK_ISSUED(w), okn, BK_UNTIL(w));
        if (!atomic_compare_exchange_weak_explicit(&h->breaker, &w, nw, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        if (BK_STATE(nw) == PT_BREAKER_CLOSED) {
            pt_window_reset(&h->breaker_win);
            atomic_store_explicit(&h->breaker_wall, wall_ms, memory_order_relaxed);
            breaker_log(svc, t, "closed: the probes succeeded");
        } else if (BK_STATE(nw) == PT_BREAKER_OPEN) {
            atomic_store_explicit(&h->breaker_wall, wall_ms, memory_order_relaxed);
            breaker_log(svc, t, "opened again: a probe failed");
        }
        return;
    }
}

static void breaker_record(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                           int64_t wall_ms, const struct pt_health_ticket *tk, bool failed)
{
    struct pt_target_health *h = t->health;
    const struct pt_breaker_conf *b = &svc->breaker;
    if (tk != NULL && tk->probe) {
        probe_outcome(svc, t, now_ms, wall_ms, tk, failed);
        return;
    }
    uint64_t w = atomic_load_explicit(&h->breaker, memory_order_relaxed);
    if (BK_STATE(w) != PT_BREAKER_CLOSED)
        return; /* admitted before the breaker opened: not a probe */
    uint64_t bucket = bucket_of(b->window_ms), total, nfailed;
    pt_window_add(&h->breaker_win, bucket, now_ms, 1, failed);
    if (!failed)
        return;
    pt_window_sum(&h->breaker_win, bucket, now_ms, &total, &nfailed);
    if (!ratio_reached(total, nfailed, b->min_requests, b->failure_ratio_ppm))
        return;
    uint64_t nw = bk_make(PT_BREAKER_OPEN, (BK_GEN(w) + 1) & 0x3f, 0, 0, now_ms + b->open_for_ms);
    if (atomic_compare_exchange_strong_explicit(&h->breaker, &w, nw, memory_order_acq_rel,
                                                memory_order_relaxed)) {
        atomic_store_explicit(&h->breaker_fails, (uint32_t)nfailed, memory_order_relaxed);
        atomic_store_explicit(&h->breaker_total, (uint32_t)total, memory_order_relaxed);
        atomic_store_explicit(&h->breaker_wall, wall_ms, memory_order_relaxed);
        pt_log_ratelimited(PT_LOG_WARN, 20,
                           "upstream %s: circuit breaker of %s opened: %llu of %llu requests "
                           "failed; failing fast for %llu ms",
                           svc->name, t->address, (unsigned long long)nfailed,
                           (unsigned long long)total, (unsigned long long)b->open_for_ms);
    }
}

/* ---- passive ejection ---- */

/* Could another target of svc take t's traffic now? */
static bool others_available(const struct pt_service *svc, const struct pt_target *t,
                             uint64_t now_ms)
{
    for (size_t i = 0; i < svc->ntargets; i++) {
        const struct pt_target *o = &svc->targets[i];
        if (o->health != t->health && pt_health_eligible(svc, o, now_ms))
            return true;
    }
    return false;
}

static void try_eject(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                      int64_t wall_ms, unsigned why, unsigned fails)
{
    struct pt_target_health *h = t->health;
    const struct pt_passive_conf *p = &svc->passive;
    if (svc->health != NULL)
        pthread_mutex_lock(&svc->health->lock);
    uint64_t e = atomic_load_explicit(&h->eject, memory_order_relaxed);
    if (now_ms < EJ_UNTIL(e))
        goto out; /* already out */
    if (!p->eject_last && !others_available(svc, t, now_ms)) {
        pt_log_ratelimited(PT_LOG_WARN, 1,
                           "upstream %s: %s keeps failing but is the last healthy target; not "
                           "ejected",
                           svc->name, t->address);
        goto out;
    }
    unsigned n = EJ_COUNT(e);
    uint64_t dur = p->ejection_ms << (n < 16 ? n : 16);
    if (dur > p->max_ejection_ms && p->max_ejection_ms >= p->ejection_ms)
        dur = p->max_ejection_ms;
    atomic_store_explicit(&h->eject, ej_make(n < 255 ? n + 1 : 255, now_ms + dur),
                          memory_order_relaxed);
    atomic_store_explicit(&h->consecutive, 0, memory_order_relaxed);
    pt_window_reset(&h->passive_win);
    atomic_store_explicit(&h->eject_wall, wall_ms, memory_order_relaxed);
    atomic_store_explicit(&h->eject_why, why, memory_order_relaxed);
    atomic_store_explicit(&h->eject_fails, fails, memory_order_relaxed);
    pt_log_ratelimited(PT_LOG_WARN, 20, "upstream %s: %s ejected for %llu ms (%u %s)", svc->name,
                       t->address, (unsigned long long)dur, fails,
                       why == 1 ? "failures in a row" : "failures in the window");
out:
    if (svc->health != NULL)
        pthread_mutex_unlock(&svc->health->lock);
}

static void passive_record(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                           int64_t wall_ms, bool failed)
{
    struct pt_target_health *h = t->health;
    const struct pt_passive_conf *p = &svc->passive;
    uint64_t bucket = bucket_of(p->window_ms);
    pt_window_add(&h->passive_win, bucket, now_ms, 1, failed);
    if (!failed) {
        if (atomic_load_explicit(&h->consecutive, memory_order_relaxed) != 0)
            atomic_store_explicit(&h->consecutive, 0, memory_order_relaxed);
        uint64_t e = atomic_load_explicit(&h->eject, memory_order_relaxed);
        if (EJ_COUNT(e) > 0 && now_ms >= EJ_UNTIL(e) + p->ejection_ms) /* served a period well */
            atomic_compare_exchange_strong_explicit(&h->eject, &e, ej_make(0, EJ_UNTIL(e)),
                                                    memory_order_relaxed, memory_order_relaxed);
        return;
    }
    unsigned c = atomic_fetch_add_explicit(&h->consecutive, 1, memory_order_relaxed) + 1;
    if (p->failures > 0 && c >= p->failures) {
        try_eject(svc, t, now_ms, wall_ms, 1, c);
        return;
    }
    uint64_t total, nfailed;
    pt_window_sum(&h->passive_win, bucket, now_ms, &total, &nfailed);
    if (ratio_reached(total, nfailed, p->min_requests, p->failure_ratio_ppm))
        try_eject(svc, t, now_ms, wall_ms, 2, (unsigned)nfailed);
}

void pt_health_record(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                      int64_t wall_ms, const struct pt_health_ticket *tk, int status,
                      bool conn_failure)
{
    if (t->health == NULL)
        return;
    if (svc->passive.enabled)
        passive_record(svc, t, now_ms, wall_ms,
                       conn_failure || pt_status_set_has(&svc->passive.statuses, status));
    if (svc->breaker.enabled)
        breaker_record(svc, t, now_ms, wall_ms, tk,
                       conn_failure || pt_status_set_has(&svc->breaker.on, status));
}

/* ---- active checks (main thread) ---- */

bool pt_health_active_result(const struct pt_service *svc, const struct pt_target *t, bool ok,
                             int why, int64_t wall_ms)
{
    struct pt_target_health *h = t->health;
    if (h == NULL)
        return false;
    atomic_store_explicit(&h->active_why, why, memory_order_relaxed);
    bool unhealthy = atomic_load_explicit(&h->active, memory_order_relaxed) != 0;
    if (ok) {
        h->streak_fail = 0;
        if (h->streak_ok < UINT32_MAX)
            h->streak_ok++;
        if (!unhealthy || h->streak_ok < svc->active.healthy)
            return false;
        atomic_store_explicit(&h->active, 0, memory_order_relaxed);
    } else {
        h->streak_ok = 0;
        if (h->streak_fail < UINT32_MAX)
            h->streak_fail++;
        if (unhealthy || h->streak_fail < svc->active.unhealthy)
            return false;
        atomic_store_explicit(&h->active, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&h->active_wall, wall_ms, memory_order_relaxed);
    return true;
}

/* ---- retry budget ---- */

static struct pt_window *budget_slot(const struct pt_service_health *sh, unsigned worker)
{
    return &sh->slots[worker % sh->nslots].w;
}

void pt_budget_request(const struct pt_service *svc, unsigned worker, uint64_t now_ms)
{
    if (svc->health == NULL)
        return;
    pt_window_add(budget_slot(svc->health, worker), bucket_of(svc->retry_budget_window_ms), now_ms,
                  1, 0);
}

bool pt_budget_take_retry(const struct pt_service *svc, unsigned worker, uint64_t now_ms)
{
    const struct pt_service_health *sh = svc->health;
    if (sh == NULL)
        return true;
    uint64_t bucket = bucket_of(svc->retry_budget_window_ms), requests = 0, retries = 0;
    for (unsigned i = 0; i < sh->nslots; i++) {
        uint64_t t, f;
        pt_window_sum(&sh->slots[i].w, bucket, now_ms, &t, &f);
        requests += t;
        retries += f;
    }
    uint64_t allowed = (uint64_t)svc->retry_budget_min * (bucket * PT_WINDOW_BUCKETS) / 1000 +
                       requests * svc->retry_budget_ppm / PT_PPM;
    if (retries + 1 > allowed)
        return false;
    pt_window_add(budget_slot(sh, worker), bucket, now_ms, 0, 1);
    return true;
}

uint64_t pt_backoff_ms(const struct pt_service *svc, unsigned n, uint64_t rnd)
{
    uint64_t base = svc->retry_backoff_base_ms, max = svc->retry_backoff_max_ms;
    if (base == 0)
        return 0;
    unsigned shift = n > 1 ? n - 1 : 0;
    uint64_t cap = base << (shift < 20 ? shift : 20);
    if (max >= base && cap > max)
        cap = max;
    return rnd % (cap + 1);
}

/* ---- visibility ---- */

const char *pt_target_state_name(enum pt_target_state s)
{
    static const char *const names[PT_TARGET_STATE_COUNT] = {"healthy", "unhealthy", "ejected",
                                                             "open"};
    return (unsigned)s < PT_TARGET_STATE_COUNT ? names[s] : "?";
}

static void why_text(int why, char *buf, size_t n)
{
    if (why > 0)
        snprintf(buf, n, "HTTP %d", why);
    else if (why == PT_HEALTH_WHY_CONNECT)
        snprintf(buf, n, "connection failed");
    else if (why == PT_HEALTH_WHY_TIMEOUT)
        snprintf(buf, n, "timed out");
    else
        snprintf(buf, n, "connection closed");
}

/* A monotonic deadline as wall-clock time. */
static int64_t to_wall(uint64_t mono, uint64_t now_ms, int64_t wall_ms)
{
    return wall_ms - (int64_t)(now_ms - mono);
}

static bool view_breaker(const struct pt_service *svc, const struct pt_target_health *h,
                         uint64_t now_ms, struct pt_target_view *v)
{
    uint64_t w = atomic_load_explicit(&h->breaker, memory_order_acquire);
    v->breaker = (enum pt_breaker_state)BK_STATE(w);
    if (!svc->breaker.enabled || BK_STATE(w) == PT_BREAKER_CLOSED)
        return false;
    v->state = PT_TARGET_OPEN;
    v->since_wall_ms = atomic_load_explicit(&h->breaker_wall, memory_order_relaxed);
    if (BK_STATE(w) == PT_BREAKER_OPEN && now_ms < BK_UNTIL(w))
        snprintf(v->reason, sizeof(v->reason),
                 "circuit breaker open: %u of %u requests failed; half-open in %llu ms",
                 (unsigned)atomic_load_explicit(&h->breaker_fails, memory_order_relaxed),
                 (unsigned)atomic_load_explicit(&h->breaker_total, memory_order_relaxed),
                 (unsigned long long)(BK_UNTIL(w) - now_ms));
    else if (BK_STATE(w) == PT_BREAKER_OPEN)
        snprintf(v->reason, sizeof(v->reason),
                 "circuit breaker open: open_for elapsed, the next request is a probe");
    else
        snprintf(v->reason, sizeof(v->reason),
                 "circuit breaker half-open: %u of %u probes sent, %u succeeded", BK_ISSUED(w),
                 half_open_n(svc), BK_OK(w));
    return true;
}

void pt_health_view(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                    int64_t wall_ms, struct pt_target_view *v)
{
    memset(v, 0, sizeof(*v));
    v->address = t->address;
    v->state = PT_TARGET_HEALTHY;
    const struct pt_target_health *h = t->health;
    if (h == NULL) {
        snprintf(v->reason, sizeof(v->reason), "no health state");
        return;
    }
    char why[48];
    why_text(atomic_load_explicit(&h->active_why, memory_order_relaxed), why, sizeof(why));
    bool failing = atomic_load_explicit(&h->active, memory_order_relaxed) != 0;
    if (svc->active.enabled && failing) {
        v->state = PT_TARGET_UNHEALTHY;
        v->since_wall_ms = atomic_load_explicit(&h->active_wall, memory_order_relaxed);
        snprintf(v->reason, sizeof(v->reason), "active check %s failed: %s", svc->active.path, why);
        return;
    }
    if (view_breaker(svc, h, now_ms, v))
        return;
    uint64_t e = atomic_load_explicit(&h->eject, memory_order_relaxed);
    if (svc->passive.enabled && now_ms < EJ_UNTIL(e)) {
        v->state = PT_TARGET_EJECTED;
        v->since_wall_ms = atomic_load_explicit(&h->eject_wall, memory_order_relaxed);
        snprintf(v->reason, sizeof(v->reason), "ejected after %u %s; back in %llu ms",
                 (unsigned)atomic_load_explicit(&h->eject_fails, memory_order_relaxed),
                 atomic_load_explicit(&h->eject_why, memory_order_relaxed) == 1
                     ? "failures in a row"
                     : "failures in the window",
                 (unsigned long long)(EJ_UNTIL(e) - now_ms));
        return;
    }
    /* healthy: since the latest return to health */
    int64_t since = atomic_load_explicit(&h->created_wall, memory_order_relaxed);
    int64_t aw = atomic_load_explicit(&h->active_wall, memory_order_relaxed);
    int64_t bw = atomic_load_explicit(&h->breaker_wall, memory_order_relaxed);
    if (svc->active.enabled && aw > since)
        since = aw;
    if (svc->breaker.enabled && bw > since)
        since = bw;
    if (svc->passive.enabled && EJ_UNTIL(e) != 0) {
        int64_t back = to_wall(EJ_UNTIL(e), now_ms, wall_ms);
        if (back > since)
            since = back;
    }
    v->since_wall_ms = since;
    if (svc->active.enabled)
        snprintf(v->reason, sizeof(v->reason), "active check %s passing (last: %s)",
                 svc->active.path, why);
    else if (svc->passive.enabled || svc->breaker.enabled)
        snprintf(v->reason, sizeof(v->reason), "no outlier detected");
    else
        snprintf(v->reason, sizeof(v->reason), "no health checks configured");
}

static int put(struct pt_buf *out, const char *s)
{
    return pt_buf_append(out, s, strlen(s), SIZE_MAX) == 0 ? 0 : PT_ERR_NOMEM;
}

static int put_label_value(struct pt_buf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        int rc = esc != NULL ? put(out, esc) : (pt_buf_append(out, s, 1, SIZE_MAX) == 0 ? 0 : -1);
        if (rc != 0)
            return PT_ERR_NOMEM;
    }
    return 0;
}

static int gauge(struct pt_buf *out, const char *name, const char *svc, const char *target,
                 int value)
{
    int rc = put(out, name);
    rc |= put(out, "{service=\"");
    rc |= put_label_value(out, svc);
    rc |= put(out, "\",target=\"");
    rc |= put_label_value(out, target);
    rc |= put(out, value ? "\"} 1\n" : "\"} 0\n");
    return rc != 0 ? PT_ERR_NOMEM : 0;
}

static bool seen_before(const struct pt_service *svc, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(svc->targets[j].address, svc->targets[i].address) == 0)
            return true;
    return false;
}

int pt_health_metrics_render(struct pt_service *const *services, size_t n, uint64_t now_ms,
                             struct pt_buf *out)
{
    static const char *const names[2] = {"portico_upstream_target_healthy",
                                         "portico_circuit_breaker_open"};
    static const char *const help[2] = {
        "# HELP portico_upstream_target_healthy 1 when the target takes requests (not failing "
        "its active checks, not ejected, breaker closed).\n"
        "# TYPE portico_upstream_target_healthy gauge\n",
        "# HELP portico_circuit_breaker_open 1 while the target's circuit breaker is open or "
        "half-open.\n"
        "# TYPE portico_circuit_breaker_open gauge\n"};
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        rc = put(out, help[k]);
        for (size_t s = 0; s < n && rc == 0; s++) {
            const struct pt_service *svc = services[s];
            for (size_t i = 0; i < svc->ntargets && rc == 0; i++) {
                if (seen_before(svc, i))
                    continue;
                struct pt_target_view v;
                pt_health_view(svc, &svc->targets[i], now_ms, 0, &v);
                int value = k == 0 ? v.state == PT_TARGET_HEALTHY
                                   : svc->breaker.enabled && v.breaker != PT_BREAKER_CLOSED;
                rc = gauge(out, names[k], svc->name, svc->targets[i].address, value);
            }
        }
    }
    return rc;
}
