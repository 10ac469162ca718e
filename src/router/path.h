/*
 * Request-path normalisation (SPEC §2.1, §10 "Paths").
 *
 * Applied to the path part of an origin-form request-target (the query is
 * split off first) before routing; the normalised path is what goes
 * upstream.
 *   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded;
 *     every other escape is kept, with its hex digits upper-cased; %2F is
 *     never decoded and never splits a segment;
 *   - "." and ".." segments are resolved (after that decoding, so "%2e%2e"
 *     counts as ".."); a ".." that would climb above the root is an error;
 *   - runs of "/" are merged into one;
 *   - a trailing slash is kept ("/a/" stays "/a/").
 */
#ifndef PT_ROUTER_PATH_H
#define PT_ROUTER_PATH_H

#include <stddef.h>
#include <sys/types.h>

/** The path does not start with '/', has a bad %-escape, or a byte outside 0x21-0x7E. */
#define PT_PATH_INVALID (-1)
/** A ".." segment climbs above the root. */
#define PT_PATH_ESCAPES_ROOT (-30)

/**
 * Normalise in[0..len) into out, which must have room for len bytes (the
 * result is never longer than the input).  in and out may be the same
 * buffer.  Returns the normalised length (>= 1), PT_PATH_INVALID or
 * PT_PATH_ESCAPES_ROOT.  The output is not NUL-terminated.
 */
ssize_t pt_path_normalize(const char *in, size_t len, char *out);

#endif
