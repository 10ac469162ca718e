/*
 * The admin listener and its connections, on the main thread's loop.
 *
 * The admin API is small and rare traffic, so this is a plain HTTP/1.1
 * server: each connection reads into its session (session.c), which hands
 * every complete request to the dispatcher (api.c) and queues the
 * responses; keep-alive and pipelining work, and output is written as the
 * socket takes it.  Requests run synchronously on the main thread: a PUT
 * validates and applies a whole configuration (which may resolve host
 * names) without ever blocking a worker.
 *
 * Limits: PT_ADMIN_MAX_CONNS connections (more are closed at accept), a
 * request must arrive completely within ADMIN_REQUEST_MS of its first byte,
 * idle keep-alive connections close after ADMIN_IDLE_MS, and a client that
 * does not read its answer for ADMIN_SEND_MS is dropped.  While more than
 * ADMIN_OUT_HIGH bytes wait to be written, pipelined requests are not
 * processed.  A connection that ends (Connection: close, an error answer)
 * shuts its write side once the answer is out and reads what the client
 * still sends for up to ADMIN_LINGER_MS, so that an unread request body
 * does not turn into a reset that destroys the answer (a 413, say).
 */
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
#include "core/loop.h"
#include "core/metrics.h"
#include "config/snapshot.h"
#include "net/io.h"
#include "net/sock.h"
#include "upstream/discovery.h"
#include "plugins/access_log.h"
#include "plugins/cache.h"
#include "proxy/server.h"
#include "proxy/worker.h"
#include "upstream/health.h"
#include "admin/admin.h"
#include "admin/admin-int.h"

#define PT_ADMIN_MAX_CONNS    64
#define ADMIN_BACKLOG         128
#define ADMIN_ACCEPT_PAUSE_MS 100 /* listener unwatched this long when out of descriptors */
#define ADMIN_IDLE_MS         60000
#define ADMIN_REQUEST_MS      30000
#define ADMIN_LINGER_MS       2000
#define ADMIN_SEND_MS         30000
#define ADMIN_OUT_HIGH        (1u << 20)
#define ADMIN_READ_CAP        (PT_ADMIN_MAX_HEAD + PT_ADMIN_MAX_BODY + 65536)

struct admin_conn;

struct pt_admin {
    struct pt_server *srv;
    struct pt_admin_api api;
    struct pt_io lio;
    int lfd;                /* -1 when not listening */
    struct pt_timer lpause; /* armed while out of descriptors: lio unwatched */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *addr_text;
    struct admin_conn *conns; /* open and closed-but-not-yet-freed */
    size_t nopen;
};

struct admin_conn {
    struct pt_io io;
    struct pt_timer timer;
    struct pt_admin *admin;
    struct admin_conn *next, *prev;
    struct pt_admin_session s;
    struct pt_buf out;
    struct pt_defer free_defer;
    uint64_t request_started; /* loop ms of the first byte of the current request; 0 = none */
    bool readable;
    bool eof;
    bool lingering; /* our side is shut: discard input until the client closes */
    bool closed;
};

/* ---- the host: what the API sees of the server ---- */

static struct pt_snapshot *host_snapshot(void *ctx)
{
    struct pt_server *srv = ctx;
    return pt_snapshot_ref(srv->snap);
}

static double uptime(const struct pt_server *srv)
{
    int64_t now = srv->loop.wall_ms;
    return now > (int64_t)srv->started_wall_ms ? (double)(now - (int64_t)srv->started_wall_ms) / 1e3
                                               : 0.0;
}

static void host_status(void *ctx, struct pt_admin_status *st)
{
    struct pt_server *srv = ctx;
    st->config_version = srv->version;
    st->uptime_s = uptime(srv);
    st->workers = srv->nworkers;
    st->connections = atomic_load_explicit(&srv->connections, memory_order_relaxed);
    st->waiting_for = NULL;
    if (!srv->discovery_settled && srv->discovery != NULL)
        st->waiting_for = pt_discovery_unsettled(srv->discovery);
    /* A latch: services added by a later reload do not take readiness away. */
    if (srv->ready && st->waiting_for == NULL)
        srv->discovery_settled = true;
    st->ready = srv->ready && st->waiting_for == NULL;
    st->draining = srv->draining;
}

static int host_apply(void *ctx, const char *text, size_t len, struct pt_diag *d)
{
    return pt_server_apply_text(ctx, text, len, d);
}

static int host_metrics(void *ctx, struct pt_buf *out)
{
    struct pt_server *srv = ctx;
    struct pt_metrics *w[256];
    size_t n = srv->nworkers < 256 ? srv->nworkers : 256;
    for (size_t i = 0; i < n; i++)
        w[i] = srv->workers != NULL ? srv->workers[i].metrics : NULL;
    struct pt_metrics_process p = {
        .connections_active = atomic_load_explicit(&srv->connections, memory_order_relaxed),
        .reloads_ok = atomic_load_explicit(&srv->reloads_ok, memory_order_relaxed),
        .reloads_failed = atomic_load_explicit(&srv->reloads_failed, memory_order_relaxed),
        .config_version = srv->version,
        .uptime_s = uptime(srv),
    };
    int rc = pt_metrics_render(w, n, &p, out);
    if (rc == 0) /* portico_upstream_target_healthy, portico_circuit_breaker_open */
        rc = pt_health_metrics_render(srv->snap->services, srv->snap->nservices,
                                      pt_clock_us() / 1000, out);
    if (rc == 0)
        rc = pt_cache_metrics_render(out); /* portico_cache_requests_total */
    if (rc == 0) {
        char line[256];
        int k = snprintf(line, sizeof(line),
                         "# HELP portico_access_log_dropped_total Access-log lines dropped because "
                         "a writer fell behind.\n# TYPE portico_access_log_dropped_total counter\n"
                         "portico_access_log_dropped_total %llu\n",
                         (unsigned long long)pt_access_log_dropped());
        rc = pt_buf_append(out, line, (size_t)k, SIZE_MAX);
    }
    return rc;
}

static const struct pt_admin_host server_host = {
    .snapshot = host_snapshot,
    .status = host_status,
    .apply = host_apply,
    .metrics = host_metrics,
};

/* ---- connections ---- */

static void conn_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events);
static void on_timer(struct pt_loop *loop, struct pt_timer *t);

static void free_conn(struct pt_admin *a, struct admin_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pt_admin_session_free(&c->s);
    pt_buf_free(&c->out);
    free(c);
}

static void free_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct admin_conn *c = arg;
    free_conn(c->admin, c);
}

static void conn_close(struct admin_conn *c)
{
    if (c->closed)
        return;
    struct pt_loop *loop = &c->admin->srv->loop;
    c->closed = true;
    c->admin->nopen--;
    pt_timer_disarm(loop, &c->timer);
    pt_loop_del(loop, &c->io);
    close(c->io.fd);
    pt_loop_defer(loop, &c->free_defer, free_task, c);
}

static void arm(struct admin_conn *c, uint64_t deadline)
{
    pt_timer_arm_at(&c->admin->srv->loop, &c->timer, deadline, on_timer);
}

/* The timer that matters now: writing, a request under way, or idle. */
static void rearm(struct admin_conn *c)
{
    uint64_t now = pt_loop_now(&c->admin->srv->loop);
    if (pt_buf_len(&c->out) > 0)
        arm(c, now + ADMIN_SEND_MS);
    else if (c->request_started != 0)
        arm(c, c->request_started + ADMIN_REQUEST_MS);
    else
        arm(c, now + ADMIN_IDLE_MS);
}

static void on_timer(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct admin_conn *c = PT_CONTAINER_OF(t, struct admin_conn, timer);
    conn_close(c);
}

/* Write what is queued.  false when the connection was closed. */
static bool flush(struct admin_conn *c)
{
    if (pt_buf_len(&c->out) > 0) {
        size_t written;
        int r = pt_io_flush(c->io.fd, &c->out, &written);
        if (r < 0) {
            conn_close(c);
            return false;
        }
        if (r == 1)
            return true; /* EPOLLOUT brings us back */
    }
    pt_buf_release_if_empty(&c->out);
    if (c->s.close && !c->lingering) {
        if (c->eof || shutdown(c->io.fd, SHUT_WR) == -1) {
            conn_close(c);
            return false;
        }
        c->lingering = true;
        pt_admin_session_free(&c->s); /* nothing more is parsed */
        c->s.close = true;
        arm(c, pt_loop_now(&c->admin->srv->loop) + ADMIN_LINGER_MS);
    }
    return true;
}

/* Read and drop what the client still sends; close at its end of stream. */
static void linger(struct admin_conn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t r = recv(c->io.fd, sink, sizeof(sink), 0);
        if (r > 0)
            continue;
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            conn_close(c);
        else if (errno != EINTR)
            c->readable = false;
        else
            continue;
        return;
    }
}

/* Run every complete request; then decide what to wait for. */
static void process(struct admin_conn *c)
{
    while (!c->closed && pt_buf_len(&c->out) < ADMIN_OUT_HIGH) {
        int r = pt_admin_session_step(&c->admin->api, &c->s, &c->out, c->eof);
        if (r == PT_ERR_NOMEM) {
            conn_close(c);
            return;
        }
        if (r == 1) {
            c->request_started = 0;
            if (c->s.close)
                break;
            continue;
        }
        break;
    }
    if (!flush(c) || c->lingering)
        return;
    if (c->eof && pt_buf_len(&c->out) == 0) {
        conn_close(c);
        return;
    }
    if (c->request_started == 0 && (pt_buf_len(&c->s.in) > 0 || c->s.in_body))
        c->request_started = pt_loop_now(&c->admin->srv->loop);
    rearm(c);
}

static void read_input(struct admin_conn *c)
{
    if (c->lingering) {
        if (c->readable)
            linger(c);
        return;
    }
    while (c->readable && !c->eof && !c->closed && !c->s.close &&
           pt_buf_len(&c->out) < ADMIN_OUT_HIGH) {
        bool drained;
        ssize_t r = pt_io_read(c->io.fd, &c->s.in, 4096, ADMIN_READ_CAP, &drained);
        if (r == PT_AGAIN) {
            c->readable = false;
            break;
        }
        if (r == PT_ERR_TOO_LARGE || (r < 0 && r != PT_AGAIN)) {
            conn_close(c);
            return;
        }
        if (r == 0)
            c->eof = true;
        else if (drained)
            c->readable = false;
        process(c);
    }
    if (!c->closed && !c->readable)
        process(c);
}

static void conn_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events)
{
    (void)loop;
    struct admin_conn *c = PT_CONTAINER_OF(io, struct admin_conn, io);
    if (c->closed)
        return;
    if (events & (EPOLLERR | EPOLLHUP)) {
        conn_close(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP))
        c->readable = true;
    if ((events & EPOLLOUT) && pt_buf_len(&c->out) > 0 && !flush(c))
        return;
    read_input(c);
}

static void accept_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events);

static void accept_resume(struct pt_loop *loop, struct pt_timer *t)
{
    struct pt_admin *a = PT_CONTAINER_OF(t, struct pt_admin, lpause);
    if (a->lfd != -1 && pt_loop_add_events(loop, &a->lio, a->lfd, accept_cb, EPOLLIN) != 0)
        pt_log_err("admin: cannot watch the listener again: %s", strerror(errno));
}

static void accept_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events)
{
    (void)events;
    struct pt_admin *a = PT_CONTAINER_OF(io, struct pt_admin, lio);
    for (int i = 0; i < 16; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
                return;
            pt_log_ratelimited(PT_LOG_WARN, 1, "admin: accept: %s", strerror(errno));
            if (pt_sock_accept_exhausted(errno)) {
                /* level-triggered: unwatch for a while instead of spinning (see worker.c) */
                pt_loop_del(loop, &a->lio);
                pt_timer_arm(loop, &a->lpause, ADMIN_ACCEPT_PAUSE_MS, accept_resume);
            }
            return;
        }
        struct admin_conn *c = a->nopen < PT_ADMIN_MAX_CONNS ? pt_calloc(1, sizeof(*c)) : NULL;
        if (c == NULL) {
            pt_log_ratelimited(PT_LOG_WARN, 1, "admin: too many connections");
            close(fd);
            continue;
        }
        c->admin = a;
        pt_timer_init(&c->timer);
        pt_admin_session_init(&c->s);
        pt_buf_init(&c->out);
        pt_sock_nodelay(fd);
        if (pt_loop_add(loop, &c->io, fd, conn_cb) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = a->conns;
        if (a->conns != NULL)
            a->conns->prev = c;
        a->conns = c;
        a->nopen++;
        c->readable = true;
        read_input(c);
    }
}

/* ---- the listener ---- */

static void close_listener(struct pt_admin *a)
{
    if (a->lfd == -1)
        return;
    if (pt_timer_armed(&a->lpause))
        pt_timer_disarm(&a->srv->loop, &a->lpause);
    else
        pt_loop_del(&a->srv->loop, &a->lio);
    close(a->lfd);
    a->lfd = -1;
    free(a->addr_text);
    a->addr_text = NULL;
}

/* Listen on conf's address: 0, or -1 with errno (the old listener, if any, is kept). */
static int open_listener(struct pt_admin *a, const struct pt_admin_conf *conf)
{
    char *text = pt_strdup(conf->listen);
    if (text == NULL)
        return -1;
    int fd =
        pt_sock_listen((const struct sockaddr *)&conf->addr, conf->addrlen, false, ADMIN_BACKLOG);
    if (fd == -1) {
        int e = errno;
        free(text);
        errno = e;
        return -1;
    }
    close_listener(a);
    if (pt_loop_add_events(&a->srv->loop, &a->lio, fd, accept_cb, EPOLLIN) != 0) {
        int e = errno;
        close(fd);
        free(text);
        errno = e;
        return -1;
    }
    a->lfd = fd;
    a->addr = conf->addr;
    a->addrlen = conf->addrlen;
    a->addr_text = text;
    return 0;
}

static struct pt_admin *admin_new(struct pt_server *srv)
{
    struct pt_admin *a = pt_calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->srv = srv;
    a->lfd = -1;
    pt_timer_init(&a->lpause);
    a->api.host = &server_host;
    a->api.ctx = srv;
    return a;
}

int pt_admin_start(struct pt_server *srv)
{
    const struct pt_admin_conf *conf = &srv->snap->admin;
    if (conf->listen == NULL || srv->admin != NULL)
        return 0;
    struct pt_admin *a = admin_new(srv);
    if (a == NULL) {
        fprintf(stderr, "portico: admin: out of memory\n");
        return -1;
    }
    if (open_listener(a, conf) != 0) {
        fprintf(stderr, "portico: cannot listen on %s (admin.listen): %s\n", conf->listen,
                strerror(errno));
        free(a);
        return -1;
    }
    srv->admin = a;
    pt_log_info("admin API listening on %s%s", conf->listen,
                conf->token != NULL && conf->token[0] != '\0' ? " (token required)" : "");
    return 0;
}

static bool same_addr(const struct pt_admin *a, const struct pt_admin_conf *conf)
{
    return a->lfd != -1 && a->addrlen == conf->addrlen &&
           memcmp(&a->addr, &conf->addr, conf->addrlen) == 0;
}

void pt_admin_config_changed(struct pt_server *srv)
{
    const struct pt_admin_conf *conf = &srv->snap->admin;
    struct pt_admin *a = srv->admin;
    if (a == NULL) {
        if (conf->listen != NULL && pt_admin_start(srv) != 0)
            pt_log_err("admin API not started: cannot listen on %s", conf->listen);
        return;
    }
    if (conf->listen == NULL) {
        if (a->lfd != -1)
            pt_log_info("admin API: no longer listening on %s", a->addr_text);
        close_listener(a);
        return;
    }
    if (same_addr(a, conf))
        return;
    if (open_listener(a, conf) != 0) {
        pt_log_err("admin API: cannot listen on %s: %s; still on %s", conf->listen, strerror(errno),
                   a->addr_text != NULL ? a->addr_text : "nothing");
        return;
    }
    pt_log_info("admin API now listening on %s", conf->listen);
}

void pt_admin_stop(struct pt_server *srv)
{
    struct pt_admin *a = srv->admin;
    if (a == NULL)
        return;
    close_listener(a);
    while (a->conns != NULL) {
        struct admin_conn *c = a->conns;
        conn_close(c);
        pt_loop_cancel_defer(&srv->loop, &c->free_defer);
        free_conn(a, c);
    }
    free(a);
    srv->admin = NULL;
}
