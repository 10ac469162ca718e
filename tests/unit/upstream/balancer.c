#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../../src/upstream/balancer.c"

#define MAXT 8

struct fixture {
    struct pt_service svc;
    struct pt_target targets[MAXT];
    char names[MAXT][32];
};

/* A service of n targets "10.0.0.<id[i]>:80" with the given weights. */
static void fixture(struct fixture *f, enum pt_balance mode, size_t n, const unsigned *weights,
                    const int *ids)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        snprintf(f->names[i], sizeof(f->names[i]), "10.0.0.%d:80", ids ? ids[i] : (int)i + 1);
        f->targets[i].address = f->names[i];
        f->targets[i].weight = weights ? weights[i] : 1;
        f->targets[i].index = i;
    }
    f->svc.name = "svc";
    f->svc.targets = f->targets;
    f->svc.ntargets = n;
    f->svc.balance = mode;
}

static struct pt_balancer *make(enum pt_balance mode, size_t n, const unsigned *weights,
                                unsigned nworkers)
{
    struct fixture f;
    fixture(&f, mode, n, weights, NULL);
    return pt_balancer_create(&f.svc, nworkers);
}

/* eligible callback: a bitmask of excluded targets, counting calls */
struct filter {
    uint64_t excluded;
    unsigned calls;
};

static bool not_excluded(void *ctx, size_t idx)
{
    struct filter *f = ctx;
    f->calls++;
    return idx >= 64 || !(f->excluded >> idx & 1);
}

static bool none(void *ctx, size_t idx)
{
    (void)ctx, (void)idx;
    return false;
}

static ssize_t pick(struct pt_balancer *b, unsigned w)
{
    return pt_balancer_pick(b, w, PT_STR_NULL, NULL, NULL);
}

static void test_round_robin(void)
{
    static const unsigned w511[] = {5, 1, 1};
    struct pt_balancer *b = make(PT_BALANCE_ROUND_ROBIN, 3, w511, 2);
    char seq[15] = {0};
    for (int i = 0; i < 14; i++)
        seq[i] = (char)('a' + pick(b, 0));
    is_str(seq, "aabacaaaabacaa", "smooth: 5,1,1 gives a,a,b,a,c,a,a twice");
    memset(seq, 0, sizeof(seq));
    for (int i = 0; i < 7; i++)
        seq[i] = (char)('a' + pick(b, 1));
    is_str(seq, "aabacaa", "worker 1 has its own position");
    pt_balancer_free(b);

    static const unsigned w1234[] = {1, 2, 3, 4};
    b = make(PT_BALANCE_ROUND_ROBIN, 4, w1234, 1);
    int count[4] = {0};
    for (int i = 0; i < 10000; i++)
        count[pick(b, 0)]++;
    is_int(count[0], 1000, "weight 1 of 10: exactly 1000 of 10000");
    is_int(count[1], 2000, "weight 2");
    is_int(count[2], 3000, "weight 3");
    is_int(count[3], 4000, "weight 4");
    pt_balancer_free(b);

    /* unweighted: plain rotation */
    b = make(PT_BALANCE_ROUND_ROBIN, 3, NULL, 1);
    memset(seq, 0, sizeof(seq));
    for (int i = 0; i < 6; i++)
        seq[i] = (char)('a' + pick(b, 0));
    is_str(seq, "abcabc", "equal weights rotate");

    /* filtering: b excluded, a and c alternate */
    struct filter flt = {.excluded = 1u << 1};
    memset(seq, 0, sizeof(seq));
    for (int i = 0; i < 6; i++)
        seq[i] = (char)('a' + pt_balancer_pick(b, 0, PT_STR_NULL, not_excluded, &flt));
    ok(strchr(seq, 'b') == NULL, "excluded target never picked (%s)", seq);
    is_int(pt_balancer_pick(b, 0, PT_STR_NULL, none, NULL), -1, "none eligible: -1");
    pt_balancer_free(b);

    /* filtered 5,1,1 without c: a gets 5 of 6 */
    b = make(PT_BALANCE_ROUND_ROBIN, 3, w511, 1);
    flt.excluded = 1u << 2;
    int ca = 0, cb = 0;
    for (int i = 0; i < 600; i++) {
        ssize_t t = pt_balancer_pick(b, 0, PT_STR_NULL, not_excluded, &flt);
        ca += t == 0;
        cb += t == 1;
    }
    is_int(ca, 500, "weights among the eligible: a");
    is_int(cb, 100, "weights among the eligible: b");
    pt_balancer_free(b);
}

static void test_least_conn(void)
{
    struct pt_balancer *b = make(PT_BALANCE_LEAST_CONN, 3, NULL, 2);
    pt_balancer_acquire(b, 0, 0);
    pt_balancer_acquire(b, 0, 0);
    pt_balancer_acquire(b, 0, 1);
    is_int(pick(b, 0), 2, "idle target preferred");
    pt_balancer_acquire(b, 0, 2);
    pt_balancer_acquire(b, 0, 2);
    is_int(pick(b, 0), 1, "least loaded (1 < 2 = 2)");
    pt_balancer_release(b, 0, 0);
    pt_balancer_release(b, 0, 0);
    is_int(pick(b, 0), 0, "release makes a target least loaded");
    char seq[7] = {0};
    for (int i = 0; i < 6; i++)
        seq[i] = (char)('a' + pick(b, 1));
    is_str(seq, "abcabc", "worker 1 sees its own (zero) counts; ties go round robin");
    pt_balancer_release(b, 1, 0); /* release without acquire must not wrap */
    is_int(slot_active(b, 1)[0], 0, "count saturates at zero");

    struct filter flt = {.excluded = 1u << 0};
    is_int(pt_balancer_pick(b, 0, PT_STR_NULL, not_excluded, &flt), 1,
           "least loaded among the eligible");
    is_int(pt_balancer_pick(b, 0, PT_STR_NULL, none, NULL), -1, "none eligible: -1");
    pt_balancer_free(b);

    /* weighted: compare active/weight */
    static const unsigned w13[] = {1, 3};
    b = make(PT_BALANCE_LEAST_CONN, 2, w13, 1);
    pt_balancer_acquire(b, 0, 0); /* 1/1 */
    pt_balancer_acquire(b, 0, 1);
    pt_balancer_acquire(b, 0, 1); /* 2/3 */
    is_int(pick(b, 0), 1, "2 of weight 3 is lighter than 1 of weight 1");
    pt_balancer_acquire(b, 0, 1); /* 3/3 = 1/1: tie, weighted rr */
    int c0 = 0;
    for (int i = 0; i < 400; i++)
        c0 += pick(b, 0) == 0;
    is_int(c0, 100, "ties are broken by weighted round robin");
    pt_balancer_free(b);

    /* a simulation: requests of random length; busy time follows the weights */
    static const unsigned w124[] = {1, 2, 4};
    b = make(PT_BALANCE_LEAST_CONN, 3, w124, 1);
    enum { SLOTS = 64 };
    int inflight[SLOTS], left[SLOTS], count[3] = {0};
    uint64_t x = 12345;
    for (int s = 0; s < SLOTS; s++)
        inflight[s] = -1;
    for (int tick = 0; tick < 20000; tick++) {
        for (int s = 0; s < SLOTS; s++) {
            if (inflight[s] >= 0 && --left[s] == 0) {
                pt_balancer_release(b, 0, (size_t)inflight[s]);
                inflight[s] = -1;
            }
            if (inflight[s] < 0) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                inflight[s] = (int)pick(b, 0);
                left[s] = 1 + (int)(x % 20);
                pt_balancer_acquire(b, 0, (size_t)inflight[s]);
                count[inflight[s]]++;
            }
        }
    }
    double total = count[0] + count[1] + count[2];
    ok(count[0] / total > 1 / 7.0 - 0.03 && count[0] / total < 1 / 7.0 + 0.03,
       "simulation: weight 1 gets ~1/7 (%.3f)", count[0] / total);
    ok(count[2] / total > 4 / 7.0 - 0.03 && count[2] / total < 4 / 7.0 + 0.03,
       "simulation: weight 4 gets ~4/7 (%.3f)", count[2] / total);
    pt_balancer_free(b);
}

static void test_random(void)
{
    static const unsigned w1234[] = {1, 2, 3, 4};
    struct pt_balancer *b = make(PT_BALANCE_RANDOM, 4, w1234, 4);
    enum { N = 100000 };
    int count[4] = {0};
    for (int i = 0; i < N; i++)
        count[pick(b, (unsigned)i % 4)]++;
    for (int t = 0; t < 4; t++) {
        double want = N * (t + 1) / 10.0;
        ok(count[t] > want * 0.95 && count[t] < want * 1.05, "random weight %d: %d of %d", t + 1,
           count[t], N);
    }

    struct filter flt = {.excluded = 1u << 3};
    memset(count, 0, sizeof(count));
    for (int i = 0; i < N; i++)
        count[pt_balancer_pick(b, 0, PT_STR_NULL, not_excluded, &flt)]++;
    is_int(count[3], 0, "excluded never picked");
    for (int t = 0; t < 3; t++) {
        double want = N * (t + 1) / 6.0;
        ok(count[t] > want * 0.95 && count[t] < want * 1.05,
           "random among the eligible, weight %d: %d", t + 1, count[t]);
    }
    ok(flt.calls < 3u * N, "filter called %u times for %d picks", flt.calls, N);

    /* only one left */
    flt.excluded = 0x7;
    int other = 0;
    for (int i = 0; i < 1000; i++)
        other += pt_balancer_pick(b, 0, PT_STR_NULL, not_excluded, &flt) != 3;
    is_int(other, 0, "one eligible: always it");
    is_int(pt_balancer_pick(b, 0, PT_STR_NULL, none, NULL), -1, "none eligible: -1");
    pt_balancer_free(b);
}

static ssize_t hpick(struct pt_balancer *b, int key, pt_balancer_eligible_fn fn, void *ctx)
{
    char k[32];
    int n = snprintf(k, sizeof(k), "user-%d", key);
    return pt_balancer_pick(b, 0, pt_str_make(k, (size_t)n), fn, ctx);
}

static void test_hash(void)
{
    enum { KEYS = 20000 };
    static ssize_t before[KEYS];
    struct fixture f;
    fixture(&f, PT_BALANCE_HASH, 5, NULL, NULL);
    struct pt_balancer *b = pt_balancer_create(&f.svc, 1);
    int count[5] = {0}, unstable = 0;
    for (int k = 0; k < KEYS; k++) {
        before[k] = hpick(b, k, NULL, NULL);
        count[before[k]]++;
        unstable += hpick(b, k, NULL, NULL) != before[k];
    }
    is_int(unstable, 0, "same key, same target");
    for (int t = 0; t < 5; t++)
        ok(count[t] > KEYS * 0.15 && count[t] < KEYS * 0.25, "hash spread: target %d has %d", t,
           count[t]);

    /* exclude target 2: only its keys move, and they spread over the others */
    struct filter flt = {.excluded = 1u << 2};
    int moved = 0, wrongly = 0, dest[5] = {0};
    for (int k = 0; k < KEYS; k++) {
        ssize_t t = hpick(b, k, not_excluded, &flt);
        if (t != before[k]) {
            moved++;
            wrongly += before[k] != 2;
            dest[t]++;
        }
    }
    is_int(wrongly, 0, "excluding a target moves only its own keys");
    ok(moved > KEYS * 0.15 && moved < KEYS * 0.25, "~1/5 of keys moved (%d)", moved);
    int spread = 0;
    for (int t = 0; t < 5; t++)
        spread += t != 2 && dest[t] > moved / 8;
    is_int(spread, 4, "the moved keys spread over the four others");
    is_int(hpick(b, 1, none, NULL), -1, "none eligible: -1");
    is_int(pt_balancer_pick(b, 0, PT_STR_NULL, NULL, NULL) >= 0, 1, "empty key: round robin");
    pt_balancer_free(b);

    /* remove target 2 from the configuration: the rebuilt ring agrees */
    static const int ids4[] = {1, 2, 4, 5};
    struct fixture g;
    fixture(&g, PT_BALANCE_HASH, 4, NULL, ids4);
    struct pt_balancer *b4 = pt_balancer_create(&g.svc, 1);
    static const int old_of_new[] = {0, 1, 3, 4};
    moved = wrongly = 0;
    for (int k = 0; k < KEYS; k++) {
        ssize_t t = old_of_new[hpick(b4, k, NULL, NULL)];
        if (t != before[k]) {
            moved++;
            wrongly += before[k] != 2;
        }
    }
    is_int(wrongly, 0, "removing a target moves only its own keys");
    ok(moved > KEYS * 0.15 && moved < KEYS * 0.25, "~1/5 of keys moved on removal (%d)", moved);
    pt_balancer_free(b4);

    /* reorder the targets: every key stays with the same address */
    static const int ids_rev[] = {5, 4, 3, 2, 1};
    fixture(&g, PT_BALANCE_HASH, 5, NULL, ids_rev);
    struct pt_balancer *br = pt_balancer_create(&g.svc, 1);
    int changed = 0;
    for (int k = 0; k < KEYS; k++)
        changed += 4 - hpick(br, k, NULL, NULL) != before[k];
    is_int(changed, 0, "reordering targets moves no key");
    pt_balancer_free(br);

    /* add a sixth target: keys only move to it */
    static const int ids6[] = {1, 2, 3, 4, 5, 6};
    fixture(&g, PT_BALANCE_HASH, 6, NULL, ids6);
    struct pt_balancer *b6 = pt_balancer_create(&g.svc, 1);
    moved = wrongly = 0;
    for (int k = 0; k < KEYS; k++) {
        ssize_t t = hpick(b6, k, NULL, NULL);
        if (t != before[k]) {
            moved++;
            wrongly += t != 5;
        }
    }
    is_int(wrongly, 0, "adding a target moves keys only to it");
    ok(moved > KEYS / 6 * 0.7 && moved < KEYS / 6 * 1.3, "~1/6 of keys moved on add (%d)", moved);
    pt_balancer_free(b6);

    /* weights */
    static const unsigned w11114[] = {1, 1, 1, 1, 4};
    fixture(&g, PT_BALANCE_HASH, 5, w11114, NULL);
    struct pt_balancer *bw = pt_balancer_create(&g.svc, 1);
    int heavy = 0;
    for (int k = 0; k < KEYS; k++)
        heavy += hpick(bw, k, NULL, NULL) == 4;
    ok(heavy > KEYS * 0.42 && heavy < KEYS * 0.58, "weight 4 of 8 gets ~half the keys (%d)", heavy);
    pt_balancer_free(bw);

    /* the same address twice: both copies own keys */
    static const int dup[] = {1, 1};
    fixture(&g, PT_BALANCE_HASH, 2, NULL, dup);
    struct pt_balancer *bd = pt_balancer_create(&g.svc, 1);
    int second = 0;
    for (int k = 0; k < 2000; k++)
        second += hpick(bd, k, NULL, NULL) == 1;
    ok(second > 700 && second < 1300, "duplicate addresses share the keys (%d)", second);
    pt_balancer_free(bd);
}

static void test_hash_many(void)
{
    /* more targets than the per-pick memory of ineligible ones */
    enum { N = SEEN_BITS + 100 };
    struct pt_target *t = calloc(N, sizeof(*t));
    char(*names)[32] = calloc(N, 32);
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], 32, "host%zu:80", i);
        t[i].address = names[i];
        t[i].weight = 1;
    }
    struct pt_service svc = {.targets = t, .ntargets = N, .balance = PT_BALANCE_HASH};
    struct pt_balancer *b = pt_balancer_create(&svc, 1);
    ok(b != NULL, "ring for %d targets", N);
    ok(b->nring <= RING_MAX_POINTS + N && b->nring > RING_MAX_POINTS * 9 / 10, "ring capped (%zu)",
       b->nring);
    is_int(pt_balancer_pick(b, 0, PT_STR_LIT("k"), none, NULL), -1, "none eligible: -1");
    struct filter flt = {.excluded = ~(uint64_t)0}; /* only targets >= 64 eligible */
    ssize_t r = pt_balancer_pick(b, 0, PT_STR_LIT("k"), not_excluded, &flt);
    ok(r >= 64, "walks past ineligible targets");
    pt_balancer_free(b);
    free(t);
    free(names);
}

static void test_edges(void)
{
    struct pt_balancer *b;
    for (int m = 0; m < PT_BALANCE_COUNT; m++) {
        b = make((enum pt_balance)m, 0, NULL, 1);
        ok(b != NULL, "mode %d: zero targets builds", m);
        is_int(pt_balancer_pick(b, 0, PT_STR_LIT("k"), NULL, NULL), -1, "mode %d: zero targets", m);
        pt_balancer_free(b);
        b = make((enum pt_balance)m, 1, NULL, 3);
        is_int(pt_balancer_pick(b, 2, PT_STR_LIT("k"), NULL, NULL), 0, "mode %d: one target", m);
        is_int(pt_balancer_pick(b, 2, PT_STR_LIT("k"), none, NULL), -1,
               "mode %d: one target, ineligible", m);
        pt_balancer_free(b);
    }
    pt_balancer_free(NULL);

    b = make(PT_BALANCE_LEAST_CONN, 5, NULL, 7);
    int misaligned = 0;
    for (unsigned w = 0; w < 7; w++)
        misaligned +=
            ((uintptr_t)slot_cw(b, w) % PT_CACHE_LINE) != 0 ||
            (uintptr_t)(slot_active(b, w) + 5) > (uintptr_t)slot_cw(b, 0) + b->stride * (w + 1);
    is_int(misaligned, 0, "every worker slot starts a cache line and fits its stride");
    pt_balancer_free(b);

    static const unsigned zero_w[] = {0, 2};
    b = make(PT_BALANCE_ROUND_ROBIN, 2, zero_w, 1);
    int c0 = 0;
    for (int i = 0; i < 30; i++)
        c0 += pick(b, 0) == 0;
    is_int(c0, 10, "weight 0 treated as 1");
    pt_balancer_free(b);

    /* allocation failures: NULL or a working balancer, never a leak */
    pt__fail_alloc_percent = 30;
    int built = 0, failed = 0;
    for (int i = 0; i < 200; i++) {
        b = make(i % 2 ? PT_BALANCE_HASH : PT_BALANCE_RANDOM, 4, NULL, 2);
        if (b == NULL) {
            failed++;
            continue;
        }
        built++;
        pt_balancer_pick(b, 1, PT_STR_LIT("x"), NULL, NULL);
        pt_balancer_free(b);
    }
    pt__fail_alloc_percent = 0;
    ok(built > 0 && failed > 0, "with PT_FAIL_ALLOC: %d built, %d failed cleanly", built, failed);
}

int main(void)
{
    test_round_robin();
    test_least_conn();
    test_random();
    test_hash();
    test_hash_many();
    test_edges();
    return done_testing();
}
