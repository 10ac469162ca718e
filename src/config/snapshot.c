/*
 * Snapshot lifetime.  Everything a snapshot holds lives in its arena except
 * what other modules allocate themselves (the router, the balancers), which
 * is released here before the arena.
 */
#include <stdlib.h>
#include <string.h>

#include "net/tls.h"
#include "router/router.h"
#include "upstream/balancer.h"
#include "upstream/health.h"
#include "upstream/service.h"
#include "config/snapshot.h"

void pt_snapshot_unref(struct pt_snapshot *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (s->router != NULL)
        pt_router_free(s->router);
    for (size_t i = 0; i < s->server.nlisten; i++)
        pt_tls_server_unref(s->server.listen[i].tls); /* connections hold their own */
    for (size_t i = 0; i < s->nservices; i++) {
        if (s->services[i]->balancer != NULL)
            pt_balancer_free(s->services[i]->balancer);
        pt_tls_client_free(s->services[i]->tls);
        pt_health_detach(s->services[i]);
    }
    pt_arena_destroy(&s->arena);
    free(s);
}

struct pt_service *pt_snapshot_service(const struct pt_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->nservices; i++)
        if (strcmp(s->services[i]->name, name) == 0)
            return s->services[i];
    return NULL;
}
