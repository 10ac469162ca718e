#include <stdio.h>
#include <string.h>

#include "portico/status.h"
#include "core/compiler.h"
#include "config/snapshot.h"
#include "http/reqid.h"
#include "plugins/plugin.h"
#include "proxy/forward.h"
#include "proxy/proxy.h"
#include "proxy/route.h"
#include "upstream/service.h"

/* ---- identity ---- */

/* All values of a repeated header joined with ", " (one value: a view, no copy). */
static struct pt_str joined_header(struct pt_exchange *ex, struct pt_str name)
{
    const struct pt_request *r = &ex->req;
    struct pt_str first = PT_STR_NULL;
    size_t count = 0, total = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!pt_str_case_eq(r->headers[i].name, name))
            continue;
        if (count++ == 0)
            first = r->headers[i].value;
        total += r->headers[i].value.len + 2;
    }
    if (count <= 1)
        return first;
    char *p = pt_arena_alloc(&ex->arena, total);
    if (p == NULL)
        return first;
    size_t n = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!pt_str_case_eq(r->headers[i].name, name) || r->headers[i].value.len == 0)
            continue;
        if (n > 0) {
            p[n++] = ',';
            p[n++] = ' ';
        }
        memcpy(p + n, r->headers[i].value.ptr, r->headers[i].value.len);
        n += r->headers[i].value.len;
    }
    return pt_str_make(p, n);
}

void pt_forward_identity(struct pt_exchange *ex)
{
    struct pt_request *r = &ex->req;
    const struct pt_server_conf *sc = &ex->snap->server;
    const char *named = pt_plugin_request_id_header(&ex->snap->global_chain);
    if (named != NULL)
        ex->request_id_header = pt_str_cstr(named);
    if (ex->request_id_len == 0) {
        const struct pt_h1_header *h =
            pt_h1_find_header(r->headers, r->nheaders, ex->request_id_header);
        if (h != NULL && pt_reqid_is_sane(h->value)) {
            memcpy(ex->request_id, h->value.ptr, h->value.len);
            ex->request_id_len = (uint8_t)h->value.len;
        } else {
            pt_reqid_generate(ex->request_id);
            ex->request_id_len = PT_REQID_GEN_LEN;
        }
    }
    const struct pt_h1_header *tp =
        pt_h1_find_header(r->headers, r->nheaders, PT_STR_LIT("traceparent"));
    struct pt_traceparent in;
    ex->trace_continued = tp != NULL && pt_traceparent_parse(tp->value, &in) == 0;
    if (ex->trace_continued)
        pt_traceparent_child(&in, &ex->trace);
    else
        pt_traceparent_new(&ex->trace, true); /* and the client's tracestate, if any, is dropped */

    ex->peer_trusted = pt_cidr_list_contains(sc->trusted_proxies, sc->ntrusted_proxies, &ex->peer);
    if (ex->peer_trusted)
        pt_client_ip(&ex->peer, joined_header(ex, PT_STR_LIT("X-Forwarded-For")),
                     sc->trusted_proxies, sc->ntrusted_proxies, &ex->client_ip);
    else
        ex->client_ip = ex->peer;

    /* Only WebSocket is tunnelled; other upgrade requests (h2c...) are served as plain requests. */
    if (r->upgrade && !pt_str_case_eq_lit(r->upgrade_proto, "websocket"))
        r->upgrade = false;
}

/* ---- upstream path ---- */

static struct pt_str capture(const struct pt_exchange *ex, struct pt_str name)
{
    for (size_t i = 0; i < ex->match.ncaptures; i++)
        if (pt_str_eq(ex->match.captures[i].name, name))
            return ex->match.captures[i].value;
    return PT_STR_NULL;
}

int pt_forward_upstream_path(struct pt_exchange *ex)
{
    const struct pt_route *rt = ex->route;
    const struct pt_request *r = &ex->req;
    struct pt_str path = r->path;
    size_t cap = path.len + r->query.len + 2;
    if (rt->rewrite != NULL) {
        for (size_t i = 0; i < rt->nrewrite; i++)
            cap += rt->rewrite[i].is_capture ? capture(ex, rt->rewrite[i].text).len
                                             : rt->rewrite[i].text.len;
    }
    char *out = pt_arena_alloc(&ex->arena, cap + 1);
    if (out == NULL)
        return PT_ERR_NOMEM;
    size_t n = 0;
    if (rt->rewrite != NULL) {
        for (size_t i = 0; i < rt->nrewrite; i++) {
            struct pt_str s =
                rt->rewrite[i].is_capture ? capture(ex, rt->rewrite[i].text) : rt->rewrite[i].text;
            memcpy(out + n, s.ptr, s.len);
            n += s.len;
        }
    } else {
        struct pt_str sp = rt->strip_prefix;
        if (sp.len > 0 && pt_str_starts_with(path, sp) &&
            (path.len == sp.len || path.ptr[sp.len] == '/' || sp.ptr[sp.len - 1] == '/')) {
            path.ptr += sp.len;
            path.len -= sp.len;
        }
        if (path.len == 0 || path.ptr[0] != '/')
            out[n++] = '/';
        memcpy(out + n, path.ptr, path.len);
        n += path.len;
    }
    if (n == 0)
        out[n++] = '/';
    if (r->has_query) {
        out[n++] = '?';
        memcpy(out + n, r->query.ptr, r->query.len);
        n += r->query.len;
    }
    ex->upstream_path = pt_str_make(out, n);
    return 0;
}

/* ---- hash key ---- */

static struct pt_str cookie_value(const struct pt_request *r, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!pt_str_case_eq_lit(r->headers[i].name, "cookie"))
            continue;
        const char *p = r->headers[i].value.ptr, *e = p + r->headers[i].value.len;
        while (p < e) {
            while (p < e && (*p == ' ' || *p == ';'))
                p++;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            if (eq == NULL)
                break;
            const char *end = memchr(eq, ';', (size_t)(e - eq));
            if (end == NULL)
                end = e;
            if ((size_t)(eq - p) == nl && memcmp(p, name, nl) == 0)
                return pt_str_make(eq + 1, (size_t)(end - eq - 1));
            p = end;
        }
    }
    return PT_STR_NULL;
}

struct pt_str pt_forward_hash_key(struct pt_exchange *ex, const struct pt_service *svc)
{
    if (svc->balance != PT_BALANCE_HASH)
        return PT_STR_NULL;
    const struct pt_request *r = &ex->req;
    switch (svc->hash_on) {
    case PT_HASH_IP: {
        char *buf = pt_arena_alloc(&ex->arena, 48);
        if (buf == NULL)
            return PT_STR_NULL;
        size_t n = pt_ip_format(&ex->client_ip, buf, 48);
        return pt_str_make(buf, n);
    }
    case PT_HASH_HEADER: {
        const struct pt_h1_header *h =
            pt_h1_find_header(r->headers, r->nheaders, pt_str_cstr(svc->hash_key));
        return h != NULL ? h->value : PT_STR_NULL;
    }
    case PT_HASH_COOKIE:
        return cookie_value(r, svc->hash_key);
    case PT_HASH_PATH:
        return r->path;
    default: /* consumer: none before authentication exists */
        return PT_STR_NULL;
    }
}

/* ---- request head ---- */

/* Fields the gateway sets itself or that describe the client connection. */
static bool replaced_upstream(const struct pt_exchange *ex, struct pt_str n, bool trusted)
{
    if (pt_str_case_eq(n, ex->request_id_header))
        return true;
    switch (n.len) {
    case 4:
        return pt_str_case_eq_lit(n, "host");
    case 10: /* W3C Trace Context: it belongs to the trace in traceparent */
        return !ex->trace_continued && pt_str_case_eq_lit(n, "tracestate");
    case 11:
        return pt_str_case_eq_lit(n, "traceparent");
    case 12:
        return pt_str_case_eq_lit(n, "x-request-id");
    case 14:
        return pt_str_case_eq_lit(n, "content-length");
    case 15:
        return pt_str_case_eq_lit(n, "x-forwarded-for");
    case 16:
        return !trusted && pt_str_case_eq_lit(n, "x-forwarded-host");
    case 17:
        return !trusted && pt_str_case_eq_lit(n, "x-forwarded-proto");
    default:
        return false;
    }
}

/*
 * The Connection fields of a message, gathered once so that the hop-by-hop
 * test for each field does not rescan every field (O(n) instead of O(n^2)).
 */
struct conn_fields {
    struct pt_h1_header v[8];
    size_t n;
};

static void gather_connection(const struct pt_h1_header *h, size_t n, struct conn_fields *cf)
{
    cf->n = 0;
    for (size_t i = 0; i < n && cf->n < PT_ARRAY_SIZE(cf->v); i++)
        if (h[i].name.len == 10 && pt_str_case_eq_lit(h[i].name, "connection"))
            cf->v[cf->n++] = h[i];
}

static bool hop_by_hop(struct pt_str name, const struct conn_fields *cf)
{
    return pt_h1_is_hop_by_hop(name, cf->v, cf->n);
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)
#define PUT_STR(p, s)   put((p), (s).ptr, (s).len)

int pt_forward_request_head(struct pt_exchange *ex, const struct pt_target *t, struct pt_buf *out)
{
    const struct pt_request *r = &ex->req;
    const struct pt_service *svc = ex->route->service;
    struct pt_str xff = joined_header(ex, PT_STR_LIT("X-Forwarded-For"));
    struct pt_str host = ex->route->preserve_host && r->authority.len > 0 ? r->authority
                         : svc->host != NULL                              ? pt_str_cstr(svc->host)
                                             : pt_str_cstr(t->authority);
    size_t need = r->method.len + ex->upstream_path.len + host.len + xff.len + r->authority.len +
                  ex->request_id_len + ex->request_id_header.len + 400;
    for (size_t i = 0; i < r->nheaders; i++)
        need += r->headers[i].name.len + r->headers[i].value.len + 4;
    char *start = pt_buf_reserve(out, need, SIZE_MAX);
    if (start == NULL)
        return PT_ERR_NOMEM;
    char *p = start;
    p = PUT_STR(p, r->method);
    *p++ = ' ';
    p = PUT_STR(p, ex->upstream_path);
    p = PUT_LIT(p, " HTTP/1.1\r\nHost: ");
    p = PUT_STR(p, host);
    p = PUT_LIT(p, "\r\n");
    bool has_proto = false, has_fhost = false;
    struct conn_fields cf;
    gather_connection(r->headers, r->nheaders, &cf);
    for (size_t i = 0; i < r->nheaders; i++) {
        struct pt_str n = r->headers[i].name;
        if (replaced_upstream(ex, n, ex->peer_trusted) || hop_by_hop(n, &cf))
            continue;
        if (ex->peer_trusted) {
            has_proto |= pt_str_case_eq_lit(n, "x-forwarded-proto");
            has_fhost |= pt_str_case_eq_lit(n, "x-forwarded-host");
        }
        p = PUT_STR(p, n);
        *p++ = ':';
        *p++ = ' ';
        p = PUT_STR(p, r->headers[i].value);
        p = PUT_LIT(p, "\r\n");
    }
    p = PUT_LIT(p, "X-Forwarded-For: ");
    if (xff.len > 0) {
        p = PUT_STR(p, xff);
        p = PUT_LIT(p, ", ");
    }
    p += pt_ip_format(&ex->peer, p, 48);
    p = PUT_LIT(p, "\r\n");
    if (!has_proto) {
        p = PUT_LIT(p, "X-Forwarded-Proto: ");
        p = PUT_STR(p, r->scheme);
        p = PUT_LIT(p, "\r\n");
    }
    if (!has_fhost && r->authority.len > 0) {
        p = PUT_LIT(p, "X-Forwarded-Host: ");
        p = PUT_STR(p, r->authority);
        p = PUT_LIT(p, "\r\n");
    }
    p = PUT_STR(p, ex->request_id_header);
    p = PUT_LIT(p, ": ");
    p = put(p, ex->request_id, ex->request_id_len);
    p = PUT_LIT(p, "\r\ntraceparent: ");
    pt_traceparent_format(&ex->trace, p);
    p += PT_TRACEPARENT_LEN;
    p = PUT_LIT(p, "\r\n");
    if (r->upgrade) {
        p = PUT_LIT(p, "Connection: upgrade\r\nUpgrade: ");
        p = PUT_STR(p, r->upgrade_proto);
        p = PUT_LIT(p, "\r\n");
    }
    pt_buf_commit(out, (size_t)(p - start));
    return 0;
}

/* ---- response head ---- */

int pt_forward_response_head(struct pt_exchange *ex, const struct pt_h1_response *resp,
                             const struct pt_h1_meta *meta, struct pt_response_head *head)
{
    const struct pt_request *r = &ex->req;
    struct pt_h1_header *hs = pt_arena_alloc(&ex->arena, sizeof(*hs) * (resp->num_headers + 2));
    if (hs == NULL)
        return PT_ERR_NOMEM;
    bool head_only = r->method_id == PT_METHOD_HEAD || resp->status == 204 || resp->status == 304 ||
                     resp->status < 200;
    size_t n = 0;
    struct pt_str upgrade = PT_STR_NULL;
    struct conn_fields cf;
    gather_connection(resp->headers, resp->num_headers, &cf);
    for (size_t i = 0; i < resp->num_headers; i++) {
        struct pt_str name = resp->headers[i].name;
        if (resp->status == 101 && pt_str_case_eq_lit(name, "upgrade")) {
            upgrade = resp->headers[i].value;
            continue;
        }
        if (hop_by_hop(name, &cf))
            continue;
        if (pt_str_case_eq(name, ex->request_id_header))
            continue;
        /* The codec writes the framing.  HEAD and 304 keep the upstream's
         * Content-Length (the size of the representation); 1xx and 204 must
         * not carry one at all (RFC 9110 section 8.6). */
        if (pt_str_case_eq_lit(name, "content-length") &&
            (!head_only || resp->status == 204 || resp->status < 200))
            continue;
        hs[n++] = resp->headers[i];
    }
    hs[n].name = ex->request_id_header;
    hs[n++].value = pt_str_make(ex->request_id, ex->request_id_len);
    if (resp->status == 101) {
        hs[n].name = PT_STR_LIT("Upgrade");
        hs[n++].value = upgrade.len > 0 ? upgrade : r->upgrade_proto;
    }
    head->status = resp->status;
    head->headers = hs;
    head->nheaders = n;
    head->head_only = head_only;
    switch (meta->body) {
    case PT_H1_BODY_NONE:
        head->body = PT_BODY_NONE;
        head->content_length = 0;
        break;
    case PT_H1_BODY_LENGTH:
        head->body = PT_BODY_LENGTH;
        head->content_length = meta->content_length;
        break;
    default:
        head->body = PT_BODY_STREAM;
        head->content_length = 0;
        break;
    }
    return 0;
}
