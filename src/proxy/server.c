/*
 * Process lifecycle.
 *
 * Signals are blocked in every thread and read from a signalfd on the main
 * loop, so handlers never run in the middle of worker code.
 *
 * Drain (SIGTERM / SIGINT): each worker closes its listeners, closes idle
 * keep-alive connections, lets the requests in flight finish (their
 * connections close after the response) and stops when it has no
 * connection left.  If that takes longer than server.drain_timeout the
 * workers are told to stop at once.  A second signal also stops at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/compiler.h"
#include "core/log.h"
#include "config/snapshot.h"
#include "net/sock.h"
#include "plugins/access_log.h"
#include "proxy/server.h"
#include "proxy/worker.h"

#define LISTEN_BACKLOG 4096

static void stop_workers(struct pt_server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++)
        pt_worker_stop(&srv->workers[i]);
}

static void drain_timeout(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct pt_server *srv = PT_CONTAINER_OF(t, struct pt_server, drain_timer);
    pt_log_warn("drain timeout: closing %ld remaining connections", atomic_load(&srv->connections));
    stop_workers(srv);
}

static void begin_drain(struct pt_server *srv)
{
    if (srv->draining) {
        pt_log_info("second signal: stopping now");
        stop_workers(srv);
        return;
    }
    srv->draining = true;
    pt_log_info("draining: finishing %ld connections (up to %llu ms)",
                atomic_load(&srv->connections),
                (unsigned long long)srv->snap->server.drain_timeout_ms);
    for (unsigned i = 0; i < srv->nworkers; i++)
        pt_worker_drain(&srv->workers[i]);
    pt_timer_arm(&srv->loop, &srv->drain_timer, srv->snap->server.drain_timeout_ms, drain_timeout);
}

static void signal_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events)
{
    (void)loop;
    (void)events;
    struct pt_server *srv = PT_CONTAINER_OF(io, struct pt_server, signal_io);
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            begin_drain(srv);
            break;
        case SIGHUP:
            pt_log_warn("SIGHUP: configuration reload is not supported yet; restart to apply");
            break;
        case SIGUSR1: /* log rotation: reopen the access-log files */
            pt_access_log_reopen_all();
            break;
        default:
            break;
        }
    }
}

static void worker_exited_task(struct pt_loop *loop, void *arg)
{
    struct pt_server *srv = arg;
    if (atomic_load(&srv->workers_running) == 0)
        pt_loop_stop(loop);
}

void pt_server_worker_exited(struct pt_server *srv, struct pt_worker *w)
{
    (void)w;
    atomic_fetch_sub(&srv->workers_running, 1);
    pt_loop_post(&srv->loop, worker_exited_task, srv);
}

/* Bind every listener for every worker before any thread starts, so that a
 * port in use is reported (exit 2) before we claim to be running. */
static int bind_all(const struct pt_snapshot *snap, unsigned nworkers, int *fds)
{
    size_t nl = snap->server.nlisten;
    for (size_t i = 0; i < nl * nworkers; i++)
        fds[i] = -1;
    for (unsigned w = 0; w < nworkers; w++) {
        for (size_t i = 0; i < nl; i++) {
            const struct pt_listen_conf *l = &snap->server.listen[i];
            int fd =
                pt_sock_listen((const struct sockaddr *)&l->addr, l->addrlen, true, LISTEN_BACKLOG);
            if (fd == -1) {
                fprintf(stderr, "portico: cannot listen on %s: %s\n", l->address, strerror(errno));
                for (size_t k = 0; k < nl * nworkers; k++)
                    if (fds[k] != -1)
                        close(fds[k]);
                return -1;
            }
            fds[w * nl + i] = fd;
        }
    }
    return 0;
}

int pt_server_run(struct pt_snapshot *snap, const char *config_path)
{
    struct pt_server srv;
    memset(&srv, 0, sizeof(srv));
    srv.snap = snap;
    srv.config_path = config_path;
    unsigned nworkers = snap->server.workers ? snap->server.workers : 1;
    size_t nl = snap->server.nlisten;
    int rc = 2;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the workers */
    signal(SIGPIPE, SIG_IGN);

    int *fds = pt_calloc(nl * nworkers + 1, sizeof(int));
    srv.workers = pt_calloc(nworkers, sizeof(*srv.workers));
    if (fds == NULL || srv.workers == NULL) {
        fprintf(stderr, "portico: out of memory\n");
        goto out;
    }
    if (bind_all(snap, nworkers, fds) != 0)
        goto out;
    if (pt_loop_init(&srv.loop) != 0) {
        fprintf(stderr, "portico: cannot create the event loop: %s\n", strerror(errno));
        goto out;
    }
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd == -1 || pt_loop_add_events(&srv.loop, &srv.signal_io, sfd, signal_cb, EPOLLIN) != 0) {
        fprintf(stderr, "portico: signalfd: %s\n", strerror(errno));
        goto out_loop;
    }
    pt_timer_init(&srv.drain_timer);
    pt_loop_update_time(&srv.loop);
    srv.started_wall_ms = (uint64_t)srv.loop.wall_ms;
    for (unsigned i = 0; i < nworkers; i++) {
        if (pt_worker_init(&srv.workers[i], &srv, i, fds + (size_t)i * nl, nl) != 0) {
            fprintf(stderr, "portico: cannot start worker %u: %s\n", i, strerror(errno));
            goto out_workers;
        }
    }
    srv.nworkers = nworkers;
    atomic_store(&srv.workers_running, nworkers);
    for (unsigned i = 0; i < nworkers; i++) {
        if (pt_worker_start(&srv.workers[i]) != 0) {
            fprintf(stderr, "portico: cannot start worker thread %u\n", i);
            atomic_store(&srv.workers_running, i);
            for (unsigned k = 0; k < i; k++)
                pt_worker_stop(&srv.workers[k]);
            for (unsigned k = 0; k < i; k++)
                pt_worker_join(&srv.workers[k]);
            srv.nworkers = nworkers;
            goto out_workers;
        }
    }
    for (size_t i = 0; i < nl; i++)
        pt_log_info("listening on %s", snap->server.listen[i].address);
    pt_log_info("portico %s started: %u worker%s, %zu route%s, %zu service%s", PT_VERSION, nworkers,
                nworkers == 1 ? "" : "s", snap->nroutes, snap->nroutes == 1 ? "" : "s",
                snap->nservices, snap->nservices == 1 ? "" : "s");
    pt_loop_run(&srv.loop);
    for (unsigned i = 0; i < nworkers; i++)
        pt_worker_join(&srv.workers[i]);
    pt_log_info("stopped");
    rc = 0;
out_workers:
    for (unsigned i = 0; i < nworkers; i++)
        if (srv.workers[i].snap != NULL)
            pt_worker_destroy(&srv.workers[i]);
    /* listener fds were closed by the workers that ran; close the rest */
    if (rc != 0)
        for (size_t k = 0; k < nl * nworkers; k++)
            if (fds[k] != -1)
                close(fds[k]);
    close(sfd);
out_loop:
    pt_timer_disarm(&srv.loop, &srv.drain_timer);
    pt_loop_destroy(&srv.loop);
out:
    free(fds);
    free(srv.workers);
    return rc;
}
