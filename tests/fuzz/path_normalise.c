/*
 * libFuzzer target for pt_path_normalize (src/router/path.c).
 *
 * Invariants checked on every input:
 *   - in place and out of place give the same result;
 *   - the result is PT_PATH_INVALID, PT_PATH_ESCAPES_ROOT, or a length in 1..len;
 *   - the output starts with '/', has only bytes 0x21-0x7E, no "//", no "." or ".."
 *     segment, and every '%' starts an upper-case escape of a reserved byte;
 *   - normalising the output again gives the same output (idempotent).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/path.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is a failure too */
}

static int unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void check_output(const char *p, size_t n)
{
    CHECK(n >= 1 && p[0] == '/');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        CHECK(c >= 0x21 && c <= 0x7e);
        if (c == '%') {
            CHECK(i + 2 < n);
            int hi = hexval(p[i + 1]), lo = hexval(p[i + 2]);
            CHECK(hi >= 0 && lo >= 0 && !unreserved(hi << 4 | lo));
        }
        if (c != '/')
            continue;
        size_t e = i + 1;
        while (e < n && p[e] != '/')
            e++;
        size_t len = e - i - 1;
        CHECK(len > 0 || e == n); /* no "//" */
        CHECK(!(len == 1 && p[i + 1] == '.'));
        CHECK(!(len == 2 && p[i + 1] == '.' && p[i + 2] == '.'));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    size_t cap = size ? size : 1;
    char *in = malloc(cap), *out = malloc(cap), *inplace = malloc(cap), *again = malloc(cap);
    CHECK(in && out && inplace && again);
    memcpy(in, data, size);
    memcpy(inplace, data, size);
    ssize_t n = pt_path_normalize(in, size, out);
    ssize_t n2 = pt_path_normalize(inplace, size, inplace);
    CHECK(n == n2);
    CHECK(memcmp(in, data, size) == 0); /* the input is not touched out of place */
    if (n < 0) {
        CHECK(n == PT_PATH_INVALID || n == PT_PATH_ESCAPES_ROOT);
    } else {
        CHECK((size_t)n <= size);
        CHECK(memcmp(out, inplace, (size_t)n) == 0);
        check_output(out, (size_t)n);
        ssize_t n3 = pt_path_normalize(out, (size_t)n, again);
        CHECK(n3 == n && memcmp(out, again, (size_t)n) == 0);
    }
    free(in);
    free(out);
    free(inplace);
    free(again);
    return 0;
}
