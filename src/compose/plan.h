/*
 * A compiled `aggregate` (SPEC §4, docs/composition.md): the calls of a
 * composition, their templates, their failure policy and the dependency
 * graph between them.  Built by the configuration loader
 * (src/config/aggregate.c), immutable afterwards, part of a snapshot like
 * the route that holds it.
 */
#ifndef PT_COMPOSE_PLAN_H
#define PT_COMPOSE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "compose/merge.h"
#include "compose/template.h"
#include "http/method.h"

struct pt_service;

/** Calls one composition may hold at most (dependencies are a 64-bit set). */
#define PT_COMPOSE_MAX_CALLS         64
#define PT_COMPOSE_DEFAULT_MAX_CALLS 16

struct pt_compose_header {
    struct pt_str name;
    struct pt_tpl value;
};

struct pt_compose_query {
    struct pt_str name; /* already percent-encoded */
    struct pt_tpl value;
    bool omit_if_missing; /* the value is one placeholder without default: leave it out */
};

struct pt_compose_call {
    const char *key;
    unsigned index; /* in declaration order */
    const struct pt_service *service;
    struct pt_str method;
    enum pt_method method_id;
    struct pt_tpl path; /* with its query */
    struct pt_compose_query *query;
    size_t nquery;
    struct pt_compose_header *headers;
    size_t nheaders;
    struct pt_tpl body;
    bool has_body;
    bool body_has_type;     /* the call's headers set Content-Type */
    struct pt_str *forward; /* client headers passed on (aggregate's, then the call's) */
    size_t nforward;
    uint64_t timeout_ms;     /* 0: none but the service's and the composition's */
    uint64_t max_body_bytes; /* response body limit */
    struct pt_str fallback;  /* JSON text, when has_fallback */
    bool has_fallback;
    bool optional;
    const struct pt_fields *fields; /* NULL: keep everything */
    uint64_t deps;                  /* bit i: this call reads call i's result */
};

struct pt_aggregate {
    uint64_t timeout_ms;
    enum pt_merge_mode merge;
    unsigned max_calls;
    struct pt_compose_call *calls;
    size_t ncalls;
    struct pt_str *keys; /* keys[i] == calls[i].key */
    struct pt_str *expose;
    size_t nexpose;
};

/**
 * Find a cycle in the dependency graph (deps[i] bit j: i needs j).  Returns
 * 0 when there is none, or 1 with cycle[0..*len) the calls around one
 * cycle, each needing the next and the last needing the first (a call
 * needing itself is a cycle of one).  cycle must hold n entries.
 */
int pt_compose_find_cycle(const uint64_t *deps, size_t n, unsigned *cycle, size_t *len);

/**
 * Header names a call may not set or forward: framing and connection
 * fields, the ones the gateway writes itself (Host, X-Request-Id,
 * traceparent, X-Forwarded-*), and Accept-Encoding (results must be read).
 */
bool pt_compose_request_header_reserved(struct pt_str name);

/** Header names expose_headers may not list: framing, Content-Type, X-Request-Id,
 * X-Portico-Partial. */
bool pt_compose_response_header_reserved(struct pt_str name);

#endif
