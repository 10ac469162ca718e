/*
 * The protocol-neutral exchange (DESIGN principle 3): one client request and
 * its response, whatever protocol the client spoke.  The downstream codec
 * (HTTP/1 today, HTTP/2 later) fills struct pt_request and implements struct
 * pt_downstream_ops; routing, plugins and proxying only see this.
 */
#ifndef PT_HTTP_EXCHANGE_H
#define PT_HTTP_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "http/h1.h"
#include "http/method.h"

enum pt_body_kind {
    PT_BODY_NONE = 0,
    PT_BODY_LENGTH, /* content_length bytes */
    PT_BODY_STREAM, /* length unknown until the end (chunked, close-delimited, a tunnel) */
};

struct pt_request {
    struct pt_str method;
    enum pt_method method_id;
    struct pt_str scheme;    /* "http" or "https" */
    struct pt_str authority; /* Host header (or the absolute-form authority) */
    struct pt_str host;      /* authority without the port, for routing */
    struct pt_str path;      /* normalised */
    struct pt_str query;     /* after the '?', without it */
    bool has_query;          /* a '?' was present (even with an empty query) */
    struct pt_h1_header *headers;
    size_t nheaders;
    int minor_version; /* HTTP/1.x client: 0 or 1; other protocols: 1 */
    enum pt_body_kind body;
    uint64_t content_length;
    bool expect_continue;
    bool upgrade; /* Connection: upgrade + Upgrade: upgrade_proto */
    struct pt_str upgrade_proto;
};

struct pt_response_head {
    int status;
    struct pt_h1_header *headers; /* end-to-end fields only; framing is the codec's job */
    size_t nheaders;
    enum pt_body_kind body;
    uint64_t content_length;
    bool head_only; /* a response to HEAD, 204 or 304: framing headers kept, no body bytes */
};

struct pt_exchange;

/** What the handler may ask of the downstream codec. */
struct pt_downstream_ops {
    /** Queue the response head; it goes out with the first body bytes (or at end). */
    void (*send_head)(struct pt_exchange *ex, const struct pt_response_head *head);
    /**
     * Send body bytes (n may be 0), end=true with the last ones.  The bytes
     * are taken (copied if the socket is full).  Returns true when the
     * caller should stop producing until pt_exchange_ops.on_drain.
     */
    bool (*send_body)(struct pt_exchange *ex, const char *p, size_t n, bool end);
    /**
     * Request body: view the next available bytes.  Returns 0 with data (and
     * *end when these are the last), 0 with an empty view and *end when the
     * body is complete, PT_AGAIN when nothing is available yet (on_body_ready
     * follows), or a negative error (the client sent a bad body or left).
     */
    int (*body_peek)(struct pt_exchange *ex, struct pt_str *data, bool *end);
    void (*body_consume)(struct pt_exchange *ex, size_t n);
    /** After a 101: from now on request and response bodies are raw bytes both ways. */
    void (*upgrade)(struct pt_exchange *ex);
    /** Give up on this response (after the head went out): close the connection. */
    void (*abort)(struct pt_exchange *ex);
    /**
     * Take back a head given to send_head while none of it has reached the
     * client: true when done (the handler may answer otherwise), false when
     * it is too late (abort then).  NULL: never possible.
     */
    bool (*retract_head)(struct pt_exchange *ex);
};

/** What the downstream codec tells the handler. */
struct pt_exchange_ops {
    void (*on_body_ready)(struct pt_exchange *ex); /* body_peek may now return data */
    void (*on_drain)(struct pt_exchange *ex);      /* send_body's backlog went out */
    void (*on_client_gone)(
        struct pt_exchange *ex); /* the client left; finish quickly, send nothing */
};

#endif
