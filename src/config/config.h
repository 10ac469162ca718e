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

struct pt_config_options {
    unsigned workers_override; /* 0 = as configured */
};

/**
 * Load and compile the file at path.  Returns a snapshot with one
 * reference, or NULL after recording every error in d (warnings are
 * recorded either way).
 */
struct pt_snapshot *pt_config_load_file(const char *path, struct pt_diag *d);

/**
 * Same from text in memory (the admin API's PUT /config).  name is used in
 * diagnostics; base_dir resolves relative paths.
 */
struct pt_snapshot *pt_config_load_buffer(const char *name, const char *base_dir, const char *text,
                                          size_t len, struct pt_diag *d);

#endif
