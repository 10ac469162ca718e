/*
 * Target health: what active checks, passive outlier ejection and circuit
 * breakers know about each target, shared by every worker and the main
 * thread, and kept across configuration reloads.
 *
 * The state of a target lives in a process-wide registry keyed by service
 * name and target address ("users" + "127.0.0.1:9001").  Each snapshot that
 * names the target takes a reference (struct pt_target.health), so a reload
 * that keeps the target keeps its state: an ejected target stays ejected,
 * an open breaker stays open.  The registry is locked only while snapshots
 * are built and freed; the request path uses relaxed atomics on the
 * target's own state and never a lock (docs/internals/upstream.md,
 * "Health").
 *
 * Whether a state matters is decided by the service's configuration of the
 * moment: with `circuit_breaker` removed, an open breaker is ignored.
 */
#ifndef PT_UPSTREAM_HEALTH_H
#define PT_UPSTREAM_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "upstream/service.h"

/* ---- sliding windows ---- */

#define PT_WINDOW_BUCKETS 10

/**
 * Counts of (total, failed) events over the last PT_WINDOW_BUCKETS buckets
 * of bucket_ms each.  Each bucket is one 64-bit word, epoch:20 | total:22 |
 * failed:22, updated with a compare-and-swap, so concurrent writers never
 * lose a count and a stale bucket is reset by the first writer of its new
 * epoch.  Counts saturate at 2^22 - 1 per bucket.
 */
struct pt_window {
    _Atomic uint64_t b[PT_WINDOW_BUCKETS];
};

void pt_window_add(struct pt_window *w, uint64_t bucket_ms, uint64_t now_ms, unsigned total,
                   unsigned failed);
void pt_window_sum(const struct pt_window *w, uint64_t bucket_ms, uint64_t now_ms, uint64_t *total,
                   uint64_t *failed);
void pt_window_reset(struct pt_window *w);

/* ---- per-target state ---- */

enum pt_breaker_state {
    PT_BREAKER_CLOSED = 0,
    PT_BREAKER_OPEN,
    PT_BREAKER_HALF_OPEN,
    PT_BREAKER_STATE_COUNT
};

/* Why the last active check failed (or passed): an HTTP status, or one of these. */
#define PT_HEALTH_WHY_CONNECT -1
#define PT_HEALTH_WHY_TIMEOUT -2
#define PT_HEALTH_WHY_IO      -3

struct pt_target_health {
    /* Read on every pick, written on state changes only. */
    _Atomic uint64_t breaker; /* state:2 | gen:6 | issued:8 | ok:8 | until_ms:40 */
    _Atomic uint64_t eject;   /* count:8 | until_ms:40 (0 = never ejected) */
    _Atomic uint32_t active;  /* 1 = failing its active checks */
    /* Written on every attempt: a line of their own. */
    _Alignas(64) _Atomic uint32_t consecutive; /* passive: failures in a row */
    struct pt_window passive_win;
    struct pt_window breaker_win;
    /* What the admin API shows (wall-clock ms). */
    _Alignas(64) _Atomic int64_t created_wall;
    _Atomic int64_t active_wall;                   /* the active state last changed */
    _Atomic int64_t eject_wall;                    /* the last ejection */
    _Atomic int64_t breaker_wall;                  /* the breaker last changed state */
    _Atomic int32_t active_why;                    /* the last check's status or PT_HEALTH_WHY_* */
    _Atomic uint32_t eject_why;                    /* 1 consecutive failures, 2 failure ratio */
    _Atomic uint32_t eject_fails;                  /* failures counted at the ejection */
    _Atomic uint32_t breaker_fails, breaker_total; /* the window that opened the breaker */
    /* The active checker's bookkeeping: main thread only. */
    unsigned streak_ok, streak_fail;
    uint64_t next_check_ms;
    /* Registry. */
    struct pt_target_health *next;
    unsigned long refs; /* under the registry lock */
    uint64_t hash;
    char key[]; /* service '\0' address '\0' */
};

/** What the breaker of an attempt admitted as a half-open probe (see pt_health_admit). */
struct pt_health_ticket {
    bool probe;
    uint8_t gen;
};

/**
 * Take the registry references for svc and each of its targets (sets
 * svc->health and every target's health).  nworkers sizes the retry
 * budget's per-worker counters.  0 or PT_ERR_NOMEM (then call
 * pt_health_detach, which releases what was taken).
 */
int pt_health_attach(struct pt_service *svc, unsigned nworkers);
void pt_health_detach(struct pt_service *svc);

/**
 * May target t take a new request now?  Not when it fails its active checks
 * (with health.active), is ejected (health.passive) or its breaker refuses
 * (circuit_breaker: open, or half-open with every probe taken).  A few
 * relaxed loads; no write.
 */
bool pt_health_eligible(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms);

/**
 * Admit a request that the balancer chose: a half-open breaker lets
 * half_open_requests probes through (tk->probe set), an open one whose
 * open_for has passed turns half-open and admits this one as its first
 * probe.  false when another worker took the last probe meanwhile (choose
 * another target).
 */
bool pt_health_admit(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                     struct pt_health_ticket *tk);

/**
 * The outcome of one attempt on t: status is the response's (0 when there
 * was none); conn_failure says the attempt failed without a response
 * (connection error, timeout, reset, invalid response).  Feeds passive
 * ejection and the breaker; a probe's outcome moves the half-open breaker.
 */
void pt_health_record(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                      int64_t wall_ms, const struct pt_health_ticket *tk, int status,
                      bool conn_failure);

/** An admitted probe that ends without an outcome (cancelled): give its slot back. */
void pt_health_release(const struct pt_service *svc, const struct pt_target *t,
                       const struct pt_health_ticket *tk);

/**
 * The active checker's verdict on one check of t (main thread): ok, and why
 * (a status or PT_HEALTH_WHY_*).  Flips the target's state after
 * active.healthy passes or active.unhealthy failures in a row; returns
 * true when it flipped.
 */
bool pt_health_active_result(const struct pt_service *svc, const struct pt_target *t, bool ok,
                             int why, int64_t wall_ms);

/* ---- retry budget and backoff ---- */

/** A request to svc started on worker (counts towards the retry budget). */
void pt_budget_request(const struct pt_service *svc, unsigned worker, uint64_t now_ms);

/**
 * May a retry be sent?  Within the window, retries may reach
 * budget_min × window seconds plus retry_budget of the requests; true
 * counts the retry.
 */
bool pt_budget_take_retry(const struct pt_service *svc, unsigned worker, uint64_t now_ms);

/**
 * Delay before retry number n (1 = the first retry): "full jitter", uniform
 * in [0, min(max, base × 2^(n-1))], from the random value rnd.
 */
uint64_t pt_backoff_ms(const struct pt_service *svc, unsigned n, uint64_t rnd);

/* ---- visibility ---- */

enum pt_target_state {
    PT_TARGET_HEALTHY = 0,
    PT_TARGET_UNHEALTHY, /* failing active checks */
    PT_TARGET_EJECTED,   /* passive outlier ejection */
    PT_TARGET_OPEN,      /* circuit breaker open or half-open */
    PT_TARGET_STATE_COUNT
};

/** One target as GET /services/NAME/health shows it. */
struct pt_target_view {
    const char *address;
    enum pt_target_state state;
    char reason[160];
    int64_t since_wall_ms; /* when the state began; 0 = unknown */
    enum pt_breaker_state breaker;
};

/** The state of target t now (mono now_ms, wall-clock wall_ms). */
void pt_health_view(const struct pt_service *svc, const struct pt_target *t, uint64_t now_ms,
                    int64_t wall_ms, struct pt_target_view *v);

/** SPEC §6's name for a state: "healthy", "unhealthy", "ejected", "open". */
const char *pt_target_state_name(enum pt_target_state s);

/**
 * Append the gauges portico_upstream_target_healthy{service,target} and
 * portico_circuit_breaker_open{service,target} (Prometheus text, HELP and
 * TYPE included) for every target of services.  0 or PT_ERR_NOMEM.
 */
int pt_health_metrics_render(struct pt_service *const *services, size_t n, uint64_t now_ms,
                             struct pt_buf *out);

#endif
