/*
 * access-log (SPEC §3, §8, §10): one line per request.
 *
 *   plugins:
 *     access-log: { format: json, path: logs/access.log }
 *
 * format: json (the SPEC §10 fields, one JSON object per line) or combined
 * (Apache/nginx); path: stderr (default) or a file, relative to the
 * configuration file's folder, opened for appending (created if missing).
 *
 * The line is built at on_log, after the response, from the exchange:
 * the fields are gathered into a struct pt_al_record and formatted by the
 * precompiled format (access_log_format.c) into a per-thread buffer, then
 * handed to the file's writer thread (logfile.c).  The worker never writes
 * to the file and never waits for it; if the writer falls behind, lines are
 * dropped and counted (pt_access_log_dropped) instead.
 *
 * Every instance naming the same file shares its writer.  SIGUSR1 reopens
 * the files (pt_access_log_reopen_all, called by the server's signal
 * handler) for log rotation.  On shutdown the last instance to go flushes
 * every pending line before the writer thread is joined.
 */
#include <string.h>

#include "config/config.h"
#include "config/schema.h"
#include "config/snapshot.h"
#include "plugins/access_log.h"
#include "plugins/logfile.h"
#include "plugins/plugin.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "proxy/worker.h"
#include "upstream/service.h"

struct access_log {
    enum pt_al_format_id format;
    const char *path;
    struct pt_logfile *file; /* NULL only in fuzzing builds */
};

static const char *const format_names[] = {"json", "combined", NULL};

static const struct pt_conf_key keys[] = {
    PT_CONF_ENUM("format", struct access_log, format, format_names, "json"),
    PT_CONF_STRING("path", struct access_log, path, "stderr"),
    {0},
};

static void destroy(void *state)
{
    struct access_log *l = state;
    pt_logfile_close(l->file);
}

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    struct access_log *l = pt_arena_calloc(c->a, sizeof(*l));
    if (l == NULL || pt_conf_apply(c, keys, opts, l, "access-log", NULL) != 0)
        return -1;
    const struct pt_conf_node *at = pt_conf_map_get(opts, "path");
    if (l->path[0] == '\0') {
        pt_conf_error(c, at, "path: must not be empty (use stderr or a file name)");
        return -1;
    }
#ifndef PT_FUZZING /* the config fuzzer must not create files */
    const char *file = NULL;
    if (strcmp(l->path, "stderr") != 0) {
        file = pt_config_resolve_path(c->a, c->snap->base_dir, l->path);
        if (file == NULL)
            return -1;
    }
    char err[256];
    l->file = pt_logfile_open(file, err, sizeof(err));
    if (l->file == NULL) {
        pt_conf_error(c, at != NULL ? at : opts, "path: %s: %s", l->path, err);
        return -1;
    }
#endif
    *state = l;
    return 0;
}

static void gather(struct pt_al_record *r, struct pt_exchange *ex, char *ip, size_t iplen,
                   char *trace)
{
    const struct pt_loop *loop = &ex->worker->loop;
    const struct pt_request *req = &ex->req;
    uint64_t now = pt_loop_now(loop);
    memset(r, 0, sizeof(*r));
    r->duration_ms = now > ex->start_ms ? now - ex->start_ms : 0;
    r->start_ms = loop->wall_ms - (int64_t)r->duration_ms;
    r->request_id = pt_str_make(ex->request_id, ex->request_id_len);
    pt_trace_id_hex(&ex->trace, trace);
    r->trace_id = pt_str_make(trace, 32);
    r->client_ip = pt_str_make(ip, pt_ip_format(&ex->client_ip, ip, iplen));
    r->method = req->method;
    r->path = req->path;
    r->query =
        req->has_query ? (req->query.ptr != NULL ? req->query : PT_STR_LIT("")) : PT_STR_NULL;
    r->http_minor = req->minor_version;
    if (ex->route != NULL) {
        r->route = pt_str_cstr(ex->route->name);
        if (ex->route->service != NULL)
            r->service = pt_str_cstr(ex->route->service->name);
    }
    const struct pt_target *t = ex->up_started ? pt_upcall_target(&ex->up) : NULL;
    if (t != NULL)
        r->target = pt_str_cstr(t->address);
    if (ex->consumer != NULL)
        r->consumer = pt_str_cstr(ex->consumer);
    if (ex->cache_result != NULL)
        r->cache = pt_str_cstr(ex->cache_result);
    r->status = ex->status != 0 ? ex->status : 499; /* nginx's "client closed request" */
    r->bytes_in = ex->bytes_in;
    r->bytes_out = ex->bytes_out;
    r->upstream_ms = ex->up_started && ex->up.head_delivered ? (int64_t)ex->upstream_ms : -1;
    if (ex->error != NULL)
        r->error = pt_str_cstr(ex->error);
    else if (ex->status == 0)
        r->error = PT_STR_LIT("the client closed the connection before the response");
    const struct pt_h1_header *h;
    if ((h = pt_h1_find_header(req->headers, req->nheaders, PT_STR_LIT("Referer"))) != NULL)
        r->referer = h->value;
    if ((h = pt_h1_find_header(req->headers, req->nheaders, PT_STR_LIT("User-Agent"))) != NULL)
        r->user_agent = h->value;
}

static _Thread_local char tl_line[PT_AL_LINE_MAX];

static void on_log(void *state, struct pt_exchange *ex)
{
    const struct access_log *l = state;
    if (l->file == NULL)
        return;
    struct pt_al_record r;
    char ip[64], trace[32];
    gather(&r, ex, ip, sizeof(ip), trace);
    size_t n = pt_al_format(l->format, &r, tl_line, sizeof(tl_line));
    if (n > 0)
        (void)pt_logfile_write(l->file, tl_line, n);
}

const struct pt_plugin_ops pt_plugin_access_log = {
    .name = "access-log",
    .order = PT_ORDER_ACCESS_LOG,
    .configure = configure,
    .destroy = destroy,
    .on_log = on_log,
};

void pt_access_log_reopen_all(void)
{
    pt_logfile_reopen_all();
}

uint64_t pt_access_log_dropped(void)
{
    return pt_logfile_dropped_total();
}
