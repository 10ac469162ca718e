/*
 * Router internals, shared by build.c (compiling the routes), match.c (the
 * hot path) and explain.c (the admin API's slow path).  See
 * docs/internals/router.md for the design.
 */
#ifndef PT_ROUTER_ROUTER_INT_H
#define PT_ROUTER_ROUTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "core/str.h"
#include "router/router.h"

#define RT_NONE UINT32_MAX
/** Nodes with more static children than this are searched through the hash table. */
#define RT_SCAN_MAX 8
/** Regex step budget per match (PCRE2 match limit): a hostile path cannot make a regex spin. */
#define RT_REGEX_MATCH_LIMIT 1000000u

/* Pattern kinds, in priority order (a lower kind always wins). */
enum rt_kind {
    RT_EXACT = 0, /* only static segments */
    RT_PARAM,     /* static and {name} segments, fixed length */
    RT_PREFIX,    /* ends in "*" or {name*} */
    RT_REGEX,
    RT_KIND_COUNT
};

/** One segment of a trie pattern: static text, or a {name} parameter (key == NULL). */
struct rt_seg {
    const char *key;
    uint32_t len;
};

/**
 * One capture of a pattern.  For trie patterns pos is the segment index of a
 * {name}, or the number of segments before the wildcard for {name*} (rest).
 * For regexes pos is the group number.
 */
struct rt_cap {
    struct pt_str name;
    uint32_t pos;
    bool rest;
};

struct rt_pat {
    uint32_t route;
    uint32_t index; /* within the route's paths */
    uint32_t rank;  /* global priority: lower wins */
    uint8_t kind;   /* enum rt_kind */
    uint8_t nsegs;  /* trie patterns: segments before any wildcard */
    uint8_t nstatic;
    uint8_t nlead; /* static segments before the first {param} or wildcard */
    struct rt_seg *segs;
    struct rt_cap *caps;
    uint32_t ncaps;
    pcre2_code *re;   /* RT_REGEX only */
    uint32_t pairs;   /* RT_REGEX: ovector pairs needed (capture groups + 1) */
    const char *text; /* the normalised pattern, or the regex source */
};

struct rt_host {
    const char *name; /* lower case; for a wildcard the suffix ".example.com" */
    uint32_t len;
    bool wildcard;
};

struct rt_header {
    struct pt_str name;
    struct pt_str value;
    const char *missing_msg; /* "header NAME is missing" */
    const char *differs_msg; /* "header NAME differs" */
};

struct rt_route {
    /* what a match checks, first: one cache line */
    void *data;
    uint32_t method_mask;
    bool any_method;
    uint32_t nhosts, nheaders, nother;
    struct rt_host *hosts;
    struct rt_header *headers;
    const char **other; /* interned method tokens outside the mask */
    /* cold */
    const char *name; /* never NULL: "#3" for an unnamed route */
    uint32_t pat_first, npats;
    const char *host_msg;   /* explain: "host must be one of: ..." */
    const char *method_msg; /* explain: "method must be one of: ..." */
    const char *won_msg;    /* explain, for the losers: "route \"NAME\" won" */
};

/**
 * A trie node.  The path prefix it stands for is fixed by the edges leading
 * to it, so its depth, and therefore the request segment it looks at, is
 * fixed too: a match visits each node at most once.
 */
struct rt_node {
    uint32_t edge_first, nedges; /* static children, in r->edges */
    uint32_t param;              /* the {param} child, or RT_NONE */
    uint32_t term_first, nterm;  /* patterns ending here, in r->lists, by rank */
    uint32_t wild_first, nwild;  /* "*" / {rest*} patterns ending here, by rank */
    uint32_t min_rank;           /* best rank in this subtree (pruning) */
};

struct rt_edge {
    uint32_t parent, child;
    uint32_t hash; /* rt_edge_hash(parent, key) */
    uint32_t len;
    const char *key; /* in r->keys once built: a node's keys are adjacent */
};

/** An entry of a node's term/wild list: what the matcher needs without touching the pattern. */
struct rt_cand {
    uint32_t rank;
    uint32_t route;
    uint32_t pat;
};

struct pt_router {
    struct pt_arena arena; /* strings and small per-route arrays */
    struct rt_route *routes;
    size_t nroutes;
    struct rt_pat *pats;
    size_t npats;
    struct rt_node *nodes;
    uint32_t nnodes;
    struct rt_edge *edges;
    uint32_t nedges;
    uint32_t *htab; /* edge indices, open addressing, RT_NONE = empty */
    uint32_t hmask;
    struct rt_cand *lists; /* the nodes' term/wild lists */
    uint32_t nlists;
    char *keys;      /* edge keys, in edge order */
    uint32_t *regex; /* regex pattern ids, by rank (= declaration order) */
    uint32_t nregex;
    uint32_t max_pairs; /* largest ovector any regex needs */
    pcre2_match_context *mctx;
    bool *shadowed;          /* per route */
    const char **shadow_why; /* per route: the warning's text (arena), NULL when not shadowed */
};

/* Hash of a segment under a given parent node (FNV-1a, then a 32-bit finaliser). */
static inline uint32_t rt_edge_hash(uint32_t parent, const char *key, size_t len)
{
    uint32_t h = 2166136261u ^ (parent * 0x9e3779b1u);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    return h;
}

/** Grow an array to hold need elements (doubling); NULL on failure, p still valid. */
static inline void *rt_grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    if (nc > SIZE_MAX / elem)
        return NULL;
    void *np = pt_realloc(p, nc * elem);
    if (np == NULL)
        return NULL;
    *cap = nc;
    return np;
}

/**
 * Parse pattern text into p (pattern.c), allocating in a.  Returns NULL, or
 * the problem: a static string or err.  p->re may be set even on failure
 * and must then be freed by the caller.
 */
const char *pt__router_parse_pattern(struct pt_arena *a, const char *text, struct rt_pat *p,
                                     char *err, size_t errlen);

/** Give every pattern its rank (trie.c).  false on allocation failure. */
bool pt__router_rank(struct pt_router *r);

/** Build the trie and the regex list from ranked patterns (trie.c).  false on allocation failure.
 */
bool pt__router_trie(struct pt_router *r);

/** Mark and report shadowed routes (shadow.c).  false on allocation failure. */
bool pt__router_shadow(struct pt_router *r, pt_router_diag_fn diag, void *ctx);

/* Constraint checks, in the order explain reports them. */
enum rt_check { RT_CHECK_OK = 0, RT_CHECK_HOST, RT_CHECK_HEADER, RT_CHECK_METHOD };

/**
 * Check route constraints (host, then headers, then method).  *hdr is set to
 * the failing header's index on RT_CHECK_HEADER.  Pure; used by both paths.
 */
enum rt_check pt__router_check(const struct rt_route *rt, const struct pt_router_request *req,
                               enum pt_method method, uint32_t *hdr);

/** Union route rt's methods into m's 405 fields. */
void pt__router_allow_add(struct pt_router_match *m, const struct rt_route *rt);

/**
 * Run regex pattern p against path; on a match and when m is not NULL,
 * store its named groups in m.  Returns true on a match.
 */
bool pt__router_regex(const struct pt_router *r, const struct rt_pat *p, struct pt_str path,
                      struct pt_router_match *m);

/** Fill m's captures for trie pattern p matching path. */
void pt__router_trie_caps(const struct rt_pat *p, struct pt_str path, struct pt_router_match *m);

#endif
