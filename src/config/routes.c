/*
 * `routes:` (docs/configuration.md): a list of routes, each a match block
 * (paths, methods, hosts, headers), a service, and what to do to the path
 * on the way upstream (strip_prefix or rewrite).  Compiled into struct
 * pt_route and handed to the router, whose problems are mapped back to the
 * line and column of the pattern they are about.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "http/h1.h"
#include "proxy/route.h"
#include "router/router.h"
#include "upstream/service.h"
#include "config/compile.h"
#include "plugins/plugin.h"
#include "config/snapshot.h"

/* What one route item holds besides struct pt_route, while the routes compile. */
struct route_build {
    struct pt_route *r;
    const struct pt_conf_node *node;      /* the route's map */
    const struct pt_conf_node *name_node; /* NULL when the name is the default */
    const struct pt_conf_node **path_nodes;
    const char **paths;
    size_t npaths;
    bool paths_ok; /* every pattern is a string: the route goes to the router */
    const char **methods;
    size_t nmethods;
    const char **hosts;
    size_t nhosts;
    struct pt_router_header_match *headers;
    size_t nheaders;
};

/* The keys of one route, as read by the table. */
struct route_fields {
    const char *name;
    const struct pt_conf_node *match, *service, *rewrite, *plugins, *aggregate;
    const char *strip_prefix;
    bool preserve_host;
    uint64_t max_body_bytes;
};

struct match_fields {
    const struct pt_conf_node *paths, *methods, *hosts, *headers;
};

static const struct pt_conf_key match_keys[] = {
    {.name = "paths",
     .type = PT_CONF_T_NODE,
     .offset = offsetof(struct match_fields, paths),
     .required = true},
    PT_CONF_NODE("methods", struct match_fields, methods),
    PT_CONF_NODE("hosts", struct match_fields, hosts),
    PT_CONF_NODE("headers", struct match_fields, headers),
    {0},
};

static const struct pt_conf_key route_keys[] = {
    PT_CONF_STRING("name", struct route_fields, name, NULL),
    {.name = "match",
     .type = PT_CONF_T_NODE,
     .offset = offsetof(struct route_fields, match),
     .required = true},
    PT_CONF_NODE("service", struct route_fields, service),
    PT_CONF_STRING("strip_prefix", struct route_fields, strip_prefix, NULL),
    PT_CONF_NODE("rewrite", struct route_fields, rewrite),
    PT_CONF_BOOL("preserve_host", struct route_fields, preserve_host, "false"),
    PT_CONF_SIZE("max_body_bytes", struct route_fields, max_body_bytes, 0, PT_CONF_NO_MAX, "0"),
    PT_CONF_NODE("plugins", struct route_fields, plugins),
    PT_CONF_NODE("aggregate", struct route_fields, aggregate),
    {0},
};

/*
 * A list of strings at n (null: none) into an arena array.  Items that are
 * not strings are reported; the function then returns -1 but still fills
 * what it could.
 */
static int string_list(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                       const char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (pt_conf_is_null(n))
        return 0;
    if (pt_conf_expect_seq(c, name, n) != 0)
        return -1;
    if (n->seq.n == 0)
        return 0;
    const char **list = pt_arena_calloc(c->a, n->seq.n * sizeof(*list));
    if (list == NULL) {
        pt_conf_error(c, n, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n->seq.n; i++) {
        if (pt_conf_get_string(c, name, n->seq.items[i], &list[i]) != 0) {
            list[i] = "";
            rc = -1;
        }
    }
    *out = list;
    *count = n->seq.n;
    return rc;
}

static void compile_paths(struct pt_conf_ctx *c, struct route_build *b,
                          const struct pt_conf_node *n)
{
    if (pt_conf_is_null(n) || (n->kind == PT_CONF_SEQ && n->seq.n == 0)) {
        pt_conf_error(c, n, "paths: at least one path is required");
        return;
    }
    if (string_list(c, "paths", n, &b->paths, &b->npaths) != 0 || b->npaths == 0)
        return;
    b->path_nodes = pt_arena_calloc(c->a, b->npaths * sizeof(*b->path_nodes));
    if (b->path_nodes == NULL) {
        pt_conf_error(c, n, "out of memory");
        return;
    }
    b->paths_ok = true;
    for (size_t i = 0; i < b->npaths; i++) {
        b->path_nodes[i] = n->seq.items[i];
        if (b->paths[i][0] == '\0') {
            pt_conf_error(c, n->seq.items[i], "paths: a path cannot be empty");
            b->paths_ok = false;
        }
    }
}

static void compile_methods(struct pt_conf_ctx *c, struct route_build *b,
                            const struct pt_conf_node *n)
{
    if (string_list(c, "methods", n, &b->methods, &b->nmethods) != 0)
        return;
    for (size_t i = 0; i < b->nmethods; i++) {
        const char *m = b->methods[i];
        const struct pt_conf_node *item = n->seq.items[i];
        if (!pt_h1_is_token_cstr(m)) {
            pt_conf_error(c, item, "methods: \"%.100s\" is not a valid method name", m);
            continue;
        }
        bool lower = false;
        for (const char *p = m; *p != '\0'; p++)
            lower = lower || (*p >= 'a' && *p <= 'z');
        if (lower) {
            char up[128];
            size_t k = 0;
            for (; m[k] != '\0' && k < sizeof(up) - 1; k++)
                up[k] = (m[k] >= 'a' && m[k] <= 'z') ? (char)(m[k] - 'a' + 'A') : m[k];
            up[k] = '\0';
            pt_conf_error(c, item,
                          "methods: \"%.100s\" must be upper case (methods are case-sensitive); "
                          "write \"%s\"",
                          m, up);
        }
    }
}

static void compile_hosts(struct pt_conf_ctx *c, struct route_build *b,
                          const struct pt_conf_node *n)
{
    if (string_list(c, "hosts", n, &b->hosts, &b->nhosts) != 0)
        return;
    for (size_t i = 0; i < b->nhosts; i++) {
        const char *h = b->hosts[i];
        bool ok = h[0] != '\0';
        for (const unsigned char *p = (const unsigned char *)h; *p != '\0'; p++)
            ok = ok && *p > 0x20 && *p != 0x7F && *p != '/' && *p != ':';
        if (!ok)
            pt_conf_error(c, n->seq.items[i],
                          "hosts: \"%.100s\" is not a host name (write it without scheme, port "
                          "or path, e.g. api.example.com or *.example.com)",
                          h);
    }
}

static void compile_headers(struct pt_conf_ctx *c, struct route_build *b,
                            const struct pt_conf_node *n)
{
    if (pt_conf_is_null(n))
        return;
    if (pt_conf_expect_map(c, "headers", n) != 0 || n->map.n == 0)
        return;
    b->headers = pt_arena_calloc(c->a, n->map.n * sizeof(*b->headers));
    if (b->headers == NULL) {
        pt_conf_error(c, n, "out of memory");
        return;
    }
    for (size_t i = 0; i < n->map.n; i++) {
        const struct pt_conf_pair *p = &n->map.pairs[i];
        struct pt_router_header_match *h = &b->headers[b->nheaders];
        h->name = p->key->scalar.raw;
        if (!pt_h1_is_token_cstr(h->name)) {
            pt_conf_error(c, p->key, "headers: \"%.100s\" is not a valid header name", h->name);
            continue;
        }
        if (pt_conf_is_null(p->value)) {
            pt_conf_error(c, p->value, "headers: %.100s: a value is required", h->name);
            continue;
        }
        if (pt_conf_get_string(c, "headers", p->value, &h->value) != 0)
            continue;
        b->nheaders++;
    }
}

static void compile_match(struct pt_conf_ctx *c, struct route_build *b,
                          const struct pt_conf_node *n, const char *where)
{
    struct match_fields m = {0};
    char sub[160];
    snprintf(sub, sizeof(sub), "%s.match", where);
    if (pt_conf_is_null(n) || n->kind != PT_CONF_MAP) {
        pt_conf_error(c, n, "match: expected a map with paths, got %s", pt_conf_kind_name(n));
        return;
    }
    pt_conf_apply(c, match_keys, n, &m, sub, NULL);
    if (m.paths != NULL)
        compile_paths(c, b, m.paths);
    compile_methods(c, b, m.methods);
    compile_hosts(c, b, m.hosts);
    compile_headers(c, b, m.headers);
}

/* --- strip_prefix, rewrite ------------------------------------------------ */

static void compile_strip_prefix(struct pt_conf_ctx *c, struct route_build *b,
                                 const struct pt_conf_node *n, const char *v)
{
    size_t len = strlen(v);
    if (v[0] != '/') {
        pt_conf_error(c, n, "strip_prefix: must start with '/'");
        return;
    }
    if (len > 1 && v[len - 1] == '/') {
        pt_conf_error(c, n, "strip_prefix: must not end with '/' (write \"%.*s\")", (int)(len - 1),
                      v);
        return;
    }
    b->r->strip_prefix = pt_str_make(v, len);
}

/* Capture names, as the router accepts them: letters, digits, '_' and '-'. */
static bool is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* Check that every path pattern of the route defines capture name (at v+off). */
static bool capture_defined(struct pt_conf_ctx *c, const struct route_build *b,
                            const struct pt_conf_node *n, size_t off, const char *name)
{
    bool ok = true;
    for (size_t i = 0; b->paths_ok && i < b->npaths; i++) {
        int has = pt_router_pattern_has_capture(b->paths[i], name);
        if (has == 0) {
            pt_conf_error_at(c, n, off, "rewrite: {%s} is not a capture of path \"%.100s\"", name,
                             b->paths[i]);
            ok = false;
        }
    }
    return ok;
}

static void compile_rewrite(struct pt_conf_ctx *c, struct route_build *b,
                            const struct pt_conf_node *n)
{
    const char *v;
    if (pt_conf_get_string(c, "rewrite", n, &v) != 0)
        return;
    if (v[0] != '/') {
        pt_conf_error(c, n, "rewrite: must start with '/'");
        return;
    }
    size_t len = strlen(v), nparts = 0;
    /* at most one part per '{' plus one literal between each: 2 * braces + 1 */
    size_t max = 1;
    for (size_t i = 0; i < len; i++)
        max += v[i] == '{' || v[i] == '}' ? 2 : 0;
    struct pt_rewrite_part *parts = pt_arena_calloc(c->a, max * sizeof(*parts));
    if (parts == NULL) {
        pt_conf_error(c, n, "out of memory");
        return;
    }
    bool ok = true;
    size_t lit = 0, i = 0;
    while (i < len) {
        if (v[i] == '}') {
            pt_conf_error_at(c, n, i, "rewrite: '}' without '{'");
            return;
        }
        if (v[i] != '{') {
            i++;
            continue;
        }
        const char *close = strchr(v + i, '}');
        if (close == NULL) {
            pt_conf_error_at(c, n, i, "rewrite: '{' without '}'");
            return;
        }
        size_t nlen = (size_t)(close - (v + i + 1));
        char name[128];
        if (nlen > 0 && v[i + nlen] == '*') {
            pt_conf_error_at(c, n, i, "rewrite: write {%.*s} to insert the capture, without '*'",
                             (int)(nlen - 1 < 100 ? nlen - 1 : 100), v + i + 1);
            return;
        }
        bool valid = nlen > 0 && nlen < sizeof(name);
        for (size_t k = 0; valid && k < nlen; k++)
            valid = is_name_char(v[i + 1 + k]);
        if (!valid) {
            pt_conf_error_at(c, n, i, "rewrite: \"{%.*s}\" is not a capture name",
                             (int)(nlen < 100 ? nlen : 100), v + i + 1);
            return;
        }
        memcpy(name, v + i + 1, nlen);
        name[nlen] = '\0';
        if (i > lit)
            parts[nparts++] = (struct pt_rewrite_part){false, pt_str_make(v + lit, i - lit)};
        parts[nparts++] = (struct pt_rewrite_part){true, pt_str_make(v + i + 1, nlen)};
        ok = capture_defined(c, b, n, i, name) && ok;
        i = lit = (size_t)(close - v) + 1;
    }
    if (len > lit)
        parts[nparts++] = (struct pt_rewrite_part){false, pt_str_make(v + lit, len - lit)};
    if (ok) {
        b->r->rewrite = parts;
        b->r->nrewrite = nparts;
    }
}

/* --- one route ------------------------------------------------------------ */

static int cmp_service_name(const void *a, const void *b)
{
    const struct pt_service *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int cmp_name_key(const void *key, const void *elem)
{
    const struct pt_service *const *s = elem;
    return strcmp(key, (*s)->name);
}

/* The services sorted by name, for lookups from every route; NULL when there are none. */
static const struct pt_service **sorted_services(struct pt_conf_ctx *c)
{
    size_t n = c->snap->nservices;
    if (n == 0)
        return NULL;
    const struct pt_service **v = pt_arena_alloc(c->a, n * sizeof(*v));
    if (v == NULL)
        return NULL;
    memcpy(v, c->snap->services, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_service_name);
    return v;
}

/* Suggestions look at every name: only worth it for a configuration of human size. */
#define MAX_SUGGEST_SERVICES 1000

static void resolve_service(struct pt_conf_ctx *c, struct route_build *b,
                            const struct pt_conf_node *n, const struct pt_service **by_name)
{
    const char *name;
    size_t ns = c->snap->nservices;
    if (pt_conf_get_string(c, "service", n, &name) != 0)
        return;
    const struct pt_service **hit =
        by_name != NULL ? bsearch(name, by_name, ns, sizeof(*by_name), cmp_name_key) : NULL;
    if (hit != NULL) {
        b->r->service = (struct pt_service *)*hit;
        return;
    }
    const char *hint = NULL;
    const char **names = ns <= MAX_SUGGEST_SERVICES ? pt_malloc((ns + 1) * sizeof(*names)) : NULL;
    if (names != NULL) {
        for (size_t i = 0; i < ns; i++)
            names[i] = c->snap->services[i]->name;
        hint = pt_conf_suggest(name, names, ns);
    }
    if (hint != NULL)
        pt_conf_error(c, n, "service: unknown service \"%.100s\" (did you mean \"%s\"?)", name,
                      hint);
    else
        pt_conf_error(c, n, "service: unknown service \"%.100s\"%s", name,
                      ns == 0 ? " (no services are defined)" : "");
    free(names);
}

/* aggregate (config/aggregate.c); what proxies the path means nothing to a composition */
static void compile_aggregate(struct pt_conf_ctx *c, struct route_build *b,
                              const struct pt_conf_node *n, const struct route_fields *f,
                              const char *where, const struct pt_service **by_name)
{
    static const char *const proxy_only[] = {"strip_prefix", "rewrite", "preserve_host"};
    for (size_t i = 0; i < sizeof(proxy_only) / sizeof(proxy_only[0]); i++) {
        const struct pt_conf_node *k = pt_conf_map_get(n, proxy_only[i]);
        if (k != NULL && !pt_conf_is_null(k))
            pt_conf_error(c, k,
                          "%s: has no effect on a route with aggregate (each call has its "
                          "own path)",
                          proxy_only[i]);
    }
    pt__conf_aggregate(c, b->r, f->aggregate, b->paths, b->npaths, b->paths_ok, by_name, where);
}

static void compile_route(struct pt_conf_ctx *c, struct route_build *b,
                          const struct pt_conf_node *n, size_t index,
                          const struct pt_service **by_name)
{
    struct route_fields f = {0};
    b->node = n;
    b->r->index = index;
    /* The name first: it labels every other message about this route. */
    const struct pt_conf_node *name = pt_conf_map_get(n, "name");
    if (name != NULL && name->kind == PT_CONF_SCALAR && !pt_conf_is_null(name))
        b->r->name = name->scalar.value;
    else
        b->r->name = pt_arena_printf(c->a, "route-%zu", index + 1);
    if (b->r->name == NULL) {
        pt_conf_error(c, n, "out of memory");
        return;
    }
    if (pt_conf_is_null(n) || n->kind != PT_CONF_MAP) {
        pt_conf_error(c, n, "routes: each route must be a map, got %s", pt_conf_kind_name(n));
        return;
    }
    char where[128];
    snprintf(where, sizeof(where), "routes.%.100s", b->r->name);
    pt_conf_apply(c, route_keys, n, &f, where, NULL);
    if (f.name != NULL) {
        b->name_node = name;
        if (!pt__conf_name_ok(f.name))
            pt_conf_error(c, name,
                          "name: \"%.100s\" must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
                          f.name);
    }
    if (f.match != NULL)
        compile_match(c, b, f.match, where);
    if (f.service != NULL && f.aggregate != NULL)
        pt_conf_error(c, pt_conf_map_get(n, "aggregate"),
                      "aggregate: a route has either a service or an aggregate, not both");
    else if (f.service != NULL)
        resolve_service(c, b, f.service, by_name);
    else if (f.aggregate != NULL)
        compile_aggregate(c, b, n, &f, where, by_name);
    else
        pt_conf_error(c, n, "route \"%.100s\" needs a service (or an aggregate)", b->r->name);
    if (f.strip_prefix != NULL)
        compile_strip_prefix(c, b, pt_conf_map_get(n, "strip_prefix"), f.strip_prefix);
    if (f.rewrite != NULL && !pt_conf_is_null(f.rewrite)) {
        if (f.strip_prefix != NULL)
            pt_conf_error(c, f.rewrite,
                          "rewrite: cannot be combined with strip_prefix (a rewrite already "
                          "builds the whole path)");
        else
            compile_rewrite(c, b, f.rewrite);
    }
    b->r->preserve_host = f.preserve_host;
    b->r->max_body_bytes = f.max_body_bytes;
    struct pt_plugin_chain own = {0};
    pt__conf_plugins(c, f.plugins, PT_PLUGIN_ROUTE, "plugins", &own);
    const struct pt_plugin_chain *svc_plugins =
        b->r->service != NULL ? b->r->service->plugins : NULL;
    if (pt__conf_plugin_chain(c, &c->snap->plugins, svc_plugins, &own, &b->r->chain) != 0)
        pt_conf_error(c, n, "out of memory");
}

static int cmp_route_name(const void *a, const void *b)
{
    const struct route_build *const *x = a, *const *y = b;
    int c = strcmp((*x)->r->name, (*y)->r->name);
    if (c != 0)
        return c;
    return (*x)->r->index < (*y)->r->index ? -1 : (*x)->r->index > (*y)->r->index;
}

static const struct pt_conf_node *name_pos(const struct route_build *b)
{
    return b->name_node != NULL ? b->name_node : b->node;
}

/* Report each reuse of a route name at the later route (sorted, so large files stay fast). */
static void check_unique_names(struct pt_conf_ctx *c, struct route_build *b, size_t n)
{
    if (n < 2)
        return;
    struct route_build **v = pt_malloc(n * sizeof(*v));
    if (v == NULL) {
        pt_diag_error(c->d, c->file, 0, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = &b[i];
    qsort(v, n, sizeof(*v), cmp_route_name);
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i]->r->name, v[first]->r->name) != 0) {
            first = i;
            continue;
        }
        pt_conf_error(c, name_pos(v[i]), "route name \"%.100s\" is already used at line %d",
                      v[i]->r->name, name_pos(v[first])->line);
    }
    free(v);
}

/* --- the router ----------------------------------------------------------- */

struct router_diag {
    struct pt_conf_ctx *c;
    const struct route_build *builds;
    const size_t *index; /* router input i -> builds[index[i]] */
};

static void on_router_diag(void *ctx, bool is_error, size_t route, ssize_t path,
                           const char *message)
{
    struct router_diag *rd = ctx;
    const struct route_build *b = &rd->builds[rd->index[route]];
    const struct pt_conf_node *at = b->node;
    if (path >= 0 && (size_t)path < b->npaths)
        at = b->path_nodes[path];
    if (is_error)
        pt_conf_error(rd->c, at, "%s", message);
    else
        pt_conf_warn(rd->c, at, "%s", message);
}

/*
 * Hand every route whose patterns are all strings to the router, even when
 * other problems were found, so that bad patterns are reported in the same
 * run.  The snapshot owns the result; a failed load frees it with the rest.
 */
static void build_router(struct pt_conf_ctx *c, struct route_build *b, size_t n)
{
    struct pt_router_route *in = pt_arena_calloc(c->a, (n + 1) * sizeof(*in));
    size_t *index = pt_arena_calloc(c->a, (n + 1) * sizeof(*index));
    const char *file = c->file;
    if (in == NULL || index == NULL) {
        pt_diag_error(c->d, file, 0, 0, "out of memory");
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!b[i].paths_ok)
            continue;
        index[m] = i;
        in[m++] = (struct pt_router_route){
            .name = b[i].r->name,
            .data = b[i].r,
            .paths = b[i].paths,
            .npaths = b[i].npaths,
            .methods = b[i].methods,
            .nmethods = b[i].nmethods,
            .hosts = b[i].hosts,
            .nhosts = b[i].nhosts,
            .headers = b[i].headers,
            .nheaders = b[i].nheaders,
        };
    }
    struct router_diag rd = {c, b, index};
    size_t before = c->d->nerrors;
    c->snap->router = pt_router_build(in, m, on_router_diag, &rd);
    if (c->snap->router == NULL && c->d->nerrors == before)
        pt_diag_error(c->d, file, 0, 0, "cannot build the router: out of memory");
}

void pt__conf_routes(struct pt_conf_ctx *c, const struct pt_conf_node *node)
{
    struct pt_snapshot *s = c->snap;
    size_t n = 0;
    s->routes = NULL;
    s->nroutes = 0;
    if (!pt_conf_is_null(node) && node->kind != PT_CONF_SEQ) {
        pt_conf_error(c, node, "routes: expected a list of routes, got %s",
                      pt_conf_kind_name(node));
        return;
    }
    if (!pt_conf_is_null(node))
        n = node->seq.n;
    struct route_build *b = pt_calloc(n + 1, sizeof(*b));
    s->routes = pt_arena_calloc(c->a, (n + 1) * sizeof(*s->routes));
    if (b == NULL || s->routes == NULL) {
        free(b);
        pt_diag_error(c->d, c->file, 0, 0, "out of memory");
        return;
    }
    const struct pt_service **by_name = sorted_services(c);
    for (size_t i = 0; i < n; i++) {
        b[i].r = pt_arena_calloc(c->a, sizeof(*b[i].r));
        if (b[i].r == NULL) {
            pt_conf_error(c, node->seq.items[i], "out of memory");
            goto out;
        }
        compile_route(c, &b[i], node->seq.items[i], i, by_name);
        if (b[i].r->name == NULL)
            goto out;
        s->routes[s->nroutes++] = b[i].r;
    }
    check_unique_names(c, b, n);
    build_router(c, b, n);
out:
    free(b);
}
