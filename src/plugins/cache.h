/*
 * The cache plugin's outward API: purging (admin `DELETE /cache`) and the
 * per-route counters behind portico_cache_requests_total{route,result}.
 * The plugin itself is src/plugins/cache.c; see docs/cache.md.
 */
#ifndef PT_PLUGINS_CACHE_H
#define PT_PLUGINS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/**
 * Remove cached responses: all of them (route and prefix NULL), those of
 * one route (route: its name), those whose path (with the query) starts
 * with prefix, or those matching both.  Responses being sent finish.
 * Callable from any thread.  Returns 0 and sets *purged (may be NULL) to
 * the number removed.
 */
int pt_cache_purge(const char *route, const char *prefix, size_t *purged);

enum pt_cache_result {
    PT_CACHE_RESULT_HIT = 0,
    PT_CACHE_RESULT_MISS,
    PT_CACHE_RESULT_STALE,
    PT_CACHE_RESULT_BYPASS,
    PT_CACHE_RESULT_COUNT
};

/** "hit", "miss", "stale", "bypass": the metric label and access-log value. */
extern const char *const pt_cache_result_names[PT_CACHE_RESULT_COUNT];

/** Requests a cache plugin handled on one route, by result, summed over workers. */
struct pt_cache_counts {
    uint64_t n[PT_CACHE_RESULT_COUNT];
};

/**
 * Call fn once per route that has counts (since start; routes removed by a
 * reload keep theirs), from any thread.  Counting itself is per worker
 * thread and lock-free; this sums.
 */
void pt_cache_counts_foreach(void (*fn)(void *arg, const char *route,
                                        const struct pt_cache_counts *c),
                             void *arg);

/**
 * Append portico_cache_requests_total in the Prometheus text format
 * (# HELP, # TYPE and one sample per route and result) to out.  0 or
 * PT_ERR_NOMEM.  Nothing is appended before the first counted request.
 */
int pt_cache_metrics_render(struct pt_buf *out);

#endif
