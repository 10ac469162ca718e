/*
 * Templates of composition calls (docs/composition.md "Templates"): the
 * `path` (with its query), `query` values, `headers` values and the `body`
 * of a call, with placeholders filled per request.
 *
 *   /orders/{id}?expand={query.expand:-none}
 *   {"customer": {order.customer_id}, "note": "for {header.X-User}"}
 *
 * A placeholder is `{` REF [`:-` DEFAULT] `}` where REF is
 *   NAME                      a route capture, or the whole result of call NAME
 *   NAME.a.b[0].c             a part of call NAME's result (dots and indexes)
 *   query.ARG                 the client's query argument ARG (decoded)
 *   header.NAME               the client's header NAME (repeated fields joined with ", ")
 *   consumer[.path]           the authenticated consumer (none today: always missing)
 * `{` followed by anything but a letter or `_` is literal text, and `{{`
 * writes a literal `{`, so JSON bodies need no escaping.
 *
 * Values are encoded for where they land, so no value can change the
 * structure around it:
 *   path      percent-encoded (all but A-Z a-z 0-9 - . _ ~); an empty value
 *             or a resulting `.` / `..` segment fails the fill
 *   query     percent-encoded the same way (so `&`, `=`, `#`, `+` are data)
 *   header    as is; a control character fails the fill
 *   body      outside a JSON string: the value as JSON (a string gets its
 *             quotes); inside a JSON string: the value's text, JSON-escaped
 *
 * Parsing happens once, at configuration load, into an arena; filling
 * happens per call and writes into a pt_jbuf.
 */
#ifndef PT_COMPOSE_TEMPLATE_H
#define PT_COMPOSE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/arena.h"
#include "core/str.h"
#include "compose/json.h"

/** Where a template is used: decides literal checks and value encoding. */
enum pt_tpl_kind {
    PT_TPL_PATH = 0, /* "/path?query": placeholders before the first '?' are path-encoded */
    PT_TPL_QUERY,    /* one query value (`query:` map); literal text is encoded too */
    PT_TPL_HEADER,   /* one header value */
    PT_TPL_BODY,     /* a JSON body */
    PT_TPL_KIND_COUNT
};

enum pt_tpl_src {
    PT_TPL_LITERAL = 0,
    PT_TPL_REF,        /* NAME[.path]: not yet known to be a capture or a call (see pt_tpl_bind) */
    PT_TPL_CAPTURE,    /* a route capture */
    PT_TPL_RESULT,     /* a call's result (call = its index) */
    PT_TPL_QUERY_ARG,  /* query.ARG */
    PT_TPL_HEADER_VAL, /* header.NAME */
    PT_TPL_CONSUMER,   /* consumer[.path] */
    PT_TPL_SRC_COUNT
};

enum pt_tpl_enc {
    PT_TPL_ENC_PATH = 0,
    PT_TPL_ENC_QUERY,
    PT_TPL_ENC_HEADER,
    PT_TPL_ENC_JSON,        /* body, outside a string literal */
    PT_TPL_ENC_JSON_STRING, /* body, inside a string literal */
    PT_TPL_ENC_COUNT
};

/** One step into a JSON value: an object member or an array index. */
struct pt_tpl_step {
    struct pt_str name; /* member name (when !is_index) */
    uint32_t index;
    bool is_index;
};

struct pt_tpl_part {
    enum pt_tpl_src src;
    enum pt_tpl_enc enc;
    struct pt_str text; /* literal text; else the name: capture, call key, ARG, header NAME */
    const struct pt_tpl_step *steps; /* into the result or the consumer */
    size_t nsteps;
    struct pt_str def; /* DEFAULT, when has_def */
    bool has_def;
    size_t off, len; /* the placeholder's bytes in the source (for messages) */
    unsigned call;   /* PT_TPL_RESULT: index of the call */
};

struct pt_tpl {
    enum pt_tpl_kind kind;
    struct pt_str src;         /* as written (a view kept from pt_tpl_parse) */
    struct pt_tpl_part *parts; /* arena */
    size_t nparts;
    size_t nrefs; /* parts that are placeholders */
};

/** Why a parse failed, and where (byte offset into the source). */
struct pt_tpl_error {
    size_t off;
    char msg[200];
};

/**
 * Parse src as a template of the given kind into arena memory (views into
 * src are kept: src must live as long as the template).  Returns 0, or -1
 * with *err filled (the first problem only), or PT_ERR_NOMEM.
 *
 * Literal checks: PATH must start with '/' and may not contain a space, a
 * control character, '#', a non-ASCII byte or a literal '{' / '}'; QUERY
 * likewise (any literal byte is allowed there, and encoded); HEADER may not
 * contain control characters other than tab; BODY takes anything but NUL.
 */
int pt_tpl_parse(struct pt_arena *a, struct pt_str src, enum pt_tpl_kind kind, struct pt_tpl *out,
                 struct pt_tpl_error *err);

/** Is name one of the reserved heads (query, header, consumer)? */
bool pt_tpl_reserved(struct pt_str name);

/** Where values come from while filling; each callback may be NULL (always missing). */
struct pt_tpl_scope {
    void *ctx;
    /** A capture's decoded value; false when the route has no such capture. */
    bool (*capture)(void *ctx, struct pt_str name, struct pt_str *out);
    /** The first query argument called name, decoded ('+' is a space); false when absent. */
    bool (*query)(void *ctx, struct pt_str name, struct pt_str *out);
    /** The client's header name (repeated fields joined); false when absent. */
    bool (*header)(void *ctx, struct pt_str name, struct pt_str *out);
    /** The consumer as a JSON object ({"name", "groups", "metadata"...}); NULL when none. */
    const json_t *(*consumer)(void *ctx);
    /** Call index's result; NULL when the call has none (it was left out). */
    const json_t *(*result)(void *ctx, unsigned call);
};

enum {
    PT_TPL_OK = 0,
    PT_TPL_MISSING = 1, /* a placeholder without default has no value */
    PT_TPL_INVALID = 2, /* a value cannot go where it is (control character, empty path value...) */
};

/** The part that failed and a static description. */
struct pt_tpl_failure {
    const struct pt_tpl_part *part;
    const char *why;
};

/**
 * Append t filled from s to out.  Returns PT_TPL_OK, PT_TPL_MISSING,
 * PT_TPL_INVALID (with *f) or PT_ERR_NOMEM.  out may hold a partial result
 * on failure.  JSON null counts as missing except where JSON is written
 * (a body outside a string).
 */
int pt_tpl_fill(const struct pt_tpl *t, const struct pt_tpl_scope *s, struct pt_jbuf *out,
                struct pt_tpl_failure *f);

/**
 * Append t with every placeholder replaced by a sample value suited to its
 * place ("null" where JSON goes, "x" elsewhere), so that the loader can check
 * what the literal text makes of it (a body that is not JSON, a path with a
 * dot segment).  0 or PT_ERR_NOMEM.
 */
int pt_tpl_probe(const struct pt_tpl *t, struct pt_jbuf *out);

/** Does the path part of p (up to the first '?') hold a "." or ".." segment? */
bool pt_tpl_has_dot_segment(struct pt_str p);

/** Append s percent-encoded: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX. */
void pt_tpl_percent_encode(struct pt_jbuf *out, struct pt_str s);

/**
 * Decode %XX sequences (and '+' as a space when plus_space) into dst, which
 * must hold src.len bytes.  A '%' not followed by two hex digits is kept as
 * is.  Returns the decoded length.
 */
size_t pt_tpl_percent_decode(char *dst, struct pt_str src, bool plus_space);

#endif
