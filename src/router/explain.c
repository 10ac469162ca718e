/*
 * The slow path behind GET /routes/explain: every route, every pattern,
 * tried one by one without the trie, so that each route's verdict can be
 * told and the trie's answer can be cross-checked (tests and the
 * route_match fuzz target compare the two).
 */
#include <string.h>

#include "router/router-int.h"

/* Does trie pattern p match path on its own? */
static bool pattern_matches(const struct rt_pat *p, struct pt_str path)
{
    if (path.len == 0 || path.ptr[0] != '/')
        return false;
    size_t pos = 0; /* path.ptr[pos] == '/' while segments remain */
    for (uint32_t k = 0; k < p->nsegs; k++) {
        if (pos >= path.len)
            return false;
        const char *seg = path.ptr + pos + 1;
        const char *slash = memchr(seg, '/', path.len - pos - 1);
        size_t end = slash != NULL ? (size_t)(slash - path.ptr) : path.len;
        size_t len = end - pos - 1;
        const struct rt_seg *s = &p->segs[k];
        if (s->key == NULL ? len == 0 : (len != s->len || memcmp(seg, s->key, len) != 0))
            return false;
        pos = end;
    }
    return p->kind == RT_PREFIX ? pos < path.len : pos == path.len;
}

static const char *const won_detail[RT_KIND_COUNT] = {
    "exact match",
    "parameterised match",
    "prefix match",
    "regex match",
};

void pt_router_explain(const struct pt_router *r, const struct pt_router_request *req,
                       struct pt_router_match *m, struct pt_router_explain_entry *entries)
{
    enum pt_method method = pt_method_from_str(req->method);
    uint32_t best_rank = UINT32_MAX;
    size_t winner = SIZE_MAX;
    pt_router_match(r, req, m);
    for (size_t ri = 0; ri < r->nroutes; ri++) {
        const struct rt_route *rt = &r->routes[ri];
        struct pt_router_explain_entry *e = &entries[ri];
        const struct rt_pat *best = NULL;
        for (uint32_t i = 0; i < rt->npats; i++) {
            const struct rt_pat *p = &r->pats[rt->pat_first + i];
            bool ok = p->kind == RT_REGEX ? pt__router_regex(r, p, req->path, NULL)
                                          : pattern_matches(p, req->path);
            if (ok && (best == NULL || p->rank < best->rank))
                best = p;
        }
        *e = (struct pt_router_explain_entry){ri, PT_ROUTER_LOST_PATH, -1,
                                              "no path pattern matched"};
        if (best == NULL)
            continue;
        e->path = (ssize_t)best->index;
        uint32_t hdr = 0;
        switch (pt__router_check(rt, req, method, &hdr)) {
        case RT_CHECK_HOST:
            e->verdict = PT_ROUTER_LOST_HOST;
            e->detail = rt->host_msg;
            break;
        case RT_CHECK_HEADER:
            e->verdict = PT_ROUTER_LOST_HEADER;
            e->detail = rt->headers[hdr].missing_msg;
            if (req->header != NULL) {
                struct pt_str v;
                if (req->header(req->header_ctx, rt->headers[hdr].name, &v))
                    e->detail = rt->headers[hdr].differs_msg;
            }
            break;
        case RT_CHECK_METHOD:
            e->verdict = PT_ROUTER_LOST_METHOD;
            e->detail = rt->method_msg;
            break;
        case RT_CHECK_OK:
            e->verdict = PT_ROUTER_LOST_PRIORITY;
            e->detail = won_detail[best->kind];
            if (best->rank < best_rank) {
                best_rank = best->rank;
                winner = ri;
            }
            break;
        }
    }
    for (size_t ri = 0; ri < r->nroutes; ri++) {
        if (entries[ri].verdict != PT_ROUTER_LOST_PRIORITY)
            continue;
        if (ri == winner)
            entries[ri].verdict = PT_ROUTER_WON;
        else
            entries[ri].detail = r->routes[winner].won_msg;
    }
}

const char *pt_router_verdict_name(enum pt_router_verdict v)
{
    static const char *const names[PT_ROUTER_VERDICT_COUNT] = {
        "won", "path", "host", "method", "header", "priority",
    };
    return (unsigned)v < PT_ROUTER_VERDICT_COUNT ? names[v] : "?";
}
