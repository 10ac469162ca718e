/* The cache's memory store: LRU within the budget, references, fills and waiters, purges. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "plugins/cache_policy.h"
#include "plugins/cache_store.h"
#include "test.h"

static struct pt_cache_entry *mk(const char *route, const char *path, size_t body_len, uint64_t now,
                                 uint64_t fresh_ms, uint64_t swr_ms, uint64_t sie_ms)
{
    static char body[1 << 16];
    char key[256];
    int n = snprintf(key, sizeof(key), "%s%cGET%ch%c%s", route, 0, 0, 0, path);
    size_t off = strlen(route) + 1 + 4 + 2;
    struct pt_h1_header hs[] = {
        {PT_STR_LIT("Content-Type"), PT_STR_LIT("text/plain")},
        {PT_STR_LIT("Content-Length"), PT_STR_LIT("5")},
        {PT_STR_LIT("X-Request-Id"), PT_STR_LIT("abc")},
        {PT_STR_LIT("Age"), PT_STR_LIT("3")},
    };
    struct pt_cache_entry_spec sp = {
        .key = pt_str_make(key, (size_t)n),
        .path_off = off,
        .route = route,
        .status = 200,
        .headers = hs,
        .nheaders = 4,
        .body = pt_str_make(body, body_len),
        .stored_ms = now,
        .fresh_until = now + fresh_ms,
        .swr_until = now + fresh_ms + swr_ms,
        .sie_until = now + fresh_ms + sie_ms,
    };
    return pt_cache_entry_new(&sp, PT_STR_LIT("x-request-id"));
}

static uint64_t hash_of(const struct pt_cache_entry *e)
{
    return pt_cache_hash(e->key, e->key_len);
}

static enum pt_cache_get_result get(const struct pt_cache_entry *like, uint64_t now, bool may_lead,
                                    struct pt_cache_waiter *w, struct pt_cache_entry **e,
                                    struct pt_cache_fill **f)
{
    struct pt_cache_get_args a = {
        .key = pt_str_make(like->key, like->key_len),
        .hash = hash_of(like),
        .now = now,
        .may_lead = may_lead,
        .waiter = w,
    };
    return pt_cache_get(&a, e, f);
}

/* Insert through a fill, as the plugin does. */
static void put(struct pt_cache_entry *e, uint64_t now)
{
    struct pt_cache_entry *old;
    struct pt_cache_fill *f;
    enum pt_cache_get_result r = get(e, now, true, NULL, &old, &f);
    if (old != NULL)
        pt_cache_entry_unref(old);
    if (r == PT_CACHE_GET_LEAD || r == PT_CACHE_GET_REFRESH)
        pt_cache_fill_finish(f, e, NULL);
    else
        pt_cache_store_put(e, hash_of(e));
}

static void test_entry_layout(void)
{
    struct pt_cache_entry *e = mk("r", "/a", 5, 1000, 10, 0, 0);
    ok(e != NULL, "entry");
    is_int(e->nheaders, 1, "Content-Length, Age and the request id are not stored");
    ok(pt_str_eq_lit(e->headers[0].name, "Content-Type"), "other headers are");
    ok(strcmp(e->route, "r") == 0 && memcmp(e->key + e->path_off, "/a", 2) == 0, "route and path");
    is_int(e->drop_at, 1010, "drop_at is the latest window");
    pt_cache_entry_unref(e);
}

static void test_hit_stale_miss(void)
{
    pt_cache_store_set_capacity(1 << 20);
    struct pt_cache_entry *e = mk("r", "/fresh", 10, 1000, 100, 50, 500);
    put(e, 1000);
    struct pt_cache_entry *got;
    struct pt_cache_fill *f;
    is_int(get(e, 1050, true, NULL, &got, &f), PT_CACHE_GET_HIT, "fresh: hit");
    ok(got == e && f == NULL, "the same entry, no fill");
    pt_cache_entry_unref(got);
    is_int(get(e, 1120, true, NULL, &got, &f), PT_CACHE_GET_REFRESH,
           "stale within s-w-r: the first one refreshes");
    ok(got == e && f != NULL, "stale entry and a fill");
    pt_cache_entry_unref(got);
    struct pt_cache_entry *got2;
    struct pt_cache_fill *f2;
    is_int(get(e, 1121, true, NULL, &got2, &f2), PT_CACHE_GET_STALE,
           "while it refreshes: stale, no second refresh");
    pt_cache_entry_unref(got2);
    pt_cache_fill_finish(f, NULL, NULL);
    is_int(get(e, 1200, true, NULL, &got, &f), PT_CACHE_GET_LEAD,
           "past s-w-r: lead, with the stale candidate");
    ok(got == e, "stale candidate for stale-if-error");
    pt_cache_entry_unref(got);
    pt_cache_fill_finish(f, NULL, NULL);
    is_int(get(e, 1700, true, NULL, &got, &f), PT_CACHE_GET_LEAD, "past every window: lead");
    ok(got == NULL, "and the entry is gone");
    pt_cache_fill_finish(f, NULL, NULL);
    pt_cache_entry_unref(e);
}

struct test_waiter {
    struct pt_cache_waiter w;
    struct pt_cache_entry *got;
    bool stale;
    int woken;
};

static void test_wake(struct pt_cache_waiter *w, struct pt_cache_entry *e, bool stale)
{
    struct test_waiter *t = (struct test_waiter *)w;
    t->got = e;
    t->stale = stale;
    t->woken++;
}

static void test_fills(void)
{
    pt_cache_store_set_capacity(1 << 20);
    struct pt_cache_entry *e = mk("r", "/fill", 10, 1000, 100, 0, 0);
    struct pt_cache_entry *got;
    struct pt_cache_fill *f, *f2;
    is_int(get(e, 1000, true, NULL, &got, &f), PT_CACHE_GET_LEAD, "first: lead");
    is_int(get(e, 1000, true, NULL, &got, &f2), PT_CACHE_GET_MISS, "second without waiter: miss");
    struct test_waiter w1 = {.w.wake = test_wake}, w2 = {.w.wake = test_wake},
                       w3 = {.w.wake = test_wake};
    is_int(get(e, 1000, true, &w1.w, &got, &f2), PT_CACHE_GET_WAIT, "waiter 1 queued");
    is_int(get(e, 1000, false, &w2.w, &got, &f2), PT_CACHE_GET_WAIT, "waiter 2 queued (HEAD)");
    is_int(get(e, 1000, true, &w3.w, &got, &f2), PT_CACHE_GET_WAIT, "waiter 3 queued");
    ok(pt_cache_wait_cancel(&w2.w), "waiter 2 leaves");
    ok(!pt_cache_wait_cancel(&w2.w), "leaving twice is harmless");
    struct pt_cache_store_stats st;
    pt_cache_store_stats(&st);
    is_int(st.fills_waiting, 2, "two waiting");
    pt_cache_fill_finish(f, e, NULL);
    ok(w1.woken == 1 && w1.got == e && !w1.stale, "waiter 1 got the entry");
    ok(w3.woken == 1 && w3.got == e, "waiter 3 too");
    ok(w2.woken == 0, "waiter 2 was not woken");
    ok(!pt_cache_wait_cancel(&w1.w), "cancel after the wake says so");
    pt_cache_entry_unref(w1.got);
    pt_cache_entry_unref(w3.got);
    is_int(get(e, 1010, true, NULL, &got, &f), PT_CACHE_GET_HIT, "then a hit");
    pt_cache_entry_unref(got);

    /* a failed fill hands out the stale entry, or nothing */
    struct pt_cache_entry *o = mk("r", "/other", 1, 1000, 100, 0, 0);
    struct test_waiter w4 = {.w.wake = test_wake}, w5 = {.w.wake = test_wake};
    is_int(get(o, 1000, true, NULL, &got, &f), PT_CACHE_GET_LEAD, "lead other");
    is_int(get(o, 1000, true, &w4.w, &got, &f2), PT_CACHE_GET_WAIT, "wait other");
    pt_cache_fill_finish(f, NULL, e);
    ok(w4.woken == 1 && w4.got == e && w4.stale, "a failed fill gives waiters the stale entry");
    pt_cache_entry_unref(w4.got);
    is_int(get(o, 1000, true, NULL, &got, &f), PT_CACHE_GET_LEAD, "lead again");
    is_int(get(o, 1000, true, &w5.w, &got, &f2), PT_CACHE_GET_WAIT, "wait again");
    pt_cache_fill_finish(f, NULL, NULL);
    ok(w5.woken == 1 && w5.got == NULL, "nothing stored: the waiters go upstream");
    pt_cache_entry_unref(o);
    pt_cache_entry_unref(e);
}

static void test_lru(void)
{
    pt_cache_store_purge(NULL, NULL);
    struct pt_cache_entry *probe = mk("lru", "/0", 1000, 0, 1000, 0, 0);
    size_t one = probe->size;
    pt_cache_entry_unref(probe);
    pt_cache_store_set_capacity(one * 10 + one / 2); /* room for 10 */
    struct pt_cache_entry *es[20];
    for (int i = 0; i < 20; i++) {
        char p[16];
        snprintf(p, sizeof(p), "/%d", i);
        es[i] = mk("lru", p, 1000, (uint64_t)i, 1000, 0, 0);
        put(es[i], (uint64_t)i);
        if (i == 5) { /* touch /0: it becomes the most recent */
            struct pt_cache_entry *g;
            struct pt_cache_fill *f;
            get(es[0], 6, true, NULL, &g, &f);
            pt_cache_entry_unref(g);
        }
    }
    struct pt_cache_store_stats st;
    pt_cache_store_stats(&st);
    ok(st.bytes <= st.capacity, "within the budget (%llu <= %llu)", (unsigned long long)st.bytes,
       (unsigned long long)st.capacity);
    is_int(st.entries, 10, "ten entries fit");
    ok(st.evictions >= 10, "evictions counted");
    int present = 0;
    for (int i = 10; i < 20; i++) {
        struct pt_cache_entry *g;
        struct pt_cache_fill *f;
        if (get(es[i], 30, false, NULL, &g, &f) == PT_CACHE_GET_HIT) {
            present++;
            pt_cache_entry_unref(g);
        }
    }
    ok(present >= 6, "most of the most recent entries stay (%d of 10: the LRU is approximate)",
       present);
    /* an entry being read survives its eviction */
    struct pt_cache_entry *g;
    struct pt_cache_fill *f;
    is_int(get(es[19], 30, false, NULL, &g, &f), PT_CACHE_GET_HIT, "hold /19 (the newest)");
    pt_cache_store_purge(NULL, NULL);
    ok(g->body_len == 1000 && g->status == 200, "still readable after a purge");
    pt_cache_entry_unref(g);
    for (int i = 0; i < 20; i++)
        pt_cache_entry_unref(es[i]);
    pt_cache_store_stats(&st);
    is_int(st.entries, 0, "purged");
    is_int(st.bytes, 0, "no bytes left");

    /* bigger than the whole budget: not stored */
    pt_cache_store_set_capacity(1000);
    struct pt_cache_entry *huge = mk("lru", "/huge", 5000, 0, 1000, 0, 0);
    put(huge, 0);
    is_int(get(huge, 1, false, NULL, &g, &f), PT_CACHE_GET_MISS, "too big to store");
    pt_cache_entry_unref(huge);
}

static void test_purge(void)
{
    pt_cache_store_set_capacity(1 << 20);
    const char *paths[] = {"/api/users/1", "/api/users/2", "/api/orders/1", "/other"};
    struct pt_cache_entry *a[4], *b[4];
    for (int i = 0; i < 4; i++) {
        a[i] = mk("users", paths[i], 10, 0, 1000, 0, 0);
        b[i] = mk("orders", paths[i], 10, 0, 1000, 0, 0);
        put(a[i], 0);
        put(b[i], 0);
    }
    is_int(pt_cache_store_purge("users", "/api/users"), 2, "route and prefix");
    is_int(pt_cache_store_purge(NULL, "/api/users"), 2, "prefix over every route");
    is_int(pt_cache_store_purge("orders", NULL), 2, "a route");
    is_int(pt_cache_store_purge("nope", NULL), 0, "unknown route");
    is_int(pt_cache_store_purge(NULL, NULL), 2, "all");
    for (int i = 0; i < 4; i++) {
        pt_cache_entry_unref(a[i]);
        pt_cache_entry_unref(b[i]);
    }
}

/* Several threads hitting, filling and evicting one small store at once. */
#define THREADS 4
static void *hammer(void *arg)
{
    int id = (int)(long)arg;
    for (int i = 0; i < 20000; i++) {
        char p[32];
        snprintf(p, sizeof(p), "/k%d", (i * 7 + id) % 300);
        struct pt_cache_entry *like = mk("t", p, 100, 0, 1000000, 0, 0);
        struct pt_cache_entry *g;
        struct pt_cache_fill *f;
        enum pt_cache_get_result r = get(like, 1, true, NULL, &g, &f);
        if (r == PT_CACHE_GET_HIT) {
            if (g->body_len != 100)
                return (void *)1;
            pt_cache_entry_unref(g);
        } else if (r == PT_CACHE_GET_LEAD) {
            pt_cache_fill_finish(f, like, NULL);
        }
        pt_cache_entry_unref(like);
    }
    return NULL;
}

static void test_threads(void)
{
    pt_cache_store_set_capacity(100 * 400);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer, (void *)i);
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += r != NULL;
    }
    ok(bad == 0, "concurrent hits, fills and evictions");
    struct pt_cache_store_stats st;
    pt_cache_store_stats(&st);
    ok(st.bytes <= st.capacity + 4 * 1000, "budget held under contention");
    is_int(st.fills_waiting, 0, "no fill left behind");
    pt_cache_store_purge(NULL, NULL);
}

/* Validators are found when the entry is made; they keep it for revalidation. */
static void test_validators(void)
{
    struct pt_h1_header hs[] = {
        {PT_STR_LIT("etag"), PT_STR_LIT(" W/\"x1\" ")},
        {PT_STR_LIT("Last-Modified"), PT_STR_LIT("Sun, 06 Nov 1994 08:49:37 GMT")},
    };
    struct pt_cache_entry_spec sp = {
        .key = PT_STR_LIT("k1"),
        .route = "r",
        .status = 200,
        .headers = hs,
        .nheaders = 2,
        .stored_ms = 1000,
        .fresh_until = 1010,
        .swr_until = 1010,
        .sie_until = 1020,
        .keep_until = 5000,
    };
    struct pt_cache_entry *e = pt_cache_entry_new(&sp, PT_STR_NULL);
    ok(e != NULL && pt_str_eq_lit(e->etag, "W/\"x1\""), "ETag found, trimmed");
    ok(pt_str_eq_lit(e->last_modified, "Sun, 06 Nov 1994 08:49:37 GMT") &&
           e->last_modified_s == 784111777,
       "Last-Modified found and parsed");
    ok(pt_cache_entry_has_validator(e), "has a validator");
    is_int(e->drop_at, 5000, "kept for revalidation");
    pt_cache_entry_unref(e);
    hs[0].value = PT_STR_LIT("unquoted");
    hs[1].value = PT_STR_LIT("yesterday");
    e = pt_cache_entry_new(&sp, PT_STR_NULL);
    ok(e->etag.len == 0 && e->last_modified.len == 0, "invalid validators are none");
    is_int(e->drop_at, 1020, "without a validator keep_until is ignored");
    pt_cache_entry_unref(e);
}

int main(void)
{
    test_entry_layout();
    test_validators();
    test_hit_stale_miss();
    test_fills();
    test_lru();
    test_purge();
    test_threads();
    return done_testing();
}
