/*
 * The configuration as a tree of maps, lists and scalars, each node knowing
 * the file, line and column where it starts, so that every later check can
 * point at the offending text.  Built from YAML (or JSON, being YAML) by
 * pt_conf_parse(); allocated from one arena and immutable afterwards.
 *
 * Scalars keep two texts: `raw`, as written (after YAML unquoting, with
 * ${NAME} references left alone: what GET /config shows and what write-back
 * keeps), and `value`, with ${NAME} expanded (what the schema reads).  Map
 * keys are never expanded.
 *
 * Aliases (*name) share the anchored node's children: the tree is a DAG in
 * memory, but every walk sees it as the expanded tree.  The expanded size is
 * bounded (PT_CONF_MAX_NODES) so that nested aliases cannot blow up.
 */
#ifndef PT_CONFIG_NODE_H
#define PT_CONFIG_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/arena.h"
#include "config/diag.h"
#include "config/value.h"

/** Largest input accepted, in bytes. */
#define PT_CONF_MAX_BYTES (16u * 1024 * 1024)
/** Deepest nesting of maps and lists. */
#define PT_CONF_MAX_DEPTH 64
/** Most nodes in the tree, counting every alias as a copy of what it refers to. */
#define PT_CONF_MAX_NODES 1000000u
/**
 * Aliases may expand the tree to at most this many times the nodes actually
 * written (or to PT_CONF_ALIAS_FLOOR nodes, whichever is more), so a small
 * document cannot make every later step walk a huge one.
 */
#define PT_CONF_ALIAS_RATIO 64u
#define PT_CONF_ALIAS_FLOOR 10000u

enum pt_conf_kind { PT_CONF_SCALAR = 0, PT_CONF_SEQ, PT_CONF_MAP, PT_CONF_KIND_COUNT };

struct pt_conf_node;

struct pt_conf_pair {
    struct pt_conf_node *key; /* always a scalar */
    struct pt_conf_node *value;
};

struct pt_conf_node {
    enum pt_conf_kind kind;
    const char *file; /* shared by the whole tree */
    int line, col;    /* 1-based start; for a quoted scalar, its opening quote */
    size_t weight;    /* nodes in this subtree with aliases expanded, itself included */
    union {
        struct {
            const char *raw; /* NUL-terminated; may not contain NUL */
            size_t raw_len;
            const char *value; /* expanded; the same pointer as raw when nothing to expand */
            size_t len;
            bool quoted;  /* quoted, block (| or >) or tagged !!str: always a string */
            bool exact;   /* raw is the source text of one line (see pt_conf_node_pos_at) */
            bool invalid; /* an error was already reported for it (e.g. unset ${VAR}) */
        } scalar;
        struct {
            struct pt_conf_node **items;
            size_t n;
        } seq;
        struct {
            struct pt_conf_pair *pairs; /* in file order; keys are unique */
            size_t n;
        } map;
    };
};

/**
 * Parse YAML text[0..len) into a tree allocated from a.  file names the
 * input in diagnostics (it is copied).  env supplies ${NAME} values (NULL:
 * getenv).
 *
 * Returns 0 with *root set (NULL for an empty document or a stream with no
 * document), or -1 when the text cannot be turned into a tree at all (YAML
 * syntax error, several documents, too deep, too large, out of memory).
 * Either way every problem is recorded in d; problems that leave the tree
 * usable (duplicate keys, non-scalar keys, unset ${VAR}) return 0, so that
 * validation can go on and report more.  Check d->nerrors.
 */
int pt_conf_parse(struct pt_arena *a, const char *file, const char *text, size_t len,
                  const struct pt_conf_env *env, struct pt_diag *d, struct pt_conf_node **root);

/** A missing node, or a plain scalar that YAML reads as null: "", "~", "null". */
bool pt_conf_is_null(const struct pt_conf_node *n);

/** The value stored under key in map (NULL when absent or when map is not a map). */
const struct pt_conf_node *pt_conf_map_get(const struct pt_conf_node *map, const char *key);

/** "a scalar", "a list", "a map": for messages like "expected a map, got a list". */
const char *pt_conf_kind_name(const struct pt_conf_node *n);

/**
 * Position of byte off of a scalar's raw text.  Exact for scalars written on
 * one line without escapes (plain or quoted); otherwise the scalar's start.
 */
void pt_conf_node_pos_at(const struct pt_conf_node *n, size_t off, int *line, int *col);

/**
 * The tree as JSON, for GET /config: maps become objects, lists arrays.
 * Scalars use raw (${NAME} kept) or expanded text; quoted scalars are
 * strings, plain ones become null, true/false, integers or reals when they
 * read as such, strings otherwise.  n may be NULL (an empty configuration:
 * {}).  Returns a new reference, or NULL on ENOMEM.
 */
json_t *pt_conf_node_to_json(const struct pt_conf_node *n, bool raw);

#endif
