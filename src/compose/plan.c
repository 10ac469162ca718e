/*
 * Checks on a composition's plan that the configuration loader runs: the
 * dependency graph must be acyclic, and some header names are the
 * gateway's own.
 */
#include <string.h>

#include "compose/plan.h"

/*
 * Depth-first search with three colours; on meeting a grey node the grey
 * path from it to the current node is the cycle.  n <= 64, so recursion
 * depth is bounded.
 */
enum { WHITE = 0, GREY, BLACK };

static int visit(const uint64_t *deps, size_t n, unsigned v, unsigned char *colour, unsigned *stack,
                 size_t depth, unsigned *cycle, size_t *len)
{
    colour[v] = GREY;
    stack[depth] = v;
    for (unsigned w = 0; w < n; w++) {
        if (!(deps[v] >> w & 1))
            continue;
        if (colour[w] == GREY) {
            size_t from = 0;
            while (stack[from] != w)
                from++;
            *len = depth + 1 - from;
            memcpy(cycle, stack + from, *len * sizeof(*cycle));
            return 1;
        }
        if (colour[w] == WHITE && visit(deps, n, w, colour, stack, depth + 1, cycle, len))
            return 1;
    }
    colour[v] = BLACK;
    return 0;
}

int pt_compose_find_cycle(const uint64_t *deps, size_t n, unsigned *cycle, size_t *len)
{
    unsigned char colour[PT_COMPOSE_MAX_CALLS] = {0};
    unsigned stack[PT_COMPOSE_MAX_CALLS];
    *len = 0;
    if (n > PT_COMPOSE_MAX_CALLS)
        n = PT_COMPOSE_MAX_CALLS;
    for (unsigned v = 0; v < n; v++)
        if (colour[v] == WHITE && visit(deps, n, v, colour, stack, 0, cycle, len))
            return 1;
    return 0;
}

static bool in_list(struct pt_str name, const char *const *list)
{
    for (; *list != NULL; list++)
        if (pt_str_case_eq_lower_n(name, *list, strlen(*list)))
            return true;
    return false;
}

static const char *const framing[] = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "x-request-id",
    NULL,
};

bool pt_compose_request_header_reserved(struct pt_str name)
{
    static const char *const ours[] = {
        "traceparent",     "tracestate", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        "accept-encoding", NULL,
    };
    return in_list(name, framing) || in_list(name, ours);
}

bool pt_compose_response_header_reserved(struct pt_str name)
{
    static const char *const ours[] = {
        "content-type",
        "content-encoding",
        "x-portico-partial",
        NULL,
    };
    return in_list(name, framing) || in_list(name, ours);
}
