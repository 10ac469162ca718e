/*
 * ip-restriction (SPEC §3): allow or deny clients by address, IPv4 and
 * IPv6 CIDR blocks (a bare address is a /32 or /128).
 *
 *   plugins:
 *     ip-restriction:
 *       allow: ["10.0.0.0/8", "2001:db8::/32"]
 *       deny:  ["10.0.0.13"]
 *
 * The address is the exchange's client IP, which already honours
 * server.trusted_proxies (the right-most X-Forwarded-For entry that is not
 * a trusted proxy).  As in Kong: deny wins; with allow set, only listed
 * addresses pass; with only deny, everyone else passes.  IPv4-mapped IPv6
 * addresses match IPv4 blocks.  Refusal: 403, problem type `forbidden`.
 */
#include "config/schema.h"
#include "net/cidr.h"
#include "plugins/plugin.h"
#include "proxy/proxy.h"

struct ip_restriction {
    struct pt_cidr *allow, *deny;
    size_t nallow, ndeny;
};

struct options {
    const struct pt_conf_node *allow, *deny;
};

static const struct pt_conf_key keys[] = {
    PT_CONF_NODE("allow", struct options, allow),
    PT_CONF_NODE("deny", struct options, deny),
    {0},
};

static int blocks(struct pt_conf_ctx *c, const char *opt, const struct pt_conf_node *seq,
                  struct pt_cidr **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (seq == NULL || pt_conf_is_null(seq))
        return 0;
    if (pt_conf_expect_seq(c, opt, seq) != 0)
        return -1;
    *out = pt_arena_calloc(c->a, (seq->seq.n + 1) * sizeof(**out));
    if (*out == NULL) {
        pt_conf_error(c, seq, "out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < seq->seq.n; i++) {
        const char *s;
        if (pt_conf_get_string(c, opt, seq->seq.items[i], &s) != 0) {
            rc = -1;
            continue;
        }
        if (pt_cidr_parse(pt_str_cstr(s), &(*out)[*n]) != 0) {
            pt_conf_error(c, seq->seq.items[i],
                          "%s: \"%.100s\" is not an IP address or CIDR block (e.g. 10.0.0.0/8, "
                          "2001:db8::/32)",
                          opt, s);
            rc = -1;
            continue;
        }
        (*n)++;
    }
    return rc;
}

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    struct options o = {0};
    struct ip_restriction *r = pt_arena_calloc(c->a, sizeof(*r));
    if (r == NULL)
        return -1;
    int rc = pt_conf_apply(c, keys, opts, &o, "ip-restriction", NULL);
    if (blocks(c, "allow", o.allow, &r->allow, &r->nallow) != 0)
        rc = -1;
    if (blocks(c, "deny", o.deny, &r->deny, &r->ndeny) != 0)
        rc = -1;
    if (rc == 0 && r->nallow == 0 && r->ndeny == 0 && opts != NULL) {
        pt_conf_error(c, opts,
                      "ip-restriction: set allow, deny or both (an empty rule would "
                      "let everyone in)");
        rc = -1;
    }
    *state = r;
    return rc;
}

static int on_request(void *state, struct pt_exchange *ex)
{
    const struct ip_restriction *r = state;
    const struct pt_ip *ip = &ex->client_ip;
    bool pass = !pt_cidr_list_contains(r->deny, r->ndeny, ip) &&
                (r->nallow == 0 || pt_cidr_list_contains(r->allow, r->nallow, ip));
    if (pass)
        return PT_PLUGIN_CONTINUE;
    char addr[64];
    pt_ip_format(ip, addr, sizeof(addr));
    char *detail = pt_arena_printf(&ex->arena, "client address %s is not allowed", addr);
    pt_proxy_respond_problem(ex, 403, "forbidden",
                             detail != NULL ? detail : "client address not allowed", NULL, 0);
    return PT_PLUGIN_RESPONDED;
}

const struct pt_plugin_ops pt_plugin_ip_restriction = {
    .name = "ip-restriction",
    .order = PT_ORDER_IP_RESTRICTION,
    .configure = configure,
    .on_request = on_request,
};
