/*
 * Durations, sizes, booleans, integers, ${ENV} interpolation, did-you-mean.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "core/arena.h"
#include "config/value.h"

static struct pt_str S(const char *s) {
    return pt_str_cstr(s);
}

static void
test_duration(void)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } good[] = {
        {"250ms", 250},
        {"5s", 5000},
        {"2m", 120000},
        {"1h", 3600000},
        {"1d", 86400000},
        {"0", 0},
        {"0s", 0},
        {"1h30m", 5400000},
        {"1m30s500ms", 90500},
        {"10ms", 10},
        {"18446744073709551ms", 18446744073709551u},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t ms = 1;
        const char *err = NULL;
        int rc = pt_conf_parse_duration(S(good[i].in), &ms, &err);
        is_int(rc, 0, "duration %s parses", good[i].in);
        is_int(ms, good[i].ms, "duration %s = %llu ms", good[i].in, (unsigned long long)good[i].ms);
    }
    static const struct {
        const char *in;
        const char *err;
    } bad[] = {
        {"5", "duration needs a unit, e.g. 5s or 250ms"},
        {"250", "duration needs a unit, e.g. 5s or 250ms"},
        {"", "empty duration"},
        {"s", "expected a number"},
        {"5x", "unknown duration unit (use ms, s, m, h or d)"},
        {"5S", "unknown duration unit (use ms, s, m, h or d)"},
        {"1.5s", "fractions are not supported; use a smaller unit, e.g. 1500ms"},
        {"-5s", "expected a number"},
        {" 5s", "expected a number"},
        {"5s ", "expected a number"},
        {"5 s", "unknown duration unit (use ms, s, m, h or d)"},
        {"1h30", "duration needs a unit, e.g. 5s or 250ms"},
        {"99999999999999999999d", "duration is too large"},
        {"999999999999999d", "duration is too large"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ms = 0;
        const char *err = NULL;
        int rc = pt_conf_parse_duration(S(bad[i].in), &ms, &err);
        is_int(rc, -1, "duration \"%s\" is rejected", bad[i].in);
        is_str(err, bad[i].err, "duration \"%s\": message", bad[i].in);
    }
}

static void test_size(void)
{
    static const struct {
        const char *in;
        uint64_t n;
    } good[] = {
        {"512", 512},       {"0", 0},
        {"16k", 16384},     {"16K", 16384},
        {"10m", 10485760},  {"10M", 10485760},
        {"1g", 1073741824}, {"2G", 2147483648u},
        {"1024k", 1048576}, {"18446744073709551615", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t n = 1;
        const char *err = NULL;
        is_int(pt_conf_parse_size(S(good[i].in), &n, &err), 0, "size %s parses", good[i].in);
        ok(n == good[i].n, "size %s = %llu", good[i].in, (unsigned long long)good[i].n);
    }
    const char *bad[] = {
        "", "k", "16kb", "16t", "1.5m", "-1", "16 k", "18446744073709551616", "17179869184g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t n;
        const char *err = NULL;
        is_int(pt_conf_parse_size(S(bad[i]), &n, &err), -1, "size \"%s\" is rejected", bad[i]);
        ok(err != NULL && err[0] != '\0', "size \"%s\": %s", bad[i], err ? err : "(none)");
    }
}

static void test_bool_uint(void)
{
    bool b = false;
    is_int(pt_conf_parse_bool(S("true"), &b), 0, "true");
    ok(b, "true is true");
    is_int(pt_conf_parse_bool(S("False"), &b), 0, "False");
    ok(!b, "False is false");
    is_int(pt_conf_parse_bool(S("yes"), &b), -1, "yes is not a boolean");
    is_int(pt_conf_parse_bool(S("1"), &b), -1, "1 is not a boolean");
    is_int(pt_conf_parse_bool(S("tRue"), &b), -1, "tRue is not a boolean");
    uint64_t v = 0;
    is_int(pt_conf_parse_uint(S("42"), &v), 0, "42");
    is_int(v, 42, "42 value");
    is_int(pt_conf_parse_uint(S("+42"), &v), -1, "+42 rejected");
    is_int(pt_conf_parse_uint(S("0x10"), &v), -1, "hex rejected");
    is_int(pt_conf_parse_uint(S("18446744073709551616"), &v), -1, "overflow rejected");
    is_int(pt_conf_parse_uint(S(""), &v), -1, "empty rejected");
}

/* --- interpolation ------------------------------------------------------- */

static const char *fake_env(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "HOST") == 0)
        return "example.com";
    if (strcmp(name, "PORT") == 0)
        return "8080";
    if (strcmp(name, "EMPTY") == 0)
        return "";
    if (strcmp(name, "DOLLAR") == 0)
        return "${HOST}";
    return NULL;
}

struct errs {
    int n;
    size_t off[8];
    char msg[8][200];
};

static void collect(void *ctx, size_t off, const char *message)
{
    struct errs *e = ctx;
    if (e->n < 8) {
        e->off[e->n] = off;
        snprintf(e->msg[e->n], sizeof(e->msg[0]), "%s", message);
    }
    e->n++;
}

static const struct pt_conf_env env = {fake_env, NULL};

static void expands(const char *in, const char *want)
{
    struct pt_arena a;
    pt_arena_init(&a);
    struct errs e = {0};
    struct pt_str out;
    int rc = pt_conf_expand_env(&a, in, strlen(in), &env, &out, collect, &e);
    is_int(rc, 0, "\"%s\" expands", in);
    is_int(e.n, 0, "\"%s\": no errors", in);
    char buf[256];
    snprintf(buf, sizeof(buf), "%.*s", (int)out.len, out.ptr);
    is_str(buf, want, "\"%s\" expands as expected", in);
    pt_arena_destroy(&a);
}

static void fails(const char *in, size_t off, const char *msg_part)
{
    struct pt_arena a;
    pt_arena_init(&a);
    struct errs e = {0};
    struct pt_str out;
    int rc = pt_conf_expand_env(&a, in, strlen(in), &env, &out, collect, &e);
    is_int(rc, -1, "\"%s\" fails", in);
    ok(e.n >= 1, "\"%s\": error reported", in);
    if (e.n >= 1) {
        is_int(e.off[0], off, "\"%s\": at offset %zu", in, off);
        ok(strstr(e.msg[0], msg_part) != NULL, "\"%s\": \"%s\" mentions \"%s\"", in, e.msg[0],
           msg_part);
    }
    ok(out.ptr == in, "\"%s\": output is the input on failure", in);
    pt_arena_destroy(&a);
}

static void test_expand(void)
{
    expands("plain", "plain");
    expands("", "");
    expands("${HOST}", "example.com");
    expands("${HOST}:${PORT}", "example.com:8080");
    expands("http://${HOST}:${PORT}/x", "http://example.com:8080/x");
    expands("${MISSING:-fallback}", "fallback");
    expands("${MISSING:-}", "");
    expands("${EMPTY:-dflt}", "dflt");
    expands("${EMPTY}", "");
    expands("${HOST:-dflt}", "example.com");
    expands("${MISSING:-a:b-c}", "a:b-c");
    expands("$${HOST}", "${HOST}");
    expands("a$${HOST}b${PORT}", "a${HOST}b8080");
    expands("$HOST", "$HOST");
    expands("cost: $5", "cost: $5");
    expands("$$", "$$");
    expands("$", "$");
    expands("$$$${X}", "$$${X}");
    expands("${DOLLAR}", "${HOST}"); /* one pass: values are not expanded again */
    expands("${_U:-u}", "u");

    fails("${MISSING}", 0, "MISSING is not set");
    fails("x ${MISSING} y", 2, "MISSING is not set");
    fails("${HOST", 0, "unterminated");
    fails("${}", 0, "empty variable name");
    fails("${1ABC}", 0, "invalid variable name");
    fails("${A B}", 0, "expected '}' or ':-'");
    fails("${A:?err}", 0, "expected '}' or ':-'");
    fails("${A:-${B}}", 5, "nested");
    fails("ok ${HOST} ${NOPE:-x} ${NOPE2}", 22, "NOPE2");

    /* every problem in one scalar is reported */
    struct pt_arena a;
    pt_arena_init(&a);
    struct errs e = {0};
    struct pt_str out;
    const char *in = "${A}/${B}/${HOST}/${";
    is_int(pt_conf_expand_env(&a, in, strlen(in), &env, &out, collect, &e), -1, "three problems");
    is_int(e.n, 3, "all three reported");
    is_int(e.off[0], 0, "first at 0");
    is_int(e.off[1], 5, "second at 5");
    is_int(e.off[2], 18, "third at 18");
    pt_arena_destroy(&a);

    /* the real environment by default */
    setenv("PT_TEST_VALUE_ENV", "from-env", 1);
    pt_arena_init(&a);
    e.n = 0;
    in = "<${PT_TEST_VALUE_ENV}>";
    is_int(pt_conf_expand_env(&a, in, strlen(in), NULL, &out, collect, &e), 0, "getenv default");
    ok(out.len == 10 && memcmp(out.ptr, "<from-env>", 10) == 0, "getenv value used");
    pt_arena_destroy(&a);
}

static void test_suggest(void)
{
    is_int(pt_conf_edit_distance("retries", "retries"), 0, "same word");
    is_int(pt_conf_edit_distance("retires", "retries"), 1, "transposition counts as one");
    is_int(pt_conf_edit_distance("kitten", "sitting"), 3, "kitten/sitting");
    is_int(pt_conf_edit_distance("", "abc"), 3, "empty");
    is_int(pt_conf_edit_distance("LISTEN", "listen"), 0, "case-insensitive");
    const char *keys[] = {"targets", "protocol", "balance", "hash_on", "retries", NULL, "timeouts"};
    size_t n = sizeof(keys) / sizeof(keys[0]);
    is_str(pt_conf_suggest("retires", keys, n), "retries", "retires -> retries");
    is_str(pt_conf_suggest("target", keys, n), "targets", "target -> targets");
    is_str(pt_conf_suggest("timeout", keys, n), "timeouts", "timeout -> timeouts");
    is_str(pt_conf_suggest("protcol", keys, n), "protocol", "protcol -> protocol");
    ok(pt_conf_suggest("zzzzzz", keys, n) == NULL, "no suggestion for nonsense");
    ok(pt_conf_suggest("x", keys, n) == NULL, "no suggestion for a short unrelated word");
}

int main(void)
{
    test_duration();
    test_size();
    test_bool_uint();
    test_expand();
    test_suggest();
    return done_testing();
}
