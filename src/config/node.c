/*
 * YAML text -> node tree, from libyaml's event stream.
 *
 * Why events rather than yaml_parser_load(): the document API expands
 * nothing for us that we want, hides nothing we need to check, and would
 * keep a second copy of the whole tree.  Working on events lets us check
 * every rule where it is cheapest:
 *   - nesting depth, on each container start (the stack is a fixed array);
 *   - total size, counting an alias as a copy of what it refers to, so a
 *     "billion laughs" document is rejected after PT_CONF_MAX_NODES, not
 *     after exhausting memory.  Aliases share the anchored subtree;
 *   - keys: scalars only, unique (checked once per map, by sorting), no
 *     YAML 1.1 merge keys (<<), which libyaml leaves to the application;
 *   - ${NAME} interpolation, on each value scalar (keys are not expanded).
 * Children are gathered in malloc'd vectors while a container is open and
 * copied into the arena when it closes, so the arena holds only the final
 * tree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/hash.h"
#include "config/node.h"

struct vec {
    void *p;
    size_t n, cap;
};

struct frame {
    struct pt_conf_node *node; /* PT_CONF_SEQ or PT_CONF_MAP, being built */
    struct vec items;          /* struct pt_conf_node * or struct pt_conf_pair */
    struct pt_conf_node *key;  /* map: the key waiting for its value */
    bool want_value;           /* map: the next node is a value */
    bool drop_value;           /* map: the key was rejected; drop its value */
    char *anchor;              /* register the node under this name when it closes */
};

struct anchor {
    char *name;
    struct pt_conf_node *node;
    size_t next; /* 1 + index of the previous anchor in the same bucket; 0: none */
};

struct builder {
    struct pt_arena *a;
    struct pt_diag *d;
    const char *file; /* arena copy, shared by every node */
    const char *text;
    size_t len;
    const struct pt_conf_env *env;
    struct frame stack[PT_CONF_MAX_DEPTH];
    int depth;
    struct vec anchors; /* struct anchor, in definition order */
    size_t *buckets;    /* hash of anchor names: 1 + index of the latest; 0: empty */
    size_t nbuckets;    /* a power of two, at least the number of anchors */
    size_t total;       /* nodes so far, aliases expanded */
    size_t written;     /* nodes so far, each alias counted once */
    int ndocs;
    struct pt_conf_node *root;
    yaml_mark_t mark; /* of the current event, for errors without a node */
};

static bool vec_push(struct vec *v, const void *elem, size_t size)
{
    if (v->n == v->cap) {
        size_t cap = v->cap == 0 ? 8 : v->cap * 2;
        void *p = pt_realloc(v->p, cap * size);
        if (p == NULL)
            return false;
        v->p = p;
        v->cap = cap;
    }
    memcpy((char *)v->p + v->n * size, elem, size);
    v->n++;
    return true;
}

static void error_at_mark(struct builder *b, yaml_mark_t m, const char *msg)
{
    pt_diag_error(b->d, b->file, (int)m.line + 1, (int)m.column + 1, "%s", msg);
}

static void error_at(struct builder *b, const struct pt_conf_node *n, const char *msg)
{
    pt_diag_error(b->d, b->file, n->line, n->col, "%s", msg);
}

static void nomem(struct builder *b)
{
    error_at_mark(b, b->mark, "out of memory");
}

/* --- positions ----------------------------------------------------------- */

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

void pt_conf_node_pos_at(const struct pt_conf_node *n, size_t off, int *line, int *col)
{
    *line = n->line;
    *col = n->col;
    if (n->kind != PT_CONF_SCALAR || !n->scalar.exact || off > n->scalar.raw_len)
        return;
    *col = n->col + (n->scalar.quoted ? 1 : 0) + (int)utf8_chars(n->scalar.raw, off);
}

/* Line and column of a byte offset, for reader errors that carry no mark. */
static void pos_of_offset(const char *text, size_t len, size_t off, int *line, int *col)
{
    int l = 1;
    size_t bol = 0;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            l++;
            bol = i + 1;
        }
    }
    *line = l;
    *col = 1 + (int)utf8_chars(text + bol, off - bol);
}

/* --- nodes ----------------------------------------------------------------- */

static struct pt_conf_node *new_node(struct builder *b, enum pt_conf_kind kind, yaml_mark_t m)
{
    struct pt_conf_node *n = pt_arena_calloc(b->a, sizeof(*n));
    if (n == NULL) {
        nomem(b);
        return NULL;
    }
    n->kind = kind;
    n->file = b->file;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    n->weight = 1;
    return n;
}

static size_t add_weight(size_t a, size_t w)
{
    return a > SIZE_MAX - w ? SIZE_MAX : a + w;
}

/*
 * Count a node that expands to w nodes (w > 1 only for an alias); false
 * (after reporting) past the limits.
 */
static bool count_nodes(struct builder *b, size_t w)
{
    b->total = add_weight(b->total, w);
    b->written++;
    if (b->total > PT_CONF_MAX_NODES) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "configuration too large: more than %u nodes (aliases count as "
                 "copies of what they refer to)",
                 PT_CONF_MAX_NODES);
        error_at_mark(b, b->mark, msg);
        return false;
    }
    size_t budget = b->written * PT_CONF_ALIAS_RATIO;
    if (b->total > PT_CONF_ALIAS_FLOOR && b->total > budget) {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "configuration too large: aliases expand it to more than %u times its size",
                 PT_CONF_ALIAS_RATIO);
        error_at_mark(b, b->mark, msg);
        return false;
    }
    return true;
}

/* Is the node about to be added a map key? */
static bool next_is_key(const struct builder *b)
{
    if (b->depth == 0)
        return false;
    const struct frame *f = &b->stack[b->depth - 1];
    return f->node->kind == PT_CONF_MAP && !f->want_value;
}

static bool check_tag(struct builder *b, const yaml_char_t *tag, yaml_mark_t m, bool *is_str)
{
    *is_str = false;
    if (tag == NULL)
        return true;
    const char *t = (const char *)tag;
    if (strcmp(t, "tag:yaml.org,2002:str") == 0 || strcmp(t, "!") == 0) {
        *is_str = true;
        return true;
    }
    if (strncmp(t, "tag:yaml.org,2002:", 18) == 0)
        return true;
    char msg[160];
    snprintf(msg, sizeof(msg), "unsupported YAML tag \"%.100s\"", t);
    error_at_mark(b, m, msg);
    return false;
}

struct expand_ctx {
    struct builder *b;
    const struct pt_conf_node *n;
};

static void expand_error(void *ctx, size_t off, const char *message)
{
    struct expand_ctx *x = ctx;
    int line, col;
    pt_conf_node_pos_at(x->n, off, &line, &col);
    pt_diag_error(x->b->d, x->b->file, line, col, "%s", message);
}

static struct pt_conf_node *make_scalar(struct builder *b, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    yaml_scalar_style_t style = ev->data.scalar.style;
    struct pt_conf_node *n = new_node(b, PT_CONF_SCALAR, ev->start_mark);
    if (n == NULL)
        return NULL;
    bool is_str;
    bool tag_ok = check_tag(b, ev->data.scalar.tag, ev->start_mark, &is_str);
    n->scalar.quoted = is_str || style != YAML_PLAIN_SCALAR_STYLE;
    n->scalar.invalid = !tag_ok;
    char *raw = pt_arena_strndup(b->a, v, len);
    if (raw == NULL) {
        nomem(b);
        return NULL;
    }
    n->scalar.raw = n->scalar.value = raw;
    n->scalar.raw_len = n->scalar.len = len;
    if (memchr(v, '\0', len) != NULL) {
        error_at(b, n, "NUL characters are not allowed in the configuration");
        n->scalar.invalid = true;
        n->scalar.raw_len = n->scalar.len = strlen(raw);
        len = n->scalar.raw_len;
    }
    size_t quotes = 0;
    if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        quotes = 2;
    n->scalar.exact = (style == YAML_PLAIN_SCALAR_STYLE || quotes == 2) &&
                      ev->start_mark.line == ev->end_mark.line && !n->scalar.invalid &&
                      ev->end_mark.index - ev->start_mark.index == utf8_chars(raw, len) + quotes;
    if (next_is_key(b) || n->scalar.invalid)
        return n;
    struct expand_ctx x = {b, n};
    struct pt_str out;
    int rc = pt_conf_expand_env(b->a, raw, len, b->env, &out, expand_error, &x);
    if (rc == PT_ERR_NOMEM) {
        nomem(b);
        return NULL;
    }
    if (rc != 0) {
        n->scalar.invalid = true;
        return n;
    }
    n->scalar.value = out.ptr;
    n->scalar.len = out.len;
    return n;
}

static size_t hash_name(const char *s)
{
    return (size_t)pt_fnv1a(s, strlen(s), PT_FNV1A_OFFSET);
}

/* The node most recently anchored as name (YAML lets an anchor be redefined). */
static struct pt_conf_node *find_anchor(struct builder *b, const char *name)
{
    struct anchor *an = b->anchors.p;
    if (b->nbuckets == 0)
        return NULL;
    for (size_t i = b->buckets[hash_name(name) & (b->nbuckets - 1)]; i != 0; i = an[i - 1].next)
        if (strcmp(an[i - 1].name, name) == 0)
            return an[i - 1].node;
    return NULL;
}

/* Chain anchor i (0-based) at the head of its bucket, so the latest definition comes first. */
static void link_anchor(struct builder *b, size_t i)
{
    struct anchor *an = b->anchors.p;
    size_t h = hash_name(an[i].name) & (b->nbuckets - 1);
    an[i].next = b->buckets[h];
    b->buckets[h] = i + 1;
}

static bool add_anchor(struct builder *b, char *name, struct pt_conf_node *n)
{
    struct anchor an = {name, n, 0};
    if (!vec_push(&b->anchors, &an, sizeof(an))) {
        free(name);
        nomem(b);
        return false;
    }
    if (b->anchors.n > b->nbuckets) {
        size_t nb = b->nbuckets == 0 ? 64 : b->nbuckets * 2;
        size_t *buckets = pt_calloc(nb, sizeof(*buckets));
        if (buckets == NULL) {
            nomem(b);
            return false;
        }
        free(b->buckets);
        b->buckets = buckets;
        b->nbuckets = nb;
        for (size_t i = 0; i < b->anchors.n; i++)
            link_anchor(b, i);
    } else {
        link_anchor(b, b->anchors.n - 1);
    }
    return true;
}

static struct pt_conf_node *make_alias(struct builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    struct pt_conf_node *target = find_anchor(b, name);
    struct pt_conf_node *n = pt_arena_alloc(b->a, sizeof(*n));
    if (n == NULL) {
        nomem(b);
        return NULL;
    }
    if (target == NULL) {
        /* Report, and stand in a null scalar so the rest can be checked. */
        memset(n, 0, sizeof(*n));
        n->kind = PT_CONF_SCALAR;
        n->file = b->file;
        n->line = (int)ev->start_mark.line + 1;
        n->col = (int)ev->start_mark.column + 1;
        n->weight = 1;
        n->scalar.raw = n->scalar.value = "";
        n->scalar.invalid = true;
        char msg[160];
        snprintf(msg, sizeof(msg), "unknown alias *%.100s (anchors must be defined before use)",
                 name);
        error_at_mark(b, ev->start_mark, msg);
        return count_nodes(b, 1) ? n : NULL;
    }
    /* A shallow copy: the alias's own position, the anchored node's content. */
    *n = *target;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    if (n->kind == PT_CONF_SCALAR && next_is_key(b)) {
        n->scalar.value = n->scalar.raw; /* keys are never expanded */
        n->scalar.len = n->scalar.raw_len;
    }
    return count_nodes(b, target->weight) ? n : NULL;
}

/* Attach a finished node to its parent (or make it the root). */
static bool add_node(struct builder *b, struct pt_conf_node *n, char *anchor)
{
    if (anchor != NULL && !add_anchor(b, anchor, n))
        return false;
    if (b->depth == 0) {
        b->root = n;
        return true;
    }
    struct frame *f = &b->stack[b->depth - 1];
    f->node->weight = add_weight(f->node->weight, n->weight);
    if (f->node->kind == PT_CONF_SEQ) {
        if (!vec_push(&f->items, &n, sizeof(n))) {
            nomem(b);
            return false;
        }
        return true;
    }
    if (!f->want_value) {
        f->want_value = true;
        f->drop_value = false;
        f->key = n;
        if (n->kind != PT_CONF_SCALAR) {
            pt_diag_error(b->d, b->file, n->line, n->col, "map keys must be scalars, not %s",
                          pt_conf_kind_name(n));
            f->drop_value = true;
        } else if (!n->scalar.quoted && strcmp(n->scalar.raw, "<<") == 0) {
            error_at(b, n, "YAML merge keys (<<) are not supported");
            f->drop_value = true;
        }
        return true;
    }
    f->want_value = false;
    if (f->drop_value)
        return true;
    struct pt_conf_pair p = {f->key, n};
    if (!vec_push(&f->items, &p, sizeof(p))) {
        nomem(b);
        return false;
    }
    return true;
}

static bool open_container(struct builder *b, const yaml_event_t *ev, enum pt_conf_kind kind)
{
    const yaml_char_t *tag, *anchor;
    if (kind == PT_CONF_MAP) {
        tag = ev->data.mapping_start.tag;
        anchor = ev->data.mapping_start.anchor;
    } else {
        tag = ev->data.sequence_start.tag;
        anchor = ev->data.sequence_start.anchor;
    }
    bool is_str;
    check_tag(b, tag, ev->start_mark, &is_str); /* reported; the content is still useful */
    if (b->depth == PT_CONF_MAX_DEPTH) {
        char msg[96];
        snprintf(msg, sizeof(msg), "nesting is deeper than %d levels", PT_CONF_MAX_DEPTH);
        error_at_mark(b, ev->start_mark, msg);
        return false;
    }
    struct pt_conf_node *n = new_node(b, kind, ev->start_mark);
    if (n == NULL || !count_nodes(b, 1))
        return false;
    struct frame *f = &b->stack[b->depth++];
    memset(f, 0, sizeof(*f));
    f->node = n;
    if (anchor != NULL && (f->anchor = pt_strdup((const char *)anchor)) == NULL) {
        nomem(b);
        return false;
    }
    return true;
}

struct key_ref {
    const struct pt_conf_node *key;
    size_t idx;
};

static int cmp_key_ref(const void *pa, const void *pb)
{
    const struct key_ref *a = pa, *b = pb;
    size_t la = a->key->scalar.raw_len, lb = b->key->scalar.raw_len;
    int c = memcmp(a->key->scalar.raw, b->key->scalar.raw, la < lb ? la : lb);
    if (c != 0)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Report duplicate keys (at the later ones) and drop them; the first one stays. */
static bool dedupe_keys(struct builder *b, struct pt_conf_pair *pairs, size_t *np)
{
    size_t n = *np;
    if (n < 2)
        return true;
    struct key_ref *refs = pt_malloc(n * sizeof(*refs));
    bool *drop = pt_calloc(n, sizeof(*drop));
    if (refs == NULL || drop == NULL) {
        free(refs);
        free(drop);
        nomem(b);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        refs[i] = (struct key_ref){pairs[i].key, i};
    qsort(refs, n, sizeof(*refs), cmp_key_ref);
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        const struct pt_conf_node *k = refs[i].key, *f = refs[first].key;
        if (k->scalar.raw_len == f->scalar.raw_len &&
            memcmp(k->scalar.raw, f->scalar.raw, k->scalar.raw_len) == 0) {
            pt_diag_error(b->d, b->file, k->line, k->col,
                          "duplicate key \"%.100s\" (first defined at line %d, column %d)",
                          k->scalar.raw, f->line, f->col);
            drop[refs[i].idx] = true;
        } else {
            first = i;
        }
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (!drop[i])
            pairs[out++] = pairs[i];
    *np = out;
    free(refs);
    free(drop);
    return true;
}

static bool close_container(struct builder *b)
{
    struct frame *f = &b->stack[--b->depth];
    struct pt_conf_node *n = f->node;
    char *anchor = f->anchor;
    f->anchor = NULL;
    bool ok = true;
    if (n->kind == PT_CONF_MAP) {
        size_t np = f->items.n;
        ok = dedupe_keys(b, f->items.p, &np);
        if (ok && np > 0) {
            n->map.pairs = pt_arena_alloc(b->a, np * sizeof(struct pt_conf_pair));
            if (n->map.pairs == NULL) {
                ok = false;
                nomem(b);
            } else {
                memcpy(n->map.pairs, f->items.p, np * sizeof(struct pt_conf_pair));
            }
        }
        n->map.n = ok ? np : 0;
    } else if (f->items.n > 0) {
        n->seq.items = pt_arena_alloc(b->a, f->items.n * sizeof(struct pt_conf_node *));
        if (n->seq.items == NULL) {
            ok = false;
            nomem(b);
        } else {
            memcpy(n->seq.items, f->items.p, f->items.n * sizeof(struct pt_conf_node *));
        }
        n->seq.n = ok ? f->items.n : 0;
    }
    free(f->items.p);
    f->items = (struct vec){0};
    if (!ok) {
        free(anchor);
        return false;
    }
    return add_node(b, n, anchor);
}

static void syntax_error(struct builder *b, const yaml_parser_t *p)
{
    int line, col;
    char msg[512];
    const char *problem = p->problem != NULL ? p->problem : "cannot parse";
    if (p->error == YAML_MEMORY_ERROR) {
        nomem(b);
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        pos_of_offset(b->text, b->len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            snprintf(msg, sizeof(msg), "invalid YAML: %s (byte 0x%02X)", problem,
                     (unsigned)p->problem_value & 0xFFu);
        else
            snprintf(msg, sizeof(msg), "invalid YAML: %s", problem);
    } else {
        line = (int)p->problem_mark.line + 1;
        col = (int)p->problem_mark.column + 1;
        if (p->context != NULL)
            snprintf(msg, sizeof(msg), "invalid YAML: %s (%s started at line %d, column %d)",
                     problem, p->context, (int)p->context_mark.line + 1,
                     (int)p->context_mark.column + 1);
        else
            snprintf(msg, sizeof(msg), "invalid YAML: %s", problem);
    }
    pt_diag_error(b->d, b->file, line, col, "%s", msg);
}

/* Handle one event; false stops the parse (after reporting why). */
static bool on_event(struct builder *b, const yaml_event_t *ev)
{
    struct pt_conf_node *n;
    char *anchor = NULL;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->ndocs > 1) {
            error_at_mark(b, ev->start_mark,
                          "only one YAML document is allowed (found a second '---')");
            return false;
        }
        return true;
    case YAML_SCALAR_EVENT:
        if ((n = make_scalar(b, ev)) == NULL || !count_nodes(b, 1))
            return false;
        if (ev->data.scalar.anchor != NULL &&
            (anchor = pt_strdup((const char *)ev->data.scalar.anchor)) == NULL) {
            nomem(b);
            return false;
        }
        return add_node(b, n, anchor);
    case YAML_ALIAS_EVENT:
        return (n = make_alias(b, ev)) != NULL && add_node(b, n, NULL);
    case YAML_SEQUENCE_START_EVENT:
        return open_container(b, ev, PT_CONF_SEQ);
    case YAML_MAPPING_START_EVENT:
        return open_container(b, ev, PT_CONF_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return close_container(b);
    default:
        return true;
    }
}

int pt_conf_parse(struct pt_arena *a, const char *file, const char *text, size_t len,
                  const struct pt_conf_env *env, struct pt_diag *d, struct pt_conf_node **root)
{
    struct builder b = {.a = a, .d = d, .text = text, .len = len, .env = env};
    *root = NULL;
    b.file = pt_arena_strndup(a, file, strlen(file));
    if (b.file == NULL) {
        pt_diag_error(d, file, 0, 0, "out of memory");
        return -1;
    }
    if (len > PT_CONF_MAX_BYTES) {
        pt_diag_error(d, file, 0, 0, "file too large (more than %u bytes)", PT_CONF_MAX_BYTES);
        return -1;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        pt_diag_error(d, file, 0, 0, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    bool ok = true, done = false;
    while (ok && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(&b, &p);
            ok = false;
            break;
        }
        b.mark = ev.start_mark;
        done = ev.type == YAML_STREAM_END_EVENT;
        ok = on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    while (b.depth > 0) {
        struct frame *f = &b.stack[--b.depth];
        free(f->items.p);
        free(f->anchor);
    }
    struct anchor *an = b.anchors.p;
    for (size_t i = 0; i < b.anchors.n; i++)
        free(an[i].name);
    free(b.anchors.p);
    free(b.buckets);
    if (!ok)
        return -1;
    *root = b.root;
    return 0;
}

bool pt_conf_is_null(const struct pt_conf_node *n)
{
    if (n == NULL)
        return true;
    if (n->kind != PT_CONF_SCALAR || n->scalar.quoted)
        return false;
    struct pt_str v = pt_str_make(n->scalar.value, n->scalar.len);
    return v.len == 0 || pt_str_eq_lit(v, "~") || pt_str_eq_lit(v, "null") ||
           pt_str_eq_lit(v, "Null") || pt_str_eq_lit(v, "NULL");
}

const struct pt_conf_node *pt_conf_map_get(const struct pt_conf_node *map, const char *key)
{
    if (map == NULL || map->kind != PT_CONF_MAP)
        return NULL;
    for (size_t i = 0; i < map->map.n; i++)
        if (strcmp(map->map.pairs[i].key->scalar.raw, key) == 0)
            return map->map.pairs[i].value;
    return NULL;
}

const char *pt_conf_kind_name(const struct pt_conf_node *n)
{
    if (n == NULL || pt_conf_is_null(n))
        return "nothing";
    switch (n->kind) {
    case PT_CONF_SEQ:
        return "a list";
    case PT_CONF_MAP:
        return "a map";
    default:
        return "a scalar";
    }
}
