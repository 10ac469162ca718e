/*
 * DNS service discovery (`discovery:` instead of `targets:`): names are
 * resolved with c-ares on the main thread's loop, never with a blocking
 * call.  A/AAAA names give one target per address (with the configured
 * port); SRV names ("_http._tcp.users.internal") give their targets'
 * addresses with the SRV ports and weights.  When an answer changes the
 * target set, the owner is told (changed) and compiles the configuration
 * again, with pt_discovery_lookup filling in the discovered targets.
 *
 * A failed lookup, or an answer with no address, keeps the last good
 * answer.  The next lookup is due after `interval`, or after the answer's
 * smallest TTL when that is shorter (but not under 1 s).
 */
#ifndef PT_UPSTREAM_DISCOVERY_H
#define PT_UPSTREAM_DISCOVERY_H

#include <stddef.h>

#include "core/loop.h"
#include "upstream/service.h"

struct pt_discovery;

/**
 * Discovery on loop (the main thread's).  changed(ctx) is called (after the
 * event batch, at most once per batch) when some service's targets
 * changed.  NULL on ENOMEM or when c-ares cannot start.
 */
struct pt_discovery *pt_discovery_new(struct pt_loop *loop, void (*changed)(void *ctx), void *ctx);

/**
 * Follow a configuration: resolve the `discovery` of every service in
 * services (n); forget the others.  A service whose name, DNS name, port
 * and resolver did not change keeps its lookups and its last answer.
 * services is read, not kept.
 */
void pt_discovery_sync(struct pt_discovery *d, struct pt_service *const *services, size_t n);

/**
 * The last good answer for service with discovery conf (matched on the DNS
 * name, port and resolver), sorted by address: *out (valid until the next
 * event on the loop) and *n; *n = 0 when there is none yet.  The shape of
 * struct pt_config_options.discovered, with d as ctx.
 */
void pt_discovery_lookup(void *d, const char *service, const struct pt_discovery_conf *conf,
                         const struct pt_discovered_target **out, size_t *n);

/**
 * The name of a service whose first lookup has not ended yet (or whose
 * first answer is not published yet), or NULL when every one has had its
 * answer, good or bad.  The gateway reports not ready until then.
 */
const char *pt_discovery_unsettled(const struct pt_discovery *d);

/** Stop every lookup and free (the loop must still be alive). */
void pt_discovery_free(struct pt_discovery *d);

#endif
