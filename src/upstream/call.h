/*
 * One request to a service: pick a target (balancer), take a pooled
 * connection or open one, send the request head and stream the body, parse
 * the response and stream it to the caller, retry on another target when
 * the service's `retries` allow, enforce connect / read / write timeouts.
 *
 * The proxy uses it for every proxied request; composition uses it for each
 * of its calls, so both share balancers, pools, timeouts and retries.
 *
 * The caller provides the request head (per attempt: the Host may differ by
 * target) and the body as a pull source, and receives the response through
 * callbacks.  Everything runs on the caller's worker loop.
 */
#ifndef PT_UPSTREAM_CALL_H
#define PT_UPSTREAM_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "http/chunked.h"
#include "http/exchange.h"
#include "http/h1.h"
#include "upstream/health.h"
#include "upstream/pool.h"
#include "upstream/service.h"

#define PT_UPCALL_MAX_TRIES   8
#define PT_UPCALL_REPLAY_MAX  65536 /* request body bytes kept for a retry */
#define PT_UPCALL_MAX_HEADERS 128

enum pt_upcall_error {
    PT_UPERR_NONE = 0,
    PT_UPERR_NO_TARGET,       /* no eligible target (→ 503) */
    PT_UPERR_CONNECT,         /* connection refused / unreachable (→ 502) */
    PT_UPERR_CONNECT_TIMEOUT, /* (→ 504) */
    PT_UPERR_TIMEOUT,         /* read or write timeout (→ 504) */
    PT_UPERR_IO,              /* reset or closed mid-exchange (→ 502) */
    PT_UPERR_PROTOCOL,        /* invalid response (→ 502) */
    PT_UPERR_STATUS, /* a retryable status and no retry left: the response is delivered, not this */
    PT_UPERR_CLIENT, /* the request body source failed (client sent garbage or left) */
    PT_UPERR_NOMEM,
    PT_UPERR_COUNT
};

/** Upstream side of the worker: what a call needs from its environment. */
struct pt_metrics;

struct pt_upstream_ctx {
    struct pt_loop *loop;
    struct pt_pool *pool;
    unsigned worker_id;
    struct pt_metrics *metrics; /* the worker's; NULL = not counted */
};

struct pt_upcall;

struct pt_upcall_ops {
    /** Write the request head (request line + headers + blank line, without
     *  framing headers, which the call adds) for target t into out.  0 or error. */
    int (*build_head)(struct pt_upcall *c, const struct pt_target *t, struct pt_buf *out);
    /** Request body source, as struct pt_downstream_ops.body_peek/body_consume. */
    int (*body_peek)(struct pt_upcall *c, struct pt_str *data, bool *end);
    void (*body_consume)(struct pt_upcall *c, size_t n);
    /** The response head (views valid during the call only).  101 switches to tunnel mode. */
    void (*on_head)(struct pt_upcall *c, const struct pt_h1_response *resp,
                    const struct pt_h1_meta *meta);
    /** Response body bytes; end with the last.  Return true to pause (then pt_upcall_resume). */
    bool (*on_body)(struct pt_upcall *c, const char *p, size_t n, bool end);
    /** The call failed.  head_delivered tells whether on_head was already called. */
    void (*on_error)(struct pt_upcall *c, enum pt_upcall_error err, bool head_delivered);
};

struct pt_upcall {
    const struct pt_upcall_ops *ops;
    void *ctx; /* the caller's */
    struct pt_upstream_ctx *env;
    const struct pt_service *svc;
    enum pt_method method;
    enum pt_body_kind body; /* request body framing towards the upstream */
    uint64_t content_length;
    bool upgrade;           /* the request asks for a protocol switch */
    struct pt_str hash_key; /* for balance: hash */
    /**
     * Set before pt_upcall_start to call exactly this target (an index into
     * svc->targets): no balancer, no health filter, no retry, nothing
     * recorded in health or metrics.  The active health checker uses it.
     * -1 (the default): the balancer picks.
     */
    ssize_t fixed_target;

    /* per attempt */
    struct pt_upconn *conn;
    ssize_t target;
    uint8_t tries;
    uint8_t ntried;
    uint16_t tried[PT_UPCALL_MAX_TRIES];
    bool reused_conn;
    bool head_written;  /* the head is in wbuf or on the wire */
    bool req_done;      /* the whole request is on the wire */
    bool body_end_seen; /* the source said end */
    bool head_delivered;
    uint32_t head_unconsumed; /* while on_head runs: the head's bytes still in the conn's rbuf */
    bool paused;              /* on_body asked to pause */
    bool tunnel;
    bool done;
    bool acquired; /* least_conn counted */
    enum pt_upcall_error last_error;
    int last_status;
    struct pt_buf wbuf;   /* bytes accepted but not yet on the wire */
    struct pt_buf replay; /* body bytes sent so far, for a retry (while <= REPLAY_MAX) */
    bool replayable;
    uint64_t body_sent;

    /* response */
    size_t parse_last;
    struct pt_h1_meta meta;
    struct pt_chunked chunked;
    uint64_t resp_remaining;
    int status;

    struct pt_timer timer;
    uint64_t read_deadline, write_deadline;
    uint64_t started_ms, head_ms;   /* loop clock: start of the attempt, response head */
    uint64_t started_us;            /* the same start in µs (metrics) */
    bool attempt_counted;           /* this attempt is in the metrics and health already */
    struct pt_health_ticket ticket; /* a half-open breaker admitted this attempt as a probe */
    struct pt_defer retry_defer;
    struct pt_timer backoff_timer; /* retries.backoff: the next attempt waits on it */
};

/** Prepare a call (no I/O yet). */
void pt_upcall_init(struct pt_upcall *c, struct pt_upstream_ctx *env, const struct pt_service *svc,
                    const struct pt_upcall_ops *ops, void *ctx);

/** Start: pick a target and send.  Errors are reported through ops->on_error (maybe at once). */
void pt_upcall_start(struct pt_upcall *c);

/** The body source has more data (after body_peek returned PT_AGAIN). */
void pt_upcall_body_ready(struct pt_upcall *c);

/** The consumer drained: deliver more response body. */
void pt_upcall_resume(struct pt_upcall *c);

/** Abandon the call: no callback follows; the connection is closed unless reusable. */
void pt_upcall_cancel(struct pt_upcall *c);

/** The target the call is on (or last tried); NULL before the first pick. */
const struct pt_target *pt_upcall_target(const struct pt_upcall *c);

/** Human text for an error kind ("connect", "timeout", ...). */
const char *pt_upcall_error_name(enum pt_upcall_error e);

#endif
