/*
 * The process: binds the listeners, starts the workers, handles signals
 * (SIGTERM/SIGINT drain and stop), and waits for the workers to finish.
 * Its own loop runs on the main thread.
 */
#ifndef PT_PROXY_SERVER_H
#define PT_PROXY_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"

struct pt_snapshot;
struct pt_worker;

struct pt_server {
    struct pt_snapshot *snap; /* current configuration */
    const char *config_path;
    struct pt_worker *workers;
    unsigned nworkers;
    atomic_uint workers_running;
    struct pt_loop loop; /* main thread: signals, timers */
    struct pt_io signal_io;
    struct pt_timer drain_timer;
    bool draining;
    atomic_long connections;
    uint64_t started_wall_ms;
};

/**
 * Run the gateway with this snapshot until it is told to stop.  Returns the
 * process exit code: 0 after a clean drain, 2 on a runtime failure (e.g. a
 * port already in use), with a one-line reason on stderr.
 */
int pt_server_run(struct pt_snapshot *snap, const char *config_path);

/** Called by a worker thread when its loop has ended. */
void pt_server_worker_exited(struct pt_server *srv, struct pt_worker *w);

/** Count client connections (for /status); cheap and rare (per connection, not per request). */
static inline void pt_server_conn_delta(struct pt_server *srv, long d)
{
    atomic_fetch_add_explicit(&srv->connections, d, memory_order_relaxed);
}

#endif
