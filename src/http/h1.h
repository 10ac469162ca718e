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
    struct pt_str method; /* a token */
    enum pt_method method_id;
    struct pt_str target; /* request-target as sent (origin-form, absolute-form, '*', authority) */
    int minor_version;    /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
    struct pt_h1_header *headers; /* caller's array */
    size_t num_headers;
};

struct pt_h1_response {
    int minor_version;
    int status; /* 100..999 */
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
 *
 * Details (docs/internals/http1.md has the full table):
 *  - On success every pt_str points into buf[0..return value); req->headers
 *    is `headers`.  Nothing is allocated; buf must outlive the views.
 *  - PT_H1_BAD_VERSION: a well-formed request line whose version is not
 *    HTTP/1.0 or HTTP/1.1 (HTTP/2.0, HTTP/1.2, HTTP/0.9), or an HTTP/0.9-style
 *    line with no version at all ("GET /" CRLF).  It is decided as soon as the
 *    request line is complete.
 *  - PT_H1_TOO_MANY_HEADERS is only returned for a complete head that is
 *    otherwise valid; req->num_headers is then max_headers and the first
 *    max_headers fields are filled in.  An incomplete head with too many
 *    fields is still PARTIAL, and a malformed field anywhere wins (INVALID).
 *  - Prefix consistency: for any prefix of an input, the answer is PARTIAL
 *    or the answer for the whole input.
 *  - With last_len != 0 the head is re-parsed only when the new bytes (or
 *    the one before them) complete CRLFCRLF, hold a bare CR/LF or another control
 *    character.  So an invalid byte that is not a control character (e.g.
 *    "X : y") arriving after the first call is reported when the end of the
 *    head arrives, not earlier; callers bound the head size anyway.
 *  - len is capped at INT_MAX (the result must fit an int).
 */
int pt_h1_parse_request(const char *buf, size_t len, size_t last_len, struct pt_h1_request *req,
                        struct pt_h1_header *headers, size_t max_headers);

/**
 * Parse a response head; same conventions as pt_h1_parse_request.  The
 * status line is HTTP-version SP 3DIGIT SP reason CRLF with a first digit of
 * 1-9; the reason may be empty and "HTTP/1.1 200" CRLF (no SP) is accepted.
 * resp->reason is the reason phrase as sent (HTAB, SP, VCHAR, obs-text).
 * No leading empty line is tolerated.
 */
int pt_h1_parse_response(const char *buf, size_t len, size_t last_len, struct pt_h1_response *resp,
                         struct pt_h1_header *headers, size_t max_headers);

enum pt_h1_body {
    PT_H1_BODY_NONE = 0,    /* no body (or a 1xx/204/304/HEAD response) */
    PT_H1_BODY_LENGTH,      /* Content-Length bytes */
    PT_H1_BODY_CHUNKED,     /* Transfer-Encoding: chunked */
    PT_H1_BODY_UNTIL_CLOSE, /* responses only: read until the peer closes */
};

/** Framing and connection facts derived from a parsed head. */
struct pt_h1_meta {
    enum pt_h1_body body;
    uint64_t content_length;     /* when body == PT_H1_BODY_LENGTH */
    bool keep_alive;             /* connection persists after this message */
    bool expect_continue;        /* request: Expect: 100-continue */
    bool upgrade;                /* Connection: upgrade together with an Upgrade header */
    struct pt_str upgrade_proto; /* value of Upgrade (e.g. "websocket"); empty unless upgrade */
    struct pt_str host;          /* request: the Host header value (empty, not NULL, if absent) */
    bool has_connection_tokens;  /* Connection lists names other than close/keep-alive/upgrade */
};

/**
 * Validate the framing of a parsed request and fill meta.  Returns 0, or
 * PT_PARSE_INVALID with *why set to a short static reason for the 400
 * detail: several or invalid Content-Length values, Content-Length together
 * with Transfer-Encoding, a Transfer-Encoding other than a final "chunked",
 * a missing or repeated Host on HTTP/1.1, Transfer-Encoding on HTTP/1.0.
 * An Expect other than 100-continue returns PT_DECLINED (→ 417).
 *
 * Precisely (why may be NULL; it is set to NULL on success):
 *  - Content-Length: exactly one field of 1*DIGIT, at most INT64_MAX; a
 *    repeated field is refused even with the same value, and so is a list.
 *    Content-Length: 0 gives body PT_H1_BODY_LENGTH with content_length 0.
 *  - Transfer-Encoding: exactly one field whose value is "chunked"
 *    (case-insensitive).  Any other coding, also "gzip, chunked" and
 *    "chunked, chunked", is refused: we do not forward codings we cannot
 *    check.  Refused on HTTP/1.0 and together with Content-Length.
 *  - Host: at most one; required on HTTP/1.1; its value may be empty but
 *    may only hold URI host/port bytes (unreserved, pct-encoded, sub-delims,
 *    ":", "[", "]"), otherwise "invalid Host header".
 *  - Connection: a list of tokens (empty elements skipped, anything else is
 *    refused); close / keep-alive / upgrade are understood, case-insensitive.
 *  - upgrade and expect_continue are only set for HTTP/1.1 (RFC 9110 §7.8,
 *    §10.1.1 say to ignore them in HTTP/1.0).
 *  - On PT_DECLINED meta is filled in completely (the caller still needs the
 *    framing to skip the body after its 417).
 */
int pt_h1_request_meta(const struct pt_h1_request *req, struct pt_h1_meta *meta, const char **why);

/**
 * Validate the framing of a parsed response to a request with method
 * req_method and fill meta; same conventions and the same Content-Length /
 * Transfer-Encoding rules (also for responses that have no body).  Never
 * returns PT_DECLINED.  Body: PT_H1_BODY_NONE for HEAD, 1xx, 204, 304 and a
 * 2xx to CONNECT; else chunked, else Content-Length, else
 * PT_H1_BODY_UNTIL_CLOSE with keep_alive false.  upgrade is set only on a
 * 101 with Connection: upgrade and an Upgrade field.  host is empty.
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

/** Is s (NUL-terminated) a token, 1*tchar?  For names in the configuration. */
static inline bool pt_h1_is_token_cstr(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!pt_h1_tchar[(unsigned char)*s])
            return false;
    return true;
}

#endif
