/*
 * Finding routes that can never match (shadowed), for `portico check`, the
 * build-time warnings and GET /routes/explain.
 *
 * Conservative by construction: a pattern of route B counts as shadowed
 * only when an earlier route A has a pattern of exactly the same shape
 * (same kind, same static segments, parameters in the same places, names
 * aside; or the same regex text), so that A's pattern matches exactly the
 * paths B's does and wins every tie; and when every request B's
 * constraints accept, A's accept too (A's methods and hosts a superset of
 * B's, A's headers a subset of B's).  B is shadowed when all its patterns
 * are.  More general patterns (A "/a/ *" over B "/a/{x}") never shadow more
 * specific ones: the more specific one wins.  Regexes are not analysed
 * beyond equal text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "router/router-int.h"

/* Does host list a accept every host that list b accepts?  (An empty list accepts all.) */
static bool hosts_cover(const struct rt_route *a, const struct rt_route *b)
{
    if (a->nhosts == 0)
        return true;
    if (b->nhosts == 0)
        return false;
    for (uint32_t i = 0; i < b->nhosts; i++) {
        const struct rt_host *hb = &b->hosts[i];
        bool covered = false;
        for (uint32_t k = 0; k < a->nhosts && !covered; k++) {
            const struct rt_host *ha = &a->hosts[k];
            if (!ha->wildcard) {
                covered =
                    !hb->wildcard && ha->len == hb->len && !memcmp(ha->name, hb->name, ha->len);
                continue;
            }
            /* ".example.com" covers "x.example.com" and ".x.example.com" (= "*.x.example.com"),
             * and ".example.com" itself when b is a wildcard too */
            if (hb->len < ha->len || (!hb->wildcard && hb->len == ha->len))
                continue;
            covered = memcmp(hb->name + hb->len - ha->len, ha->name, ha->len) == 0;
        }
        if (!covered)
            return false;
    }
    return true;
}

static bool methods_cover(const struct rt_route *a, const struct rt_route *b)
{
    if (a->any_method)
        return true;
    if (b->any_method || (b->method_mask & ~a->method_mask) != 0)
        return false;
    for (uint32_t i = 0; i < b->nother; i++) {
        bool found = false;
        for (uint32_t k = 0; k < a->nother; k++)
            found |= a->other[k] == b->other[i]; /* interned */
        if (!found)
            return false;
    }
    return true;
}

/* Every header a requires, b requires too (so a request b accepts satisfies a). */
static bool headers_cover(const struct rt_route *a, const struct rt_route *b)
{
    for (uint32_t i = 0; i < a->nheaders; i++) {
        bool found = false;
        for (uint32_t k = 0; k < b->nheaders && !found; k++)
            found = pt_str_case_eq(a->headers[i].name, b->headers[k].name) &&
                    pt_str_eq(a->headers[i].value, b->headers[k].value);
        if (!found)
            return false;
    }
    return true;
}

/* Whenever route b's constraints hold, route a's hold too. */
static bool constraints_cover(const struct rt_route *a, const struct rt_route *b)
{
    return methods_cover(a, b) && hosts_cover(a, b) && headers_cover(a, b);
}

struct shape {
    const char *key; /* the pattern with capture names erased */
    uint32_t route, pat;
};

static int shape_cmp(const void *va, const void *vb)
{
    const struct shape *a = va, *b = vb;
    int c = strcmp(a->key, b->key);
    if (c != 0)
        return c;
    if (a->route != b->route)
        return a->route < b->route ? -1 : 1;
    return a->pat < b->pat ? -1 : a->pat > b->pat;
}

/*
 * E/a/b, P/a/{}, W/a/{} (a wildcard after "/a/{}/"), R^/x$: equal keys match
 * exactly the same paths.
 */
static const char *shape_key(struct pt_arena *a, const struct rt_pat *p)
{
    static const char kinds[] = "EPWR";
    if (p->kind == RT_REGEX)
        return pt_arena_printf(a, "R%s", p->text);
    size_t len = 2;
    for (uint32_t i = 0; i < p->nsegs; i++)
        len += 1 + (p->segs[i].key ? p->segs[i].len : 2);
    len += p->kind == RT_PREFIX ? 2 : 0;
    char *k = pt_arena_alloc(a, len + 1), *w = k;
    if (k == NULL)
        return NULL;
    *w++ = kinds[p->kind];
    for (uint32_t i = 0; i < p->nsegs; i++) {
        *w++ = '/';
        if (p->segs[i].key != NULL) {
            memcpy(w, p->segs[i].key, p->segs[i].len);
            w += p->segs[i].len;
        } else {
            *w++ = '{';
            *w++ = '}';
        }
    }
    if (p->kind == RT_PREFIX) {
        *w++ = '/';
        *w++ = '*';
    }
    *w = '\0';
    return k;
}

/* Earlier routes that may shadow one pattern are looked at up to this many (conservative). */
#define SHADOW_SCAN_MAX 256

static void report_shadowed(struct pt_router *r, uint32_t ri, const uint32_t *by,
                            pt_router_diag_fn diag, void *ctx)
{
    const struct rt_route *rt = &r->routes[ri];
    char who[512], msg[1024];
    size_t nwho = 0, len = 0;
    who[0] = '\0';
    for (uint32_t i = 0; i < rt->npats; i++) {
        bool seen = false;
        for (uint32_t k = 0; k < i; k++)
            seen |= by[rt->pat_first + k] == by[rt->pat_first + i];
        if (seen)
            continue;
        if (nwho < 3 && len < sizeof(who)) {
            int n = snprintf(who + len, sizeof(who) - len, "%s\"%.100s\"", nwho > 0 ? ", " : "",
                             r->routes[by[rt->pat_first + i]].name);
            len += n > 0 ? (size_t)n : 0;
        }
        nwho++;
    }
    if (nwho > 3 && len < sizeof(who))
        snprintf(who + len, sizeof(who) - len, ", ...");
    snprintf(msg, sizeof(msg), "route \"%.200s\" can never match: route%s %s always win%s",
             rt->name, nwho > 1 ? "s" : "", who, nwho > 1 ? "" : "s");
    r->shadow_why[ri] = pt_arena_strndup(&r->arena, msg, strlen(msg)); /* NULL: no reason kept */
    if (diag != NULL)
        diag(ctx, false, ri, -1, msg);
}

bool pt__router_shadow(struct pt_router *r, pt_router_diag_fn diag, void *ctx)
{
    struct pt_arena tmp;
    bool ok = false;
    pt_arena_init(&tmp);
    struct shape *shapes = pt_malloc((r->npats + 1) * sizeof(*shapes));
    uint32_t *by = pt_malloc((r->npats + 1) * sizeof(*by)); /* shadowing route per pattern */
    r->shadowed = pt_calloc(r->nroutes + 1, sizeof(*r->shadowed));
    r->shadow_why = pt_calloc(r->nroutes + 1, sizeof(*r->shadow_why));
    if (shapes == NULL || by == NULL || r->shadowed == NULL || r->shadow_why == NULL)
        goto out;
    for (size_t i = 0; i < r->npats; i++) {
        shapes[i] = (struct shape){shape_key(&tmp, &r->pats[i]), r->pats[i].route, (uint32_t)i};
        if (shapes[i].key == NULL)
            goto out;
        by[i] = RT_NONE;
    }
    qsort(shapes, r->npats, sizeof(*shapes), shape_cmp);
    for (size_t i = 0; i < r->npats; i++) {
        const struct rt_route *rb = &r->routes[shapes[i].route];
        /* equal shapes, earlier routes: the earlier one wins every tie */
        for (size_t k = i, n = 0; k-- > 0 && n < SHADOW_SCAN_MAX; n++) {
            if (strcmp(shapes[k].key, shapes[i].key) != 0)
                break;
            if (shapes[k].route != shapes[i].route &&
                constraints_cover(&r->routes[shapes[k].route], rb))
                by[shapes[i].pat] = shapes[k].route; /* keep the earliest */
        }
    }
    for (uint32_t ri = 0; ri < r->nroutes; ri++) {
        const struct rt_route *rt = &r->routes[ri];
        bool all = rt->npats > 0;
        for (uint32_t i = 0; i < rt->npats; i++)
            all &= by[rt->pat_first + i] != RT_NONE;
        if (all) {
            r->shadowed[ri] = true;
            report_shadowed(r, ri, by, diag, ctx);
        }
    }
    ok = true;
out:
    free(shapes);
    free(by);
    pt_arena_destroy(&tmp);
    return ok;
}
