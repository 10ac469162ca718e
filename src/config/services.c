/*
 * `services:` (docs/configuration.md): a map from service name to its
 * targets, protocol, balancing, upstream timeouts, keep-alive pool and
 * retries.  Target host names are resolved here, once per load.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "upstream/service.h"
#include "config/addr.h"
#include "config/compile.h"
#include "http/h1.h"
#include "plugins/plugin.h"
#include "config/snapshot.h"

#define MAX_WEIGHT  1000
#define MAX_RETRIES 10

bool pt__conf_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* --- targets --------------------------------------------------------------- */

/* Does an authority ("host", "host:port", "[v6]", "[v6]:port") carry a port? */
static bool authority_has_port(struct pt_str a)
{
    if (a.len > 0 && a.ptr[0] == '[') {
        const char *close = memchr(a.ptr, ']', a.len);
        return close != NULL && close + 1 < a.ptr + a.len && close[1] == ':';
    }
    return memchr(a.ptr, ':', a.len) != NULL;
}

/*
 * Split a target written as "host:port" or as an http(s) URL.  Sets host
 * (without brackets), port and https.  Reports at n.
 */
static int split_target(struct pt_conf_ctx *c, const struct pt_conf_node *n, const char *text,
                        struct pt_str *host, uint16_t *port, bool *https)
{
    struct pt_str s = pt_str_cstr(text);
    const char *sep = strstr(text, "://");
    const char *err;
    bool bracketed;
    *https = false;
    if (sep != NULL) {
        struct pt_str scheme = pt_str_make(text, (size_t)(sep - text));
        uint16_t default_port;
        if (pt_str_case_eq_lit(scheme, "http")) {
            default_port = 80;
        } else if (pt_str_case_eq_lit(scheme, "https")) {
            default_port = 443;
            *https = true;
        } else {
            pt_conf_error(c, n, "targets: unsupported scheme \"%.*s\" (use http:// or https://)",
                          PT_STR_FMT(scheme));
            return -1;
        }
        const char *auth = sep + 3;
        size_t alen = strcspn(auth, "/?#");
        const char *rest = auth + alen;
        if (strpbrk(rest, "?#") != NULL) {
            pt_conf_error(c, n, "targets: a target URL cannot have a query or a fragment");
            return -1;
        }
        if (rest[0] != '\0' && strcmp(rest, "/") != 0) {
            pt_conf_error(c, n,
                          "targets: a target URL cannot have a path (\"%.100s\"); use rewrite or "
                          "strip_prefix on the route",
                          rest);
            return -1;
        }
        struct pt_str a = pt_str_make(auth, alen);
        if (memchr(a.ptr, '@', a.len) != NULL) {
            pt_conf_error(c, n, "targets: user information is not allowed in a target URL");
            return -1;
        }
        if (authority_has_port(a)) {
            if (pt_conf_split_hostport(a, host, port, &bracketed, &err) != 0) {
                pt_conf_error(c, n, "targets: \"%.100s\": %s", text, err);
                return -1;
            }
        } else {
            *host = a;
            *port = default_port;
            if (a.len >= 2 && a.ptr[0] == '[' && a.ptr[a.len - 1] == ']')
                *host = pt_str_make(a.ptr + 1, a.len - 2);
        }
    } else if (pt_conf_split_hostport(s, host, port, &bracketed, &err) != 0) {
        pt_conf_error(c, n, "targets: \"%.100s\": %s", text, err);
        return -1;
    }
    if (host->len == 0 || pt_str_eq_lit(*host, "*")) {
        pt_conf_error(c, n, "targets: \"%.100s\": missing host", text);
        return -1;
    }
    if (*port == 0) {
        pt_conf_error(c, n, "targets: \"%.100s\": port must be from 1 to 65535", text);
        return -1;
    }
    return 0;
}

/* Parse and resolve the target written at n (a string, or the address of a map). */
static int target_address(struct pt_conf_ctx *c, const struct pt_conf_node *n, const char *text,
                          struct pt_target *t)
{
    struct pt_str host;
    uint16_t port;
    bool https;
    const char *err;
    if (split_target(c, n, text, &host, &port, &https) != 0)
        return -1;
    t->scheme = https ? 2 : strstr(text, "://") != NULL ? 1 : 0;
    char *h = pt_arena_strndup(c->a, host.ptr, host.len);
    if (h == NULL) {
        pt_conf_error(c, n, "out of memory");
        return -1;
    }
    if (host.len > 253) {
        pt_conf_error(c, n, "targets: host name is too long");
        return -1;
    }
    if (pt_conf_resolve(h, port, false, &t->addr, &t->addrlen, &err) != 0) {
        pt_conf_error(c, n, "targets: cannot resolve \"%s\": %s", h, err);
        return -1;
    }
    bool v6 = strchr(h, ':') != NULL;
    t->address = text;
    t->host = h;
    t->port = port;
    t->authority = pt_arena_printf(c->a, v6 ? "[%s]:%u" : "%s:%u", h, (unsigned)port);
    if (t->authority == NULL) {
        pt_conf_error(c, n, "out of memory");
        return -1;
    }
    return 0;
}

struct target_item {
    const char *address;
    unsigned weight;
};

static const struct pt_conf_key target_item_keys[] = {
    PT_CONF_REQUIRED_STRING("address", struct target_item, address),
    PT_CONF_UINT("weight", struct target_item, weight, 1, MAX_WEIGHT, "1"),
    {0},
};

static int parse_targets(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_service *svc = target;
    if (pt_conf_is_null(n) || (n->kind == PT_CONF_SEQ && n->seq.n == 0)) {
        pt_conf_error(c, n, "targets: at least one target is required");
        return -1;
    }
    if (pt_conf_expect_seq(c, "targets", n) != 0)
        return -1;
    struct pt_target *t = pt_arena_calloc(c->a, n->seq.n * sizeof(*t));
    if (t == NULL) {
        pt_conf_error(c, n, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n->seq.n; i++) {
        const struct pt_conf_node *item = n->seq.items[i], *at = item;
        struct target_item ti = {0};
        t[i].index = i;
        if (item->kind == PT_CONF_MAP) {
            if (pt_conf_apply(c, target_item_keys, item, &ti, "targets", NULL) != 0) {
                rc = -1;
                continue;
            }
            at = pt_conf_map_get(item, "address");
        } else {
            ti.weight = 1;
            if (pt_conf_get_string(c, "targets", item, &ti.address) != 0) {
                rc = -1;
                continue;
            }
        }
        t[i].weight = ti.weight;
        if (target_address(c, at, ti.address, &t[i]) != 0)
            rc = -1;
    }
    svc->targets = t;
    svc->ntargets = n->seq.n;
    return rc;
}

/* --- hash_on, retries.on --------------------------------------------------- */

static int parse_hash_on(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_service *svc = target;
    const char *v;
    if (pt_conf_is_null(n))
        return 0;
    if (pt_conf_get_string(c, "hash_on", n, &v) != 0)
        return -1;
    static const char *const simple[] = {"ip", "consumer", "path"};
    static const enum pt_hash_on simple_val[] = {PT_HASH_IP, PT_HASH_CONSUMER, PT_HASH_PATH};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(v, simple[i]) == 0) {
            svc->hash_on = simple_val[i];
            return 0;
        }
    }
    enum pt_hash_on kind;
    const char *name;
    if (strncmp(v, "header:", 7) == 0) {
        kind = PT_HASH_HEADER;
        name = v + 7;
    } else if (strncmp(v, "cookie:", 7) == 0) {
        kind = PT_HASH_COOKIE;
        name = v + 7;
    } else {
        static const char *const all[] = {"ip", "consumer", "path", "header:NAME", "cookie:NAME"};
        const char *hint = pt_conf_suggest(v, all, 5);
        pt_conf_error(c, n,
                      "hash_on: unknown value \"%.100s\"%s%s%s (expected ip, consumer, path, "
                      "header:NAME or cookie:NAME)",
                      v, hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "");
        return -1;
    }
    if (!pt_h1_is_token_cstr(name)) {
        pt_conf_error(c, n, "hash_on: \"%.100s\" needs a valid %s name after the colon", v,
                      kind == PT_HASH_HEADER ? "header" : "cookie");
        return -1;
    }
    svc->hash_on = kind;
    svc->hash_key = name;
    return 0;
}

static int add_status(struct pt_conf_ctx *c, struct pt_service *svc, const struct pt_conf_node *n,
                      uint64_t status)
{
    if (pt_service_retries_status(svc, (int)status))
        return 0;
    if (svc->nretry_statuses == PT_RETRY_MAX_STATUSES) {
        pt_conf_error(c, n, "on: at most %d statuses", PT_RETRY_MAX_STATUSES);
        return -1;
    }
    svc->retry_statuses[svc->nretry_statuses++] = (uint16_t)status;
    return 0;
}

static int parse_retry_on(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_service *svc = target;
    if (pt_conf_is_null(n))
        return 0;
    if (pt_conf_expect_seq(c, "on", n) != 0)
        return -1;
    svc->retry_on = 0;
    svc->nretry_statuses = 0;
    int rc = 0;
    for (size_t i = 0; i < n->seq.n; i++) {
        const struct pt_conf_node *item = n->seq.items[i];
        const char *v;
        uint64_t status;
        if (pt_conf_get_string(c, "on", item, &v) != 0) {
            rc = -1;
        } else if (strcmp(v, "connect_error") == 0) {
            svc->retry_on |= PT_RETRY_ON_CONNECT_ERROR;
        } else if (strcmp(v, "timeout") == 0) {
            svc->retry_on |= PT_RETRY_ON_TIMEOUT;
        } else if (pt_conf_parse_uint(pt_str_cstr(v), &status) == 0) {
            if (status < 400 || status > 599) {
                pt_conf_error(c, item, "on: status %.10s is not from 400 to 599", v);
                rc = -1;
            } else if (add_status(c, svc, item, status) != 0) {
                rc = -1;
            }
        } else {
            static const char *const tokens[] = {"connect_error", "timeout"};
            const char *hint = pt_conf_suggest(v, tokens, 2);
            pt_conf_error(c, item,
                          "on: unknown condition \"%.100s\"%s%s%s (expected connect_error, "
                          "timeout or a status from 400 to 599)",
                          v, hint ? " (did you mean \"" : "", hint ? hint : "", hint ? "\"?)" : "");
            rc = -1;
        }
    }
    return rc;
}

/* --- the service ------------------------------------------------------------ */

static const char *const protocols[] = {"http", "https", "h2c", "grpc", NULL};
static const char *const balances[] = {"round_robin", "least_conn", "random", "hash", NULL};

static const struct pt_conf_key upstream_timeouts_keys[] = {
    PT_CONF_DURATION("connect", struct pt_service, connect_timeout_ms, 1, PT_CONF_NO_MAX, "5s"),
    PT_CONF_DURATION("read", struct pt_service, read_timeout_ms, 1, PT_CONF_NO_MAX, "60s"),
    PT_CONF_DURATION("write", struct pt_service, write_timeout_ms, 1, PT_CONF_NO_MAX, "60s"),
    {0},
};

static const struct pt_conf_key keepalive_keys[] = {
    PT_CONF_UINT("max_idle", struct pt_service, keepalive_max_idle, 0, 100000, "64"),
    PT_CONF_DURATION("idle_timeout", struct pt_service, keepalive_idle_timeout_ms, 1,
                     PT_CONF_NO_MAX, "60s"),
    {0},
};

static const struct pt_conf_key retries_keys[] = {
    PT_CONF_UINT("attempts", struct pt_service, retry_attempts, 0, MAX_RETRIES, "1"),
    PT_CONF_CUSTOM("on", parse_retry_on),
    PT_CONF_BOOL("idempotent_only", struct pt_service, retry_idempotent_only, "true"),
    PT_CONF_CUSTOM("budget", pt__conf_retry_budget),
    PT_CONF_DURATION("budget_window", struct pt_service, retry_budget_window_ms, 1000, 3600000,
                     "10s"),
    PT_CONF_UINT("budget_min", struct pt_service, retry_budget_min, 0, 1000000, "3"),
    PT_CONF_SECTION("backoff", pt__conf_backoff_keys),
    {0},
};

enum {
    KEY_TARGETS = 0,
    KEY_PROTOCOL,
    KEY_BALANCE,
    KEY_HASH_ON,
};

static int parse_service_plugins(struct pt_conf_ctx *c, const struct pt_conf_node *value,
                                 void *target)
{
    struct pt_service *svc = target;
    struct pt_plugin_chain *set = pt_arena_calloc(c->a, sizeof(*set));
    if (set == NULL) {
        pt_conf_error(c, value, "out of memory");
        return -1;
    }
    svc->plugins = set;
    return pt__conf_plugins(c, value, PT_PLUGIN_SERVICE, "plugins", set);
}

/* `tls:` is compiled once the protocol is known (check_protocol). */
static int parse_tls_later(struct pt_conf_ctx *c, const struct pt_conf_node *value, void *target)
{
    (void)c;
    (void)value;
    (void)target;
    return 0;
}

static const struct pt_conf_key service_keys[] = {
    [KEY_TARGETS] = {.name = "targets", .type = PT_CONF_T_CUSTOM, .parse = parse_targets},
    [KEY_PROTOCOL] = PT_CONF_ENUM("protocol", struct pt_service, protocol, protocols, "http"),
    [KEY_BALANCE] = PT_CONF_ENUM("balance", struct pt_service, balance, balances, "round_robin"),
    [KEY_HASH_ON] = PT_CONF_CUSTOM("hash_on", parse_hash_on),
    PT_CONF_STRING("host", struct pt_service, host, NULL),
    PT_CONF_SECTION("timeouts", upstream_timeouts_keys),
    PT_CONF_SECTION("keepalive", keepalive_keys),
    PT_CONF_SECTION("retries", retries_keys),
    PT_CONF_CUSTOM("health", pt__conf_health),
    PT_CONF_CUSTOM("circuit_breaker", pt__conf_breaker),
    PT_CONF_CUSTOM("discovery", pt__conf_discovery),
    PT_CONF_CUSTOM("plugins", parse_service_plugins),
    PT_CONF_CUSTOM("tls", parse_tls_later),
    {0},
};

static bool host_ok(const char *h)
{
    if (h[0] == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)h; *p != '\0'; p++)
        if (*p <= 0x20 || *p == 0x7F || *p == '/')
            return false;
    return true;
}

/*
 * The protocol follows from `protocol:` or from https:// target URLs, and
 * they must agree; an https service gets its TLS context here.
 */
static void check_protocol(struct pt_conf_ctx *c, const struct pt_conf_pair *p,
                           struct pt_service *svc)
{
    const struct pt_conf_node *proto = pt_conf_map_get(p->value, "protocol");
    const struct pt_conf_node *targets = pt_conf_map_get(p->value, "targets");
    const struct pt_conf_node *tls = pt_conf_map_get(p->value, "tls");
    bool https_url = false, http_url = false, targets_ok = svc->targets != NULL;
    for (size_t i = 0; i < svc->ntargets; i++) {
        https_url |= svc->targets[i].scheme == 2;
        http_url |= svc->targets[i].scheme == 1;
        targets_ok &= svc->targets[i].host != NULL;
    }
    if (https_url && http_url) {
        pt_conf_error(c, targets,
                      "targets: http:// and https:// URLs cannot be mixed in one "
                      "service");
        return;
    }
    if (proto == NULL && https_url)
        svc->protocol = PT_PROTO_HTTPS;
    if (proto != NULL && svc->protocol != PT_PROTO_HTTPS && https_url) {
        pt_conf_error(c, proto, "protocol: \"%s\", but the targets are https:// URLs",
                      protocols[svc->protocol]);
        return;
    }
    if (svc->protocol == PT_PROTO_HTTPS && http_url) {
        pt_conf_error(c, proto != NULL ? proto : targets,
                      "protocol: \"https\", but the targets are http:// URLs");
        return;
    }
    if (svc->protocol == PT_PROTO_H2C || svc->protocol == PT_PROTO_GRPC) {
        pt_conf_error(c, proto, "protocol: \"%s\" is not supported yet", protocols[svc->protocol]);
        return;
    }
    if (tls != NULL && !pt_conf_is_null(tls) && svc->protocol != PT_PROTO_HTTPS) {
        pt_conf_error(c, tls, "tls: only for protocol: https (or https:// targets)");
        return;
    }
    if (svc->protocol == PT_PROTO_HTTPS && targets_ok)
        pt__conf_service_tls(c, pt_conf_is_null(tls) ? NULL : tls, svc,
                             proto != NULL ? proto : targets);
}

static struct pt_service *compile_service(struct pt_conf_ctx *c, const struct pt_conf_pair *p,
                                          size_t index)
{
    struct pt_service *svc = pt_arena_calloc(c->a, sizeof(*svc));
    if (svc == NULL) {
        pt_conf_error(c, p->key, "out of memory");
        return NULL;
    }
    svc->name = p->key->scalar.raw;
    svc->index = index;
    svc->retry_on = PT_RETRY_ON_CONNECT_ERROR | PT_RETRY_ON_TIMEOUT;
    svc->retry_statuses[0] = 502;
    svc->retry_statuses[1] = 503;
    svc->retry_statuses[2] = 504;
    svc->nretry_statuses = 3;
    pt__conf_resilience_defaults(svc);
    if (!pt__conf_name_ok(svc->name))
        pt_conf_error(c, p->key,
                      "service name \"%.100s\" must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
                      svc->name);
    char where[128];
    snprintf(where, sizeof(where), "services.%.100s", svc->name);
    uint64_t seen = 0;
    if (pt_conf_is_null(p->value) || p->value->kind != PT_CONF_MAP) {
        pt_conf_error(c, p->value, "service \"%.100s\": expected a map with targets, got %s",
                      svc->name, pt_conf_kind_name(p->value));
        return svc;
    }
    pt_conf_apply(c, service_keys, p->value, svc, where, &seen);
    pt__conf_resilience_check(c, svc, p->value);
    check_protocol(c, p, svc);
    if ((seen & (1u << KEY_HASH_ON)) && svc->balance != PT_BALANCE_HASH)
        pt_conf_warn(c, pt_conf_map_get(p->value, "hash_on"),
                     "hash_on has no effect unless balance is hash");
    if (svc->host != NULL && !host_ok(svc->host))
        pt_conf_error(c, pt_conf_map_get(p->value, "host"),
                      "host: \"%.100s\" is not a valid Host header value", svc->host);
    return svc;
}

void pt__conf_services(struct pt_conf_ctx *c, const struct pt_conf_node *node)
{
    struct pt_snapshot *s = c->snap;
    s->services = NULL;
    s->nservices = 0;
    if (pt_conf_is_null(node))
        return;
    if (node->kind != PT_CONF_MAP) {
        pt_conf_error(c, node, "services: expected a map from service name to service, got %s",
                      pt_conf_kind_name(node));
        return;
    }
    if (node->map.n == 0)
        return;
    s->services = pt_arena_calloc(c->a, node->map.n * sizeof(*s->services));
    if (s->services == NULL) {
        pt_conf_error(c, node, "out of memory");
        return;
    }
    for (size_t i = 0; i < node->map.n; i++) {
        struct pt_service *svc = compile_service(c, &node->map.pairs[i], s->nservices);
        if (svc != NULL)
            s->services[s->nservices++] = svc;
    }
}
