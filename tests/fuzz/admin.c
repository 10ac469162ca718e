/*
 * libFuzzer target: the admin API from raw bytes, without sockets.
 *
 * The input is one client connection's bytes.  The first byte picks how
 * they arrive (all at once, or in pieces of 1-64 bytes, which exercises
 * partial heads, Content-Length and chunked bodies split anywhere); the
 * rest goes through the session (admin/session.c) into the dispatcher
 * with a fake host: a small configuration with routes, services, plugins
 * and a token, whose `apply` validates and swaps the snapshot like the
 * server does (without writing a file).  Every input starts from the same
 * configuration, so runs are reproducible.
 *
 * Checks beyond "no crash, no leak, no UB": the output is a sequence of
 * well-formed HTTP/1.1 responses, each with a Content-Length that matches
 * its body, and every JSON body parses.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "admin/admin-int.h"
#include "config/config.h"
#include "config/snapshot.h"
#include "core/metrics.h"

static const char base_config[] =
    "server: {listen: [\"127.0.0.1:18080\"], workers: 2}\n"
    "admin: {listen: \"127.0.0.1:19901\", token: t0k}\n"
    "plugins: {request-id: {}}\n"
    "services:\n"
    "  users: {targets: [\"127.0.0.1:9001\", {address: \"127.0.0.1:9002\", weight: 3}]}\n"
    "  orders: {targets: [\"localhost:9003\"], retries: {attempts: 1, on: [502]}}\n"
    "routes:\n"
    "  - name: users\n"
    "    match: {paths: [\"/api/users\", \"/api/users/{id}\"], methods: [GET, PUT]}\n"
    "    service: users\n"
    "    plugins: {trace: {}}\n"
    "  - name: v2\n"
    "    match: {paths: [\"/api/users/{id}\"], headers: {X-Api-Version: \"2\"}}\n"
    "    service: users\n"
    "  - name: orders\n"
    "    match: {paths: [\"/orders/{rest*}\", \"~ ^/o/(?<n>[0-9]+)$\"], hosts: "
    "[\"*.example.com\"]}\n"
    "    service: orders\n"
    "    strip_prefix: /orders\n"
    "  - match: {paths: [\"/api/users\"]}\n"
    "    service: users\n";

static const struct pt_config_options opts = {.workers_override = 2};
static struct pt_snapshot *base;
static struct pt_snapshot *current;
static uint64_t version;
static struct pt_metrics *workers[2];

static struct pt_snapshot *fake_snapshot(void *ctx)
{
    (void)ctx;
    return pt_snapshot_ref(current);
}

static void fake_status(void *ctx, struct pt_admin_status *st)
{
    (void)ctx;
    st->config_version = version;
    st->uptime_s = 12.5;
    st->workers = 2;
    st->connections = 3;
    st->ready = (version & 1) != 0;
    st->waiting_for = (version & 2) != 0 ? "users" : NULL;
    st->draining = false;
}

static int fake_apply(void *ctx, const char *text, size_t len, struct pt_diag *d)
{
    (void)ctx;
    struct pt_snapshot *s =
        pt_config_load_buffer_opts("portico.yaml", "/fuzz", text, len, &opts, d);
    if (s == NULL)
        return -1;
    pt_snapshot_unref(current);
    current = s;
    s->version = ++version;
    return 0;
}

static int fake_metrics(void *ctx, struct pt_buf *out)
{
    (void)ctx;
    struct pt_metrics_process p = {.connections_active = 3, .config_version = version};
    return pt_metrics_render(workers, 2, &p, out);
}

static const struct pt_admin_host host = {fake_snapshot, fake_status, fake_apply, fake_metrics};

static void setup(void)
{
    struct pt_diag d;
    pt_diag_init(&d);
    base = pt_config_load_buffer_opts("portico.yaml", "/fuzz", base_config, sizeof(base_config) - 1,
                                      &opts, &d);
    if (base == NULL) {
        pt_diag_print(&d, stderr);
        abort();
    }
    pt_diag_free(&d);
    workers[0] = pt_metrics_new();
    workers[1] = pt_metrics_new();
    pt_metrics_request(workers[0], PT_STR_LIT("users"), PT_STR_LIT("users"), PT_STR_NULL, 200, 1500,
                       100, 200);
    pt_metrics_request(workers[1], PT_STR_NULL, PT_STR_NULL, PT_STR_NULL, 404, 10, 50, 60);
    pt_metrics_upstream(workers[1], PT_STR_LIT("users"), PT_STR_LIT("127.0.0.1:9001"), 0, 700);
}

/* The value of header name in head[0..len), or NULL. */
static const char *header_value(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    for (const char *p = head; p < head + len;) {
        const char *eol = memchr(p, '\n', (size_t)(head + len - p));
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > n + 1 && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            *vlen = (size_t)(eol - v) - (eol > v && eol[-1] == '\r');
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* Every response in out: a status line, a Content-Length that matches, valid JSON bodies. */
static void check_output(struct pt_buf *out, bool head_only_possible)
{
    const char *p = pt_buf_head(out), *end = p + pt_buf_len(out);
    while (p < end) {
        if ((size_t)(end - p) < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0)
            abort();
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (hend == NULL)
            abort();
        size_t hlen = (size_t)(hend - p) + 4;
        if (memcmp(p + 9, "100 ", 4) == 0) {
            p += hlen;
            continue;
        }
        size_t vlen = 0;
        const char *cl = header_value(p, hlen, "Content-Length", &vlen);
        if (cl == NULL)
            abort();
        size_t blen = strtoul(cl, NULL, 10);
        const char *body = p + hlen;
        if (head_only_possible)
            return; /* a HEAD answer has no body: the framing cannot be followed further */
        if (blen > (size_t)(end - body))
            abort(); /* a body shorter than announced */
        size_t tlen = 0;
        const char *ct = header_value(p, hlen, "Content-Type", &tlen);
        if (ct != NULL && blen > 0 && (size_t)(end - body) >= blen && tlen >= 16 &&
            (memcmp(ct, "application/json", 16) == 0 ||
             memcmp(ct, "application/problem+json", tlen < 24 ? tlen : 24) == 0)) {
            json_error_t err;
            json_t *j = json_loadb(body, blen, 0, &err);
            if (j == NULL)
                abort();
            json_decref(j);
        }
        p = body + blen;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (base == NULL)
        setup();
    if (size == 0)
        return 0;
    current = pt_snapshot_ref(base);
    version = 1;
    size_t piece = data[0] < 128 ? size : (size_t)(data[0] & 63) + 1;
    data++;
    size--;
    bool heads = memmem(data, size, "HEAD ", 5) != NULL;
    struct pt_admin_api api = {&host, NULL};
    struct pt_admin_session s;
    pt_admin_session_init(&s);
    struct pt_buf out;
    pt_buf_init(&out);
    size_t off = 0;
    bool done = false;
    while (!done) {
        size_t n = size - off < piece ? size - off : piece;
        if (n > 0 && pt_buf_append(&s.in, data + off, n, SIZE_MAX) != 0)
            break;
        off += n;
        bool eof = off == size;
        for (;;) {
            int r = pt_admin_session_step(&api, &s, &out, eof);
            if (r < 0 || s.close) {
                done = true;
                break;
            }
            if (r == 0)
                break;
        }
        check_output(&out, heads);
        pt_buf_free(&out);
        if (eof)
            done = true;
    }
    pt_buf_free(&out);
    pt_admin_session_free(&s);
    pt_snapshot_unref(current);
    current = NULL;
    return 0;
}
