/*
 * The configuration snapshot: everything a worker needs to serve requests,
 * compiled from the YAML file and immutable afterwards (DESIGN principle 2).
 *
 * Reference counting: the process holds one reference to the current
 * snapshot; each worker holds one to the snapshot it serves new requests
 * from.  Requests count themselves on their worker (no shared atomic per
 * request); see docs/internals/config.md.
 */
#ifndef PT_CONFIG_SNAPSHOT_H
#define PT_CONFIG_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/arena.h"
#include "core/log.h"
#include "net/cidr.h"
#include "plugins/plugin.h"

struct pt_conf_node;
struct pt_router;
struct pt_route;
struct pt_service;

struct pt_tls_server;

struct pt_listen_conf {
    const char *address; /* as written: "0.0.0.0:8080", "[::]:8080", ":8080" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct pt_tls_server *tls; /* NULL: plain HTTP; one reference, dropped with the snapshot */
};

struct pt_server_conf {
    struct pt_listen_conf *listen;
    size_t nlisten;
    unsigned workers;                  /* resolved: `auto` = online CPUs */
    uint64_t max_header_bytes;         /* 16k */
    uint64_t max_body_bytes;           /* 10m; 0 = no request body accepted */
    uint64_t max_connections;          /* 100000, per process */
    uint64_t client_header_timeout_ms; /* 10s */
    uint64_t client_body_timeout_ms;   /* 60s: gap allowed between two body reads */
    uint64_t client_idle_timeout_ms;   /* 60s */
    uint64_t send_timeout_ms;          /* 60s: gap allowed between two writes to a client */
    uint64_t drain_timeout_ms;         /* 30s */
    struct pt_cidr *trusted_proxies;
    size_t ntrusted_proxies;
    enum pt_log_level log_level; /* info */
};

struct pt_admin_conf {
    const char *listen; /* NULL = no admin listener */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *token; /* NULL or "" = no token required */
};

struct pt_snapshot {
    atomic_long refs;
    uint64_t version;          /* config_version: grows with each applied change; the loader leaves
                                  it 0 and whoever publishes the snapshot assigns it */
    const char *path;          /* the file it came from (NULL for a buffer) */
    const char *base_dir;      /* relative paths resolve against this */
    struct pt_conf_node *tree; /* the parsed YAML, for GET /config (config/node.h); NULL when
                                  the file was empty */
    struct pt_server_conf server;
    struct pt_admin_conf admin;
    struct pt_service **services; /* in file order; services[i]->index == i */
    size_t nservices;
    struct pt_route **routes; /* in file order; routes[i]->index == i */
    size_t nroutes;
    struct pt_router *router;
    struct pt_plugin_chain plugins; /* global plugin instances (unsorted) */
    struct pt_plugin_chain global_chain;
    /* the same, sorted: for requests no route matched */ /* built from routes (in the same
order); route data is the struct pt_route *.  Never NULL: no routes answer 404 */
    const char **files; /* files the configuration read (certificates, keys, bodies): a change
                           to one is a change of the configuration (the file watch) */
    size_t nfiles, files_cap;
    struct pt_arena arena; /* owns everything above unless noted */
};

/** Take a reference. */
static inline struct pt_snapshot *pt_snapshot_ref(struct pt_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

/** Drop a reference; the last one frees the snapshot. */
void pt_snapshot_unref(struct pt_snapshot *s);

/** Find a service by name; NULL if none. */
struct pt_service *pt_snapshot_service(const struct pt_snapshot *s, const char *name);

#endif
