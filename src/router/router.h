/*
 * The route matcher (SPEC §2.1).
 *
 * Built once per configuration snapshot from the routes' match blocks and
 * immutable afterwards, so any number of worker threads may match against
 * it at once without locks.
 *
 * Path patterns (in comments "/a/ *" stands for "/a/" followed by "*": a C
 * comment cannot hold slash-star):
 *   /a/b          exact
 *   /a/ *         the prefix "/a/" and everything under it (not "/a" itself)
 *   /a/{id}       one segment captured as "id"
 *   /a/{rest*}    the remaining path captured as "rest" (may be empty); last segment only
 *   ~ REGEX       PCRE2 (JIT-compiled), matched against the normalised path
 *                 as written (anchor it yourself); named groups become captures
 * Static segments live in a trie, so matching cost does not grow with the
 * number of routes.
 *
 * Among the routes whose path, host, method and headers all match, the most
 * specific wins: exact > parameterised (more static segments first) > prefix
 * (longest static prefix first; {rest*} counts as a prefix) > regex
 * (declaration order); ties go to the route declared first.
 *
 * Precisely: a prefix pattern's "static prefix" is the number of static
 * segments before its first {param} or wildcard; ties on it are broken by
 * more static segments overall, then by more segments before the wildcard
 * ("/a/{x}/ *" beats "/a/ *" on "/a/b/c").  Between two patterns of one route
 * the more specific one provides the captures.
 *
 * Patterns other than regexes are normalised like request paths when built
 * ("/a/./b" is "/a/b"); a static segment may not contain '{', '}' or '*'
 * (mixed segments such as "/a/{id}.json" are not supported), and a capture
 * name is letters, digits, '_' and '-'.  Methods are compared exactly (a GET
 * route does not accept HEAD unless it lists it).  Hosts are exact names or
 * "*.domain", without a port.
 */
#ifndef PT_ROUTER_ROUTER_H
#define PT_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/str.h"
#include "http/method.h"

#define PT_ROUTER_MAX_CAPTURES 16
/** Most segments a path pattern may have (a longer one is a build error). */
#define PT_ROUTER_MAX_SEGMENTS 64
/** Most distinct non-standard methods reported in one 405 (the rest are dropped). */
#define PT_ROUTER_MAX_ALLOW_OTHER 16

struct pt_router;

struct pt_router_header_match {
    const char *name;  /* case-insensitive */
    const char *value; /* exact, case-sensitive */
};

/** One configured route, as input to pt_router_build(). */
struct pt_router_route {
    const char *name;
    void *data; /* handed back on a match (the compiled route) */
    const char *const *paths;
    size_t npaths;
    const char *const *methods; /* tokens; none = any method */
    size_t nmethods;
    /* "api.example.com", "*.example.com" (any depth of subdomain); none = any */
    const char *const *hosts;
    size_t nhosts;
    const struct pt_router_header_match *headers; /* all must match; none = no constraint */
    size_t nheaders;
};

/**
 * Called for each problem found while building: route and path are indexes
 * into the input (path is -1 when the problem is not about one pattern).
 * Errors make pt_router_build fail; warnings (is_error false: a route that
 * can never match because an earlier or more specific one always wins)
 * do not.  message is only valid during the call.
 */
typedef void (*pt_router_diag_fn)(void *ctx, bool is_error, size_t route, ssize_t path,
                                  const char *message);

/**
 * Compile the routes.  Returns the router, or NULL when any pattern is
 * invalid (bad regex, "{" without "}", a {rest*} that is not last, a
 * duplicate capture name, a path not starting with '/' or '~', ...), or a
 * method, host or header constraint is, or a route has no path pattern,
 * after reporting every problem through diag; also NULL when memory runs
 * out (reported as an error with route 0, path -1).  diag may be NULL.
 * Nothing in routes is referenced after the call (strings are copied),
 * except the data pointers, which are handed back as they are.  Shadowed
 * routes are reported as warnings.
 */
struct pt_router *pt_router_build(const struct pt_router_route *routes, size_t n,
                                  pt_router_diag_fn diag, void *ctx);

/** Free a router (NULL is fine).  No match may be running on it. */
void pt_router_free(struct pt_router *r);

/** Looks up a request header by name (case-insensitive); returns false if absent. */
typedef bool (*pt_router_header_fn)(void *ctx, struct pt_str name, struct pt_str *value);

struct pt_router_request {
    struct pt_str method;
    struct pt_str host; /* Host without port; compared case-insensitively */
    struct pt_str path; /* normalised (pt_path_normalize), no query; only regexes can
                           match a path that does not start with '/' */
    pt_router_header_fn header;
    void *header_ctx;
};

struct pt_capture {
    struct pt_str name;  /* points into the router */
    struct pt_str value; /* points into the request's path */
};

struct pt_router_match {
    void *data;          /* the winning route's data; NULL when none */
    size_t route;        /* its index in the build input; SIZE_MAX when none */
    int status;          /* 200 matched; 404 nothing matched; 405 only the method failed */
    uint32_t allow_mask; /* 405: PT_METHOD_BIT()s of the allowed known methods */
    const char *const *allow_other; /* 405: allowed methods not in the mask; points to
                                       _allow_buf below (names are router-owned) */
    size_t nallow_other;
    size_t ncaptures;
    struct pt_capture captures[PT_ROUTER_MAX_CAPTURES];
    const char *_allow_buf[PT_ROUTER_MAX_ALLOW_OTHER];
};

/**
 * Match a request.  Thread-safe on a built router.  Never allocates, except
 * that the first regex evaluated on a thread (or the first after a router
 * with larger regexes was built) sizes that thread's cached PCRE2 match data;
 * pt_router_thread_cleanup() releases it.  A regex that exceeds its step
 * budget (catastrophic backtracking) counts as not matching.
 */
void pt_router_match(const struct pt_router *r, const struct pt_router_request *req,
                     struct pt_router_match *m);

/** Why one route won or lost, for /routes/explain and `portico check`. */
enum pt_router_verdict {
    PT_ROUTER_WON = 0,
    PT_ROUTER_LOST_PATH, /* no path pattern matched */
    PT_ROUTER_LOST_HOST,
    PT_ROUTER_LOST_METHOD,
    PT_ROUTER_LOST_HEADER,
    PT_ROUTER_LOST_PRIORITY, /* matched, but a more specific or earlier route won */
    PT_ROUTER_VERDICT_COUNT
};

struct pt_router_explain_entry {
    size_t route;
    enum pt_router_verdict verdict;
    ssize_t path;       /* index of the pattern that matched, -1 if none */
    const char *detail; /* static or router-owned text (lives as long as the router), e.g.
                           "header X-Api-Version differs", "route \"users\" won" */
};

/**
 * Evaluate every route against the request and report each one's verdict
 * (entries[i] for route i; entries must have room for the number of routes).
 * Also fills m exactly as pt_router_match would.  Slow path: walks all
 * routes; for the admin API only.
 *
 * The verdicts are computed independently of the trie (each pattern is
 * tried on its own), so the route marked PT_ROUTER_WON is a cross-check of
 * m->route.  Constraints are checked in the order host, headers, method: a
 * route reported as PT_ROUTER_LOST_METHOD matched everything but the method
 * (and so contributed to a 405's Allow).
 */
void pt_router_explain(const struct pt_router *r, const struct pt_router_request *req,
                       struct pt_router_match *m, struct pt_router_explain_entry *entries);

/** Number of routes the router was built from. */
size_t pt_router_count(const struct pt_router *r);

/** Routes that can never match (shadowed); out has room for the count; returns how many. */
size_t pt_router_shadowed(const struct pt_router *r, size_t *out);

/**
 * Why route can never match (the text of the build warning: 'route "b" can
 * never match: route "a" always wins'), or NULL when it can.  Router-owned.
 */
const char *pt_router_shadow_reason(const struct pt_router *r, size_t route);

/**
 * Does this path pattern define a capture called name?  1 yes, 0 no, -1 the
 * pattern is invalid.  Used to validate `rewrite` templates at load time.
 */
int pt_router_pattern_has_capture(const char *pattern, const char *name);

/** Human name of a verdict ("won", "path", "host", ...). */
const char *pt_router_verdict_name(enum pt_router_verdict v);

/** Free the calling thread's cached regex match data (call at worker thread exit). */
void pt_router_thread_cleanup(void);

#endif
