/*
 * A worker thread: its own event loop, listening sockets (SO_REUSEPORT),
 * client connections, upstream pool and counters (DESIGN principle 1).
 */
#ifndef PT_PROXY_WORKER_H
#define PT_PROXY_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "upstream/call.h"
#include "upstream/pool.h"

struct pt_server;
struct pt_snapshot;
struct pt_h1_conn;
struct pt_exchange;
struct pt_worker;
struct pt_metrics;

/**
 * A worker's hold on one configuration snapshot.  Requests count themselves
 * here (a plain counter: only this worker touches it); a snapshot that is no
 * longer current is released when its last request ends.
 */
struct pt_snap_hold {
    struct pt_snapshot *snap;
    unsigned long inflight;
    struct pt_snap_hold *next; /* retired holds */
};

/*
 * Work a worker does for no client connection (a cache's background
 * refresh).  It counts as a connection (pt_worker_conn_added), so a drain
 * waits for it; when the worker is stopped before it ends (drain_timeout,
 * or the loop ending), kill() must stop it and free it at once.
 */
struct pt_worker_job {
    struct pt_worker_job *prev, *next;
    void (*kill)(struct pt_worker_job *job);
};

struct pt_listener {
    struct pt_io io;
    struct pt_worker *worker;
    size_t index; /* into snapshot->server.listen */
    bool open;
};

struct pt_worker {
    unsigned id;
    pthread_t thread;
    struct pt_server *server;
    struct pt_loop loop;
    struct pt_pool pool;
    struct pt_upstream_ctx up;
    struct pt_snapshot *snap; /* new requests start on this one (hold->snap) */
    struct pt_snap_hold *hold;
    struct pt_snap_hold *retired; /* older snapshots with requests still in flight */
    /* written by this worker only; read by the admin API's scrapes until pt_worker_destroy */
    struct pt_metrics *metrics;
    struct pt_listener *listeners;
    size_t nlisteners;
    struct pt_listener *old_listeners; /* replaced by a reload; freed after the event batch */
    struct pt_defer old_listeners_defer;
    struct pt_h1_conn *conns;   /* every client connection, for draining */
    struct pt_worker_job *jobs; /* background work, killed on stop */
    size_t nconns;
    size_t max_conns;
    bool draining;
    bool accept_paused; /* out of descriptors: listeners unwatched until accept_timer */
    struct pt_timer accept_timer;
    struct pt_exchange *free_exchanges;
    size_t nfree_exchanges;
};

/** Register a background job (kill is called if the worker stops first). */
void pt_worker_job_add(struct pt_worker *w, struct pt_worker_job *j,
                       void (*kill)(struct pt_worker_job *j));
/** The job ended by itself: forget it. */
void pt_worker_job_remove(struct pt_worker *w, struct pt_worker_job *j);

/** Set up the worker (loop, pool) with listener fds already bound by the server. */
int pt_worker_init(struct pt_worker *w, struct pt_server *srv, unsigned id, const int *listen_fds,
                   size_t nlisten);
int pt_worker_start(struct pt_worker *w);
void pt_worker_join(struct pt_worker *w);
void pt_worker_destroy(struct pt_worker *w);

/**
 * Switch the worker to a new snapshot (posted from the main thread; the
 * worker takes over one reference).  listen_fds (copied) are the worker's
 * listening sockets for snap->server.listen, in order: sockets it had and
 * that are not in the list are closed, new ones are watched.
 */
int pt_worker_set_snapshot(struct pt_worker *w, struct pt_snapshot *snap, const int *listen_fds,
                           size_t nlisten);

/** Requests start on the worker's current snapshot and end on the one they started with. */
struct pt_snap_hold *pt_worker_hold_snapshot(struct pt_worker *w);
void pt_worker_release_snapshot(struct pt_worker *w, struct pt_snap_hold *h);

/** Ask the worker (from any thread) to stop accepting and exit once idle. */
void pt_worker_drain(struct pt_worker *w);
/** Stop at once, dropping connections (drain timeout expired). */
void pt_worker_stop(struct pt_worker *w);

/** Connection bookkeeping for the codecs. */
void pt_worker_conn_added(struct pt_worker *w);
void pt_worker_conn_removed(struct pt_worker *w);

#endif
