/*
 * The request handler: given a parsed exchange, find the route, then answer
 * locally (errors) or forward to the route's service and stream the answer
 * back.  It speaks to the client only through struct pt_downstream_ops, so
 * it does not know which protocol the client used.
 */
#ifndef PT_PROXY_PROXY_H
#define PT_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/loop.h"
#include "http/exchange.h"
#include "http/reqid.h"
#include "core/buf.h"
#include "net/cidr.h"
#include "plugins/plugin.h"
#include "router/router.h"
#include "upstream/call.h"

struct pt_worker;
struct pt_snapshot;
struct pt_snap_hold;
struct pt_route;

struct pt_exchange {
    const struct pt_downstream_ops *down;
    void *down_ctx;
    struct pt_worker *worker;
    struct pt_arena arena; /* request-scoped memory */
    struct pt_request req;
    struct pt_snapshot *snap;  /* the configuration this request runs on, start to end */
    struct pt_snap_hold *hold; /* the worker's count of requests on it */
    const struct pt_route *route;
    struct pt_router_match match;
    struct pt_upcall up;
    bool up_started;

    /* plugins */
    const struct pt_plugin_chain *chain; /* the route's (or the global one when no route matched) */
    size_t plugin_pos;                   /* next plugin to run on_request */
    struct pt_defer resume_defer;
    struct pt_buf req_body;            /* the whole request body, when a plugin asked for it */
    bool req_body_read;                /* req_body holds the complete body */
    bool collecting_body;              /* reading it now */
    bool resp_buffering;               /* collecting the upstream body for a plugin */
    struct pt_response_head resp_head; /* kept while buffering (arena copy) */
    struct pt_buf resp_body;

    struct pt_ip peer;
    uint16_t peer_port;
    struct pt_ip client_ip;
    bool peer_trusted;
    bool tls;

    char request_id[PT_REQID_MAX];
    uint8_t request_id_len;
    struct pt_str request_id_header; /* "X-Request-Id" unless the request-id plugin renames it */
    struct pt_traceparent trace;     /* this hop's context (trace id + our span id) */
    bool trace_continued; /* the client's traceparent was valid: its tracestate goes on */

    struct pt_str upstream_path; /* path + query as sent upstream */
    uint64_t body_limit;         /* request body bytes allowed */
    int client_error;            /* status to answer when the body source failed (400/408/413) */

    uint64_t start_ms;
    uint64_t start_us;          /* the request head was complete (loop clock, µs; metrics) */
    uint64_t upstream_start_ms; /* the upstream call (first attempt) started */
    uint64_t upstream_ms;       /* until its response head (0: no upstream answer) */
    const char *error;          /* why the gateway answered an error itself (for the log) */
    int upstream_status;        /* the upstream's response status (0: none yet or none) */
    const char *cache_result;   /* "hit", "miss", "stale", "bypass" or NULL (no cache ran) */
    const char *consumer;       /* the authenticated consumer's name, or NULL */
    void *cache_ctx;            /* the cache plugin's per-request state (arena memory) */
    int status;                 /* answered status */
    bool responded;             /* the response head went to the downstream */
    bool finished;              /* the response is complete (or aborted) */
    uint64_t bytes_in, bytes_out;

    struct pt_exchange *next_free;
};

/** Take a fresh exchange from the worker's free list (or allocate one). */
struct pt_exchange *pt_exchange_new(struct pt_worker *w);
/** Finish the handler's part (cancel what runs) and recycle the exchange. */
void pt_exchange_free(struct pt_exchange *ex);

/** Handle a parsed request (ex->req filled, ex->down set). */
void pt_proxy_handle(struct pt_exchange *ex);

/**
 * A plugin that returned PT_PLUGIN_PAUSE continues the request (with the
 * next plugin).  Runs after the current event batch, never re-entrantly.
 */
void pt_proxy_resume(struct pt_exchange *ex);

/** Downstream events (see struct pt_exchange_ops). */
void pt_proxy_on_body_ready(struct pt_exchange *ex);
void pt_proxy_on_drain(struct pt_exchange *ex);
void pt_proxy_on_client_gone(struct pt_exchange *ex);

/**
 * Send a response head to the client after the plugins' on_response_head
 * hooks (every response goes through here).  head may be modified.
 */
void pt_proxy_send_head(struct pt_exchange *ex, struct pt_response_head *head);

/**
 * Answer locally with a complete response: status, extra headers (the
 * request id is added), body (copied; may be empty).
 */
void pt_proxy_respond(struct pt_exchange *ex, int status, const struct pt_h1_header *headers,
                      size_t nheaders, const char *body, size_t len);

/**
 * Answer the exchange locally with an RFC 9457 problem (SPEC §7).  type is
 * the slug (NULL = default for the status); extra_headers (may be NULL)
 * are added as is ("Allow: GET, POST\r\n" style is NOT used: pairs).
 */
void pt_proxy_respond_problem(struct pt_exchange *ex, int status, const char *type,
                              const char *detail, const struct pt_h1_header *extra, size_t nextra);

#endif
