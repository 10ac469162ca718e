/*
 * Compiling routes into a router.
 *
 * Each route's constraints are compiled here (methods into a bit mask plus
 * interned names, hosts lower-cased, headers copied with their explain
 * messages) and its path patterns parsed (pattern.c); then the patterns are
 * ranked and the trie built (trie.c), and shadowed routes are reported as
 * warnings (shadow.c).  Everything the router owns that is not a flat array
 * lives in its arena.
 *
 * Problems are reported through the diag callback and the build goes on, so
 * that one run reports every bad pattern; only then does it fail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "router/router-int.h"

struct bctx {
    struct pt_router *r;
    pt_router_diag_fn diag;
    void *ctx;
    size_t nerrors;
    bool oom;
    const char **interned; /* distinct non-standard method tokens */
    size_t ninterned, capinterned;
};

/* A growable byte string for messages; oom is sticky. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (s->oom || n < 0)
        return;
    char *np = rt_grow(s->p, &s->cap, s->len + (size_t)n + 1, 1);
    if (np == NULL) {
        s->oom = true;
        return;
    }
    s->p = np;
    va_start(ap, fmt);
    vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

/* Move the string into the router's arena; NULL (and oom) on failure. */
static const char *sb_finish(struct bctx *b, struct sbuf *s)
{
    const char *out = NULL;
    if (!s->oom && s->p != NULL)
        out = pt_arena_strndup(&b->r->arena, s->p, s->len);
    if (out == NULL)
        b->oom = true;
    free(s->p);
    return out;
}

__attribute__((format(printf, 5, 6))) static void
report(struct bctx *b, bool is_error, size_t route, ssize_t path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (is_error)
        b->nerrors++;
    if (b->diag != NULL)
        b->diag(b->ctx, is_error, route, path, msg);
}

/* RFC 9110 tchar: the characters of a method token or a header name. */
static bool is_tchar(unsigned char c)
{
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return true;
    if (c >= '0' && c <= '9')
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* ---- route constraints ------------------------------------------------ */

static const char *intern_method(struct bctx *b, const char *m)
{
    for (size_t i = 0; i < b->ninterned; i++)
        if (strcmp(b->interned[i], m) == 0)
            return b->interned[i];
    const char **np = rt_grow(b->interned, &b->capinterned, b->ninterned + 1, sizeof(*np));
    char *copy = pt_arena_strndup(&b->r->arena, m, strlen(m));
    if (np == NULL || copy == NULL) {
        b->oom = true;
        if (np != NULL)
            b->interned = np;
        return NULL;
    }
    b->interned = np;
    b->interned[b->ninterned++] = copy;
    return copy;
}

static void compile_methods(struct bctx *b, size_t ri, const struct pt_router_route *in,
                            struct rt_route *rt)
{
    struct sbuf msg = {0};
    rt->any_method = in->nmethods == 0;
    if (!rt->any_method) {
        rt->other = pt_arena_alloc(&b->r->arena, in->nmethods * sizeof(*rt->other));
        if (rt->other == NULL)
            b->oom = true;
    }
    sb_printf(&msg, "method must be one of:");
    for (size_t i = 0; i < in->nmethods && !b->oom; i++) {
        const char *m = in->methods[i];
        if (!is_token(m)) {
            report(b, true, ri, -1, "invalid method \"%.100s\"", m == NULL ? "(null)" : m);
            continue;
        }
        sb_printf(&msg, "%s %s", i > 0 ? "," : "", m);
        enum pt_method e = pt_method_from_str(pt_str_cstr(m));
        if (e != PT_METHOD_OTHER) {
            rt->method_mask |= PT_METHOD_BIT(e);
            continue;
        }
        const char *s = intern_method(b, m);
        bool dup = false;
        for (uint32_t k = 0; k < rt->nother; k++)
            dup |= rt->other[k] == s;
        if (s != NULL && !dup)
            rt->other[rt->nother++] = s;
    }
    rt->method_msg = sb_finish(b, &msg);
}

static void compile_hosts(struct bctx *b, size_t ri, const struct pt_router_route *in,
                          struct rt_route *rt)
{
    struct sbuf msg = {0};
    sb_printf(&msg, "host must be one of:");
    if (in->nhosts > 0 &&
        (rt->hosts = pt_arena_alloc(&b->r->arena, in->nhosts * sizeof(*rt->hosts))) == NULL)
        b->oom = true;
    for (size_t i = 0; i < in->nhosts && !b->oom; i++) {
        const char *h = in->hosts[i] == NULL ? "" : in->hosts[i];
        size_t len = strlen(h);
        bool wild = len >= 2 && h[0] == '*' && h[1] == '.';
        const char *name = wild ? h + 1 : h;
        size_t nlen = wild ? len - 1 : len;
        const char *problem = NULL;
        if (len == 0 || (wild && nlen < 2))
            problem = "empty host";
        else if (memchr(name, '*', nlen) != NULL)
            problem = "a wildcard host must look like \"*.example.com\"";
        else if (h[0] != '[' && memchr(name, ':', nlen) != NULL)
            problem = "a host must not include a port (the port is not matched)";
        for (size_t k = 0; k < nlen && problem == NULL; k++)
            if ((unsigned char)name[k] <= 0x20 || (unsigned char)name[k] >= 0x7f || name[k] == '/')
                problem = "invalid character in host";
        if (problem != NULL) {
            report(b, true, ri, -1, "host \"%.200s\": %s", h, problem);
            continue;
        }
        char *lower = pt_arena_strndup(&b->r->arena, name, nlen);
        if (lower == NULL) {
            b->oom = true;
            break;
        }
        for (size_t k = 0; k < nlen; k++)
            lower[k] = pt_tolower_ascii(lower[k]);
        rt->hosts[rt->nhosts++] = (struct rt_host){lower, (uint32_t)nlen, wild};
        sb_printf(&msg, "%s %s", i > 0 ? "," : "", h);
    }
    rt->host_msg = sb_finish(b, &msg);
}

static void compile_headers(struct bctx *b, size_t ri, const struct pt_router_route *in,
                            struct rt_route *rt)
{
    struct pt_arena *a = &b->r->arena;
    if (in->nheaders > 0 &&
        (rt->headers = pt_arena_alloc(a, in->nheaders * sizeof(*rt->headers))) == NULL) {
        b->oom = true;
        return;
    }
    for (size_t i = 0; i < in->nheaders; i++) {
        const struct pt_router_header_match *h = &in->headers[i];
        if (!is_token(h->name) || h->value == NULL) {
            report(b, true, ri, -1, "header match \"%.100s\": %s", h->name ? h->name : "(null)",
                   h->value == NULL ? "no value" : "invalid header name");
            continue;
        }
        struct rt_header *o = &rt->headers[rt->nheaders];
        o->name = pt_arena_strdup_str(a, pt_str_cstr(h->name));
        o->value = pt_arena_strdup_str(a, pt_str_cstr(h->value));
        o->missing_msg = pt_arena_printf(a, "header %s is missing", h->name);
        o->differs_msg = pt_arena_printf(a, "header %s differs", h->name);
        if (o->name.ptr == NULL || o->value.ptr == NULL || o->missing_msg == NULL ||
            o->differs_msg == NULL) {
            b->oom = true;
            return;
        }
        rt->nheaders++;
    }
}

static void compile_route(struct bctx *b, size_t ri, const struct pt_router_route *in)
{
    struct pt_router *r = b->r;
    struct rt_route *rt = &r->routes[ri];
    char err[512];
    rt->data = in->data;
    rt->name = in->name != NULL ? pt_arena_strndup(&r->arena, in->name, strlen(in->name))
                                : pt_arena_printf(&r->arena, "#%zu", ri);
    if (rt->name == NULL) {
        b->oom = true;
        return;
    }
    rt->won_msg = pt_arena_printf(&r->arena, "route \"%s\" won", rt->name);
    if (rt->won_msg == NULL)
        b->oom = true;
    compile_methods(b, ri, in, rt);
    compile_hosts(b, ri, in, rt);
    compile_headers(b, ri, in, rt);
    if (in->npaths == 0)
        report(b, true, ri, -1, "route \"%s\" has no path pattern", rt->name);
    rt->pat_first = (uint32_t)r->npats;
    for (size_t i = 0; i < in->npaths && !b->oom; i++) {
        struct rt_pat *p = &r->pats[r->npats];
        memset(p, 0, sizeof(*p));
        p->route = (uint32_t)ri;
        p->index = (uint32_t)i;
        const char *text = in->paths[i];
        const char *problem = pt__router_parse_pattern(&r->arena, text, p, err, sizeof(err));
        if (problem != NULL) {
            if (strcmp(problem, "out of memory") == 0)
                b->oom = true;
            else
                report(b, true, ri, (ssize_t)i, "path pattern \"%.200s\": %s",
                       text == NULL ? "(null)" : text, problem);
            pcre2_code_free(p->re);
            continue;
        }
        r->npats++;
        rt->npats++;
    }
}

/* ---- build / free ------------------------------------------------------------ */

struct pt_router *pt_router_build(const struct pt_router_route *routes, size_t n,
                                  pt_router_diag_fn diag, void *ctx)
{
    struct bctx b = {.diag = diag, .ctx = ctx};
    size_t npaths = 0;
    for (size_t i = 0; i < n; i++)
        npaths += routes[i].npaths;
    if (n >= RT_NONE || npaths >= RT_NONE) {
        b.nerrors++;
        if (diag != NULL)
            diag(ctx, true, 0, -1, "too many routes");
        return NULL;
    }
    struct pt_router *r = pt_calloc(1, sizeof(*r));
    if (r == NULL)
        goto oom;
    b.r = r;
    pt_arena_init(&r->arena);
    r->routes = pt_calloc(n + 1, sizeof(*r->routes));
    r->pats = pt_calloc(npaths + 1, sizeof(*r->pats));
    if (r->routes == NULL || r->pats == NULL)
        goto oom;
    r->nroutes = n;
    for (size_t i = 0; i < n && !b.oom; i++)
        compile_route(&b, i, &routes[i]);
    if (b.oom)
        goto oom;
    if (b.nerrors > 0)
        goto fail;
    if (!pt__router_rank(r) || !pt__router_trie(r))
        goto oom;
    r->mctx = pcre2_match_context_create(NULL);
    if (r->mctx == NULL)
        goto oom;
    pcre2_set_match_limit(r->mctx, RT_REGEX_MATCH_LIMIT);
    if (!pt__router_shadow(r, diag, ctx))
        goto oom;
    free(b.interned);
    return r;
oom:
    if (diag != NULL)
        diag(ctx, true, 0, -1, "out of memory while building the router");
fail:
    free(b.interned);
    pt_router_free(r);
    return NULL;
}

void pt_router_free(struct pt_router *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->npats; i++)
        pcre2_code_free(r->pats[i].re);
    pcre2_match_context_free(r->mctx);
    free(r->routes);
    free(r->pats);
    free(r->nodes);
    free(r->edges);
    free(r->htab);
    free(r->lists);
    free(r->keys);
    free(r->regex);
    free(r->shadowed);
    free(r->shadow_why);
    pt_arena_destroy(&r->arena);
    free(r);
}

size_t pt_router_count(const struct pt_router *r)
{
    return r->nroutes;
}

const char *pt_router_shadow_reason(const struct pt_router *r, size_t route)
{
    if (route >= r->nroutes || r->shadowed == NULL || !r->shadowed[route])
        return NULL;
    return r->shadow_why[route] != NULL ? r->shadow_why[route] : "can never match";
}

size_t pt_router_shadowed(const struct pt_router *r, size_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nroutes; i++)
        if (r->shadowed[i])
            out[n++] = i;
    return n;
}
