/*
 * Changing one object of the configuration through the admin API, and
 * writing the configuration back as YAML.
 *
 * Edits work on the tree as written (config/node.h): the snapshot keeps it,
 * with every scalar's raw text (${NAME} unexpanded) and whether it was
 * quoted.  An edit builds a new root that shares every untouched node with
 * the old tree and replaces, appends or drops one entry of `routes`,
 * `services` or `consumers`.  The new tree is emitted as YAML with libyaml's
 * emitter, which the host validates as a whole (the same checks as a
 * reload) and writes back to the file.
 *
 * What survives the round trip: keys in their order, every scalar's raw
 * text, quoted scalars stay strings (single-quoted, or a literal block when
 * they hold line breaks), plain ones stay plain, so ${NAME} references and
 * typing are kept.  What does not: comments, anchors and aliases (aliases
 * are written out in full), flow style and the original indentation.
 */
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "config/node.h"
#include "config/snapshot.h"
#include "proxy/route.h"
#include "admin/admin-int.h"

static const char *const kind_keys[PT_ADMIN_KIND_COUNT] = {"routes", "services", "consumers"};

const char *pt_admin_kind_key(enum pt_admin_kind k)
{
    return (unsigned)k < PT_ADMIN_KIND_COUNT ? kind_keys[k] : "?";
}

static const struct pt_conf_node *section(const struct pt_snapshot *s, enum pt_admin_kind k)
{
    return pt_conf_map_get(s->tree, pt_admin_kind_key(k));
}

long pt_admin_find(const struct pt_snapshot *s, enum pt_admin_kind k, const char *name)
{
    const struct pt_conf_node *sec = section(s, k);
    if (sec == NULL)
        return -1;
    if (k == PT_ADMIN_ROUTES) {
        /* compiled routes are the list's items in order (route-N names included) */
        if (sec->kind != PT_CONF_SEQ || sec->seq.n != s->nroutes)
            return -1;
        for (size_t i = 0; i < s->nroutes; i++)
            if (strcmp(s->routes[i]->name, name) == 0)
                return (long)i;
        return -1;
    }
    if (k == PT_ADMIN_SERVICES) {
        if (sec->kind != PT_CONF_MAP)
            return -1;
        for (size_t i = 0; i < sec->map.n; i++)
            if (strcmp(sec->map.pairs[i].key->scalar.raw, name) == 0)
                return (long)i;
        return -1;
    }
    if (sec->kind != PT_CONF_SEQ)
        return -1;
    for (size_t i = 0; i < sec->seq.n; i++) {
        const struct pt_conf_node *n = pt_conf_map_get(sec->seq.items[i], "name");
        if (n != NULL && n->kind == PT_CONF_SCALAR && strcmp(n->scalar.value, name) == 0)
            return (long)i;
    }
    return -1;
}

const struct pt_conf_node *pt_admin_object(const struct pt_snapshot *s, enum pt_admin_kind k,
                                           long i)
{
    const struct pt_conf_node *sec = section(s, k);
    if (sec == NULL || i < 0)
        return NULL;
    if (sec->kind == PT_CONF_SEQ && (size_t)i < sec->seq.n)
        return sec->seq.items[i];
    if (sec->kind == PT_CONF_MAP && (size_t)i < sec->map.n)
        return sec->map.pairs[i].value;
    return NULL;
}

/* ---- building nodes ---- */

static struct pt_conf_node *new_node(struct pt_arena *a, enum pt_conf_kind kind, const char *file)
{
    struct pt_conf_node *n = pt_arena_calloc(a, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->file = file != NULL ? file : "admin";
    n->weight = 1;
    return n;
}

static bool null_word(const char *s)
{
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* A scalar holding text (quoted when a plain one would read as null). */
static struct pt_conf_node *new_scalar(struct pt_arena *a, const char *text, const char *file)
{
    struct pt_conf_node *n = new_node(a, PT_CONF_SCALAR, file);
    char *copy = n != NULL ? pt_arena_strndup(a, text, strlen(text)) : NULL;
    if (copy == NULL)
        return NULL;
    n->scalar.raw = n->scalar.value = copy;
    n->scalar.raw_len = n->scalar.len = strlen(copy);
    n->scalar.quoted = null_word(copy);
    return n;
}

struct pt_conf_node *pt_admin_with_name(struct pt_arena *a, const struct pt_conf_node *map,
                                        const char *name)
{
    struct pt_conf_node *n = new_node(a, PT_CONF_MAP, map->file);
    struct pt_conf_pair *pairs =
        n != NULL ? pt_arena_calloc(a, (map->map.n + 1) * sizeof(*pairs)) : NULL;
    struct pt_conf_node *key = new_scalar(a, "name", map->file);
    struct pt_conf_node *value = new_scalar(a, name, map->file);
    if (pairs == NULL || key == NULL || value == NULL)
        return NULL;
    pairs[0] = (struct pt_conf_pair){key, value};
    memcpy(pairs + 1, map->map.pairs, map->map.n * sizeof(*pairs));
    n->map.pairs = pairs;
    n->map.n = map->map.n + 1;
    n->weight = map->weight + 2;
    return n;
}

static size_t weight_of(const struct pt_conf_node *n)
{
    return n != NULL ? n->weight : 0;
}

/* The section with entry `index` replaced / dropped (value NULL), or appended (index -1). */
static struct pt_conf_node *edit_section(struct pt_arena *a, const struct pt_conf_node *sec,
                                         enum pt_admin_kind k, long index, const char *name,
                                         const struct pt_conf_node *value, const char *file)
{
    bool is_map = k == PT_ADMIN_SERVICES;
    struct pt_conf_node *out = new_node(a, is_map ? PT_CONF_MAP : PT_CONF_SEQ, file);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    if (sec != NULL && sec->kind == out->kind)
        n = is_map ? sec->map.n : sec->seq.n;
    else
        sec = NULL;
    if (is_map) {
        struct pt_conf_pair *pairs = pt_arena_calloc(a, (n + 1) * sizeof(*pairs));
        if (pairs == NULL)
            return NULL;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if ((long)i == index && value == NULL)
                continue;
            pairs[m] = sec->map.pairs[i];
            if ((long)i == index)
                pairs[m].value = (struct pt_conf_node *)value;
            out->weight += weight_of(pairs[m].key) + weight_of(pairs[m].value);
            m++;
        }
        if (index < 0 && value != NULL) {
            struct pt_conf_node *key = new_scalar(a, name, file);
            if (key == NULL)
                return NULL;
            key->scalar.quoted = false; /* keys are never typed */
            pairs[m++] = (struct pt_conf_pair){key, (struct pt_conf_node *)value};
            out->weight += 1 + weight_of(value);
        }
        out->map.pairs = pairs;
        out->map.n = m;
        return out;
    }
    struct pt_conf_node **items = pt_arena_calloc(a, (n + 1) * sizeof(*items));
    if (items == NULL)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if ((long)i == index && value == NULL)
            continue;
        items[m] = (long)i == index ? (struct pt_conf_node *)value : sec->seq.items[i];
        out->weight += weight_of(items[m]);
        m++;
    }
    if (index < 0 && value != NULL) {
        items[m++] = (struct pt_conf_node *)value;
        out->weight += weight_of(value);
    }
    out->seq.items = items;
    out->seq.n = m;
    return out;
}

struct pt_conf_node *pt_admin_edit(struct pt_arena *a, const struct pt_conf_node *root,
                                   enum pt_admin_kind k, long index, const char *name,
                                   const struct pt_conf_node *value)
{
    const char *file = root != NULL ? root->file : "admin";
    const char *key = pt_admin_kind_key(k);
    if (root != NULL && root->kind != PT_CONF_MAP)
        root = NULL;
    const struct pt_conf_node *sec = pt_conf_map_get(root, key);
    struct pt_conf_node *ns = edit_section(a, sec, k, index, name, value, file);
    struct pt_conf_node *out = new_node(a, PT_CONF_MAP, file);
    size_t n = root != NULL ? root->map.n : 0;
    struct pt_conf_pair *pairs = out != NULL ? pt_arena_calloc(a, (n + 1) * sizeof(*pairs)) : NULL;
    if (ns == NULL || pairs == NULL)
        return NULL;
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        pairs[i] = root->map.pairs[i];
        if (strcmp(pairs[i].key->scalar.raw, key) == 0) {
            pairs[i].value = ns;
            found = true;
        }
        out->weight += weight_of(pairs[i].key) + weight_of(pairs[i].value);
    }
    if (!found) {
        struct pt_conf_node *k_node = new_scalar(a, key, file);
        if (k_node == NULL)
            return NULL;
        pairs[n++] = (struct pt_conf_pair){k_node, ns};
        out->weight += 1 + ns->weight;
    }
    out->map.pairs = pairs;
    out->map.n = n;
    return out;
}

/* ---- request bodies ---- */

static const char *no_env(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return ""; /* never looked up: only the raw text is kept */
}

int pt_admin_parse_body(struct pt_arena *a, struct pt_str body, struct pt_diag *d,
                        struct pt_conf_node **root)
{
    static const struct pt_conf_env env = {no_env, NULL};
    size_t before = d->nerrors;
    int rc = pt_conf_parse(a, "body", body.ptr != NULL ? body.ptr : "", body.len, &env, d, root);
    return rc != 0 || d->nerrors != before ? -1 : 0;
}

/* ---- YAML output ---- */

struct sink {
    char *p;
    size_t len, cap;
    bool failed;
};

static int write_sink(void *data, unsigned char *buf, size_t size)
{
    struct sink *s = data;
    if (s->len + size + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + size + 1)
            cap *= 2;
        char *p = pt_realloc(s->p, cap);
        if (p == NULL) {
            s->failed = true;
            return 0;
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, buf, size);
    s->len += size;
    s->p[s->len] = '\0';
    return 1;
}

static bool emit(yaml_emitter_t *e, yaml_event_t *ev, bool init_ok)
{
    return init_ok && yaml_emitter_emit(e, ev);
}

/* [-+]?digits[.digits][e[-+]digits], or .inf/.nan forms: what a reader may take for a number. */
static bool looks_numeric(struct pt_str v)
{
    size_t i = 0, digits = 0;
    if (i < v.len && (v.ptr[i] == '-' || v.ptr[i] == '+'))
        i++;
    if (i < v.len && v.ptr[i] == '.' && i + 1 < v.len && (v.ptr[i + 1] < '0' || v.ptr[i + 1] > '9'))
        return true; /* .inf, .nan */
    while (i < v.len && ((v.ptr[i] >= '0' && v.ptr[i] <= '9') || v.ptr[i] == '.' ||
                         v.ptr[i] == 'e' || v.ptr[i] == 'E' || v.ptr[i] == '_' ||
                         ((v.ptr[i] == '-' || v.ptr[i] == '+') && i > 0 &&
                          (v.ptr[i - 1] == 'e' || v.ptr[i - 1] == 'E')))) {
        digits += v.ptr[i] >= '0' && v.ptr[i] <= '9';
        i++;
    }
    return digits > 0 && i == v.len;
}

/*
 * Can a quoted scalar be written plain and still read as the same string?
 * Not when a reader would type it (null, booleans, numbers) or it spans
 * lines; libyaml itself falls back to quotes when plain is not allowed
 * (leading indicators, ": ", " #", ...).
 */
static bool plain_reads_same(const struct pt_conf_node *n)
{
    struct pt_str v = pt_str_make(n->scalar.raw, n->scalar.raw_len);
    bool b;
    return !null_word(n->scalar.raw) && pt_conf_parse_bool(v, &b) != 0 && !looks_numeric(v) &&
           memchr(v.ptr, '\n', v.len) == NULL;
}

/* A scalar; keys are never typed, so they are plain whenever YAML allows it. */
static bool emit_scalar(yaml_emitter_t *e, const struct pt_conf_node *n, bool key)
{
    bool plain = !n->scalar.quoted || key || plain_reads_same(n);
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    if (!plain)
        style = memchr(n->scalar.raw, '\n', n->scalar.raw_len) != NULL
                    ? YAML_LITERAL_SCALAR_STYLE
                    : YAML_SINGLE_QUOTED_SCALAR_STYLE;
    yaml_event_t ev;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)n->scalar.raw,
                                          (int)n->scalar.raw_len, plain, 1, style);
    return emit(e, &ev, ok != 0);
}

static bool emit_node(yaml_emitter_t *e, const struct pt_conf_node *n)
{
    yaml_event_t ev;
    if (n == NULL) {
        int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)"", 0, 1, 1,
                                              YAML_PLAIN_SCALAR_STYLE);
        return emit(e, &ev, ok != 0);
    }
    switch (n->kind) {
    case PT_CONF_SCALAR:
        return emit_scalar(e, n, false);
    case PT_CONF_SEQ:
        if (!emit(e, &ev,
                  yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                       YAML_BLOCK_SEQUENCE_STYLE) != 0))
            return false;
        for (size_t i = 0; i < n->seq.n; i++)
            if (!emit_node(e, n->seq.items[i]))
                return false;
        return emit(e, &ev, yaml_sequence_end_event_initialize(&ev) != 0);
    case PT_CONF_MAP:
        if (!emit(e, &ev,
                  yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                      YAML_BLOCK_MAPPING_STYLE) != 0))
            return false;
        for (size_t i = 0; i < n->map.n; i++)
            if (!emit_scalar(e, n->map.pairs[i].key, true) || !emit_node(e, n->map.pairs[i].value))
                return false;
        return emit(e, &ev, yaml_mapping_end_event_initialize(&ev) != 0);
    default:
        return false;
    }
}

int pt_admin_emit_yaml(const struct pt_conf_node *root, char **text, size_t *len)
{
    struct sink s = {0};
    yaml_emitter_t e;
    yaml_event_t ev;
    *text = NULL;
    *len = 0;
    if (!yaml_emitter_initialize(&e))
        return -1;
    yaml_emitter_set_output(&e, write_sink, &s);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_emitter_set_indent(&e, 2);
    bool ok = emit(&e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) != 0) &&
              emit(&e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) != 0) &&
              emit_node(&e, root) &&
              emit(&e, &ev, yaml_document_end_event_initialize(&ev, 1) != 0) &&
              emit(&e, &ev, yaml_stream_end_event_initialize(&ev) != 0) && yaml_emitter_flush(&e);
    yaml_emitter_delete(&e);
    if (!ok || s.failed) {
        free(s.p);
        return -1;
    }
    if (s.p == NULL && write_sink(&s, (unsigned char *)"", 0) == 0) /* an empty document */
        return -1;
    *text = s.p;
    *len = s.len;
    return 0;
}
