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

/** At most this many entries are kept; the rest are only counted (ndropped). */
#define PT_DIAG_MAX_ENTRIES 1000

struct pt_diag {
    struct pt_diag_entry *entries;
    size_t n, cap;
    size_t nerrors;  /* every error reported, including dropped ones: 0 means success */
    size_t ndropped; /* entries not kept (over PT_DIAG_MAX_ENTRIES, or out of memory) */
};

void pt_diag_init(struct pt_diag *d);
void pt_diag_free(struct pt_diag *d);

/**
 * Record an error or a warning.  line and col are 1-based; 0 means "no position".  Never
 * fails: when memory runs out the entry is dropped but still counted (nerrors, ndropped).
 */
void pt_diag_error(struct pt_diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void pt_diag_warn(struct pt_diag *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/**
 * Print "FILE:LINE:COL: message" (warnings: "FILE:LINE:COL: warning: message"), one per line;
 * an entry without a position prints as "FILE: message".  Ends with "... and N more" when
 * entries were dropped.
 */
void pt_diag_print(const struct pt_diag *d, FILE *out);

/** Entry i as one line (the same text pt_diag_print writes); caller frees; NULL on ENOMEM. */
char *pt_diag_format(const struct pt_diag_entry *e);

/** Order the entries by file, line and column (stable: equal positions keep their order). */
void pt_diag_sort(struct pt_diag *d);

#endif
