/*
 * Load balancers: round_robin (smooth weighted, as nginx), least_conn
 * (weighted; ties broken round-robin), random (weighted), hash (consistent
 * hashing on a ring of virtual nodes, weighted; a target that is excluded
 * moves only its own keys).
 *
 * State that changes per request (round-robin position, random generator,
 * active counts) is kept per worker, each worker's slot on its own cache
 * line, so picking never takes a lock or bounces a shared line.  Round robin
 * and least_conn are therefore exact per worker.  docs/internals/upstream.md
 * ("Balancers") has the details and guarantees.
 */
#ifndef PT_UPSTREAM_BALANCER_H
#define PT_UPSTREAM_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/str.h"
#include "upstream/service.h"

/**
 * May target idx be chosen?  (health, circuit breaker, already tried...)
 * Must give the same answer for the same idx during one pick; may be called
 * more than once per idx.
 */
typedef bool (*pt_balancer_eligible_fn)(void *ctx, size_t idx);

/**
 * Build the balancer for svc (its targets and balance mode) for nworkers
 * workers; NULL on ENOMEM.  svc is read, not kept: the balancer copies what
 * it needs (hash positions come from each target's address).  A service
 * without targets is fine (every pick returns -1).
 */
struct pt_balancer *pt_balancer_create(const struct pt_service *svc, unsigned nworkers);
void pt_balancer_free(struct pt_balancer *b);

/**
 * Choose a target for a request on worker `worker`.  key is the hash input
 * (only used by hash; an empty key falls back to round robin).  eligible may
 * be NULL (every target eligible).  Returns a target index, or -1 when no
 * target is eligible.  worker < nworkers; only that worker may use its
 * index.  Never allocates.
 */
ssize_t pt_balancer_pick(struct pt_balancer *b, unsigned worker, struct pt_str key,
                         pt_balancer_eligible_fn eligible, void *ctx);

/** least_conn bookkeeping: a request to target idx started / finished on worker. */
void pt_balancer_acquire(struct pt_balancer *b, unsigned worker, size_t idx);
void pt_balancer_release(struct pt_balancer *b, unsigned worker, size_t idx);

#endif
