/*
 * Matching a request against a built router: the hot path.
 *
 * A depth-first walk of the trie, one request segment per level.  At each
 * node the static child for the segment is tried first (found by a short
 * scan, or through the shared hash table on nodes with many children), then
 * the {param} child, then the prefix patterns that end at the node; at the
 * end of the path, the patterns that end there.  Every pattern carries a
 * global rank and every node the best rank below it, so a subtree that
 * cannot beat the best full match found so far is skipped; in practice an
 * exact match stops the walk at once.  A node stands for a fixed path
 * prefix, so it is visited at most once and the walk is bounded by the
 * trie, whatever the request.
 *
 * A candidate whose rank beats the current best has its route's
 * constraints checked: all pass -> new best; only the method fails -> its
 * methods join the 405 Allow set.  Regexes come last and only run when the
 * trie produced no full match (a regex can never beat one).
 *
 * Nothing here allocates: captures are views into the request path, and the
 * PCRE2 match data is cached per thread, sized for the largest regex seen.
 */
#include <stdlib.h>
#include <string.h>

#include "core/compiler.h"
#include "router/router-int.h"

struct mstate {
    const struct pt_router *r;
    const struct pt_router_request *req;
    const char *path;
    size_t len;
    enum pt_method method;
    uint32_t best;      /* pattern id of the best full match, RT_NONE */
    uint32_t best_rank; /* its rank, UINT32_MAX when none */
    bool method_only;   /* some route failed on the method alone (405) */
    struct pt_router_match *m;
};

static _Thread_local pcre2_match_data *tl_md;
static _Thread_local uint32_t tl_md_pairs;

void pt_router_thread_cleanup(void)
{
    pcre2_match_data_free(tl_md);
    tl_md = NULL;
    tl_md_pairs = 0;
}

static pcre2_match_data *match_data(uint32_t pairs)
{
    if (pt_likely(tl_md_pairs >= pairs))
        return tl_md;
    if (pairs < 16)
        pairs = 16;
    pcre2_match_data *md = pcre2_match_data_create(pairs, NULL);
    if (md == NULL)
        return NULL;
    pcre2_match_data_free(tl_md);
    tl_md = md;
    tl_md_pairs = pairs;
    return md;
}

static bool host_ok(const struct rt_route *rt, struct pt_str host)
{
    for (uint32_t i = 0; i < rt->nhosts; i++) {
        const struct rt_host *h = &rt->hosts[i];
        if (!h->wildcard) {
            if (pt_str_case_eq_lower_n(host, h->name, h->len))
                return true;
        } else if (host.len > h->len &&
                   pt_str_case_eq_lower_n(pt_str_make(host.ptr + host.len - h->len, h->len),
                                          h->name, h->len)) {
            return true;
        }
    }
    return false;
}

static bool method_ok(const struct rt_route *rt, enum pt_method method, struct pt_str name)
{
    if (rt->any_method)
        return true;
    if (method != PT_METHOD_OTHER)
        return (rt->method_mask & PT_METHOD_BIT(method)) != 0;
    for (uint32_t i = 0; i < rt->nother; i++)
        if (pt_str_eq(name, pt_str_cstr(rt->other[i])))
            return true;
    return false;
}

enum rt_check pt__router_check(const struct rt_route *rt, const struct pt_router_request *req,
                               enum pt_method method, uint32_t *hdr)
{
    if (rt->nhosts > 0 && !host_ok(rt, req->host))
        return RT_CHECK_HOST;
    for (uint32_t i = 0; i < rt->nheaders; i++) {
        struct pt_str v = PT_STR_NULL;
        if (req->header == NULL || !req->header(req->header_ctx, rt->headers[i].name, &v) ||
            !pt_str_eq(v, rt->headers[i].value)) {
            if (hdr != NULL)
                *hdr = i;
            return RT_CHECK_HEADER;
        }
    }
    if (!method_ok(rt, method, req->method))
        return RT_CHECK_METHOD;
    return RT_CHECK_OK;
}

void pt__router_allow_add(struct pt_router_match *m, const struct rt_route *rt)
{
    m->allow_mask |= rt->method_mask;
    for (uint32_t i = 0; i < rt->nother; i++) {
        bool seen = false;
        for (size_t k = 0; k < m->nallow_other; k++)
            seen |= m->_allow_buf[k] == rt->other[i]; /* interned: compare pointers */
        if (!seen && m->nallow_other < PT_ROUTER_MAX_ALLOW_OTHER)
            m->_allow_buf[m->nallow_other++] = rt->other[i];
    }
}

/* Consider the candidates of one node list (sorted by rank). */
static void consider(struct mstate *s, uint32_t first, uint32_t n)
{
    const struct pt_router *r = s->r;
    for (const struct rt_cand *c = &r->lists[first], *end = c + n; c < end; c++) {
        if (c->rank >= s->best_rank)
            return;
        enum rt_check v = pt__router_check(&r->routes[c->route], s->req, s->method, NULL);
        if (v == RT_CHECK_OK) {
            s->best = c->pat;
            s->best_rank = c->rank;
            return;
        }
        if (v == RT_CHECK_METHOD) {
            s->method_only = true;
            pt__router_allow_add(s->m, &r->routes[c->route]);
        }
    }
}

static uint32_t find_child(const struct pt_router *r, uint32_t ni, const char *seg, size_t len)
{
    const struct rt_node *n = &r->nodes[ni];
    if (n->nedges <= RT_SCAN_MAX) {
        const struct rt_edge *e = &r->edges[n->edge_first], *end = e + n->nedges;
        for (; e < end; e++)
            if (e->len == len && memcmp(e->key, seg, len) == 0)
                return e->child;
        return RT_NONE;
    }
    uint32_t h = rt_edge_hash(ni, seg, len);
    for (uint32_t k = h & r->hmask;; k = (k + 1) & r->hmask) {
        uint32_t ei = r->htab[k];
        if (ei == RT_NONE)
            return RT_NONE;
        const struct rt_edge *e = &r->edges[ei];
        if (e->hash == h && e->parent == ni && e->len == len && memcmp(e->key, seg, len) == 0)
            return e->child;
    }
}

/* Node ni has consumed path[0..pos); pos is the end or a '/'. */
static void visit(struct mstate *s, uint32_t ni, size_t pos)
{
    const struct rt_node *n = &s->r->nodes[ni];
    if (n->min_rank >= s->best_rank)
        return;
    if (pos == s->len) {
        consider(s, n->term_first, n->nterm);
        return;
    }
    const char *seg = s->path + pos + 1;
    const char *slash = memchr(seg, '/', s->len - pos - 1);
    size_t end = slash != NULL ? (size_t)(slash - s->path) : s->len;
    size_t seglen = end - pos - 1;
    if (n->nedges > 0) {
        uint32_t c = find_child(s->r, ni, seg, seglen);
        if (c != RT_NONE)
            visit(s, c, end);
    }
    if (n->param != RT_NONE && seglen > 0)
        visit(s, n->param, end);
    consider(s, n->wild_first, n->nwild);
}

void pt__router_trie_caps(const struct rt_pat *p, struct pt_str path, struct pt_router_match *m)
{
    /* Segment k of the path starts after the k-th '/'; captures are sorted by position. */
    size_t pos = 0; /* path.ptr[pos] == '/' starts segment `seg` */
    uint32_t seg = 0;
    m->ncaptures = 0;
    for (uint32_t i = 0; i < p->ncaps; i++) {
        const struct rt_cap *c = &p->caps[i];
        while (seg < c->pos) {
            const char *slash = memchr(path.ptr + pos + 1, '/', path.len - pos - 1);
            PT_BUG_ON(slash == NULL);
            pos = (size_t)(slash - path.ptr);
            seg++;
        }
        size_t start = pos + 1, end = path.len;
        if (!c->rest) {
            const char *slash = memchr(path.ptr + start, '/', path.len - start);
            if (slash != NULL)
                end = (size_t)(slash - path.ptr);
        }
        m->captures[m->ncaptures++] =
            (struct pt_capture){c->name, pt_str_make(path.ptr + start, end - start)};
    }
}

bool pt__router_regex(const struct pt_router *r, const struct rt_pat *p, struct pt_str path,
                      struct pt_router_match *m)
{
    pcre2_match_data *md = match_data(r->max_pairs);
    if (md == NULL)
        return false;
    int rc = pcre2_match(p->re, (PCRE2_SPTR)(path.ptr != NULL ? path.ptr : ""), path.len, 0, 0, md,
                         r->mctx);
    if (rc < 0)
        return false; /* no match, or the step budget ran out */
    if (m == NULL)
        return true;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t novec = pcre2_get_ovector_count(md);
    m->ncaptures = 0;
    for (uint32_t i = 0; i < p->ncaps; i++) {
        const struct rt_cap *c = &p->caps[i];
        /* with (?J) one name may have several groups: the first that took part wins */
        if (m->ncaptures > 0 && pt_str_eq(m->captures[m->ncaptures - 1].name, c->name))
            continue;
        if (c->pos >= novec || ov[2 * c->pos] == PCRE2_UNSET)
            continue;
        size_t a = ov[2 * c->pos], b = ov[2 * c->pos + 1];
        if (b < a) /* \K in a lookbehind can do that */
            b = a;
        m->captures[m->ncaptures++] =
            (struct pt_capture){c->name, pt_str_make(path.ptr + a, b - a)};
    }
    return true;
}

/* Regexes in declaration order, only reached when the trie found no full match. */
static void match_regex(struct mstate *s)
{
    const struct pt_router *r = s->r;
    struct pt_str path = pt_str_make(s->path, s->len);
    for (uint32_t i = 0; i < r->nregex; i++) {
        const struct rt_pat *p = &r->pats[r->regex[i]];
        const struct rt_route *rt = &r->routes[p->route];
        enum rt_check c = pt__router_check(rt, s->req, s->method, NULL);
        if (c == RT_CHECK_OK) {
            if (pt__router_regex(r, p, path, s->m)) {
                s->best = r->regex[i];
                s->best_rank = p->rank;
                return;
            }
        } else if (c == RT_CHECK_METHOD && pt__router_regex(r, p, path, NULL)) {
            s->method_only = true;
            pt__router_allow_add(s->m, rt);
        }
    }
}

void pt_router_match(const struct pt_router *r, const struct pt_router_request *req,
                     struct pt_router_match *m)
{
    struct mstate s = {r,
                       req,
                       req->path.ptr,
                       req->path.len,
                       pt_method_from_str(req->method),
                       RT_NONE,
                       UINT32_MAX,
                       false,
                       m};
    m->data = NULL;
    m->route = SIZE_MAX;
    m->status = 404;
    m->allow_mask = 0;
    m->allow_other = m->_allow_buf;
    m->nallow_other = 0;
    m->ncaptures = 0;
    if (s.len > 0 && s.path[0] == '/')
        visit(&s, 0, 0);
    if (s.best == RT_NONE) {
        match_regex(&s);
    } else {
        pt__router_trie_caps(&r->pats[s.best], req->path, m);
    }
    if (s.best != RT_NONE) {
        const struct rt_pat *p = &r->pats[s.best];
        m->data = r->routes[p->route].data;
        m->route = p->route;
        m->status = 200;
        m->allow_mask = 0;
        m->nallow_other = 0;
    } else if (s.method_only) {
        m->status = 405;
    }
}
