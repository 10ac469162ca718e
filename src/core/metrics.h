/*
 * Metrics (SPEC §8).  Each worker records into its own struct pt_metrics,
 * which only that worker writes: no lock, no atomic read-modify-write, no
 * cache line shared with another worker on the request path.  The admin
 * thread sums every worker's values when /metrics is scraped.
 *
 * Label values (route, service, target, consumer) are copied on first
 * sight, so they may point into a configuration snapshot that dies later.
 */
#ifndef PT_CORE_METRICS_H
#define PT_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/str.h"

struct pt_metrics;

/** One per worker; NULL on ENOMEM. */
struct pt_metrics *pt_metrics_new(void);
void pt_metrics_free(struct pt_metrics *m);

/** A finished client request (portico_requests_total, _request_duration_seconds, bytes). */
void pt_metrics_request(struct pt_metrics *m, struct pt_str route, struct pt_str service,
                        struct pt_str consumer, int status, uint64_t duration_us, uint64_t bytes_in,
                        uint64_t bytes_out);

/**
 * One upstream attempt: status is the response's, or 0 when there was none
 * (connect error, timeout, reset).  portico_upstream_requests_total and
 * portico_upstream_duration_seconds.
 */
void pt_metrics_upstream(struct pt_metrics *m, struct pt_str service, struct pt_str target,
                         int status, uint64_t duration_us);

/** Process-wide values that are not per worker. */
struct pt_metrics_process {
    long connections_active;
    uint64_t reloads_ok, reloads_failed;
    uint64_t config_version;
    double uptime_s;
};

/** Render the Prometheus text exposition (version 0.0.4) of all workers plus process values. */
int pt_metrics_render(struct pt_metrics *const *workers, size_t n,
                      const struct pt_metrics_process *proc, struct pt_buf *out);

#endif
