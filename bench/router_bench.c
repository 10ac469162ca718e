/*
 * Router micro-benchmark: nanoseconds per pt_router_match() for 10 and for
 * 10,000 routes (plus one regex route), with static, parameterised and prefix lookups, misses
 * (404) and a regex fallback; plus pt_path_normalize() per path.  Results
 * go in docs/internals/router.md.
 *
 * Built on demand, against the release library:
 *
 *   make build/libportico.a
 *   cc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc bench/router_bench.c build/libportico.a \
 *       $(pkg-config --libs libpcre2-8) -pthread -o build/router_bench
 *   build/router_bench
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/path.h"
#include "router/router.h"

#define NPATHS 1024 /* most distinct request paths per workload, cycled */
#define ITERS  2000000
#define REPEAT 5

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/*
 * n routes in groups of four: /svcK/items (exact), /svcK/items/{id}
 * (param), /svcK/files/{rest*} (prefix), /svcK/users/{uid}/orders/{oid}
 * (param, deeper); plus one regex for /legacy/, which every miss also tries.
 */
static struct pt_router *make_router(size_t n, char ***storage)
{
    struct pt_router_route *routes = calloc(n + 1, sizeof(*routes));
    char **paths = calloc(n + 1, sizeof(*paths));
    for (size_t i = 0; i < n; i++) {
        static const char *const fmt[4] = {"/svc%zu/items", "/svc%zu/items/{id}",
                                           "/svc%zu/files/{rest*}",
                                           "/svc%zu/users/{uid}/orders/{oid}"};
        paths[i] = malloc(64);
        snprintf(paths[i], 64, fmt[i % 4], i / 4);
        routes[i].paths = (const char *const *)&paths[i];
        routes[i].npaths = 1;
        routes[i].data = (void *)(uintptr_t)(i + 1);
    }
    paths[n] = strdup("~ ^/legacy/(?<page>[a-z]+)\\.php$");
    static const char *const get[] = {"GET"};
    routes[n].paths = (const char *const *)&paths[n];
    routes[n].npaths = 1;
    routes[n].methods = get;
    routes[n].nmethods = 1;
    struct pt_router *r = pt_router_build(routes, n + 1, NULL, NULL);
    free(routes);
    *storage = paths;
    return r;
}

enum workload { W_STATIC, W_PARAM, W_DEEP, W_PREFIX, W_MISS, W_REGEX, W_COUNT };
static const char *const wname[W_COUNT] = {"static", "param",      "param-deep",
                                           "prefix", "miss (404)", "regex"};

static void make_paths(enum workload w, size_t groups, char (*out)[96])
{
    for (size_t i = 0; i < NPATHS; i++) {
        size_t g = (i * 7919) % groups;
        switch (w) {
        case W_STATIC:
            snprintf(out[i], 96, "/svc%zu/items", g);
            break;
        case W_PARAM:
            snprintf(out[i], 96, "/svc%zu/items/%zu", g, i * 31);
            break;
        case W_DEEP:
            snprintf(out[i], 96, "/svc%zu/users/u%zu/orders/%zu", g, i, i * 3);
            break;
        case W_PREFIX:
            snprintf(out[i], 96, "/svc%zu/files/img/%zu.png", g, i);
            break;
        case W_MISS:
            snprintf(out[i], 96, "/nosuch%zu/items/x", g);
            break;
        default:
            snprintf(out[i], 96, "/legacy/page%c.php", (char)('a' + i % 26));
            break;
        }
    }
}

/*
 * Match `distinct` different paths in turn (16 stay in cache, 1024 spread
 * over the routes); the best of REPEAT rounds, to shrug off a noisy machine.
 */
static double bench_match(const struct pt_router *r, char (*paths)[96], size_t distinct,
                          size_t *checksum)
{
    struct pt_router_request req = {{"GET", 3}, {"example.com", 11}, {NULL, 0}, NULL, NULL};
    struct pt_router_match m;
    size_t lens[NPATHS], sum = 0;
    double best = 1e30;
    for (size_t i = 0; i < NPATHS; i++)
        lens[i] = strlen(paths[i]);
    for (int round = 0; round < REPEAT; round++) {
        double t0 = now_ns();
        for (size_t i = 0; i < ITERS / REPEAT; i++) {
            size_t k = i % distinct;
            req.path = (struct pt_str){paths[k], lens[k]};
            pt_router_match(r, &req, &m);
            sum += m.route + m.ncaptures;
        }
        double t = (now_ns() - t0) / (ITERS / REPEAT);
        best = t < best ? t : best;
    }
    *checksum += sum;
    return best;
}

static double bench_normalise(void)
{
    static const char *const in[] = {
        "/api/v1/users/12345/orders",
        "/static/css/site.min.css",
        "/a/./b/../c//d/%7Euser/%2e%2e/x",
        "/svc12/files/img/2024/10/01/photo%20one.png",
    };
    char out[128];
    size_t lens[4], sum = 0;
    for (size_t i = 0; i < 4; i++)
        lens[i] = strlen(in[i]);
    double best = 1e30;
    for (int round = 0; round < REPEAT; round++) {
        double t0 = now_ns();
        for (size_t i = 0; i < ITERS / REPEAT; i++)
            sum += (size_t)pt_path_normalize(in[i % 4], lens[i % 4], out);
        double t = (now_ns() - t0) / (ITERS / REPEAT);
        best = t < best ? t : best;
    }
    if (sum == 0)
        printf("?\n");
    return best;
}

int main(void)
{
    static char paths[NPATHS][96];
    static const size_t sizes[2] = {10, 10000};
    size_t checksum = 0;
    static const size_t distinct[2] = {16, NPATHS};
    double res[2][2][W_COUNT];
    for (int s = 0; s < 2; s++) {
        char **storage;
        double t0 = now_ns();
        struct pt_router *r = make_router(sizes[s], &storage);
        double tb = now_ns() - t0;
        if (r == NULL) {
            fprintf(stderr, "build failed\n");
            return 1;
        }
        printf("%zu routes: built in %.2f ms\n", sizes[s] + 1, tb / 1e6);
        for (int w = 0; w < W_COUNT; w++) {
            make_paths((enum workload)w, (sizes[s] + 3) / 4, paths);
            for (int d = 0; d < 2; d++)
                res[s][d][w] = bench_match(r, paths, distinct[d], &checksum);
        }
        pt_router_free(r);
        for (size_t i = 0; i < sizes[s] + 1; i++)
            free(storage[i]);
        free(storage);
    }
    printf("\nns per match       %-27s %-27s\n", "16 distinct paths (hot)", "1024 distinct paths");
    printf("%-18s %12s %14s %12s %14s\n", "", "11 routes", "10,001 routes", "11 routes",
           "10,001 routes");
    for (int w = 0; w < W_COUNT; w++)
        printf("%-18s %12.1f %14.1f %12.1f %14.1f\n", wname[w], res[0][0][w], res[1][0][w],
               res[0][1][w], res[1][1][w]);
    printf("\npt_path_normalize: %.1f ns per path (mixed, 26-45 bytes)\n", bench_normalise());
    pt_router_thread_cleanup();
    return checksum == 42; /* keep the work observable */
}
