/*
 * Metrics: recording, the exact Prometheus text, summing across workers,
 * label escaping, and two threads recording while a third renders.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "test.h"

#define S(lit) PT_STR_LIT(lit)

static char *render(struct pt_metrics **w, size_t n, const struct pt_metrics_process *p)
{
    struct pt_buf b;
    pt_buf_init(&b);
    if (pt_metrics_render(w, n, p, &b) != 0)
        return NULL;
    char *s = malloc(pt_buf_len(&b) + 1);
    memcpy(s, pt_buf_head(&b), pt_buf_len(&b));
    s[pt_buf_len(&b)] = '\0';
    pt_buf_free(&b);
    return s;
}

/* The value on the line "series value" (series written exactly), or NULL. */
static const char *value(const char *text, const char *series)
{
    static char v[64];
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncmp(p, series, n) == 0 && p[n] == ' ') {
            size_t k = len - n - 1 < sizeof(v) - 1 ? len - n - 1 : sizeof(v) - 1;
            memcpy(v, p + n + 1, k);
            v[k] = '\0';
            return v;
        }
        p = eol != NULL ? eol + 1 : NULL;
    }
    return NULL;
}

static int lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_empty(void)
{
    struct pt_metrics *m = pt_metrics_new();
    struct pt_metrics_process p = {.connections_active = 7,
                                   .reloads_ok = 2,
                                   .reloads_failed = 1,
                                   .config_version = 3,
                                   .uptime_s = 12.5};
    char *t = render(&m, 1, &p);
    ok(t != NULL, "render an empty worker");
    ok(strstr(t, "# TYPE portico_requests_total counter\n") != NULL, "TYPE line for requests");
    ok(strstr(t, "# TYPE portico_request_duration_seconds histogram\n") != NULL,
       "TYPE line for the duration histogram");
    ok(strstr(t, "# TYPE portico_upstream_duration_seconds histogram\n") != NULL,
       "TYPE line for the upstream histogram");
    is_str(value(t, "portico_connections_active"), "7", "connections gauge");
    is_str(value(t, "portico_config_reloads_total{result=\"ok\"}"), "2", "reloads ok");
    is_str(value(t, "portico_config_reloads_total{result=\"error\"}"), "1", "reloads error");
    is_str(value(t, "portico_config_version"), "3", "config version");
    is_str(value(t, "portico_uptime_seconds"), "12.500", "uptime");
    ok(value(t, "portico_requests_total") == NULL && lines_with(t, "portico_requests_total{") == 0,
       "no request series before any request");
    ok(t[strlen(t) - 1] == '\n', "ends with a newline");
    free(t);
    t = render(NULL, 0, NULL);
    ok(t != NULL && strstr(t, "portico_connections_active 0\n") != NULL, "no workers, no process");
    free(t);
    pt_metrics_free(m);
    pt_metrics_free(NULL);
    pt_metrics_request(NULL, S("r"), S("s"), S(""), 200, 1, 1, 1); /* a NULL recorder is a no-op */
    pt_metrics_upstream(NULL, S("s"), S("t"), 200, 1);
}

static void test_exact(void)
{
    struct pt_metrics *w[2] = {pt_metrics_new(), pt_metrics_new()};
    /* worker 0: 2 x 200 in 0.5 ms, 1 x 404 in 3 ms; worker 1: 1 x 200, 1 x 404, 1 unmatched */
    pt_metrics_request(w[0], S("users"), S("svc"), S(""), 200, 500, 100, 1000);
    pt_metrics_request(w[0], S("users"), S("svc"), S(""), 200, 500, 100, 1000);
    pt_metrics_request(w[0], S("users"), S("svc"), PT_STR_NULL, 404, 3000, 50, 10);
    pt_metrics_request(w[1], S("users"), S("svc"), S(""), 200, 1000, 100, 1000);
    pt_metrics_request(w[1], S("users"), S("svc"), S(""), 404, 12000000, 50, 10);
    pt_metrics_request(w[1], PT_STR_NULL, PT_STR_NULL, PT_STR_NULL, 404, 250, 30, 200);
    pt_metrics_request(w[1], S("users"), S("svc"), S("alice"), 200, 2500, 1, 2);
    pt_metrics_upstream(w[0], S("svc"), S("127.0.0.1:9001"), 200, 1500);
    pt_metrics_upstream(w[1], S("svc"), S("127.0.0.1:9001"), 200, 10000000);
    pt_metrics_upstream(w[1], S("svc"), S("127.0.0.1:9002"), 0, 10000001);
    pt_metrics_upstream(w[0], S("svc"), S("127.0.0.1:9001"), 502, 1);
    char *t = render(w, 2, NULL);
    ok(t != NULL, "render two workers");

    is_str(value(t, "portico_requests_total{route=\"users\",service=\"svc\",status=\"200\"}"), "3",
           "200s summed across workers");
    is_str(value(t, "portico_requests_total{route=\"users\",service=\"svc\",status=\"404\"}"), "2",
           "404s summed; a NULL consumer is the empty one");
    is_str(value(t, "portico_requests_total{route=\"users\",service=\"svc\",consumer=\"alice\","
                    "status=\"200\"}"),
           "1", "a consumer gets its own series and label");
    is_str(value(t, "portico_requests_total{route=\"\",service=\"\",status=\"404\"}"), "1",
           "unmatched requests: route=\"\" service=\"\"");
    is_int(lines_with(t, "portico_requests_total{"), 4, "four request series");

    const char *h = "portico_request_duration_seconds";
    char key[256];
#define BUCKET(le)                                                                                 \
    (snprintf(key, sizeof(key), "%s_bucket{route=\"users\",service=\"svc\",le=\"%s\"}", h, le), key)
    is_str(value(t, BUCKET("0.001")), "3", "le=0.001: 500us, 500us, 1000us (bounds inclusive)");
    is_str(value(t, BUCKET("0.0025")), "4", "le=0.0025 adds 2500us");
    is_str(value(t, BUCKET("0.005")), "5", "le=0.005 adds 3ms");
    is_str(value(t, BUCKET("10")), "5", "le=10");
    is_str(value(t, BUCKET("+Inf")), "6", "+Inf counts the 12 s one");
#undef BUCKET
    is_str(value(t, "portico_request_duration_seconds_count{route=\"users\",service=\"svc\"}"), "6",
           "_count = +Inf (consumers and statuses merged)");
    is_str(value(t, "portico_request_duration_seconds_sum{route=\"users\",service=\"svc\"}"),
           "12.007500", "_sum exact in seconds");
    is_str(value(t, "portico_request_duration_seconds_count{route=\"\",service=\"\"}"), "1",
           "unmatched histogram");
    is_int(lines_with(t, "portico_request_duration_seconds_bucket{route=\"users\""), 14,
           "13 bounds + +Inf");
    is_str(value(t, "portico_bytes_received_total{route=\"users\",service=\"svc\"}"), "401",
           "bytes received per route");
    is_str(value(t, "portico_bytes_sent_total{route=\"users\",service=\"svc\"}"), "3022",
           "bytes sent per route");
    is_str(value(t, "portico_bytes_sent_total{route=\"\",service=\"\"}"), "200", "bytes unmatched");

    is_str(value(t, "portico_upstream_requests_total{service=\"svc\",target=\"127.0.0.1:9001\","
                    "status=\"200\"}"),
           "2", "upstream 200s summed");
    is_str(value(t, "portico_upstream_requests_total{service=\"svc\",target=\"127.0.0.1:9001\","
                    "status=\"502\"}"),
           "1", "upstream 502");
    is_str(value(t, "portico_upstream_requests_total{service=\"svc\",target=\"127.0.0.1:9002\","
                    "status=\"0\"}"),
           "1", "a failed attempt is status 0");
    is_str(value(t, "portico_upstream_duration_seconds_bucket{service=\"svc\",target=\"127.0.0.1:"
                    "9001\",le=\"0.001\"}"),
           "1", "upstream le=0.001");
    is_str(value(t, "portico_upstream_duration_seconds_bucket{service=\"svc\",target=\"127.0.0.1:"
                    "9001\",le=\"10\"}"),
           "3", "upstream le=10 (exactly 10 s is inside)");
    is_str(value(t, "portico_upstream_duration_seconds_bucket{service=\"svc\",target=\"127.0.0.1:"
                    "9002\",le=\"10\"}"),
           "0", "10.000001 s is above 10");
    is_str(value(t, "portico_upstream_duration_seconds_sum{service=\"svc\",target=\"127.0.0.1:"
                    "9001\"}"),
           "10.001501", "upstream sum");
    is_str(value(t, "portico_upstream_duration_seconds_count{service=\"svc\",target=\"127.0.0.1:"
                    "9002\"}"),
           "1", "upstream count");

    /* every sample line is NAME{labels} VALUE or NAME VALUE, and every family has HELP and TYPE */
    int bad = 0;
    for (char *line = t; *line != '\0';) {
        char *eol = strchr(line, '\n');
        if (eol == NULL) {
            bad++;
            break;
        }
        if (line[0] != '#') {
            char *sp = memchr(line, ' ', (size_t)(eol - line));
            bad += sp == NULL || strncmp(line, "portico_", 8) != 0;
        }
        line = eol + 1;
    }
    is_int(bad, 0, "every line is well-formed");
    is_int(lines_with(t, "# HELP "), lines_with(t, "# TYPE "), "a HELP for every TYPE");
    free(t);
    pt_metrics_free(w[0]);
    pt_metrics_free(w[1]);
}

static void test_escaping_and_limits(void)
{
    struct pt_metrics *m = pt_metrics_new();
    pt_metrics_request(m, S("a\"b\\c\nd"), S("s"), S("x\"y"), 200, 1, 0, 0);
    pt_metrics_request(m, S("r"), S("s"), S(""), 1000, 1, 0, 0);
    pt_metrics_request(m, S("r"), S("s"), S(""), -5, 1, 0, 0);
    char longname[3000];
    memset(longname, 'x', sizeof(longname));
    pt_metrics_upstream(m, pt_str_make(longname, sizeof(longname)), S("t"), 200, 1);
    char *t = render(&m, 1, NULL);
    is_str(
        value(t,
              "portico_requests_total{route=\"a\\\"b\\\\c\\nd\",service=\"s\",consumer=\"x\\\"y\","
              "status=\"200\"}"),
        "1", "label values escape \\ \" and newline");
    is_str(value(t, "portico_requests_total{route=\"r\",service=\"s\",status=\"0\"}"), "2",
           "statuses outside 0-999 count as 0");
    char want[1200];
    snprintf(want, sizeof(want),
             "portico_upstream_requests_total{service=\"%.1024s\",target=\"t\",status=\"200\"}",
             longname);
    is_str(value(t, want), "1", "label values are cut at 1024 bytes");
    free(t);
    pt_metrics_free(m);
}

/* Recording an existing label set allocates nothing: it works with every allocation failing. */
static void test_no_alloc_in_steady_state(void)
{
    struct pt_metrics *m = pt_metrics_new();
    pt_metrics_request(m, S("r"), S("s"), S(""), 200, 10, 1, 1);
    pt_metrics_upstream(m, S("s"), S("t"), 200, 10);
    pt__fail_alloc_percent = 100;
    for (int i = 0; i < 1000; i++) {
        pt_metrics_request(m, S("r"), S("s"), S(""), 200, 10, 1, 1);
        pt_metrics_upstream(m, S("s"), S("t"), 200, 10);
    }
    pt_metrics_request(m, S("new"), S("s"), S(""), 200, 10, 1, 1); /* needs memory: dropped */
    pt__fail_alloc_percent = 0;
    char *t = render(&m, 1, NULL);
    is_str(value(t, "portico_requests_total{route=\"r\",service=\"s\",status=\"200\"}"), "1001",
           "1000 requests recorded while every allocation fails");
    is_str(value(t, "portico_upstream_requests_total{service=\"s\",target=\"t\",status=\"200\"}"),
           "1001", "upstream too");
    is_str(value(t, "portico_metrics_series_dropped_total"), "1",
           "a new label set without memory is counted as dropped");
    free(t);
    pt_metrics_free(m);
}

/* Many label sets: the private index grows and every series stays reachable. */
static void test_many_series(void)
{
    struct pt_metrics *m = pt_metrics_new();
    char name[32];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 2000; i++) {
            int n = snprintf(name, sizeof(name), "route-%d", i);
            pt_metrics_request(m, pt_str_make(name, (size_t)n), S("s"), S(""), 200 + i % 3, 1, 0,
                               0);
        }
    char *t = render(&m, 1, NULL);
    is_int(lines_with(t, "portico_requests_total{"), 2000, "2000 series");
    is_str(value(t, "portico_requests_total{route=\"route-1999\",service=\"s\",status=\"201\"}"),
           "2", "each counted twice");
    free(t);
    pt_metrics_free(m);
}

/* ---- concurrency: two writers, one scraper ---- */

#define PER_THREAD 200000

struct writer {
    struct pt_metrics *m;
    atomic_int *started;
};

static void *write_loop(void *arg)
{
    struct writer *wr = arg;
    atomic_fetch_add(wr->started, 1);
    for (int i = 0; i < PER_THREAD; i++) {
        /* new label sets keep appearing while the scraper walks the lists */
        char route[16];
        int n = snprintf(route, sizeof(route), "r%d", i % 50);
        pt_metrics_request(wr->m, pt_str_make(route, (size_t)n), S("s"), S(""), 200,
                           (uint64_t)(i % 20000), 1, 2);
        pt_metrics_upstream(wr->m, S("s"), S("t"), i % 2 ? 200 : 0, (uint64_t)(i % 3000));
    }
    return NULL;
}

/* Within one scrape: cumulative buckets never decrease and +Inf equals _count. */
static int check_histograms(const char *t)
{
    int bad = 0;
    unsigned long long prev = 0;
    for (const char *p = t; *p != '\0';) {
        const char *eol = strchr(p, '\n');
        if (strncmp(p, "portico_request_duration_seconds_bucket{", 40) == 0) {
            const char *sp = strrchr(p, ' ');
            unsigned long long v = strtoull(sp + 1, NULL, 10);
            if (strstr(p, "le=\"0.001\"") != NULL && strstr(p, "le=\"0.001\"") < eol)
                prev = 0;
            bad += v < prev;
            prev = v;
        }
        if (strncmp(p, "portico_request_duration_seconds_count{", 39) == 0) {
            unsigned long long v = strtoull(strrchr(p, ' ') + 1, NULL, 10);
            bad += v != prev;
        }
        p = eol + 1;
    }
    return bad;
}

static void test_threads(void)
{
    struct pt_metrics *w[2] = {pt_metrics_new(), pt_metrics_new()};
    atomic_int started = 0;
    struct writer wr[2] = {{w[0], &started}, {w[1], &started}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, write_loop, &wr[i]);
    while (atomic_load(&started) < 2)
        ;
    int scrapes = 0, bad = 0;
    unsigned long long last = 0;
    for (; scrapes < 200; scrapes++) {
        char *t = render(w, 2, NULL);
        bad += check_histograms(t);
        const char *v =
            value(t, "portico_upstream_requests_total{service=\"s\",target=\"t\",status=\"200\"}");
        unsigned long long now = v != NULL ? strtoull(v, NULL, 10) : 0;
        bad += now < last; /* counters never go back */
        last = now;
        free(t);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    is_int(bad, 0, "%d scrapes during recording: histograms consistent, counters monotonic",
           scrapes);
    char *t = render(w, 2, NULL);
    is_str(value(t, "portico_upstream_requests_total{service=\"s\",target=\"t\",status=\"200\"}"),
           "200000", "every upstream 200 of both threads");
    is_str(value(t, "portico_upstream_requests_total{service=\"s\",target=\"t\",status=\"0\"}"),
           "200000", "every upstream failure of both threads");
    is_str(value(t, "portico_requests_total{route=\"r7\",service=\"s\",status=\"200\"}"), "8000",
           "one route's requests of both threads");
    is_str(value(t, "portico_bytes_sent_total{route=\"r7\",service=\"s\"}"), "16000", "its bytes");
    is_int(lines_with(t, "portico_requests_total{"), 50, "50 series after the merge");
    free(t);
    pt_metrics_free(w[0]);
    pt_metrics_free(w[1]);
}

int main(void)
{
    test_empty();
    test_exact();
    test_escaping_and_limits();
    test_no_alloc_in_steady_state();
    test_many_series();
    test_threads();
    return done_testing();
}
