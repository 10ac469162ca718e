/*
 * Load balancers.
 *
 * A balancer is built once per service per snapshot.  What never changes
 * (weights, cumulative weights for random, the hash ring) is shared by all
 * workers and read-only.  What changes on every pick (smooth round-robin
 * current weights, least_conn active counts) lives in one slot per worker:
 * slot w is a 64-byte-aligned region that only worker w reads or writes,
 * so no lock, no atomic and no shared cache line is involved.  The price is
 * that least_conn balances the requests of one worker at a time, not of the
 * whole process; with several workers each sees its share of the traffic,
 * so the totals even out the same way.
 *
 * round_robin: nginx's smooth weighted round robin.  Each pick adds every
 * eligible target's weight to its current weight, chooses the largest
 * (the first one on a tie), and subtracts the eligible total from the
 * chosen one.  Weights 5,1,1 give a a b a c a a: interleaved, not bursty.
 * Ineligible targets keep their current weight untouched.
 *
 * least_conn: the eligible target with the smallest active/weight (compared
 * as active_i * weight_j < active_j * weight_i, no division); ties are
 * broken by smooth weighted round robin among the tied targets, so with no
 * load at all least_conn behaves like round_robin.
 *
 * random: weighted, with the calling thread's xoshiro256** generator
 * (pt_random_u64(), one per worker thread).  Without a filter it is one
 * binary search in the cumulative weights; with a filter it first draws
 * from the full distribution and retries a few times on an ineligible
 * target (rejection sampling, exact), then falls back to two passes over the
 * eligible targets only.
 *
 * hash: consistent hashing.  Each target puts RING_POINTS_PER_WEIGHT points
 * per unit of weight on a 64-bit ring (scaled down only for huge rings).  A
 * target's point count depends on its own weight only, and a point's position depends only on the
 * target's address and the point's number, never on the target's position in the list, so adding,
 * removing or reordering targets moves only the keys of the targets that
 * changed.  A key goes to the first point at or after its hash (wrapping);
 * when that target is ineligible the walk continues along the ring, so its
 * keys spread over the others and nobody else's keys move.  The hash is
 * FNV-1a 64 followed by the murmur3 fmix64 finaliser (FNV alone mixes short
 * keys poorly in the high bits, which decide the ring position).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/compiler.h"
#include "core/hash.h"
#include "http/reqid.h"
#include "upstream/balancer.h"

#define RING_POINTS_PER_WEIGHT 160
#define RING_MAX_POINTS        (1u << 18)
#define RANDOM_TRIES           3
#define SEEN_BITS              4096 /* hash: ineligible targets remembered per pick */

struct pt_balancer {
    enum pt_balance mode;
    size_t n;
    unsigned nworkers;
    uint64_t total_weight;
    uint32_t *weight;      /* n entries, each >= 1 */
    uint64_t *cum;         /* random: cum[i] = weight[0] + ... + weight[i] */
    uint64_t *ring_hash;   /* hash: sorted point positions */
    uint32_t *ring_target; /* hash: the target of each point */
    size_t nring;
    char *slots;   /* nworkers regions of `stride` bytes, 64-byte aligned */
    size_t stride; /* multiple of PT_CACHE_LINE */
};

/* One worker's region: int64_t cw[n] then uint32_t active[n]. */
static inline int64_t *slot_cw(const struct pt_balancer *b, unsigned worker)
{
    return (int64_t *)(void *)(b->slots + (size_t)worker * b->stride);
}

static inline uint32_t *slot_active(const struct pt_balancer *b, unsigned worker)
{
    return (uint32_t *)(void *)(b->slots + (size_t)worker * b->stride + b->n * sizeof(int64_t));
}

/* ---- hashing ----------------------------------------------------------- */

static uint64_t key_hash(struct pt_str key)
{
    return pt_fmix64(pt_fnv1a(key.ptr, key.len, PT_FNV1A_OFFSET));
}

/* ---- construction ------------------------------------------------------ */

struct base_hash {
    uint64_t h;
    size_t idx;
};

static int cmp_base(const void *a, const void *b)
{
    const struct base_hash *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

struct point {
    uint64_t h;
    uint32_t target;
};

static int cmp_point(const void *a, const void *b)
{
    const struct point *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->target < y->target ? -1 : x->target > y->target;
}

/*
 * Per-target ring seeds: the hash of the address; a repeated address gets
 * its occurrence number mixed in so that both copies own points.
 */
static int ring_seeds(const struct pt_service *svc, uint64_t *seed)
{
    size_t n = svc->ntargets;
    struct base_hash *bh = pt_malloc(n * sizeof(*bh));
    if (bh == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *a = svc->targets[i].address;
        if (a != NULL) {
            bh[i].h = pt_fnv1a(a, strlen(a), PT_FNV1A_OFFSET);
        } else {
            uint64_t idx = i;
            bh[i].h = pt_fnv1a(&idx, sizeof(idx), PT_FNV1A_OFFSET ^ 1);
        }
        bh[i].idx = i;
    }
    qsort(bh, n, sizeof(*bh), cmp_base);
    uint64_t dup = 0;
    for (size_t i = 0; i < n; i++) {
        dup = (i > 0 && bh[i].h == bh[i - 1].h) ? dup + 1 : 0;
        seed[bh[i].idx] = dup == 0 ? bh[i].h : bh[i].h ^ pt_fmix64(dup * 0x9e3779b97f4a7c15ull);
    }
    free(bh);
    return 0;
}

/*
 * Points of target i.  RING_POINTS_PER_WEIGHT per unit of weight, so a
 * target's points do not depend on the other targets (adding or removing
 * one leaves everybody else's points in place).  Only when the ring would
 * exceed RING_MAX_POINTS are all counts scaled down together (at least one
 * each); such a ring is then less stable across changes of the target set.
 */
static uint64_t ring_points(const struct pt_balancer *b, size_t i)
{
    uint64_t p = (uint64_t)b->weight[i] * RING_POINTS_PER_WEIGHT;
    if (b->total_weight * RING_POINTS_PER_WEIGHT > RING_MAX_POINTS)
        p = (uint64_t)b->weight[i] * RING_MAX_POINTS / b->total_weight;
    return p == 0 ? 1 : p;
}

static int build_ring(struct pt_balancer *b, const struct pt_service *svc)
{
    size_t n = b->n;
    uint64_t *seed = NULL;
    struct point *pts = NULL;
    size_t total = 0, k = 0;
    int rc = -1;

    for (size_t i = 0; i < n; i++)
        total += (size_t)ring_points(b, i);
    seed = pt_malloc(n * sizeof(*seed));
    pts = pt_malloc(total * sizeof(*pts));
    b->ring_hash = pt_malloc(total * sizeof(*b->ring_hash));
    b->ring_target = pt_malloc(total * sizeof(*b->ring_target));
    if (seed == NULL || pts == NULL || b->ring_hash == NULL || b->ring_target == NULL)
        goto out;
    if (ring_seeds(svc, seed) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        uint64_t p = ring_points(b, i);
        for (uint64_t r = 0; r < p; r++) {
            pts[k].h = pt_fmix64(seed[i] ^ pt_fmix64(r + 1));
            pts[k].target = (uint32_t)i;
            k++;
        }
    }
    qsort(pts, total, sizeof(*pts), cmp_point);
    for (size_t i = 0; i < total; i++) {
        b->ring_hash[i] = pts[i].h;
        b->ring_target[i] = pts[i].target;
    }
    b->nring = total;
    rc = 0;
out:
    free(seed);
    free(pts);
    return rc;
}

struct pt_balancer *pt_balancer_create(const struct pt_service *svc, unsigned nworkers)
{
    struct pt_balancer *b = pt_calloc(1, sizeof(*b));
    size_t n = svc->ntargets;

    if (b == NULL)
        return NULL;
    PT_BUG_ON(n > UINT32_MAX);
    b->mode = svc->balance;
    b->n = n;
    b->nworkers = nworkers == 0 ? 1 : nworkers;

    b->weight = pt_malloc((n == 0 ? 1 : n) * sizeof(*b->weight));
    b->cum = pt_malloc((n == 0 ? 1 : n) * sizeof(*b->cum));
    if (b->weight == NULL || b->cum == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        unsigned w = svc->targets[i].weight;
        b->weight[i] = w == 0 ? 1 : w; /* config guarantees >= 1; be safe */
        b->total_weight += b->weight[i];
        b->cum[i] = b->total_weight;
    }
    if (b->mode == PT_BALANCE_HASH && n > 0 && build_ring(b, svc) != 0)
        goto fail;

    size_t bytes = n * (sizeof(int64_t) + sizeof(uint32_t));
    b->stride = (bytes + PT_CACHE_LINE - 1) / PT_CACHE_LINE * PT_CACHE_LINE;
    if (b->stride == 0)
        b->stride = PT_CACHE_LINE;
    if (pt__alloc_should_fail())
        goto fail;
    b->slots = aligned_alloc(PT_CACHE_LINE, b->stride * b->nworkers);
    if (b->slots == NULL)
        goto fail;
    memset(b->slots, 0, b->stride * b->nworkers);
    return b;
fail:
    pt_balancer_free(b);
    return NULL;
}

void pt_balancer_free(struct pt_balancer *b)
{
    if (b == NULL)
        return;
    free(b->weight);
    free(b->cum);
    free(b->ring_hash);
    free(b->ring_target);
    free(b->slots);
    free(b);
}

/* ---- picking ----------------------------------------------------------- */

static inline bool is_eligible(pt_balancer_eligible_fn eligible, void *ctx, size_t i)
{
    return eligible == NULL || eligible(ctx, i);
}

static ssize_t pick_rr(struct pt_balancer *b, unsigned worker, pt_balancer_eligible_fn eligible,
                       void *ctx)
{
    int64_t *cw = slot_cw(b, worker), total = 0;
    ssize_t best = -1;

    for (size_t i = 0; i < b->n; i++) {
        if (!is_eligible(eligible, ctx, i))
            continue;
        cw[i] += b->weight[i];
        total += b->weight[i];
        if (best < 0 || cw[i] > cw[best])
            best = (ssize_t)i;
    }
    if (best >= 0)
        cw[best] -= total;
    return best;
}

/* Is the load of target a below (<0), equal to (0) or above (>0) that of b? */
static inline int load_cmp(const struct pt_balancer *bal, const uint32_t *active, size_t a,
                           size_t b)
{
    uint64_t x = (uint64_t)active[a] * bal->weight[b], y = (uint64_t)active[b] * bal->weight[a];
    return x < y ? -1 : x > y;
}

static ssize_t pick_least_conn(struct pt_balancer *b, unsigned worker,
                               pt_balancer_eligible_fn eligible, void *ctx)
{
    const uint32_t *active = slot_active(b, worker);
    int64_t *cw = slot_cw(b, worker), total = 0;
    ssize_t best = -1;
    size_t ties = 0;

    for (size_t i = 0; i < b->n; i++) {
        if (!is_eligible(eligible, ctx, i))
            continue;
        int c = best < 0 ? -1 : load_cmp(b, active, i, (size_t)best);
        if (c < 0) {
            best = (ssize_t)i;
            ties = 1;
        } else if (c == 0) {
            ties++;
        }
    }
    if (ties <= 1)
        return best;

    /* smooth weighted round robin among the equally loaded */
    size_t first = (size_t)best;
    for (size_t i = first; i < b->n; i++) {
        if (i != first && (load_cmp(b, active, i, first) != 0 || !is_eligible(eligible, ctx, i)))
            continue;
        cw[i] += b->weight[i];
        total += b->weight[i];
        if (cw[i] > cw[best])
            best = (ssize_t)i;
    }
    cw[best] -= total;
    return best;
}

/* Uniform in [0, range), range > 0 (Lemire's multiply-shift). */
static inline uint64_t random_below(uint64_t range)
{
    __extension__ typedef unsigned __int128 u128;
    return (uint64_t)(((u128)pt_random_u64() * range) >> 64);
}

static size_t draw_weighted(const struct pt_balancer *b)
{
    uint64_t r = random_below(b->total_weight);
    size_t lo = 0, hi = b->n - 1;
    while (lo < hi) { /* first i with cum[i] > r */
        size_t mid = lo + (hi - lo) / 2;
        if (b->cum[mid] > r)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static ssize_t pick_random(struct pt_balancer *b, pt_balancer_eligible_fn eligible, void *ctx)
{
    for (int t = 0; t < (eligible == NULL ? 1 : RANDOM_TRIES); t++) {
        size_t i = draw_weighted(b);
        if (is_eligible(eligible, ctx, i))
            return (ssize_t)i;
    }

    uint64_t total = 0;
    for (size_t i = 0; i < b->n; i++)
        if (eligible(ctx, i))
            total += b->weight[i];
    if (total == 0)
        return -1;
    uint64_t r = random_below(total);
    ssize_t last = -1;
    for (size_t i = 0; i < b->n; i++) {
        if (!eligible(ctx, i))
            continue;
        if (r < b->weight[i])
            return (ssize_t)i;
        r -= b->weight[i];
        last = (ssize_t)i;
    }
    return last; /* only if eligible() changed its mind between the passes */
}

static ssize_t pick_hash(struct pt_balancer *b, struct pt_str key, pt_balancer_eligible_fn eligible,
                         void *ctx)
{
    uint64_t h = key_hash(key), seen[SEEN_BITS / 64];
    size_t lo = 0, hi = b->nring, nseen = 0;
    bool seen_init = false;
    uint32_t last_bad = UINT32_MAX;

    while (lo < hi) { /* first point at or after h */
        size_t mid = lo + (hi - lo) / 2;
        if (b->ring_hash[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t step = 0; step < b->nring; step++) {
        size_t at = lo + step;
        uint32_t t = b->ring_target[at >= b->nring ? at - b->nring : at];
        if (eligible == NULL)
            return t;
        if (t == last_bad)
            continue;
        if (t < SEEN_BITS && seen_init && (seen[t / 64] >> (t % 64) & 1))
            continue;
        if (eligible(ctx, t))
            return t;
        last_bad = t;
        if (t < SEEN_BITS) {
            if (!seen_init) {
                memset(seen, 0, sizeof(seen));
                seen_init = true;
            }
            seen[t / 64] |= (uint64_t)1 << (t % 64);
            if (++nseen == b->n)
                return -1;
        }
    }
    return -1;
}

ssize_t pt_balancer_pick(struct pt_balancer *b, unsigned worker, struct pt_str key,
                         pt_balancer_eligible_fn eligible, void *ctx)
{
    PT_BUG_ON(worker >= b->nworkers);
    if (b->n == 0)
        return -1;
    switch (b->mode) {
    case PT_BALANCE_LEAST_CONN:
        return pick_least_conn(b, worker, eligible, ctx);
    case PT_BALANCE_RANDOM:
        return pick_random(b, eligible, ctx);
    case PT_BALANCE_HASH:
        if (key.len > 0)
            return pick_hash(b, key, eligible, ctx);
        return pick_rr(b, worker, eligible, ctx);
    case PT_BALANCE_ROUND_ROBIN:
    default:
        return pick_rr(b, worker, eligible, ctx);
    }
}

void pt_balancer_acquire(struct pt_balancer *b, unsigned worker, size_t idx)
{
    PT_BUG_ON(worker >= b->nworkers || idx >= b->n);
    slot_active(b, worker)[idx]++;
}

void pt_balancer_release(struct pt_balancer *b, unsigned worker, size_t idx)
{
    PT_BUG_ON(worker >= b->nworkers || idx >= b->n);
    uint32_t *a = slot_active(b, worker);
    PT_DEBUG_ASSERT(a[idx] > 0);
    if (a[idx] > 0) /* a release without acquire must not wrap to 4 billion */
        a[idx]--;
}
