#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "../../../src/http/reqid.c"

#define S(lit) pt_str_make((lit), sizeof(lit) - 1)

static void test_sane(void)
{
    char big[PT_REQID_MAX + 1];
    memset(big, 'a', sizeof(big));
    ok(pt_reqid_is_sane(S("abc-DEF_123.x")), "allowed characters");
    ok(pt_reqid_is_sane(S("a")), "one character");
    ok(pt_reqid_is_sane(pt_str_make(big, PT_REQID_MAX)), "128 characters");
    ok(!pt_reqid_is_sane(pt_str_make(big, PT_REQID_MAX + 1)), "129 characters");
    ok(!pt_reqid_is_sane(S("")), "empty");
    ok(!pt_reqid_is_sane(PT_STR_NULL), "null");
    const char *bad[] = {"a b", "a/b", "a:b", "a\"b", "a\nb", "a\x80", "{x}", "a+b", "a=b", "%41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ok(!pt_reqid_is_sane(pt_str_cstr(bad[i])), "rejects bad id %zu", i);
    ok(!pt_reqid_is_sane(S("a\0b")), "rejects NUL");
}

static int cmp_str32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static void test_generate(void)
{
    enum { N = 20000 };
    char(*ids)[32] = malloc(sizeof(*ids) * N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        pt_reqid_generate(ids[i]);
        if (!pt_reqid_is_sane(pt_str_make(ids[i], 32)))
            bad++;
        for (int k = 0; k < 32; k++)
            if (!((ids[i][k] >= '0' && ids[i][k] <= '9') || (ids[i][k] >= 'a' && ids[i][k] <= 'f')))
                bad++;
    }
    is_int(bad, 0, "generated ids are 32 lower-case hex characters");
    qsort(ids, N, 32, cmp_str32);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += memcmp(ids[i - 1], ids[i], 32) == 0;
    is_int(dups, 0, "%d ids, no duplicates", N);
    free(ids);

    /* the generator is roughly uniform: each bit is set about half the time */
    int counts[64] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t r = pt_random_u64();
        for (int b = 0; b < 64; b++)
            counts[b] += (int)(r >> b & 1);
    }
    int skewed = 0;
    for (int b = 0; b < 64; b++)
        skewed += counts[b] < 4700 || counts[b] > 5300; /* 6 sigma */
    is_int(skewed, 0, "every bit about 50%% set");
}

static void *thread_first(void *arg)
{
    *(uint64_t *)arg = pt_random_u64();
    return NULL;
}

static void test_threads_and_fork(void)
{
    uint64_t a = 0, b = 0;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, thread_first, &a);
    pthread_create(&t2, NULL, thread_first, &b);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    ok(a != b, "two threads get different streams");

    int fds[2];
    if (pipe(fds) != 0) {
        ok(0, "pipe");
        return;
    }
    (void)pt_random_u64(); /* parent is seeded */
    pid_t pid = fork();
    if (pid == 0) {
        uint64_t v = pt_random_u64();
        ssize_t w = write(fds[1], &v, sizeof(v));
        _exit(w == sizeof(v) ? 0 : 1);
    }
    uint64_t mine = pt_random_u64(), child = 0;
    ssize_t r = read(fds[0], &child, sizeof(child));
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
    is_int(r, sizeof(child), "child reported");
    ok(mine != child, "a forked child does not repeat the parent's numbers");
}

static int parse(const char *s, struct pt_traceparent *tp)
{
    return pt_traceparent_parse(pt_str_cstr(s), tp);
}

static const char *fmt(const struct pt_traceparent *tp)
{
    static char buf[PT_TRACEPARENT_LEN + 1];
    pt_traceparent_format(tp, buf);
    buf[PT_TRACEPARENT_LEN] = '\0';
    return buf;
}

static void test_traceparent_parse(void)
{
    struct pt_traceparent tp;
    const char *good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    is_int(parse(good, &tp), 0, "W3C example");
    is_int(tp.version, 0, "version");
    is_int(tp.trace_id[0], 0x4b, "trace id first byte");
    is_int(tp.trace_id[15], 0x36, "trace id last byte");
    is_int(tp.parent_id[0], 0x00, "parent id first byte");
    is_int(tp.parent_id[7], 0xb7, "parent id last byte");
    is_int(tp.flags, 1, "flags");
    is_str(fmt(&tp), good, "formats back identically");
    char hex[33] = {0};
    pt_trace_id_hex(&tp, hex);
    is_str(hex, "4bf92f3577b34da6a3ce929d0e0e4736", "trace id hex");

    is_int(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &tp), 0, "not sampled");
    is_int(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", &tp), 0,
           "unknown flags parse");
    is_int(tp.flags, 0xff, "flags kept on parse");

    /* higher versions: first four fields, then end or '-' */
    is_int(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &tp), 0,
           "version 01, same length");
    is_int(tp.version, 1, "version 01 recorded");
    is_int(
        parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds", &tp),
        0, "future version with more fields");
    is_int(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.future", &tp), -1,
           "future version: flags must be followed by '-'");
    is_int(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", &tp), -1,
           "future version shorter than 55");

    const char *bad[] = {
        "",
        "00",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* upper case */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* v00 must be 55 */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", /* dash moved */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        is_int(parse(bad[i], &tp), -1, "rejects \"%s\"", bad[i]);

    /* every truncation of a good value is invalid, and parse reads no further */
    int bad_prefix = 0;
    for (size_t n = 0; n < PT_TRACEPARENT_LEN; n++) {
        char *copy = malloc(n == 0 ? 1 : n); /* exact size: ASan catches overreads */
        memcpy(copy, good, n);
        bad_prefix += pt_traceparent_parse(pt_str_make(copy, n), &tp) != -1;
        free(copy);
    }
    is_int(bad_prefix, 0, "every prefix rejected");
}

static void test_traceparent_new(void)
{
    struct pt_traceparent a, b, c;
    static const uint8_t zero[16];
    pt_traceparent_new(&a, true);
    pt_traceparent_new(&b, false);
    is_int(a.version, 0, "new: version 00");
    is_int(a.flags, 1, "new: sampled");
    is_int(b.flags, 0, "new: not sampled");
    ok(memcmp(a.trace_id, b.trace_id, 16) != 0, "new traces differ");
    ok(memcmp(a.trace_id, zero, 16) != 0 && memcmp(a.parent_id, zero, 8) != 0, "ids not zero");

    struct pt_traceparent back;
    is_int(pt_traceparent_parse(pt_str_make(fmt(&a), PT_TRACEPARENT_LEN), &back), 0,
           "a new traceparent parses");
    ok(memcmp(&back, &a, sizeof(a)) == 0, "and round-trips");

    pt_traceparent_child(&a, &c);
    ok(memcmp(c.trace_id, a.trace_id, 16) == 0, "child keeps the trace id");
    ok(memcmp(c.parent_id, a.parent_id, 8) != 0, "child has a new span id");
    is_int(c.flags, 1, "child keeps sampled");

    struct pt_traceparent f;
    parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff-x", &f);
    pt_traceparent_child(&f, &c);
    is_int(c.version, 0, "child of a future version is sent as 00");
    is_int(c.flags, 0x03, "unknown flag bits cleared");
    is_int(c.trace_id[0], 0x4b, "trace id kept");

    c = a;
    pt_traceparent_child(&c, &c);
    ok(memcmp(c.trace_id, a.trace_id, 16) == 0, "child in place");

    const char *s = fmt(&a);
    int bad = 0;
    for (int i = 0; i < PT_TRACEPARENT_LEN; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            bad++;
    is_int(bad, 0, "formatted lower case");
}

int main(void)
{
    test_sane();
    test_generate();
    test_threads_and_fork();
    test_traceparent_parse();
    test_traceparent_new();
    return done_testing();
}
