/*
 * GET /routes/explain?method=M&host=H&path=P&header.NAME=V
 *
 * Replays the router's decision for a described request: the path is
 * percent-decoded once (it is a query parameter), its query part dropped,
 * then normalised exactly like a request path; the host loses its port.
 * The answer tells which route wins and why, its captures and the plugin
 * chain that would run, every route's verdict (pt_router_explain), and
 * the routes that can never match.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/str.h"
#include "config/node.h"
#include "config/snapshot.h"
#include "proxy/route.h"
#include "router/path.h"
#include "router/router.h"
#include "upstream/service.h"
#include "admin/admin-int.h"

#define MAX_HEADERS 32

char *pt_admin_query_decode(struct pt_str s, size_t *len)
{
    char *out = pt_malloc(s.len + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < s.len ? pt_hexval(s.ptr[i + 1]) : -1;
            int lo = i + 2 < s.len ? pt_hexval(s.ptr[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

struct params {
    char *method, *host, *path;
    size_t path_len;
    struct pt_str hname[MAX_HEADERS], hvalue[MAX_HEADERS];
    char *owned[2 * MAX_HEADERS];
    size_t nheaders, nowned;
};

static void params_free(struct params *p)
{
    free(p->method);
    free(p->host);
    free(p->path);
    for (size_t i = 0; i < p->nowned; i++)
        free(p->owned[i]);
}

/* Parse the query; on error *why is set (static text or the parameter's name). */
static int parse_params(struct pt_str q, struct params *p, char *why, size_t whylen)
{
    size_t i = 0;
    while (i < q.len) {
        size_t j = i;
        while (j < q.len && q.ptr[j] != '&')
            j++;
        struct pt_str item = pt_str_make(q.ptr + i, j - i);
        i = j + 1;
        if (item.len == 0)
            continue;
        const char *eq = memchr(item.ptr, '=', item.len);
        struct pt_str k = eq != NULL ? pt_str_make(item.ptr, (size_t)(eq - item.ptr)) : item;
        struct pt_str v = eq != NULL ? pt_str_make(eq + 1, item.len - k.len - 1) : PT_STR_NULL;
        size_t klen, vlen;
        char *key = pt_admin_query_decode(k, &klen);
        char *val = pt_admin_query_decode(v, &vlen);
        if (key == NULL || val == NULL) {
            free(key);
            free(val);
            snprintf(why, whylen, "invalid percent-encoding in the query");
            return -1;
        }
        char **slot = NULL;
        if (strcmp(key, "method") == 0)
            slot = &p->method;
        else if (strcmp(key, "host") == 0)
            slot = &p->host;
        else if (strcmp(key, "path") == 0)
            slot = &p->path;
        if (slot != NULL) {
            free(*slot);
            *slot = val;
            if (slot == &p->path)
                p->path_len = vlen;
            free(key);
            continue;
        }
        if (klen > 7 && strncmp(key, "header.", 7) == 0 && p->nheaders < MAX_HEADERS) {
            p->owned[p->nowned++] = key;
            p->owned[p->nowned++] = val;
            p->hname[p->nheaders] = pt_str_make(key + 7, klen - 7);
            p->hvalue[p->nheaders++] = pt_str_make(val, vlen);
            continue;
        }
        snprintf(why, whylen,
                 "unknown parameter \"%.60s\" (expected method, host, path, "
                 "header.NAME)",
                 key);
        free(key);
        free(val);
        return -1;
    }
    return 0;
}

static bool header_lookup(void *ctx, struct pt_str name, struct pt_str *value)
{
    const struct params *p = ctx;
    for (size_t i = 0; i < p->nheaders; i++) {
        if (pt_str_case_eq(p->hname[i], name)) {
            *value = p->hvalue[i];
            return true;
        }
    }
    return false;
}

/* The host without its port, as the proxy hands it to the router ("[::1]:80" -> "[::1]"). */
static struct pt_str host_part(const char *h)
{
    struct pt_str s = pt_str_cstr(h);
    if (s.len > 0 && s.ptr[0] == '[') {
        const char *rb = memchr(s.ptr, ']', s.len);
        return rb != NULL ? pt_str_make(s.ptr, (size_t)(rb - s.ptr) + 1) : s;
    }
    const char *colon = memchr(s.ptr, ':', s.len);
    return colon != NULL ? pt_str_make(s.ptr, (size_t)(colon - s.ptr)) : s;
}

static json_t *captures_json(const struct pt_router_match *m)
{
    json_t *c = json_object();
    for (size_t i = 0; i < m->ncaptures; i++) {
        char name[128];
        size_t n =
            m->captures[i].name.len < sizeof(name) - 1 ? m->captures[i].name.len : sizeof(name) - 1;
        memcpy(name, m->captures[i].name.ptr, n);
        name[n] = '\0';
        json_t *v = json_stringn(m->captures[i].value.ptr, m->captures[i].value.len);
        json_object_set_new(c, name, v != NULL ? v : json_string("?"));
    }
    return c;
}

static json_t *allow_json(const struct pt_router_match *m)
{
    json_t *a = json_array();
    for (int i = 1; i < PT_METHOD_COUNT; i++)
        if (m->allow_mask & PT_METHOD_BIT(i))
            json_array_append_new(a, json_string(pt_method_name((enum pt_method)i)));
    for (size_t i = 0; i < m->nallow_other; i++)
        json_array_append_new(a, json_string(m->allow_other[i]));
    return a;
}

static json_t *verdicts_json(const struct pt_snapshot *s, const struct pt_router_explain_entry *e,
                             size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct pt_route *r = e[i].route < s->nroutes ? s->routes[e[i].route] : NULL;
        json_t *o = json_object();
        json_object_set_new(o, "route", json_string(r != NULL ? r->name : "?"));
        json_object_set_new(o, "verdict", json_string(pt_router_verdict_name(e[i].verdict)));
        json_object_set_new(o, "detail",
                            e[i].detail != NULL ? json_string(e[i].detail) : json_null());
        const struct pt_conf_node *rn = pt_admin_object(s, PT_ADMIN_ROUTES, (long)e[i].route);
        const struct pt_conf_node *paths = pt_conf_map_get(pt_conf_map_get(rn, "match"), "paths");
        if (e[i].path >= 0 && paths != NULL && paths->kind == PT_CONF_SEQ &&
            (size_t)e[i].path < paths->seq.n && paths->seq.items[e[i].path]->kind == PT_CONF_SCALAR)
            json_object_set_new(o, "pattern",
                                json_string(paths->seq.items[e[i].path]->scalar.value));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *shadowed_json(const struct pt_snapshot *s)
{
    json_t *a = json_array();
    for (size_t i = 0; s->router != NULL && i < s->nroutes; i++) {
        const char *why = pt_router_shadow_reason(s->router, i);
        if (why == NULL)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "route", json_string(s->routes[i]->name));
        json_object_set_new(o, "reason", json_string(why));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *request_json(const struct params *p, struct pt_str method, struct pt_str host,
                            struct pt_str path)
{
    json_t *r = json_object();
    json_object_set_new(r, "method", json_stringn(method.ptr, method.len));
    json_object_set_new(r, "host", json_stringn(host.ptr, host.len));
    json_object_set_new(r, "path", json_stringn(path.ptr, path.len));
    json_t *h = json_object();
    for (size_t i = 0; i < p->nheaders; i++) {
        json_t *v = json_stringn(p->hvalue[i].ptr, p->hvalue[i].len);
        json_object_setn_new(h, p->hname[i].ptr, p->hname[i].len, v != NULL ? v : json_string("?"));
    }
    json_object_set_new(r, "headers", h);
    return r;
}

void pt_admin_explain(const struct pt_snapshot *s, struct pt_str query, struct pt_admin_resp *resp)
{
    struct params p = {0};
    char why[160];
    struct pt_router_explain_entry *entries = NULL;
    if (parse_params(query, &p, why, sizeof(why)) != 0) {
        pt_admin_problem(resp, 400, NULL, why, NULL);
        goto out;
    }
    if (p.path == NULL || p.path_len == 0) {
        pt_admin_problem(resp, 400, NULL, "path is required: /routes/explain?path=/...", NULL);
        goto out;
    }
    const char *method = p.method != NULL ? p.method : "GET";
    if (!pt_h1_is_token_cstr(method)) {
        pt_admin_problem(resp, 400, NULL, "method is not a valid method token", NULL);
        goto out;
    }
    /* a query on the path is not routed on: drop it, then normalise like a request */
    char *q = memchr(p.path, '?', p.path_len);
    size_t plen = q != NULL ? (size_t)(q - p.path) : p.path_len;
    ssize_t n = pt_path_normalize(p.path, plen, p.path);
    if (n == PT_PATH_ESCAPES_ROOT || n < 0) {
        pt_admin_problem(resp, 400, NULL,
                         n == PT_PATH_ESCAPES_ROOT ? "the path escapes the root (a request "
                                                     "would get 400)"
                                                   : "invalid path (a request would get 400)",
                         NULL);
        goto out;
    }
    struct pt_str path = pt_str_make(p.path, (size_t)n);
    struct pt_str host = host_part(p.host != NULL ? p.host : "");
    struct pt_router_request rr = {
        .method = pt_str_cstr(method),
        .host = host,
        .path = path,
        .header = header_lookup,
        .header_ctx = &p,
    };
    size_t nr = s->router != NULL ? pt_router_count(s->router) : 0;
    entries = pt_calloc(nr + 1, sizeof(*entries));
    if (entries == NULL) {
        pt_admin_problem(resp, 500, NULL, "out of memory", NULL);
        goto out;
    }
    struct pt_router_match m;
    memset(&m, 0, sizeof(m));
    m.status = 404;
    m.route = SIZE_MAX;
    if (s->router != NULL)
        pt_router_explain(s->router, &rr, &m, entries);
    const struct pt_route *won = m.status == 200 ? m.data : NULL;
    json_t *j = json_object();
    json_object_set_new(j, "request", request_json(&p, rr.method, host, path));
    json_object_set_new(j, "status", json_integer(m.status));
    json_object_set_new(j, "route", won != NULL ? json_string(won->name) : json_null());
    json_object_set_new(j, "service",
                        won != NULL && won->service != NULL ? json_string(won->service->name)
                                                            : json_null());
    json_object_set_new(j, "captures", captures_json(&m));
    if (m.status == 405)
        json_object_set_new(j, "allow", allow_json(&m));
    json_object_set_new(j, "plugins",
                        pt_admin_chain_json(won != NULL ? &won->chain : &s->global_chain));
    json_object_set_new(j, "considered", verdicts_json(s, entries, nr));
    json_object_set_new(j, "shadowed", shadowed_json(s));
    pt_admin_json(resp, 200, j);
out:
    free(entries);
    params_free(&p);
}
