/* The cache and fallback plugins' options: defaults, every mistake at its line and column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "config/config.h"
#include "config/snapshot.h"
#include "plugins/plugin.h"
#include "proxy/route.h"

static struct pt_snapshot *load(const char *plugins, struct pt_diag *d)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "services:\n"
             "  s: { targets: [\"127.0.0.1:9\"] }\n"
             "routes:\n"
             "  - name: r\n"
             "    match: { paths: [\"/*\"] }\n"
             "    service: s\n"
             "    plugins:\n"
             "%s",
             plugins);
    pt_diag_init(d);
    return pt_config_load_buffer("t.yaml", "/nonexistent-dir", text, strlen(text), d);
}

static bool has(const struct pt_diag *d, const char *want)
{
    for (size_t i = 0; i < d->n; i++) {
        char *s = pt_diag_format(&d->entries[i]);
        bool hit = s != NULL && strstr(s, want) != NULL;
        free(s);
        if (hit)
            return true;
    }
    return false;
}

static void dump(const struct pt_diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        char *s = pt_diag_format(&d->entries[i]);
        note("%s", s != NULL ? s : "?");
        free(s);
    }
}

static void check_ok(const char *plugins, const char *what)
{
    struct pt_diag d;
    struct pt_snapshot *s = load(plugins, &d);
    ok(d.nerrors == 0 && s != NULL, "%s", what);
    if (d.nerrors != 0)
        dump(&d);
    if (s != NULL) {
        ok(s->nroutes == 1 && s->routes[0]->chain.n >= 1, "%s: in the chain", what);
        pt_snapshot_unref(s);
    }
    pt_diag_free(&d);
}

static void check_err(const char *plugins, const char *want, const char *what)
{
    struct pt_diag d;
    struct pt_snapshot *s = load(plugins, &d);
    ok(d.nerrors > 0 && has(&d, want), "%s", what);
    if (!has(&d, want))
        dump(&d);
    if (s != NULL)
        pt_snapshot_unref(s);
    pt_diag_free(&d);
}

int main(void)
{
    check_ok("      cache: {}\n", "cache with defaults");
    check_ok("      cache: { ttl: 30s, methods: [GET], vary: [Accept-Language],\n"
             "               key: [consumer, query, \"header:X-Tenant\", \"cookie:sid\"],\n"
             "               stale_if_error: 10m, stale_while_revalidate: 5s, store: memory,\n"
             "               max_memory: 16m, honor_client_no_cache: true,\n"
             "               statuses: [200, 404], stale_on: [503] }\n",
             "cache with every option");
    check_err("      cache: { store: redis }\n",
              "t.yaml:8:23: cache: store: redis is not supported yet",
              "redis: not supported yet, at the value");
    check_err("      cache: { store: disk }\n", "is not memory or redis", "unknown store");
    check_err("      cache: { methods: [PUT] }\n", "t.yaml:8:26: methods: \"PUT\" cannot be cached",
              "PUT is not cacheable");
    check_err("      cache: { key: [\"header:\"] }\n", "is not a key part", "empty header name");
    check_err("      cache: { key: [user] }\n", "t.yaml:8:22: key: \"user\" is not a key part",
              "unknown key part");
    check_err("      cache: { vary: [\"bad header\"] }\n", "is not a header name", "bad vary name");
    check_err("      cache: { statuses: [99] }\n", "t.yaml:8:27", "status out of range");
    check_err("      cache: { ttl: soon }\n", "t.yaml:8:21", "bad duration");
    check_err("      cache: { max_memory: 1k }\n", "t.yaml:8:28", "budget too small");
    check_err("      cache: { tll: 1m }\n", "t.yaml:8:16", "unknown key");

    check_ok("      fallback: {}\n", "fallback with defaults");
    check_ok("      fallback: { status: 503, headers: { Content-Type: text/html, X-A: b },\n"
             "                  body: \"<p>later</p>\", on: [500, 502] }\n",
             "fallback with every option");
    check_err("      fallback: { body_file: nope.json }\n",
              "t.yaml:8:30: fallback: body_file: cannot read nope.json", "unreadable body_file");
    check_err("      fallback: { body: x, body_file: /etc/hostname }\n", "not both",
              "body and body_file");
    check_err("      fallback: { status: 600 }\n", "t.yaml:8:27", "status out of range");
    check_err("      fallback: { headers: { Content-Length: \"3\" } }\n", "set by the gateway",
              "framing headers are the gateway's");
    check_err("      fallback: { on: [abc] }\n", "t.yaml:8:24", "bad status in on");
    check_ok("      fallback: { body_file: /etc/hostname }\n", "an absolute body_file");
    return done_testing();
}
