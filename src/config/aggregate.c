/*
 * A route's `aggregate:` (SPEC §4, docs/composition.md) into struct
 * pt_aggregate (src/compose/plan.h).
 *
 * Beyond the key tables, the checks that need the whole composition:
 *   - each template parses, and its literal text makes sense where it goes
 *     (a body is JSON once its placeholders are filled; a path has no
 *     `.`/`..` segment);
 *   - each `{name...}` is a call key or a capture of every path of the
 *     route (messages point at the name inside the template);
 *   - the calls form no cycle (reported at the placeholder that closes it);
 *   - at most max_calls calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "compose/json.h"
#include "compose/plan.h"
#include "compose/template.h"
#include "http/h1.h"
#include "proxy/route.h"
#include "router/router.h"
#include "upstream/service.h"
#include "config/compile.h"
#include "config/snapshot.h"
#include "config/value.h"

#define MAX_KEY_LEN 64

struct agg_fields {
    uint64_t timeout_ms;
    int merge;
    unsigned max_calls;
    const struct pt_conf_node *calls, *expose_headers, *forward_headers;
};

static const char *const merge_names[] = {"group", "shallow", NULL};

static const struct pt_conf_key aggregate_keys[] = {
    PT_CONF_DURATION("timeout", struct agg_fields, timeout_ms, 1, PT_CONF_NO_MAX, "10s"),
    PT_CONF_ENUM("merge", struct agg_fields, merge, merge_names, "group"),
    PT_CONF_UINT("max_calls", struct agg_fields, max_calls, 1, PT_COMPOSE_MAX_CALLS, "16"),
    {.name = "calls",
     .type = PT_CONF_T_NODE,
     .offset = offsetof(struct agg_fields, calls),
     .required = true},
    PT_CONF_NODE("expose_headers", struct agg_fields, expose_headers),
    PT_CONF_NODE("forward_headers", struct agg_fields, forward_headers),
    {0},
};

struct call_fields {
    const char *key, *service, *method, *path;
    const struct pt_conf_node *query, *headers, *body, *forward_headers, *fields, *fallback;
    uint64_t timeout_ms, max_body_bytes;
    bool optional;
};

static const struct pt_conf_key call_keys[] = {
    PT_CONF_REQUIRED_STRING("key", struct call_fields, key),
    PT_CONF_REQUIRED_STRING("service", struct call_fields, service),
    PT_CONF_STRING("method", struct call_fields, method, "GET"),
    PT_CONF_REQUIRED_STRING("path", struct call_fields, path),
    PT_CONF_NODE("query", struct call_fields, query),
    PT_CONF_NODE("headers", struct call_fields, headers),
    PT_CONF_NODE("body", struct call_fields, body),
    PT_CONF_NODE("forward_headers", struct call_fields, forward_headers),
    PT_CONF_DURATION("timeout", struct call_fields, timeout_ms, 1, PT_CONF_NO_MAX, "0"),
    PT_CONF_SIZE("max_body_bytes", struct call_fields, max_body_bytes, 1, PT_CONF_NO_MAX, "4m"),
    PT_CONF_NODE("fallback", struct call_fields, fallback),
    PT_CONF_BOOL("optional", struct call_fields, optional, "false"),
    PT_CONF_NODE("fields", struct call_fields, fields),
    {0},
};

/* Where the first placeholder of call i that reads call j is (for cycle messages). */
struct ref_pos {
    const struct pt_conf_node *node;
    size_t off;
};

/* Everything the compile steps of one aggregate share. */
struct agg_build {
    struct pt_conf_ctx *c;
    struct pt_aggregate *agg;
    const char *route;
    const char *const *paths; /* the route's path patterns */
    size_t npaths;
    bool paths_ok;
    const struct pt_service **by_name; /* services sorted by name */
    const struct pt_conf_node **key_nodes;
    struct ref_pos *refs; /* ncalls * ncalls */
};

/* ---- small checks ---- */

static bool key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > MAX_KEY_LEN)
        return false;
    if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') || k[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        char ch = k[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Is name a capture of every path of the route?  (Invalid patterns were reported: yes.) */
static bool is_capture(const struct agg_build *b, struct pt_str name)
{
    char buf[MAX_KEY_LEN + 1];
    if (name.len > MAX_KEY_LEN || b->npaths == 0)
        return false;
    if (!b->paths_ok)
        return true;
    memcpy(buf, name.ptr, name.len);
    buf[name.len] = '\0';
    for (size_t i = 0; i < b->npaths; i++)
        if (pt_router_pattern_has_capture(b->paths[i], buf) == 0)
            return false;
    return true;
}

/* Is name a capture of any path of the route? */
static bool is_any_capture(const struct agg_build *b, const char *name)
{
    for (size_t i = 0; b->paths_ok && i < b->npaths; i++)
        if (pt_router_pattern_has_capture(b->paths[i], name) == 1)
            return true;
    return false;
}

static struct pt_str arena_str(struct pt_conf_ctx *c, const char *p, size_t n)
{
    return pt_arena_strdup_str(c->a, pt_str_make(p, n));
}

/* A list of header names into an arena array of views; reports at each bad item. */
static int header_names(struct pt_conf_ctx *c, const char *what, const struct pt_conf_node *n,
                        bool (*reserved)(struct pt_str), struct pt_str **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (pt_conf_is_null(n))
        return 0;
    if (pt_conf_expect_seq(c, what, n) != 0)
        return -1;
    if (n->seq.n == 0)
        return 0;
    struct pt_str *v = pt_arena_calloc(c->a, n->seq.n * sizeof(*v));
    if (v == NULL) {
        pt_conf_error(c, n, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n->seq.n; i++) {
        const char *s;
        const struct pt_conf_node *item = n->seq.items[i];
        if (pt_conf_get_string(c, what, item, &s) != 0) {
            rc = -1;
            continue;
        }
        struct pt_str name = pt_str_cstr(s);
        if (!pt_h1_is_token_cstr(s)) {
            pt_conf_error(c, item, "%s: \"%.100s\" is not a valid header name", what, s);
            rc = -1;
        } else if (reserved(name)) {
            pt_conf_error(c, item, "%s: %.100s is set by the gateway itself and cannot be listed",
                          what, s);
            rc = -1;
        } else {
            v[(*count)++] = name;
        }
    }
    *out = v;
    return rc;
}

/* ---- templates ---- */

static void bind_tpl(struct agg_build *b, struct pt_compose_call *self, struct pt_tpl *t,
                     const struct pt_conf_node *n, bool exact, const char *what);
static void check_probe(struct agg_build *b, const struct pt_tpl *t, const struct pt_conf_node *n,
                        const char *what);

/*
 * Parse text (the value of n, or, when !exact, text made from n such as a
 * map body) as a template of call, bind its names and check its literal
 * text.  0, or -1 after reporting.
 */
static int parse_tpl(struct agg_build *b, struct pt_compose_call *call,
                     const struct pt_conf_node *n, const char *what, struct pt_str text, bool exact,
                     enum pt_tpl_kind kind, struct pt_tpl *t)
{
    struct pt_tpl_error err;
    int rc = pt_tpl_parse(b->c->a, text, kind, t, &err);
    if (rc == PT_ERR_NOMEM) {
        pt_conf_error(b->c, n, "out of memory");
        return -1;
    }
    if (rc != 0) {
        if (exact)
            pt_conf_error_at(b->c, n, err.off, "%s: %s", what, err.msg);
        else
            pt_conf_error(b->c, n, "%s: %s (at \"%.40s\")", what, err.msg, text.ptr + err.off);
        return -1;
    }
    size_t before = b->c->d->nerrors;
    bind_tpl(b, call, t, n, exact, what);
    if (b->c->d->nerrors != before)
        return -1;
    check_probe(b, t, n, what);
    return b->c->d->nerrors != before ? -1 : 0;
}

/* Suggest a call key for an unknown name. */
static const char *suggest_key(const struct agg_build *b, struct pt_str name)
{
    char buf[MAX_KEY_LEN + 1];
    const char *keys[PT_COMPOSE_MAX_CALLS];
    size_t n = 0;
    if (name.len > MAX_KEY_LEN)
        return NULL;
    memcpy(buf, name.ptr, name.len);
    buf[name.len] = '\0';
    for (size_t i = 0; i < b->agg->ncalls && n < PT_COMPOSE_MAX_CALLS; i++)
        if (b->agg->calls[i].key != NULL)
            keys[n++] = b->agg->calls[i].key;
    return pt_conf_suggest(buf, keys, n);
}

/*
 * Bind every NAME reference of t (in call self) to a call result or a
 * capture, recording dependencies.  exact: offsets into t map to n's text.
 */
static void bind_tpl(struct agg_build *b, struct pt_compose_call *self, struct pt_tpl *t,
                     const struct pt_conf_node *n, bool exact, const char *what)
{
    struct pt_aggregate *agg = b->agg;
    for (size_t i = 0; i < t->nparts; i++) {
        struct pt_tpl_part *p = &t->parts[i];
        if (p->src != PT_TPL_REF)
            continue;
        size_t k = 0;
        while (k < agg->ncalls && !(agg->calls[k].key != NULL && pt_str_eq(agg->keys[k], p->text)))
            k++;
        size_t at = p->off + 1;
        if (k < agg->ncalls) {
            if (k == self->index) {
                if (exact)
                    pt_conf_error_at(b->c, n, at, "%s: a call cannot use its own result ({%.*s})",
                                     what, PT_STR_FMT(p->text));
                else
                    pt_conf_error(b->c, n, "%s: a call cannot use its own result ({%.*s})", what,
                                  PT_STR_FMT(p->text));
                continue;
            }
            p->src = PT_TPL_RESULT;
            p->call = (unsigned)k;
            if (!(self->deps >> k & 1)) {
                self->deps |= (uint64_t)1 << k;
                b->refs[self->index * agg->ncalls + k] = (struct ref_pos){n, exact ? at : SIZE_MAX};
            }
            continue;
        }
        bool capture = is_capture(b, p->text);
        char msg[300];
        if (capture && p->nsteps == 0) {
            p->src = PT_TPL_CAPTURE;
            continue;
        }
        if (capture) {
            snprintf(msg, sizeof(msg),
                     "%s: {%.*s} is a capture of the route's path: it has no "
                     "members or indexes",
                     what, (int)(p->text.len > 64 ? 64 : p->text.len), p->text.ptr);
        } else {
            const char *hint = suggest_key(b, p->text);
            snprintf(msg, sizeof(msg),
                     "%s: unknown name \"%.*s\": not a call key of this aggregate nor a capture "
                     "of every path of the route%s%s%s",
                     what, (int)(p->text.len > 64 ? 64 : p->text.len), p->text.ptr,
                     hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "");
        }
        if (exact)
            pt_conf_error_at(b->c, n, at, "%s", msg);
        else
            pt_conf_error(b->c, n, "%s", msg);
    }
}

/* After binding: check what the literal text makes of a path or a body. */
static void check_probe(struct agg_build *b, const struct pt_tpl *t, const struct pt_conf_node *n,
                        const char *what)
{
    struct pt_jbuf probe;
    pt_jbuf_init(&probe);
    if (pt_tpl_probe(t, &probe) != 0) {
        pt_conf_error(b->c, n, "out of memory");
    } else if (t->kind == PT_TPL_PATH && pt_tpl_has_dot_segment(pt_str_make(probe.p, probe.len))) {
        pt_conf_error(b->c, n, "%s: must not contain '.' or '..' segments", what);
    } else if (t->kind == PT_TPL_BODY) {
        json_error_t err;
        json_t *v = json_loadb(probe.p != NULL ? probe.p : "", probe.len,
                               JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (v == NULL)
            pt_conf_error(b->c, n,
                          "%s: not JSON once its placeholders are filled (%s at character "
                          "%d); write placeholders without quotes where a JSON value goes",
                          what, err.text, err.position);
        json_decref(v);
    }
    pt_jbuf_free(&probe);
}

/* ---- one call ---- */

static int cmp_name_key(const void *key, const void *elem)
{
    const struct pt_service *const *s = elem;
    return strcmp(key, (*s)->name);
}

static void resolve_service(struct agg_build *b, struct pt_compose_call *call,
                            const struct pt_conf_node *n, const char *name)
{
    struct pt_conf_ctx *c = b->c;
    size_t ns = c->snap->nservices;
    const struct pt_service **hit =
        b->by_name != NULL ? bsearch(name, b->by_name, ns, sizeof(*b->by_name), cmp_name_key)
                           : NULL;
    if (hit != NULL) {
        call->service = *hit;
        return;
    }
    const char *hint = NULL;
    const char **names = ns <= 1000 ? malloc((ns + 1) * sizeof(*names)) : NULL;
    if (names != NULL) {
        for (size_t i = 0; i < ns; i++)
            names[i] = c->snap->services[i]->name;
        hint = pt_conf_suggest(name, names, ns);
    }
    pt_conf_error(c, n, "service: unknown service \"%.100s\"%s%s%s", name,
                  hint      ? " (did you mean \""
                  : ns == 0 ? " (no services are defined)"
                            : "",
                  hint ? hint : "", hint ? "\"?)" : "");
    free(names);
}

static void compile_method(struct agg_build *b, struct pt_compose_call *call,
                           const struct pt_conf_node *n, const char *m)
{
    bool upper = pt_h1_is_token_cstr(m);
    for (const char *p = m; *p != '\0'; p++)
        upper = upper && !(*p >= 'a' && *p <= 'z');
    if (!upper) {
        pt_conf_error(b->c, n, "method: \"%.100s\" is not an upper-case method name", m);
        return;
    }
    call->method = pt_str_cstr(m);
    call->method_id = pt_method_from_str(call->method);
    if (call->method_id == PT_METHOD_CONNECT)
        pt_conf_error(b->c, n, "method: CONNECT cannot be used in a composition");
}

static void compile_query(struct agg_build *b, struct pt_compose_call *call,
                          const struct pt_conf_node *n)
{
    struct pt_conf_ctx *c = b->c;
    if (pt_conf_is_null(n) || pt_conf_expect_map(c, "query", n) != 0 || n->map.n == 0)
        return;
    call->query = pt_arena_calloc(c->a, n->map.n * sizeof(*call->query));
    if (call->query == NULL) {
        pt_conf_error(c, n, "out of memory");
        return;
    }
    for (size_t i = 0; i < n->map.n; i++) {
        const struct pt_conf_pair *p = &n->map.pairs[i];
        struct pt_compose_query *q = &call->query[call->nquery];
        const char *v;
        if (pt_conf_is_null(p->value)) {
            pt_conf_error(c, p->value, "query: %.100s: a value is required (\"\" for an empty one)",
                          p->key->scalar.raw);
            continue;
        }
        if (pt_conf_get_string(c, "query", p->value, &v) != 0)
            continue;
        struct pt_jbuf enc;
        pt_jbuf_init(&enc);
        pt_tpl_percent_encode(&enc, pt_str_make(p->key->scalar.raw, p->key->scalar.raw_len));
        q->name = arena_str(c, enc.p != NULL ? enc.p : "", enc.len);
        pt_jbuf_free(&enc);
        if (q->name.ptr == NULL) {
            pt_conf_error(c, n, "out of memory");
            return;
        }
        if (parse_tpl(b, call, p->value, "query", pt_str_make(v, strlen(v)),
                      p->value->scalar.value == p->value->scalar.raw, PT_TPL_QUERY, &q->value) != 0)
            continue;
        q->omit_if_missing =
            q->value.nparts == 1 && q->value.nrefs == 1 && !q->value.parts[0].has_def;
        call->nquery++;
    }
}

static void compile_headers(struct agg_build *b, struct pt_compose_call *call,
                            const struct pt_conf_node *n)
{
    struct pt_conf_ctx *c = b->c;
    if (pt_conf_is_null(n) || pt_conf_expect_map(c, "headers", n) != 0 || n->map.n == 0)
        return;
    call->headers = pt_arena_calloc(c->a, n->map.n * sizeof(*call->headers));
    if (call->headers == NULL) {
        pt_conf_error(c, n, "out of memory");
        return;
    }
    for (size_t i = 0; i < n->map.n; i++) {
        const struct pt_conf_pair *p = &n->map.pairs[i];
        const char *name = p->key->scalar.raw, *v;
        struct pt_compose_header *h = &call->headers[call->nheaders];
        if (!pt_h1_is_token_cstr(name)) {
            pt_conf_error(c, p->key, "headers: \"%.100s\" is not a valid header name", name);
            continue;
        }
        if (pt_compose_request_header_reserved(pt_str_cstr(name))) {
            pt_conf_error(c, p->key, "headers: %.100s is set by the gateway itself", name);
            continue;
        }
        if (pt_conf_is_null(p->value)) {
            pt_conf_error(c, p->value, "headers: %.100s: a value is required", name);
            continue;
        }
        if (pt_conf_get_string(c, "headers", p->value, &v) != 0)
            continue;
        h->name = pt_str_cstr(name);
        if (parse_tpl(b, call, p->value, "headers", pt_str_make(v, strlen(v)),
                      p->value->scalar.value == p->value->scalar.raw, PT_TPL_HEADER,
                      &h->value) != 0)
            continue;
        if (pt_str_case_eq_lit(h->name, "content-type"))
            call->body_has_type = true;
        call->nheaders++;
    }
}

/* body: a string template, or a map / list written as YAML (turned into JSON text first). */
static bool compile_body(struct agg_build *b, struct pt_compose_call *call,
                         const struct pt_conf_node *n)
{
    struct pt_conf_ctx *c = b->c;
    if (pt_conf_is_null(n))
        return true;
    struct pt_str text;
    bool exact = false;
    if (n->kind == PT_CONF_SCALAR) {
        if (n->scalar.invalid)
            return false;
        text = pt_str_make(n->scalar.value, n->scalar.len);
        exact = n->scalar.value == n->scalar.raw;
    } else {
        json_t *j = pt_conf_node_to_json(n, false);
        struct pt_jbuf out;
        pt_jbuf_init(&out);
        if (j == NULL || pt_json_dump(j, &out) != 0) {
            json_decref(j);
            pt_jbuf_free(&out);
            pt_conf_error(c, n, "out of memory");
            return false;
        }
        json_decref(j);
        text = arena_str(c, out.p, out.len);
        pt_jbuf_free(&out);
        if (text.ptr == NULL) {
            pt_conf_error(c, n, "out of memory");
            return false;
        }
    }
    if (parse_tpl(b, call, n, "body", text, exact, PT_TPL_BODY, &call->body) != 0)
        return false;
    call->has_body = true;
    return true;
}

static void compile_fallback(struct agg_build *b, struct pt_compose_call *call,
                             const struct pt_conf_node *n)
{
    json_t *j = pt_conf_is_null(n) ? json_null() : pt_conf_node_to_json(n, false);
    struct pt_jbuf out;
    pt_jbuf_init(&out);
    if (j == NULL || pt_json_dump(j, &out) != 0 ||
        (call->fallback = arena_str(b->c, out.p, out.len)).ptr == NULL)
        pt_conf_error(b->c, n, "out of memory");
    else
        call->has_fallback = true;
    json_decref(j);
    pt_jbuf_free(&out);
}

static void compile_fields(struct agg_build *b, struct pt_compose_call *call,
                           const struct pt_conf_node *n)
{
    struct pt_conf_ctx *c = b->c;
    if (pt_conf_is_null(n) || pt_conf_expect_seq(c, "fields", n) != 0 || n->seq.n == 0)
        return;
    const char **paths = pt_arena_calloc(c->a, n->seq.n * sizeof(*paths));
    if (paths == NULL) {
        pt_conf_error(c, n, "out of memory");
        return;
    }
    for (size_t i = 0; i < n->seq.n; i++)
        if (pt_conf_get_string(c, "fields", n->seq.items[i], &paths[i]) != 0)
            return;
    size_t bad = 0;
    call->fields = pt_fields_compile(c->a, paths, n->seq.n, &bad);
    if (call->fields == NULL && bad < n->seq.n)
        pt_conf_error(c, n->seq.items[bad],
                      "fields: \"%.100s\" is not a member path (names joined by '.', e.g. "
                      "customer.name)",
                      paths[bad]);
    else if (call->fields == NULL)
        pt_conf_error(c, n, "out of memory");
}

/* Append names not already in the call's list (case-insensitive). */
static void add_forward(struct pt_compose_call *call, const struct pt_str *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t k = 0; k < call->nforward && !dup; k++)
            dup = pt_str_case_eq(call->forward[k], names[i]);
        if (!dup)
            call->forward[call->nforward++] = names[i];
    }
}

/* First pass: the call's key, so that templates can refer to any call. */
static void compile_key(struct agg_build *b, struct pt_compose_call *call,
                        const struct pt_conf_node *n)
{
    struct pt_conf_ctx *c = b->c;
    const struct pt_conf_node *kn = pt_conf_map_get(n, "key");
    const char *k;
    if (kn == NULL || pt_conf_is_null(kn) || pt_conf_get_string(c, "key", kn, &k) != 0)
        return; /* reported by the table */
    if (!key_ok(k)) {
        pt_conf_error(c, kn,
                      "key: \"%.100s\" must be 1 to 64 characters of A-Z a-z 0-9 _ -, starting "
                      "with a letter or '_'",
                      k);
        return;
    }
    if (pt_tpl_reserved(pt_str_cstr(k))) {
        pt_conf_error(c, kn, "key: \"%s\" is reserved for {%s.NAME} placeholders", k, k);
        return;
    }
    if (is_any_capture(b, k)) {
        pt_conf_error(c, kn,
                      "key: \"%.100s\" is also a capture of the route's path; rename one so "
                      "that {%.100s} means one thing",
                      k, k);
        return;
    }
    for (size_t i = 0; i < call->index; i++) {
        if (b->agg->calls[i].key != NULL && strcmp(b->agg->calls[i].key, k) == 0) {
            pt_conf_error(c, kn, "key: \"%s\" is already used at line %d", k,
                          b->key_nodes[i]->line);
            return;
        }
    }
    call->key = k;
    b->agg->keys[call->index] = pt_str_cstr(k);
    b->key_nodes[call->index] = kn;
}

/* Second pass: every other key; templates are bound as they are parsed. */
static void compile_call(struct agg_build *b, struct pt_compose_call *call,
                         const struct pt_conf_node *n, const struct pt_str *agg_fwd,
                         size_t nagg_fwd, const char *where)
{
    struct pt_conf_ctx *c = b->c;
    struct call_fields f = {0};
    char sub[200];
    snprintf(sub, sizeof(sub), "%s.calls[%u]", where, call->index + 1);
    if (pt_conf_is_null(n) || n->kind != PT_CONF_MAP) {
        pt_conf_error(c, n, "calls: each call must be a map with key, service and path, got %s",
                      pt_conf_kind_name(n));
        return;
    }
    pt_conf_apply(c, call_keys, n, &f, sub, NULL);
    call->timeout_ms = f.timeout_ms;
    call->max_body_bytes = f.max_body_bytes;
    call->optional = f.optional;
    if (f.service != NULL)
        resolve_service(b, call, pt_conf_map_get(n, "service"), f.service);
    call->method = PT_STR_LIT("GET");
    call->method_id = PT_METHOD_GET;
    if (f.method != NULL)
        compile_method(b, call, pt_conf_map_get(n, "method"), f.method);
    if (f.path != NULL) {
        const struct pt_conf_node *pn = pt_conf_map_get(n, "path");
        parse_tpl(b, call, pn, "path", pt_str_make(pn->scalar.value, pn->scalar.len),
                  pn->scalar.value == pn->scalar.raw, PT_TPL_PATH, &call->path);
    }
    compile_query(b, call, f.query);
    compile_headers(b, call, f.headers);
    compile_body(b, call, f.body);
    struct pt_str *fwd = NULL;
    size_t nfwd = 0;
    header_names(c, "forward_headers", f.forward_headers, pt_compose_request_header_reserved, &fwd,
                 &nfwd);
    if (nfwd + nagg_fwd > 0) {
        call->forward = pt_arena_calloc(c->a, (nfwd + nagg_fwd) * sizeof(*call->forward));
        if (call->forward == NULL) {
            pt_conf_error(c, n, "out of memory");
        } else {
            add_forward(call, agg_fwd, nagg_fwd);
            add_forward(call, fwd, nfwd);
        }
    }
    const struct pt_conf_node *fb = pt_conf_map_get(n, "fallback");
    if (fb != NULL) {
        if (f.optional)
            pt_conf_error(c, fb,
                          "fallback: a call with a fallback cannot also be optional "
                          "(the fallback already replaces a failed result)");
        else
            compile_fallback(b, call, fb);
    }
    compile_fields(b, call, f.fields);
}

/* ---- the graph ---- */

static void check_cycles(struct agg_build *b)
{
    struct pt_aggregate *agg = b->agg;
    size_t n = agg->ncalls;
    uint64_t deps[PT_COMPOSE_MAX_CALLS];
    unsigned cycle[PT_COMPOSE_MAX_CALLS];
    size_t len;
    for (size_t i = 0; i < n; i++)
        deps[i] = agg->calls[i].deps;
    if (!pt_compose_find_cycle(deps, n, cycle, &len))
        return;
    char msg[600];
    size_t m = (size_t)snprintf(msg, sizeof(msg), "calls form a cycle (each reads the next): ");
    for (size_t i = 0; i <= len && m < sizeof(msg) - 80; i++)
        m += (size_t)snprintf(msg + m, sizeof(msg) - m, "%s%s", i ? " -> " : "",
                              agg->calls[cycle[i % len]].key);
    /* at the placeholder in the last call of the cycle that reads the first */
    unsigned from = cycle[len - 1], to = cycle[0];
    struct ref_pos at = b->refs[from * n + to];
    if (at.node == NULL)
        pt_conf_error(b->c, b->key_nodes[from], "%s", msg);
    else if (at.off != SIZE_MAX)
        pt_conf_error_at(b->c, at.node, at.off, "%s", msg);
    else
        pt_conf_error(b->c, at.node, "%s", msg);
}

void pt__conf_aggregate(struct pt_conf_ctx *c, struct pt_route *r, const struct pt_conf_node *n,
                        const char *const *paths, size_t npaths, bool paths_ok,
                        const struct pt_service **services_by_name, const char *where)
{
    struct agg_fields f = {0};
    char sub[160];
    snprintf(sub, sizeof(sub), "%s.aggregate", where);
    if (n->kind != PT_CONF_MAP) {
        pt_conf_error(c, n, "aggregate: expected a map with calls, got %s", pt_conf_kind_name(n));
        return;
    }
    size_t before = c->d->nerrors;
    pt_conf_apply(c, aggregate_keys, n, &f, sub, NULL);
    if (f.calls == NULL)
        return;
    if (f.calls->kind != PT_CONF_SEQ || f.calls->seq.n == 0) {
        pt_conf_error(c, f.calls, "calls: expected a list of at least one call");
        return;
    }
    size_t ncalls = f.calls->seq.n;
    if (ncalls > f.max_calls) {
        pt_conf_error(c, f.calls->seq.items[f.max_calls],
                      "calls: %zu calls, more than max_calls (%u)%s", ncalls, f.max_calls,
                      f.max_calls < PT_COMPOSE_MAX_CALLS ? ""
                                                         : ", the most a composition may make");
        if (ncalls > PT_COMPOSE_MAX_CALLS)
            return;
    }
    struct pt_aggregate *agg = pt_arena_calloc(c->a, sizeof(*agg));
    struct agg_build b = {.c = c,
                          .agg = agg,
                          .route = r->name,
                          .paths = paths,
                          .npaths = npaths,
                          .paths_ok = paths_ok,
                          .by_name = services_by_name};
    b.key_nodes = calloc(ncalls, sizeof(*b.key_nodes));
    b.refs = calloc(ncalls * ncalls, sizeof(*b.refs));
    if (agg != NULL) {
        agg->calls = pt_arena_calloc(c->a, ncalls * sizeof(*agg->calls));
        agg->keys = pt_arena_calloc(c->a, ncalls * sizeof(*agg->keys));
    }
    if (agg == NULL || agg->calls == NULL || agg->keys == NULL || b.key_nodes == NULL ||
        b.refs == NULL) {
        pt_conf_error(c, n, "out of memory");
        goto out;
    }
    agg->timeout_ms = f.timeout_ms;
    agg->merge = (enum pt_merge_mode)f.merge;
    agg->max_calls = f.max_calls;
    agg->ncalls = ncalls;
    header_names(c, "expose_headers", f.expose_headers, pt_compose_response_header_reserved,
                 &agg->expose, &agg->nexpose);
    struct pt_str *fwd = NULL;
    size_t nfwd = 0;
    header_names(c, "forward_headers", f.forward_headers, pt_compose_request_header_reserved, &fwd,
                 &nfwd);
    for (size_t i = 0; i < ncalls; i++) {
        agg->calls[i].index = (unsigned)i;
        if (f.calls->seq.items[i]->kind == PT_CONF_MAP)
            compile_key(&b, &agg->calls[i], f.calls->seq.items[i]);
    }
    for (size_t i = 0; i < ncalls; i++)
        compile_call(&b, &agg->calls[i], f.calls->seq.items[i], fwd, nfwd, sub);
    check_cycles(&b);
    for (size_t i = 0; i < ncalls; i++) {
        const struct pt_compose_call *call = &agg->calls[i];
        if (call->timeout_ms > agg->timeout_ms)
            pt_conf_warn(c, pt_conf_map_get(f.calls->seq.items[i], "timeout"),
                         "timeout: longer than the composition's timeout (it cannot take "
                         "effect)");
    }
    if (c->d->nerrors == before)
        r->aggregate = agg;
out:
    free(b.key_nodes);
    free(b.refs);
}
