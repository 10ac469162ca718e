/*
 * The cache's memory store (see cache_store.h for the design).
 *
 * Locking: each shard's mutex guards its table, LRU list, fills and the
 * waiters queued on them.  No code holds two shard locks.  The budget
 * counters are atomics read and written outside the locks; eviction may
 * briefly overshoot by one entry per concurrent inserter, which is fine.
 *
 * Lifetimes: the table holds one reference on each entry it links; readers
 * hold their own.  A removed entry is freed by whoever drops the last
 * reference, on any thread.  A fill lives from pt_cache_get (LEAD or
 * REFRESH) to pt_cache_fill_finish, which its owner must call exactly once.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/compiler.h"
#include "plugins/cache_policy.h"
#include "plugins/cache_store.h"

#define INITIAL_BUCKETS 64

enum { W_WAITING = 1, W_WOKEN, W_CANCELLED };

struct pt_cache_fill {
    struct pt_cache_fill *next;
    uint64_t hash;
    char *key;
    size_t key_len;
    unsigned shard;
    struct pt_cache_waiter *waiters, **wtail;
};

struct shard {
    pthread_mutex_t lock;
    struct pt_cache_entry **buckets;
    size_t nbuckets, count;
    struct pt_cache_entry lru; /* sentinel: lru._next is the most recent */
    struct pt_cache_fill *fills;
    size_t bytes;
} __attribute__((aligned(64)));

static struct {
    struct shard shards[PT_CACHE_SHARDS];
    atomic_size_t used;
    atomic_uint_fast64_t capacity;
    atomic_uint_fast64_t evictions;
    atomic_uint next_evict; /* round robin over shards when the own one is empty */
    pthread_once_t once;
    pthread_mutex_t reg_lock;
    uint64_t *reg; /* registered budgets; 0 = free slot */
    size_t nreg;
} store = {.once = PTHREAD_ONCE_INIT, .reg_lock = PTHREAD_MUTEX_INITIALIZER};

static void store_init(void)
{
    for (size_t i = 0; i < PT_CACHE_SHARDS; i++) {
        struct shard *s = &store.shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->lru._next = s->lru._prev = &s->lru;
    }
}

static struct shard *shard_of(uint64_t hash, unsigned *idx)
{
    pthread_once(&store.once, store_init);
    unsigned i = (unsigned)(hash & (PT_CACHE_SHARDS - 1));
    if (idx != NULL)
        *idx = i;
    return &store.shards[i];
}

/* ---- entries ---- */

static bool skipped(struct pt_str n, struct pt_str skip)
{
    /* framing is the codec's; Age is recomputed on every hit; Accept-Ranges and
     * Content-Range are the cache's own (it answers ranges from the stored body) */
    return pt_str_case_eq_lit(n, "content-length") || pt_str_case_eq_lit(n, "transfer-encoding") ||
           pt_str_case_eq_lit(n, "age") || pt_str_case_eq_lit(n, "accept-ranges") ||
           pt_str_case_eq_lit(n, "content-range") || (skip.len > 0 && pt_str_case_eq(n, skip));
}

struct pt_cache_entry *pt_cache_entry_new(const struct pt_cache_entry_spec *sp,
                                          struct pt_str skip_header)
{
    size_t route_len = strlen(sp->route);
    size_t nh = 0, hbytes = 0;
    bool has_vary = false;
    for (size_t i = 0; i < sp->nheaders; i++) {
        if (skipped(sp->headers[i].name, skip_header))
            continue;
        nh++;
        hbytes += sp->headers[i].name.len + sp->headers[i].value.len;
        has_vary |= pt_str_case_eq_lit(sp->headers[i].name, "vary");
    }
    size_t total = sizeof(struct pt_cache_entry) + nh * sizeof(struct pt_h1_header) + hbytes +
                   sp->key.len + route_len + 1 + sp->body.len + sp->vary_sig.len;
    struct pt_cache_entry *e = pt_malloc(total);
    if (e == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    atomic_init(&e->_refs, 1);
    struct pt_h1_header *hs = (struct pt_h1_header *)(e + 1);
    char *p = (char *)(hs + nh);
    size_t k = 0;
    for (size_t i = 0; i < sp->nheaders; i++) {
        const struct pt_h1_header *h = &sp->headers[i];
        if (skipped(h->name, skip_header))
            continue;
        memcpy(p, h->name.ptr, h->name.len);
        hs[k].name = pt_str_make(p, h->name.len);
        p += h->name.len;
        memcpy(p, h->value.ptr, h->value.len);
        hs[k].value = pt_str_make(p, h->value.len);
        p += h->value.len;
        struct pt_str tag;
        bool weak;
        if (h->name.len == 4 && pt_str_case_eq_lit(h->name, "etag") && e->etag.len == 0 &&
            pt_etag_parse(hs[k].value, &tag, &weak) == 0)
            e->etag = pt_str_trim_ows(hs[k].value);
        if (h->name.len == 13 && pt_str_case_eq_lit(h->name, "last-modified") &&
            e->last_modified.len == 0 && pt_http_date_parse(hs[k].value, &e->last_modified_s) == 0)
            e->last_modified = pt_str_trim_ows(hs[k].value);
        k++;
    }
    e->headers = hs;
    e->nheaders = nh;
    memcpy(p, sp->key.ptr, sp->key.len);
    e->key = p;
    e->key_len = sp->key.len;
    e->path_off = sp->path_off;
    p += sp->key.len;
    memcpy(p, sp->route, route_len + 1);
    e->route = p;
    p += route_len + 1;
    if (sp->body.len > 0)
        memcpy(p, sp->body.ptr, sp->body.len);
    e->body = p;
    e->body_len = sp->body.len;
    p += sp->body.len;
    if (sp->vary_sig.len > 0)
        memcpy(p, sp->vary_sig.ptr, sp->vary_sig.len);
    e->vary_sig = p;
    e->vary_sig_len = sp->vary_sig.len;
    e->has_vary = has_vary;
    e->size = total;
    e->status = sp->status;
    e->stored_ms = sp->stored_ms;
    e->initial_age_s = sp->initial_age_s;
    e->fresh_until = sp->fresh_until;
    e->swr_until = sp->swr_until;
    e->sie_until = sp->sie_until;
    uint64_t drop = e->fresh_until;
    if (e->swr_until > drop)
        drop = e->swr_until;
    if (e->sie_until > drop)
        drop = e->sie_until;
    if (pt_cache_entry_has_validator(e) && sp->keep_until > drop)
        drop = sp->keep_until;
    e->drop_at = drop;
    return e;
}

void pt_cache_entry_unref(struct pt_cache_entry *e)
{
    if (atomic_fetch_sub_explicit(&e->_refs, 1, memory_order_acq_rel) == 1)
        free(e);
}

/* ---- table (shard lock held) ---- */

static bool same_key(const struct pt_cache_entry *e, uint64_t hash, struct pt_str key)
{
    return e->hash == hash && e->key_len == key.len && memcmp(e->key, key.ptr, key.len) == 0;
}

static struct pt_cache_entry **slot_locked(struct shard *s, uint64_t hash, struct pt_str key)
{
    if (s->nbuckets == 0)
        return NULL;
    struct pt_cache_entry **pp = &s->buckets[(hash >> 6) & (s->nbuckets - 1)];
    while (*pp != NULL && !same_key(*pp, hash, key))
        pp = &(*pp)->_hnext;
    return pp;
}

static void lru_unlink(struct pt_cache_entry *e)
{
    e->_prev->_next = e->_next;
    e->_next->_prev = e->_prev;
}

static void lru_push_front(struct shard *s, struct pt_cache_entry *e)
{
    e->_next = s->lru._next;
    e->_prev = &s->lru;
    s->lru._next->_prev = e;
    s->lru._next = e;
}

/* Unlink e (which must be linked); returns it for the caller to unref after unlocking. */
static struct pt_cache_entry *remove_locked(struct shard *s, struct pt_cache_entry *e)
{
    struct pt_cache_entry **pp = slot_locked(s, e->hash, pt_str_make(e->key, e->key_len));
    PT_BUG_ON(pp == NULL || *pp != e);
    *pp = e->_hnext;
    e->_hnext = NULL;
    lru_unlink(e);
    e->_linked = false;
    s->count--;
    s->bytes -= e->size;
    atomic_fetch_sub_explicit(&store.used, e->size, memory_order_relaxed);
    return e;
}

static void grow_locked(struct shard *s)
{
    size_t n = s->nbuckets == 0 ? INITIAL_BUCKETS : s->nbuckets * 2;
    struct pt_cache_entry **b = pt_calloc(n, sizeof(*b));
    if (b == NULL)
        return; /* keep the longer chains */
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct pt_cache_entry *e = s->buckets[i];
        while (e != NULL) {
            struct pt_cache_entry *next = e->_hnext;
            size_t j = (e->hash >> 6) & (n - 1);
            e->_hnext = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* A small stack of entries to unref once the lock is released. */
struct dropped {
    struct pt_cache_entry *e[16];
    size_t n;
};

static void drop_later(struct dropped *d, struct pt_cache_entry *e)
{
    if (d->n < 16) {
        d->e[d->n++] = e;
        return;
    }
    pt_cache_entry_unref(e); /* the table's reference is rarely the last: fine under the lock */
}

static void drop_now(struct dropped *d)
{
    for (size_t i = 0; i < d->n; i++)
        pt_cache_entry_unref(d->e[i]);
    d->n = 0;
}

static bool over_budget(void)
{
    return atomic_load_explicit(&store.used, memory_order_relaxed) >
           atomic_load_explicit(&store.capacity, memory_order_relaxed);
}

static void insert_locked(struct shard *s, struct pt_cache_entry *e, struct dropped *d)
{
    if (s->nbuckets == 0 || s->count >= s->nbuckets)
        grow_locked(s);
    if (s->nbuckets == 0)
        return;
    struct pt_str key = pt_str_make(e->key, e->key_len);
    struct pt_cache_entry **pp = slot_locked(s, e->hash, key);
    if (*pp != NULL)
        drop_later(d, remove_locked(s, *pp));
    pp = slot_locked(s, e->hash, key);
    e->_hnext = NULL;
    *pp = pt_cache_entry_ref(e);
    e->_linked = true;
    e->_used = e->stored_ms;
    lru_push_front(s, e);
    s->count++;
    s->bytes += e->size;
    atomic_fetch_add_explicit(&store.used, e->size, memory_order_relaxed);
}

/*
 * Over budget after an insert: evict.  Each round looks at the least
 * recently used entry of up to four non-empty shards (one lock at a time,
 * starting at a rotating shard) and evicts the oldest of them: an
 * approximation of a global LRU that never holds two locks.  It costs a few
 * uncontended lock round trips per eviction, and evictions only follow
 * misses, which wait for the upstream anyway.
 */
static void evict_elsewhere(void)
{
    for (unsigned round = 0; round < PT_CACHE_SHARDS && over_budget(); round++) {
        unsigned start = atomic_fetch_add_explicit(&store.next_evict, 1, memory_order_relaxed);
        int best = -1;
        uint64_t best_used = UINT64_MAX;
        for (unsigned j = 0, seen = 0; j < PT_CACHE_SHARDS && seen < 4; j++) {
            unsigned i = (start + j) % PT_CACHE_SHARDS;
            struct shard *s = &store.shards[i];
            pthread_mutex_lock(&s->lock);
            if (s->lru._prev != &s->lru) {
                seen++;
                if (s->lru._prev->_used < best_used) {
                    best_used = s->lru._prev->_used;
                    best = (int)i;
                }
            }
            pthread_mutex_unlock(&s->lock);
        }
        if (best < 0)
            return;
        struct shard *s = &store.shards[best];
        struct dropped d = {.n = 0};
        pthread_mutex_lock(&s->lock);
        struct pt_cache_entry *t = s->lru._prev;
        if (t != &s->lru) {
            drop_later(&d, remove_locked(s, t));
            atomic_fetch_add_explicit(&store.evictions, 1, memory_order_relaxed);
        }
        pthread_mutex_unlock(&s->lock);
        drop_now(&d);
    }
}

/* ---- lookups and fills ---- */

static struct pt_cache_fill *find_fill_locked(struct shard *s, uint64_t hash, struct pt_str key)
{
    for (struct pt_cache_fill *f = s->fills; f != NULL; f = f->next)
        if (f->hash == hash && f->key_len == key.len && memcmp(f->key, key.ptr, key.len) == 0)
            return f;
    return NULL;
}

static struct pt_cache_fill *new_fill_locked(struct shard *s, unsigned idx, uint64_t hash,
                                             struct pt_str key)
{
    struct pt_cache_fill *f = pt_malloc(sizeof(*f) + key.len);
    if (f == NULL)
        return NULL;
    f->hash = hash;
    f->key = (char *)(f + 1);
    memcpy(f->key, key.ptr, key.len);
    f->key_len = key.len;
    f->shard = idx;
    f->waiters = NULL;
    f->wtail = &f->waiters;
    f->next = s->fills;
    s->fills = f;
    return f;
}

enum pt_cache_get_result pt_cache_get(const struct pt_cache_get_args *a,
                                      struct pt_cache_entry **entry, struct pt_cache_fill **fill)
{
    unsigned idx;
    struct shard *s = shard_of(a->hash, &idx);
    struct dropped d = {.n = 0};
    enum pt_cache_get_result r;
    *entry = NULL;
    *fill = NULL;
    pthread_mutex_lock(&s->lock);
    struct pt_cache_entry **pp = slot_locked(s, a->hash, a->key);
    struct pt_cache_entry *e = pp != NULL ? *pp : NULL;
    if (e != NULL && a->now >= e->drop_at) {
        drop_later(&d, remove_locked(s, e));
        e = NULL;
    }
    if (e != NULL && a->match != NULL && !a->match(e, a->match_arg))
        e = NULL; /* another variant: this request misses (and its response replaces it) */
    if (e != NULL && a->now < e->fresh_until) {
        lru_unlink(e);
        lru_push_front(s, e);
        e->_used = a->now;
        *entry = pt_cache_entry_ref(e);
        r = PT_CACHE_GET_HIT;
        goto out;
    }
    struct pt_cache_fill *f = find_fill_locked(s, a->hash, a->key);
    if (e != NULL && a->now < e->swr_until) {
        *entry = pt_cache_entry_ref(e);
        r = PT_CACHE_GET_STALE;
        if (f == NULL && a->may_lead && (*fill = new_fill_locked(s, idx, a->hash, a->key)) != NULL)
            r = PT_CACHE_GET_REFRESH;
        goto out;
    }
    if (e != NULL) /* stale: for stale-if-error (within sie_until) or to revalidate */
        *entry = pt_cache_entry_ref(e);
    if (f != NULL && a->waiter != NULL) {
        struct pt_cache_waiter *w = a->waiter;
        w->_next = NULL;
        w->_fill = f;
        w->_shard = idx;
        w->_state = W_WAITING;
        *f->wtail = w;
        f->wtail = &w->_next;
        r = PT_CACHE_GET_WAIT;
        goto out;
    }
    if (f == NULL && a->may_lead && (*fill = new_fill_locked(s, idx, a->hash, a->key)) != NULL) {
        r = PT_CACHE_GET_LEAD;
        goto out;
    }
    r = PT_CACHE_GET_MISS;
out:
    pthread_mutex_unlock(&s->lock);
    drop_now(&d);
    return r;
}

void pt_cache_fill_finish(struct pt_cache_fill *f, struct pt_cache_entry *e,
                          struct pt_cache_entry *stale_e)
{
    struct shard *s = &store.shards[f->shard];
    struct dropped d = {.n = 0};
    bool fits = e != NULL && e->size <= atomic_load_explicit(&store.capacity, memory_order_relaxed);
    if (e != NULL)
        e->hash = f->hash;
    pthread_mutex_lock(&s->lock);
    struct pt_cache_fill **pp = &s->fills;
    while (*pp != NULL && *pp != f)
        pp = &(*pp)->next;
    if (*pp == f)
        *pp = f->next;
    if (fits)
        insert_locked(s, e, &d);
    struct pt_cache_waiter *w = f->waiters;
    for (struct pt_cache_waiter *x = w; x != NULL; x = x->_next) {
        x->_state = W_WOKEN;
        x->_fill = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    drop_now(&d);
    if (fits && over_budget())
        evict_elsewhere();
    free(f);
    struct pt_cache_entry *give = e != NULL ? e : stale_e;
    while (w != NULL) {
        struct pt_cache_waiter *next = w->_next; /* w may be freed by its wake */
        w->wake(w, give != NULL ? pt_cache_entry_ref(give) : NULL, e == NULL && give != NULL);
        w = next;
    }
}

bool pt_cache_wait_cancel(struct pt_cache_waiter *w)
{
    struct shard *s = &store.shards[w->_shard];
    bool removed = false;
    pthread_mutex_lock(&s->lock);
    if (w->_state == W_WAITING) {
        struct pt_cache_fill *f = w->_fill;
        struct pt_cache_waiter **pp = &f->waiters;
        while (*pp != NULL && *pp != w)
            pp = &(*pp)->_next;
        if (*pp == w) {
            *pp = w->_next;
            if (f->wtail == &w->_next)
                f->wtail = pp;
        }
        w->_state = W_CANCELLED;
        w->_fill = NULL;
        removed = true;
    }
    pthread_mutex_unlock(&s->lock);
    return removed;
}

void pt_cache_store_put(struct pt_cache_entry *e, uint64_t hash)
{
    struct shard *s = shard_of(hash, NULL);
    struct dropped d = {.n = 0};
    if (e->size > atomic_load_explicit(&store.capacity, memory_order_relaxed))
        return;
    e->hash = hash;
    pthread_mutex_lock(&s->lock);
    insert_locked(s, e, &d);
    pthread_mutex_unlock(&s->lock);
    drop_now(&d);
    if (over_budget())
        evict_elsewhere();
}

void pt_cache_store_remove(struct pt_cache_entry *e)
{
    struct shard *s = shard_of(e->hash, NULL);
    struct dropped d = {.n = 0};
    pthread_mutex_lock(&s->lock);
    if (e->_linked)
        drop_later(&d, remove_locked(s, e));
    pthread_mutex_unlock(&s->lock);
    drop_now(&d);
}

/* ---- purge ---- */

static bool purge_match(const struct pt_cache_entry *e, const char *route, const char *prefix,
                        size_t plen)
{
    if (route != NULL && strcmp(e->route, route) != 0)
        return false;
    if (prefix != NULL) {
        size_t have = e->key_len - e->path_off;
        const char *path = e->key + e->path_off;
        if (have < plen || memcmp(path, prefix, plen) != 0)
            return false;
    }
    return true;
}

size_t pt_cache_store_purge(const char *route, const char *prefix)
{
    pthread_once(&store.once, store_init);
    size_t n = 0, plen = prefix != NULL ? strlen(prefix) : 0;
    for (size_t i = 0; i < PT_CACHE_SHARDS; i++) {
        struct shard *s = &store.shards[i];
        struct pt_cache_entry *victims = NULL;
        pthread_mutex_lock(&s->lock);
        struct pt_cache_entry *e = s->lru._next;
        while (e != &s->lru) {
            struct pt_cache_entry *next = e->_next;
            if (purge_match(e, route, prefix, plen)) {
                remove_locked(s, e);
                e->_hnext = victims; /* unlinked: reuse the chain pointer */
                victims = e;
                n++;
            }
            e = next;
        }
        pthread_mutex_unlock(&s->lock);
        while (victims != NULL) {
            struct pt_cache_entry *next = victims->_hnext;
            pt_cache_entry_unref(victims);
            victims = next;
        }
    }
    return n;
}

/* ---- budget ---- */

static void recompute_capacity_locked(void)
{
    uint64_t max = 0;
    for (size_t i = 0; i < store.nreg; i++)
        if (store.reg[i] > max)
            max = store.reg[i];
    atomic_store_explicit(&store.capacity, max, memory_order_relaxed);
}

int pt_cache_store_register(uint64_t max_memory)
{
    pthread_once(&store.once, store_init);
    if (max_memory == 0)
        max_memory = 1;
    pthread_mutex_lock(&store.reg_lock);
    size_t i = 0;
    while (i < store.nreg && store.reg[i] != 0)
        i++;
    if (i == store.nreg) {
        uint64_t *r = pt_realloc(store.reg, (store.nreg + 8) * sizeof(*r));
        if (r == NULL) {
            pthread_mutex_unlock(&store.reg_lock);
            return -1;
        }
        memset(r + store.nreg, 0, 8 * sizeof(*r));
        store.reg = r;
        store.nreg += 8;
    }
    store.reg[i] = max_memory;
    recompute_capacity_locked();
    pthread_mutex_unlock(&store.reg_lock);
    return (int)i;
}

void pt_cache_store_unregister(int handle)
{
    pthread_mutex_lock(&store.reg_lock);
    if (handle >= 0 && (size_t)handle < store.nreg)
        store.reg[handle] = 0;
    recompute_capacity_locked();
    bool none = true;
    for (size_t i = 0; i < store.nreg; i++)
        none &= store.reg[i] == 0;
    if (none) {
        free(store.reg);
        store.reg = NULL;
        store.nreg = 0;
    }
    pthread_mutex_unlock(&store.reg_lock);
    if (over_budget())
        evict_elsewhere();
    if (none) /* no cache configured any more: give everything back (and leak nothing at exit) */
        pt_cache_store_purge(NULL, NULL);
}

void pt_cache_store_set_capacity(uint64_t bytes)
{
    pthread_once(&store.once, store_init);
    atomic_store_explicit(&store.capacity, bytes, memory_order_relaxed);
    if (over_budget())
        evict_elsewhere();
}

void pt_cache_store_stats(struct pt_cache_store_stats *st)
{
    pthread_once(&store.once, store_init);
    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < PT_CACHE_SHARDS; i++) {
        struct shard *s = &store.shards[i];
        pthread_mutex_lock(&s->lock);
        st->entries += s->count;
        for (struct pt_cache_fill *f = s->fills; f != NULL; f = f->next)
            for (struct pt_cache_waiter *w = f->waiters; w != NULL; w = w->_next)
                st->fills_waiting++;
        pthread_mutex_unlock(&s->lock);
    }
    st->bytes = atomic_load_explicit(&store.used, memory_order_relaxed);
    st->capacity = atomic_load_explicit(&store.capacity, memory_order_relaxed);
    st->evictions = atomic_load_explicit(&store.evictions, memory_order_relaxed);
}
