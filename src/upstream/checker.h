/*
 * Active health checks (health.active): one checker per service for the
 * whole process, on the main thread's loop, off the request path.  Each
 * target is probed every `interval` with `GET path` (Connection: close);
 * an answer in `statuses` within `timeout` passes.  The verdicts go to the
 * target's shared state (upstream/health.h), which the workers read.
 */
#ifndef PT_UPSTREAM_CHECKER_H
#define PT_UPSTREAM_CHECKER_H

#include <stddef.h>

#include "core/loop.h"
#include "upstream/service.h"

struct pt_health_checks;

/** The checkers of a process, running on loop (the main thread's).  NULL on ENOMEM. */
struct pt_health_checks *pt_health_checks_new(struct pt_loop *loop);

/**
 * Follow a configuration: check the targets of every service in services
 * (n of them) that has health.active; stop checking the others.  The
 * services stay valid until release(owner) is called, which the checkers do
 * once they no longer use them (at the next sync or at free).  Each
 * target's next check keeps its schedule across syncs (it is kept with the
 * target's health state), so a reload does not cause a burst of checks.
 */
void pt_health_checks_sync(struct pt_health_checks *hc, struct pt_service *const *services,
                           size_t n, void *owner, void (*release)(void *owner));

/** Stop every check and free (the loop must still be alive). */
void pt_health_checks_free(struct pt_health_checks *hc);

#endif
