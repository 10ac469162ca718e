/*
 * Declarative key tables (STYLE §9): each configuration section is a
 * zero-terminated array of struct pt_conf_key naming its keys, their types,
 * bounds and defaults, and where in a C struct the value goes.
 * pt_conf_apply() walks a map node against such a table: it fills in the
 * defaults, parses every key it knows, and reports every key it does not
 * (with "did you mean"), every missing required key and every bad value,
 * each at its own line and column, without stopping at the first.
 *
 *     static const struct pt_conf_key keys[] = {
 *         PT_CONF_DURATION("connect", struct pt_service, connect_timeout_ms, "5s"),
 *         PT_CONF_UINT("max_idle", struct pt_service, keepalive_max_idle, 0, 10000, "64"),
 *         PT_CONF_UNSUPPORTED("health"),
 *         {0},
 *     };
 *
 * Value parsing conventions, shared by every section:
 *   - a null value (nothing, "~" or "null"; also a ${VAR} that expands to
 *     nothing) is the same as leaving the key out: the default applies;
 *   - numbers, booleans, durations and sizes may be quoted ("5s", "8080");
 *   - a value already reported as invalid (an unset ${VAR}) is skipped
 *     silently, so one mistake gives one message.
 */
#ifndef PT_CONFIG_SCHEMA_H
#define PT_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "config/config.h"
#include "config/diag.h"
#include "config/node.h"

/** Everything the compile steps share while one configuration loads. */
struct pt_conf_ctx {
    struct pt_diag *d;
    struct pt_arena *a; /* the snapshot's arena: results live as long as the snapshot */
    struct pt_snapshot *snap;
    const struct pt_config_options *opts; /* never NULL */
    const char *file;                     /* the input's name in messages */
};

enum pt_conf_type {
    PT_CONF_T_STRING = 0,  /* const char *: NULL when absent without default */
    PT_CONF_T_BOOL,        /* bool */
    PT_CONF_T_UINT,        /* unsigned integer field of `size` bytes, within min..max */
    PT_CONF_T_DURATION,    /* uint64_t milliseconds, within min..max */
    PT_CONF_T_SIZE,        /* uint64_t bytes, within min..max */
    PT_CONF_T_ENUM,        /* int-sized enum; `names` indexed by value */
    PT_CONF_T_SECTION,     /* a nested map whose keys (`sub`) fill the same struct */
    PT_CONF_T_NODE,        /* const struct pt_conf_node *: kept for the caller to compile */
    PT_CONF_T_CUSTOM,      /* parse(ctx, value, target) does it all */
    PT_CONF_T_UNSUPPORTED, /* known, but "NAME is not supported yet" (or def as the message),
                              reported at the key */
    PT_CONF_T_COUNT
};

struct pt_conf_key;

/** Parse value into the struct at target; report problems through ctx; 0 or -1. */
typedef int (*pt_conf_parse_fn)(struct pt_conf_ctx *c, const struct pt_conf_node *value,
                                void *target);

struct pt_conf_key {
    const char *name;
    enum pt_conf_type type;
    size_t offset; /* of the field in the target struct */
    size_t size;   /* of the field (UINT, ENUM) */
    uint64_t min, max;
    const char *def;               /* default, as it would be written in the file; NULL: none */
    const char *const *names;      /* ENUM: names by value, NULL-terminated */
    const struct pt_conf_key *sub; /* SECTION */
    pt_conf_parse_fn parse;        /* CUSTOM */
    bool required;
};

#define PT_CONF_STRING(n, T, field, d)                                                             \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_STRING, .offset = offsetof(T, field), .def = (d)            \
    }
#define PT_CONF_BOOL(n, T, field, d)                                                               \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_BOOL, .offset = offsetof(T, field), .def = (d)              \
    }
#define PT_CONF_UINT(n, T, field, lo, hi, d)                                                       \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_UINT, .offset = offsetof(T, field),                         \
        .size = sizeof(((T *)0)->field), .min = (lo), .max = (hi), .def = (d)                      \
    }
#define PT_CONF_DURATION(n, T, field, lo, hi, d)                                                   \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_DURATION, .offset = offsetof(T, field), .min = (lo),        \
        .max = (hi), .def = (d)                                                                    \
    }
#define PT_CONF_SIZE(n, T, field, lo, hi, d)                                                       \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_SIZE, .offset = offsetof(T, field), .min = (lo),            \
        .max = (hi), .def = (d)                                                                    \
    }
#define PT_CONF_ENUM(n, T, field, nm, d)                                                           \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_ENUM, .offset = offsetof(T, field),                         \
        .size = sizeof(((T *)0)->field), .names = (nm), .def = (d)                                 \
    }
#define PT_CONF_SECTION(n, s)                                                                      \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_SECTION, .sub = (s)                                         \
    }
#define PT_CONF_NODE(n, T, field)                                                                  \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_NODE, .offset = offsetof(T, field)                          \
    }
#define PT_CONF_CUSTOM(n, fn)                                                                      \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_CUSTOM, .parse = (fn)                                       \
    }
#define PT_CONF_UNSUPPORTED(n)                                                                     \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_UNSUPPORTED                                                 \
    }
#define PT_CONF_UNSUPPORTED_MSG(n, msg)                                                            \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_UNSUPPORTED, .def = (msg)                                   \
    }
#define PT_CONF_REQUIRED_STRING(n, T, field)                                                       \
    {                                                                                              \
        .name = (n), .type = PT_CONF_T_STRING, .offset = offsetof(T, field), .required = true      \
    }

/** Durations and sizes without an upper bound use this as max. */
#define PT_CONF_NO_MAX UINT64_MAX

/**
 * Apply table keys to map into target: defaults first (recursively into
 * sections), then every key of map.  map may be NULL or null (only the
 * defaults apply).  where names the section in messages, as a dotted path
 * ("server.limits", "services.users"); NULL is the top level.
 * seen, if not NULL, gets bit i set for each keys[i] present in map
 * (tables have at most 64 keys).  Returns 0 when every key present was
 * applied, else -1 (the problem was reported, now or, for a value already
 * marked invalid, earlier): on -1, fields may be left at their defaults.
 */
int pt_conf_apply(struct pt_conf_ctx *c, const struct pt_conf_key *keys,
                  const struct pt_conf_node *map, void *target, const char *where, uint64_t *seen);

/** Fill in only the defaults of keys (what an absent section means). */
void pt_conf_apply_defaults(const struct pt_conf_key *keys, void *target);

/**
 * Remember that the configuration depends on the file at path (already
 * resolved): the file watch reloads when it changes.
 */
void pt_conf_note_file(struct pt_conf_ctx *c, const char *path);

/** Report an error at node n (which must not be NULL). */
void pt_conf_error(struct pt_conf_ctx *c, const struct pt_conf_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Report an error at byte off of scalar n's value: exact when nothing was
 * expanded in it (see pt_conf_node_pos_at), else at the scalar's start.
 */
void pt_conf_error_at(struct pt_conf_ctx *c, const struct pt_conf_node *n, size_t off,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/** Report a warning at node n. */
void pt_conf_warn(struct pt_conf_ctx *c, const struct pt_conf_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Typed readers for custom parsers.  Each one checks the node's kind and
 * value and reports a problem as "NAME: ..." at the node; they return 0 or
 * -1.  A node already marked invalid returns -1 without a new message.
 */
int pt_conf_get_string(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                       const char **out);
int pt_conf_get_uint(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                     uint64_t min, uint64_t max, uint64_t *out);
int pt_conf_get_duration(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                         uint64_t *out);
int pt_conf_get_size(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                     uint64_t *out);
int pt_conf_get_bool(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n,
                     bool *out);

/** Expect a list (or null, which reads as an empty list); 0 or -1 after reporting. */
int pt_conf_expect_seq(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n);

/** Expect a map (or null, an empty map); 0 or -1 after reporting. */
int pt_conf_expect_map(struct pt_conf_ctx *c, const char *name, const struct pt_conf_node *n);

#endif
