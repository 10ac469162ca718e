/*
 * Inside the admin API: the parts that do not touch sockets, so that the
 * fuzz target and the unit tests can hand a request to the dispatcher from
 * a buffer.
 *
 *   session.c   bytes -> complete requests (head, Content-Length or chunked
 *               body), responses -> bytes; limits; keep-alive
 *   api.c       authorisation and the endpoints (status, ready, config,
 *               routes, services, consumers, metrics)
 *   facts.c     what the compiled snapshot knows about a route or service
 *   explain.c   GET /routes/explain
 *   edit.c      editing the raw configuration tree and writing it as YAML
 *   admin.c     the listener and connections on the main thread's loop,
 *               and the host over struct pt_server
 */
#ifndef PT_ADMIN_ADMIN_INT_H
#define PT_ADMIN_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/str.h"
#include "config/diag.h"
#include "http/chunked.h"
#include "http/h1.h"

struct pt_snapshot;
struct pt_conf_node;
struct pt_arena;

/** Largest request head, body (decoded), and number of header fields. */
#define PT_ADMIN_MAX_HEAD    65536
#define PT_ADMIN_MAX_BODY    (16u * 1024 * 1024)
#define PT_ADMIN_MAX_HEADERS 100

/** What the admin API needs from the process (struct pt_server, or a fake in tests). */
struct pt_admin_status {
    uint64_t config_version;
    double uptime_s;
    unsigned workers;
    long connections;
    bool ready;    /* configuration loaded, every listener up */
    bool draining; /* stopping */
    /* not ready yet because this service's first DNS answer is awaited */
    const char *waiting_for;
};

struct pt_admin_host {
    /** The configuration in use, with a reference the caller drops. */
    struct pt_snapshot *(*snapshot)(void *ctx);
    void (*status)(void *ctx, struct pt_admin_status *st);
    /**
     * Validate and apply a whole configuration (pt_server_apply_text): 0
     * applied; -1 invalid (d has every error, nothing changed); -2 valid
     * but not applied (d says why).
     */
    int (*apply)(void *ctx, const char *text, size_t len, struct pt_diag *d);
    /** Append the Prometheus text to out: 0 or PT_ERR_NOMEM. */
    int (*metrics)(void *ctx, struct pt_buf *out);
};

/** One parsed request; every view lives until the response is written. */
struct pt_admin_req {
    struct pt_str method;
    enum pt_method method_id;
    struct pt_str path;  /* the target up to '?', as sent (not decoded) */
    struct pt_str query; /* after '?', as sent */
    const struct pt_h1_header *headers;
    size_t nheaders;
    struct pt_str body;
    bool head_only; /* HEAD: answer as GET without the body */
};

struct pt_admin_resp {
    int status;
    const char *content_type; /* static */
    char *body;               /* malloc'd, or NULL */
    size_t len;
    char extra[256]; /* more header lines, each ending in CRLF ("Allow: GET\r\n") */
    bool close;      /* Connection: close after this response */
};

/** The state of one client connection's input (socket-free). */
struct pt_admin_session {
    struct pt_buf in; /* raw bytes not yet consumed */
    size_t parse_last;
    bool in_body;
    char *head; /* copy of the current request head (the views point here) */
    struct pt_h1_request pr;
    struct pt_h1_meta meta;
    struct pt_h1_header headers[PT_ADMIN_MAX_HEADERS];
    struct pt_chunked chunked;
    struct pt_buf body; /* decoded chunked body */
    bool close;         /* the connection ends after the response being written */
};

struct pt_admin_api {
    const struct pt_admin_host *host;
    void *ctx;
};

void pt_admin_session_init(struct pt_admin_session *s);
void pt_admin_session_free(struct pt_admin_session *s);

/**
 * Handle the next request in s->in, if complete: its response (or a 100
 * Continue, or an error for a malformed request) is appended to out.
 * Returns 1 when a final response was appended (call again for a
 * pipelined request unless s->close), 0 when more input is needed,
 * PT_ERR_NOMEM.  After an error response s->close is set and nothing more
 * is read.  eof: the client closed its side (a partial request is dropped).
 */
int pt_admin_session_step(const struct pt_admin_api *api, struct pt_admin_session *s,
                          struct pt_buf *out, bool eof);

/** Dispatch one complete request (api.c); resp starts zeroed. */
void pt_admin_dispatch(const struct pt_admin_api *api, const struct pt_admin_req *req,
                       struct pt_admin_resp *resp);

/** Write resp as HTTP/1.1 bytes into out (no body for HEAD). 0 or PT_ERR_NOMEM. */
int pt_admin_write_resp(const struct pt_admin_resp *resp, bool head_only, struct pt_buf *out);

/* ---- response helpers (api.c) ---- */

/** A JSON body (takes the reference); 500 if it cannot be serialised. */
void pt_admin_json(struct pt_admin_resp *resp, int status, json_t *j);

/** An RFC 9457 problem; errors (may be NULL, taken) becomes the "errors" member. */
void pt_admin_problem(struct pt_admin_resp *resp, int status, const char *type, const char *detail,
                      json_t *errors);

/** The diagnostics of a failed validation: "FILE:LINE:COL: message" strings (errors only). */
json_t *pt_admin_diag_errors(const struct pt_diag *d);

/* ---- facts.c ---- */

/** The compiled facts of a route / service (a new object), or NULL on ENOMEM. */
json_t *pt_admin_route_facts(const struct pt_snapshot *s, size_t index);
json_t *pt_admin_service_facts(const struct pt_snapshot *s, size_t index);
/** The plugin chain as [{"name", "scope", "order"}] */
json_t *pt_admin_chain_json(const void *chain);

/* ---- explain.c ---- */

/** GET /routes/explain?... on snapshot s. */
void pt_admin_explain(const struct pt_snapshot *s, struct pt_str query, struct pt_admin_resp *resp);

/**
 * Percent-decode a query component (+ is a space) into a new NUL-terminated
 * string; NULL on a bad escape or ENOMEM.  *len gets its length.
 */
char *pt_admin_query_decode(struct pt_str s, size_t *len);

/* ---- edit.c ---- */

enum pt_admin_kind {
    PT_ADMIN_ROUTES = 0, /* a list of maps with `name` */
    PT_ADMIN_SERVICES,   /* a map from name to service */
    PT_ADMIN_CONSUMERS,  /* a list of maps with `name` */
    PT_ADMIN_KIND_COUNT
};

/** The section's key in the configuration ("routes"). */
const char *pt_admin_kind_key(enum pt_admin_kind k);

/**
 * Where the object called name is in the raw tree: its index in the list
 * or map (-1 when absent).  Routes are found by their effective name
 * (route-N when unnamed), through the snapshot.
 */
long pt_admin_find(const struct pt_snapshot *s, enum pt_admin_kind k, const char *name);

/** The raw node of object i of section k (as pt_admin_find returned it). */
const struct pt_conf_node *pt_admin_object(const struct pt_snapshot *s, enum pt_admin_kind k,
                                           long i);

/**
 * A new root: root with object `index` of section k replaced by value
 * (index -1: appended as `name`; value NULL: removed).  Nodes of root are
 * shared, new ones come from a.  NULL on ENOMEM.
 */
struct pt_conf_node *pt_admin_edit(struct pt_arena *a, const struct pt_conf_node *root,
                                   enum pt_admin_kind k, long index, const char *name,
                                   const struct pt_conf_node *value);

/** A map node with key `name: NAME` first (for a route whose body has none); NULL on ENOMEM. */
struct pt_conf_node *pt_admin_with_name(struct pt_arena *a, const struct pt_conf_node *map,
                                        const char *name);

/**
 * The tree as YAML text (raw scalars: ${NAME} kept) into a malloc'd,
 * NUL-terminated buffer.  0 or -1.  Comments and anchors are not kept.
 */
int pt_admin_emit_yaml(const struct pt_conf_node *root, char **text, size_t *len);

/**
 * Parse a request body (YAML or JSON) into a tree from a.  ${NAME} is kept
 * raw and never looked up.  0, or -1 with every problem in d.
 */
int pt_admin_parse_body(struct pt_arena *a, struct pt_str body, struct pt_diag *d,
                        struct pt_conf_node **root);

#endif
