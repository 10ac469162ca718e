/*
 * A compiled route: what happens to a request once the router picked it.
 * Immutable; part of a snapshot.
 */
#ifndef PT_PROXY_ROUTE_H
#define PT_PROXY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "plugins/plugin.h"

struct pt_service;
struct pt_aggregate;

/** One piece of a `rewrite` template: literal text or a capture reference. */
struct pt_rewrite_part {
    bool is_capture;
    struct pt_str text; /* the literal, or the capture's name */
};

struct pt_route {
    const char *name;
    size_t index; /* position within the snapshot (and the router input) */
    struct pt_service *service;
    struct pt_str strip_prefix;      /* empty = none; removed on a segment boundary */
    struct pt_rewrite_part *rewrite; /* NULL = none */
    size_t nrewrite;
    bool preserve_host;
    uint64_t max_body_bytes;              /* 0 = the server's limit */
    struct pt_plugin_chain chain;         /* effective plugins, in run order */
    const struct pt_aggregate *aggregate; /* a composition instead of a service (compose/plan.h) */
};

#endif
