/*
 * Loading a configuration: YAML with ${ENV} interpolation → node tree with
 * positions → validation against the schema (every error collected) →
 * compiled snapshot.  See docs/configuration.md for every key.
 */
#ifndef PT_CONFIG_CONFIG_H
#define PT_CONFIG_CONFIG_H

#include <stddef.h>

#include "config/diag.h"
#include "config/snapshot.h"
#include "config/value.h"

struct pt_discovery_conf;
struct pt_discovered_target;

struct pt_config_options {
    unsigned workers_override; /* 0 = as configured */
    struct pt_conf_env env;    /* where ${NAME} values come from; {NULL} = getenv */
    /**
     * The targets DNS discovery found for a service (upstream/discovery.h):
     * sets *out and *n (none: *n = 0); NULL = none found (an empty service
     * until discovery publishes).  The array must live until the load
     * returns.
     */
    void (*discovered)(void *ctx, const char *service, const struct pt_discovery_conf *conf,
                       const struct pt_discovered_target **out, size_t *n);
    void *discovered_ctx;
};

/**
 * Load and compile the file at path.  Returns a snapshot with one
 * reference, or NULL after recording every error in d (warnings are
 * recorded either way).  An unreadable file is one error without a
 * position ("FILE: cannot read: No such file or directory").  Relative
 * paths in the configuration resolve against the file's directory (made
 * absolute at load time).
 *
 * Thread-safe (no global state), so reloads may run on any thread; it
 * blocks while resolving host names.  The entries in d are sorted by
 * position.
 */
struct pt_snapshot *pt_config_load_file(const char *path, struct pt_diag *d);

/**
 * Same from text in memory (the admin API's PUT /config).  name is used in
 * diagnostics; base_dir resolves relative paths (NULL: the current
 * directory at load time).  text need not be NUL-terminated.
 */
struct pt_snapshot *pt_config_load_buffer(const char *name, const char *base_dir, const char *text,
                                          size_t len, struct pt_diag *d);

/** pt_config_load_file with options (opts may be NULL). */
struct pt_snapshot *pt_config_load_file_opts(const char *path, const struct pt_config_options *opts,
                                             struct pt_diag *d);

/** pt_config_load_buffer with options (opts may be NULL). */
struct pt_snapshot *pt_config_load_buffer_opts(const char *name, const char *base_dir,
                                               const char *text, size_t len,
                                               const struct pt_config_options *opts,
                                               struct pt_diag *d);

/**
 * Resolve a path from the configuration (a certificate, a key file):
 * absolute paths and a NULL base_dir leave it as it is; a relative one is
 * joined to base_dir (a snapshot's base_dir).  The result is allocated from
 * a (or is path itself); NULL on ENOMEM.
 */
const char *pt_config_resolve_path(struct pt_arena *a, const char *base_dir, const char *path);

#endif
