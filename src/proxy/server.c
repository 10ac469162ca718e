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
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/compiler.h"
#include "core/hash.h"
#include "core/log.h"
#include "config/config.h"
#include "config/snapshot.h"
#include "net/sock.h"
#include "plugins/access_log.h"
#include "proxy/server.h"
#include "proxy/worker.h"
#include "upstream/checker.h"
#include "upstream/discovery.h"

#define LISTEN_BACKLOG     4096
#define RELOAD_DEBOUNCE_MS 150

static void stop_workers(struct pt_server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++)
        pt_worker_stop(&srv->workers[i]);
}

static void drain_timeout(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct pt_server *srv = PT_CONTAINER_OF(t, struct pt_server, drain_timer);
    long n = atomic_load(&srv->connections);
    pt_log_warn("drain timeout: closing %ld remaining connection%s", n, n == 1 ? "" : "s");
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
    long n = atomic_load(&srv->connections);
    pt_log_info("draining: finishing %ld connection%s (up to %llu ms)", n, n == 1 ? "" : "s",
                (unsigned long long)srv->snap->server.drain_timeout_ms);
    for (unsigned i = 0; i < srv->nworkers; i++)
        pt_worker_drain(&srv->workers[i]);
    pt_timer_arm(&srv->loop, &srv->drain_timer, srv->snap->server.drain_timeout_ms, drain_timeout);
}

/* ---- reloads ---- */

static uint64_t content_hash(const char *p, size_t n)
{
    return pt_fnv1a(p, n, PT_FNV1A_OFFSET);
}

/*
 * What the file watch compares: the configuration text plus the identity
 * (inode, size, modification time) of every file it read, so that a renewed
 * certificate reloads like an edited configuration.
 */
static uint64_t files_hash(const struct pt_snapshot *snap)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; snap != NULL && i < snap->nfiles; i++) {
        struct stat st;
        uint64_t v[4] = {0};
        if (stat(snap->files[i], &st) == 0) {
            v[0] = (uint64_t)st.st_ino;
            v[1] = (uint64_t)st.st_size;
            v[2] = (uint64_t)st.st_mtim.tv_sec;
            v[3] = (uint64_t)st.st_mtim.tv_nsec;
        }
        h ^= content_hash((const char *)v, sizeof(v)) + i;
        h *= PT_FNV1A_PRIME;
    }
    return h;
}

static uint64_t signature(const char *text, size_t len, const struct pt_snapshot *snap)
{
    return content_hash(text, len) ^ files_hash(snap);
}

static void watch_dir_of(struct pt_server *srv, const char *path)
{
    if (srv->inotify_fd == -1)
        return;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    /* re-adding a watched directory returns the same watch: harmless */
    (void)inotify_add_watch(srv->inotify_fd, dirname(dir),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE);
}

static void watch_files(struct pt_server *srv)
{
    for (size_t i = 0; i < srv->snap->nfiles; i++)
        watch_dir_of(srv, srv->snap->files[i]);
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && st.st_size >= 0 && st.st_size < (off_t)(64u << 20)) {
        buf = pt_malloc((size_t)st.st_size + 1);
        size_t got = 0;
        while (buf != NULL && got < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (buf != NULL) {
            buf[got] = '\0';
            *len = got;
        }
    }
    close(fd);
    return buf;
}

static bool same_addr(const struct pt_listen_conf *a, const struct pt_listen_conf *b)
{
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static void release_snapshot(void *snap)
{
    pt_snapshot_unref(snap);
}

/* The main thread's upstream work follows the configuration: checkers and discovery. */
static void follow(struct pt_server *srv, struct pt_snapshot *snap)
{
    if (srv->checks != NULL)
        pt_health_checks_sync(srv->checks, snap->services, snap->nservices, pt_snapshot_ref(snap),
                              release_snapshot);
    if (srv->discovery != NULL)
        pt_discovery_sync(srv->discovery, snap->services, snap->nservices);
}

static int publish(struct pt_server *srv, struct pt_snapshot *snap, struct pt_diag *d,
                   bool new_version);

int pt_server_publish(struct pt_server *srv, struct pt_snapshot *snap, struct pt_diag *d)
{
    return publish(srv, snap, d, true);
}

/*
 * Publish snap.  new_version: a configuration change (config_version
 * grows); false for a snapshot that only differs by discovered targets.
 */
static int publish(struct pt_server *srv, struct pt_snapshot *snap, struct pt_diag *d,
                   bool new_version)
{
    unsigned nw = srv->nworkers;
    size_t nl = snap->server.nlisten;
    const struct pt_snapshot *old = srv->snap;
    if (srv->draining) {
        pt_diag_error(d, snap->path ? snap->path : "(config)", 0, 0,
                      "the gateway is draining; the configuration was not applied");
        pt_snapshot_unref(snap);
        return -1;
    }
    int *fds = pt_calloc(nl * nw + 1, sizeof(int));
    bool *fresh = pt_calloc(nl + 1, sizeof(bool));
    if (fds == NULL || fresh == NULL) {
        free(fds);
        free(fresh);
        pt_diag_error(d, "(config)", 0, 0, "out of memory");
        pt_snapshot_unref(snap);
        return -1;
    }
    /* keep the sockets of addresses that stay; bind the new ones now, so a
     * port in use fails the reload before anything changed */
    for (size_t i = 0; i < nl; i++) {
        size_t j = 0;
        while (j < srv->nlisten && !same_addr(&snap->server.listen[i], &old->server.listen[j]))
            j++;
        for (unsigned w = 0; w < nw; w++) {
            if (j < srv->nlisten) {
                fds[w * nl + i] = srv->listen_fds[w * srv->nlisten + j];
                continue;
            }
            const struct pt_listen_conf *l = &snap->server.listen[i];
            fresh[i] = true;
            fds[w * nl + i] =
                pt_sock_listen((const struct sockaddr *)&l->addr, l->addrlen, true, LISTEN_BACKLOG);
            if (fds[w * nl + i] == -1) {
                pt_diag_error(d, snap->path ? snap->path : "(config)", 0, 0,
                              "cannot listen on %s: %s", l->address, strerror(errno));
                for (size_t k = 0; k <= i; k++)
                    for (unsigned v = 0; v < nw; v++)
                        if (fresh[k] && fds[v * nl + k] > 0 && (k < i || v < w))
                            close(fds[v * nl + k]);
                free(fds);
                free(fresh);
                pt_snapshot_unref(snap);
                return -1;
            }
        }
    }
    snap->version = new_version ? ++srv->version : srv->version;
    for (unsigned w = 0; w < nw; w++) {
        if (pt_worker_set_snapshot(&srv->workers[w], pt_snapshot_ref(snap), fds + (size_t)w * nl,
                                   nl) != 0) {
            pt_snapshot_unref(snap);
            pt_log_err("worker %u: could not be told about the new configuration (out of memory)",
                       w);
        }
    }
    free(srv->listen_fds);
    srv->listen_fds = fds;
    srv->nlisten = nl;
    free(fresh);
    pt_snapshot_unref(srv->snap);
    srv->snap = snap;
    pt_log_level = snap->server.log_level;
    follow(srv, snap);
    watch_files(srv);
    if (srv->hooks != NULL && srv->hooks->config_changed != NULL)
        srv->hooks->config_changed(srv);
    return 0;
}

static void log_diag(const struct pt_diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        char *line = pt_diag_format(&d->entries[i]);
        if (line != NULL)
            pt_log(d->entries[i].is_error ? PT_LOG_ERR : PT_LOG_WARN, "%s", line);
        free(line);
    }
}

static struct pt_snapshot *load_text(struct pt_server *srv, const char *text, size_t len,
                                     struct pt_diag *d)
{
    struct pt_config_options opts = {.workers_override = srv->nworkers,
                                     .discovered = pt_discovery_lookup,
                                     .discovered_ctx = srv->discovery};
    const char *name = srv->config_path != NULL ? srv->config_path : "(api)";
    char dir[PATH_MAX] = ".";
    if (srv->config_path != NULL) {
        snprintf(dir, sizeof(dir), "%s", srv->config_path);
        char *slash = strrchr(dir, '/');
        if (slash == NULL)
            snprintf(dir, sizeof(dir), ".");
        else if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
    }
    struct pt_snapshot *s = pt_config_load_buffer_opts(name, dir, text, len, &opts, d);
    if (s != NULL && srv->config_path != NULL)
        s->path = srv->config_path;
    return s;
}

/* Remember the text now in use (discovery compiles it again). */
static void keep_text(struct pt_server *srv, const char *text, size_t len)
{
    char *copy = pt_malloc(len + 1);
    if (copy == NULL) {
        pt_log_warn("out of memory keeping the configuration text; discovery updates wait for "
                    "the next reload");
        return;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    free(srv->applied_text);
    srv->applied_text = copy;
    srv->applied_len = len;
}

/*
 * Discovery found other targets: compile the configuration in use again
 * (its discovery services take the new answers) and publish it like a
 * reload, without a new config_version.  Requests in flight keep their
 * snapshot, hence their targets.
 */
static void rediscover_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct pt_server *srv = arg;
    if (srv->applied_text == NULL || srv->draining)
        return;
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_snapshot *snap = load_text(srv, srv->applied_text, srv->applied_len, &d);
    if (snap == NULL || publish(srv, snap, &d, false) != 0) {
        log_diag(&d);
        pt_log_err("discovery: the configuration could not be compiled with the new targets");
    }
    pt_diag_free(&d);
}

static void discovery_changed(void *ctx)
{
    struct pt_server *srv = ctx;
    pt_loop_defer(&srv->loop, &srv->rediscover, rediscover_task, srv);
}

static int apply(struct pt_server *srv, struct pt_snapshot *snap, struct pt_diag *d,
                 const char *origin)
{
    if (pt_server_publish(srv, snap, d) != 0) {
        atomic_fetch_add(&srv->reloads_failed, 1);
        log_diag(d);
        pt_log_err("%s: configuration not applied", origin);
        return -1;
    }
    atomic_fetch_add(&srv->reloads_ok, 1);
    log_diag(d); /* warnings */
    size_t nr = srv->snap->nroutes, ns = srv->snap->nservices;
    pt_log_info("%s: configuration %llu applied (%zu route%s, %zu service%s)", origin,
                (unsigned long long)srv->version, nr, nr == 1 ? "" : "s", ns, ns == 1 ? "" : "s");
    return 0;
}

static int reload_from_file(struct pt_server *srv, struct pt_diag *d, const char *origin,
                            bool only_if_changed)
{
    if (srv->config_path == NULL) {
        pt_diag_error(d, "(config)", 0, 0, "there is no configuration file to reload");
        return -1;
    }
    size_t len = 0;
    char *text = read_file(srv->config_path, &len);
    if (text == NULL) {
        pt_diag_error(d, srv->config_path, 0, 0, "cannot read: %s", strerror(errno));
        atomic_fetch_add(&srv->reloads_failed, 1);
        log_diag(d);
        return -1;
    }
    uint64_t h = signature(text, len, srv->snap);
    if (only_if_changed && h == srv->applied_hash) {
        free(text);
        return 0;
    }
    struct pt_snapshot *snap = load_text(srv, text, len, d);
    if (snap != NULL)
        h = signature(text, len, snap);
    if (snap == NULL) {
        free(text);
        atomic_fetch_add(&srv->reloads_failed, 1);
        log_diag(d);
        pt_log_err("%s: the new configuration is invalid; keeping configuration %llu", origin,
                   (unsigned long long)srv->version);
        srv->applied_hash = h; /* do not retry the same broken content on every event */
        return -1;
    }
    srv->applied_hash = h;
    int rc = apply(srv, snap, d, origin);
    if (rc == 0)
        keep_text(srv, text, len);
    free(text);
    return rc;
}

int pt_server_reload_file(struct pt_server *srv, struct pt_diag *d)
{
    return reload_from_file(srv, d, "reload", false);
}

/* Write text next to path and rename it over path (atomic for readers). */
static int write_back(const char *path, const char *text, size_t len, struct pt_diag *d)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        pt_diag_error(d, path, 0, 0, "cannot write the configuration back: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0)
        (void)fchmod(fd, st.st_mode & 07777);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w <= 0) {
            if (w == -1 && errno == EINTR)
                continue;
            pt_diag_error(d, path, 0, 0, "cannot write the configuration back: %s",
                          strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        done += (size_t)w;
    }
    if (fsync(fd) == -1 || close(fd) == -1 || rename(tmp, path) == -1) {
        pt_diag_error(d, path, 0, 0, "cannot write the configuration back: %s", strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int pt_server_apply_text(struct pt_server *srv, const char *text, size_t len, struct pt_diag *d)
{
    struct pt_snapshot *snap = load_text(srv, text, len, d);
    if (snap == NULL) {
        atomic_fetch_add(&srv->reloads_failed, 1);
        return -1;
    }
    if (srv->config_path != NULL) {
        uint64_t before = srv->applied_hash;
        srv->applied_hash = signature(text, len, snap); /* our own write is not a change */
        if (write_back(srv->config_path, text, len, d) != 0) {
            srv->applied_hash = before;
            pt_snapshot_unref(snap);
            atomic_fetch_add(&srv->reloads_failed, 1);
            return -2;
        }
    }
    if (apply(srv, snap, d, "admin API") != 0)
        return -2;
    keep_text(srv, text, len);
    return 0;
}

/* The file (or its directory) changed: reload once things settle. */
static void reload_timer_cb(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct pt_server *srv = PT_CONTAINER_OF(t, struct pt_server, reload_timer);
    struct pt_diag d;
    pt_diag_init(&d);
    reload_from_file(srv, &d, "file change", true);
    pt_diag_free(&d);
}

static void inotify_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events)
{
    (void)events;
    struct pt_server *srv = PT_CONTAINER_OF(io, struct pt_server, inotify_io);
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(io->fd, buf, sizeof(buf)) > 0)
        ;
    if (!srv->draining)
        pt_timer_arm(loop, &srv->reload_timer, RELOAD_DEBOUNCE_MS, reload_timer_cb);
}

/* Watch the file's directory: editors and config managers replace files by renaming. */
static void watch_config(struct pt_server *srv)
{
    srv->inotify_fd = -1;
    if (srv->config_path == NULL)
        return;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", srv->config_path);
    const char *d = dirname(dir);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd == -1 || inotify_add_watch(fd, d, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) == -1 ||
        pt_loop_add_events(&srv->loop, &srv->inotify_io, fd, inotify_cb, EPOLLIN) != 0) {
        pt_log_warn("cannot watch %s for changes (%s); reload with SIGHUP", d, strerror(errno));
        if (fd != -1)
            close(fd);
        return;
    }
    srv->inotify_fd = fd;
    watch_files(srv);
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
        case SIGHUP: {
            struct pt_diag d;
            pt_diag_init(&d);
            if (srv->draining)
                pt_log_warn("SIGHUP ignored: draining");
            else
                reload_from_file(srv, &d, "SIGHUP", false);
            pt_diag_free(&d);
            break;
        }
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

/*
 * Every client connection can hold an upstream connection too, so the
 * descriptor limit bounds what max_connections can deliver.  Take the whole
 * hard limit (as HAProxy does; the soft default of 1024 would cap a busy
 * node at about 500 proxied connections) and say so when even that is short
 * (an info line, not a warning: max_connections is often set high on purpose
 * as "no limit of ours").
 * Running out anyway is handled: the listeners pause (worker.c), connects
 * fail over to 502/503 like any connection error.
 */
static void raise_fd_limit(const struct pt_snapshot *snap)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    uint64_t want = (uint64_t)snap->server.max_connections * 2 + 64;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
        pt_log_info("the descriptor limit (%llu) is below 2 x limits.max_connections + 64 = %llu; "
                    "raise it (ulimit -n, LimitNOFILE=) or lower max_connections",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

int pt_server_run(struct pt_snapshot *snap, const char *config_path,
                  const struct pt_server_hooks *hooks)
{
    struct pt_server srv;
    memset(&srv, 0, sizeof(srv));
    srv.snap = snap;
    srv.hooks = hooks;
    srv.config_path = config_path;
    srv.inotify_fd = -1;
    srv.version = 1;
    snap->version = 1;
    unsigned nworkers = snap->server.workers ? snap->server.workers : 1;
    size_t nl = snap->server.nlisten;
    int rc = 2, sfd = -1;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the workers */
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(snap);

    if (config_path != NULL) {
        size_t len = 0;
        char *text = read_file(config_path, &len);
        if (text != NULL) {
            srv.applied_hash = signature(text, len, snap);
            srv.applied_text = text; /* what discovery compiles again */
            srv.applied_len = len;
        }
    }
    int *fds = pt_calloc(nl * nworkers + 1, sizeof(int));
    srv.workers = pt_calloc(nworkers, sizeof(*srv.workers));
    if (fds == NULL || srv.workers == NULL) {
        fprintf(stderr, "portico: out of memory\n");
        free(fds);
        goto out;
    }
    if (bind_all(snap, nworkers, fds) != 0) {
        free(fds);
        goto out;
    }
    srv.listen_fds = fds;
    srv.nlisten = nl;
    if (pt_loop_init(&srv.loop) != 0) {
        fprintf(stderr, "portico: cannot create the event loop: %s\n", strerror(errno));
        goto out_fds;
    }
    sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd == -1 || pt_loop_add_events(&srv.loop, &srv.signal_io, sfd, signal_cb, EPOLLIN) != 0) {
        fprintf(stderr, "portico: signalfd: %s\n", strerror(errno));
        goto out_loop;
    }
    pt_timer_init(&srv.drain_timer);
    pt_timer_init(&srv.reload_timer);
    srv.checks = pt_health_checks_new(&srv.loop);
    srv.discovery = pt_discovery_new(&srv.loop, discovery_changed, &srv);
    if (srv.checks == NULL)
        pt_log_err("active health checks cannot start (out of memory)");
    if (srv.discovery == NULL)
        pt_log_err("DNS discovery cannot start (c-ares)");
    pt_loop_update_time(&srv.loop);
    srv.started_wall_ms = (uint64_t)srv.loop.wall_ms;
    for (unsigned i = 0; i < nworkers; i++) {
        if (pt_worker_init(&srv.workers[i], &srv, i, fds + (size_t)i * nl, nl) != 0) {
            fprintf(stderr, "portico: cannot start worker %u: %s\n", i, strerror(errno));
            goto out_workers;
        }
    }
    srv.nworkers = nworkers;
    unsigned started = 0;
    atomic_store(&srv.workers_running, nworkers);
    for (; started < nworkers; started++) {
        if (pt_worker_start(&srv.workers[started]) != 0) {
            fprintf(stderr, "portico: cannot start worker thread %u\n", started);
            break;
        }
    }
    if (started == nworkers && hooks != NULL && hooks->started != NULL && hooks->started(&srv) != 0)
        started = nworkers + 1; /* the hook printed why */
    if (started != nworkers) {
        atomic_store(&srv.workers_running, started > nworkers ? nworkers : started);
        for (unsigned k = 0; k < nworkers && k < started; k++)
            pt_worker_stop(&srv.workers[k]);
        for (unsigned k = 0; k < nworkers && k < started; k++)
            pt_worker_join(&srv.workers[k]);
        goto out_workers;
    }
    watch_config(&srv);
    follow(&srv, srv.snap);
    srv.ready = true;
    for (size_t i = 0; i < nl; i++)
        pt_log_info("listening on %s", snap->server.listen[i].address);
    pt_log_info("portico %s started: %u worker%s, %zu route%s, %zu service%s", PT_VERSION, nworkers,
                nworkers == 1 ? "" : "s", snap->nroutes, snap->nroutes == 1 ? "" : "s",
                snap->nservices, snap->nservices == 1 ? "" : "s");
    pt_loop_run(&srv.loop);
    srv.ready = false;
    if (hooks != NULL && hooks->stopping != NULL)
        hooks->stopping(&srv);
    for (unsigned i = 0; i < nworkers; i++)
        pt_worker_join(&srv.workers[i]);
    pt_log_info("stopped");
    rc = 0;
out_workers:
    for (unsigned i = 0; i < nworkers; i++)
        if (srv.workers[i].hold != NULL)
            pt_worker_destroy(&srv.workers[i]);
out_loop:
    if (srv.inotify_fd != -1)
        close(srv.inotify_fd);
    if (sfd != -1)
        close(sfd);
    pt_timer_disarm(&srv.loop, &srv.drain_timer);
    pt_timer_disarm(&srv.loop, &srv.reload_timer);
    pt_health_checks_free(srv.checks);
    pt_discovery_free(srv.discovery);
    pt_loop_cancel_defer(&srv.loop, &srv.rediscover);
    pt_loop_flush_defers(&srv.loop);
    pt_loop_destroy(&srv.loop);
out_fds:
    /* the workers that ran closed their listeners; a failed start closes them here */
    if (rc != 0)
        for (size_t k = 0; k < srv.nlisten * nworkers; k++)
            if (srv.listen_fds[k] > 0)
                close(srv.listen_fds[k]);
    free(srv.listen_fds);
out:
    free(srv.workers);
    free(srv.applied_text);
    pt_snapshot_unref(srv.snap);
    return rc;
}
