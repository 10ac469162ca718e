/*
 * Streaming decoder for the chunked transfer coding (RFC 9112 §7.1).
 *
 * It never copies: each call reports where, inside the bytes it consumed,
 * the next run of payload is.  Strict: chunk sizes are 1-16 hex digits with
 * no overflow, sign or whitespace (BWS only before a ";"); extensions must be
 * syntactically valid (RFC 9112 §7.1.1: token [= token / quoted-string]) and
 * the size line at most PT_CHUNKED_MAX_LINE bytes; every chunk ends in CRLF;
 * trailer fields are validated as header fields and discarded, the whole
 * trailer section at most PT_CHUNKED_MAX_TRAILERS bytes (see
 * docs/internals/http1.md).
 */
#ifndef PT_HTTP_CHUNKED_H
#define PT_HTTP_CHUNKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/str.h"

#define PT_CHUNKED_MAX_LINE     4096  /* size line including extensions */
#define PT_CHUNKED_MAX_TRAILERS 16384 /* whole trailer section */

struct pt_chunked {
    uint8_t state;
    bool done;          /* the last chunk and the trailer section were read */
    uint64_t remaining; /* payload bytes left in the current chunk */
    uint32_t line_len;  /* bytes seen in the current size line / trailer section */
    uint64_t total;     /* payload bytes decoded so far */
};

void pt_chunked_init(struct pt_chunked *c);

/**
 * Decode from in[0..len).  Returns how many bytes were consumed (possibly 0
 * when len is 0) and sets *data to the payload found within them (data->len
 * may be 0).  At most one payload run is reported per call, so callers loop
 * until everything is consumed or c->done.  Bytes after the end of the body
 * are never consumed.  Returns PT_PARSE_INVALID on malformed input.
 *
 * Details: a call returns right after the payload run it reports, so the
 * return value can be less than len while !c->done; otherwise everything
 * given is consumed.  Once c->done, calls consume nothing and return 0.
 * After PT_PARSE_INVALID the decoder stays failed.  Chunk sizes are at most
 * 0x7fffffffffffffff (INT64_MAX, as for Content-Length); c->total is never
 * more than the sum of the sizes seen.  data->ptr lies within in[0..return).
 */
ssize_t pt_chunked_decode(struct pt_chunked *c, const char *in, size_t len, struct pt_str *data);

#endif
