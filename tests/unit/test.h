/*
 * A tiny TAP producer for the C unit tests (after picotest).  Each test file
 * is a program: it calls ok()/is_int()/is_str() and ends with
 * `return done_testing();`, which exits non-zero when anything failed.
 */
#ifndef PT_TEST_H
#define PT_TEST_H

#include <stdio.h>
#include <string.h>

static int test_count, test_failed;

#define ok(cond, ...) test_ok_((cond) ? 1 : 0, __FILE__, __LINE__, #cond, __VA_ARGS__)

#define is_int(got, want, ...)                                                                     \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (!test_ok_(g_ == w_, __FILE__, __LINE__, #got " == " #want, __VA_ARGS__))               \
            printf("#   got %lld, want %lld\n", g_, w_);                                           \
    } while (0)

#define is_str(got, want, ...)                                                                     \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        int same_ = (g_ == NULL && w_ == NULL) || (g_ != NULL && w_ != NULL && !strcmp(g_, w_));   \
        if (!test_ok_(same_, __FILE__, __LINE__, #got " eq " #want, __VA_ARGS__))                  \
            printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");       \
    } while (0)

#define note(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

__attribute__((format(printf, 5, 6))) static int test_ok_(int pass, const char *file, int line,
                                                          const char *expr, const char *fmt, ...);

#include <stdarg.h>
static int test_ok_(int pass, const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    test_count++;
    printf("%s %d - ", pass ? "ok" : "not ok", test_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        test_failed++;
        printf("#   failed at %s:%d: %s\n", file, line, expr);
    }
    return pass;
}

static inline int done_testing(void)
{
    printf("1..%d\n", test_count);
    if (test_failed)
        printf("# %d of %d failed\n", test_failed, test_count);
    return test_failed ? 1 : 0;
}

#endif
