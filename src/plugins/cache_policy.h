/*
 * The cache's HTTP rules, as pure functions (no I/O, no store): parsing
 * Cache-Control (RFC 9111 §5.2, RFC 5861) and HTTP dates (RFC 9110 §5.6.7),
 * deciding whether a response may be stored by a shared cache, its freshness
 * lifetime and age (RFC 9111 §4.2), and building the cache key.  The cache
 * plugin (cache.c) calls these; unit tests and the cache_control fuzz target
 * call them directly.
 */
#ifndef PT_PLUGINS_CACHE_POLICY_H
#define PT_PLUGINS_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/str.h"
#include "http/h1.h"

/** Cache-Control directives we act on (flags of struct pt_cache_control). */
enum {
    PT_CC_NO_STORE = 1u << 0,
    PT_CC_NO_CACHE = 1u << 1, /* also no-cache="field" */
    PT_CC_PRIVATE = 1u << 2,  /* also private="field" */
    PT_CC_PUBLIC = 1u << 3,
    PT_CC_MUST_REVALIDATE = 1u << 4,
    PT_CC_PROXY_REVALIDATE = 1u << 5,
    PT_CC_MAX_AGE = 1u << 6,  /* max_age is set */
    PT_CC_S_MAXAGE = 1u << 7, /* s_maxage is set */
    PT_CC_SWR = 1u << 8,      /* stale_while_revalidate is set */
    PT_CC_SIE = 1u << 9,      /* stale_if_error is set */
    PT_CC_NO_TRANSFORM = 1u << 10,
    PT_CC_ONLY_IF_CACHED = 1u << 11,  /* request directive */
    PT_CC_INVALID = 1u << 12,         /* a delta-seconds we act on was malformed */
    PT_CC_NO_CACHE_FIELDS = 1u << 13, /* no-cache="field-names" (PT_CC_NO_CACHE is set too) */
};

/** Delta-seconds above this are read as this (RFC 9111 §1.2.2: 2^31). */
#define PT_CC_DELTA_MAX 2147483648u

struct pt_cache_control {
    unsigned flags;
    uint32_t max_age, s_maxage, stale_while_revalidate, stale_if_error; /* seconds */
};

/**
 * Parse one Cache-Control field value and merge its directives into *cc
 * (call once per field line; start from a zeroed struct).  Directive names
 * are case-insensitive; unknown directives and extensions are skipped;
 * arguments may be tokens or quoted strings.  A directive we act on whose
 * delta-seconds is malformed sets PT_CC_INVALID (and, for max-age and
 * s-maxage, reads as 0: RFC 9111 §4.2.1 says invalid freshness is stale).
 * When a directive repeats, the smallest value wins.  Never fails.
 */
void pt_cache_control_parse(struct pt_str value, struct pt_cache_control *cc);

/** All Cache-Control fields of a header list, merged. */
void pt_cache_control_from_headers(const struct pt_h1_header *hs, size_t n,
                                   struct pt_cache_control *cc);

/**
 * Parse an HTTP-date (IMF-fixdate, obsolete RFC 850 and asctime forms) into
 * seconds since the epoch.  0, or -1 when the text is not a date.
 */
int pt_http_date_parse(struct pt_str s, int64_t *out);

/** Format an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes + NUL) into buf[30]. */
size_t pt_http_date_format(int64_t t, char *buf);

/**
 * Parse one entity-tag (RFC 9110 §8.8.3): `"opaque"` or `W/"opaque"`, where
 * opaque is any bytes but `"`, controls and DEL (obs-text allowed).
 * Surrounding whitespace is ignored.  On success *tag is the quoted part,
 * quotes included (what comparisons compare) and *weak says W/.  0 or -1.
 */
int pt_etag_parse(struct pt_str v, struct pt_str *tag, bool *weak);

/**
 * Does an If-None-Match field value match etag (a stored ETag field value)?
 * Weak comparison (RFC 9110 §8.8.3.2: W/ is ignored on both sides).  The
 * value is `*` (matches when etag is a valid entity-tag or when any_star,
 * i.e. a representation exists) or a comma-separated list of entity-tags;
 * a malformed member ends the list (what came before still counts).  An
 * invalid or empty etag matches only `*` with any_star.
 */
bool pt_etag_list_match(struct pt_str list, struct pt_str etag, bool any_star);

/**
 * Evaluate a GET/HEAD request's If-None-Match and If-Modified-Since against
 * a stored response (RFC 9110 §13.2.2 steps 3 and 4, RFC 9111 §4.3.2):
 * true when the answer is 304 Not Modified.  If-None-Match (all its field
 * lines) wins when present: etag is the stored ETag value (empty: none).
 * Otherwise If-Modified-Since, unless it is repeated or not a valid
 * HTTP-date (then it is ignored), is compared with the stored Last-Modified
 * (has_lm, lm_s): not modified when Last-Modified <= the date.  Without
 * Last-Modified it never matches.
 */
bool pt_cache_not_modified(const struct pt_h1_header *req, size_t n, struct pt_str etag,
                           bool has_lm, int64_t lm_s);

/** Does the request carry If-None-Match or If-Modified-Since?  (A cheap scan.) */
bool pt_cache_has_conditionals(const struct pt_h1_header *req, size_t n);

/** Is name If-None-Match or If-Modified-Since (case-insensitive)? */
bool pt_cache_is_conditional_field(struct pt_str name);

/** One byte range of a representation: first..last, both inclusive (RFC 9110 §14.1.2). */
struct pt_byte_range {
    uint64_t first, last;
};

/** What a Range field asks of a representation (pt_range_parse, pt_cache_range). */
enum pt_range_verdict {
    PT_RANGE_IGNORE = 0,    /* no Range, or one to ignore: answer in full (200) */
    PT_RANGE_PARTIAL,       /* exactly one satisfiable range: 206 with *r */
    PT_RANGE_UNSATISFIABLE, /* one range wholly beyond the representation: 416 */
    PT_RANGE_VERDICT_COUNT
};

/**
 * Parse one Range field value (RFC 9110 §14.2) against a representation of
 * len bytes.  Only `bytes=` (case-insensitive unit, no whitespace around
 * `=`) with exactly one range-spec is honoured: `first-last`, `first-` or
 * `-suffix`, with optional whitespace and empty elements around commas as
 * the `1#` list rule allows.  Several ranges, another unit, an invalid
 * range (last < first) or anything malformed: PT_RANGE_IGNORE.  A first
 * position at or beyond len, or a suffix of 0: PT_RANGE_UNSATISFIABLE.  A
 * last position beyond the end is clamped, a suffix longer than the
 * representation takes all of it; a suffix on an empty representation is
 * ignored (no byte range can describe it).  Huge numbers saturate, never
 * overflow.  On PT_RANGE_PARTIAL, *r holds the range (first <= last < len).
 */
enum pt_range_verdict pt_range_parse(struct pt_str value, uint64_t len, struct pt_byte_range *r);

/**
 * Does an If-Range field value hold for a stored response (RFC 9110
 * §13.1.5)?  An entity-tag matches only by strong comparison: neither it
 * nor etag (the stored ETag value; empty: none) may be weak.  An HTTP-date
 * matches only when it is the stored Last-Modified (has_lm, lm_s) to the
 * second and that date is a strong validator by RFC 9110 §8.8.2.2: the
 * stored Date (has_date, date_s) is at least one second after it.
 * Anything else (malformed, empty) does not match.
 */
bool pt_if_range_match(struct pt_str value, struct pt_str etag, bool has_lm, int64_t lm_s,
                       bool has_date, int64_t date_s);

/**
 * Evaluate a GET/HEAD request's Range and If-Range (every field line)
 * against a stored 200 response (its headers st and body length len), in
 * RFC 9110 §13.2.2 step 5's order: no Range, more than one Range line, an
 * ignorable Range, more than one If-Range line or an If-Range that does
 * not hold: PT_RANGE_IGNORE.  Otherwise what pt_range_parse says.  Scans
 * the request headers once and allocates nothing.
 */
enum pt_range_verdict pt_cache_range(const struct pt_h1_header *req, size_t n,
                                     const struct pt_h1_header *st, size_t nst, uint64_t len,
                                     struct pt_byte_range *r);

/** Is name Range or If-Range (case-insensitive)? */
bool pt_cache_is_range_field(struct pt_str name);

/**
 * The stored headers st updated with those of a 304 (RFC 9111 §3.2): every
 * field name upd carries replaces all the stored lines of that name, new
 * names are added; upd's Content-Length, Age, hop-by-hop (Connection,
 * Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Connection)
 * and skip (may be empty) fields are not used.  Writes at most nst + nupd views into
 * out; returns how many.
 */
size_t pt_cache_merge_headers(const struct pt_h1_header *st, size_t nst,
                              const struct pt_h1_header *upd, size_t nupd, struct pt_str skip,
                              struct pt_h1_header *out);

/** What a response says about its freshness (inputs to pt_cache_freshness). */
struct pt_cache_response_info {
    struct pt_cache_control cc;
    bool has_date, has_expires, has_age, expires_invalid, has_set_cookie, vary_star;
    bool has_etag;                              /* a valid ETag */
    bool has_last_modified;                     /* a valid Last-Modified */
    int64_t date_s, expires_s, last_modified_s; /* epoch seconds */
    uint64_t age_s;                             /* the Age field */
};

/**
 * Read Cache-Control, Date, Expires, Age, Set-Cookie, Vary, ETag and
 * Last-Modified from response headers.
 */
void pt_cache_response_info(const struct pt_h1_header *hs, size_t n,
                            struct pt_cache_response_info *ri);

/** Why a response is not stored (PT_CACHE_STORABLE when it may be). */
enum pt_cache_verdict {
    PT_CACHE_STORABLE = 0,
    PT_CACHE_NO_STORE,      /* Cache-Control: no-store */
    PT_CACHE_PRIVATE,       /* Cache-Control: private */
    PT_CACHE_NO_CACHE,      /* Cache-Control: no-cache with field names, or without a validator */
    PT_CACHE_SET_COOKIE,    /* a Set-Cookie field: someone's session */
    PT_CACHE_VARY_STAR,     /* Vary: * */
    PT_CACHE_STATUS,        /* status not in `statuses` */
    PT_CACHE_AUTHORIZATION, /* the request had Authorization; the response did not allow sharing */
    PT_CACHE_NOT_FRESH,     /* freshness lifetime of zero (max-age=0, Expires in the past) */
    PT_CACHE_VERDICT_COUNT
};

/** Short text for a verdict ("no-store", ...), for logs. */
const char *pt_cache_verdict_name(enum pt_cache_verdict v);

/**
 * May a shared cache store this response (RFC 9111 §3 and §3.5)?
 * authorized: the request carried Authorization.  Freshness is checked
 * separately (pt_cache_freshness_ms == 0 means PT_CACHE_NOT_FRESH).  A
 * plain `no-cache` is storable when the response has a validator (ETag or
 * Last-Modified): the caller must then treat it as stale at once, and
 * revalidate it before every use (RFC 9111 §5.2.2.4).
 */
enum pt_cache_verdict pt_cache_storable(const struct pt_cache_response_info *ri, bool authorized);

/**
 * Freshness lifetime in milliseconds (RFC 9111 §4.2.1): s-maxage, else
 * max-age, else Expires - Date (Date defaults to now_s), else default_ms
 * (the plugin's `ttl`, our heuristic).  0 means stale at once.
 */
uint64_t pt_cache_freshness_ms(const struct pt_cache_response_info *ri, int64_t now_s,
                               uint64_t default_ms);

/**
 * The response's age when it arrived, in seconds (RFC 9111 §4.2.3 with
 * response_delay taken as 0): max(Age, now - Date), never negative.
 */
uint64_t pt_cache_initial_age_s(const struct pt_cache_response_info *ri, int64_t now_s);

/** Parts of the key beyond method, host, path and query (the `key` option). */
enum pt_cache_key_kind {
    PT_CACHE_KEY_CONSUMER = 0,
    PT_CACHE_KEY_QUERY, /* always part of the key; accepted for compatibility */
    PT_CACHE_KEY_HEADER,
    PT_CACHE_KEY_COOKIE,
    PT_CACHE_KEY_KIND_COUNT
};

struct pt_cache_key_part {
    enum pt_cache_key_kind kind;
    const char *name; /* header or cookie name */
};

/** What goes into a key (views; nothing is copied). */
struct pt_cache_key_input {
    struct pt_str route; /* route name: routes never share entries */
    struct pt_str method;
    struct pt_str host;  /* lower-cased into the key */
    struct pt_str path;  /* normalised */
    struct pt_str query; /* the full query string, as sent */
    bool has_query;
    struct pt_str consumer;
    const struct pt_h1_header *headers; /* the request's */
    size_t nheaders;
    const char *const *vary; /* configured `vary` header names */
    size_t nvary;
    const struct pt_cache_key_part *parts;
    size_t nparts;
};

/**
 * Build the key into out (appended): the fields above separated by NUL
 * bytes (no field can contain one), each vary header as name=values (all
 * lines joined with ", ") and each key part likewise, so that two
 * requests share a key exactly when they agree on every part.  The byte
 * offset where the path starts is stored in *path_off (for prefix purges).
 * 0 or PT_ERR_NOMEM.
 */
int pt_cache_key_build(const struct pt_cache_key_input *in, struct pt_buf *out, size_t *path_off);

/**
 * The secondary key of a response's Vary field (RFC 9111 §4.1): for each
 * field name the response's Vary lists, the lower-cased name and the
 * request's values, appended to out.  An entry stores it; a later request
 * matches the entry only when its own signature, computed from the entry's
 * Vary, is the same.  0 or PT_ERR_NOMEM.
 */
int pt_cache_vary_signature(const struct pt_h1_header *resp, size_t nresp,
                            const struct pt_h1_header *req, size_t nreq, struct pt_buf *out);

/** The value of cookie `name` in the request's Cookie fields (empty view when absent). */
struct pt_str pt_cache_cookie(const struct pt_h1_header *hs, size_t n, struct pt_str name);

/** 64-bit hash of a key (FNV-1a with a final mix). */
uint64_t pt_cache_hash(const char *p, size_t n);

#endif
