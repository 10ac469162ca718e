/*
 * Diagnostics: a growable list of positioned messages.  Allocation failure
 * never loses the fact that an error happened: the entry is dropped but
 * nerrors still counts it, so a load can never succeed by accident.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "config/diag.h"

void pt_diag_init(struct pt_diag *d)
{
    memset(d, 0, sizeof(*d));
}

void pt_diag_free(struct pt_diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->entries[i].file);
        free(d->entries[i].message);
    }
    free(d->entries);
    pt_diag_init(d);
}

__attribute__((format(printf, 1, 0))) static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *p = pt_malloc((size_t)n + 1);
    if (p != NULL)
        vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

__attribute__((format(printf, 6, 0))) static void add(struct pt_diag *d, bool is_error,
                                                      const char *file, int line, int col,
                                                      const char *fmt, va_list ap)
{
    if (is_error)
        d->nerrors++;
    if (d->n >= PT_DIAG_MAX_ENTRIES) {
        d->ndropped++;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap == 0 ? 16 : d->cap * 2;
        struct pt_diag_entry *e = pt_realloc(d->entries, cap * sizeof(*e));
        if (e == NULL) {
            d->ndropped++;
            return;
        }
        d->entries = e;
        d->cap = cap;
    }
    struct pt_diag_entry *e = &d->entries[d->n];
    e->is_error = is_error;
    e->line = line < 0 ? 0 : line;
    e->col = col < 0 ? 0 : col;
    e->file = pt_strdup(file != NULL ? file : "-");
    e->message = vformat(fmt, ap);
    if (e->file == NULL || e->message == NULL) {
        free(e->file);
        free(e->message);
        d->ndropped++;
        return;
    }
    d->n++;
}

void pt_diag_error(struct pt_diag *d, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(d, true, file, line, col, fmt, ap);
    va_end(ap);
}

void pt_diag_warn(struct pt_diag *d, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(d, false, file, line, col, fmt, ap);
    va_end(ap);
}

char *pt_diag_format(const struct pt_diag_entry *e)
{
    const char *kind = e->is_error ? "" : "warning: ";
    char *out;
    int n;
    if (e->line > 0 && e->col > 0)
        n = asprintf(&out, "%s:%d:%d: %s%s", e->file, e->line, e->col, kind, e->message);
    else if (e->line > 0)
        n = asprintf(&out, "%s:%d: %s%s", e->file, e->line, kind, e->message);
    else
        n = asprintf(&out, "%s: %s%s", e->file, kind, e->message);
    return n < 0 ? NULL : out;
}

void pt_diag_print(const struct pt_diag *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++) {
        char *line = pt_diag_format(&d->entries[i]);
        if (line != NULL)
            fprintf(out, "%s\n", line);
        free(line);
    }
    if (d->ndropped > 0)
        fprintf(out, "... and %zu more\n", d->ndropped);
}

static int cmp_pos(const struct pt_diag_entry *a, const struct pt_diag_entry *b)
{
    int c = strcmp(a->file, b->file);
    if (c != 0)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return 0;
}

void pt_diag_sort(struct pt_diag *d)
{
    /* Insertion sort: stable, and the entries arrive almost in order. */
    for (size_t i = 1; i < d->n; i++) {
        struct pt_diag_entry e = d->entries[i];
        size_t j = i;
        while (j > 0 && cmp_pos(&d->entries[j - 1], &e) > 0) {
            d->entries[j] = d->entries[j - 1];
            j--;
        }
        d->entries[j] = e;
    }
}
