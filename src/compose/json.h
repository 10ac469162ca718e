/*
 * JSON helpers for composition (docs/composition.md): a growable output
 * buffer, a compact serialiser whose numbers read back exactly, the text
 * form of a value for templates, and the decoding of a call's response body
 * (JSON when it says so, a string otherwise).
 *
 * Values are jansson's (json_t, malloc-owned, reference counted); nothing
 * here touches an arena.
 */
#ifndef PT_COMPOSE_JSON_H
#define PT_COMPOSE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/str.h"

/** A growable byte buffer on malloc.  After a failed append `oom` is set and stays set. */
struct pt_jbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static inline void pt_jbuf_init(struct pt_jbuf *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

/** Make room for n more bytes; returns where to write them, or NULL (oom set). */
char *pt_jbuf_reserve(struct pt_jbuf *b, size_t n);
/** Append n bytes (ignored once oom is set). */
void pt_jbuf_put(struct pt_jbuf *b, const void *p, size_t n);
static inline void pt_jbuf_puts(struct pt_jbuf *b, const char *s)
{
    pt_jbuf_put(b, s, strlen(s));
}
void pt_jbuf_free(struct pt_jbuf *b);

/**
 * Append v as compact JSON.  Reals are written in the shortest form (15 to
 * 17 significant digits) that reads back as the same double, so 19.99 stays
 * 19.99 (jansson's own dump writes 19.989999999999998), and keep a '.' or an
 * exponent (100.0 stays a real).  Strings are escaped
 * with pt_json_escape (always valid JSON, even with NUL bytes).  0, or
 * PT_ERR_NOMEM.
 */
int pt_json_dump(const json_t *v, struct pt_jbuf *out);

/**
 * Append the text form of v, as a template writes it into a path, a query,
 * a header or a JSON string: a string as its characters (unescaped), an
 * integer or real as its JSON number, true/false as words, a non-empty
 * array of strings, numbers and booleans as their texts joined with ','
 * ([1, 2] → "1,2", for `?ids={order.product_ids}`), any other array or
 * object as compact JSON.  null has no text form: returns 1 and appends
 * nothing.  0, 1, or PT_ERR_NOMEM.
 */
int pt_json_text(const json_t *v, struct pt_jbuf *out);

/** What a response's Content-Type says about its body. */
enum pt_json_media {
    PT_MEDIA_NONE = 0, /* no Content-Type: JSON if it parses, else a string */
    PT_MEDIA_JSON,     /* application/json, text/json or any +json type: must parse */
    PT_MEDIA_OTHER,    /* anything else: embedded as a string */
    PT_MEDIA_COUNT
};

/** Classify a Content-Type value (parameters and case ignored). */
enum pt_json_media pt_json_media_type(struct pt_str content_type);

/**
 * The result value of a response body (SPEC §4: non-JSON bodies are
 * embedded as strings):
 *   - an empty body is null, whatever the type;
 *   - PT_MEDIA_JSON: the parsed document (any JSON value at the top), or
 *     NULL with *why set when it does not parse;
 *   - PT_MEDIA_NONE: the parsed document if it parses, else a string;
 *   - PT_MEDIA_OTHER: a string.
 * Strings are the body's bytes with each ill-formed UTF-8 sequence replaced
 * by U+FFFD.  Integers beyond 64 bits are read as doubles.  Returns a new
 * reference, or NULL (*why: "invalid JSON", "out of memory").
 */
json_t *pt_json_from_body(const char *p, size_t n, enum pt_json_media media, const char **why);

/** A JSON string of n arbitrary bytes (ill-formed UTF-8 → U+FFFD).  New reference or NULL. */
json_t *pt_json_string_lossy(const char *p, size_t n);

#endif
