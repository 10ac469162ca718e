/*
 * The cache's memory store: one per process, shared by every worker and
 * every cache plugin instance, and kept across configuration reloads.
 *
 *   - 64 shards, each with its own mutex, hash table and LRU list; a key's
 *     shard comes from its hash, so workers rarely meet on a lock and no
 *     operation ever holds two shard locks;
 *   - entries are immutable once inserted and reference-counted: a hit
 *     takes a reference under the shard lock and reads the entry after
 *     unlocking, for as long as it needs (until its exchange ends);
 *   - the memory budget (bytes of keys + headers + bodies + bookkeeping) is
 *     global; an insert over budget evicts, each time, the oldest of the
 *     least recently used entries of four shards (one lock at a time): an
 *     approximate LRU (each shard's list is exact);
 *   - fills: the first miss for a key becomes its filler (the only request
 *     that goes upstream); later misses for the same key wait on the fill
 *     and are woken with its result (an entry, or nothing).
 */
#ifndef PT_PLUGINS_CACHE_STORE_H
#define PT_PLUGINS_CACHE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "http/h1.h"

#define PT_CACHE_SHARDS 64

/** A stored response.  Every field but the `_` ones is immutable once inserted. */
struct pt_cache_entry {
    struct pt_cache_entry *_hnext;        /* hash chain (shard lock) */
    struct pt_cache_entry *_prev, *_next; /* LRU, most recent first (shard lock) */
    atomic_uint _refs;
    bool _linked;   /* in the table (shard lock) */
    uint64_t _used; /* loop clock of the last hit (shard lock) */
    uint64_t hash;
    size_t size; /* bytes charged to the budget */

    const char *key;
    size_t key_len, path_off; /* key + path_off: the path and query (prefix purges) */
    const char *route;        /* route name (purge by route), NUL-terminated */
    int status;
    struct pt_h1_header *headers; /* as the upstream sent them, minus framing and request id */
    size_t nheaders;
    const char *body;
    size_t body_len;
    const char *vary_sig; /* pt_cache_vary_signature() of the request that filled it */
    size_t vary_sig_len;
    bool has_vary;

    uint64_t stored_ms;     /* loop clock (CLOCK_MONOTONIC ms) when stored */
    uint64_t initial_age_s; /* the response's age on arrival */
    uint64_t fresh_until;   /* loop clock: fresh before this */
    uint64_t swr_until;     /* stale, served while one refresh runs, before this */
    uint64_t sie_until;     /* stale, served when the upstream fails, before this */
    uint64_t drop_at;       /* useless from then on: removed when met */

    /* validators, found in headers when the entry is made (views into it) */
    struct pt_str etag;          /* the ETag value when it is a valid entity-tag, else empty */
    struct pt_str last_modified; /* the Last-Modified value when it is a valid date, else empty */
    int64_t last_modified_s;     /* its epoch seconds */
};

/** Can the service revalidate e (If-None-Match / If-Modified-Since)? */
static inline bool pt_cache_entry_has_validator(const struct pt_cache_entry *e)
{
    return e->etag.len > 0 || e->last_modified.len > 0;
}

/** What to copy into a new entry (all views; the entry copies them). */
struct pt_cache_entry_spec {
    struct pt_str key;
    size_t path_off;
    const char *route;
    int status;
    const struct pt_h1_header *headers;
    size_t nheaders;
    struct pt_str body;
    struct pt_str vary_sig;
    uint64_t stored_ms, initial_age_s, fresh_until, swr_until, sie_until;
    uint64_t keep_until; /* kept (to be revalidated) at least until then; 0: no such need */
};

/**
 * One allocation holding the entry and copies of everything in spec, with
 * one reference (the caller's).  Header fields named Content-Length, Age,
 * Transfer-Encoding, Accept-Ranges, Content-Range or skip_header (case-insensitive; may be empty)
 * are left out.  The validators (ETag, Last-Modified) are read from the headers; an entry without
 * one ignores keep_until.  NULL on ENOMEM.
 */
struct pt_cache_entry *pt_cache_entry_new(const struct pt_cache_entry_spec *spec,
                                          struct pt_str skip_header);

static inline struct pt_cache_entry *pt_cache_entry_ref(struct pt_cache_entry *e)
{
    atomic_fetch_add_explicit(&e->_refs, 1, memory_order_relaxed);
    return e;
}

void pt_cache_entry_unref(struct pt_cache_entry *e);

struct pt_cache_fill;
struct pt_cache_waiter;

/**
 * Called (without any lock, on the thread that finished the fill) when the
 * fill a waiter waits on ends: e is a new reference the callee owns, or NULL
 * (the response was not stored: go upstream); stale says e is served as
 * stale (the filler's upstream failed).
 */
typedef void (*pt_cache_wake_fn)(struct pt_cache_waiter *w, struct pt_cache_entry *e, bool stale);

/** A request waiting on a fill; embed it in the caller's (heap) struct. */
struct pt_cache_waiter {
    pt_cache_wake_fn wake;
    /* store-private, under the shard lock */
    struct pt_cache_waiter *_next;
    struct pt_cache_fill *_fill;
    unsigned _shard;
    int _state;
};

/** What pt_cache_get found. */
enum pt_cache_get_result {
    PT_CACHE_GET_HIT = 0, /* *entry: fresh */
    PT_CACHE_GET_STALE,   /* *entry: stale within stale-while-revalidate; a refresh runs */
    PT_CACHE_GET_REFRESH, /* like STALE, and the caller must refresh: *fill is its fill */
    PT_CACHE_GET_LEAD,    /* nothing usable: the caller fills (*fill); *entry: the stale
                             entry (serve it on an error only before its sie_until; it may
                             be revalidated), or NULL */
    PT_CACHE_GET_WAIT,    /* someone fills: the waiter was queued (*entry as for LEAD) */
    PT_CACHE_GET_MISS,    /* nothing usable and no fill taken (*entry as for LEAD) */
};

/** Decides whether an entry found under the key suits this request (Vary); NULL: it does. */
typedef bool (*pt_cache_match_fn)(const struct pt_cache_entry *e, void *arg);

struct pt_cache_get_args {
    struct pt_str key;
    uint64_t hash;
    uint64_t now;  /* loop clock */
    bool may_lead; /* may take a fill (false: HEAD requests, or coalescing not wanted) */
    struct pt_cache_waiter *waiter; /* queue it when another request fills; NULL: don't wait */
    pt_cache_match_fn match;
    void *match_arg;
};

/**
 * Look key up, and take or join its fill, atomically (one shard lock).  On
 * return *entry (a reference the caller owns) and *fill are set as the
 * result says, NULL otherwise.
 */
enum pt_cache_get_result pt_cache_get(const struct pt_cache_get_args *a,
                                      struct pt_cache_entry **entry, struct pt_cache_fill **fill);

/**
 * End a fill: insert e (when not NULL; the store takes its own reference
 * and replaces an entry with the same key), then wake every waiter with e
 * (or with stale_e and stale=true when e is NULL and stale_e is not, or with
 * nothing).  The fill is freed.  e too large for the budget is not inserted
 * (waiters still get it).
 */
void pt_cache_fill_finish(struct pt_cache_fill *f, struct pt_cache_entry *e,
                          struct pt_cache_entry *stale_e);

/**
 * Stop waiting.  Returns true when the waiter was removed (no wake will
 * come), false when its wake was already dispatched (it will come, or came).
 */
bool pt_cache_wait_cancel(struct pt_cache_waiter *w);

/** Insert e under hash (replacing an entry with the same key), outside any fill. */
void pt_cache_store_put(struct pt_cache_entry *e, uint64_t hash);

/** Remove one entry if it is still the one stored under its key. */
void pt_cache_store_remove(struct pt_cache_entry *e);

/**
 * Remove entries: every one (route and prefix NULL), a route's (route),
 * those whose path+query starts with prefix, or both conditions.  Entries
 * being served stay alive until their readers finish.  Returns how many.
 */
size_t pt_cache_store_purge(const char *route, const char *prefix);

/**
 * Budget registration: each cache plugin instance registers its
 * max_memory while it lives; the store's budget is the largest registered
 * (with none registered, nothing can be inserted).  Returns a handle for
 * unregister, or -1 on ENOMEM.
 */
int pt_cache_store_register(uint64_t max_memory);
void pt_cache_store_unregister(int handle);

struct pt_cache_store_stats {
    uint64_t entries, bytes, capacity, evictions, fills_waiting;
};
void pt_cache_store_stats(struct pt_cache_store_stats *s);

/** Set the budget directly (tests). */
void pt_cache_store_set_capacity(uint64_t bytes);

#endif
