/*
 * Metrics: per-worker recording, summed when /metrics is scraped.
 *
 * Design.  A worker records into its own struct pt_metrics and nobody else
 * writes it, so the request path takes no lock and performs no atomic
 * read-modify-write: each counter is a C11 atomic that its single writer
 * bumps with a relaxed load and a relaxed store (a plain load/add/store on
 * x86 and arm64), and that the scraper (the main thread) reads with relaxed
 * loads.  Torn or stale reads are impossible; a scrape may miss the
 * increments made while it runs, which the next one sees.
 *
 * A label set ("series") is found through a hash index that only the worker
 * uses.  The first request with a new label set allocates the series (one
 * cache-line aligned block holding the counters and a copy of the label
 * strings, which may point into a snapshot that dies later), links it at
 * the head of the family's list and publishes the new head with a release
 * store.  The scraper loads the head with acquire and walks the list: every
 * series it reaches is fully initialised, and `next` and the labels never
 * change after publication.  Series are never removed; they live until
 * pt_metrics_free(), which runs after the worker has stopped and the admin
 * API no longer scrapes.
 *
 * Steady state allocates nothing: after the first request of each label
 * set, recording is a hash, a probe, a label compare and a few stores.
 *
 * Histograms keep one non-cumulative counter per bucket plus one for
 * "above the last bound"; _count is the sum of them all, so _count always
 * equals the +Inf bucket and the cumulative buckets are monotonic within a
 * scrape even while workers record.  Sums are kept in integer microseconds
 * and rendered exactly.
 *
 * Rendering copies every worker's series into rows, sorts them by label set
 * and merges equal ones (summing across workers), once per family view.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/compiler.h"
#include "core/metrics.h"

/* Upper bounds of the duration buckets, in microseconds, and as rendered. */
#define NBUCKETS 13
static const uint64_t bucket_us[NBUCKETS] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const bucket_le[NBUCKETS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",
};

/** Distinct label sets per family per worker; beyond, samples are only counted as dropped. */
#define MAX_SERIES 65536
/** Longest label value kept; longer ones are cut (a guard: names in a config are short). */
#define MAX_LABEL 1024
#define NLABELS   3

struct series {
    struct series *next; /* publication list; immutable once published */
    uint64_t hash;
    int status;
    struct pt_str labels[NLABELS];          /* copies, in text[] */
    _Atomic uint64_t buckets[NBUCKETS + 1]; /* the last: above every bound */
    _Atomic uint64_t sum_us;
    _Atomic uint64_t bytes_in, bytes_out;
    char text[];
};

struct family {
    _Atomic(struct series *) head; /* read by the scraper (acquire) */
    /* worker-private index: open addressing, linear probing */
    struct series **slots;
    size_t mask; /* slots has mask + 1 entries; 0 when no table yet */
    size_t count;
};

struct pt_metrics {
    struct family req; /* labels: route, service, consumer */
    struct family up;  /* labels: service, target, - */
    _Atomic uint64_t dropped;
};

/* The single writer's increment: no read-modify-write instruction. */
static inline void bump(_Atomic uint64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static inline uint64_t get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

struct pt_metrics *pt_metrics_new(void)
{
    size_t size = (sizeof(struct pt_metrics) + PT_CACHE_LINE - 1) & ~(size_t)(PT_CACHE_LINE - 1);
    if (pt__alloc_should_fail())
        return NULL;
    struct pt_metrics *m = aligned_alloc(PT_CACHE_LINE, size);
    if (m == NULL)
        return NULL;
    memset(m, 0, size);
    atomic_init(&m->req.head, NULL);
    atomic_init(&m->up.head, NULL);
    atomic_init(&m->dropped, 0);
    return m;
}

static void family_free(struct family *f)
{
    struct series *s = atomic_load_explicit(&f->head, memory_order_acquire);
    while (s != NULL) {
        struct series *n = s->next;
        free(s);
        s = n;
    }
    free(f->slots);
}

void pt_metrics_free(struct pt_metrics *m)
{
    if (m == NULL)
        return;
    family_free(&m->req);
    family_free(&m->up);
    free(m);
}

/* ---- recording ---- */

static inline struct pt_str clip(struct pt_str s)
{
    if (s.ptr == NULL)
        return (struct pt_str){"", 0};
    if (s.len > MAX_LABEL)
        s.len = MAX_LABEL;
    return s;
}

/* A word-at-a-time hash of the labels (lengths included) and the status. */
static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

static uint64_t hash_labels(const struct pt_str *l, int status)
{
    uint64_t h = (uint64_t)(unsigned)status;
    for (int k = 0; k < NLABELS; k++) {
        const char *p = l[k].ptr;
        size_t n = l[k].len;
        h = mix(h, n);
        for (; n >= 8; n -= 8, p += 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            h = mix(h, w);
        }
        if (n >= 4) { /* the tail as two overlapping 4-byte loads (no memcpy call) */
            uint32_t a, b;
            memcpy(&a, p, 4);
            memcpy(&b, p + n - 4, 4);
            h = mix(h, (uint64_t)a << 32 | b);
        } else if (n > 0) {
            h = mix(h, (uint64_t)(unsigned char)p[0] << 16 |
                           (uint64_t)(unsigned char)p[n >> 1] << 8 | (unsigned char)p[n - 1]);
        }
    }
    return h;
}

/* Equal label values; short ones (names, addresses) without a memcmp call. */
static inline bool eq(struct pt_str a, struct pt_str b)
{
    if (a.len != b.len)
        return false;
    size_t n = a.len;
    if (n > 16)
        return memcmp(a.ptr, b.ptr, n) == 0;
    if (n >= 8) { /* two overlapping 8-byte words cover 8..16 bytes */
        uint64_t x0, x1, y0, y1;
        memcpy(&x0, a.ptr, 8);
        memcpy(&y0, b.ptr, 8);
        memcpy(&x1, a.ptr + n - 8, 8);
        memcpy(&y1, b.ptr + n - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    for (size_t i = 0; i < n; i++)
        if (a.ptr[i] != b.ptr[i])
            return false;
    return true;
}

static bool same(const struct series *s, uint64_t h, const struct pt_str *l, int status)
{
    return s->hash == h && s->status == status && eq(s->labels[0], l[0]) &&
           eq(s->labels[1], l[1]) && eq(s->labels[2], l[2]);
}

static int grow(struct family *f)
{
    size_t n = f->mask == 0 ? 64 : (f->mask + 1) * 2;
    struct series **slots = pt_calloc(n, sizeof(*slots));
    if (slots == NULL)
        return PT_ERR_NOMEM;
    for (size_t i = 0; f->mask != 0 && i <= f->mask; i++) {
        struct series *s = f->slots[i];
        if (s == NULL)
            continue;
        size_t j = s->hash & (n - 1);
        while (slots[j] != NULL)
            j = (j + 1) & (n - 1);
        slots[j] = s;
    }
    free(f->slots);
    f->slots = slots;
    f->mask = n - 1;
    return 0;
}

static struct series *add(struct family *f, uint64_t h, const struct pt_str *l, int status)
{
    if (f->count >= MAX_SERIES)
        return NULL;
    if ((f->count + 1) * 2 > f->mask + 1 && grow(f) != 0)
        return NULL;
    size_t text = l[0].len + l[1].len + l[2].len;
    size_t size = sizeof(struct series) + text;
    size = (size + PT_CACHE_LINE - 1) & ~(size_t)(PT_CACHE_LINE - 1);
    if (pt__alloc_should_fail())
        return NULL;
    struct series *s = aligned_alloc(PT_CACHE_LINE, size);
    if (s == NULL)
        return NULL;
    memset(s, 0, size);
    s->hash = h;
    s->status = status;
    char *p = s->text;
    for (int k = 0; k < NLABELS; k++) {
        if (l[k].len > 0)
            memcpy(p, l[k].ptr, l[k].len);
        s->labels[k] = pt_str_make(p, l[k].len);
        p += l[k].len;
    }
    for (int i = 0; i <= NBUCKETS; i++)
        atomic_init(&s->buckets[i], 0);
    atomic_init(&s->sum_us, 0);
    atomic_init(&s->bytes_in, 0);
    atomic_init(&s->bytes_out, 0);
    size_t j = h & f->mask;
    while (f->slots[j] != NULL)
        j = (j + 1) & f->mask;
    f->slots[j] = s;
    f->count++;
    s->next = atomic_load_explicit(&f->head, memory_order_relaxed);
    atomic_store_explicit(&f->head, s, memory_order_release); /* publish */
    return s;
}

static struct series *lookup(struct family *f, const struct pt_str *l, int status)
{
    uint64_t h = hash_labels(l, status);
    if (pt_likely(f->mask != 0)) {
        size_t j = h & f->mask;
        for (struct series *s; (s = f->slots[j]) != NULL; j = (j + 1) & f->mask)
            if (same(s, h, l, status))
                return s;
    }
    return add(f, h, l, status);
}

static inline void observe(struct series *s, uint64_t us)
{
    int i = 0;
    while (i < NBUCKETS && us > bucket_us[i])
        i++;
    bump(&s->buckets[i], 1);
    bump(&s->sum_us, us);
}

static inline int clamp_status(int status)
{
    return status >= 0 && status <= 999 ? status : 0;
}

void pt_metrics_request(struct pt_metrics *m, struct pt_str route, struct pt_str service,
                        struct pt_str consumer, int status, uint64_t duration_us, uint64_t bytes_in,
                        uint64_t bytes_out)
{
    if (m == NULL)
        return;
    struct pt_str l[NLABELS] = {clip(route), clip(service), clip(consumer)};
    struct series *s = lookup(&m->req, l, clamp_status(status));
    if (pt_unlikely(s == NULL)) {
        bump(&m->dropped, 1);
        return;
    }
    observe(s, duration_us);
    bump(&s->bytes_in, bytes_in);
    bump(&s->bytes_out, bytes_out);
}

void pt_metrics_upstream(struct pt_metrics *m, struct pt_str service, struct pt_str target,
                         int status, uint64_t duration_us)
{
    if (m == NULL)
        return;
    struct pt_str l[NLABELS] = {clip(service), clip(target), {"", 0}};
    struct series *s = lookup(&m->up, l, clamp_status(status));
    if (pt_unlikely(s == NULL)) {
        bump(&m->dropped, 1);
        return;
    }
    observe(s, duration_us);
}

/* ---- rendering (the scraper's thread) ---- */

/* One series' values, copied out of a worker; labels point into its series. */
struct row {
    const struct pt_str *labels;
    int status;
    uint64_t buckets[NBUCKETS + 1];
    uint64_t sum_us, bytes_in, bytes_out;
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static int collect(struct rows *r, struct pt_metrics *const *workers, size_t n, bool upstream)
{
    for (size_t w = 0; w < n; w++) {
        if (workers[w] == NULL)
            continue;
        const struct family *f = upstream ? &workers[w]->up : &workers[w]->req;
        for (const struct series *s = atomic_load_explicit(&f->head, memory_order_acquire);
             s != NULL; s = s->next) {
            if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 64;
                struct row *v = pt_realloc(r->v, cap * sizeof(*v));
                if (v == NULL)
                    return PT_ERR_NOMEM;
                r->v = v;
                r->cap = cap;
            }
            struct row *row = &r->v[r->n++];
            row->labels = s->labels;
            row->status = s->status;
            for (int i = 0; i <= NBUCKETS; i++)
                row->buckets[i] = get(&s->buckets[i]);
            row->sum_us = get(&s->sum_us);
            row->bytes_in = get(&s->bytes_in);
            row->bytes_out = get(&s->bytes_out);
        }
    }
    return 0;
}

static int cmp_str(struct pt_str a, struct pt_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* How many labels take part in the sort key (the status is the last part when with_status). */
static _Thread_local int sort_nlabels;
static _Thread_local bool sort_status;

static int cmp_row(const void *pa, const void *pb)
{
    const struct row *a = pa, *b = pb;
    for (int k = 0; k < sort_nlabels; k++) {
        int c = cmp_str(a->labels[k], b->labels[k]);
        if (c != 0)
            return c;
    }
    if (sort_status && a->status != b->status)
        return a->status < b->status ? -1 : 1;
    return 0;
}

static bool same_key(const struct row *a, const struct row *b)
{
    return cmp_row(a, b) == 0;
}

static void sort_rows(struct rows *r, int nlabels, bool status)
{
    sort_nlabels = nlabels;
    sort_status = status;
    if (r->n > 1)
        qsort(r->v, r->n, sizeof(*r->v), cmp_row);
}

/* Sum rows[i..j) that share the current key into *out; returns j. */
static size_t merge(const struct rows *r, size_t i, struct row *out)
{
    *out = r->v[i];
    size_t j = i + 1;
    for (; j < r->n && same_key(&r->v[i], &r->v[j]); j++) {
        for (int b = 0; b <= NBUCKETS; b++)
            out->buckets[b] += r->v[j].buckets[b];
        out->sum_us += r->v[j].sum_us;
        out->bytes_in += r->v[j].bytes_in;
        out->bytes_out += r->v[j].bytes_out;
    }
    return j;
}

static uint64_t total(const struct row *r)
{
    uint64_t t = 0;
    for (int b = 0; b <= NBUCKETS; b++)
        t += r->buckets[b];
    return t;
}

/* --- text output --- */

struct out {
    struct pt_buf *b;
    int err;
};

static void put(struct out *o, const char *p, size_t n)
{
    if (o->err == 0 && n > 0 && pt_buf_append(o->b, p, n, SIZE_MAX) != 0)
        o->err = PT_ERR_NOMEM;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A label value, escaped as the exposition format wants: \\, \" and \n. */
static void put_value(struct out *o, struct pt_str v)
{
    size_t run = 0;
    for (size_t i = 0; i < v.len; i++) {
        const char *esc = v.ptr[i] == '\\'   ? "\\\\"
                          : v.ptr[i] == '"'  ? "\\\""
                          : v.ptr[i] == '\n' ? "\\n"
                                             : NULL;
        if (esc == NULL)
            continue;
        put(o, v.ptr + run, i - run);
        put(o, esc, 2);
        run = i + 1;
    }
    put(o, v.ptr + run, v.len - run);
}

static void put_label(struct out *o, bool *first, const char *name, struct pt_str v)
{
    puts_(o, *first ? "{" : ",");
    *first = false;
    puts_(o, name);
    puts_(o, "=\"");
    put_value(o, v);
    puts_(o, "\"");
}

/* Label names per family: NULL ends the list; "consumer" is left out when empty. */
static const char *const req_names[NLABELS] = {"route", "service", "consumer"};
static const char *const up_names[NLABELS] = {"service", "target", NULL};

/* name{labels[,status][,le]} */
static void put_series(struct out *o, const char *name, const char *const *names, int nlabels,
                       const struct row *r, bool status, const char *le)
{
    bool first = true;
    puts_(o, name);
    for (int k = 0; k < nlabels && names[k] != NULL; k++) {
        if (strcmp(names[k], "consumer") == 0 && r->labels[k].len == 0)
            continue;
        put_label(o, &first, names[k], r->labels[k]);
    }
    if (status) {
        char st[8];
        int n = snprintf(st, sizeof(st), "%d", r->status);
        put_label(o, &first, "status", pt_str_make(st, (size_t)n));
    }
    if (le != NULL)
        put_label(o, &first, "le", pt_str_cstr(le));
    if (!first)
        puts_(o, "}");
}

static void put_seconds(struct out *o, uint64_t us)
{
    putf(o, " %llu.%06llu\n", (unsigned long long)(us / 1000000),
         (unsigned long long)(us % 1000000));
}

static void header(struct out *o, const char *name, const char *type, const char *help)
{
    putf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter per full label set plus status (requests_total, upstream_requests_total). */
static void render_counts(struct out *o, struct rows *r, const char *name, const char *const *names,
                          int nlabels)
{
    sort_rows(r, nlabels, true);
    for (size_t i = 0; i < r->n;) {
        struct row m;
        i = merge(r, i, &m);
        put_series(o, name, names, nlabels, &m, true, NULL);
        putf(o, " %llu\n", (unsigned long long)total(&m));
    }
}

static void render_histogram(struct out *o, struct rows *r, const char *name,
                             const char *const *names, int nlabels)
{
    char n_bucket[96], n_sum[96], n_count[96];
    snprintf(n_bucket, sizeof(n_bucket), "%s_bucket", name);
    snprintf(n_sum, sizeof(n_sum), "%s_sum", name);
    snprintf(n_count, sizeof(n_count), "%s_count", name);
    sort_rows(r, nlabels, false);
    for (size_t i = 0; i < r->n;) {
        struct row m;
        i = merge(r, i, &m);
        uint64_t cum = 0;
        for (int b = 0; b < NBUCKETS; b++) {
            cum += m.buckets[b];
            put_series(o, n_bucket, names, nlabels, &m, false, bucket_le[b]);
            putf(o, " %llu\n", (unsigned long long)cum);
        }
        cum += m.buckets[NBUCKETS];
        put_series(o, n_bucket, names, nlabels, &m, false, "+Inf");
        putf(o, " %llu\n", (unsigned long long)cum);
        put_series(o, n_sum, names, nlabels, &m, false, NULL);
        put_seconds(o, m.sum_us);
        put_series(o, n_count, names, nlabels, &m, false, NULL);
        putf(o, " %llu\n", (unsigned long long)cum);
    }
}

/* bytes per (route, service); rows already sorted by render_histogram */
static void render_bytes(struct out *o, struct rows *r, const char *name, bool in)
{
    for (size_t i = 0; i < r->n;) {
        struct row m;
        i = merge(r, i, &m);
        put_series(o, name, req_names, 2, &m, false, NULL);
        putf(o, " %llu\n", (unsigned long long)(in ? m.bytes_in : m.bytes_out));
    }
}

static void render_process(struct out *o, const struct pt_metrics_process *p, uint64_t dropped)
{
    header(o, "portico_connections_active", "gauge", "Client connections open now.");
    putf(o, "portico_connections_active %ld\n", p != NULL ? p->connections_active : 0L);
    header(o, "portico_config_reloads_total", "counter",
           "Configuration changes attempted (file, SIGHUP, admin API), by result.");
    putf(o, "portico_config_reloads_total{result=\"ok\"} %llu\n",
         (unsigned long long)(p != NULL ? p->reloads_ok : 0));
    putf(o, "portico_config_reloads_total{result=\"error\"} %llu\n",
         (unsigned long long)(p != NULL ? p->reloads_failed : 0));
    header(o, "portico_config_version", "gauge",
           "Version of the configuration in use (grows with each applied change).");
    putf(o, "portico_config_version %llu\n",
         (unsigned long long)(p != NULL ? p->config_version : 0));
    header(o, "portico_uptime_seconds", "gauge", "Seconds since the gateway started.");
    putf(o, "portico_uptime_seconds %.3f\n", p != NULL ? p->uptime_s : 0.0);
    header(o, "portico_metrics_series_dropped_total", "counter",
           "Samples not recorded because a worker reached its label-set limit or ran out of "
           "memory.");
    putf(o, "portico_metrics_series_dropped_total %llu\n", (unsigned long long)dropped);
}

int pt_metrics_render(struct pt_metrics *const *workers, size_t n,
                      const struct pt_metrics_process *proc, struct pt_buf *outbuf)
{
    struct out o = {outbuf, 0};
    struct rows req = {0}, up = {0};
    uint64_t dropped = 0;
    for (size_t w = 0; w < n; w++)
        if (workers[w] != NULL)
            dropped += get(&workers[w]->dropped);
    if (collect(&req, workers, n, false) != 0 || collect(&up, workers, n, true) != 0) {
        o.err = PT_ERR_NOMEM;
        goto out;
    }
    header(&o, "portico_requests_total", "counter",
           "Client requests answered, by route and status.");
    render_counts(&o, &req, "portico_requests_total", req_names, 3);
    header(&o, "portico_request_duration_seconds", "histogram",
           "Time from the request head to the end of the response, by route.");
    render_histogram(&o, &req, "portico_request_duration_seconds", req_names, 2);
    header(&o, "portico_bytes_received_total", "counter",
           "Bytes received from clients (head and body), by route.");
    render_bytes(&o, &req, "portico_bytes_received_total", true);
    header(&o, "portico_bytes_sent_total", "counter",
           "Bytes sent to clients (head and body), by route.");
    render_bytes(&o, &req, "portico_bytes_sent_total", false);
    header(&o, "portico_upstream_requests_total", "counter",
           "Upstream attempts (retries included), by service, target and status (0: no "
           "response).");
    render_counts(&o, &up, "portico_upstream_requests_total", up_names, 2);
    header(&o, "portico_upstream_duration_seconds", "histogram",
           "Time from the start of an upstream attempt to its response head (or failure).");
    render_histogram(&o, &up, "portico_upstream_duration_seconds", up_names, 2);
    render_process(&o, proc, dropped);
out:
    free(req.v);
    free(up.v);
    return o.err;
}
