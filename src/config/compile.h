/*
 * Private to src/config: the compile steps load.c runs, in order, each
 * turning one part of the tree into the snapshot's structs and reporting
 * every problem through the context.
 */
#ifndef PT_CONFIG_COMPILE_H
#define PT_CONFIG_COMPILE_H

#include "config/node.h"
#include "config/schema.h"

/** `server:` (node may be NULL: all defaults) into c->snap->server. */
void pt__conf_server(struct pt_conf_ctx *c, const struct pt_conf_node *node);

/** `admin:` (node may be NULL) into c->snap->admin.  After pt__conf_server. */
void pt__conf_admin(struct pt_conf_ctx *c, const struct pt_conf_node *node);

/** `services:` (node may be NULL) into c->snap->services. */
void pt__conf_services(struct pt_conf_ctx *c, const struct pt_conf_node *node);

/**
 * `routes:` (node may be NULL) into c->snap->routes, then the router.
 * After pt__conf_services (routes refer to services by name).  The router
 * is built even when earlier steps failed, so its problems are reported
 * too; it is kept only when there was no error at all.
 */
void pt__conf_routes(struct pt_conf_ctx *c, const struct pt_conf_node *node);

struct pt_plugin_chain;
enum pt_plugin_scope;

/** A `plugins:` map (node may be NULL) into instances; 0 or -1 after reporting. */
int pt__conf_plugins(struct pt_conf_ctx *c, const struct pt_conf_node *map,
                     enum pt_plugin_scope scope, const char *where, struct pt_plugin_chain *out);

/** A route's chain from the global, service and route instances (any may be NULL). */
int pt__conf_plugin_chain(struct pt_conf_ctx *c, const struct pt_plugin_chain *global,
                          const struct pt_plugin_chain *service,
                          const struct pt_plugin_chain *route, struct pt_plugin_chain *out);

struct pt_route;
struct pt_service;

/**
 * A route's `aggregate:` map n into r->aggregate (set only when it compiled
 * without error).  paths are the route's patterns (paths_ok: all of them
 * are strings the router will check), for the captures templates may use;
 * services_by_name is the snapshot's services sorted by name (NULL when
 * there are none); where names the route in messages ("routes.NAME").
 * Lives in aggregate.c.
 */
void pt__conf_aggregate(struct pt_conf_ctx *c, struct pt_route *r, const struct pt_conf_node *n,
                        const char *const *paths, size_t npaths, bool paths_ok,
                        const struct pt_service **services_by_name, const char *where);

/**
 * Is name usable as a service or route name (1-64 of A-Za-z0-9._-)?  They
 * appear in admin API paths and metric labels.
 */
bool pt__conf_name_ok(const char *name);

#endif
