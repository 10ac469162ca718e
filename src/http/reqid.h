/*
 * Request ids (X-Request-Id) and W3C trace context (traceparent).
 */
#ifndef PT_HTTP_REQID_H
#define PT_HTTP_REQID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"

#define PT_REQID_MAX     128
#define PT_REQID_GEN_LEN 32 /* length of a generated id */

/** A client's id is kept when it is 1-128 characters of A-Za-z0-9._- (SPEC §10). */
bool pt_reqid_is_sane(struct pt_str id);

/**
 * Per-thread random source (xoshiro256**), seeded from getrandom() on first
 * use and again in a forked child.  Not cryptographic.
 */
uint64_t pt_random_u64(void);

/** Write a fresh random id of PT_REQID_GEN_LEN lower-case hex characters (no NUL). */
void pt_reqid_generate(char out[PT_REQID_GEN_LEN]);

struct pt_traceparent {
    uint8_t version;
    uint8_t trace_id[16];
    uint8_t parent_id[8];
    uint8_t flags;
};

#define PT_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

/**
 * Parse a traceparent header (W3C Trace Context level 1): version 00 exactly
 * as specified, higher versions by their first four fields; all-zero ids and
 * version ff are invalid; hex must be lower case.  A higher version must be
 * at least 55 characters, with the end or '-' after the flags.  On success
 * *tp holds the version and flags as received.  0 or -1 (*tp untouched).
 */
int pt_traceparent_parse(struct pt_str s, struct pt_traceparent *tp);

/** Start a new trace: random trace id, random parent id, sampled flag as given. */
void pt_traceparent_new(struct pt_traceparent *tp, bool sampled);

/**
 * Keep the trace id, give this hop a fresh span id (the new parent for
 * upstream).  out is version 00; of the flags only sampled (0x01) and
 * random-trace-id (0x02) are kept.  in and out may be the same.
 */
void pt_traceparent_child(const struct pt_traceparent *in, struct pt_traceparent *out);

/** Write the 55-character header value (no NUL), with tp's version as it is. */
void pt_traceparent_format(const struct pt_traceparent *tp, char out[PT_TRACEPARENT_LEN]);

/** Write the 32 hex characters of the trace id (no NUL). */
void pt_trace_id_hex(const struct pt_traceparent *tp, char out[32]);

#endif
