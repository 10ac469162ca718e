/*
 * Loading a configuration, start to finish:
 *
 *   read the file -> pt_conf_parse (YAML -> node tree, ${ENV} expanded)
 *   -> top-level keys -> server, admin, services, routes (+ router)
 *   -> balancers -> a snapshot with one reference.
 *
 * Every step runs even when an earlier one found problems, as long as it
 * has something to look at, so that one `portico check` lists every
 * mistake.  Nothing here touches global state: any thread may load (a
 * reload runs off the event loops), and two loads may run at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "upstream/balancer.h"
#include "upstream/health.h"
#include "upstream/service.h"
#include "config/compile.h"
#include "plugins/plugin.h"
#include "config/config.h"
#include "config/node.h"
#include "config/schema.h"

struct top {
    const struct pt_conf_node *server, *admin, *services, *routes, *plugins;
};

static const struct pt_conf_key top_keys[] = {
    PT_CONF_NODE("server", struct top, server),
    PT_CONF_NODE("admin", struct top, admin),
    PT_CONF_NODE("services", struct top, services),
    PT_CONF_NODE("routes", struct top, routes),
    PT_CONF_NODE("plugins", struct top, plugins),
    PT_CONF_UNSUPPORTED_MSG("consumers", "consumers are not supported yet"),
    PT_CONF_UNSUPPORTED_MSG("store", "store (Redis, etcd) is not supported yet"),
    PT_CONF_UNSUPPORTED_MSG("tracing", "tracing is not supported yet"),
    PT_CONF_UNSUPPORTED_MSG("usage", "usage export is not supported yet"),
    {0},
};

static void build_balancers(struct pt_conf_ctx *c)
{
    struct pt_snapshot *s = c->snap;
    for (size_t i = 0; i < s->nservices; i++) {
        struct pt_service *svc = s->services[i];
        svc->balancer = pt_balancer_create(svc, s->server.workers);
        /* health state is shared with earlier snapshots of the same targets */
        if (svc->balancer == NULL || pt_health_attach(svc, s->server.workers) != 0)
            pt_diag_error(c->d, c->file, 0, 0, "service \"%s\": out of memory", svc->name);
    }
}

static char *current_dir(struct pt_arena *a)
{
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof(buf)) == NULL)
        return pt_arena_strndup(a, ".", 1);
    return pt_arena_strndup(a, buf, strlen(buf));
}

static struct pt_snapshot *load(const char *name, const char *path, const char *base_dir,
                                const char *text, size_t len, const struct pt_config_options *opts,
                                struct pt_diag *d)
{
    static const struct pt_config_options no_opts;
    size_t before = d->nerrors;
    struct pt_snapshot *s = pt_calloc(1, sizeof(*s));
    if (s == NULL) {
        pt_diag_error(d, name, 0, 0, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    pt_arena_init(&s->arena);
    struct pt_conf_ctx c = {
        .d = d, .a = &s->arena, .snap = s, .opts = opts != NULL ? opts : &no_opts, .file = name};
    s->path = path != NULL ? pt_arena_strndup(&s->arena, path, strlen(path)) : NULL;
    s->base_dir = base_dir != NULL ? pt_arena_strndup(&s->arena, base_dir, strlen(base_dir))
                                   : current_dir(&s->arena);
    if ((path != NULL && s->path == NULL) || s->base_dir == NULL) {
        pt_diag_error(d, name, 0, 0, "out of memory");
        goto fail;
    }
    struct pt_conf_node *root;
    if (pt_conf_parse(&s->arena, name, text, len, &c.opts->env, d, &root) != 0)
        goto fail;
    s->tree = root;
    struct top t = {0};
    if (!pt_conf_is_null(root) && root->kind != PT_CONF_MAP)
        pt_conf_error(&c, root,
                      "the configuration must be a map of sections (server, services, routes, "
                      "...), got %s",
                      pt_conf_kind_name(root));
    else
        pt_conf_apply(&c, top_keys, root, &t, NULL, NULL);
    pt__conf_server(&c, t.server);
    if (c.opts->workers_override != 0)
        s->server.workers = c.opts->workers_override;
    pt__conf_admin(&c, t.admin);
    pt__conf_plugins(&c, t.plugins, PT_PLUGIN_GLOBAL, "plugins", &s->plugins);
    pt__conf_plugin_chain(&c, &s->plugins, NULL, NULL, &s->global_chain);
    pt__conf_services(&c, t.services);
    pt__conf_routes(&c, t.routes);
    if (d->nerrors == before)
        build_balancers(&c);
    if (d->nerrors != before)
        goto fail;
    pt_diag_sort(d);
    return s;
fail:
    pt_diag_sort(d);
    pt_snapshot_unref(s);
    return NULL;
}

struct pt_snapshot *pt_config_load_buffer_opts(const char *name, const char *base_dir,
                                               const char *text, size_t len,
                                               const struct pt_config_options *opts,
                                               struct pt_diag *d)
{
    return load(name, NULL, base_dir, text, len, opts, d);
}

struct pt_snapshot *pt_config_load_buffer(const char *name, const char *base_dir, const char *text,
                                          size_t len, struct pt_diag *d)
{
    return load(name, NULL, base_dir, text, len, NULL, d);
}

/* Read a whole file (regular or not) into a malloc'd buffer; errno on failure. */
static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) == -1)
        goto fail;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
    if (cap > PT_CONF_MAX_BYTES + 1)
        cap = PT_CONF_MAX_BYTES + 1;
    char *buf = pt_malloc(cap);
    if (buf == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    for (;;) {
        if (n == cap) {
            if (cap > PT_CONF_MAX_BYTES) {
                errno = EFBIG;
                free(buf);
                goto fail;
            }
            char *p = pt_realloc(buf, cap * 2);
            if (p == NULL) {
                free(buf);
                errno = ENOMEM;
                goto fail;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            int e = errno;
            free(buf);
            errno = e;
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
fail : {
    int e = errno;
    close(fd);
    errno = e;
    return NULL;
}
}

/* The directory of path, absolute when it can be made so; malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (slash == NULL)
        dir = pt_strdup(".");
    else if (slash == path)
        dir = pt_strdup("/");
    else
        dir = pt_strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return NULL;
    char *abs = realpath(dir, NULL);
    if (abs == NULL)
        return dir;
    free(dir);
    return abs;
}

struct pt_snapshot *pt_config_load_file_opts(const char *path, const struct pt_config_options *opts,
                                             struct pt_diag *d)
{
    size_t len;
    char *text = read_file(path, &len);
    if (text == NULL) {
        char buf[128];
        const char *msg =
            errno == EFBIG ? "file is larger than 16 MiB" : strerror_r(errno, buf, sizeof(buf));
        pt_diag_error(d, path, 0, 0, "cannot read: %s", msg);
        return NULL;
    }
    char *dir = dir_of(path);
    struct pt_snapshot *s = NULL;
    if (dir == NULL)
        pt_diag_error(d, path, 0, 0, "out of memory");
    else
        s = load(path, path, dir, text, len, opts, d);
    free(dir);
    free(text);
    return s;
}

struct pt_snapshot *pt_config_load_file(const char *path, struct pt_diag *d)
{
    return pt_config_load_file_opts(path, NULL, d);
}

const char *pt_config_resolve_path(struct pt_arena *a, const char *base_dir, const char *path)
{
    if (path[0] == '/' || base_dir == NULL || base_dir[0] == '\0')
        return path;
    size_t bl = strlen(base_dir);
    bool slash = base_dir[bl - 1] == '/';
    return pt_arena_printf(a, "%s%s%s", base_dir, slash ? "" : "/", path);
}
