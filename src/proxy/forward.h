/*
 * What a proxy changes on the way through (SPEC §2.2, §10 "Forwarding"):
 * the request id, trace context and client address; the upstream path
 * (strip_prefix / rewrite); the request head sent upstream (Host,
 * X-Forwarded-*, X-Request-Id, traceparent, hop-by-hop fields removed); and
 * the response head sent back.
 */
#ifndef PT_PROXY_FORWARD_H
#define PT_PROXY_FORWARD_H

#include "core/buf.h"
#include "http/exchange.h"
#include "http/h1.h"

struct pt_exchange;
struct pt_target;
struct pt_service;

/** Request id (kept when sane, else generated), trace context, client IP. */
void pt_forward_identity(struct pt_exchange *ex);

/** Compute ex->upstream_path from the route (strip_prefix / rewrite) and the query. 0 or
 * PT_ERR_NOMEM. */
int pt_forward_upstream_path(struct pt_exchange *ex);

/** The hash-balancer key for this request (service's hash_on). */
struct pt_str pt_forward_hash_key(struct pt_exchange *ex, const struct pt_service *svc);

/** Append the upstream request line and headers (no blank line) for target t. 0 or PT_ERR_NOMEM. */
int pt_forward_request_head(struct pt_exchange *ex, const struct pt_target *t, struct pt_buf *out);

/** Build the client response head from the upstream's.  0 or PT_ERR_NOMEM. */
int pt_forward_response_head(struct pt_exchange *ex, const struct pt_h1_response *resp,
                             const struct pt_h1_meta *meta, struct pt_response_head *head);

#endif
