/*
 * HTTP/1.1 server connections.
 *
 * A connection is in one of four states:
 *
 *   HANDSHAKE  TLS listeners only: the TLS handshake runs (under the
 *            client_header timeout); a plain HTTP request gets a 400;
 *   HEAD     waiting for (or parsing) the next request head; the timer is the
 *            idle timeout while the buffer is empty and the header timeout
 *            once bytes of a head have arrived;
 *   ACTIVE   an exchange runs; the codec reads the request body when the
 *            proxy asks for it and writes what the proxy sends;
 *   CLOSING  the last response is going out; then the write side is shut and
 *            input is discarded until the client closes (lingering close, so
 *            that an unread request body does not turn into a reset that
 *            destroys the response).
 *
 * The socket is registered once, edge-triggered, for input and output.
 * `readable` remembers an input edge that has not been read to a short read
 * yet, so input is only read when it is wanted (back-pressure) and never
 * lost.  Responses are written with one writev of the queued head and the
 * body bytes; whatever the socket does not take waits in wbuf and the proxy
 * is told to pause until it drains.
 *
 * Memory: an idle keep-alive connection holds no buffer (both go back to the
 * worker's pool when empty) and no exchange.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/compiler.h"
#include "core/log.h"
#include "core/metrics.h"
#include "config/snapshot.h"
#include "http/chunked.h"
#include "http/h1.h"
#include "http/problem.h"
#include "http/reqid.h"
#include "net/io.h"
#include "net/sock.h"
#include "net/tls.h"
#include "proxy/h1_server.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"
#include "router/path.h"

#define MAX_REQUEST_HEADERS 128
#define READ_MIN_ROOM       2048
#define LINGER_MS           2000

enum conn_state { ST_HEAD = 0, ST_ACTIVE, ST_CLOSING, ST_HANDSHAKE };
enum body_mode { BODY_NONE = 0, BODY_LENGTH, BODY_CHUNKED, BODY_TUNNEL };
enum timer_kind { TM_NONE = 0, TM_IDLE, TM_HEADER, TM_BODY, TM_SEND, TM_LINGER, TM_HANDSHAKE };

/* Reading one request body; lives in the exchange's arena so that an idle
 * connection does not carry it. */
struct h1_body {
    uint64_t remaining;          /* BODY_LENGTH */
    uint64_t total;              /* BODY_CHUNKED: decoded so far */
    uint32_t dec_off;            /* BODY_CHUNKED: bytes of rbuf the decoder has been through */
    uint32_t pend_off, pend_len; /* BODY_CHUNKED: decoded payload waiting in rbuf */
    struct pt_chunked chunked;
};

struct pt_h1_conn {
    struct pt_io io;
    struct pt_timer timer;
    struct pt_buf rbuf;
    struct pt_buf wbuf;
    struct pt_worker *w;
    struct pt_h1_conn *next, *prev;
    struct pt_exchange *ex;
    struct pt_tls_conn *tls; /* NULL: plain HTTP */
    struct pt_defer defer;   /* finishing an exchange, then freeing the connection */
    struct pt_ip peer;
    uint16_t peer_port;
    uint8_t state;
    uint8_t body_mode;
    uint8_t timer_kind;
    bool readable;
    bool rdhup;     /* the client shut its side: read to the end of stream, not to a short read */
    bool eof;       /* the client shut its write side */
    bool keepalive; /* may serve another request after this one */
    bool want_body; /* the proxy waits for body bytes */
    bool sent_continue;
    bool resp_chunked;
    bool head_only;
    bool response_done;
    bool broken; /* the client is gone (write error, reset) */
    bool closed;
    uint32_t requests;
    uint32_t parse_last;
    uint32_t head_queued; /* bytes of a response head alone in wbuf, not yet written; 0: none */
    uint64_t head_started;
    struct h1_body *body; /* request body state, in the exchange's arena; NULL without a body */
};

static _Thread_local struct pt_h1_header req_headers[MAX_REQUEST_HEADERS];

static void conn_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events);
static void process_input(struct pt_h1_conn *c);
static void conn_close(struct pt_h1_conn *c);
static void begin_close(struct pt_h1_conn *c);
static void on_timer(struct pt_loop *loop, struct pt_timer *t);

static const struct pt_server_conf *server_conf(const struct pt_h1_conn *c)
{
    return &c->w->snap->server;
}

static void arm(struct pt_h1_conn *c, enum timer_kind kind, uint64_t deadline)
{
    c->timer_kind = (uint8_t)kind;
    pt_timer_arm_at(&c->w->loop, &c->timer, deadline, on_timer);
}

static void disarm(struct pt_h1_conn *c)
{
    c->timer_kind = TM_NONE;
    pt_timer_disarm(&c->w->loop, &c->timer);
}

struct pt_h1_conn *pt_h1_conn_next(struct pt_h1_conn *c)
{
    return c->next;
}

/* ---- the socket, plain or TLS (the same semantics: net/io.h) ---- */

static ssize_t conn_read(struct pt_h1_conn *c, size_t min_room, size_t cap, bool *drained)
{
    if (c->tls != NULL)
        return pt_tls_read(c->tls, &c->rbuf, min_room, cap, drained);
    return pt_io_read(c->io.fd, &c->rbuf, min_room, cap, drained);
}

static int conn_sendv(struct pt_h1_conn *c, const struct iovec *iov, size_t n, size_t *written)
{
    if (c->tls != NULL)
        return pt_tls_sendv(c->tls, &c->wbuf, iov, n, written);
    return pt_io_sendv(c->io.fd, &c->wbuf, iov, n, written);
}

/* ---- writing ---- */

/* Push out wbuf plus iov; arm the send timeout when bytes are left over. */
static int write_out(struct pt_h1_conn *c, const struct iovec *iov, size_t n)
{
    if (c->broken || c->closed)
        return PT_ERR_IO;
    size_t written;
    int r = conn_sendv(c, iov, n, &written);
    if (c->ex != NULL)
        c->ex->bytes_out += written;
    if (r < 0) {
        c->broken = true;
        return r;
    }
    if (r == 1)
        arm(c, TM_SEND, pt_loop_now(&c->w->loop) + server_conf(c)->send_timeout_ms);
    else if (c->timer_kind == TM_SEND)
        disarm(c);
    return r;
}

static void free_conn(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct pt_h1_conn *c = arg;
    pt_buf_free(&c->rbuf);
    pt_buf_free(&c->wbuf);
    free(c);
}

static void conn_close(struct pt_h1_conn *c)
{
    if (c->closed)
        return;
    if (c->ex != NULL) {
        struct pt_exchange *ex = c->ex;
        c->ex = NULL;
        if (!ex->finished)
            pt_proxy_on_client_gone(ex);
        pt_exchange_free(ex);
        c->body = NULL; /* it lived in the exchange's arena */
    }
    pt_loop_cancel_defer(&c->w->loop, &c->defer);
    disarm(c);
    if (c->tls != NULL) {
        if (!c->broken)
            pt_tls_close_notify(c->tls);
        pt_tls_free(c->tls);
        c->tls = NULL;
    }
    close(c->io.fd);
    c->closed = true;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pt_worker_conn_removed(c->w);
    pt_loop_defer(&c->w->loop, &c->defer, free_conn, c);
}

/* The client is gone or broke the protocol mid-exchange. */
static void client_gone_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    conn_close(arg);
}

static void schedule_close(struct pt_h1_conn *c)
{
    pt_loop_defer(&c->w->loop, &c->defer, client_gone_task, c);
}

/* Shut our side once everything is written, then linger for the client's FIN. */
static void begin_close(struct pt_h1_conn *c)
{
    c->state = ST_CLOSING;
    c->keepalive = false;
    if (pt_buf_len(&c->wbuf) > 0) {
        arm(c, TM_SEND, pt_loop_now(&c->w->loop) + server_conf(c)->send_timeout_ms);
        return;
    }
    if (c->eof || c->broken) {
        conn_close(c);
        return;
    }
    if (c->tls != NULL)
        pt_tls_close_notify(c->tls);
    shutdown(c->io.fd, SHUT_WR);
    pt_buf_free(&c->rbuf);
    arm(c, TM_LINGER, pt_loop_now(&c->w->loop) + LINGER_MS);
    c->readable = true; /* drain what is there already */
    char sink[4096];
    for (;;) {
        ssize_t r = recv(c->io.fd, sink, sizeof(sink), 0);
        if (r > 0)
            continue;
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            conn_close(c);
        else
            c->readable = false;
        return;
    }
}

/* An answer produced before any exchange exists (malformed head): problem+json, then close. */
/*
 * A request refused before it became an exchange (malformed head, 431, 408)
 * still goes to the global log plugins (access log): a short-lived exchange
 * carries what is known about it.  Metrics count it separately (an exchange
 * without a method is not counted again).
 */
static void log_early_error(struct pt_h1_conn *c, int status, const char *detail, const char *id,
                            uint64_t bytes_out)
{
    if (c->w->snap->global_chain.n == 0)
        return;
    struct pt_exchange *ex = pt_exchange_new(c->w);
    if (ex == NULL)
        return;
    ex->chain = &ex->snap->global_chain;
    ex->peer = c->peer;
    ex->peer_port = c->peer_port;
    ex->client_ip = c->peer;
    ex->tls = c->tls != NULL;
    ex->start_ms = c->head_started ? c->head_started : pt_loop_now(&c->w->loop);
    ex->start_us = pt_loop_now_us(&c->w->loop);
    ex->status = status;
    ex->error = detail;
    ex->bytes_in = pt_buf_len(&c->rbuf);
    ex->bytes_out = bytes_out;
    ex->finished = true;
    pt_traceparent_new(&ex->trace, false);
    memcpy(ex->request_id, id, PT_REQID_GEN_LEN);
    ex->request_id_len = PT_REQID_GEN_LEN;
    pt_exchange_free(ex);
}

static void send_early_error(struct pt_h1_conn *c, int status, const char *detail)
{
    char id[PT_REQID_GEN_LEN];
    pt_reqid_generate(id);
    char body[512];
    size_t blen = pt_problem_json(body, sizeof(body), status, NULL, pt_str_cstr(detail),
                                  pt_str_make(id, sizeof(id)));
    if (blen >= sizeof(body))
        blen = sizeof(body) - 1;
    char head[256];
    int hlen = snprintf(head, sizeof(head),
                        "HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\n"
                        "Content-Length: %zu\r\nX-Request-Id: %.*s\r\nConnection: close\r\n\r\n",
                        status, pt_http_reason(status), blen, (int)sizeof(id), id);
    struct iovec iov[2] = {{head, (size_t)hlen}, {body, blen}};
    pt_log_ratelimited(PT_LOG_INFO, 5, "client %u: %d %s", c->peer_port, status, detail);
    /* counted as a request no route matched: route="" (there is no exchange) */
    uint64_t now = pt_loop_now(&c->w->loop);
    uint64_t ms = c->head_started != 0 && now > c->head_started ? now - c->head_started : 0;
    pt_metrics_request(c->w->metrics, PT_STR_NULL, PT_STR_NULL, PT_STR_NULL, status, ms * 1000,
                       pt_buf_len(&c->rbuf), (uint64_t)hlen + blen);
    c->keepalive = false;
    int w = write_out(c, iov, 2);
    log_early_error(c, status, detail, id, (uint64_t)hlen + blen);
    if (w < 0) {
        conn_close(c);
        return;
    }
    begin_close(c);
}

/* ---- downstream ops (what the proxy calls) ---- */

static struct pt_h1_conn *conn_of(struct pt_exchange *ex)
{
    return ex->down_ctx;
}

static bool request_body_complete(const struct pt_h1_conn *c)
{
    switch (c->body_mode) {
    case BODY_NONE:
        return true;
    case BODY_LENGTH:
        return c->body->remaining == 0;
    case BODY_CHUNKED:
        return c->body->chunked.done && c->body->pend_len == 0;
    default:
        return false;
    }
}

static size_t append_header(char *p, struct pt_str name, struct pt_str value)
{
    memcpy(p, name.ptr, name.len);
    p += name.len;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value.ptr, value.len);
    p += value.len;
    *p++ = '\r';
    *p++ = '\n';
    return name.len + value.len + 4;
}

static void h1_send_head(struct pt_exchange *ex, const struct pt_response_head *h)
{
    struct pt_h1_conn *c = conn_of(ex);
    const struct pt_request *req = &ex->req;
    size_t need = 256;
    for (size_t i = 0; i < h->nheaders; i++)
        need += h->headers[i].name.len + h->headers[i].value.len + 4;
    if (c->w->draining || c->eof)
        c->keepalive = false;
    c->head_only = h->head_only || h->status == 101;
    c->resp_chunked = false;
    bool wbuf_was_empty = pt_buf_len(&c->wbuf) == 0;
    char *p = pt_buf_reserve(&c->wbuf, need, SIZE_MAX);
    if (p == NULL) {
        c->broken = true;
        schedule_close(c);
        return;
    }
    char *start = p;
    p += PT_PUT_LIT(p, "HTTP/1.1 ");
    p += pt_fmt_u64(p, (unsigned)h->status);
    *p++ = ' ';
    const char *reason = pt_http_reason(h->status);
    size_t rlen = strlen(reason);
    memcpy(p, reason, rlen);
    p += rlen;
    p += PT_PUT_LIT(p, "\r\n");
    for (size_t i = 0; i < h->nheaders; i++)
        p += append_header(p, h->headers[i].name, h->headers[i].value);
    bool no_body_status = h->status < 200 || h->status == 204 || h->status == 304;
    if (h->status == 101) {
        p += PT_PUT_LIT(p, "Connection: upgrade\r\n");
    } else {
        if (!h->head_only && !no_body_status) {
            if (h->body == PT_BODY_LENGTH) {
                p += PT_PUT_LIT(p, "Content-Length: ");
                p += pt_fmt_u64(p, h->content_length);
                p += PT_PUT_LIT(p, "\r\n");
            } else if (h->body == PT_BODY_NONE)
                p += PT_PUT_LIT(p, "Content-Length: 0\r\n");
            else if (req->minor_version >= 1) {
                p += PT_PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
                c->resp_chunked = true;
            } else {
                c->keepalive = false; /* HTTP/1.0: the end of the body is the close */
            }
        }
        if (!c->keepalive)
            p += PT_PUT_LIT(p, "Connection: close\r\n");
        else if (req->minor_version == 0)
            p += PT_PUT_LIT(p, "Connection: keep-alive\r\n");
    }
    *p++ = '\r';
    *p++ = '\n';
    pt_buf_commit(&c->wbuf, (size_t)(p - start));
    c->head_queued = wbuf_was_empty ? (uint32_t)(p - start) : 0;
    ex->responded = true;
    ex->status = h->status;
}

/*
 * The head goes out with the first body bytes, so when the upstream fails
 * before any (a bad first chunk, a close right after its head) the client
 * has received nothing yet: take the head back so that the handler can
 * answer 502 instead of closing on an empty reply.
 */
static bool h1_retract_head(struct pt_exchange *ex)
{
    struct pt_h1_conn *c = conn_of(ex);
    if (c->head_queued == 0 || ex->bytes_out != 0 || c->broken || ex->finished ||
        pt_buf_len(&c->wbuf) != c->head_queued)
        return false;
    pt_buf_consume(&c->wbuf, c->head_queued);
    c->head_queued = 0;
    c->head_only = false;
    c->resp_chunked = false;
    ex->responded = false;
    ex->status = 0;
    return true;
}

static void done_task(struct pt_loop *loop, void *arg);

static bool h1_send_body(struct pt_exchange *ex, const char *data, size_t n, bool end)
{
    struct pt_h1_conn *c = conn_of(ex);
    struct iovec iov[3];
    size_t k = 0;
    char hex[24];
    if (c->head_only && !(c->body_mode == BODY_TUNNEL))
        n = 0;
    if (c->resp_chunked) {
        if (n > 0) {
            iov[k].iov_base = hex;
            size_t hl = pt_fmt_hex(hex, n);
            hex[hl++] = '\r';
            hex[hl++] = '\n';
            iov[k++].iov_len = hl;
            iov[k].iov_base = (void *)data;
            iov[k++].iov_len = n;
        }
        if (end) {
            iov[k].iov_base = (void *)(n > 0 ? "\r\n0\r\n\r\n" : "0\r\n\r\n");
            iov[k++].iov_len = n > 0 ? 7 : 5;
        } else if (n > 0) {
            iov[k].iov_base = (void *)"\r\n";
            iov[k++].iov_len = 2;
        }
    } else if (n > 0) {
        iov[k].iov_base = (void *)data;
        iov[k++].iov_len = n;
    }
    int r = write_out(c, iov, k);
    if (r < 0) {
        schedule_close(c);
        return true;
    }
    if (end) {
        c->response_done = true;
        ex->finished = true;
        pt_loop_defer(&c->w->loop, &c->defer, done_task, c);
        return false;
    }
    return r == 1;
}

/*
 * Hand n request bytes (body, chunk framing or tunnel data) from rbuf to the
 * exchange.  bytes_in counts here, at consumption, not at read: a read can
 * also bring the next pipelined request, whose bytes are its own.
 */
static inline void rbuf_take(struct pt_h1_conn *c, size_t n)
{
    pt_buf_consume(&c->rbuf, n);
    c->ex->bytes_in += n;
}

/* Read more request bytes into rbuf if the socket has any.  Returns bytes read,
 * 0 at EOF, PT_AGAIN when nothing is there, or an error. */
static ssize_t read_more(struct pt_h1_conn *c)
{
    if (!c->readable)
        return PT_AGAIN;
    bool drained;
    ssize_t r = conn_read(c, READ_MIN_ROOM, PT_BUF_SIZE, &drained);
    if (drained && !c->rdhup)
        c->readable = false;
    if (r == 0)
        c->eof = true;
    if (r == PT_ERR_TOO_LARGE) /* the buffer is full of unconsumed body: wait */
        return PT_AGAIN;
    return r;
}

static int body_wait(struct pt_h1_conn *c)
{
    c->want_body = true;
    arm(c, TM_BODY, pt_loop_now(&c->w->loop) + server_conf(c)->client_body_timeout_ms);
    return PT_AGAIN;
}

static void send_continue(struct pt_h1_conn *c)
{
    c->sent_continue = true;
    if (pt_buf_len(&c->rbuf) > 0)
        return; /* the client did not wait for us */
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec iov = {(void *)msg, sizeof(msg) - 1};
    write_out(c, &iov, 1);
}

static int peek_length(struct pt_h1_conn *c, struct pt_str *data, bool *end)
{
    for (;;) {
        if (c->body->remaining == 0) {
            *data = PT_STR_NULL;
            *end = true;
            return 0;
        }
        size_t avail = pt_buf_len(&c->rbuf);
        if (avail > 0) {
            size_t k = avail < c->body->remaining ? avail : (size_t)c->body->remaining;
            *data = pt_str_make(pt_buf_head(&c->rbuf), k);
            *end = k == c->body->remaining;
            return 0;
        }
        ssize_t r = read_more(c);
        if (r == PT_AGAIN)
            return body_wait(c);
        if (r <= 0) { /* EOF or error before the whole body */
            c->ex->client_error = 400;
            return PT_ERR_CLOSED;
        }
    }
}

static int peek_chunked(struct pt_h1_conn *c, struct pt_str *data, bool *end)
{
    for (;;) {
        if (c->body->pend_len > 0) {
            *data = pt_str_make(pt_buf_head(&c->rbuf) + c->body->pend_off, c->body->pend_len);
            *end = c->body->chunked.done;
            return 0;
        }
        if (c->body->chunked.done) {
            rbuf_take(c, c->body->dec_off);
            c->body->dec_off = 0;
            *data = PT_STR_NULL;
            *end = true;
            return 0;
        }
        size_t avail = pt_buf_len(&c->rbuf) - c->body->dec_off;
        if (avail > 0) {
            struct pt_str span;
            const char *base = pt_buf_head(&c->rbuf);
            ssize_t k = pt_chunked_decode(&c->body->chunked, base + c->body->dec_off, avail, &span);
            if (k < 0) {
                c->ex->client_error = 400;
                return PT_PARSE_INVALID;
            }
            c->body->dec_off += (uint32_t)k;
            if (span.len > 0) {
                c->body->total += span.len;
                if (c->body->total > c->ex->body_limit) {
                    c->ex->client_error = 413;
                    return PT_ERR_TOO_LARGE;
                }
                c->body->pend_off = (uint32_t)(span.ptr - base);
                c->body->pend_len = (uint32_t)span.len;
                continue;
            }
            /* framing only: drop it */
            rbuf_take(c, c->body->dec_off);
            c->body->dec_off = 0;
            if (k > 0 || c->body->chunked.done)
                continue;
        }
        ssize_t r = read_more(c);
        if (r == PT_AGAIN)
            return body_wait(c);
        if (r <= 0) {
            c->ex->client_error = 400;
            return PT_ERR_CLOSED;
        }
    }
}

static int peek_tunnel(struct pt_h1_conn *c, struct pt_str *data, bool *end)
{
    *end = false;
    for (;;) {
        size_t avail = pt_buf_len(&c->rbuf);
        if (avail > 0) {
            *data = pt_str_make(pt_buf_head(&c->rbuf), avail);
            return 0;
        }
        if (c->eof) {
            *data = PT_STR_NULL;
            *end = true;
            return 0;
        }
        ssize_t r = read_more(c);
        if (r == PT_AGAIN) {
            c->want_body = true;
            return PT_AGAIN;
        }
        if (r < 0)
            return PT_ERR_IO;
    }
}

static int h1_body_peek(struct pt_exchange *ex, struct pt_str *data, bool *end)
{
    struct pt_h1_conn *c = conn_of(ex);
    c->want_body = false;
    if (c->timer_kind == TM_BODY)
        disarm(c);
    if (c->broken)
        return PT_ERR_CLOSED;
    if (ex->req.expect_continue && !c->sent_continue && c->body_mode != BODY_TUNNEL)
        send_continue(c);
    switch (c->body_mode) {
    case BODY_LENGTH:
        return peek_length(c, data, end);
    case BODY_CHUNKED:
        return peek_chunked(c, data, end);
    case BODY_TUNNEL:
        return peek_tunnel(c, data, end);
    default:
        *data = PT_STR_NULL;
        *end = true;
        return 0;
    }
}

static void h1_body_consume(struct pt_exchange *ex, size_t n)
{
    struct pt_h1_conn *c = conn_of(ex);
    if (n == 0)
        return;
    switch (c->body_mode) {
    case BODY_LENGTH:
        c->body->remaining -= n;
        rbuf_take(c, n);
        break;
    case BODY_CHUNKED:
        rbuf_take(c, c->body->pend_off + n);
        c->body->dec_off -= c->body->pend_off + (uint32_t)n;
        c->body->pend_off = 0;
        c->body->pend_len -= (uint32_t)n;
        break;
    case BODY_TUNNEL:
        rbuf_take(c, n);
        break;
    }
}

static void h1_upgrade(struct pt_exchange *ex)
{
    struct pt_h1_conn *c = conn_of(ex);
    c->body_mode = BODY_TUNNEL;
    c->keepalive = false;
    c->resp_chunked = false;
    c->head_only = false;
    c->eof = false;
    disarm(c);
    if (write_out(c, NULL, 0) < 0) /* the 101 goes out now: no body follows it */
        schedule_close(c);
}

static void h1_abort(struct pt_exchange *ex)
{
    struct pt_h1_conn *c = conn_of(ex);
    ex->finished = true;
    c->keepalive = false;
    c->broken = true; /* do not finish the framing: the client must see a truncated response */
    schedule_close(c);
}

static const struct pt_downstream_ops h1_ops = {
    .send_head = h1_send_head,
    .send_body = h1_send_body,
    .body_peek = h1_body_peek,
    .body_consume = h1_body_consume,
    .upgrade = h1_upgrade,
    .abort = h1_abort,
    .retract_head = h1_retract_head,
};

/* ---- finishing an exchange ---- */

static void done_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct pt_h1_conn *c = arg;
    struct pt_exchange *ex = c->ex;
    if (c->closed || ex == NULL)
        return;
    bool body_complete = request_body_complete(c);
    c->ex = NULL;
    pt_exchange_free(ex);
    c->body = NULL; /* it lived in the exchange's arena */
    c->requests++;
    if (c->broken) {
        conn_close(c);
        return;
    }
    if (!c->keepalive || !body_complete || c->body_mode == BODY_TUNNEL || c->w->draining ||
        c->eof) {
        begin_close(c);
        return;
    }
    c->state = ST_HEAD;
    c->body_mode = BODY_NONE;
    c->want_body = false;
    c->response_done = false;
    c->parse_last = 0;
    c->head_started = 0;
    if (pt_buf_len(&c->wbuf) > 0)
        return; /* the next request waits until this response is out */
    process_input(c);
}

/* ---- building the exchange from a parsed head ---- */

/* Host: reg-name / IPv4 / [IPv6], optional :port.  Returns the host part or an empty view. */
static bool split_authority(struct pt_str auth, struct pt_str *host)
{
    const char *p = auth.ptr, *e = auth.ptr + auth.len;
    if (auth.len == 0) {
        *host = auth;
        return true;
    }
    const char *hend;
    if (*p == '[') {
        const char *rb = memchr(p, ']', auth.len);
        if (rb == NULL)
            return false;
        for (const char *q = p + 1; q < rb; q++)
            if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                  (*q >= 'A' && *q <= 'F') || *q == ':' || *q == '.'))
                return false;
        hend = rb + 1;
    } else {
        hend = p;
        while (hend < e && *hend != ':') {
            char ch = *hend;
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
            if (!ok)
                return false;
            hend++;
        }
        if (hend == p)
            return false;
    }
    if (hend < e) {
        if (*hend != ':')
            return false;
        for (const char *q = hend + 1; q < e; q++)
            if (*q < '0' || *q > '9')
                return false;
        if (e - hend - 1 > 5)
            return false;
    }
    *host = pt_str_make(p, (size_t)(hend - p));
    return true;
}

/* Copy the head into the exchange's arena so that its views outlive the read buffer. */
static int copy_head(struct pt_exchange *ex, const char *buf, size_t len,
                     const struct pt_h1_request *pr, const struct pt_h1_meta *meta)
{
    char *copy = pt_arena_alloc(&ex->arena, len);
    struct pt_h1_header *hdrs = pt_arena_alloc(&ex->arena, sizeof(*hdrs) * (pr->num_headers + 1));
    if (copy == NULL || hdrs == NULL)
        return PT_ERR_NOMEM;
    memcpy(copy, buf, len);
#define REBASE(s) pt_str_make(copy + ((s).ptr - buf), (s).len)
    struct pt_request *r = &ex->req;
    r->method = REBASE(pr->method);
    r->method_id = pr->method_id;
    for (size_t i = 0; i < pr->num_headers; i++) {
        hdrs[i].name = REBASE(pr->headers[i].name);
        hdrs[i].value = REBASE(pr->headers[i].value);
    }
    r->headers = hdrs;
    r->nheaders = pr->num_headers;
    r->minor_version = pr->minor_version;
    r->authority = meta->host.ptr != NULL ? REBASE(meta->host) : PT_STR_NULL;
    r->upgrade = meta->upgrade;
    r->upgrade_proto = meta->upgrade ? REBASE(meta->upgrade_proto) : PT_STR_NULL;
    r->expect_continue = meta->expect_continue;
    struct pt_str target = REBASE(pr->target);
#undef REBASE
    r->scheme = ex->tls ? PT_STR_LIT("https") : PT_STR_LIT("http");
    r->path = target; /* split and normalised by the caller */
    return 0;
}

/* Split the request-target into authority (absolute-form), path and query; normalise the path. */
static const char *analyse_target(struct pt_exchange *ex)
{
    struct pt_request *r = &ex->req;
    struct pt_str t = r->path;
    if (t.len > 0 && t.ptr[0] != '/') {
        /* absolute-form: scheme "://" authority path; the authority overrides Host */
        const char *sep = t.len > 3 ? memchr(t.ptr, ':', t.len) : NULL;
        if (t.len == 1 && t.ptr[0] == '*')
            return "the asterisk-form request-target is not supported";
        if (sep == NULL || (size_t)(t.ptr + t.len - sep) < 3 || sep[1] != '/' || sep[2] != '/')
            return "invalid request-target";
        struct pt_str scheme = pt_str_make(t.ptr, (size_t)(sep - t.ptr));
        if (!pt_str_case_eq_lit(scheme, "http") && !pt_str_case_eq_lit(scheme, "https"))
            return "unsupported scheme in request-target";
        const char *a = sep + 3, *e = t.ptr + t.len;
        const char *slash = a;
        while (slash < e && *slash != '/' && *slash != '?')
            slash++;
        r->authority = pt_str_make(a, (size_t)(slash - a));
        if (memchr(r->authority.ptr, '@', r->authority.len) != NULL)
            return "userinfo in request-target";
        if (slash == e || *slash != '/')
            t = PT_STR_LIT("/"); /* "http://host" or "http://host?q": the path is "/" */
        else
            t = pt_str_make(slash, (size_t)(e - slash));
        if (slash < e && *slash == '?') {
            r->has_query = true;
            r->query = pt_str_make(slash + 1, (size_t)(e - slash - 1));
        }
    }
    if (memchr(t.ptr, '#', t.len) != NULL)
        return "fragment in request-target";
    const char *q = memchr(t.ptr, '?', t.len);
    struct pt_str path = t;
    if (q != NULL) {
        path.len = (size_t)(q - t.ptr);
        r->has_query = true;
        r->query = pt_str_make(q + 1, (size_t)(t.ptr + t.len - q - 1));
    }
    char *out = pt_arena_alloc(&ex->arena, path.len + 1);
    if (out == NULL)
        return "out of memory";
    ssize_t n = pt_path_normalize(path.ptr, path.len, out);
    if (n == PT_PATH_ESCAPES_ROOT)
        return "the path escapes the root";
    if (n < 0)
        return "invalid path";
    r->path = pt_str_make(out, (size_t)n);
    if (!split_authority(r->authority, &r->host))
        return "invalid Host";
    return NULL;
}

/*
 * Check the chunked framing of the body bytes that arrived with the head
 * before anything is sent upstream, so that a malformed body that came in
 * one piece (the usual case) is refused and never forwarded.  Framing errors
 * in bytes that arrive later abort the upstream request mid-way instead: the
 * upstream never sees a complete malformed request.
 */
static bool chunked_prefix_valid(const struct pt_h1_conn *c)
{
    struct pt_chunked probe = c->body->chunked;
    const char *p = pt_buf_head(&c->rbuf);
    size_t left = pt_buf_len(&c->rbuf);
    while (left > 0 && !probe.done) {
        struct pt_str span;
        ssize_t k = pt_chunked_decode(&probe, p, left, &span);
        if (k < 0)
            return false;
        if (k == 0)
            break;
        p += k;
        left -= (size_t)k;
    }
    return true;
}

static void start_exchange(struct pt_h1_conn *c, size_t head_len, const struct pt_h1_request *pr,
                           const struct pt_h1_meta *meta)
{
    struct pt_exchange *ex = pt_exchange_new(c->w);
    if (ex == NULL) {
        send_early_error(c, 503, "out of memory");
        return;
    }
    ex->down = &h1_ops;
    ex->down_ctx = c;
    ex->peer = c->peer;
    ex->peer_port = c->peer_port;
    ex->tls = c->tls != NULL; /* the scheme, X-Forwarded-Proto */
    ex->start_ms = c->head_started ? c->head_started : pt_loop_now(&c->w->loop);
    ex->start_us = pt_loop_now_us(&c->w->loop);
    ex->bytes_in = head_len;
    if (copy_head(ex, pt_buf_head(&c->rbuf), head_len, pr, meta) != 0) {
        pt_exchange_free(ex);
        send_early_error(c, 503, "out of memory");
        return;
    }
    pt_buf_consume(&c->rbuf, head_len);
    c->parse_last = 0;
    c->ex = ex;
    c->state = ST_ACTIVE;
    c->keepalive = meta->keep_alive;
    c->sent_continue = false;
    c->response_done = false;
    c->body = NULL;
    struct pt_request *r = &ex->req;
    if (meta->body == PT_H1_BODY_CHUNKED ||
        (meta->body == PT_H1_BODY_LENGTH && meta->content_length > 0)) {
        c->body = pt_arena_calloc(&ex->arena, sizeof(*c->body));
        if (c->body == NULL) {
            c->keepalive = false;
            c->body_mode = BODY_NONE;
            pt_proxy_respond_problem(ex, 503, NULL, "out of memory", NULL, 0);
            return;
        }
    }
    switch (meta->body) {
    case PT_H1_BODY_LENGTH:
        c->body_mode = meta->content_length > 0 ? BODY_LENGTH : BODY_NONE;
        if (c->body != NULL)
            c->body->remaining = meta->content_length;
        r->body = meta->content_length > 0 ? PT_BODY_LENGTH : PT_BODY_NONE;
        r->content_length = meta->content_length;
        break;
    case PT_H1_BODY_CHUNKED:
        c->body_mode = BODY_CHUNKED;
        pt_chunked_init(&c->body->chunked);
        r->body = PT_BODY_STREAM;
        break;
    default:
        c->body_mode = BODY_NONE;
        r->body = PT_BODY_NONE;
        break;
    }
    disarm(c);
    const char *why = analyse_target(ex);
    if (why == NULL && c->body_mode == BODY_CHUNKED && !chunked_prefix_valid(c))
        why = "invalid chunked body";
    if (why != NULL) {
        c->keepalive = false;
        pt_proxy_respond_problem(ex, 400, NULL, why, NULL, 0);
        return;
    }
    pt_proxy_handle(ex);
}

/* ---- reading request heads ---- */

/*
 * The head outgrew max_header_bytes.  When not even the request line fits,
 * the request-target is what is too long: 414 (RFC 9112 section 3), as
 * nginx answers; otherwise the header fields are: 431.
 */
static void head_too_large(struct pt_h1_conn *c, size_t limit)
{
    size_t len = pt_buf_len(&c->rbuf);
    if (memchr(pt_buf_head(&c->rbuf), '\n', len < limit ? len : limit) == NULL)
        send_early_error(c, 414, "request-target too long");
    else
        send_early_error(c, 431, "request header section too large");
}

static void parse_head(struct pt_h1_conn *c)
{
    const struct pt_server_conf *sc = server_conf(c);
    struct pt_h1_request pr;
    size_t len = pt_buf_len(&c->rbuf);
    int n = pt_h1_parse_request(pt_buf_head(&c->rbuf), len, c->parse_last, &pr, req_headers,
                                MAX_REQUEST_HEADERS);
    if (n == PT_PARSE_PARTIAL) {
        if (len > sc->max_header_bytes) {
            head_too_large(c, sc->max_header_bytes);
            return;
        }
        c->parse_last = (uint32_t)len;
        return;
    }
    if (n == PT_H1_TOO_MANY_HEADERS) {
        send_early_error(c, 431, "too many header fields");
        return;
    }
    if (n == PT_H1_BAD_VERSION) {
        send_early_error(c, 505, "only HTTP/1.0 and HTTP/1.1 are supported on this connection");
        return;
    }
    if (n < 0) {
        send_early_error(c, 400, "malformed request");
        return;
    }
    if ((size_t)n > sc->max_header_bytes) {
        send_early_error(c, 431, "request header section too large");
        return;
    }
    struct pt_h1_meta meta;
    const char *why = NULL;
    int m = pt_h1_request_meta(&pr, &meta, &why);
    if (m == PT_DECLINED) {
        send_early_error(c, 417, "only Expect: 100-continue is supported");
        return;
    }
    if (m != 0) {
        send_early_error(c, 400, why != NULL ? why : "malformed request");
        return;
    }
    start_exchange(c, (size_t)n, &pr, &meta);
}

static void process_input(struct pt_h1_conn *c)
{
    const struct pt_server_conf *sc = server_conf(c);
    while (c->state == ST_HEAD && !c->closed) {
        if (pt_buf_len(&c->rbuf) > 0) {
            if (c->head_started == 0)
                c->head_started = pt_loop_now(&c->w->loop);
            parse_head(c);
            if (c->state != ST_HEAD || c->closed)
                return;
        }
        if (!c->readable || c->eof) {
            if (c->eof) { /* the client closed between requests */
                conn_close(c);
                return;
            }
            if (pt_buf_len(&c->rbuf) == 0) {
                pt_buf_release_if_empty(&c->rbuf);
                uint64_t ms =
                    c->requests == 0 ? sc->client_header_timeout_ms : sc->client_idle_timeout_ms;
                arm(c, TM_IDLE, pt_loop_now(&c->w->loop) + ms);
            } else {
                arm(c, TM_HEADER, c->head_started + sc->client_header_timeout_ms);
            }
            return;
        }
        bool drained;
        size_t cap =
            sc->max_header_bytes + 1 > PT_BUF_SIZE ? sc->max_header_bytes + 1 : PT_BUF_SIZE;
        ssize_t r = conn_read(c, READ_MIN_ROOM, cap, &drained);
        if (drained && !c->rdhup)
            c->readable = false;
        if (r == PT_AGAIN)
            continue;
        if (r == PT_ERR_TOO_LARGE) {
            head_too_large(c, sc->max_header_bytes);
            return;
        }
        if (r < 0) {
            conn_close(c);
            return;
        }
        if (r == 0) {
            c->eof = true;
            if (pt_buf_len(&c->rbuf) == 0) {
                conn_close(c);
                return;
            }
            /* a head cut short by the close cannot complete */
            parse_head(c);
            if (c->state == ST_HEAD && !c->closed)
                conn_close(c);
            return;
        }
    }
}

/* ---- TLS handshake ---- */

static void handshake_step(struct pt_h1_conn *c)
{
    int r = pt_tls_handshake(c->tls);
    if (r == PT_TLS_WANT_READ) {
        c->readable = false; /* the socket was read dry */
        return;
    }
    if (r == PT_TLS_WANT_WRITE)
        return; /* EPOLLOUT brings us back */
    if (r < 0) {
        if (pt_tls_plain_http(c->tls)) {
            /* what came in was HTTP: answer in HTTP, as nginx does */
            pt_tls_free(c->tls);
            c->tls = NULL;
            c->state = ST_HEAD;
            send_early_error(c, 400, "a plain HTTP request was sent to an HTTPS port");
            return;
        }
        pt_log_ratelimited(PT_LOG_INFO, 5, "client %u: TLS handshake failed: %s", c->peer_port,
                           pt_tls_error(c->tls));
        c->broken = true;
        conn_close(c);
        return;
    }
    /* Done.  An HTTP/2 codec would take over here when pt_tls_alpn() says "h2".
     * The first request often came with the client's Finished: read on. */
    c->state = ST_HEAD;
    c->readable = true;
    disarm(c);
    process_input(c);
}

/* ---- events ---- */

static void on_timer(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct pt_h1_conn *c = PT_CONTAINER_OF(t, struct pt_h1_conn, timer);
    enum timer_kind kind = c->timer_kind;
    c->timer_kind = TM_NONE;
    switch (kind) {
    case TM_IDLE:
    case TM_LINGER:
        conn_close(c);
        break;
    case TM_HEADER:
        send_early_error(c, 408, "the request head took too long");
        break;
    case TM_BODY:
        if (c->ex != NULL && !c->ex->responded) {
            c->ex->client_error = 408;
            c->keepalive = false;
            c->broken = false;
            /* fail the body source: the proxy answers 408 */
            c->body_mode = BODY_NONE;
            pt_proxy_respond_problem(c->ex, 408, NULL, "the request body took too long", NULL, 0);
        } else {
            conn_close(c);
        }
        break;
    case TM_SEND:
        conn_close(c);
        break;
    case TM_HANDSHAKE:
        c->broken = true;
        conn_close(c);
        break;
    default:
        break;
    }
}

static void on_writable(struct pt_h1_conn *c)
{
    if (pt_buf_len(&c->wbuf) > 0) {
        if (write_out(c, NULL, 0) < 0) {
            conn_close(c);
            return;
        }
        if (pt_buf_len(&c->wbuf) > 0)
            return;
    }
    if (c->state == ST_CLOSING) {
        begin_close(c);
        return;
    }
    if (c->ex != NULL && !c->response_done) {
        pt_proxy_on_drain(c->ex);
        return;
    }
    if (c->state == ST_HEAD)
        process_input(c);
}

static void conn_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events)
{
    (void)loop;
    struct pt_h1_conn *c = PT_CONTAINER_OF(io, struct pt_h1_conn, io);
    if (c->closed)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->readable = true;
    if (events & (EPOLLRDHUP | EPOLLHUP))
        c->rdhup = true;
    if (events & EPOLLERR) {
        c->broken = true;
        conn_close(c);
        return;
    }
    if (c->state == ST_HANDSHAKE) {
        handshake_step(c);
        return;
    }
    if ((events & EPOLLOUT) && c->tls != NULL && pt_tls_read_wants_write(c->tls))
        c->readable = true; /* a read waited for the socket to take OpenSSL's bytes */
    if ((events & EPOLLOUT) && pt_buf_len(&c->wbuf) > 0) {
        on_writable(c);
        if (c->closed)
            return;
    }
    switch (c->state) {
    case ST_HEAD:
        process_input(c);
        break;
    case ST_ACTIVE:
        if (c->want_body && c->readable && c->ex != NULL) {
            c->want_body = false;
            pt_proxy_on_body_ready(c->ex);
        } else if ((events & EPOLLHUP) && c->ex != NULL && !c->response_done) {
            conn_close(c); /* reset by the client */
        }
        break;
    case ST_CLOSING:
        if (c->readable && pt_buf_len(&c->wbuf) == 0) {
            char sink[4096];
            for (;;) {
                ssize_t r = recv(c->io.fd, sink, sizeof(sink), 0);
                if (r > 0)
                    continue;
                if (r == 0 || (errno != EAGAIN && errno != EINTR))
                    conn_close(c);
                else
                    c->readable = false;
                break;
            }
        }
        break;
    }
}

void pt_h1_conn_accept(struct pt_worker *w, int fd, const struct sockaddr *peer, socklen_t len,
                       struct pt_tls_server *tls)
{
    (void)len;
    struct pt_h1_conn *c = pt_calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    if (tls != NULL && (c->tls = pt_tls_accept(tls, fd)) == NULL) {
        free(c);
        close(fd);
        return;
    }
    c->w = w;
    pt_timer_init(&c->timer);
    pt_buf_init(&c->rbuf);
    pt_buf_init(&c->wbuf);
    pt_ip_from_sockaddr(peer, &c->peer);
    if (peer->sa_family == AF_INET)
        c->peer_port = ntohs(((const struct sockaddr_in *)(const void *)peer)->sin_port);
    else if (peer->sa_family == AF_INET6)
        c->peer_port = ntohs(((const struct sockaddr_in6 *)(const void *)peer)->sin6_port);
    pt_sock_nodelay(fd);
    if (pt_loop_add(&w->loop, &c->io, fd, conn_cb) != 0) {
        pt_tls_free(c->tls);
        close(fd);
        free(c);
        return;
    }
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    pt_worker_conn_added(w);
    c->keepalive = true;
    c->readable = true; /* most clients send the request right behind the handshake */
    if (c->tls != NULL) {
        c->state = ST_HANDSHAKE;
        arm(c, TM_HANDSHAKE, pt_loop_now(&w->loop) + server_conf(c)->client_header_timeout_ms);
        handshake_step(c);
        return;
    }
    c->state = ST_HEAD;
    process_input(c);
}

void pt_h1_conn_drain(struct pt_h1_conn *c)
{
    if (c->closed)
        return;
    if ((c->state == ST_HEAD && pt_buf_len(&c->rbuf) == 0 && pt_buf_len(&c->wbuf) == 0) ||
        c->state == ST_HANDSHAKE)
        conn_close(c);
    else
        c->keepalive = false;
}

void pt_h1_conn_kill(struct pt_h1_conn *c)
{
    c->broken = true;
    conn_close(c);
}
