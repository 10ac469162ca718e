/*
 * cors (SPEC §3): Cross-Origin Resource Sharing, as the Fetch standard's
 * CORS protocol describes it (https://fetch.spec.whatwg.org/#http-cors-protocol).
 *
 *   plugins:
 *     cors:
 *       origins: ["https://app.example.com"]   # or ["*"] (the default)
 *       methods: [GET, POST]                   # default GET HEAD PUT PATCH POST DELETE
 *       headers: [Content-Type, Authorization] # default: whatever the preflight asks for
 *       expose: [X-Request-Id]                 # default none
 *       credentials: true                      # default false
 *       max_age: 10m                           # default none (browsers use 5 s)
 *
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
 * answered here, 204, and never reaches the service.  Every other response
 * to a request with an Origin (the service's, the gateway's errors) gets
 * Access-Control-Allow-Origin, -Allow-Credentials and -Expose-Headers when
 * the origin is allowed, and none when it is not.  Access-Control-* fields
 * the service sent are dropped either way: with this plugin on a route the
 * gateway owns CORS.  When the answer depends on the Origin (a list of
 * origins, or credentials), every response carries Vary: Origin so that
 * caches keep the variants apart.
 *
 * Wildcards: with credentials the Fetch standard reads "*" literally, so
 * origins "*" reflects the request's origin (but never "null", which
 * sandboxed documents send: list "null" explicitly), methods "*" and headers
 * "*" reflect what the preflight asked for, and expose "*" is refused.
 *
 * The decision is cors_headers(), a pure function of the options and the
 * request's CORS fields (unit-tested in tests/unit/plugins/cors.c).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config/schema.h"
#include "config/value.h"
#include "plugins/headers.h"
#include "plugins/plugin.h"
#include "proxy/proxy.h"

struct cors {
    struct pt_str *origins; /* lower case, default ports dropped */
    size_t norigins;
    bool any_origin;       /* "*" listed */
    struct pt_str methods; /* joined with ", " */
    bool methods_any;
    struct pt_str headers; /* joined; empty with headers_reflect */
    bool headers_reflect;  /* not configured: echo Access-Control-Request-Headers */
    bool headers_any;
    struct pt_str expose; /* joined; may be empty */
    bool credentials;
    int64_t max_age_s; /* -1: no Access-Control-Max-Age */
    char max_age_text[24];
    bool vary; /* the answer depends on the Origin */
};

#define CORS_MAX_OUT 8

/* Fields dropped from responses to CORS requests (the service's own). */
static const struct pt_str cors_fields[] = {
    PT_STR_LIT("Access-Control-Allow-Origin"),   PT_STR_LIT("Access-Control-Allow-Credentials"),
    PT_STR_LIT("Access-Control-Expose-Headers"), PT_STR_LIT("Access-Control-Allow-Methods"),
    PT_STR_LIT("Access-Control-Allow-Headers"),  PT_STR_LIT("Access-Control-Max-Age"),
};

static bool origin_allowed(const struct cors *c, struct pt_str origin)
{
    if (c->any_origin && !(c->credentials && pt_str_eq_lit(origin, "null")))
        return true;
    for (size_t i = 0; i < c->norigins; i++)
        if (pt_str_case_eq(origin, c->origins[i]))
            return true;
    return false;
}

static void put(struct pt_h1_header *out, size_t *k, struct pt_str name, struct pt_str value)
{
    out[*k].name = name;
    out[*k].value = value;
    (*k)++;
}

/*
 * The CORS fields for a response.  origin: the request's Origin (ptr NULL
 * when absent).  preflight: the response answers a preflight; acrm / acrh
 * are its Access-Control-Request-Method / -Headers (ptr NULL when absent).
 * Fills out[0..CORS_MAX_OUT) with views into c and the arguments; returns
 * the count.
 */
static size_t cors_headers(const struct cors *c, struct pt_str origin, bool preflight,
                           struct pt_str acrm, struct pt_str acrh, struct pt_h1_header *out)
{
    size_t k = 0;
    if (c->vary)
        put(out, &k, PT_STR_LIT("Vary"), PT_STR_LIT("Origin"));
    if (origin.ptr == NULL || !origin_allowed(c, origin))
        return k;
    bool star = c->any_origin && !c->credentials;
    put(out, &k, PT_STR_LIT("Access-Control-Allow-Origin"), star ? PT_STR_LIT("*") : origin);
    if (c->credentials)
        put(out, &k, PT_STR_LIT("Access-Control-Allow-Credentials"), PT_STR_LIT("true"));
    if (!preflight) {
        if (c->expose.len > 0)
            put(out, &k, PT_STR_LIT("Access-Control-Expose-Headers"), c->expose);
        return k;
    }
    if (!c->methods_any)
        put(out, &k, PT_STR_LIT("Access-Control-Allow-Methods"), c->methods);
    else if (!c->credentials)
        put(out, &k, PT_STR_LIT("Access-Control-Allow-Methods"), PT_STR_LIT("*"));
    else if (acrm.len > 0)
        put(out, &k, PT_STR_LIT("Access-Control-Allow-Methods"), acrm);
    if (c->headers_reflect || (c->headers_any && c->credentials)) {
        if (acrh.len > 0)
            put(out, &k, PT_STR_LIT("Access-Control-Allow-Headers"), acrh);
    } else if (c->headers_any) {
        put(out, &k, PT_STR_LIT("Access-Control-Allow-Headers"), PT_STR_LIT("*"));
    } else if (c->headers.len > 0) {
        put(out, &k, PT_STR_LIT("Access-Control-Allow-Headers"), c->headers);
    }
    if (c->max_age_s >= 0)
        put(out, &k, PT_STR_LIT("Access-Control-Max-Age"), pt_str_cstr(c->max_age_text));
    return k;
}

/* ---- the hooks ---- */

static struct pt_str req_header(const struct pt_exchange *ex, struct pt_str name)
{
    const struct pt_h1_header *h = pt_h1_find_header(ex->req.headers, ex->req.nheaders, name);
    return h != NULL ? h->value : PT_STR_NULL;
}

static bool is_preflight(const struct pt_exchange *ex)
{
    return ex->req.method_id == PT_METHOD_OPTIONS &&
           req_header(ex, PT_STR_LIT("Origin")).ptr != NULL &&
           req_header(ex, PT_STR_LIT("Access-Control-Request-Method")).ptr != NULL;
}

static int on_request(void *state, struct pt_exchange *ex)
{
    (void)state;
    if (!is_preflight(ex))
        return PT_PLUGIN_CONTINUE;
    /* the CORS fields are added by on_response_head, like on every other answer */
    pt_proxy_respond(ex, 204, NULL, 0, NULL, 0);
    return PT_PLUGIN_RESPONDED;
}

static void on_response_head(void *state, struct pt_exchange *ex, struct pt_response_head *head)
{
    const struct cors *c = state;
    struct pt_str origin = req_header(ex, PT_STR_LIT("Origin"));
    /* our own answer to a preflight: no upstream call, 204 (an earlier plugin's refusal is not) */
    bool preflight = head->status == 204 && !ex->up_started && is_preflight(ex);
    struct pt_h1_header out[CORS_MAX_OUT];
    size_t k = cors_headers(c, origin, preflight,
                            req_header(ex, PT_STR_LIT("Access-Control-Request-Method")),
                            req_header(ex, PT_STR_LIT("Access-Control-Request-Headers")), out);
    size_t nstrip = origin.ptr != NULL ? PT_ARRAY_SIZE(cors_fields) : 0;
    if (k == 0 && nstrip == 0)
        return;
    (void)pt_hdr_edit(&ex->arena, &head->headers, &head->nheaders, cors_fields, nstrip, out, k);
}

/* ---- configuration ---- */

struct options {
    const struct pt_conf_node *origins, *methods, *headers, *expose, *max_age;
    bool credentials;
};

static int parse_max_age(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target);

static const struct pt_conf_key keys[] = {
    PT_CONF_NODE("origins", struct options, origins),
    PT_CONF_NODE("methods", struct options, methods),
    PT_CONF_NODE("headers", struct options, headers),
    PT_CONF_NODE("expose", struct options, expose),
    PT_CONF_BOOL("credentials", struct options, credentials, "false"),
    PT_CONF_NODE("max_age", struct options, max_age),
    {0},
};

/*
 * An origin as browsers serialise it: scheme "://" host [":" port], lower
 * case, no path; the scheme's default port is dropped ("https://a.com:443"
 * is "https://a.com").  NULL (after reporting) when s is not one.
 */
static const char *origin_norm(struct pt_conf_ctx *c, const struct pt_conf_node *n, const char *s)
{
    size_t len = strlen(s);
    const char *sep = strstr(s, "://");
    bool ok = sep != NULL && sep > s && isalpha((unsigned char)s[0]);
    for (const char *p = s; ok && p < sep; p++)
        ok = isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.';
    const char *host = ok ? sep + 3 : s;
    if (ok && (*host == '\0' || strpbrk(host, "/?#@ \t") != NULL))
        ok = false;
    if (!ok) {
        pt_conf_error(c, n,
                      "origins: \"%.100s\" is not an origin: write scheme://host[:port] without "
                      "a path (e.g. https://app.example.com), \"null\" or \"*\"",
                      s);
        return NULL;
    }
    char *out = pt_arena_strndup(c->a, s, len);
    if (out == NULL)
        return NULL;
    for (char *p = out; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    size_t ol = strlen(out);
    if ((strncmp(out, "https://", 8) == 0 && ol > 12 && strcmp(out + ol - 4, ":443") == 0) ||
        (strncmp(out, "http://", 7) == 0 && ol > 10 && strcmp(out + ol - 3, ":80") == 0))
        *strrchr(out, ':') = '\0';
    return out;
}

/* A list of strings (tokens, or "*" alone) joined with ", " into *joined; *any when "*". */
static int token_list(struct pt_conf_ctx *c, const char *opt, const struct pt_conf_node *seq,
                      struct pt_str *joined, bool *any)
{
    *any = false;
    if (pt_conf_expect_seq(c, opt, seq) != 0)
        return -1;
    size_t cap = 1;
    for (size_t i = 0; i < seq->seq.n; i++)
        cap += (seq->seq.items[i]->kind == PT_CONF_SCALAR ? seq->seq.items[i]->scalar.len : 0) + 2;
    char *buf = pt_arena_alloc(c->a, cap);
    if (buf == NULL)
        return -1;
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < seq->seq.n; i++) {
        const struct pt_conf_node *item = seq->seq.items[i];
        const char *s;
        if (pt_conf_get_string(c, opt, item, &s) != 0) {
            rc = -1;
            continue;
        }
        if (strcmp(s, "*") == 0) {
            *any = true;
            continue;
        }
        bool tok = s[0] != '\0';
        for (const char *p = s; *p != '\0' && tok; p++)
            tok = pt_h1_tchar[(unsigned char)*p];
        if (!tok) {
            pt_conf_error(c, item, "%s: \"%.100s\" is not a valid name", opt, s);
            rc = -1;
            continue;
        }
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", s);
    }
    *joined = pt_str_make(buf, n);
    return rc;
}

static int parse_max_age(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    int64_t *out = target;
    uint64_t v;
    if (n->kind == PT_CONF_SCALAR && !n->scalar.invalid && n->scalar.len > 0 &&
        strspn(n->scalar.value, "0123456789") == n->scalar.len) {
        if (pt_conf_get_uint(c, "max_age", n, 0, 86400 * 365, &v) != 0)
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    if (pt_conf_get_duration(c, "max_age", n, &v) != 0)
        return -1;
    *out = (int64_t)(v / 1000);
    return 0;
}

static int origins(struct pt_conf_ctx *c, const struct pt_conf_node *seq, struct cors *s)
{
    if (seq == NULL || pt_conf_is_null(seq)) {
        s->any_origin = true;
        return 0;
    }
    if (pt_conf_expect_seq(c, "origins", seq) != 0)
        return -1;
    if (seq->seq.n == 0) {
        pt_conf_error(c, seq, "origins: the list is empty (no origin would be allowed)");
        return -1;
    }
    s->origins = pt_arena_calloc(c->a, seq->seq.n * sizeof(*s->origins));
    if (s->origins == NULL)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < seq->seq.n; i++) {
        const char *o;
        if (pt_conf_get_string(c, "origins", seq->seq.items[i], &o) != 0) {
            rc = -1;
            continue;
        }
        if (strcmp(o, "*") == 0) {
            s->any_origin = true;
            continue;
        }
        if (strcmp(o, "null") == 0) {
            s->origins[s->norigins++] = PT_STR_LIT("null");
            continue;
        }
        const char *norm = origin_norm(c, seq->seq.items[i], o);
        if (norm == NULL) {
            rc = -1;
            continue;
        }
        s->origins[s->norigins++] = pt_str_cstr(norm);
    }
    return rc;
}

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    static const char default_methods[] = "GET, HEAD, PUT, PATCH, POST, DELETE";
    struct options o = {0};
    struct cors *s = pt_arena_calloc(c->a, sizeof(*s));
    if (s == NULL)
        return -1;
    *state = s;
    int rc = pt_conf_apply(c, keys, opts, &o, "cors", NULL);
    s->credentials = o.credentials;
    if (origins(c, o.origins, s) != 0)
        rc = -1;
    s->methods = PT_STR_LIT(default_methods);
    if (o.methods != NULL && !pt_conf_is_null(o.methods) &&
        token_list(c, "methods", o.methods, &s->methods, &s->methods_any) != 0)
        rc = -1;
    s->headers_reflect = o.headers == NULL || pt_conf_is_null(o.headers);
    if (!s->headers_reflect &&
        token_list(c, "headers", o.headers, &s->headers, &s->headers_any) != 0)
        rc = -1;
    bool expose_any = false;
    if (o.expose != NULL && !pt_conf_is_null(o.expose)) {
        if (token_list(c, "expose", o.expose, &s->expose, &expose_any) != 0)
            rc = -1;
        else if (expose_any && s->credentials) {
            pt_conf_error(c, o.expose,
                          "expose: \"*\" does not work with credentials: true (the "
                          "Fetch standard reads it as a header name); list the "
                          "headers");
            rc = -1;
        } else if (expose_any) {
            s->expose = PT_STR_LIT("*");
        }
    }
    s->max_age_s = -1;
    if (o.max_age != NULL && !pt_conf_is_null(o.max_age) &&
        parse_max_age(c, o.max_age, &s->max_age_s) != 0)
        rc = -1;
    if (s->max_age_s >= 0)
        snprintf(s->max_age_text, sizeof(s->max_age_text), "%" PRId64, s->max_age_s);
    s->vary = !s->any_origin || s->credentials;
    return rc;
}

const struct pt_plugin_ops pt_plugin_cors = {
    .name = "cors",
    .order = PT_ORDER_CORS,
    .configure = configure,
    .on_request = on_request,
    .on_response_head = on_response_head,
};
