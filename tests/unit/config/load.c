/*
 * Whole configurations: a full valid one compiles to the expected structs;
 * mistakes are all reported, each at its line and column.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "test.h"
#include "config/config.h"
#include "config/node.h"
#include "proxy/route.h"
#include "router/router.h"
#include "upstream/service.h"

static const char *fake_env(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "USERS_PORT") == 0)
        return "9001";
    return NULL;
}

static const struct pt_config_options opts = {.env = {fake_env, NULL}};

static struct pt_snapshot *load(const char *text, struct pt_diag *d)
{
    pt_diag_init(d);
    return pt_config_load_buffer_opts("t.yaml", "/etc/portico", text, strlen(text), &opts, d);
}

static const char *entry(const struct pt_diag *d, size_t i)
{
    static char buf[600];
    if (i >= d->n)
        return "(none)";
    char *s = pt_diag_format(&d->entries[i]);
    snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "(nomem)");
    free(s);
    return buf;
}

static void dump(const struct pt_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        note("%s", entry(d, i));
}

static bool has_entry(const struct pt_diag *d, const char *prefix)
{
    for (size_t i = 0; i < d->n; i++)
        if (strncmp(entry(d, i), prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

static const char *ip_of(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    return inet_ntop(ss->ss_family, a, buf, (socklen_t)size);
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* SPEC §2, minus what is not supported yet (TLS, tracing, usage, store, consumers, plugins,
 * health, circuit_breaker). */
static const char full[] =
    "server:\n"
    "  listen:\n"
    "    - \"0.0.0.0:8080\"                    # plain HTTP/1.1\n"
    "    - address: \"[::1]:8081\"\n"
    "  workers: 4\n"
    "  limits:\n"
    "    max_header_bytes: 32k\n"
    "    max_body_bytes: 10m\n"
    "    max_connections: 5000\n"
    "  timeouts:\n"
    "    client_header: 10s\n"
    "    client_idle: 2m\n"
    "  drain_timeout: 30s\n"
    "  trusted_proxies: [\"10.0.0.0/8\", \"192.168.1.1\"]\n"
    "  log_level: debug\n"
    "\n"
    "admin:\n"
    "  listen: \"127.0.0.1:9901\"\n"
    "  token: ${PORTICO_ADMIN_TOKEN:-}\n"
    "\n"
    "services:\n"
    "  users:\n"
    "    targets:\n"
    "      - \"127.0.0.1:${USERS_PORT}\"\n"
    "      - { address: \"localhost:9002\", weight: 3 }\n"
    "      - http://[::1]:9003/\n"
    "    protocol: http\n"
    "    balance: hash\n"
    "    hash_on: \"header:X-User-Id\"\n"
    "    host: users.internal\n"
    "    timeouts: { connect: 1s, read: 10s, write: 10s }\n"
    "    keepalive: { max_idle: 32, idle_timeout: 90s }\n"
    "    retries: { attempts: 2, on: [connect_error, 502, \"503\"], idempotent_only: false }\n"
    "  orders:\n"
    "    targets: [\"http://127.0.0.1\"]\n"
    "\n"
    "routes:\n"
    "  - name: users\n"
    "    match:\n"
    "      paths: [\"/api/users\", \"/api/users/*\"]\n"
    "      methods: [GET, POST, PUT, DELETE]\n"
    "      hosts: [\"api.example.com\", \"*.example.com\"]\n"
    "      headers: { X-Api-Version: \"2\" }\n"
    "    service: users\n"
    "    strip_prefix: /api\n"
    "    preserve_host: false\n"
    "  - match: { paths: [\"/v1/users/{id}\", \"~ ^/legacy/(?<id>[0-9]+)$\"] }\n"
    "    service: users\n"
    "    rewrite: \"/v2/users/{id}/profile\"\n"
    "    preserve_host: true\n"
    "    max_body_bytes: 1m\n"
    "  - name: orders\n"
    "    match: { paths: [\"/orders/{rest*}\"] }\n"
    "    service: orders\n"
    "    rewrite: \"/{rest}\"\n";

static void test_full(void)
{
    struct pt_diag d;
    struct pt_snapshot *s = load(full, &d);
    ok(s != NULL, "the full configuration loads");
    is_int(d.n, 0, "without diagnostics");
    dump(&d);
    pt_diag_free(&d);
    if (s == NULL)
        return;
    char ip[64];
    is_int(atomic_load(&s->refs), 1, "one reference");
    is_str(s->base_dir, "/etc/portico", "base_dir");
    ok(s->path == NULL, "no path for a buffer");
    ok(s->tree != NULL, "tree kept");

    const struct pt_server_conf *sv = &s->server;
    is_int(sv->nlisten, 2, "two listeners");
    is_str(sv->listen[0].address, "0.0.0.0:8080", "listener 0 as written");
    is_str(ip_of(&sv->listen[0].addr, ip, sizeof(ip)), "0.0.0.0", "listener 0 address");
    is_int(port_of(&sv->listen[0].addr), 8080, "listener 0 port");
    is_str(sv->listen[1].address, "[::1]:8081", "listener 1 as written");
    is_int(sv->listen[1].addr.ss_family, AF_INET6, "listener 1 is IPv6");
    is_str(ip_of(&sv->listen[1].addr, ip, sizeof(ip)), "::1", "listener 1 address");
    is_int(sv->listen[1].addrlen, sizeof(struct sockaddr_in6), "listener 1 addrlen");
    is_int(sv->workers, 4, "workers");
    is_int(sv->max_header_bytes, 32768, "max_header_bytes");
    is_int(sv->max_body_bytes, 10 << 20, "max_body_bytes");
    is_int(sv->max_connections, 5000, "max_connections");
    is_int(sv->client_header_timeout_ms, 10000, "client_header");
    is_int(sv->client_body_timeout_ms, 60000, "client_body default");
    is_int(sv->client_idle_timeout_ms, 120000, "client_idle");
    is_int(sv->send_timeout_ms, 60000, "send default");
    is_int(sv->drain_timeout_ms, 30000, "drain_timeout");
    is_int(sv->ntrusted_proxies, 2, "trusted proxies");
    is_int(sv->trusted_proxies[0].bits, 8, "10.0.0.0/8");
    is_int(sv->trusted_proxies[1].bits, 32, "a bare address is a /32");
    is_int(sv->log_level, PT_LOG_DEBUG, "log_level");

    is_str(s->admin.listen, "127.0.0.1:9901", "admin listen");
    is_int(port_of(&s->admin.addr), 9901, "admin port");
    ok(s->admin.token == NULL, "a token that expands to nothing is no token");

    is_int(s->nservices, 2, "two services");
    const struct pt_service *u = s->services[0];
    is_str(u->name, "users", "service name");
    ok(pt_snapshot_service(s, "users") == u, "lookup by name");
    ok(pt_snapshot_service(s, "nope") == NULL, "unknown name");
    is_int(u->index, 0, "index");
    is_int(u->ntargets, 3, "three targets");
    is_str(u->targets[0].address, "127.0.0.1:9001", "target 0 expanded");
    is_str(u->targets[0].host, "127.0.0.1", "target 0 host");
    is_str(u->targets[0].authority, "127.0.0.1:9001", "target 0 authority");
    is_int(u->targets[0].port, 9001, "target 0 port");
    is_int(u->targets[0].weight, 1, "default weight");
    is_int(port_of(&u->targets[0].addr), 9001, "target 0 resolved port");
    is_str(u->targets[1].host, "localhost", "target 1 host");
    is_int(u->targets[1].weight, 3, "target 1 weight");
    is_int(u->targets[1].index, 1, "target 1 index");
    is_str(ip_of(&u->targets[1].addr, ip, sizeof(ip)), "127.0.0.1", "localhost resolved");
    is_str(u->targets[2].address, "http://[::1]:9003/", "URL target as written");
    is_str(u->targets[2].host, "::1", "URL target host without brackets");
    is_str(u->targets[2].authority, "[::1]:9003", "IPv6 authority in brackets");
    is_int(u->protocol, PT_PROTO_HTTP, "protocol");
    is_int(u->balance, PT_BALANCE_HASH, "balance");
    is_int(u->hash_on, PT_HASH_HEADER, "hash_on header");
    is_str(u->hash_key, "X-User-Id", "hash key");
    is_str(u->host, "users.internal", "host override");
    is_int(u->connect_timeout_ms, 1000, "connect");
    is_int(u->read_timeout_ms, 10000, "read");
    is_int(u->write_timeout_ms, 10000, "write");
    is_int(u->keepalive_max_idle, 32, "max_idle");
    is_int(u->keepalive_idle_timeout_ms, 90000, "idle_timeout");
    is_int(u->retry_attempts, 2, "attempts");
    is_int(u->retry_on, PT_RETRY_ON_CONNECT_ERROR, "retry on connect errors only");
    is_int(u->nretry_statuses, 2, "two statuses");
    ok(pt_service_retries_status(u, 502) && pt_service_retries_status(u, 503) &&
           !pt_service_retries_status(u, 504),
       "502 and 503 (quoted)");
    ok(!u->retry_idempotent_only, "idempotent_only false");
    ok(u->balancer != NULL, "balancer built");

    const struct pt_service *o = s->services[1];
    is_str(o->name, "orders", "second service");
    is_int(o->index, 1, "its index");
    is_int(o->targets[0].port, 80, "http:// defaults to port 80");
    is_str(o->targets[0].authority, "127.0.0.1:80", "authority with the port");
    is_int(o->balance, PT_BALANCE_ROUND_ROBIN, "default balance");
    is_int(o->connect_timeout_ms, 5000, "default connect 5s");
    is_int(o->read_timeout_ms, 60000, "default read 60s");
    is_int(o->keepalive_max_idle, 64, "default max_idle");
    is_int(o->retry_attempts, 1, "default attempts");
    is_int(o->retry_on, PT_RETRY_ON_CONNECT_ERROR | PT_RETRY_ON_TIMEOUT, "default conditions");
    is_int(o->nretry_statuses, 3, "default statuses");
    ok(o->retry_idempotent_only, "default idempotent_only");
    ok(o->host == NULL, "no host override");

    is_int(s->nroutes, 3, "three routes");
    const struct pt_route *r0 = s->routes[0], *r1 = s->routes[1], *r2 = s->routes[2];
    is_str(r0->name, "users", "route 0 name");
    is_int(r0->index, 0, "route 0 index");
    ok(r0->service == u, "route 0 service");
    ok(pt_str_eq_lit(r0->strip_prefix, "/api"), "strip_prefix");
    ok(r0->rewrite == NULL, "no rewrite");
    ok(!r0->preserve_host, "preserve_host false");
    is_int(r0->max_body_bytes, 0, "max_body_bytes default: the server's");
    is_str(r1->name, "route-2", "default name route-N (1-based)");
    ok(r1->preserve_host, "preserve_host true");
    is_int(r1->max_body_bytes, 1 << 20, "max_body_bytes 1m");
    is_int(r1->nrewrite, 3, "rewrite in three parts");
    if (r1->nrewrite == 3) {
        ok(!r1->rewrite[0].is_capture && pt_str_eq_lit(r1->rewrite[0].text, "/v2/users/"),
           "literal");
        ok(r1->rewrite[1].is_capture && pt_str_eq_lit(r1->rewrite[1].text, "id"), "capture id");
        ok(!r1->rewrite[2].is_capture && pt_str_eq_lit(r1->rewrite[2].text, "/profile"),
           "literal tail");
    }
    ok(r1->strip_prefix.len == 0, "no strip_prefix");
    is_int(r2->nrewrite, 2, "rewrite /{rest}");
    ok(r2->service == o, "route 2 service");

    ok(s->router != NULL, "router built");
    if (s->router != NULL) {
        is_int(pt_router_count(s->router), 3, "router has the routes");
        struct pt_router_match m;
        struct pt_router_request rq = {.method = PT_STR_LIT("GET"),
                                       .host = PT_STR_LIT("api.example.com"),
                                       .path = PT_STR_LIT("/v1/users/7")};
        pt_router_match(s->router, &rq, &m);
        ok(m.status == 200 && m.data == r1, "router data is the struct pt_route");
    }

    json_t *raw = pt_conf_node_to_json(s->tree, true);
    json_t *token = json_object_get(json_object_get(raw, "admin"), "token");
    is_str(json_string_value(token), "${PORTICO_ADMIN_TOKEN:-}", "GET /config keeps ${...}");
    json_decref(raw);
    pt_snapshot_ref(s);
    is_int(atomic_load(&s->refs), 2, "ref");
    pt_snapshot_unref(s);
    pt_snapshot_unref(s);
}

static void test_defaults(void)
{
    static const char *const empty[] = {"",          "# nothing\n", "---\n",       "{}",
                                        "server:\n", "~\n",         "routes: []\n"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        struct pt_diag d;
        struct pt_snapshot *s = load(empty[i], &d);
        ok(s != NULL, "empty configuration %zu is valid (a gateway answering 404)", i);
        dump(&d);
        if (s != NULL) {
            is_int(s->server.nlisten, 1, "default listener");
            is_str(s->server.listen[0].address, "0.0.0.0:8080", "0.0.0.0:8080");
            is_int(port_of(&s->server.listen[0].addr), 8080, "port 8080");
            ok(s->server.workers >= 1 && s->server.workers <= 256, "workers auto (%u)",
               s->server.workers);
            is_int(s->server.max_header_bytes, 16384, "16k");
            is_int(s->server.max_body_bytes, 10 << 20, "10m");
            is_int(s->server.max_connections, 100000, "100000");
            is_int(s->server.client_header_timeout_ms, 10000, "10s");
            is_int(s->server.drain_timeout_ms, 30000, "30s");
            is_int(s->server.log_level, PT_LOG_INFO, "info");
            is_int(s->server.ntrusted_proxies, 0, "no trusted proxies");
            ok(s->admin.listen == NULL && s->admin.token == NULL, "no admin");
            is_int(s->nroutes + s->nservices, 0, "nothing else");
            ok(s->router != NULL, "an empty router");
        }
        pt_snapshot_unref(s);
        pt_diag_free(&d);
    }
}

static void test_mistakes(void)
{
    static const char text[] =
        "server:\n"
        "  listen: [\"0.0.0.0:80800\", {address: \":9000\", tls: {}}]\n"
        "  workers: lots\n"
        "  limits: {max_header_bytes: 512, max_body_bytes: 10q}\n"
        "  timeouts: {client_header: 10}\n"
        "  log_level: verbose\n"
        "  trusted_proxies: [10.0.0.0/33]\n"
        "services:\n"
        "  users:\n"
        "    targets: [\"127.0.0.1\", {address: \"127.0.0.1:9002\", weight: 0}]\n"
        "    retires: {attempts: 2}\n"
        "    balance: fastest\n"
        "    protocol: grpc\n"
        "    keepalive: {max_idle: -1}\n"
        "    retries: {on: [502, 302, teapot]}\n"
        "  empty: {}\n"
        "routes:\n"
        "  - name: users\n"
        "    match: {paths: [\"/api/users\"], methods: [get]}\n"
        "    service: user\n"
        "    strip_prefix: api/\n"
        "  - match: {paths: [\"/x/{id}\"]}\n"
        "    service: users\n"
        "    rewrite: \"/y/{idd}\"\n"
        "    preserve_host: maybe\n"
        "  - match: {paths: [\"/z\"]}\n"
        "    aggregate: {}\n"
        "tracing: {otlp: x}\n"
        "routs: []\n";
    static const char *const want[] = {
        "t.yaml:2:12: listen: \"0.0.0.0:80800\": invalid port (expected a number from 1 to 65535)",
        "t.yaml:2:48: TLS listeners are not supported yet",
        "t.yaml:3:12: workers: expected a number from 1 to 256 or \"auto\", got \"lots\"",
        "t.yaml:4:30: max_header_bytes: must be between 1k and 1m",
        "t.yaml:4:51: max_body_bytes: unknown size unit (use k, m or g)",
        "t.yaml:5:29: client_header: duration needs a unit, e.g. 5s or 250ms",
        "t.yaml:6:14: log_level: unknown value \"verbose\" (expected one of: error, warn, info, "
        "debug)",
        "t.yaml:7:21: trusted_proxies: \"10.0.0.0/33\" is not an IP address or CIDR block (e.g. "
        "10.0.0.0/8)",
        "t.yaml:10:15: targets: \"127.0.0.1\": missing port (write host:port)",
        "t.yaml:10:64: weight: must be between 1 and 1000",
        "t.yaml:11:5: unknown key \"retires\" in services.users (did you mean \"retries\"?)",
        "t.yaml:12:14: balance: unknown value \"fastest\" (expected one of: round_robin, "
        "least_conn, random, hash)",
        "t.yaml:13:15: protocol: \"grpc\" is not supported yet",
        "t.yaml:14:27: max_idle: expected an integer, got \"-1\"",
        "t.yaml:15:25: on: status 302 is not from 400 to 599",
        "t.yaml:15:30: on: unknown condition \"teapot\" (expected connect_error, timeout or a "
        "status from 400 to 599)",
        "t.yaml:16:10: missing required key \"targets\" in services.empty",
        "t.yaml:19:46: methods: \"get\" must be upper case (methods are case-sensitive); write "
        "\"GET\"",
        "t.yaml:20:14: service: unknown service \"user\" (did you mean \"users\"?)",
        "t.yaml:21:19: strip_prefix: must start with '/'",
        "t.yaml:24:18: rewrite: {idd} is not a capture of path \"/x/{id}\"",
        "t.yaml:25:20: preserve_host: expected true or false, got \"maybe\"",
        "t.yaml:27:16: missing required key \"calls\" in routes.route-3.aggregate",
        "t.yaml:28:1: tracing is not supported yet",
        "t.yaml:29:1: unknown key \"routs\" (did you mean \"routes\"?)",
    };
    size_t nwant = sizeof(want) / sizeof(want[0]);
    struct pt_diag d;
    struct pt_snapshot *s = load(text, &d);
    ok(s == NULL, "a configuration with mistakes does not load");
    is_int(d.nerrors, nwant, "every mistake is reported, once");
    for (size_t i = 0; i < nwant; i++)
        is_str(entry(&d, i), want[i], "mistake %zu", i + 1);
    if (d.n != nwant)
        dump(&d);
    pt_diag_free(&d);
    pt_snapshot_unref(s); /* NULL is fine */
}

static void expect_one(const char *text, const char *want, const char *what)
{
    struct pt_diag d;
    struct pt_snapshot *s = load(text, &d);
    ok(s == NULL, "%s: rejected", what);
    ok(d.nerrors == 1 && has_entry(&d, want), "%s: %s", what, entry(&d, 0));
    if (d.nerrors != 1)
        dump(&d);
    pt_snapshot_unref(s);
    pt_diag_free(&d);
}

static void test_single_mistakes(void)
{
    expect_one("services:\n  a:\n    targets: [\"127.0.0.1:1\"]\n    timeouts: {conect: 1s}\n",
               "t.yaml:4:16: unknown key \"conect\" in services.a.timeouts (did you mean "
               "\"connect\"?)",
               "unknown nested key");
    expect_one("services:\n  a: {targets: [\"127.0.0.1:1\"]}\n"
               "routes:\n  - match: {paths: [/]}\n    service: b\n",
               "t.yaml:5:14: service: unknown service \"b\"", "unknown service");
    expect_one("routes:\n  - match: {paths: [/]}\n",
               "t.yaml:2:5: route \"route-1\" needs a service", "no service");
    expect_one("services:\n  a: {targets: [\"no-such-host.invalid:80\"]}\n",
               "t.yaml:2:17: targets: cannot resolve \"no-such-host.invalid\"",
               "unresolvable target");
    expect_one("services:\n  a: {targets: [\"127.0.0.1:1\"], health: {active: {}}}\n",
               "t.yaml:2:33: health checks are not supported yet", "health");
    expect_one("services:\n  a: {targets: [\"https://127.0.0.1\"]}\n",
               "t.yaml:2:17: targets: https:// targets are not supported yet", "https target");
    expect_one("services:\n  a: {targets: [\"http://127.0.0.1/api\"]}\n",
               "t.yaml:2:17: targets: a target URL cannot have a path", "URL with a path");
    expect_one("services:\n  a: {targets: []}\n",
               "t.yaml:2:16: targets: at least one target is required", "no targets");
    expect_one("services:\n  a: {targets: [\"::1:80\"]}\n",
               "t.yaml:2:17: targets: \"::1:80\": IPv6 addresses must be in brackets",
               "IPv6 without brackets");
    expect_one("services:\n  a: {targets: [\"127.0.0.1:1\"], balance: hash, hash_on: heder:x}\n",
               "t.yaml:2:57: hash_on: unknown value \"heder:x\"", "bad hash_on");
    expect_one("server:\n  listen:\n    - \"127.0.0.1:8080\"\n    - \"127.0.0.1:8080\"\n",
               "t.yaml:4:7: listen: duplicate address \"127.0.0.1:8080\"", "duplicate listener");
    expect_one("server: {listen: [\"127.0.0.1:8080\"]}\nadmin: {listen: \"127.0.0.1:8080\"}\n",
               "t.yaml:2:17: listen: \"127.0.0.1:8080\" is also a server listener",
               "admin on a server port");
    expect_one("server: {workers: 0}\n", "t.yaml:1:19: workers: must be between 1 and 256",
               "workers 0");
    expect_one("server: {listen: [{}]}\n",
               "t.yaml:1:19: missing required key \"address\" in server.listen", "listen map");
    expect_one("consumers: []\n", "t.yaml:1:1: consumers are not supported yet", "consumers");
    expect_one("[1, 2]\n", "t.yaml:1:1: the configuration must be a map of sections", "not a map");
    expect_one("routes:\n  - match: {paths: [/a]}\n    service: ${SVC}\n",
               "t.yaml:3:14: environment variable SVC is not set", "unset variable, no cascade");
    expect_one("services:\n  a: {targets: [\"127.0.0.1:1\"]}\nroutes:\n"
               "  - {name: x, match: {paths: [/a]}, service: a}\n"
               "  - {name: x, match: {paths: [/b]}, service: a}\n",
               "t.yaml:5:12: route name \"x\" is already used at line 4", "duplicate route name");
    expect_one("services:\n  a: {targets: [\"127.0.0.1:1\"]}\nroutes:\n"
               "  - {match: {paths: [/a]}, service: a, strip_prefix: /a, rewrite: /b}\n",
               "t.yaml:4:67: rewrite: cannot be combined with strip_prefix", "both");
    expect_one("services:\n  a: {targets: [\"127.0.0.1:1\"]}\nroutes:\n"
               "  - {match: {paths: [/a]}, service: a, strip_prefix: /a/}\n",
               "t.yaml:4:54: strip_prefix: must not end with '/' (write \"/a\")",
               "strip_prefix trailing slash");
    expect_one("services:\n  a: {targets: [\"127.0.0.1:1\"]}\nroutes:\n"
               "  - {match: {paths: [\"/a/{rest*}\"]}, service: a, rewrite: \"/b/{rest*}\"}\n",
               "t.yaml:4:63: rewrite: write {rest} to insert the capture, without '*'",
               "rewrite with a star");
    expect_one("services:\n  a: {targets: [\"127.0.0.1:1\"]}\nroutes:\n"
               "  - {match: {paths: [/a], headers: {X-A: }}, service: a}\n",
               "t.yaml:4:42: headers: X-A: a value is required", "header without value");
    expect_one("services:\n  a: {targets: [{address: \"h:${X:-1\", weight: 2}]}\n",
               "t.yaml:2:30: unterminated ${", "unset variable in a target map (fuzz)");
    expect_one("services:\n  a: {targets: [\"127.0.0.1:1\"]}\nroutes:\n"
               "  - {match: {paths: [\"/a/{id}\"]}, service: a, rewrite: \"${P:-/v2}/{idd}\"}\n",
               "t.yaml:4:56: rewrite: {idd} is not a capture", "rewrite with ${} at its start");
    expect_one("services:\n  bad/name: {targets: [\"127.0.0.1:1\"]}\n",
               "t.yaml:2:3: service name \"bad/name\" must be 1 to 64 characters", "service name");
}

static void test_route_not_a_map(void)
{
    struct pt_diag d;
    struct pt_snapshot *s = load("services:\n  a: {targets: [\"127.0.0.1:1\"]}\nroutes:\n"
                                 "  - /x\n"
                                 "  - {match: {paths: [/y]}, service: b}\n",
                                 &d);
    ok(s == NULL, "route not a map: rejected");
    is_int(d.nerrors, 2, "and the next route is still checked");
    is_str(entry(&d, 0), "t.yaml:4:5: routes: each route must be a map, got a scalar", "first");
    is_str(entry(&d, 1), "t.yaml:5:37: service: unknown service \"b\"", "second");
    pt_diag_free(&d);
}

static void test_router_problems(void)
{
    /* a bad regex: reported at that pattern, other errors still collected */
    struct pt_diag d;
    struct pt_snapshot *s = load("services:\n  a: {targets: [\"127.0.0.1:1\"]}\n"
                                 "routes:\n"
                                 "  - match:\n"
                                 "      paths:\n"
                                 "        - /ok\n"
                                 "        - \"~ ^/x/(unclosed\"\n"
                                 "    service: a\n"
                                 "  - match: {paths: [/b]}\n"
                                 "    service: nope\n",
                                 &d);
    ok(s == NULL, "bad regex: rejected");
    ok(has_entry(&d, "t.yaml:7:11: path pattern \"~ ^/x/(unclosed\""), "at the pattern: %s",
       entry(&d, 0));
    ok(has_entry(&d, "t.yaml:10:14: service: unknown service \"nope\""), "other errors too");
    pt_diag_free(&d);

    /* a rewrite capture missing from one of several patterns */
    s = load("services:\n  a: {targets: [\"127.0.0.1:1\"]}\n"
             "routes:\n"
             "  - match: {paths: [\"/u/{id}\", \"/v/{uid}\", \"~ ^/w/(?<id>[0-9]+)$\"]}\n"
             "    service: a\n"
             "    rewrite: /x/{id}/{uid}\n",
             &d);
    ok(s == NULL, "rewrite capture: rejected");
    is_int(d.nerrors, 3, "one error per pattern lacking a capture");
    ok(has_entry(&d, "t.yaml:6:17: rewrite: {id} is not a capture of path \"/v/{uid}\""), "%s",
       entry(&d, 0));
    ok(has_entry(&d, "t.yaml:6:22: rewrite: {uid} is not a capture of path \"/u/{id}\""), "%s",
       entry(&d, 1));
    ok(has_entry(&d,
                 "t.yaml:6:22: rewrite: {uid} is not a capture of path \"~ ^/w/(?<id>[0-9]+)$\""),
       "%s", entry(&d, 2));
    pt_diag_free(&d);

    /* a shadowed route is a warning: the configuration still loads */
    s = load("services:\n  a: {targets: [\"127.0.0.1:1\"]}\n"
             "routes:\n"
             "  - name: first\n"
             "    match: {paths: [/same]}\n"
             "    service: a\n"
             "  - name: second\n"
             "    match: {paths: [/same]}\n"
             "    service: a\n",
             &d);
    ok(s != NULL, "shadowed route: still loads");
    is_int(d.nerrors, 0, "no error");
    is_int(d.n, 1, "one warning");
    ok(d.n == 1 && !d.entries[0].is_error, "it is a warning");
    ok(has_entry(&d, "t.yaml:7:5: warning: route \"second\" can never match"), "%s", entry(&d, 0));
    pt_diag_free(&d);
    pt_snapshot_unref(s);
}

static void test_files(void)
{
    struct pt_diag d;
    pt_diag_init(&d);
    struct pt_snapshot *s = pt_config_load_file("/nonexistent/portico.yaml", &d);
    ok(s == NULL, "missing file");
    is_int(d.nerrors, 1, "one error");
    is_str(entry(&d, 0), "/nonexistent/portico.yaml: cannot read: No such file or directory",
           "without a position");
    pt_diag_free(&d);

    pt_diag_init(&d);
    s = pt_config_load_file("/tmp", &d);
    is_str(entry(&d, 0), "/tmp: cannot read: Is a directory", "a directory");
    pt_diag_free(&d);

    char dir[] = "/tmp/pt-config-XXXXXX";
    ok(mkdtemp(dir) != NULL, "temp dir");
    char path[128];
    snprintf(path, sizeof(path), "%s/portico.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("services:\n  a: {targets: [\"127.0.0.1:1\"]}\nroutes:\n  - match: {paths: [/]}\n"
          "    service: a\n",
          f);
    fclose(f);
    pt_diag_init(&d);
    s = pt_config_load_file(path, &d);
    ok(s != NULL, "loads from a file");
    if (s != NULL) {
        is_str(s->path, path, "path kept");
        is_str(s->base_dir, dir, "base_dir is the file's directory");
        is_str(pt_config_resolve_path(&s->arena, s->base_dir, "certs/a.pem"),
               (snprintf(path, sizeof(path), "%s/certs/a.pem", dir), path),
               "relative paths resolve against it");
        is_str(pt_config_resolve_path(&s->arena, s->base_dir, "/abs.pem"), "/abs.pem",
               "absolute paths stay");
        snprintf(path, sizeof(path), "%s/portico.yaml", dir);
    }
    pt_snapshot_unref(s);
    pt_diag_free(&d);

    /* errors name the file */
    f = fopen(path, "w");
    fputs("server:\n  workerz: 2\n", f);
    fclose(f);
    pt_diag_init(&d);
    s = pt_config_load_file(path, &d);
    char want[200];
    snprintf(want, sizeof(want),
             "%s:2:3: unknown key \"workerz\" in server (did you mean "
             "\"workers\"?)",
             path);
    is_str(entry(&d, 0), want, "FILE:LINE:COL: message");
    pt_diag_free(&d);
    unlink(path);
    rmdir(dir);

    struct pt_arena a;
    pt_arena_init(&a);
    is_str(pt_config_resolve_path(&a, "/etc/portico/", "k.pem"), "/etc/portico/k.pem",
           "base_dir with a trailing slash");
    is_str(pt_config_resolve_path(&a, NULL, "k.pem"), "k.pem", "no base_dir");
    pt_arena_destroy(&a);
}

static void test_json_and_options(void)
{
    struct pt_diag d;
    struct pt_snapshot *s = load(
        "{\"server\": {\"listen\": [\":8081\"], \"workers\": \"auto\"},\n"
        " \"services\": {\"a\": {\"targets\": [{\"address\": \"127.0.0.1:1\", \"weight\": 2}]}},\n"
        " \"routes\": [{\"match\": {\"paths\": [\"/\"]}, \"service\": \"a\"}]}\n",
        &d);
    ok(s != NULL, "a JSON configuration loads");
    dump(&d);
    if (s != NULL) {
        char ip[64];
        is_str(ip_of(&s->server.listen[0].addr, ip, sizeof(ip)), "0.0.0.0",
               "\":8081\" is every interface");
        is_int(s->services[0]->targets[0].weight, 2, "weight");
        ok(s->server.workers >= 1, "workers auto");
    }
    pt_snapshot_unref(s);
    pt_diag_free(&d);

    struct pt_config_options o = {.workers_override = 3};
    pt_diag_init(&d);
    s = pt_config_load_buffer_opts("x", NULL, "server: {workers: 8}\n", 21, &o, &d);
    ok(s != NULL && s->server.workers == 3, "workers_override wins");
    ok(s != NULL && s->base_dir != NULL && s->base_dir[0] == '/', "base_dir defaults to the cwd");
    pt_snapshot_unref(s);
    pt_diag_free(&d);
}

static void *load_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        struct pt_diag d;
        struct pt_snapshot *s = load(full, &d);
        if (s == NULL || d.n != 0)
            return (void *)1;
        pt_snapshot_unref(s);
        pt_diag_free(&d);
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, load_thread, NULL);
    int failed = 0;
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        failed += rv != NULL;
    }
    is_int(failed, 0, "concurrent loads on four threads");
}

int main(void)
{
    test_full();
    test_defaults();
    test_mistakes();
    test_single_mistakes();
    test_route_not_a_map();
    test_router_problems();
    test_files();
    test_json_and_options();
    test_threads();
    return done_testing();
}
