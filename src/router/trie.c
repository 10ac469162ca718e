/*
 * Ranking the patterns and building the segment trie.
 *
 * Every pattern gets a global rank, its position in priority order, so that
 * the matcher only ever compares two integers.  The trie is built from the
 * segments: static children are found by a scan on small nodes and through
 * one hash table keyed by (parent node, segment) on large ones; each node
 * keeps at most one {param} child and two rank-sorted candidate lists
 * (patterns that end there, and prefix patterns whose wildcard starts
 * there), plus the best rank found anywhere below it.  Everything lives in
 * a few flat arrays indexed by uint32_t.
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "router/router-int.h"

struct rank_key {
    uint8_t kind, k1, k2, k3;
    uint32_t route, index, id;
};

static int rank_cmp(const void *va, const void *vb)
{
    const struct rank_key *a = va, *b = vb;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->k1 != b->k1) /* more specific (larger) first */
        return a->k1 > b->k1 ? -1 : 1;
    if (a->k2 != b->k2)
        return a->k2 > b->k2 ? -1 : 1;
    if (a->k3 != b->k3)
        return a->k3 > b->k3 ? -1 : 1;
    if (a->route != b->route)
        return a->route < b->route ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

bool pt__router_rank(struct pt_router *r)
{
    struct rank_key *keys = pt_malloc((r->npats + 1) * sizeof(*keys));
    if (keys == NULL)
        return false;
    for (size_t i = 0; i < r->npats; i++) {
        const struct rt_pat *p = &r->pats[i];
        struct rank_key *k = &keys[i];
        *k = (struct rank_key){p->kind, 0, 0, 0, p->route, p->index, (uint32_t)i};
        if (p->kind == RT_PARAM) {
            k->k1 = p->nstatic;
        } else if (p->kind == RT_PREFIX) {
            k->k1 = p->nlead;
            k->k2 = p->nstatic;
            k->k3 = p->nsegs;
        }
    }
    qsort(keys, r->npats, sizeof(*keys), rank_cmp);
    for (size_t i = 0; i < r->npats; i++)
        r->pats[keys[i].id].rank = (uint32_t)i;
    free(keys);
    return true;
}

struct tbuild {
    size_t capnodes, capedges, caplists;
    uint32_t *parent; /* per node */
    size_t capparent;
};

static uint32_t new_node(struct pt_router *r, struct tbuild *t, uint32_t parent)
{
    struct rt_node *nn = rt_grow(r->nodes, &t->capnodes, r->nnodes + 1, sizeof(*nn));
    if (nn == NULL)
        return RT_NONE;
    r->nodes = nn;
    uint32_t *np = rt_grow(t->parent, &t->capparent, r->nnodes + 1, sizeof(*np));
    if (np == NULL)
        return RT_NONE;
    t->parent = np;
    t->parent[r->nnodes] = parent;
    r->nodes[r->nnodes] = (struct rt_node){0, 0, RT_NONE, 0, 0, 0, 0, UINT32_MAX};
    return r->nnodes++;
}

static bool htab_resize(struct pt_router *r, size_t need)
{
    size_t size = 16;
    while (size < need * 2)
        size *= 2;
    uint32_t *h = pt_malloc(size * sizeof(*h));
    if (h == NULL)
        return false;
    memset(h, 0xff, size * sizeof(*h));
    free(r->htab);
    r->htab = h;
    r->hmask = (uint32_t)(size - 1);
    for (uint32_t i = 0; i < r->nedges; i++) {
        uint32_t k = r->edges[i].hash & r->hmask;
        while (h[k] != RT_NONE)
            k = (k + 1) & r->hmask;
        h[k] = i;
    }
    return true;
}

/* Find or create the static child of node for key. */
static uint32_t static_child(struct pt_router *r, struct tbuild *t, uint32_t node,
                             const struct rt_seg *s)
{
    uint32_t h = rt_edge_hash(node, s->key, s->len);
    uint32_t k = h & r->hmask;
    for (; r->htab[k] != RT_NONE; k = (k + 1) & r->hmask) {
        const struct rt_edge *e = &r->edges[r->htab[k]];
        if (e->hash == h && e->parent == node && e->len == s->len &&
            memcmp(e->key, s->key, s->len) == 0)
            return e->child;
    }
    uint32_t child = new_node(r, t, node);
    struct rt_edge *ne = rt_grow(r->edges, &t->capedges, r->nedges + 1, sizeof(*ne));
    if (child == RT_NONE || ne == NULL)
        return RT_NONE;
    r->edges = ne;
    r->edges[r->nedges] = (struct rt_edge){node, child, h, s->len, s->key};
    r->htab[k] = r->nedges++;
    if (r->nedges * 2 > r->hmask && !htab_resize(r, r->nedges))
        return RT_NONE;
    return child;
}

struct endpoint {
    uint32_t node;
    uint32_t wild;
    uint32_t rank;
    uint32_t pat;
};

static int endpoint_cmp(const void *va, const void *vb)
{
    const struct endpoint *a = va, *b = vb;
    if (a->node != b->node)
        return a->node < b->node ? -1 : 1;
    if (a->wild != b->wild)
        return a->wild < b->wild ? -1 : 1;
    return a->rank < b->rank ? -1 : a->rank > b->rank;
}

static int edge_cmp(const void *va, const void *vb)
{
    const struct rt_edge *a = va, *b = vb;
    return a->parent < b->parent ? -1 : a->parent > b->parent;
}

/* Lay the term/wild lists out per node and compute each subtree's best rank. */
static bool finish_nodes(struct pt_router *r, struct tbuild *t, struct endpoint *ends, size_t nends)
{
    qsort(ends, nends, sizeof(*ends), endpoint_cmp);
    r->lists = pt_malloc((nends + 1) * sizeof(*r->lists));
    if (r->lists == NULL)
        return false;
    for (size_t i = 0; i < nends; i++) {
        struct rt_node *n = &r->nodes[ends[i].node];
        r->lists[i] = (struct rt_cand){ends[i].rank, r->pats[ends[i].pat].route, ends[i].pat};
        if (ends[i].wild) {
            if (n->nwild++ == 0)
                n->wild_first = (uint32_t)i;
        } else if (n->nterm++ == 0) {
            n->term_first = (uint32_t)i;
        }
        if (ends[i].rank < n->min_rank)
            n->min_rank = ends[i].rank;
    }
    r->nlists = (uint32_t)nends;
    /* Children always have larger indexes than their parent. */
    for (uint32_t i = r->nnodes; i-- > 1;) {
        struct rt_node *p = &r->nodes[t->parent[i]];
        if (r->nodes[i].min_rank < p->min_rank)
            p->min_rank = r->nodes[i].min_rank;
    }
    /* Group the edges by parent, then index them again. */
    if (r->nedges > 0)
        qsort(r->edges, r->nedges, sizeof(*r->edges), edge_cmp);
    size_t keylen = 0;
    for (uint32_t i = 0; i < r->nedges; i++) {
        struct rt_node *n = &r->nodes[r->edges[i].parent];
        if (n->nedges++ == 0)
            n->edge_first = i;
        keylen += r->edges[i].len;
    }
    /* Copy the keys next to each other so that scanning a node stays in a few cache lines. */
    if ((r->keys = pt_malloc(keylen + 1)) == NULL)
        return false;
    for (uint32_t i = 0, off = 0; i < r->nedges; i++) {
        memcpy(r->keys + off, r->edges[i].key, r->edges[i].len);
        r->edges[i].key = r->keys + off;
        off += r->edges[i].len;
    }
    return htab_resize(r, r->nedges);
}

bool pt__router_trie(struct pt_router *r)
{
    struct tbuild t = {0};
    bool ok = false;
    struct endpoint *ends = pt_malloc((r->npats + 1) * sizeof(*ends));
    size_t nends = 0, nregex = 0;
    r->regex = pt_malloc((r->npats + 1) * sizeof(*r->regex));
    if (ends == NULL || r->regex == NULL || new_node(r, &t, RT_NONE) == RT_NONE ||
        !htab_resize(r, 8))
        goto out;
    for (size_t i = 0; i < r->npats; i++) {
        const struct rt_pat *p = &r->pats[i];
        if (p->kind == RT_REGEX) {
            r->regex[nregex++] = (uint32_t)i;
            if (p->pairs > r->max_pairs)
                r->max_pairs = p->pairs;
            continue;
        }
        uint32_t node = 0;
        for (uint32_t k = 0; k < p->nsegs && node != RT_NONE; k++) {
            if (p->segs[k].key != NULL) {
                node = static_child(r, &t, node, &p->segs[k]);
            } else if (r->nodes[node].param != RT_NONE) {
                node = r->nodes[node].param;
            } else {
                uint32_t c = new_node(r, &t, node);
                if (c != RT_NONE)
                    r->nodes[node].param = c;
                node = c;
            }
        }
        if (node == RT_NONE)
            goto out;
        ends[nends++] = (struct endpoint){node, p->kind == RT_PREFIX, p->rank, (uint32_t)i};
    }
    /* Regexes compete in declaration order, which is their rank order. */
    for (size_t i = 1; i < nregex; i++)
        for (size_t k = i; k > 0 && r->pats[r->regex[k]].rank < r->pats[r->regex[k - 1]].rank;
             k--) {
            uint32_t tmp = r->regex[k];
            r->regex[k] = r->regex[k - 1];
            r->regex[k - 1] = tmp;
        }
    r->nregex = (uint32_t)nregex;
    ok = finish_nodes(r, &t, ends, nends);
out:
    free(ends);
    free(t.parent);
    return ok;
}
