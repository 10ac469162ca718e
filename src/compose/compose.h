/*
 * Composition at run time (SPEC §4, docs/composition.md): answer one client
 * request by calling several services concurrently on the worker's loop and
 * returning one JSON document.
 *
 * The proxy hands an exchange whose route has an aggregate to
 * pt_compose_handle() once routing and request limits are done; from then
 * on the composition owns the answer.  Its state lives in the exchange's
 * arena, and a cleanup registered on that arena cancels every call and
 * timer still running when the exchange ends early (the client left).
 */
#ifndef PT_COMPOSE_COMPOSE_H
#define PT_COMPOSE_COMPOSE_H

struct pt_exchange;

/** Run ex->route->aggregate and answer ex (200 with the document, or a problem). */
void pt_compose_handle(struct pt_exchange *ex);

#endif
