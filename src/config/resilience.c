/*
 * A service's resilience keys (docs/resilience.md): `health` (active and
 * passive), `circuit_breaker`, `discovery`, and the retry budget and
 * backoff under `retries`.  The sections compile into the pt_*_conf
 * structs of upstream/service.h; a section that is present is enabled,
 * with the documented default for every key left out.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/service.h"
#include "config/addr.h"
#include "config/compile.h"

#define MAX_THRESHOLD 1000

/* --- value types --------------------------------------------------------- */

/*
 * A ratio written as a fraction ("0.5") or a percentage ("50%"), within
 * 0..max (a fraction), into parts per million.
 */
static int get_ratio(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                     double max, uint32_t *ppm)
{
    const char *v;
    if (pt_conf_get_string(c, name, n, &v) != 0)
        return -1;
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    bool pct = end != NULL && end != v && end[0] == '%' && end[1] == '\0';
    if (end == v || errno != 0 || !(pct || end[0] == '\0') || !isfinite(x)) {
        pt_conf_error(c, n, "%s: expected a fraction (0.2) or a percentage (20%%), got \"%.40s\"",
                      name, v);
        return -1;
    }
    if (pct)
        x /= 100.0;
    if (x < 0 || x > max) {
        pt_conf_error(c, n, "%s: must be from 0 to %g%%", name, max * 100.0);
        return -1;
    }
    *ppm = (uint32_t)llround(x * PT_PPM);
    return 0;
}

/*
 * A list of statuses: each item a status (100..599) or a range written
 * "200-399".
 */
static int get_statuses(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                        struct pt_status_set *set)
{
    if (pt_conf_is_null(n))
        return 0;
    if (pt_conf_expect_seq(c, name, n) != 0)
        return -1;
    memset(set, 0, sizeof(*set));
    int rc = 0;
    for (size_t i = 0; i < n->seq.n; i++) {
        const struct pt_conf_node *item = n->seq.items[i];
        const char *v;
        if (pt_conf_get_string(c, name, item, &v) != 0) {
            rc = -1;
            continue;
        }
        unsigned lo, hi;
        int used = 0;
        if (sscanf(v, "%3u-%3u%n", &lo, &hi, &used) == 2 && v[used] == '\0') {
        } else if (sscanf(v, "%3u%n", &lo, &used) == 1 && v[used] == '\0') {
            hi = lo;
        } else {
            pt_conf_error(c, item,
                          "%s: expected a status (503) or a range (200-399), got \"%.40s\"", name,
                          v);
            rc = -1;
            continue;
        }
        if (lo < 100 || hi > 599 || lo > hi) {
            pt_conf_error(c, item, "%s: \"%.40s\" is not a status or range within 100-599", name,
                          v);
            rc = -1;
            continue;
        }
        for (unsigned s = lo; s <= hi; s++)
            pt_status_set_add(set, (int)s);
    }
    return rc;
}

static void set_statuses(struct pt_status_set *set, const int *list, size_t n)
{
    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < n; i++)
        pt_status_set_add(set, list[i]);
}

/* --- health.active --------------------------------------------------------- */

static int parse_active_statuses(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *t)
{
    return get_statuses(c, "statuses", n, &((struct pt_active_conf *)t)->statuses);
}

static const struct pt_conf_key active_keys[] = {
    PT_CONF_STRING("path", struct pt_active_conf, path, "/healthz"),
    PT_CONF_DURATION("interval", struct pt_active_conf, interval_ms, 10, PT_CONF_NO_MAX, "2s"),
    PT_CONF_DURATION("timeout", struct pt_active_conf, timeout_ms, 1, PT_CONF_NO_MAX, "1s"),
    PT_CONF_UINT("healthy", struct pt_active_conf, healthy, 1, MAX_THRESHOLD, "2"),
    PT_CONF_UINT("unhealthy", struct pt_active_conf, unhealthy, 1, MAX_THRESHOLD, "3"),
    PT_CONF_CUSTOM("statuses", parse_active_statuses),
    {0},
};

static bool path_ok(const char *p)
{
    if (p[0] != '/')
        return false;
    for (const unsigned char *s = (const unsigned char *)p; *s != '\0'; s++)
        if (*s <= 0x20 || *s >= 0x7f)
            return false;
    return true;
}

static int parse_active(struct pt_conf_ctx *c, const struct pt_conf_node *n,
                        struct pt_active_conf *a)
{
    for (int s = 200; s <= 399; s++)
        pt_status_set_add(&a->statuses, s);
    if (pt_conf_expect_map(c, "active", n) != 0)
        return -1;
    a->enabled = true;
    if (pt_conf_apply(c, active_keys, n, a, "health.active", NULL) != 0)
        return -1;
    if (a->path != NULL && !path_ok(a->path)) {
        pt_conf_error(c, pt_conf_map_get(n, "path"),
                      "path: \"%.100s\" must start with / and contain no spaces or control "
                      "characters",
                      a->path);
        return -1;
    }
    return 0;
}

/* --- health.passive -------------------------------------------------------- */

static int parse_passive_ratio(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *t)
{
    return get_ratio(c, "failure_ratio", n, 1.0, &((struct pt_passive_conf *)t)->failure_ratio_ppm);
}

static int parse_passive_statuses(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *t)
{
    return get_statuses(c, "statuses", n, &((struct pt_passive_conf *)t)->statuses);
}

static const struct pt_conf_key passive_keys[] = {
    PT_CONF_UINT("failures", struct pt_passive_conf, failures, 0, MAX_THRESHOLD, "5"),
    PT_CONF_CUSTOM("failure_ratio", parse_passive_ratio),
    PT_CONF_UINT("min_requests", struct pt_passive_conf, min_requests, 1, 1000000, "10"),
    PT_CONF_DURATION("window", struct pt_passive_conf, window_ms, 100, 86400000, "10s"),
    PT_CONF_DURATION("ejection", struct pt_passive_conf, ejection_ms, 1, 86400000, "30s"),
    PT_CONF_DURATION("max_ejection", struct pt_passive_conf, max_ejection_ms, 1, 86400000, "300s"),
    PT_CONF_CUSTOM("statuses", parse_passive_statuses),
    PT_CONF_BOOL("eject_last", struct pt_passive_conf, eject_last, "false"),
    {0},
};

static int parse_passive(struct pt_conf_ctx *c, const struct pt_conf_node *n,
                         struct pt_passive_conf *p)
{
    static const int def[] = {500, 502, 503, 504};
    set_statuses(&p->statuses, def, 4);
    p->failure_ratio_ppm = PT_PPM / 2;
    if (pt_conf_expect_map(c, "passive", n) != 0)
        return -1;
    p->enabled = true;
    if (pt_conf_apply(c, passive_keys, n, p, "health.passive", NULL) != 0)
        return -1;
    if (p->max_ejection_ms < p->ejection_ms) {
        pt_conf_error(c,
                      pt_conf_map_get(n, "max_ejection") ? pt_conf_map_get(n, "max_ejection") : n,
                      "max_ejection must not be shorter than ejection");
        return -1;
    }
    return 0;
}

struct health_nodes {
    const struct pt_conf_node *active, *passive;
};

static const struct pt_conf_key health_keys[] = {
    PT_CONF_NODE("active", struct health_nodes, active),
    PT_CONF_NODE("passive", struct health_nodes, passive),
    {0},
};

int pt__conf_health(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_service *svc = target;
    struct health_nodes h = {0};
    if (pt_conf_is_null(n))
        return 0;
    if (pt_conf_expect_map(c, "health", n) != 0 ||
        pt_conf_apply(c, health_keys, n, &h, "health", NULL) != 0)
        return -1;
    int rc = 0;
    if (!pt_conf_is_null(h.active) && parse_active(c, h.active, &svc->active) != 0)
        rc = -1;
    if (!pt_conf_is_null(h.passive) && parse_passive(c, h.passive, &svc->passive) != 0)
        rc = -1;
    return rc;
}

/* --- circuit_breaker ----------------------------------------------------- */

static int parse_breaker_ratio(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *t)
{
    return get_ratio(c, "failure_ratio", n, 1.0, &((struct pt_breaker_conf *)t)->failure_ratio_ppm);
}

static int parse_breaker_on(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *t)
{
    return get_statuses(c, "on", n, &((struct pt_breaker_conf *)t)->on);
}

static const struct pt_conf_key breaker_keys[] = {
    PT_CONF_CUSTOM("failure_ratio", parse_breaker_ratio),
    PT_CONF_UINT("min_requests", struct pt_breaker_conf, min_requests, 1, 1000000, "20"),
    PT_CONF_DURATION("window", struct pt_breaker_conf, window_ms, 100, 86400000, "10s"),
    PT_CONF_DURATION("open_for", struct pt_breaker_conf, open_for_ms, 1, 86400000, "15s"),
    PT_CONF_UINT("half_open_requests", struct pt_breaker_conf, half_open_requests, 1, 100, "3"),
    PT_CONF_CUSTOM("on", parse_breaker_on),
    {0},
};

int pt__conf_breaker(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_breaker_conf *b = &((struct pt_service *)target)->breaker;
    static const int def[] = {502, 503, 504};
    set_statuses(&b->on, def, 3);
    b->failure_ratio_ppm = PT_PPM / 2;
    if (pt_conf_is_null(n))
        return 0; /* like leaving it out: no breaker */
    if (pt_conf_expect_map(c, "circuit_breaker", n) != 0)
        return -1;
    b->enabled = true;
    return pt_conf_apply(c, breaker_keys, n, b, "circuit_breaker", NULL);
}

/* --- discovery ------------------------------------------------------------ */

static const struct pt_conf_key discovery_keys[] = {
    PT_CONF_REQUIRED_STRING("dns", struct pt_discovery_conf, dns),
    PT_CONF_UINT("port", struct pt_discovery_conf, port, 1, 65535, NULL),
    PT_CONF_DURATION("interval", struct pt_discovery_conf, interval_ms, 1000, 86400000, "10s"),
    PT_CONF_STRING("resolver", struct pt_discovery_conf, resolver, NULL),
    {0},
};

static bool dns_name_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_') ||
            ++label > 63)
            return false;
    }
    return true;
}

int pt__conf_discovery(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_discovery_conf *d = &((struct pt_service *)target)->discovery;
    if (pt_conf_is_null(n))
        return 0;
    if (pt_conf_expect_map(c, "discovery", n) != 0)
        return -1;
    if (pt_conf_apply(c, discovery_keys, n, d, "discovery", NULL) != 0)
        return -1;
    d->enabled = true;
    if (d->dns == NULL)
        return -1;
    if (!dns_name_ok(d->dns)) {
        pt_conf_error(c, pt_conf_map_get(n, "dns"), "dns: \"%.100s\" is not a DNS name", d->dns);
        return -1;
    }
    d->srv = d->dns[0] == '_';
    if (!d->srv && d->port == 0) {
        pt_conf_error(c, n,
                      "discovery: port is required unless dns names an SRV record "
                      "(_service._proto.name)");
        return -1;
    }
    if (d->resolver != NULL) {
        struct pt_str host;
        uint16_t port;
        bool bracketed;
        const char *err;
        if (pt_conf_split_hostport(pt_str_cstr(d->resolver), &host, &port, &bracketed, &err) != 0) {
            pt_conf_error(c, pt_conf_map_get(n, "resolver"),
                          "resolver: \"%.100s\": %s (expected IP:PORT)", d->resolver, err);
            return -1;
        }
    }
    return 0;
}

/* --- retries: budget and backoff ------------------------------------------ */

int pt__conf_retry_budget(struct pt_conf_ctx *c, const struct pt_conf_node *n, void *target)
{
    struct pt_service *svc = target;
    if (pt_conf_is_null(n))
        return 0;
    return get_ratio(c, "budget", n, 10.0, &svc->retry_budget_ppm);
}

const struct pt_conf_key pt__conf_backoff_keys[] = {
    PT_CONF_DURATION("base", struct pt_service, retry_backoff_base_ms, 0, 60000, "25ms"),
    PT_CONF_DURATION("max", struct pt_service, retry_backoff_max_ms, 0, 600000, "250ms"),
    {0},
};

void pt__conf_resilience_defaults(struct pt_service *svc)
{
    svc->retry_budget_ppm = PT_PPM / 5; /* 20% */
}

/*
 * Checks across keys, after the service compiled: targets xor discovery,
 * and discovered targets in place of written ones.
 */
void pt__conf_resilience_check(struct pt_conf_ctx *c, struct pt_service *svc,
                               const struct pt_conf_node *map)
{
    const struct pt_conf_node *tn = pt_conf_map_get(map, "targets");
    const struct pt_conf_node *dn = pt_conf_map_get(map, "discovery");
    if (tn != NULL && dn != NULL) {
        pt_conf_error(c, dn, "discovery: a service has either targets or discovery, not both");
        return;
    }
    if (tn == NULL && dn == NULL) {
        pt_conf_error(c, map, "missing required key \"targets\" in services.%.100s", svc->name);
        return;
    }
    if (svc->retry_backoff_max_ms < svc->retry_backoff_base_ms)
        svc->retry_backoff_max_ms = svc->retry_backoff_base_ms;
    if (dn == NULL || !svc->discovery.enabled)
        return;
    /* discovery: the targets come from the last answer (none yet: an empty service) */
    const struct pt_discovered_target *found = NULL;
    size_t n = 0;
    if (c->opts->discovered != NULL)
        c->opts->discovered(c->opts->discovered_ctx, svc->name, &svc->discovery, &found, &n);
    svc->targets = n > 0 ? pt_arena_calloc(c->a, n * sizeof(*svc->targets)) : NULL;
    if (n > 0 && svc->targets == NULL) {
        pt_conf_error(c, dn, "out of memory");
        return;
    }
    svc->ntargets = n;
    for (size_t i = 0; i < n; i++) {
        struct pt_target *t = &svc->targets[i];
        const struct pt_discovered_target *f = &found[i];
        t->index = i;
        t->weight = f->weight > 0 ? f->weight : 1;
        t->port = f->port;
        t->address = pt_arena_strndup(c->a, f->address, strlen(f->address));
        t->host = pt_arena_strndup(c->a, f->host, strlen(f->host));
        t->authority = t->address;
        memcpy(&t->addr, &f->addr, sizeof(t->addr));
        t->addrlen = f->addrlen;
        if (t->address == NULL || t->host == NULL) {
            pt_conf_error(c, dn, "out of memory");
            return;
        }
    }
}
