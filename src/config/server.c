/*
 * `server:` and `admin:` (docs/configuration.md): listeners, workers,
 * limits, client timeouts, trusted proxies, log level; the admin listener
 * and token.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/cidr.h"
#include "config/addr.h"
#include "config/compile.h"
#include "config/snapshot.h"

#define MAX_WORKERS   256
#define MAX_LISTENERS 256 /* each is bound once per worker */

/* CPUs this process may run on (its affinity mask), else the online ones. */
static unsigned online_cpus(void)
{
    cpu_set_t set;
    long n = 0;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    return n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

/*
 * Parse and resolve one listening address written at node n ("host:port",
 * "[v6]:port", ":port" or "*:port").  name prefixes messages.
 */
static int listen_address(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                          const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    struct pt_str host;
    uint16_t port;
    bool bracketed;
    const char *err;
    if (pt_conf_split_hostport(pt_str_cstr(text), &host, &port, &bracketed, &err) != 0) {
        pt_conf_error(c, n, "%s: \"%.100s\": %s", name, text, err);
        return -1;
    }
    char h[256];
    if (host.len >= sizeof(h)) {
        pt_conf_error(c, n, "%s: host name is too long", name);
        return -1;
    }
    memcpy(h, host.ptr, host.len);
    h[host.len] = '\0';
    if (pt_conf_resolve(h, port, true, ss, len, &err) != 0) {
        pt_conf_error(c, n, "%s: cannot resolve \"%s\": %s", name, h, err);
        return -1;
    }
    return 0;
}

struct listen_item {
    const char *address;
    const struct pt_conf_node *tls;
};

static const struct pt_conf_key listen_item_keys[] = {
    PT_CONF_REQUIRED_STRING("address", struct listen_item, address),
    PT_CONF_NODE("tls", struct listen_item, tls),
    {0},
};

static bool same_addr(const struct sockaddr_storage *a, socklen_t alen,
                      const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

static int parse_listen_one(struct pt_conf_ctx *c, const struct pt_conf_node *item,
                            struct pt_listen_conf *out)
{
    const struct pt_conf_node *at = item;
    const char *text;
    struct listen_item li = {0};
    if (item->kind == PT_CONF_MAP) {
        if (pt_conf_apply(c, listen_item_keys, item, &li, "server.listen", NULL) != 0)
            return -1;
        text = li.address;
        at = pt_conf_map_get(item, "address");
    } else if (pt_conf_get_string(c, "listen", item, &text) != 0) {
        return -1;
    }
    int rc = listen_address(c, "listen", at, text, &out->addr, &out->addrlen);
    if (rc == 0)
        out->address = text;
    if (li.tls != NULL && !pt_conf_is_null(li.tls) && pt__conf_listen_tls(c, li.tls, out) != 0)
        rc = -1;
    return rc;
}

static int parse_listen(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_server_conf *s = target;
    if (pt_conf_is_null(n))
        return 0; /* the default stays */
    /* One address may be written without the list. */
    size_t count = n->kind == PT_CONF_SEQ ? n->seq.n : 1;
    if (n->kind == PT_CONF_MAP) {
        pt_conf_error(c, n, "listen: expected a list of addresses, got a map");
        return -1;
    }
    if (count == 0) {
        pt_conf_error(c, n, "listen: at least one address is required");
        return -1;
    }
    if (count > MAX_LISTENERS) {
        pt_conf_error(c, n, "listen: at most %d addresses", MAX_LISTENERS);
        return -1;
    }
    struct pt_listen_conf *l = pt_arena_calloc(c->a, count * sizeof(*l));
    if (l == NULL) {
        pt_conf_error(c, n, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        const struct pt_conf_node *item = n->kind == PT_CONF_SEQ ? n->seq.items[i] : n;
        if (parse_listen_one(c, item, &l[i]) != 0) {
            rc = -1;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (l[j].address != NULL && addr_port(&l[i].addr) != 0 &&
                same_addr(&l[i].addr, l[i].addrlen, &l[j].addr, l[j].addrlen)) {
                pt_conf_error(c, item, "listen: duplicate address \"%s\"", l[i].address);
                rc = -1;
                break;
            }
        }
    }
    s->listen = l;
    s->nlisten = count;
    return rc;
}

static int parse_workers(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_server_conf *s = target;
    uint64_t v;
    if (pt_conf_is_null(n))
        return 0;
    if (n->kind == PT_CONF_SCALAR && strcmp(n->scalar.value, "auto") == 0) {
        s->workers = online_cpus();
        return 0;
    }
    if (n->kind == PT_CONF_SCALAR && !n->scalar.invalid &&
        pt_conf_parse_uint(pt_str_make(n->scalar.value, n->scalar.len), &v) != 0) {
        pt_conf_error(c, n, "workers: expected a number from 1 to %d or \"auto\", got \"%.100s\"",
                      MAX_WORKERS, n->scalar.value);
        return -1;
    }
    if (pt_conf_get_uint(c, "workers", n, 1, MAX_WORKERS, &v) != 0)
        return -1;
    s->workers = (unsigned)v;
    return 0;
}

static int parse_trusted_proxies(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_server_conf *s = target;
    if (pt_conf_is_null(n))
        return 0;
    if (pt_conf_expect_seq(c, "trusted_proxies", n) != 0)
        return -1;
    if (n->seq.n == 0)
        return 0;
    struct pt_cidr *list = pt_arena_calloc(c->a, n->seq.n * sizeof(*list));
    if (list == NULL) {
        pt_conf_error(c, n, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n->seq.n; i++) {
        const struct pt_conf_node *item = n->seq.items[i];
        const char *text;
        if (pt_conf_get_string(c, "trusted_proxies", item, &text) != 0) {
            rc = -1;
            continue;
        }
        if (pt_cidr_parse(pt_str_make(item->scalar.value, item->scalar.len), &list[i]) != 0) {
            pt_conf_error(c, item,
                          "trusted_proxies: \"%.100s\" is not an IP address or CIDR block "
                          "(e.g. 10.0.0.0/8)",
                          text);
            rc = -1;
        }
    }
    s->trusted_proxies = list;
    s->ntrusted_proxies = n->seq.n;
    return rc;
}

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

static const struct pt_conf_key limits_keys[] = {
    PT_CONF_SIZE("max_header_bytes", struct pt_server_conf, max_header_bytes, 1024, 1024 * 1024,
                 "16k"),
    PT_CONF_SIZE("max_body_bytes", struct pt_server_conf, max_body_bytes, 0, PT_CONF_NO_MAX, "10m"),
    PT_CONF_UINT("max_connections", struct pt_server_conf, max_connections, 1, 10000000, "100000"),
    {0},
};

static const struct pt_conf_key client_timeouts_keys[] = {
    PT_CONF_DURATION("client_header", struct pt_server_conf, client_header_timeout_ms, 1,
                     PT_CONF_NO_MAX, "10s"),
    PT_CONF_DURATION("client_body", struct pt_server_conf, client_body_timeout_ms, 1,
                     PT_CONF_NO_MAX, "60s"),
    PT_CONF_DURATION("client_idle", struct pt_server_conf, client_idle_timeout_ms, 1,
                     PT_CONF_NO_MAX, "60s"),
    PT_CONF_DURATION("send", struct pt_server_conf, send_timeout_ms, 1, PT_CONF_NO_MAX, "60s"),
    {0},
};

static const struct pt_conf_key server_keys[] = {
    PT_CONF_CUSTOM("listen", parse_listen),
    PT_CONF_CUSTOM("workers", parse_workers),
    PT_CONF_SECTION("limits", limits_keys),
    PT_CONF_SECTION("timeouts", client_timeouts_keys),
    PT_CONF_DURATION("drain_timeout", struct pt_server_conf, drain_timeout_ms, 0, PT_CONF_NO_MAX,
                     "30s"),
    PT_CONF_CUSTOM("trusted_proxies", parse_trusted_proxies),
    PT_CONF_ENUM("log_level", struct pt_server_conf, log_level, log_levels, "info"),
    {0},
};

void pt__conf_server(struct pt_conf_ctx *c, const struct pt_conf_node *node)
{
    struct pt_server_conf *s = &c->snap->server;
    static const char default_listen[] = "0.0.0.0:8080";
    memset(s, 0, sizeof(*s));
    s->workers = online_cpus();
    s->listen = pt_arena_calloc(c->a, sizeof(*s->listen));
    if (s->listen == NULL) {
        pt_diag_error(c->d, c->file, 0, 0, "out of memory");
        return;
    }
    s->nlisten = 1;
    s->listen[0].address = default_listen;
    const char *err;
    PT_BUG_ON(pt_conf_resolve("0.0.0.0", 8080, true, &s->listen[0].addr, &s->listen[0].addrlen,
                              &err) != 0);
    pt_conf_apply(c, server_keys, node, s, "server", NULL);
}

/* --- admin ----------------------------------------------------------------- */

static int parse_admin_listen(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_admin_conf *a = target;
    const char *text;
    if (pt_conf_is_null(n))
        return 0;
    if (pt_conf_get_string(c, "listen", n, &text) != 0 ||
        listen_address(c, "listen", n, text, &a->addr, &a->addrlen) != 0)
        return -1;
    a->listen = text;
    const struct pt_server_conf *s = &c->snap->server;
    for (size_t i = 0; i < s->nlisten; i++) {
        if (addr_port(&a->addr) != 0 &&
            same_addr(&a->addr, a->addrlen, &s->listen[i].addr, s->listen[i].addrlen)) {
            pt_conf_error(c, n, "listen: \"%s\" is also a server listener", text);
            return -1;
        }
    }
    return 0;
}

static const struct pt_conf_key admin_keys[] = {
    PT_CONF_CUSTOM("listen", parse_admin_listen),
    PT_CONF_STRING("token", struct pt_admin_conf, token, NULL),
    {0},
};

void pt__conf_admin(struct pt_conf_ctx *c, const struct pt_conf_node *node)
{
    struct pt_admin_conf *a = &c->snap->admin;
    memset(a, 0, sizeof(*a));
    pt_conf_apply(c, admin_keys, node, a, "admin", NULL);
}
