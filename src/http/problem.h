/*
 * RFC 9457 problem details: every answer the gateway produces itself.
 *
 *   {"type":"urn:portico:error:not-found","title":"Not Found","status":404,
 *    "detail":"no route for GET /x","request_id":"..."}
 *
 * The detail never contains a file path, a stack trace or a secret; strings
 * are JSON-escaped.  Format, slugs and escaping rules:
 * docs/internals/errors.md.
 */
#ifndef PT_HTTP_PROBLEM_H
#define PT_HTTP_PROBLEM_H

#include <stddef.h>

#include "core/str.h"

/** Standard reason phrase for a status ("Not Found"); "Unknown" when unknown. */
const char *pt_http_reason(int status);

/** The "type" slug used for a status when the caller has none ("not-found"). */
const char *pt_problem_default_type(int status);

/**
 * Write the JSON body into buf (size bytes).  type is the slug after
 * "urn:portico:error:" (NULL or "" = default for the status); detail and
 * request_id may be empty, and are then left out of the body.  Returns the
 * body length, or the length it would have had when it did not fit (as
 * snprintf does: at most size - 1 bytes and a NUL are written when size > 0;
 * buf may be NULL when size is 0).  Never allocates.
 */
size_t pt_problem_json(char *buf, size_t size, int status, const char *type, struct pt_str detail,
                       struct pt_str request_id);

/**
 * Write s JSON-escaped (without quotes) into buf; returns the bytes it needs
 * (snprintf-style, NUL-terminated when size > 0).  Any bytes are accepted:
 * control characters become \uXXXX (or \n, \t...), and invalid UTF-8 becomes
 * U+FFFD, one per maximal ill-formed subsequence, so the result is always
 * valid JSON.
 */
size_t pt_json_escape(char *buf, size_t size, struct pt_str s);

#endif
