/*
 * Worker threads.  Each owns a loop, one SO_REUSEPORT listening socket per
 * configured address (the kernel spreads new connections across workers),
 * its client connections and its upstream pool.  The only cross-thread
 * traffic is the server posting tasks (drain, stop) through the loop's queue.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/compiler.h"
#include "core/log.h"
#include "core/metrics.h"
#include "net/sock.h"
#include "config/snapshot.h"
#include "proxy/h1_server.h"
#include "proxy/proxy.h"
#include "proxy/server.h"
#include "proxy/worker.h"
#include "router/router.h"

#define ACCEPT_BATCH    64
#define ACCEPT_PAUSE_MS 100 /* how long a worker stops accepting when out of descriptors */

static void accept_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events);

/* Start or stop watching every open listener (both are idempotent). */
static void watch_listeners(struct pt_worker *w, bool on)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct pt_listener *l = &w->listeners[i];
        if (!l->open)
            continue;
        if (on)
            pt_loop_add_events(&w->loop, &l->io, l->io.fd, accept_cb, EPOLLIN);
        else
            pt_loop_del(&w->loop, &l->io);
    }
}

static void accept_resume(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct pt_worker *w = PT_CONTAINER_OF(t, struct pt_worker, accept_timer);
    w->accept_paused = false;
    if (!w->draining)
        watch_listeners(w, true);
}

/*
 * Out of descriptors (or socket memory): the connection stays queued and the
 * listener stays readable, so keep accepting would spin the loop at 100 %
 * CPU.  Stop watching the listeners for a moment, like nginx does; the
 * connections being served meanwhile free descriptors and the backlog keeps
 * the waiting clients.
 */
static void accept_pause(struct pt_worker *w)
{
    if (w->accept_paused)
        return;
    w->accept_paused = true;
    watch_listeners(w, false);
    pt_timer_arm(&w->loop, &w->accept_timer, ACCEPT_PAUSE_MS, accept_resume);
}

static void accept_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct pt_listener *l = PT_CONTAINER_OF(io, struct pt_listener, io);
    struct pt_worker *w = l->worker;
    for (int i = 0; i < ACCEPT_BATCH && l->open; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            pt_log_ratelimited(PT_LOG_ERR, 1, "worker %u: accept: %s%s", w->id, strerror(errno),
                               pt_sock_accept_exhausted(errno) ? "; not accepting for 100 ms" : "");
            if (pt_sock_accept_exhausted(errno))
                accept_pause(w);
            return;
        }
        if (w->nconns >= w->max_conns) {
            pt_log_ratelimited(PT_LOG_WARN, 1, "worker %u: max_connections reached", w->id);
            close(fd);
            continue;
        }
        const struct pt_server_conf *sc = &w->snap->server;
        pt_h1_conn_accept(w, fd, (struct sockaddr *)&ss, len,
                          l->index < sc->nlisten ? sc->listen[l->index].tls : NULL);
    }
}

int pt_worker_init(struct pt_worker *w, struct pt_server *srv, unsigned id, const int *listen_fds,
                   size_t nlisten)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->server = srv;
    pt_timer_init(&w->accept_timer);
    if (pt_loop_init(&w->loop) != 0)
        return PT_ERR_IO;
    w->loop.data = w;
    if (pt_pool_init(&w->pool, &w->loop) != 0)
        return PT_ERR_NOMEM;
    w->up.loop = &w->loop;
    w->up.pool = &w->pool;
    w->up.worker_id = id;
    w->hold = pt_calloc(1, sizeof(*w->hold));
    if (w->hold == NULL)
        return PT_ERR_NOMEM;
    w->hold->snap = pt_snapshot_ref(srv->snap);
    w->snap = w->hold->snap;
    w->metrics = pt_metrics_new(); /* after hold: pt_worker_destroy cleans up from here on */
    if (w->metrics == NULL)
        return PT_ERR_NOMEM;
    w->up.metrics = w->metrics;
    unsigned nw = w->snap->server.workers ? w->snap->server.workers : 1;
    w->max_conns = w->snap->server.max_connections / nw;
    if (w->max_conns == 0)
        w->max_conns = 1;
    w->listeners = pt_calloc(nlisten ? nlisten : 1, sizeof(*w->listeners));
    if (w->listeners == NULL)
        return PT_ERR_NOMEM;
    w->nlisteners = nlisten;
    for (size_t i = 0; i < nlisten; i++) {
        struct pt_listener *l = &w->listeners[i];
        l->worker = w;
        l->index = i;
        l->open = true;
        if (pt_loop_add_events(&w->loop, &l->io, listen_fds[i], accept_cb, EPOLLIN) != 0)
            return PT_ERR_IO;
    }
    return 0;
}

static void close_listeners(struct pt_worker *w)
{
    pt_timer_disarm(&w->loop, &w->accept_timer);
    w->accept_paused = false;
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct pt_listener *l = &w->listeners[i];
        if (!l->open)
            continue;
        pt_loop_del(&w->loop, &l->io);
        close(l->io.fd);
        l->open = false;
    }
}

static void maybe_exit(struct pt_worker *w)
{
    if (w->draining && w->nconns == 0)
        pt_loop_stop(&w->loop);
}

static void drain_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct pt_worker *w = arg;
    if (w->draining)
        return;
    w->draining = true;
    close_listeners(w);
    struct pt_h1_conn *c = w->conns;
    while (c != NULL) {
        struct pt_h1_conn *next = pt_h1_conn_next(c);
        pt_h1_conn_drain(c);
        c = next;
    }
    pt_pool_close_idle(&w->pool);
    maybe_exit(w);
}

void pt_worker_job_add(struct pt_worker *w, struct pt_worker_job *j,
                       void (*kill)(struct pt_worker_job *j))
{
    j->kill = kill;
    j->prev = NULL;
    j->next = w->jobs;
    if (w->jobs != NULL)
        w->jobs->prev = j;
    w->jobs = j;
}

void pt_worker_job_remove(struct pt_worker *w, struct pt_worker_job *j)
{
    if (j->prev != NULL)
        j->prev->next = j->next;
    else if (w->jobs == j)
        w->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

/* Every connection and background job, now (each kill unlinks itself). */
static void kill_everything(struct pt_worker *w)
{
    while (w->conns != NULL)
        pt_h1_conn_kill(w->conns);
    while (w->jobs != NULL)
        w->jobs->kill(w->jobs);
}

static void stop_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct pt_worker *w = arg;
    w->draining = true;
    close_listeners(w);
    kill_everything(w);
    pt_loop_stop(&w->loop);
}

void pt_worker_drain(struct pt_worker *w)
{
    pt_loop_post(&w->loop, drain_task, w);
}

void pt_worker_stop(struct pt_worker *w)
{
    pt_loop_post(&w->loop, stop_task, w);
}

void pt_worker_conn_added(struct pt_worker *w)
{
    w->nconns++;
    pt_server_conn_delta(w->server, 1);
}

void pt_worker_conn_removed(struct pt_worker *w)
{
    w->nconns--;
    pt_server_conn_delta(w->server, -1);
    maybe_exit(w);
}

static void *worker_main(void *arg)
{
    struct pt_worker *w = arg;
    pt_loop_run(&w->loop);
    /* leave nothing behind: connections, pooled upstreams, recycled memory */
    close_listeners(w);
    kill_everything(w);
    pt_pool_destroy(&w->pool);
    pt_loop_flush_defers(&w->loop);
    while (w->free_exchanges != NULL) {
        struct pt_exchange *ex = w->free_exchanges;
        w->free_exchanges = ex->next_free;
        pt_arena_destroy(&ex->arena);
        free(ex);
    }
    pt_router_thread_cleanup();
    pt_arena_thread_cleanup();
    pt_buf_thread_cleanup();
    pt_server_worker_exited(w->server, w);
    return NULL;
}

int pt_worker_start(struct pt_worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : PT_ERR;
}

void pt_worker_join(struct pt_worker *w)
{
    pthread_join(w->thread, NULL);
}

void pt_worker_destroy(struct pt_worker *w)
{
    free(w->listeners);
    w->listeners = NULL;
    free(w->old_listeners);
    w->old_listeners = NULL;
    while (w->retired != NULL) {
        struct pt_snap_hold *h = w->retired;
        w->retired = h->next;
        pt_snapshot_unref(h->snap);
        free(h);
    }
    if (w->hold != NULL) {
        pt_snapshot_unref(w->hold->snap);
        free(w->hold);
    }
    w->hold = NULL;
    w->snap = NULL;
    pt_loop_destroy(&w->loop);
    pt_metrics_free(w->metrics); /* the admin API no longer scrapes (it stopped first) */
    w->metrics = NULL;
    w->up.metrics = NULL;
}

/* ---- configuration changes ---- */

struct pt_snap_hold *pt_worker_hold_snapshot(struct pt_worker *w)
{
    w->hold->inflight++;
    return w->hold;
}

void pt_worker_release_snapshot(struct pt_worker *w, struct pt_snap_hold *h)
{
    if (--h->inflight > 0 || h == w->hold)
        return;
    struct pt_snap_hold **pp = &w->retired;
    while (*pp != NULL && *pp != h)
        pp = &(*pp)->next;
    if (*pp == h)
        *pp = h->next;
    pt_snapshot_unref(h->snap);
    free(h);
}

struct snapshot_change {
    struct pt_worker *w;
    struct pt_snapshot *snap;
    size_t nlisten;
    int fds[];
};

static bool fd_listed(const int *fds, size_t n, int fd)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] == fd)
            return true;
    return false;
}

static void free_old_listeners(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct pt_worker *w = arg;
    free(w->old_listeners);
    w->old_listeners = NULL;
}

/*
 * Take over a new set of listening sockets.  Sockets kept from the old set
 * are re-registered because the epoll data must point at their new struct;
 * sockets no longer listed are closed (the kernel then stops queueing new
 * connections on them; connections already accepted carry on).
 */
static void apply_listeners(struct pt_worker *w, const int *fds, size_t n)
{
    struct pt_listener *nl = pt_calloc(n ? n : 1, sizeof(*nl));
    if (nl == NULL) {
        pt_log_err("worker %u: out of memory applying new listeners; keeping the old ones", w->id);
        return;
    }
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct pt_listener *l = &w->listeners[i];
        if (!l->open)
            continue;
        pt_loop_del(&w->loop, &l->io);
        if (!fd_listed(fds, n, l->io.fd)) {
            close(l->io.fd);
            l->open = false; /* an event of this batch may still name it */
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct pt_listener *l = &nl[i];
        l->worker = w;
        l->index = i;
        if (w->draining) {
            close(fds[i]);
            continue;
        }
        l->open = true;
        l->io.fd = fds[i];
        if (w->accept_paused)
            continue; /* accept_resume() watches it */
        if (pt_loop_add_events(&w->loop, &l->io, fds[i], accept_cb, EPOLLIN) != 0) {
            pt_log_err("worker %u: cannot watch a listener: %s", w->id, strerror(errno));
            close(fds[i]);
            l->open = false;
        }
    }
    /* Events already fetched in this batch may point into the old array. */
    free(w->old_listeners);
    w->old_listeners = w->listeners;
    pt_loop_defer(&w->loop, &w->old_listeners_defer, free_old_listeners, w);
    w->listeners = nl;
    w->nlisteners = n;
}

static void snapshot_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct snapshot_change *ch = arg;
    struct pt_worker *w = ch->w;
    struct pt_snap_hold *h = pt_calloc(1, sizeof(*h));
    if (h == NULL) {
        pt_log_err("worker %u: out of memory switching configuration", w->id);
        pt_snapshot_unref(ch->snap);
        free(ch);
        return;
    }
    h->snap = ch->snap;
    struct pt_snap_hold *old = w->hold;
    w->hold = h;
    w->snap = h->snap;
    if (old->inflight == 0) {
        pt_snapshot_unref(old->snap);
        free(old);
    } else {
        old->next = w->retired;
        w->retired = old;
    }
    apply_listeners(w, ch->fds, ch->nlisten);
    free(ch);
}

int pt_worker_set_snapshot(struct pt_worker *w, struct pt_snapshot *snap, const int *listen_fds,
                           size_t nlisten)
{
    struct snapshot_change *ch = pt_malloc(sizeof(*ch) + nlisten * sizeof(int));
    if (ch == NULL)
        return PT_ERR_NOMEM;
    ch->w = w;
    ch->snap = snap;
    ch->nlisten = nlisten;
    memcpy(ch->fds, listen_fds, nlisten * sizeof(int));
    if (pt_loop_post(&w->loop, snapshot_task, ch) != 0) {
        free(ch);
        return PT_ERR_NOMEM;
    }
    return 0;
}
