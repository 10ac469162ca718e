/*
 * Upstream call state machine.
 *
 *   attempt: pick target → pooled connection or connect (→ TLS handshake,
 *            under the connect timeout) → send head+body
 *            → parse response head → (retry?) → deliver head → stream body
 *            → release the connection to the pool (or close it)
 *
 * Failures before the response head was delivered may be retried on another
 * target, within svc->retry_attempts, when the condition is listed in
 * retries.on and the request can be replayed (no body, or a body short
 * enough to have been kept in c->replay).  With idempotent_only, a
 * non-idempotent request is retried only when nothing was sent (connect
 * failures).  A reused keep-alive connection that turns out to be closed by
 * the server before answering is retried once on a fresh connection without
 * counting as a retry, as nginx does.
 *
 * Callbacks into the caller may end the caller's exchange, but the caller
 * frees its memory only after the current event batch (pt_loop_defer), so
 * `c` stays valid until we return; c->done tells us to stop.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portico/status.h"
#include "core/compiler.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/reqid.h"
#include "net/io.h"
#include "net/sock.h"
#include "net/tls.h"
#include "upstream/balancer.h"
#include "upstream/call.h"
#include "upstream/health.h"

#define MAX_RESPONSE_HEAD 65536
#define READ_MIN_ROOM     2048

static _Thread_local struct pt_h1_header resp_headers[PT_UPCALL_MAX_HEADERS];

static void conn_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events);
static void attempt(struct pt_upcall *c);
static void tls_step(struct pt_upcall *c);
static void send_request(struct pt_upcall *c);
static void read_response(struct pt_upcall *c);

static const char *const error_names[PT_UPERR_COUNT] = {
    "none",    "no healthy target", "connect",          "connect timeout",
    "timeout", "connection reset",  "invalid response", "status",
    "client",  "out of memory",
};

const char *pt_upcall_error_name(enum pt_upcall_error e)
{
    return (unsigned)e < PT_UPERR_COUNT ? error_names[e] : "?";
}

void pt_upcall_init(struct pt_upcall *c, struct pt_upstream_ctx *env, const struct pt_service *svc,
                    const struct pt_upcall_ops *ops, void *ctx)
{
    memset(c, 0, sizeof(*c));
    c->env = env;
    c->svc = svc;
    c->ops = ops;
    c->ctx = ctx;
    c->target = -1;
    c->fixed_target = -1;
    c->replayable = true;
    pt_buf_init(&c->wbuf);
    pt_buf_init(&c->replay);
    pt_timer_init(&c->timer);
    pt_timer_init(&c->backoff_timer);
}

const struct pt_target *pt_upcall_target(const struct pt_upcall *c)
{
    return c->target >= 0 ? &c->svc->targets[c->target] : NULL;
}

/* ---- timers ---- */

static void on_timer(struct pt_loop *loop, struct pt_timer *t);

static void arm_deadline(struct pt_upcall *c, uint64_t ms)
{
    pt_timer_arm(c->env->loop, &c->timer, ms, on_timer);
}

/* ---- ending an attempt ---- */

/*
 * The current attempt ended: count it once, in the metrics (its response
 * status, or 0 when it failed without one) and in the target's health
 * (passive ejection, breaker).  err says how it failed without a response;
 * failures that are not the target's (the client's body, our memory) are
 * counted in the metrics but not held against the target.
 */
static void count_attempt(struct pt_upcall *c, int status, enum pt_upcall_error err)
{
    if (c->attempt_counted || c->target < 0 || c->fixed_target >= 0)
        return;
    c->attempt_counted = true;
    const struct pt_target *t = &c->svc->targets[c->target];
    if (c->env->metrics != NULL) {
        uint64_t now = pt_loop_now_us(c->env->loop);
        pt_metrics_upstream(c->env->metrics, pt_str_cstr(c->svc->name), pt_str_cstr(t->address),
                            status, now > c->started_us ? now - c->started_us : 0);
    }
    bool conn_failure = err == PT_UPERR_CONNECT || err == PT_UPERR_CONNECT_TIMEOUT ||
                        err == PT_UPERR_TIMEOUT || err == PT_UPERR_IO || err == PT_UPERR_PROTOCOL;
    if (status != 0 || conn_failure)
        pt_health_record(c->svc, t, pt_loop_now(c->env->loop), c->env->loop->wall_ms, &c->ticket,
                         status, conn_failure);
    else
        pt_health_release(c->svc, t, &c->ticket);
    c->ticket.probe = false;
}

/* An attempt that ends without an outcome (cancelled, redone) gives its probe slot back. */
static void release_ticket(struct pt_upcall *c)
{
    if (c->ticket.probe && c->target >= 0)
        pt_health_release(c->svc, &c->svc->targets[c->target], &c->ticket);
    c->ticket.probe = false;
}

static void drop_conn(struct pt_upcall *c, bool reusable)
{
    struct pt_upconn *u = c->conn;
    if (u == NULL)
        return;
    c->conn = NULL;
    if (c->acquired) {
        pt_balancer_release(c->svc->balancer, c->env->worker_id, (size_t)c->target);
        c->acquired = false;
    }
    if (reusable)
        pt_upconn_release(u, c->svc->keepalive_max_idle, c->svc->keepalive_idle_timeout_ms);
    else
        pt_upconn_close(u);
}

static void finish(struct pt_upcall *c)
{
    pt_timer_disarm(c->env->loop, &c->timer);
    pt_timer_disarm(c->env->loop, &c->backoff_timer);
    pt_loop_cancel_defer(c->env->loop, &c->retry_defer);
    pt_buf_free(&c->wbuf);
    pt_buf_free(&c->replay);
    c->done = true;
}

static bool status_listed(const struct pt_service *s, int status)
{
    return pt_service_retries_status(s, status);
}

static bool condition_listed(const struct pt_upcall *c, enum pt_upcall_error err)
{
    const struct pt_service *s = c->svc;
    switch (err) {
    case PT_UPERR_CONNECT:
        return (s->retry_on & PT_RETRY_ON_CONNECT_ERROR) != 0;
    case PT_UPERR_CONNECT_TIMEOUT:
        return (s->retry_on & (PT_RETRY_ON_CONNECT_ERROR | PT_RETRY_ON_TIMEOUT)) != 0;
    case PT_UPERR_TIMEOUT:
        return (s->retry_on & PT_RETRY_ON_TIMEOUT) != 0;
    case PT_UPERR_IO:
    case PT_UPERR_PROTOCOL:
        return status_listed(s, 502);
    case PT_UPERR_STATUS:
        return status_listed(s, c->status);
    default:
        return false;
    }
}

/* Could the request be sent again from the start? */
static bool replayable(const struct pt_upcall *c)
{
    return c->body == PT_BODY_NONE || c->body_sent == 0 || c->replayable;
}

/*
 * Decide to retry after err.  Called only where the answer is acted upon:
 * true takes a retry from the service's budget.
 */
static bool can_retry(const struct pt_upcall *c, enum pt_upcall_error err)
{
    if (c->head_delivered || c->tunnel || c->fixed_target >= 0)
        return false;
    if ((unsigned)c->tries > c->svc->retry_attempts || c->tries >= PT_UPCALL_MAX_TRIES)
        return false;
    if (!condition_listed(c, err) || !replayable(c))
        return false;
    bool nothing_sent = err == PT_UPERR_CONNECT || err == PT_UPERR_CONNECT_TIMEOUT;
    if (c->svc->retry_idempotent_only && !pt_method_idempotent(c->method) && !nothing_sent)
        return false;
    if (!pt_budget_take_retry(c->svc, c->env->worker_id, pt_loop_now(c->env->loop))) {
        pt_log_ratelimited(PT_LOG_WARN, 1, "upstream %s: retry budget spent; not retrying",
                           c->svc->name);
        return false;
    }
    return true;
}

static void retry_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    attempt(arg);
}

static void backoff_cb(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    attempt(PT_CONTAINER_OF(t, struct pt_upcall, backoff_timer));
}

/* Retry after retries.backoff (full jitter): the c->tries-th retry. */
static void schedule_retry(struct pt_upcall *c)
{
    uint64_t ms = pt_backoff_ms(c->svc, c->tries, pt_random_u64());
    if (ms == 0)
        pt_loop_defer(c->env->loop, &c->retry_defer, retry_task, c);
    else
        pt_timer_arm(c->env->loop, &c->backoff_timer, ms, backoff_cb);
}

static void fail(struct pt_upcall *c, enum pt_upcall_error err)
{
    bool stale = c->reused_conn && err == PT_UPERR_IO && !c->head_delivered &&
                 (c->conn == NULL || pt_buf_len(&c->conn->rbuf) == 0) && replayable(c);
    drop_conn(c, false);
    c->last_error = err;
    if (!stale) /* a pooled connection found dead is not an attempt (not counted as a try) */
        count_attempt(c, 0, err);
    if (stale) {
        /* The server closed an idle keep-alive connection as we reused it. */
        c->reused_conn = false;
        c->ntried--; /* the same target may be picked again */
        c->tries--;
        pt_loop_defer(c->env->loop, &c->retry_defer, retry_task, c);
        return;
    }
    if (can_retry(c, err)) {
        pt_log_ratelimited(PT_LOG_WARN, 10, "upstream %s (%s): %s; retrying", c->svc->name,
                           c->target >= 0 ? c->svc->targets[c->target].address : "-",
                           pt_upcall_error_name(err));
        schedule_retry(c);
        return;
    }
    finish(c);
    c->ops->on_error(c, err, c->head_delivered);
}

/* ---- choosing a target ---- */

/* Healthy (active checks, ejection, breaker) and not refused by admission this attempt. */
static bool healthy(const struct pt_upcall *c, size_t idx, uint64_t refused)
{
    return (idx >= 64 || !(refused >> idx & 1)) &&
           pt_health_eligible(c->svc, &c->svc->targets[idx], pt_loop_now(c->env->loop));
}

struct pick_ctx {
    const struct pt_upcall *c;
    uint64_t refused; /* targets whose breaker refused admission during this attempt */
    bool skip_tried;
};

static bool eligible(void *ctx, size_t idx)
{
    const struct pick_ctx *p = ctx;
    const struct pt_upcall *c = p->c;
    if (p->skip_tried)
        for (unsigned i = 0; i < c->ntried; i++)
            if (c->tried[i] == idx)
                return false;
    return healthy(c, idx, p->refused);
}

/*
 * Choose the target of this attempt: a healthy one not tried yet, else
 * (every healthy target tried) any healthy one again; the breaker then
 * admits it (a half-open breaker only lets a few probes through).  -1 when
 * no target can take the request.
 */
static ssize_t choose(struct pt_upcall *c)
{
    const struct pt_service *s = c->svc;
    if (c->fixed_target >= 0)
        return (size_t)c->fixed_target < s->ntargets ? c->fixed_target : -1;
    struct pick_ctx p = {c, 0, true};
    for (size_t guard = 0; guard <= s->ntargets; guard++) {
        p.skip_tried = true;
        ssize_t t = pt_balancer_pick(s->balancer, c->env->worker_id, c->hash_key, eligible, &p);
        if (t < 0 && c->ntried > 0) { /* every target tried: go round again */
            p.skip_tried = false;
            t = pt_balancer_pick(s->balancer, c->env->worker_id, c->hash_key, eligible, &p);
        }
        if (t < 0)
            return -1;
        if (pt_health_admit(s, &s->targets[t], pt_loop_now(c->env->loop), &c->ticket))
            return t;
        if (t >= 64)
            return -1; /* cannot remember the refusal: give up rather than loop */
        p.refused |= (uint64_t)1 << t;
    }
    return -1;
}

static void attempt(struct pt_upcall *c)
{
    const struct pt_service *s = c->svc;
    release_ticket(c); /* a stale pooled connection's attempt being redone */
    ssize_t t = choose(c);
    if (t < 0) {
        finish(c);
        c->ops->on_error(c, c->tries == 0 ? PT_UPERR_NO_TARGET : c->last_error, false);
        return;
    }
    c->target = t;
    c->tries++;
    if (c->ntried < PT_UPCALL_MAX_TRIES)
        c->tried[c->ntried++] = (uint16_t)t;
    c->head_written = false;
    c->req_done = false;
    c->body_end_seen = c->body == PT_BODY_NONE;
    c->parse_last = 0;
    c->started_ms = pt_loop_now(c->env->loop);
    c->started_us = pt_loop_now_us(c->env->loop);
    c->attempt_counted = false;
    pt_buf_free(&c->wbuf);

    const struct pt_target *tg = &s->targets[t];
    struct pt_pool_bucket *b = pt_pool_bucket_tls(c->env->pool, (const struct sockaddr *)&tg->addr,
                                                  tg->addrlen, s->tls != NULL ? tg->pool_key : 0);
    if (b == NULL) {
        finish(c);
        c->ops->on_error(c, PT_UPERR_NOMEM, false);
        return;
    }
    if (c->fixed_target < 0) {
        pt_balancer_acquire(s->balancer, c->env->worker_id, (size_t)t);
        c->acquired = true;
    }
    struct pt_upconn *u = pt_pool_take(c->env->pool, b);
    c->reused_conn = u != NULL;
    if (u == NULL) {
        u = pt_upconn_open(c->env->pool, b, conn_cb);
        if (u == NULL) {
            int e = errno;
            pt_log_ratelimited(PT_LOG_WARN, 10, "upstream %s: connect to %s: %s", s->name,
                               tg->address, strerror(e));
            fail(c, e == ENOMEM ? PT_UPERR_NOMEM : PT_UPERR_CONNECT);
            return;
        }
        if (s->tls != NULL) {
            u->tls = pt_tls_connect(s->tls, u->io.fd, tg->tls_name, pt_pool_bucket_session(b));
            u->handshaking = true;
        }
    }
    u->call = c;
    c->conn = u;
    if (u->handshaking && u->tls == NULL) {
        fail(c, PT_UPERR_NOMEM);
        return;
    }
    if (u->connecting || u->handshaking) {
        arm_deadline(c, s->connect_timeout_ms); /* covers the TLS handshake too */
        if (!u->connecting)
            tls_step(c);
        return;
    }
    send_request(c);
}

/* ---- TLS ---- */

static ssize_t conn_read(struct pt_upconn *u, size_t cap, bool *drained)
{
    if (u->tls != NULL)
        return pt_tls_read(u->tls, &u->rbuf, READ_MIN_ROOM, cap, drained);
    return pt_io_read(u->io.fd, &u->rbuf, READ_MIN_ROOM, cap, drained);
}

static int conn_sendv(struct pt_upcall *c, const struct iovec *iov, size_t n, size_t *written)
{
    struct pt_upconn *u = c->conn;
    if (u->tls != NULL)
        return pt_tls_sendv(u->tls, &c->wbuf, iov, n, written);
    return pt_io_sendv(u->io.fd, &c->wbuf, iov, n, written);
}

/* One step of the handshake on a connected socket; then the request goes out. */
static void tls_step(struct pt_upcall *c)
{
    struct pt_upconn *u = c->conn;
    int r = pt_tls_handshake(u->tls);
    if (r == PT_TLS_WANT_READ) {
        u->readable = false;
        return;
    }
    if (r == PT_TLS_WANT_WRITE)
        return;
    if (r < 0) {
        pt_log_ratelimited(PT_LOG_WARN, 10, "upstream %s: TLS handshake with %s failed: %s",
                           c->svc->name, c->svc->targets[c->target].address, pt_tls_error(u->tls));
        fail(c, PT_UPERR_CONNECT);
        return;
    }
    u->handshaking = false;
    u->readable = true; /* the server may have sent more (TLS 1.3 tickets) */
    send_request(c);
}

void pt_upcall_start(struct pt_upcall *c)
{
    c->body_end_seen = c->body == PT_BODY_NONE;
    if (c->fixed_target < 0)
        pt_budget_request(c->svc, c->env->worker_id, pt_loop_now(c->env->loop));
    attempt(c);
}

/* ---- sending ---- */

static int append_framing(struct pt_upcall *c)
{
    char line[64];
    int n;
    if (c->body == PT_BODY_LENGTH) {
        n = (int)PT_PUT_LIT(line, "Content-Length: ");
        n += (int)pt_fmt_u64(line + n, c->content_length);
        n += (int)PT_PUT_LIT(line + n, "\r\n\r\n");
    } else if (c->body == PT_BODY_STREAM)
        n = snprintf(line, sizeof(line), "Transfer-Encoding: chunked\r\n\r\n");
    else
        n = snprintf(line, sizeof(line), "\r\n");
    if (pt_buf_append(&c->wbuf, line, (size_t)n, SIZE_MAX) != 0)
        return PT_ERR_NOMEM;
    /* a retry starts with the body bytes sent so far */
    size_t rl = pt_buf_len(&c->replay);
    if (rl > 0) {
        if (c->body == PT_BODY_STREAM) {
            n = snprintf(line, sizeof(line), "%zx\r\n", rl);
            if (pt_buf_append(&c->wbuf, line, (size_t)n, SIZE_MAX) != 0)
                return PT_ERR_NOMEM;
        }
        if (pt_buf_append(&c->wbuf, pt_buf_head(&c->replay), rl, SIZE_MAX) != 0)
            return PT_ERR_NOMEM;
        if (c->body == PT_BODY_STREAM && pt_buf_append(&c->wbuf, "\r\n", 2, SIZE_MAX) != 0)
            return PT_ERR_NOMEM;
    }
    if (c->body_end_seen && c->body == PT_BODY_STREAM && c->body_sent > 0 &&
        pt_buf_append(&c->wbuf, "0\r\n\r\n", 5, SIZE_MAX) != 0)
        return PT_ERR_NOMEM;
    return 0;
}

static void keep_for_replay(struct pt_upcall *c, struct pt_str data)
{
    if (!c->replayable || data.len == 0)
        return;
    if (pt_buf_len(&c->replay) + data.len > PT_UPCALL_REPLAY_MAX ||
        pt_buf_append(&c->replay, data.ptr, data.len, PT_UPCALL_REPLAY_MAX) != 0) {
        c->replayable = false;
        pt_buf_free(&c->replay);
    }
}

static void send_request(struct pt_upcall *c)
{
    struct pt_upconn *u = c->conn;
    if (!c->head_written) {
        if (c->ops->build_head(c, &c->svc->targets[c->target], &c->wbuf) != 0 ||
            append_framing(c) != 0) {
            fail(c, PT_UPERR_NOMEM);
            return;
        }
        c->head_written = true;
    }
    for (;;) {
        struct iovec iov[3];
        size_t n = 0;
        struct pt_str data = {NULL, 0};
        bool end = false, have = false;
        char hex[24];
        if (!c->body_end_seen && pt_buf_len(&c->wbuf) < PT_BUF_SIZE) {
            int r = c->ops->body_peek(c, &data, &end);
            if (r == 0) {
                have = true;
                if (c->body == PT_BODY_STREAM && !c->tunnel) {
                    if (data.len > 0) {
                        iov[n].iov_base = hex;
                        size_t hl = pt_fmt_hex(hex, data.len);
                        hex[hl++] = '\r';
                        hex[hl++] = '\n';
                        iov[n++].iov_len = hl;
                        iov[n].iov_base = (void *)data.ptr;
                        iov[n++].iov_len = data.len;
                    }
                    if (end) {
                        iov[n].iov_base = (void *)(data.len > 0 ? "\r\n0\r\n\r\n" : "0\r\n\r\n");
                        iov[n++].iov_len = data.len > 0 ? 7 : 5;
                    } else if (data.len > 0) {
                        iov[n].iov_base = (void *)"\r\n";
                        iov[n++].iov_len = 2;
                    }
                } else if (data.len > 0) {
                    iov[n].iov_base = (void *)data.ptr;
                    iov[n++].iov_len = data.len;
                }
                if (!c->tunnel)
                    keep_for_replay(c, data);
            } else if (r != PT_AGAIN) {
                fail(c, PT_UPERR_CLIENT);
                return;
            }
        }
        if (pt_buf_len(&c->wbuf) == 0 && n == 0) {
            if (have && end)
                c->body_end_seen = true;
            if (c->body_end_seen) {
                if (c->tunnel) {
                    pt_tls_close_notify(u->tls);
                    shutdown(u->io.fd, SHUT_WR);
                }
                if (!c->req_done) {
                    c->req_done = true;
                    arm_deadline(c, c->svc->read_timeout_ms);
                }
            }
            return; /* waiting for the source (pt_upcall_body_ready) */
        }
        size_t written;
        int r = conn_sendv(c, iov, n, &written);
        if (have) {
            c->body_sent += data.len;
            c->ops->body_consume(c, data.len);
            if (end)
                c->body_end_seen = true;
        }
        if (r < 0) {
            fail(c, r == PT_ERR_NOMEM ? PT_UPERR_NOMEM : PT_UPERR_IO);
            return;
        }
        if (r == 1) {
            arm_deadline(c, c->svc->write_timeout_ms);
            return; /* EPOLLOUT resumes us */
        }
        if (c->done || c->conn != u)
            return;
    }
}

void pt_upcall_body_ready(struct pt_upcall *c)
{
    if (c->done || c->conn == NULL || c->conn->connecting || !c->head_written)
        return;
    send_request(c);
}

/* ---- receiving ---- */

static void deliver_end(struct pt_upcall *c, const char *p, size_t n)
{
    /* The response is complete: give the connection back before telling the
     * caller, so that a follow-up request can reuse it. */
    struct pt_upconn *u = c->conn;
    bool reusable = c->req_done && c->meta.keep_alive && !c->tunnel;
    bool paused = c->ops->on_body(c, p, n, true);
    (void)paused;
    if (u != NULL && c->conn == u)
        pt_buf_consume(&u->rbuf, n);
    drop_conn(c, reusable);
    finish(c);
}

static int on_head(struct pt_upcall *c, size_t head_len, const struct pt_h1_response *resp)
{
    struct pt_upconn *u = c->conn;
    const char *why = NULL;
    if (pt_h1_response_meta(resp, c->method, &c->meta, &why) != 0) {
        pt_log_ratelimited(PT_LOG_WARN, 10, "upstream %s (%s): invalid response: %s", c->svc->name,
                           c->svc->targets[c->target].address, why ? why : "?");
        fail(c, PT_UPERR_PROTOCOL);
        return -1;
    }
    c->status = resp->status;
    c->last_status = resp->status;
    count_attempt(c, resp->status, PT_UPERR_NONE);
    if (status_listed(c->svc, resp->status) && can_retry(c, PT_UPERR_STATUS)) {
        c->last_error = PT_UPERR_STATUS;
        drop_conn(c, false);
        schedule_retry(c);
        return -1;
    }
    if (resp->status == 101) {
        if (!c->upgrade) {
            fail(c, PT_UPERR_PROTOCOL);
            return -1;
        }
        c->tunnel = true;
        c->meta.body = PT_H1_BODY_UNTIL_CLOSE;
    }
    c->head_delivered = true;
    c->head_ms = pt_loop_now(c->env->loop);
    c->head_unconsumed = (uint32_t)head_len;
    c->ops->on_head(c, resp, &c->meta);
    c->head_unconsumed = 0;
    if (c->done || c->conn != u)
        return -1;
    pt_buf_consume(&u->rbuf, head_len);
    c->resp_remaining = c->meta.content_length;
    pt_chunked_init(&c->chunked);
    if (c->tunnel) {
        /* now the client's bytes flow to the server raw, until either side closes */
        c->req_done = false;
        c->body = PT_BODY_STREAM;
        c->body_end_seen = false;
        c->replayable = false;
        pt_buf_free(&c->replay);
        send_request(c);
        if (c->done || c->conn != u)
            return -1;
    }
    return 0;
}

/* Deliver what the buffer holds of the body.  Returns -1 when the call ended or paused. */
static int on_body_bytes(struct pt_upcall *c)
{
    struct pt_upconn *u = c->conn;
    for (;;) {
        size_t avail = pt_buf_len(&u->rbuf);
        const char *p = pt_buf_head(&u->rbuf);
        switch (c->meta.body) {
        case PT_H1_BODY_NONE:
            deliver_end(c, NULL, 0);
            return -1;
        case PT_H1_BODY_LENGTH: {
            if (c->resp_remaining == 0) {
                deliver_end(c, NULL, 0);
                return -1;
            }
            if (avail == 0)
                return 0;
            size_t k = avail < c->resp_remaining ? avail : (size_t)c->resp_remaining;
            c->resp_remaining -= k;
            if (c->resp_remaining == 0) {
                deliver_end(c, p, k);
                return -1;
            }
            c->paused = c->ops->on_body(c, p, k, false);
            if (c->done || c->conn != u)
                return -1;
            pt_buf_consume(&u->rbuf, k);
            break;
        }
        case PT_H1_BODY_CHUNKED: {
            if (avail == 0)
                return 0;
            struct pt_str data;
            ssize_t k = pt_chunked_decode(&c->chunked, p, avail, &data);
            if (k < 0) {
                fail(c, PT_UPERR_PROTOCOL);
                return -1;
            }
            if (c->chunked.done) {
                /* deliver the data, then end; consume everything decoded */
                c->paused = data.len > 0 ? c->ops->on_body(c, data.ptr, data.len, false) : false;
                if (c->done || c->conn != u)
                    return -1;
                pt_buf_consume(&u->rbuf, (size_t)k);
                deliver_end(c, NULL, 0);
                return -1;
            }
            if (data.len > 0) {
                c->paused = c->ops->on_body(c, data.ptr, data.len, false);
                if (c->done || c->conn != u)
                    return -1;
            }
            pt_buf_consume(&u->rbuf, (size_t)k);
            if (k == 0)
                return 0;
            break;
        }
        case PT_H1_BODY_UNTIL_CLOSE:
            if (avail == 0)
                return 0;
            c->paused = c->ops->on_body(c, p, avail, false);
            if (c->done || c->conn != u)
                return -1;
            pt_buf_consume(&u->rbuf, avail);
            break;
        }
        if (c->paused) {
            pt_timer_disarm(c->env->loop, &c->timer);
            return -1;
        }
    }
}

static void on_eof(struct pt_upcall *c)
{
    if (c->head_delivered && c->meta.body == PT_H1_BODY_UNTIL_CLOSE) {
        deliver_end(c, NULL, 0);
        return;
    }
    fail(c, PT_UPERR_IO);
}

static void read_response(struct pt_upcall *c)
{
    struct pt_upconn *u = c->conn;
    while (u->readable && !c->paused && !c->done && c->conn == u) {
        bool drained;
        size_t cap = c->head_delivered ? PT_BUF_SIZE : MAX_RESPONSE_HEAD;
        ssize_t r = conn_read(u, cap, &drained);
        if (r == PT_AGAIN) {
            u->readable = false;
            break;
        }
        if (r == PT_ERR_TOO_LARGE) { /* response head too large */
            fail(c, PT_UPERR_PROTOCOL);
            return;
        }
        if (r < 0) {
            fail(c, PT_UPERR_IO);
            return;
        }
        if (drained && !u->rdhup)
            u->readable = false;
        if (r == 0) {
            on_eof(c);
            return;
        }
        if (!c->tunnel || c->head_delivered)
            arm_deadline(c, c->svc->read_timeout_ms);
        while (!c->head_delivered) {
            struct pt_h1_response resp;
            int n = pt_h1_parse_response(pt_buf_head(&u->rbuf), pt_buf_len(&u->rbuf), c->parse_last,
                                         &resp, resp_headers, PT_UPCALL_MAX_HEADERS);
            if (n == PT_PARSE_PARTIAL) {
                c->parse_last = pt_buf_len(&u->rbuf);
                break;
            }
            if (n < 0) {
                pt_log_ratelimited(PT_LOG_WARN, 10, "upstream %s (%s): malformed response head",
                                   c->svc->name, c->svc->targets[c->target].address);
                fail(c, PT_UPERR_PROTOCOL);
                return;
            }
            c->parse_last = 0;
            if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
                pt_buf_consume(&u->rbuf, (size_t)n); /* interim response: skip */
                continue;
            }
            if (on_head(c, (size_t)n, &resp) != 0)
                return;
        }
        if (c->head_delivered && on_body_bytes(c) != 0)
            return;
    }
}

void pt_upcall_resume(struct pt_upcall *c)
{
    if (c->done || c->conn == NULL || !c->paused)
        return;
    c->paused = false;
    if (on_body_bytes(c) != 0)
        return;
    arm_deadline(c, c->svc->read_timeout_ms);
    read_response(c);
}

/* ---- events ---- */

static void on_timer(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct pt_upcall *c = PT_CONTAINER_OF(t, struct pt_upcall, timer);
    if (c->done || c->conn == NULL)
        return;
    if (c->conn->connecting || c->conn->handshaking) {
        pt_log_ratelimited(PT_LOG_WARN, 10, "upstream %s: %s to %s timed out", c->svc->name,
                           c->conn->connecting ? "connect" : "TLS handshake",
                           c->svc->targets[c->target].address);
        fail(c, PT_UPERR_CONNECT_TIMEOUT);
        return;
    }
    if (c->tunnel) { /* an idle tunnel: close both ends quietly */
        fail(c, PT_UPERR_TIMEOUT);
        return;
    }
    pt_log_ratelimited(PT_LOG_WARN, 10, "upstream %s (%s): timed out", c->svc->name,
                       c->svc->targets[c->target].address);
    fail(c, PT_UPERR_TIMEOUT);
}

static void conn_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events)
{
    (void)loop;
    struct pt_upconn *u = PT_CONTAINER_OF(io, struct pt_upconn, io);
    if (u->closed)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        u->readable = true;
    if (events & (EPOLLRDHUP | EPOLLHUP))
        u->rdhup = true;
    struct pt_upcall *c = u->call;
    if (c == NULL) { /* idle in the pool: the server closed it or spoke out of turn */
        if (u->readable)
            pt_upconn_close(u);
        return;
    }
    if (u->connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = pt_sock_error(io->fd);
        if (err != 0) {
            pt_log_ratelimited(PT_LOG_WARN, 10, "upstream %s: connect to %s: %s", c->svc->name,
                               c->svc->targets[c->target].address, strerror(err));
            fail(c, PT_UPERR_CONNECT);
            return;
        }
        u->connecting = false;
        u->readable = false;
        if (u->handshaking)
            tls_step(c);
        else
            send_request(c);
        if (c->done || c->conn != u)
            return;
    } else if (u->handshaking) {
        tls_step(c);
        if (c->done || c->conn != u)
            return;
    } else if ((events & EPOLLOUT) && (pt_buf_len(&c->wbuf) > 0 || !c->req_done)) {
        send_request(c);
        if (c->done || c->conn != u)
            return;
    }
    if (u->readable && !c->paused)
        read_response(c);
}

/*
 * A caller that answers from the head of a response without a body (the
 * cache, refreshed by a 304) cancels with the connection in a clean state:
 * the whole response is that head.  Keep the connection for the next call.
 */
static bool cancel_leaves_conn_clean(struct pt_upcall *c)
{
    struct pt_upconn *u = c->conn;
    if (u == NULL || c->head_unconsumed == 0 || c->tunnel || !c->req_done || !c->meta.keep_alive ||
        c->meta.body != PT_H1_BODY_NONE || pt_buf_len(&u->rbuf) != c->head_unconsumed)
        return false;
    pt_buf_consume(&u->rbuf, c->head_unconsumed);
    c->head_unconsumed = 0;
    return true;
}

void pt_upcall_cancel(struct pt_upcall *c)
{
    if (c->done)
        return;
    if (!c->attempt_counted)
        release_ticket(c);
    drop_conn(c, cancel_leaves_conn_clean(c));
    finish(c);
}
