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
#include "config/diag.h"

struct pt_snapshot;
struct pt_worker;
struct pt_health_checks;
struct pt_discovery;
struct pt_admin;
struct pt_server;
struct pt_metrics;

/** What the layers above the server (admin API) hook into; main thread; any may be NULL. */
struct pt_server_hooks {
    int (*started)(struct pt_server *srv);         /* workers run; -1 = fail startup (exit 2) */
    void (*config_changed)(struct pt_server *srv); /* a new snapshot was published */
    void (*stopping)(struct pt_server *srv);       /* before the workers are joined */
};

struct pt_server {
    const struct pt_server_hooks *hooks;
    struct pt_snapshot *snap; /* current configuration (main thread's reference) */
    const char *config_path;  /* NULL when the configuration did not come from a file */
    uint64_t version;         /* config_version: grows with each applied change */
    uint64_t applied_hash;    /* of the file content last applied (inotify dedup) */
    atomic_ulong reloads_ok, reloads_failed;
    int *listen_fds; /* nworkers x nlisten, as handed to the workers */
    size_t nlisten;
    int inotify_fd;
    struct pt_io inotify_io;
    struct pt_timer reload_timer; /* debounces file-change events */
    struct pt_admin *admin;       /* NULL without admin.listen */
    bool ready;                   /* every listener up and the configuration loaded */
    struct pt_worker *workers;
    unsigned nworkers;
    atomic_uint workers_running;
    struct pt_loop loop; /* main thread: signals, timers */
    struct pt_io signal_io;
    struct pt_timer drain_timer;
    bool draining;
    atomic_long connections;
    uint64_t started_wall_ms;
    struct pt_health_checks *checks; /* active health checks, on `loop` */
    struct pt_discovery *discovery;  /* DNS discovery, on `loop`; NULL if c-ares cannot start */
    bool discovery_settled;          /* every first lookup ended once after start (a latch) */
    char *applied_text; /* the configuration text in use (NULL: none, e.g. proxy mode) */
    size_t applied_len;
    struct pt_defer rediscover; /* discovery changed some targets: compile applied_text again */
};

/**
 * Run the gateway with this snapshot until it is told to stop.  Returns the
 * process exit code: 0 after a clean drain, 2 on a runtime failure (e.g. a
 * port already in use), with a one-line reason on stderr.
 */
int pt_server_run(struct pt_snapshot *snap, const char *config_path,
                  const struct pt_server_hooks *hooks);

/**
 * Reload the configuration file (SIGHUP, the file changed).  Every error is
 * recorded in d (and logged); nothing changes unless the whole file is
 * valid.  0 or -1.
 */
int pt_server_reload_file(struct pt_server *srv, struct pt_diag *d);

/**
 * Apply a complete configuration given as text (PUT /config).  Validated
 * first: on any error nothing changes and d says why (-1).  On success the
 * text is written back to the configuration file atomically (temporary file
 * + rename) when there is one, and the new snapshot is published (0).
 * Returns -2 when the new configuration is valid but cannot be applied or
 * written (d says why).
 */
int pt_server_apply_text(struct pt_server *srv, const char *text, size_t len, struct pt_diag *d);

/** Replace the running snapshot with snap (which the server takes over). 0 or -1 (d says why). */
int pt_server_publish(struct pt_server *srv, struct pt_snapshot *snap, struct pt_diag *d);

/** Called by a worker thread when its loop has ended. */
void pt_server_worker_exited(struct pt_server *srv, struct pt_worker *w);

/** Count client connections (for /status); cheap and rare (per connection, not per request). */
static inline void pt_server_conn_delta(struct pt_server *srv, long d)
{
    atomic_fetch_add_explicit(&srv->connections, d, memory_order_relaxed);
}

#endif
