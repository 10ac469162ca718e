/*
 * What the compiled snapshot knows about a route or a service, for GET
 * /routes and /services: the values in effect after defaults and ${NAME}
 * expansion, resolved addresses, the plugin chain in run order, and
 * whether a route can ever match.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "compose/plan.h"
#include "config/snapshot.h"
#include "plugins/plugin.h"
#include "proxy/route.h"
#include "router/router.h"
#include "upstream/service.h"
#include "admin/admin-int.h"

static const char *const scope_names[] = {"global", "service", "route"};

json_t *pt_admin_chain_json(const void *chain_)
{
    const struct pt_plugin_chain *chain = chain_;
    json_t *a = json_array();
    for (size_t i = 0; chain != NULL && i < chain->n; i++) {
        const struct pt_plugin_instance *in = &chain->items[i];
        json_t *p = json_object();
        json_object_set_new(p, "name", json_string(in->ops->name));
        json_object_set_new(p, "scope",
                            json_string((unsigned)in->scope < 3 ? scope_names[in->scope] : "?"));
        json_object_set_new(p, "order", json_integer(in->ops->order));
        json_array_append_new(a, p);
    }
    return a;
}

static json_t *rewrite_json(const struct pt_route *r)
{
    if (r->rewrite == NULL)
        return json_null();
    char buf[2048];
    size_t n = 0;
    for (size_t i = 0; i < r->nrewrite && n < sizeof(buf) - 1; i++) {
        const struct pt_rewrite_part *p = &r->rewrite[i];
        int k = snprintf(buf + n, sizeof(buf) - n, p->is_capture ? "{%.*s}" : "%.*s",
                         PT_STR_FMT(p->text));
        n += k > 0 ? (size_t)k : 0;
    }
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    return json_stringn(buf, n);
}

json_t *pt_admin_route_facts(const struct pt_snapshot *s, size_t index)
{
    const struct pt_route *r = s->routes[index];
    json_t *j = json_object();
    json_object_set_new(j, "index", json_integer((json_int_t)index));
    json_object_set_new(j, "service",
                        r->service != NULL ? json_string(r->service->name) : json_null());
    json_object_set_new(j, "strip_prefix",
                        r->strip_prefix.len > 0
                            ? json_stringn(r->strip_prefix.ptr, r->strip_prefix.len)
                            : json_null());
    json_object_set_new(j, "rewrite", rewrite_json(r));
    if (r->aggregate != NULL) {
        json_t *calls = json_array();
        for (size_t i = 0; i < r->aggregate->ncalls; i++) {
            const struct pt_compose_call *cc = &r->aggregate->calls[i];
            json_t *c = json_object();
            json_object_set_new(c, "key", json_string(cc->key));
            json_object_set_new(c, "service",
                                cc->service != NULL ? json_string(cc->service->name) : json_null());
            json_array_append_new(calls, c);
        }
        json_t *ag = json_object();
        json_object_set_new(ag, "timeout_ms", json_integer((json_int_t)r->aggregate->timeout_ms));
        json_object_set_new(ag, "calls", calls);
        json_object_set_new(j, "aggregate", ag);
    }
    json_object_set_new(j, "preserve_host", json_boolean(r->preserve_host));
    json_object_set_new(j, "max_body_bytes",
                        json_integer((json_int_t)(r->max_body_bytes ? r->max_body_bytes
                                                                    : s->server.max_body_bytes)));
    json_object_set_new(j, "plugins", pt_admin_chain_json(&r->chain));
    const char *why = s->router != NULL ? pt_router_shadow_reason(s->router, index) : NULL;
    json_object_set_new(j, "shadowed", json_boolean(why != NULL));
    if (why != NULL)
        json_object_set_new(j, "shadowed_because", json_string(why));
    return j;
}

static const char *const proto_names[PT_PROTO_COUNT] = {"http", "https", "h2c", "grpc"};
static const char *const balance_names[PT_BALANCE_COUNT] = {"round_robin", "least_conn", "random",
                                                            "hash"};
static const char *const hash_names[PT_HASH_ON_COUNT] = {"ip", "consumer", "header", "cookie",
                                                         "path"};

static json_t *sockaddr_json(const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN + 16];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, sizeof(out), "%s:%u", host, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, sizeof(out), "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        return json_null();
    }
    return json_string(out);
}

static json_t *retries_json(const struct pt_service *svc)
{
    json_t *on = json_array();
    if (svc->retry_on & PT_RETRY_ON_CONNECT_ERROR)
        json_array_append_new(on, json_string("connect_error"));
    if (svc->retry_on & PT_RETRY_ON_TIMEOUT)
        json_array_append_new(on, json_string("timeout"));
    for (size_t i = 0; i < svc->nretry_statuses; i++)
        json_array_append_new(on, json_integer(svc->retry_statuses[i]));
    json_t *j = json_object();
    json_object_set_new(j, "attempts", json_integer(svc->retry_attempts));
    json_object_set_new(j, "on", on);
    json_object_set_new(j, "idempotent_only", json_boolean(svc->retry_idempotent_only));
    return j;
}

json_t *pt_admin_service_facts(const struct pt_snapshot *s, size_t index)
{
    const struct pt_service *svc = s->services[index];
    json_t *j = json_object();
    json_object_set_new(j, "index", json_integer((json_int_t)index));
    json_object_set_new(
        j, "protocol",
        json_string((unsigned)svc->protocol < PT_PROTO_COUNT ? proto_names[svc->protocol] : "?"));
    json_object_set_new(
        j, "balance",
        json_string((unsigned)svc->balance < PT_BALANCE_COUNT ? balance_names[svc->balance] : "?"));
    if (svc->balance == PT_BALANCE_HASH) {
        char on[160];
        snprintf(on, sizeof(on), "%s%s%.128s",
                 (unsigned)svc->hash_on < PT_HASH_ON_COUNT ? hash_names[svc->hash_on] : "?",
                 svc->hash_key != NULL ? ":" : "", svc->hash_key != NULL ? svc->hash_key : "");
        json_object_set_new(j, "hash_on", json_string(on));
    }
    json_t *targets = json_array();
    for (size_t i = 0; i < svc->ntargets; i++) {
        const struct pt_target *t = &svc->targets[i];
        json_t *o = json_object();
        json_object_set_new(o, "address", json_string(t->address));
        json_object_set_new(o, "weight", json_integer(t->weight));
        json_object_set_new(o, "resolved", sockaddr_json(&t->addr));
        json_array_append_new(targets, o);
    }
    json_object_set_new(j, "targets", targets);
    json_t *to = json_object();
    json_object_set_new(to, "connect_ms", json_integer((json_int_t)svc->connect_timeout_ms));
    json_object_set_new(to, "read_ms", json_integer((json_int_t)svc->read_timeout_ms));
    json_object_set_new(to, "write_ms", json_integer((json_int_t)svc->write_timeout_ms));
    json_object_set_new(j, "timeouts", to);
    json_t *ka = json_object();
    json_object_set_new(ka, "max_idle", json_integer(svc->keepalive_max_idle));
    json_object_set_new(ka, "idle_timeout_ms",
                        json_integer((json_int_t)svc->keepalive_idle_timeout_ms));
    json_object_set_new(j, "keepalive", ka);
    json_object_set_new(j, "retries", retries_json(svc));
    json_object_set_new(j, "plugins", pt_admin_chain_json(svc->plugins));
    json_t *used = json_array();
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct pt_route *r = s->routes[i];
        bool uses = r->service == svc;
        for (size_t k = 0; !uses && r->aggregate != NULL && k < r->aggregate->ncalls; k++)
            uses = r->aggregate->calls[k].service == svc;
        if (uses)
            json_array_append_new(used, json_string(r->name));
    }
    json_object_set_new(j, "routes", used);
    return j;
}
