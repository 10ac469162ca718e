/*
 * request-id (SPEC §3, §10): the gateway always sends a request id upstream
 * and back to the client, keeping a client's value when it is sane; this
 * plugin only chooses the header's name.
 *
 *   plugins:
 *     request-id: { header: X-Correlation-Id }
 */
#include <string.h>

#include "config/schema.h"
#include "http/h1.h"
#include "plugins/plugin.h"
#include "proxy/proxy.h"

struct request_id {
    const char *header;
};

static const struct pt_conf_key keys[] = {
    PT_CONF_STRING("header", struct request_id, header, "X-Request-Id"),
    {0},
};

static int configure(struct pt_conf_ctx *c, const struct pt_conf_node *opts, void **state)
{
    struct request_id *r = pt_arena_calloc(c->a, sizeof(*r));
    if (r == NULL)
        return -1;
    if (pt_conf_apply(c, keys, opts, r, "request-id", NULL) != 0)
        return -1;
    for (const char *p = r->header; *p != '\0'; p++) {
        if (!pt_h1_tchar[(unsigned char)*p]) {
            pt_conf_error(c, pt_conf_map_get(opts, "header"),
                          "header: \"%.100s\" is not a valid header name", r->header);
            return -1;
        }
    }
    if (r->header[0] == '\0') {
        pt_conf_error(c, pt_conf_map_get(opts, "header"), "header: must not be empty");
        return -1;
    }
    *state = r;
    return 0;
}

/* The route's plugin may name another header than the one identity used. */
static int on_request(void *state, struct pt_exchange *ex)
{
    const struct request_id *r = state;
    struct pt_str name = pt_str_cstr(r->header);
    if (pt_str_case_eq(name, ex->request_id_header))
        return PT_PLUGIN_CONTINUE;
    ex->request_id_header = name;
    const struct pt_h1_header *h = pt_h1_find_header(ex->req.headers, ex->req.nheaders, name);
    if (h != NULL && pt_reqid_is_sane(h->value)) {
        memcpy(ex->request_id, h->value.ptr, h->value.len);
        ex->request_id_len = (uint8_t)h->value.len;
    }
    return PT_PLUGIN_CONTINUE;
}

const struct pt_plugin_ops pt_plugin_request_id = {
    .name = "request-id",
    .order = PT_ORDER_REQUEST_ID,
    .configure = configure,
    .on_request = on_request,
};

/** The header the global request-id plugin names, or NULL. */
const char *pt_plugin_request_id_header(const struct pt_plugin_chain *chain)
{
    const struct pt_plugin_instance *in = pt_plugin_chain_find(chain, &pt_plugin_request_id);
    return in != NULL ? ((const struct request_id *)in->state)->header : NULL;
}
