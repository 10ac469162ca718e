/*
 * `tls:` on listeners and on services (docs/tls.md): the keys, then the
 * contexts built from the files they name (src/net/tls.c), with every
 * problem reported at the value that names the file at fault.
 *
 * Relative paths resolve against the configuration file's directory.
 * Fuzzing builds (-DPT_FUZZING) check the keys but never open a file, the
 * way they never resolve a host name.
 */
#include <string.h>

#include "net/tls.h"
#include "upstream/service.h"
#include "config/compile.h"
#include "config/config.h"
#include "config/snapshot.h"

#ifdef PT_FUZZING
#define LOAD_FILES 0
#else
#define LOAD_FILES 1
#endif

/* --- listeners --------------------------------------------------------------- */

static const char *const verify_modes[] = {"optional", "require", NULL};

struct listen_tls {
    const struct pt_conf_node *certificates;
    const char *min_version;
    const char *client_ca;
    unsigned client_verify; /* index into verify_modes */
};

enum { KEY_CERTS = 0, KEY_MIN_VERSION, KEY_CLIENT_CA, KEY_CLIENT_VERIFY };

static const struct pt_conf_key listen_tls_keys[] = {
    [KEY_CERTS] = {.name = "certificates",
                   .type = PT_CONF_T_NODE,
                   .offset = offsetof(struct listen_tls, certificates),
                   .required = true},
    [KEY_MIN_VERSION] = PT_CONF_STRING("min_version", struct listen_tls, min_version, "1.2"),
    [KEY_CLIENT_CA] = PT_CONF_STRING("client_ca", struct listen_tls, client_ca, NULL),
    [KEY_CLIENT_VERIFY] =
        PT_CONF_ENUM("client_verify", struct listen_tls, client_verify, verify_modes, "optional"),
    {0},
};

struct cert_item {
    const char *cert;
    const char *key;
};

static const struct pt_conf_key cert_item_keys[] = {
    PT_CONF_REQUIRED_STRING("cert", struct cert_item, cert),
    PT_CONF_REQUIRED_STRING("key", struct cert_item, key),
    {0},
};

/* The value node that names the file a report blames (falls back to at). */
static const struct pt_conf_node *blamed(const struct pt_conf_node *map, enum pt_tls_field f,
                                         const char *ca_key, const struct pt_conf_node *at)
{
    const char *key = f == PT_TLS_F_CERT ? "cert" : f == PT_TLS_F_KEY ? "key" : ca_key;
    const struct pt_conf_node *n = key != NULL ? pt_conf_map_get(map, key) : NULL;
    return n != NULL ? n : at;
}

static const char *field_name(enum pt_tls_field f, const char *ca_key)
{
    return f == PT_TLS_F_CERT  ? "cert"
           : f == PT_TLS_F_KEY ? "key"
           : f == PT_TLS_F_CA  ? ca_key
                               : "tls";
}

/* Report what r holds (error and warning) at the values of map.  Returns -1 on an error. */
static int report(struct pt_conf_ctx *c, const struct pt_tls_report *r,
                  const struct pt_conf_node *map, const char *ca_key, const struct pt_conf_node *at)
{
    if (r->warn_field != PT_TLS_F_NONE)
        pt_conf_warn(c, blamed(map, r->warn_field, ca_key, at), "%s: %s",
                     field_name(r->warn_field, ca_key), r->warning);
    if (r->error[0] == '\0')
        return 0;
    pt_conf_error(c, blamed(map, r->error_field, ca_key, at), "%s: %s",
                  field_name(r->error_field, ca_key), r->error);
    return -1;
}

static const char *resolve(struct pt_conf_ctx *c, const char *p)
{
    const char *path = pt_config_resolve_path(c->a, c->snap->base_dir, p);
    pt_conf_note_file(c, path);
    return path;
}

static int check_certificates(struct pt_conf_ctx *c, const struct pt_conf_node *list,
                              struct cert_item *items)
{
    int rc = 0;
    for (size_t i = 0; i < list->seq.n; i++) {
        const struct pt_conf_node *item = list->seq.items[i];
        if (item->kind != PT_CONF_MAP) {
            pt_conf_error(c, item, "certificates: expected a map with cert and key, got %s",
                          pt_conf_kind_name(item));
            rc = -1;
            continue;
        }
        if (pt_conf_apply(c, cert_item_keys, item, &items[i], "certificates", NULL) != 0)
            rc = -1;
    }
    return rc;
}

int pt__conf_listen_tls(struct pt_conf_ctx *c, const struct pt_conf_node *node,
                        struct pt_listen_conf *l)
{
    struct listen_tls t = {0};
    uint64_t seen = 0;
    if (pt_conf_expect_map(c, "tls", node) != 0)
        return -1;
    int rc = pt_conf_apply(c, listen_tls_keys, node, &t, "tls", &seen);
    enum pt_tls_version min = PT_TLS_V1_2;
    if (t.min_version != NULL && strcmp(t.min_version, "1.3") == 0) {
        min = PT_TLS_V1_3;
    } else if (t.min_version != NULL && strcmp(t.min_version, "1.2") != 0) {
        pt_conf_error(c, pt_conf_map_get(node, "min_version"),
                      "min_version: expected \"1.2\" or \"1.3\", got \"%.20s\"", t.min_version);
        rc = -1;
    }
    if ((seen & (1u << KEY_CLIENT_VERIFY)) && t.client_ca == NULL) {
        pt_conf_error(c, pt_conf_map_get(node, "client_verify"),
                      "client_verify: needs client_ca (the CAs client certificates must come "
                      "from)");
        rc = -1;
    }
    const struct pt_conf_node *list = t.certificates;
    if (list != NULL && (pt_conf_is_null(list) || list->kind != PT_CONF_SEQ || list->seq.n == 0)) {
        pt_conf_error(c, list, "certificates: expected a list of {cert, key}, at least one");
        return -1;
    }
    if (rc != 0 || list == NULL)
        return -1;
    struct cert_item *items = pt_arena_calloc(c->a, list->seq.n * sizeof(*items));
    if (items == NULL) {
        pt_conf_error(c, node, "out of memory");
        return -1;
    }
    if (check_certificates(c, list, items) != 0)
        return -1;
    if (!LOAD_FILES)
        return 0;
    struct pt_tls_report r = {0};
    struct pt_tls_server *s = pt_tls_server_new(min, &r);
    if (s == NULL)
        return report(c, &r, node, "client_ca", node);
    l->tls = s; /* freed with the snapshot, whatever happens next */
    for (size_t i = 0; i < list->seq.n; i++) {
        const struct pt_conf_node *item = list->seq.items[i];
        memset(&r, 0, sizeof(r));
        const char *cert = resolve(c, items[i].cert), *key = resolve(c, items[i].key);
        if (cert == NULL || key == NULL) {
            pt_conf_error(c, item, "out of memory");
            return -1;
        }
        pt_tls_server_add_cert(s, cert, key, &r);
        if (report(c, &r, item, NULL, item) != 0)
            rc = -1;
    }
    if (t.client_ca != NULL) {
        memset(&r, 0, sizeof(r));
        const char *ca = resolve(c, t.client_ca);
        enum pt_tls_client_verify mode =
            t.client_verify == 1 ? PT_TLS_VERIFY_REQUIRE : PT_TLS_VERIFY_OPTIONAL;
        if (ca == NULL) {
            pt_conf_error(c, node, "out of memory");
            return -1;
        }
        pt_tls_server_set_client_ca(s, ca, mode, &r);
        if (report(c, &r, node, "client_ca", node) != 0)
            rc = -1;
    }
    if (rc != 0)
        return -1;
    memset(&r, 0, sizeof(r));
    pt_tls_server_finish(s, &r);
    return report(c, &r, node, "client_ca", node);
}

/* --- services ---------------------------------------------------------------- */

struct service_tls {
    bool verify;
    const char *ca;
    const char *sni;
    const char *cert;
    const char *key;
};

static const struct pt_conf_key service_tls_keys[] = {
    PT_CONF_BOOL("verify", struct service_tls, verify, "true"),
    PT_CONF_STRING("ca", struct service_tls, ca, NULL),
    PT_CONF_STRING("sni", struct service_tls, sni, NULL),
    PT_CONF_STRING("cert", struct service_tls, cert, NULL),
    PT_CONF_STRING("key", struct service_tls, key, NULL),
    {0},
};

static bool sni_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_' || ch == ':'))
            return false;
    }
    return true;
}

int pt__conf_service_tls(struct pt_conf_ctx *c, const struct pt_conf_node *node,
                         struct pt_service *svc, const struct pt_conf_node *at)
{
    struct service_tls t = {0};
    if (node != NULL && pt_conf_expect_map(c, "tls", node) != 0)
        return -1;
    int rc = pt_conf_apply(c, service_tls_keys, node, &t, "tls", NULL);
    if (t.sni != NULL && !sni_ok(t.sni)) {
        pt_conf_error(c, pt_conf_map_get(node, "sni"), "sni: \"%.100s\" is not a host name", t.sni);
        rc = -1;
    }
    if ((t.cert == NULL) != (t.key == NULL)) {
        const char *have = t.cert != NULL ? "cert" : "key";
        pt_conf_error(c, pt_conf_map_get(node, have),
                      "%s: a client certificate needs both cert "
                      "and key",
                      have);
        rc = -1;
    }
    if (rc != 0 || !LOAD_FILES)
        return rc;
    struct pt_tls_client_opts o = {.verify = t.verify};
    o.ca = t.ca != NULL ? resolve(c, t.ca) : NULL;
    o.cert = t.cert != NULL ? resolve(c, t.cert) : NULL;
    o.key = t.key != NULL ? resolve(c, t.key) : NULL;
    struct pt_tls_report r = {0};
    svc->tls = pt_tls_client_new(&o, &r);
    const struct pt_conf_node *where = node != NULL ? node : at;
    if (report(c, &r, where, "ca", where) != 0 || svc->tls == NULL)
        return -1;
    for (size_t i = 0; i < svc->ntargets; i++) {
        struct pt_target *tg = &svc->targets[i];
        tg->tls_name = t.sni != NULL ? t.sni : tg->host;
        tg->pool_key = pt_tls_client_pool_key(svc->tls, tg->tls_name);
    }
    return 0;
}
