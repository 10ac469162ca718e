/*
 * Metrics micro-benchmark: nanoseconds per pt_metrics_request() and
 * pt_metrics_upstream() in steady state (label sets already seen), for a
 * worker that serves 1 route and one that rotates over 200 routes x 3
 * statuses; plus one pt_clock_us() (the clock read added per request) and a
 * /metrics render of 600 series from 2 workers.  Results go in
 * docs/metrics.md.
 *
 * Built on demand, against the release library:
 *
 *   make build/libportico.a
 *   cc -O2 -std=c17 -D_GNU_SOURCE -Iinclude -Isrc bench/metrics_bench.c build/libportico.a \
 *       -pthread -o build/metrics_bench
 *   build/metrics_bench
 *
 * For an instruction count: valgrind --tool=callgrind build/metrics_bench 1
 * (argument 1: a single short run) and divide pt_metrics_request's inclusive
 * Ir by its calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/loop.h"
#include "core/metrics.h"

#define ROUTES 200
#define REPEAT 5

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static struct pt_str names[ROUTES];
static const int statuses[3] = {200, 404, 502};

static double bench_requests(struct pt_metrics *m, long iters, int nroutes)
{
    double best = 1e30;
    for (int r = 0; r < REPEAT; r++) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            int k = (int)(i % nroutes);
            pt_metrics_request(m, names[k], PT_STR_LIT("users-service"), PT_STR_NULL,
                               statuses[(i / nroutes) % 3], (uint64_t)(i & 0xffff), 180, 420);
        }
        double ns = (now_ns() - t0) / (double)iters;
        best = ns < best ? ns : best;
    }
    return best;
}

static double bench_upstream(struct pt_metrics *m, long iters)
{
    double best = 1e30;
    for (int r = 0; r < REPEAT; r++) {
        double t0 = now_ns();
        for (long i = 0; i < iters; i++)
            pt_metrics_upstream(m, PT_STR_LIT("users-service"), PT_STR_LIT("127.0.0.1:9001"), 200,
                                (uint64_t)(i & 0xffff));
        double ns = (now_ns() - t0) / (double)iters;
        best = ns < best ? ns : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? 20000 : 5000000;
    char buf[ROUTES][32];
    for (int i = 0; i < ROUTES; i++) {
        int n = snprintf(buf[i], sizeof(buf[i]), "route-%03d", i);
        names[i] = pt_str_make(buf[i], (size_t)n);
    }
    struct pt_metrics *w[2] = {pt_metrics_new(), pt_metrics_new()};
    for (int i = 0; i < ROUTES * 3; i++) /* warm: every label set exists */
        pt_metrics_request(w[0], names[i % ROUTES], PT_STR_LIT("users-service"), PT_STR_NULL,
                           statuses[i / ROUTES], 1, 1, 1);
    printf("pt_metrics_request, 1 label set:         %6.1f ns\n", bench_requests(w[0], iters, 1));
    printf("pt_metrics_request, 600 label sets:      %6.1f ns\n",
           bench_requests(w[0], iters, ROUTES));
    printf("pt_metrics_upstream, 1 label set:        %6.1f ns\n", bench_upstream(w[0], iters));
    double t0 = now_ns();
    uint64_t sink = 0;
    for (long i = 0; i < iters; i++)
        sink += pt_clock_us();
    printf("pt_clock_us (clock_gettime, vDSO):       %6.1f ns\n", (now_ns() - t0) / (double)iters);
    bench_requests(w[1], 20000, ROUTES);
    struct pt_buf out;
    pt_buf_init(&out);
    t0 = now_ns();
    int renders = argc > 1 ? 1 : 50;
    for (int i = 0; i < renders; i++) {
        pt_buf_free(&out);
        pt_metrics_render(w, 2, NULL, &out);
    }
    printf("render, 2 workers x 600 series:          %6.2f ms, %zu bytes\n",
           (now_ns() - t0) / renders / 1e6, pt_buf_len(&out));
    pt_buf_free(&out);
    pt_metrics_free(w[0]);
    pt_metrics_free(w[1]);
    return sink == 42 ? 1 : 0;
}
