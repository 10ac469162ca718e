/*
 * HTTP/1.1 message-head parser (requests and responses) and the framing
 * analysis that decides how a body is delimited.
 *
 * The parser is zero-copy: every pt_str it returns points into the caller's
 * buffer.  It is strict (RFC 9112 plus the usual smuggling defences): it
 * rejects rather than guesses.  See docs/internals/http1.md for the list of
 * what is refused and why.
 */
#ifndef PT_HTTP_H1_H
#define PT_HTTP_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "http/method.h"

/** Returned instead of a length when the head has more than max_headers fields (→ 431). */
#define PT_H1_TOO_MANY_HEADERS (-20)
/** Request line/status line with an HTTP version we do not speak, e.g. HTTP/2.0 (→ 505). */
#define PT_H1_BAD_VERSION (-21)

struct pt_h1_header {
    struct pt_str name;  /* as sent (case preserved); a token */
    struct pt_str value; /* leading/trailing whitespace removed */
};

struct pt_h1_request {
    struct pt_str method;  /* a token */
    enum pt_method method_id;
    struct pt_str target;  /* request-target as sent (origin-form, absolute-form, '*', authority) */
    int minor_version;     /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
    struct pt_h1_header *headers; /* caller's array */
    size_t num_headers;
};

struct pt_h1_response {
    int minor_version;
    int status;            /* 100..999 */
    struct pt_str reason;
    struct pt_h1_header *headers;
    size_t num_headers;
};

/**
 * Parse a request head from buf[0..len).
 *
 * headers/max_headers: the caller's array for the header fields.
 * last_len: how many bytes of buf a previous call already saw and answered
 * PT_PARSE_PARTIAL for (0 the first time); used to skip re-scanning for the
 * end of the head.
 *
 * Returns the length of the head including the blank line, PT_PARSE_PARTIAL,
 * PT_PARSE_INVALID, PT_H1_TOO_MANY_HEADERS or PT_H1_BAD_VERSION.  Rejected:
 * bare CR or LF line endings, obsolete line folding, whitespace between a
 * field name and the colon, control characters (other than HTAB in values),
 * non-token methods or names, request-targets with bytes outside 0x21-0x7E,
 * leading empty lines beyond the one RFC 9112 §2.2 tolerates.
 */
int pt_h1_parse_request(const char *buf, size_t len, size_t last_len, struct pt_h1_request *req,
                        struct pt_h1_header *headers, size_t max_headers);

/** Parse a response head; same conventions as pt_h1_parse_request. */
int pt_h1_parse_response(const char *buf, size_t len, size_t last_len, struct pt_h1_response *resp,
                         struct pt_h1_header *headers, size_t max_headers);

enum pt_h1_body {
    PT_H1_BODY_NONE = 0,  /* no body (or a 1xx/204/304/HEAD response) */
    PT_H1_BODY_LENGTH,    /* Content-Length bytes */
    PT_H1_BODY_CHUNKED,   /* Transfer-Encoding: chunked */
    PT_H1_BODY_UNTIL_CLOSE, /* responses only: read until the peer closes */
};

/** Framing and connection facts derived from a parsed head. */
struct pt_h1_meta {
    enum pt_h1_body body;
    uint64_t content_length;    /* when body == PT_H1_BODY_LENGTH */
    bool keep_alive;            /* connection persists after this message */
    bool expect_continue;       /* request: Expect: 100-continue */
    bool upgrade;               /* Connection: upgrade together with an Upgrade header */
    struct pt_str upgrade_proto; /* value of Upgrade (e.g. "websocket") */
    struct pt_str host;         /* request: the Host header value (empty if absent) */
    bool has_connection_tokens; /* Connection lists names other than close/keep-alive/upgrade */
};

/**
 * Validate the framing of a parsed request and fill meta.  Returns 0, or
 * PT_PARSE_INVALID with *why set to a short static reason for the 400
 * detail: several or invalid Content-Length values, Content-Length together
 * with Transfer-Encoding, a Transfer-Encoding other than a final "chunked",
 * a missing or repeated Host on HTTP/1.1, Transfer-Encoding on HTTP/1.0.
 * An Expect other than 100-continue returns PT_DECLINED (→ 417).
 */
int pt_h1_request_meta(const struct pt_h1_request *req, struct pt_h1_meta *meta, const char **why);

/**
 * Validate the framing of a parsed response to a request with method
 * req_method and fill meta; same conventions.
 */
int pt_h1_response_meta(const struct pt_h1_response *resp, enum pt_method req_method,
                        struct pt_h1_meta *meta, const char **why);

/**
 * True when a field must not be forwarded by a proxy: the fixed hop-by-hop
 * set (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Transfer-Encoding, Upgrade) or a name listed in one of the message's
 * Connection headers.
 */
bool pt_h1_is_hop_by_hop(struct pt_str name, const struct pt_h1_header *headers,
                         size_t num_headers);

/** Find the first header with this name (case-insensitive); NULL if absent. */
const struct pt_h1_header *pt_h1_find_header(const struct pt_h1_header *headers, size_t n,
                                             struct pt_str name);

/** Is c allowed in a token (RFC 9110 tchar)? */
extern const uint8_t pt_h1_tchar[256];

#endif
