/*
 * Scalar values of the configuration language (SPEC §2, §10 "Numbers"):
 * durations, sizes, booleans, unsigned integers, ${ENV} interpolation, and
 * the edit distance behind "did you mean".  Pure functions: no allocation
 * except where an arena is passed, no global state, safe from any thread.
 */
#ifndef PT_CONFIG_VALUE_H
#define PT_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/str.h"

/**
 * Parse a duration into milliseconds: one or more NUMBER UNIT groups with
 * UNIT one of ms, s, m, h, d ("250ms", "5s", "1h30m").  A bare "0" is zero;
 * any other bare number is rejected ("duration needs a unit").  Returns 0, or
 * -1 with *err set to a static message.
 */
int pt_conf_parse_duration(struct pt_str s, uint64_t *ms, const char **err);

/**
 * Parse a size into bytes: NUMBER with an optional binary suffix k, m, g
 * (or K, M, G): "512", "16k" = 16384, "10m" = 10 MiB.  Returns 0, or -1 with
 * *err set to a static message.
 */
int pt_conf_parse_size(struct pt_str s, uint64_t *bytes, const char **err);

/** "true"/"True"/"TRUE" or "false"/"False"/"FALSE".  0 or -1. */
int pt_conf_parse_bool(struct pt_str s, bool *out);

/** A decimal unsigned integer without sign or spaces, at most UINT64_MAX.  0 or -1. */
int pt_conf_parse_uint(struct pt_str s, uint64_t *out);

/**
 * Looks up an environment variable for ${NAME}; NULL when unset.  The
 * returned string must stay valid until the load finishes.
 */
typedef const char *(*pt_conf_env_fn)(void *ctx, const char *name);

/** Where ${NAME} values come from; a NULL fn means getenv(3). */
struct pt_conf_env {
    pt_conf_env_fn fn;
    void *ctx;
};

/** Reports one interpolation problem at byte offset off of the input. */
typedef void (*pt_conf_expand_err_fn)(void *ctx, size_t off, const char *message);

/**
 * Expand ${NAME} and ${NAME:-default} in s[0..len) into a NUL-terminated
 * arena copy.  NAME is [A-Za-z_][A-Za-z0-9_]*; the default (used when NAME
 * is unset or empty, as in the shell) is literal text up to the first '}'
 * and may not contain "${".  "$${" is a literal "${"; any other '$' is
 * literal.  Expansion is one pass: values are not expanded again.
 *
 * Returns 0 with *out set (out->ptr == s when there was nothing to expand,
 * so no copy is made), -1 after reporting every problem through err (*out
 * is then s itself), or PT_ERR_NOMEM.
 */
int pt_conf_expand_env(struct pt_arena *a, const char *s, size_t len, const struct pt_conf_env *env,
                       struct pt_str *out, pt_conf_expand_err_fn err, void *err_ctx);

/**
 * Optimal-string-alignment distance between a and b, ASCII case-insensitive
 * (a transposition counts as one edit, so "retires" is 1 from "retries").
 * Strings longer than 64 bytes count as infinitely far (SIZE_MAX).
 */
size_t pt_conf_edit_distance(const char *a, const char *b);

/**
 * The candidate closest to word, if close enough to be a plausible typo
 * (distance at most 1 for short words, up to 3 for long ones); NULL if none.
 * candidates may contain NULL entries, which are skipped.
 */
const char *pt_conf_suggest(const char *word, const char *const *candidates, size_t n);

#endif
