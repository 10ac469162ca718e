/*
 * Compiling routes into a router.
 *
 * Every path pattern is parsed into a struct rt_pat: regexes are compiled
 * (and JIT-compiled when the platform allows), the others are normalised
 * like request paths and split into segments.  Every pattern then gets a
 * global rank, its position in priority order, so that the matcher only
 * ever compares two integers.  The trie is built from the segments: static
 * children are found by a scan on small nodes and through one hash table
 * keyed by (parent node, segment) on large ones; each node keeps at most one
 * {param} child and two rank-sorted pattern lists (patterns that end there,
 * and prefix patterns whose wildcard starts there).  Finally routes that can
 * never win are detected and reported as warnings.
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
#include "router/path.h"
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

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
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

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (s->oom || n < 0)
        return;
    char *np = grow(s->p, &s->cap, s->len + (size_t)n + 1, 1);
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

static bool is_capture_char(unsigned char c)
{
    return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* ---- path patterns ---------------------------------------------------- */

/*
 * Parse one "{...}" segment (s[0] == '{') into p->caps.  last says whether
 * it is the final segment.  Returns NULL or the problem.
 */
static const char *parse_capture(struct pt_arena *a, const char *s, size_t len, bool last,
                                 struct rt_pat *p, struct rt_cap *caps, bool *rest, char *err,
                                 size_t errlen)
{
    if (s[len - 1] != '}') {
        if (memchr(s, '}', len) != NULL)
            return "mixing static text and a capture in one segment is not supported";
        return "'{' without a matching '}'";
    }
    const char *name = s + 1;
    size_t nlen = len - 2;
    *rest = nlen > 0 && name[nlen - 1] == '*';
    if (*rest)
        nlen--;
    if (nlen == 0)
        return "empty capture name";
    for (size_t i = 0; i < nlen; i++) {
        if (!is_capture_char((unsigned char)name[i])) {
            snprintf(err, errlen,
                     "invalid capture name \"%.*s\" (letters, digits, '_' and '-' only)", (int)nlen,
                     name);
            return err;
        }
    }
    if (*rest && !last) {
        snprintf(err, errlen, "{%.*s*} must be the last segment", (int)nlen, name);
        return err;
    }
    for (uint32_t i = 0; i < p->ncaps; i++) {
        if (caps[i].name.len == nlen && memcmp(caps[i].name.ptr, name, nlen) == 0) {
            snprintf(err, errlen, "duplicate capture name \"%.*s\"", (int)nlen, name);
            return err;
        }
    }
    if (p->ncaps == PT_ROUTER_MAX_CAPTURES)
        return "more than 16 captures";
    char *copy = pt_arena_strndup(a, name, nlen);
    if (copy == NULL)
        return "out of memory";
    caps[p->ncaps++] = (struct rt_cap){pt_str_make(copy, nlen), 0, *rest};
    return NULL;
}

static const char *static_segment_problem(const char *s, size_t len)
{
    bool open = memchr(s, '{', len) != NULL, close = memchr(s, '}', len) != NULL;
    if (open && close)
        return "mixing static text and a capture in one segment is not supported";
    if (open)
        return "'{' without a matching '}'";
    if (close)
        return "'}' without a matching '{'";
    if (memchr(s, '*', len) != NULL)
        return "'*' is only allowed as a whole last segment (\"/a/*\")";
    return NULL;
}

/*
 * Parse a non-regex pattern text[0..tlen) into p (segments and captures in
 * arena a).  Returns NULL or the problem (static text, or written to err).
 */
static const char *parse_trie(struct pt_arena *a, const char *text, size_t tlen, struct rt_pat *p,
                              char *err, size_t errlen)
{
    char *norm = pt_arena_alloc(a, tlen + 1);
    if (norm == NULL)
        return "out of memory";
    ssize_t n = pt_path_normalize(text, tlen, norm);
    if (n == PT_PATH_INVALID)
        return "not a valid path (a bad %-escape, or a byte outside 0x21-0x7E)";
    if (n == PT_PATH_ESCAPES_ROOT)
        return "\"..\" climbs above the root";
    norm[n] = '\0';
    p->text = norm;

    size_t nseg = 0;
    for (ssize_t i = 0; i < n; i++)
        nseg += norm[i] == '/';
    if (nseg > PT_ROUTER_MAX_SEGMENTS)
        return "too many segments (at most 64)";
    struct rt_seg *segs = pt_arena_alloc(a, nseg * sizeof(*segs));
    struct rt_cap caps[PT_ROUTER_MAX_CAPTURES];
    if (segs == NULL)
        return "out of memory";
    p->segs = segs;
    p->ncaps = 0;
    bool wild = false, param = false;
    const char *s = norm + 1, *end = norm + n;
    for (size_t k = 0; k < nseg; k++) {
        const char *e = memchr(s, '/', (size_t)(end - s));
        if (e == NULL)
            e = end;
        size_t len = (size_t)(e - s);
        bool last = e == end;
        const char *problem = NULL;
        if (len == 1 && s[0] == '*') {
            if (!last)
                return "'*' must be the last segment";
            wild = true;
        } else if (len > 0 && s[0] == '{') {
            bool rest;
            problem = parse_capture(a, s, len, last, p, caps, &rest, err, errlen);
            if (problem != NULL)
                return problem;
            if (rest) {
                caps[p->ncaps - 1].pos = p->nsegs;
                wild = true;
            } else {
                caps[p->ncaps - 1].pos = p->nsegs;
                segs[p->nsegs++] = (struct rt_seg){NULL, 0};
                param = true;
            }
        } else {
            if ((problem = static_segment_problem(s, len)) != NULL)
                return problem;
            segs[p->nsegs++] = (struct rt_seg){s, (uint32_t)len};
            p->nstatic++;
            if (!param)
                p->nlead++;
        }
        s = e + 1;
    }
    p->kind = wild ? RT_PREFIX : param ? RT_PARAM : RT_EXACT;
    if (p->ncaps > 0) {
        p->caps = pt_arena_alloc(a, p->ncaps * sizeof(*caps));
        if (p->caps == NULL)
            return "out of memory";
        memcpy(p->caps, caps, p->ncaps * sizeof(*caps));
    }
    return NULL;
}

/* Compile a regex pattern (text after "~" and blanks). */
static const char *parse_regex(struct pt_arena *a, const char *re, size_t len, struct rt_pat *p,
                               char *err, size_t errlen)
{
    if (len == 0)
        return "empty regex after '~'";
    char *src = pt_arena_strndup(a, re, len);
    if (src == NULL)
        return "out of memory";
    p->text = src;
    p->kind = RT_REGEX;
    int code;
    PCRE2_SIZE off;
    p->re = pcre2_compile((PCRE2_SPTR)src, len, 0, &code, &off, NULL);
    if (p->re == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        snprintf(err, errlen, "bad regex: %s at offset %zu", (char *)msg, (size_t)off);
        return err;
    }
    /* Without JIT support the interpreter runs the same pattern: not an error. */
    (void)pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    uint32_t ngroups = 0, nnames = 0, entsize = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(p->re, PCRE2_INFO_CAPTURECOUNT, &ngroups);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMECOUNT, &nnames);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMEENTRYSIZE, &entsize);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMETABLE, &table);
    p->pairs = ngroups + 1;
    if (nnames > PT_ROUTER_MAX_CAPTURES)
        return "more than 16 named groups";
    if (nnames > 0) {
        p->caps = pt_arena_alloc(a, nnames * sizeof(*p->caps));
        if (p->caps == NULL)
            return "out of memory";
    }
    for (uint32_t i = 0; i < nnames; i++) {
        PCRE2_SPTR ent = table + (size_t)i * entsize;
        const char *name = (const char *)ent + 2;
        size_t nlen = strlen(name);
        char *copy = pt_arena_strndup(a, name, nlen);
        if (copy == NULL)
            return "out of memory";
        p->caps[p->ncaps++] =
            (struct rt_cap){pt_str_make(copy, nlen), (uint32_t)ent[0] << 8 | ent[1], false};
    }
    return NULL;
}

/* Parse any pattern into p; on failure p->re may still need freeing. */
static const char *parse_pattern(struct pt_arena *a, const char *text, struct rt_pat *p, char *err,
                                 size_t errlen)
{
    if (text == NULL || (text[0] != '/' && text[0] != '~'))
        return "must start with '/' or '~'";
    if (text[0] == '~') {
        const char *re = text + 1;
        while (*re == ' ' || *re == '\t')
            re++;
        return parse_regex(a, re, strlen(re), p, err, errlen);
    }
    return parse_trie(a, text, strlen(text), p, err, errlen);
}

int pt_router_pattern_has_capture(const char *pattern, const char *name)
{
    struct pt_arena a;
    struct rt_pat p = {0};
    char err[256];
    int ret = -1;
    pt_arena_init(&a);
    if (parse_pattern(&a, pattern, &p, err, sizeof(err)) == NULL) {
        ret = 0;
        for (uint32_t i = 0; i < p.ncaps; i++)
            if (name != NULL && strcmp(p.caps[i].name.ptr, name) == 0)
                ret = 1;
    }
    pcre2_code_free(p.re);
    pt_arena_destroy(&a);
    return ret;
}

/* ---- route constraints ------------------------------------------------ */

static const char *intern_method(struct bctx *b, const char *m)
{
    for (size_t i = 0; i < b->ninterned; i++)
        if (strcmp(b->interned[i], m) == 0)
            return b->interned[i];
    const char **np = grow(b->interned, &b->capinterned, b->ninterned + 1, sizeof(*np));
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
        const char *problem = parse_pattern(&r->arena, text, p, err, sizeof(err));
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

/* ---- priority ----------------------------------------------------------- */

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

static bool assign_ranks(struct pt_router *r)
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

/* ---- the trie ------------------------------------------------------------ */

struct tbuild {
    size_t capnodes, capedges, caplists;
    uint32_t *parent; /* per node */
    size_t capparent;
};

static uint32_t new_node(struct pt_router *r, struct tbuild *t, uint32_t parent)
{
    struct rt_node *nn = grow(r->nodes, &t->capnodes, r->nnodes + 1, sizeof(*nn));
    if (nn == NULL)
        return RT_NONE;
    r->nodes = nn;
    uint32_t *np = grow(t->parent, &t->capparent, r->nnodes + 1, sizeof(*np));
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
    struct rt_edge *ne = grow(r->edges, &t->capedges, r->nedges + 1, sizeof(*ne));
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

static bool build_trie(struct pt_router *r)
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

/* ---- shadowing ------------------------------------------------------------ */

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

static void report_shadowed(struct bctx *b, uint32_t ri, const uint32_t *by)
{
    const struct pt_router *r = b->r;
    const struct rt_route *rt = &r->routes[ri];
    struct sbuf who = {0};
    size_t nwho = 0;
    for (uint32_t i = 0; i < rt->npats; i++) {
        bool seen = false;
        for (uint32_t k = 0; k < i; k++)
            seen |= by[rt->pat_first + k] == by[rt->pat_first + i];
        if (seen)
            continue;
        if (nwho < 3)
            sb_printf(&who, "%s\"%s\"", nwho > 0 ? ", " : "",
                      r->routes[by[rt->pat_first + i]].name);
        nwho++;
    }
    if (nwho > 3)
        sb_printf(&who, ", ...");
    report(b, false, ri, -1, "route \"%s\" can never match: route%s %s always win%s", rt->name,
           nwho > 1 ? "s" : "", who.oom || who.p == NULL ? "?" : who.p, nwho > 1 ? "" : "s");
    free(who.p);
}

static bool find_shadowed(struct bctx *b)
{
    struct pt_router *r = b->r;
    struct pt_arena tmp;
    bool ok = false;
    pt_arena_init(&tmp);
    struct shape *shapes = pt_malloc((r->npats + 1) * sizeof(*shapes));
    uint32_t *by = pt_malloc((r->npats + 1) * sizeof(*by)); /* shadowing route per pattern */
    r->shadowed = pt_calloc(r->nroutes + 1, sizeof(*r->shadowed));
    if (shapes == NULL || by == NULL || r->shadowed == NULL)
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
            report_shadowed(b, ri, by);
        }
    }
    ok = true;
out:
    free(shapes);
    free(by);
    pt_arena_destroy(&tmp);
    return ok;
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
    if (!assign_ranks(r) || !build_trie(r))
        goto oom;
    r->mctx = pcre2_match_context_create(NULL);
    if (r->mctx == NULL)
        goto oom;
    pcre2_set_match_limit(r->mctx, RT_REGEX_MATCH_LIMIT);
    if (!find_shadowed(&b))
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
    pt_arena_destroy(&r->arena);
    free(r);
}

size_t pt_router_count(const struct pt_router *r)
{
    return r->nroutes;
}

size_t pt_router_shadowed(const struct pt_router *r, size_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nroutes; i++)
        if (r->shadowed[i])
            out[n++] = i;
    return n;
}
