/*
 * Diagnostics collected while loading a configuration: every error and
 * warning, each with its file, line and column (1-based), so that `portico
 * check` reports all problems at once.
 *
 *   portico.yaml:12:7: unknown key "retires" in service "users" (did you mean "retries"?)
 *   portico.yaml:40:9: warning: route "b" can never match: route "a" always wins
 */
#ifndef PT_CONFIG_DIAG_H
#define PT_CONFIG_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct pt_diag_entry {
    bool is_error;
    char *file; /* owned */
    int line;   /* 0 when the problem has no position (e.g. file not found) */
    int col;
    char *message; /* owned */
};

struct pt_diag {
    struct pt_diag_entry *entries;
    size_t n, cap;
    size_t nerrors;
};

void pt_diag_init(struct pt_diag *d);
void pt_diag_free(struct pt_diag *d);

void pt_diag_error(struct pt_diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void pt_diag_warn(struct pt_diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/** Print "FILE:LINE:COL: message" (warnings: "FILE:LINE:COL: warning: message"), one per line. */
void pt_diag_print(const struct pt_diag *d, FILE *out);

/** Entry i as one line (the same text pt_diag_print writes); caller frees. */
char *pt_diag_format(const struct pt_diag_entry *e);

#endif
