/*
 * The admin API's endpoints (SPEC §6, docs/admin-api.md).
 *
 *   GET  /                                   dashboard placeholder (no token)
 *   GET  /status  /ready  /metrics
 *   GET  /config, PUT /config
 *   GET  /routes /services /consumers
 *   GET|PUT|DELETE /routes/NAME /services/NAME /consumers/NAME
 *   GET  /routes/explain?method=&host=&path=&header.NAME=
 *   GET  /services/NAME/health
 *
 * Every handler works on a reference to the snapshot in use, taken when
 * the request starts, so a change applied meanwhile cannot free what it
 * reads.  Changes are made to the configuration as written (the raw tree,
 * ${NAME} unexpanded) and go through the host's apply, which validates the
 * whole new configuration exactly like a reload and, on success, writes it
 * back to the file and publishes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/arena.h"
#include "config/node.h"
#include "compose/plan.h"
#include "config/snapshot.h"
#include "http/problem.h"
#include "http/reqid.h"
#include "plugins/cache.h"
#include "proxy/route.h"
#include "core/loop.h"
#include "upstream/health.h"
#include "upstream/service.h"
#include "admin/admin-int.h"

#define MAX_SEGMENTS 4

/* ---- responses ---- */

void pt_admin_json(struct pt_admin_resp *resp, int status, json_t *j)
{
    char *text = j != NULL ? json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    if (text == NULL) {
        resp->status = 500;
        resp->content_type = "application/problem+json";
        static const char oom[] = "{\"type\": \"urn:portico:error:internal\", \"title\": "
                                  "\"Internal Server Error\", \"status\": 500}\n";
        resp->body = pt_strndup(oom, sizeof(oom) - 1);
        resp->len = resp->body != NULL ? sizeof(oom) - 1 : 0;
        resp->close = true;
        return;
    }
    size_t n = strlen(text);
    char *body = pt_realloc(text, n + 2);
    if (body == NULL) {
        free(text);
        resp->status = 500;
        resp->close = true;
        return;
    }
    body[n] = '\n';
    body[n + 1] = '\0';
    resp->status = status;
    if (resp->content_type == NULL)
        resp->content_type = "application/json";
    resp->body = body;
    resp->len = n + 1;
}

static void add_header(struct pt_admin_resp *resp, const char *name, const char *value)
{
    size_t used = strlen(resp->extra);
    snprintf(resp->extra + used, sizeof(resp->extra) - used, "%s: %s\r\n", name, value);
}

/* A JSON string from bytes that may not be UTF-8 (names, paths, messages). */
static json_t *jstr(const char *p, size_t n)
{
    json_t *j = json_stringn(p, n);
    if (j != NULL)
        return j;
    char *copy = pt_malloc(n + 1);
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)p[i] < 0x80 && p[i] != '\0' ? p[i] : '?';
    j = json_stringn(copy, n);
    free(copy);
    return j;
}

static json_t *problem_object(int status, const char *type, const char *detail, char *id)
{
    char t[128];
    snprintf(t, sizeof(t), "urn:portico:error:%s",
             type != NULL ? type : pt_problem_default_type(status));
    pt_reqid_generate(id);
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string(t));
    json_object_set_new(j, "title", json_string(pt_http_reason(status)));
    json_object_set_new(j, "status", json_integer(status));
    if (detail != NULL && detail[0] != '\0')
        json_object_set_new(j, "detail", jstr(detail, strlen(detail)));
    json_object_set_new(j, "request_id", json_stringn(id, PT_REQID_GEN_LEN));
    return j;
}

static void send_problem(struct pt_admin_resp *resp, int status, json_t *j, const char *id)
{
    char v[PT_REQID_GEN_LEN + 1];
    memcpy(v, id, PT_REQID_GEN_LEN);
    v[PT_REQID_GEN_LEN] = '\0';
    add_header(resp, "X-Request-Id", v);
    resp->content_type = "application/problem+json";
    pt_admin_json(resp, status, j);
}

void pt_admin_problem(struct pt_admin_resp *resp, int status, const char *type, const char *detail,
                      json_t *errors)
{
    char id[PT_REQID_GEN_LEN];
    json_t *j = problem_object(status, type, detail, id);
    if (errors != NULL)
        json_object_set_new(j, "errors", errors);
    send_problem(resp, status, j, id);
}

/*
 * "FILE:LINE:COL: message" with FILE reduced to its last component: an
 * answer never shows where the gateway's files live (SPEC §7).
 */
static json_t *diag_line(const struct pt_diag_entry *e)
{
    struct pt_diag_entry copy = *e;
    const char *slash = e->file != NULL ? strrchr(e->file, '/') : NULL;
    if (slash != NULL && slash[1] != '\0')
        copy.file = (char *)slash + 1;
    char *line = pt_diag_format(&copy);
    json_t *j = line != NULL ? jstr(line, strlen(line)) : NULL;
    free(line);
    return j;
}

json_t *pt_admin_diag_errors(const struct pt_diag *d)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < d->n; i++) {
        if (!d->entries[i].is_error)
            continue;
        json_array_append_new(a, diag_line(&d->entries[i]));
    }
    if (a != NULL && d->ndropped > 0) {
        char more[64];
        snprintf(more, sizeof(more), "... and %zu more", d->ndropped);
        json_array_append_new(a, json_string(more));
    }
    return a;
}

static json_t *diag_warnings(const struct pt_diag *d)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < d->n; i++) {
        if (d->entries[i].is_error)
            continue;
        json_array_append_new(a, diag_line(&d->entries[i]));
    }
    return a;
}

static void method_not_allowed(struct pt_admin_resp *resp, const char *allow)
{
    char detail[128];
    snprintf(detail, sizeof(detail), "allowed: %s", allow);
    pt_admin_problem(resp, 405, NULL, detail, NULL);
    add_header(resp, "Allow", allow);
}

static void not_found(struct pt_admin_resp *resp, const char *what, const char *name)
{
    char detail[256];
    snprintf(detail, sizeof(detail), "no %s named \"%.150s\"", what, name);
    pt_admin_problem(resp, 404, NULL, detail, NULL);
}

static void not_found_path(struct pt_admin_resp *resp, struct pt_str path)
{
    char detail[300];
    snprintf(detail, sizeof(detail), "no admin endpoint %.*s (see docs/admin-api.md)",
             (int)(path.len > 200 ? 200 : path.len), path.ptr);
    pt_admin_problem(resp, 404, NULL, detail, NULL);
}

/* ---- authorisation ---- */

/* Compare digests so that neither the content nor the length of the token leaks through timing. */
static bool token_ok(struct pt_str given, const char *token)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)given.ptr, given.len, a);
    SHA256((const unsigned char *)token, strlen(token), b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

static bool authorised(const struct pt_snapshot *s, const struct pt_admin_req *req)
{
    const char *token = s->admin.token;
    if (token == NULL || token[0] == '\0')
        return true;
    const struct pt_h1_header *h =
        pt_h1_find_header(req->headers, req->nheaders, PT_STR_LIT("Authorization"));
    if (h == NULL)
        return false;
    struct pt_str v = h->value;
    if (v.len < 7 || !pt_str_case_eq_lit(pt_str_make(v.ptr, 6), "bearer") || v.ptr[6] != ' ')
        return false;
    return token_ok(pt_str_trim_ows(pt_str_make(v.ptr + 7, v.len - 7)), token);
}

/* ---- status, ready, metrics, dashboard ---- */

static void get_status(const struct pt_admin_api *api, struct pt_admin_resp *resp)
{
    struct pt_admin_status st;
    api->host->status(api->ctx, &st);
    json_t *j = json_object();
    json_object_set_new(j, "version", json_string(PT_VERSION));
    json_object_set_new(j, "uptime_s", json_integer((json_int_t)st.uptime_s));
    json_object_set_new(j, "config_version", json_integer((json_int_t)st.config_version));
    json_object_set_new(j, "workers", json_integer(st.workers));
    json_object_set_new(j, "connections", json_integer(st.connections));
    pt_admin_json(resp, 200, j);
}

static void get_ready(const struct pt_admin_api *api, struct pt_admin_resp *resp)
{
    struct pt_admin_status st;
    api->host->status(api->ctx, &st);
    if (st.ready && !st.draining) {
        json_t *j = json_object();
        json_object_set_new(j, "ready", json_true());
        pt_admin_json(resp, 200, j);
        return;
    }
    char id[PT_REQID_GEN_LEN];
    char why[192];
    if (st.draining)
        snprintf(why, sizeof(why), "draining: the gateway is stopping");
    else if (st.waiting_for != NULL)
        snprintf(why, sizeof(why), "starting: waiting for the first DNS answer for service %.100s",
                 st.waiting_for);
    else
        snprintf(why, sizeof(why), "starting: the listeners are not up yet");
    json_t *j = problem_object(503, "not-ready", why, id);
    json_object_set_new(j, "ready", json_false());
    send_problem(resp, 503, j, id);
}

static void get_metrics(const struct pt_admin_api *api, struct pt_admin_resp *resp)
{
    struct pt_buf b;
    pt_buf_init(&b);
    if (api->host->metrics(api->ctx, &b) != 0) {
        pt_buf_free(&b);
        pt_admin_problem(resp, 500, NULL, "out of memory", NULL);
        return;
    }
    resp->len = pt_buf_len(&b);
    resp->body = pt_malloc(resp->len + 1);
    if (resp->body == NULL) {
        pt_buf_free(&b);
        resp->len = 0;
        pt_admin_problem(resp, 500, NULL, "out of memory", NULL);
        return;
    }
    memcpy(resp->body, pt_buf_head(&b), resp->len);
    pt_buf_free(&b);
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void get_dashboard(struct pt_admin_resp *resp)
{
    static const char page[] =
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Portico</title></head>\n"
        "<body><h1>Portico</h1><p>The dashboard is not built yet. The admin API answers on "
        "<a href=\"/status\">/status</a>, <a href=\"/routes\">/routes</a>, "
        "<a href=\"/services\">/services</a>, <a href=\"/config\">/config</a> and "
        "<a href=\"/metrics\">/metrics</a> (with <code>Authorization: Bearer TOKEN</code> when "
        "admin.token is set).</p></body></html>\n";
    resp->status = 200;
    resp->content_type = "text/html; charset=utf-8";
    resp->body = pt_strndup(page, sizeof(page) - 1);
    resp->len = resp->body != NULL ? sizeof(page) - 1 : 0;
}

/* ---- configuration ---- */

static bool draining(const struct pt_admin_api *api)
{
    struct pt_admin_status st;
    api->host->status(api->ctx, &st);
    return st.draining;
}

static uint64_t config_version(const struct pt_admin_api *api)
{
    struct pt_admin_status st;
    api->host->status(api->ctx, &st);
    return st.config_version;
}

/*
 * Apply text; on failure answer fail_status with every error and return
 * false.  On success *warnings (when not NULL) gets the warnings.
 */
static bool apply(const struct pt_admin_api *api, const char *text, size_t len, int fail_status,
                  struct pt_admin_resp *resp, json_t **warnings)
{
    struct pt_diag d;
    pt_diag_init(&d);
    int rc = api->host->apply(api->ctx, text, len, &d);
    if (rc == 0 && warnings != NULL)
        *warnings = diag_warnings(&d);
    if (rc != 0) {
        char detail[128];
        if (rc == -1)
            snprintf(detail, sizeof(detail),
                     "the configuration is invalid (%zu error%s); nothing "
                     "was changed",
                     d.nerrors, d.nerrors == 1 ? "" : "s");
        else
            snprintf(detail, sizeof(detail),
                     "the configuration is valid but could not be "
                     "applied");
        pt_admin_problem(resp, rc == -1 ? fail_status : 500,
                         rc == -1 ? "invalid-config" : "apply-failed", detail,
                         pt_admin_diag_errors(&d));
    }
    pt_diag_free(&d);
    return rc == 0;
}

static void get_config(const struct pt_snapshot *s, struct pt_admin_resp *resp)
{
    json_t *j = pt_conf_node_to_json(s->tree, true);
    if (j == NULL) {
        pt_admin_problem(resp, 500, NULL, "out of memory", NULL);
        return;
    }
    pt_admin_json(resp, 200, j);
}

static void put_config(const struct pt_admin_api *api, const struct pt_admin_req *req,
                       struct pt_admin_resp *resp)
{
    json_t *warnings = NULL;
    if (!apply(api, req->body.ptr != NULL ? req->body.ptr : "", req->body.len, 400, resp,
               &warnings))
        return;
    json_t *j = json_object();
    json_object_set_new(j, "config_version", json_integer((json_int_t)config_version(api)));
    json_object_set_new(j, "warnings", warnings != NULL ? warnings : json_array());
    pt_admin_json(resp, 200, j);
}

/* ---- routes, services, consumers ---- */

static const char *const kind_one[PT_ADMIN_KIND_COUNT] = {"route", "service", "consumer"};

/* {"name", "config", "compiled"} for object i; NULL on ENOMEM */
static json_t *object_json(const struct pt_snapshot *s, enum pt_admin_kind k, long i,
                           const char *name)
{
    const struct pt_conf_node *n = pt_admin_object(s, k, i);
    json_t *j = json_object();
    json_object_set_new(j, "name", jstr(name, strlen(name)));
    json_object_set_new(j, "config", pt_conf_node_to_json(n, true));
    if (k == PT_ADMIN_ROUTES && (size_t)i < s->nroutes)
        json_object_set_new(j, "compiled", pt_admin_route_facts(s, (size_t)i));
    else if (k == PT_ADMIN_SERVICES && (size_t)i < s->nservices)
        json_object_set_new(j, "compiled", pt_admin_service_facts(s, (size_t)i));
    return j;
}

/* The effective name of object i (routes: route-N when unnamed). */
static const char *object_name(const struct pt_snapshot *s, enum pt_admin_kind k, long i, char *buf,
                               size_t size)
{
    if (k == PT_ADMIN_ROUTES && (size_t)i < s->nroutes)
        return s->routes[i]->name;
    if (k == PT_ADMIN_SERVICES && (size_t)i < s->nservices)
        return s->services[i]->name;
    const struct pt_conf_node *n = pt_admin_object(s, k, i);
    const struct pt_conf_node *nm = pt_conf_map_get(n, "name");
    if (nm != NULL && nm->kind == PT_CONF_SCALAR)
        return nm->scalar.value;
    snprintf(buf, size, "%s-%ld", kind_one[k], i + 1);
    return buf;
}

static void list_objects(const struct pt_snapshot *s, enum pt_admin_kind k,
                         struct pt_admin_resp *resp)
{
    json_t *a = json_array();
    const struct pt_conf_node *sec = pt_conf_map_get(s->tree, pt_admin_kind_key(k));
    size_t n = 0;
    if (sec != NULL && sec->kind == PT_CONF_SEQ)
        n = sec->seq.n;
    else if (sec != NULL && sec->kind == PT_CONF_MAP)
        n = sec->map.n;
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        const char *name = object_name(s, k, (long)i, buf, sizeof(buf));
        json_array_append_new(a, object_json(s, k, (long)i, name));
    }
    json_t *j = json_object();
    json_object_set_new(j, pt_admin_kind_key(k), a);
    pt_admin_json(resp, 200, j);
}

static void get_object(const struct pt_snapshot *s, enum pt_admin_kind k, const char *name,
                       struct pt_admin_resp *resp)
{
    long i = pt_admin_find(s, k, name);
    if (i < 0) {
        not_found(resp, kind_one[k], name);
        return;
    }
    pt_admin_json(resp, 200, object_json(s, k, i, name));
}

/* Emit the edited tree and apply it.  true when applied (resp untouched). */
static bool apply_tree(const struct pt_admin_api *api, const struct pt_conf_node *root,
                       int fail_status, struct pt_admin_resp *resp)
{
    char *text;
    size_t len;
    if (pt_admin_emit_yaml(root, &text, &len) != 0) {
        pt_admin_problem(resp, 500, NULL, "the configuration could not be written as YAML", NULL);
        return false;
    }
    bool ok = apply(api, text, len, fail_status, resp, NULL);
    free(text);
    return ok;
}

static bool body_name_matches(const struct pt_conf_node *body, const char *name,
                              struct pt_admin_resp *resp)
{
    const struct pt_conf_node *n = pt_conf_map_get(body, "name");
    if (n == NULL)
        return true;
    if (n->kind == PT_CONF_SCALAR && strcmp(n->scalar.raw, name) == 0)
        return true;
    char detail[256];
    snprintf(detail, sizeof(detail),
             "the body's name does not match the name in the path (\"%.100s\")", name);
    pt_admin_problem(resp, 400, "name-mismatch", detail, NULL);
    return false;
}

static void put_object(const struct pt_admin_api *api, const struct pt_snapshot *s,
                       enum pt_admin_kind k, const char *name, const struct pt_admin_req *req,
                       struct pt_admin_resp *resp)
{
    struct pt_arena a;
    pt_arena_init(&a);
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_conf_node *body = NULL;
    if (pt_admin_parse_body(&a, req->body, &d, &body) != 0) {
        pt_admin_problem(resp, 400, "invalid-body", "the body is not valid YAML or JSON",
                         pt_admin_diag_errors(&d));
        goto out;
    }
    if (body == NULL || body->kind != PT_CONF_MAP) {
        char detail[128];
        snprintf(detail, sizeof(detail), "the body must be a %s: a map (JSON object)", kind_one[k]);
        pt_admin_problem(resp, 400, "invalid-body", detail, NULL);
        goto out;
    }
    if (k != PT_ADMIN_SERVICES) {
        if (!body_name_matches(body, name, resp))
            goto out;
        if (pt_conf_map_get(body, "name") == NULL &&
            (body = pt_admin_with_name(&a, body, name)) == NULL) {
            pt_admin_problem(resp, 500, NULL, "out of memory", NULL);
            goto out;
        }
    }
    long i = pt_admin_find(s, k, name);
    struct pt_conf_node *root = pt_admin_edit(&a, s->tree, k, i, name, body);
    if (root == NULL) {
        pt_admin_problem(resp, 500, NULL, "out of memory", NULL);
        goto out;
    }
    if (!apply_tree(api, root, 400, resp))
        goto out;
    struct pt_snapshot *now = api->host->snapshot(api->ctx);
    long ni = pt_admin_find(now, k, name);
    json_t *j = ni >= 0 ? object_json(now, k, ni, name) : json_object();
    json_object_set_new(j, "config_version", json_integer((json_int_t)config_version(api)));
    pt_snapshot_unref(now);
    if (i < 0) {
        char loc[300];
        snprintf(loc, sizeof(loc), "/%s/%.200s", pt_admin_kind_key(k), name);
        add_header(resp, "Location", loc);
    }
    pt_admin_json(resp, i < 0 ? 201 : 200, j);
out:
    pt_diag_free(&d);
    pt_arena_destroy(&a);
}

/* Routes that use service name, directly or in a composition's calls: a new array of names. */
static json_t *routes_using(const struct pt_snapshot *s, const char *name)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct pt_route *r = s->routes[i];
        bool uses = r->service != NULL && strcmp(r->service->name, name) == 0;
        for (size_t k = 0; !uses && r->aggregate != NULL && k < r->aggregate->ncalls; k++) {
            const struct pt_service *svc = r->aggregate->calls[k].service;
            uses = svc != NULL && strcmp(svc->name, name) == 0;
        }
        if (uses)
            json_array_append_new(a, jstr(r->name, strlen(r->name)));
    }
    return a;
}

static void delete_object(const struct pt_admin_api *api, const struct pt_snapshot *s,
                          enum pt_admin_kind k, const char *name, struct pt_admin_resp *resp)
{
    long i = pt_admin_find(s, k, name);
    if (i < 0) {
        not_found(resp, kind_one[k], name);
        return;
    }
    if (k == PT_ADMIN_SERVICES) {
        json_t *users = routes_using(s, name);
        if (json_array_size(users) > 0) {
            char detail[512];
            size_t n = (size_t)snprintf(detail, sizeof(detail),
                                        "service \"%.100s\" is used by route", name);
            n += (size_t)snprintf(detail + n, sizeof(detail) - n, "%s",
                                  json_array_size(users) > 1 ? "s" : "");
            for (size_t r = 0; r < json_array_size(users) && n < sizeof(detail) - 110; r++)
                n +=
                    (size_t)snprintf(detail + n, sizeof(detail) - n, "%s \"%.100s\"",
                                     r > 0 ? "," : "", json_string_value(json_array_get(users, r)));
            char id[PT_REQID_GEN_LEN];
            json_t *j = problem_object(409, "in-use", detail, id);
            json_object_set_new(j, "routes", users);
            send_problem(resp, 409, j, id);
            return;
        }
        json_decref(users);
    }
    struct pt_arena a;
    pt_arena_init(&a);
    struct pt_conf_node *root = pt_admin_edit(&a, s->tree, k, i, name, NULL);
    if (root == NULL)
        pt_admin_problem(resp, 500, NULL, "out of memory", NULL);
    else if (apply_tree(api, root, 409, resp))
        resp->status = 204;
    pt_arena_destroy(&a);
}

/* A wall-clock time in ms as RFC 3339 UTC with milliseconds ("2024-05-01T12:00:00.250Z"). */
static json_t *rfc3339(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    if (gmtime_r(&sec, &tm) == NULL)
        return json_null();
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

/* GET /services/NAME/health: each target's state (upstream/health.h), SPEC §10. */
static void get_health(const struct pt_snapshot *s, const char *name, struct pt_admin_resp *resp)
{
    const struct pt_service *svc = pt_snapshot_service(s, name);
    if (svc == NULL) {
        not_found(resp, "service", name);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    uint64_t now = pt_clock_us() / 1000;
    json_t *targets = json_array();
    for (size_t i = 0; i < svc->ntargets; i++) {
        struct pt_target_view v;
        pt_health_view(svc, &svc->targets[i], now, wall, &v);
        json_t *t = json_object();
        json_object_set_new(t, "address", jstr(v.address, strlen(v.address)));
        json_object_set_new(t, "state", json_string(pt_target_state_name(v.state)));
        json_object_set_new(t, "reason", jstr(v.reason, strlen(v.reason)));
        json_object_set_new(t, "since", rfc3339(v.since_wall_ms));
        json_array_append_new(targets, t);
    }
    json_t *j = json_object();
    json_object_set_new(j, "service", jstr(name, strlen(name)));
    json_object_set_new(j, "targets", targets);
    pt_admin_json(resp, 200, j);
}

/* ---- DELETE /cache[?route=NAME][&prefix=/path] ---- */

static void delete_cache(const struct pt_admin_req *req, struct pt_admin_resp *resp)
{
    char *route = NULL, *prefix = NULL;
    struct pt_str q = req->query;
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
        size_t klen = eq != NULL ? (size_t)(eq - item.ptr) : item.len;
        struct pt_str v = eq != NULL ? pt_str_make(eq + 1, item.len - klen - 1) : PT_STR_NULL;
        struct pt_str k = pt_str_make(item.ptr, klen);
        char **slot = pt_str_eq_lit(k, "route")    ? &route
                      : pt_str_eq_lit(k, "prefix") ? &prefix
                                                   : NULL;
        size_t len;
        char *val = slot != NULL ? pt_admin_query_decode(v, &len) : NULL;
        if (val == NULL || strlen(val) != len) {
            free(val);
            pt_admin_problem(resp, 400, NULL,
                             slot == NULL ? "unknown parameter (expected route, prefix)"
                                          : "invalid percent-encoding in the query",
                             NULL);
            goto out;
        }
        free(*slot);
        *slot = val;
    }
    size_t purged = 0;
    pt_cache_purge(route, prefix, &purged);
    json_t *j = json_object();
    json_object_set_new(j, "purged", json_integer((json_int_t)purged));
    pt_admin_json(resp, 200, j);
out:
    free(route);
    free(prefix);
}

/* ---- routing ---- */

/* Split the path into at most MAX_SEGMENTS percent-decoded segments; -1 when invalid. */
static int split_path(struct pt_str path, char **seg, size_t max)
{
    size_t n = 0, i = 1;
    if (path.len == 0 || path.ptr[0] != '/')
        return -1;
    while (i < path.len) {
        size_t j = i;
        while (j < path.len && path.ptr[j] != '/')
            j++;
        if (j > i) {
            if (n == max)
                return -1;
            size_t len;
            seg[n] = pt_admin_query_decode(pt_str_make(path.ptr + i, j - i), &len);
            if (seg[n] == NULL || strlen(seg[n]) != len || strchr(seg[n], '/') != NULL) {
                free(seg[n]);
                seg[n] = NULL;
                return -1;
            }
            n++;
        }
        i = j + 1;
    }
    return (int)n;
}

static bool is(const char *seg, const char *lit)
{
    return seg != NULL && strcmp(seg, lit) == 0;
}

static int kind_of(const char *seg)
{
    for (int k = 0; k < PT_ADMIN_KIND_COUNT; k++)
        if (is(seg, pt_admin_kind_key((enum pt_admin_kind)k)))
            return k;
    return -1;
}

static void route_request(const struct pt_admin_api *api, const struct pt_snapshot *s,
                          const struct pt_admin_req *req, char **seg, int nseg,
                          struct pt_admin_resp *resp)
{
    enum pt_method m = req->method_id == PT_METHOD_HEAD ? PT_METHOD_GET : req->method_id;
    bool get = m == PT_METHOD_GET;
    int k = nseg >= 1 ? kind_of(seg[0]) : -1;
    if (nseg == 1 && (is(seg[0], "status") || is(seg[0], "ready") || is(seg[0], "metrics"))) {
        if (!get)
            method_not_allowed(resp, "GET, HEAD");
        else if (is(seg[0], "status"))
            get_status(api, resp);
        else if (is(seg[0], "ready"))
            get_ready(api, resp);
        else
            get_metrics(api, resp);
    } else if (nseg == 1 && is(seg[0], "config")) {
        if (get)
            get_config(s, resp);
        else if (m == PT_METHOD_PUT)
            put_config(api, req, resp);
        else
            method_not_allowed(resp, "GET, HEAD, PUT");
    } else if (nseg == 1 && is(seg[0], "cache")) {
        if (m == PT_METHOD_DELETE)
            delete_cache(req, resp);
        else
            method_not_allowed(resp, "DELETE");
    } else if (nseg == 1 && is(seg[0], "usage")) {
        pt_admin_problem(resp, 501, "not-implemented", "usage accounting is not built yet", NULL);
    } else if (nseg == 1 && k >= 0) {
        if (get)
            list_objects(s, (enum pt_admin_kind)k, resp);
        else
            method_not_allowed(resp, "GET, HEAD");
    } else if (nseg == 2 && k == PT_ADMIN_ROUTES && is(seg[1], "explain")) {
        if (get)
            pt_admin_explain(s, req->query, resp);
        else
            method_not_allowed(resp, "GET, HEAD");
    } else if (nseg == 2 && k >= 0) {
        if (get)
            get_object(s, (enum pt_admin_kind)k, seg[1], resp);
        else if (m == PT_METHOD_PUT)
            put_object(api, s, (enum pt_admin_kind)k, seg[1], req, resp);
        else if (m == PT_METHOD_DELETE)
            delete_object(api, s, (enum pt_admin_kind)k, seg[1], resp);
        else
            method_not_allowed(resp, "GET, HEAD, PUT, DELETE");
    } else if (nseg == 3 && k == PT_ADMIN_SERVICES && is(seg[2], "health")) {
        if (get)
            get_health(s, seg[1], resp);
        else
            method_not_allowed(resp, "GET, HEAD");
    } else {
        not_found_path(resp, req->path);
    }
}

void pt_admin_dispatch(const struct pt_admin_api *api, const struct pt_admin_req *req,
                       struct pt_admin_resp *resp)
{
    char *seg[MAX_SEGMENTS + 1] = {0};
    int nseg = split_path(req->path, seg, MAX_SEGMENTS);
    if (nseg == 0 && (req->method_id == PT_METHOD_GET || req->method_id == PT_METHOD_HEAD)) {
        get_dashboard(resp); /* the page itself needs no token; it asks for one */
        return;
    }
    struct pt_snapshot *s = api->host->snapshot(api->ctx);
    if (!authorised(s, req)) {
        pt_admin_problem(resp, 401, "unauthorized",
                         "this admin API needs Authorization: Bearer TOKEN (admin.token)", NULL);
        add_header(resp, "WWW-Authenticate", "Bearer realm=\"portico admin\"");
    } else if (nseg == 0) {
        method_not_allowed(resp, "GET, HEAD");
    } else if (nseg < 0) {
        not_found_path(resp, req->path);
    } else if ((req->method_id == PT_METHOD_PUT || req->method_id == PT_METHOD_DELETE) &&
               !is(seg[0], "cache") && draining(api)) {
        /* as SIGHUP and file changes: no configuration change once stopping */
        pt_admin_problem(resp, 503, "draining",
                         "the gateway is stopping: the configuration can no longer change", NULL);
    } else {
        route_request(api, s, req, seg, nseg, resp);
    }
    pt_snapshot_unref(s);
    for (int i = 0; i < MAX_SEGMENTS; i++)
        free(seg[i]);
}
