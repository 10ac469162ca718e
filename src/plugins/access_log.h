/*
 * The access-log plugin (SPEC §3, §8, §10): one line per request, written
 * by a background thread per file (src/plugins/logfile.c).
 *
 * The process-wide part (for the server's signal handler and metrics):
 * pt_access_log_reopen_all() and pt_access_log_dropped().  The rest is the
 * line formatter, shared by the plugin and its unit tests.
 */
#ifndef PT_PLUGINS_ACCESS_LOG_H
#define PT_PLUGINS_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

/** Reopen every access-log file by its path (SIGUSR1, after log rotation).  Returns at once. */
void pt_access_log_reopen_all(void);

/** Access-log lines dropped because a writer fell behind (or a write failed), since start. */
uint64_t pt_access_log_dropped(void);

/* ---- line formatting (access_log_format.c) ---- */

/** Longest line formatted; longer ones are dropped (values are capped well below this). */
#define PT_AL_LINE_MAX 32768
/** Request path and User-Agent / Referer bytes logged at most (the rest is cut). */
#define PT_AL_PATH_MAX  4096
#define PT_AL_AGENT_MAX 1024

/**
 * What one line says about one request, gathered from the exchange.  A
 * string with ptr NULL is absent (JSON null, "-" in combined).
 */
struct pt_al_record {
    int64_t start_ms; /* wall clock, ms since the epoch, when the request head began */
    struct pt_str request_id;
    struct pt_str trace_id; /* 32 hex digits */
    struct pt_str client_ip;
    struct pt_str consumer;
    struct pt_str method;
    struct pt_str path;  /* normalised, without the query */
    struct pt_str query; /* ptr NULL: no '?' */
    int http_minor;      /* HTTP/1.x */
    struct pt_str route, service, target;
    int status;
    uint64_t bytes_in, bytes_out;
    uint64_t duration_ms;
    int64_t upstream_ms; /* -1: no upstream answer */
    struct pt_str cache;
    struct pt_str error;
    struct pt_str referer, user_agent; /* combined format only */
};

enum pt_al_format_id { PT_AL_JSON = 0, PT_AL_COMBINED, PT_AL_FORMAT_COUNT };

/**
 * Format one line (with its '\n') into buf[0..cap).  Returns its length, or
 * 0 when it did not fit.  Never allocates; thread-safe (it keeps a
 * per-thread cache of the formatted second).
 */
size_t pt_al_format(enum pt_al_format_id fmt, const struct pt_al_record *r, char *buf, size_t cap);

#endif
