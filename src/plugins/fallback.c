/*
 * fallback: answer with a fixed response when the service fails (SPEC §3,
 * §10 "Failures").
 *
 *   plugins:
 *     fallback:
 *       status: 200                      # default 200
 *       headers: { Content-Type: application/json }
 *       body: '{"items": []}'            # or body_file: fallback/items.json
 *       on: [502, 503, 504]              # upstream statuses that count as failures
 *
 * A failure is a connection error, a timeout, no available target (503:
 * later also an open circuit breaker), an invalid upstream response, or an
 * upstream answer whose status is in `on`.  The cache plugin runs first
 * (order 90 < 105), so a stale cache entry wins over the fallback.
 *
 * body_file is read once, when the configuration loads (relative to the
 * configuration file's folder); an unreadable file is a configuration error
 * at the key.  Answers carry X-Fallback: true.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/schema.h"
#include "config/snapshot.h"
#include "core/log.h"
#include "plugins/plugin.h"
#include "proxy/proxy.h"
#include "proxy/route.h"

#define MAX_BODY_FILE (8u << 20)

struct fallback {
    uint64_t status;
    const struct pt_conf_node *headers_n, *on_n;
    const char *body;
    const char *body_file;
    struct pt_h1_header *headers; /* configured ones + X-Fallback (+ a Content-Type) */
    size_t nheaders;
    const char *data;
    size_t len;
    uint64_t on[10]; /* bitmap of statuses 0..639 */
};

static const struct pt_conf_key keys[] = {
    PT_CONF_UINT("status", struct fallback, status, 100, 599, "200"),
    PT_CONF_NODE("headers", struct fallback, headers_n),
    PT_CONF_STRING("body", struct fallback, body, NULL),
    PT_CONF_STRING("body_file", struct fallback, body_file, NULL),
    PT_CONF_NODE("on", struct fallback, on_n),
    {0},
};

static void on_add(struct fallback *f, unsigned st)
{
    f->on[st / 64] |= 1ull << (st % 64);
}

static bool on_has(const struct fallback *f, int st)
{
    return st >= 0 && st < 640 && (f->on[st / 64] >> (st % 64)) & 1;
}

static bool valid_field_value(const char *v)
{
    for (; *v != '\0'; v++)
        if ((unsigned char)*v < 0x20 && *v != '\t')
            return false;
    return true;
}

static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c) != NULL))
            return false;
    }
    return true;
}

static int read_body_file(struct pt_conf_ctx *c, struct fallback *f, const struct pt_conf_node *at)
{
    const char *path = pt_config_resolve_path(c->a, c->snap->base_dir, f->body_file);
    if (path == NULL)
        return -1;
    pt_conf_note_file(c, path);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        pt_conf_error(c, at, "fallback: body_file: cannot read %s: %s", f->body_file,
                      strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > MAX_BODY_FILE) {
        pt_conf_error(c, at, "fallback: body_file: %s is not a regular file of at most 8m",
                      f->body_file);
        fclose(fp);
        return -1;
    }
    char *buf = pt_arena_alloc(c->a, (size_t)sb.st_size + 1);
    size_t n = buf != NULL ? fread(buf, 1, (size_t)sb.st_size, fp) : 0;
    bool bad = buf == NULL || ferror(fp);
    fclose(fp);
    if (bad) {
        pt_conf_error(c, at, "fallback: body_file: cannot read %s", f->body_file);
        return -1;
    }
    f->data = buf;
    f->len = n;
    return 0;
}

static int parse_headers(struct pt_conf_ctx *c, struct fallback *f)
{
    const struct pt_conf_node *m = f->headers_n;
    size_t n = m != NULL && m->kind == PT_CONF_MAP ? m->map.n : 0;
    if (m != NULL && pt_conf_expect_map(c, "headers", m) != 0)
        return -1;
    f->headers = pt_arena_calloc(c->a, sizeof(*f->headers) * (n + 2));
    if (f->headers == NULL)
        return -1;
    int rc = 0;
    bool has_ct = false;
    for (size_t i = 0; i < n; i++) {
        const struct pt_conf_node *k = m->map.pairs[i].key;
        const char *name = k->scalar.value, *value;
        if (!is_token(name)) {
            pt_conf_error(c, k, "fallback: headers: \"%.60s\" is not a header name", name);
            rc = -1;
            continue;
        }
        if (pt_conf_get_string(c, name, m->map.pairs[i].value, &value) != 0) {
            rc = -1;
            continue;
        }
        if (!valid_field_value(value)) {
            pt_conf_error(c, m->map.pairs[i].value,
                          "fallback: headers: the value of %s has control characters", name);
            rc = -1;
            continue;
        }
        struct pt_str sn = pt_str_cstr(name);
        if (pt_str_case_eq_lit(sn, "content-length") ||
            pt_str_case_eq_lit(sn, "transfer-encoding") || pt_str_case_eq_lit(sn, "connection")) {
            pt_conf_error(c, k, "fallback: headers: %s is set by the gateway", name);
            rc = -1;
            continue;
        }
        has_ct |= pt_str_case_eq_lit(sn, "content-type");
        f->headers[f->nheaders].name = sn;
        f->headers[f->nheaders++].value = pt_str_cstr(value);
    }
    if (!has_ct && f->len > 0) {
        size_t i = 0;
        while (i < f->len && (f->data[i] == ' ' || f->data[i] == '\n' || f->data[i] == '\r' ||
                              f->data[i] == '\t'))
            i++;
        bool json = i < f->len && (f->data[i] == '{' || f->data[i] == '[');
        f->headers[f->nheaders].name = PT_STR_LIT("Content-Type");
        f->headers[f->nheaders++].value =
            json ? PT_STR_LIT("application/json") : PT_STR_LIT("text/plain; charset=utf-8");
    }
    f->headers[f->nheaders].name = PT_STR_LIT("X-Fallback");
    f->headers[f->nheaders++].value = PT_STR_LIT("true");
    return rc;
}

static int parse_on(struct pt_conf_ctx *c, struct fallback *f)
{
    if (f->on_n == NULL || pt_conf_is_null(f->on_n)) {
        on_add(f, 502);
        on_add(f, 503);
        on_add(f, 504);
        return 0;
    }
    if (pt_conf_expect_seq(c, "on", f->on_n) != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < f->on_n->seq.n; i++) {
        uint64_t v;
        if (pt_conf_get_uint(c, "on", f->on_n->seq.items[i], 100, 599, &v) != 0) {
            rc = -1;
            continue;
        }
        on_add(f, (unsigned)v);
    }
    return rc;
}

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    struct fallback *f = pt_arena_calloc(c->a, sizeof(*f));
    if (f == NULL)
        return -1;
    int rc = pt_conf_apply(c, keys, opts, f, "fallback", NULL);
    if (rc == 0 && f->body != NULL && f->body_file != NULL) {
        pt_conf_error(c, pt_conf_map_get(opts, "body_file"),
                      "fallback: give body or body_file, not both");
        rc = -1;
    }
    if (rc == 0 && f->body_file != NULL &&
        read_body_file(c, f, pt_conf_map_get(opts, "body_file")) != 0)
        rc = -1;
    if (f->body != NULL) {
        f->data = f->body;
        f->len = strlen(f->body);
    }
    if (parse_on(c, f) != 0)
        rc = -1;
    if (parse_headers(c, f) != 0)
        rc = -1;
    if (rc != 0)
        return -1;
    *state = f;
    return 0;
}

static void respond(const struct fallback *f, struct pt_exchange *ex, const char *why)
{
    pt_log_debug("fallback: route %s: %s", ex->route != NULL ? ex->route->name : "-", why);
    if (ex->error == NULL)
        ex->error = why;
    pt_proxy_respond(ex, (int)f->status, f->headers, f->nheaders, f->data, f->len);
}

static int on_upstream_error(void *state, struct pt_exchange *ex, int status)
{
    (void)status;
    respond(state, ex, "fallback: the service failed");
    return PT_PLUGIN_RESPONDED;
}

static int on_upstream_response(void *state, struct pt_exchange *ex,
                                const struct pt_response_head *head)
{
    const struct fallback *f = state;
    if (!on_has(f, head->status))
        return PT_PLUGIN_CONTINUE;
    respond(f, ex, "fallback: the service answered a failure status");
    return PT_PLUGIN_RESPONDED;
}

const struct pt_plugin_ops pt_plugin_fallback = {
    .name = "fallback",
    .order = PT_ORDER_FALLBACK,
    .configure = configure,
    .on_upstream_error = on_upstream_error,
    .on_upstream_response = on_upstream_response,
};
