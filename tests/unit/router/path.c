/*
 * Unit tests for the request-path normaliser (src/router/path.c).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../../../src/router/path.c"

#define INV "<invalid>"
#define ESC "<escapes>"

/* Normalise s out of place and in place; both must agree.  Returns a static string. */
static const char *norm(const char *s)
{
    static char out[1024];
    char in[1024], inplace[1024];
    size_t len = strlen(s);
    memcpy(in, s, len);
    memcpy(inplace, s, len);
    ssize_t n = pt_path_normalize(in, len, out);
    ssize_t n2 = pt_path_normalize(inplace, len, inplace);
    if (n != n2 || (n > 0 && memcmp(out, inplace, (size_t)n) != 0))
        return "<in-place differs>";
    if (n == PT_PATH_INVALID)
        return INV;
    if (n == PT_PATH_ESCAPES_ROOT)
        return ESC;
    if (n < 1 || (size_t)n > len)
        return "<bad length>";
    out[n] = '\0';
    return out;
}

static const struct {
    const char *in, *want;
} cases[] = {
    /* plain paths are untouched */
    {"/", "/"},
    {"/a", "/a"},
    {"/a/b", "/a/b"},
    {"/a/b/", "/a/b/"},
    {"/api/v1/users/7?x", "/api/v1/users/7?x"},
    {"/~user/a-b_c.d", "/~user/a-b_c.d"},
    /* merging */
    {"//", "/"},
    {"//a///b//", "/a/b/"},
    {"/a//b", "/a/b"},
    /* dot segments */
    {"/.", "/"},
    {"/./", "/"},
    {"/a/.", "/a/"},
    {"/a/./b", "/a/b"},
    {"/a/../b", "/b"},
    {"/a/b/..", "/a/"},
    {"/a/b/../", "/a/"},
    {"/a/..", "/"},
    {"/a/b/c/../../d", "/a/d"},
    {"/a//../b", "/b"},
    {"/a/./../b/./c/.", "/b/c/"},
    {"/..", ESC},
    {"/../", ESC},
    {"/../a", ESC},
    {"/a/../..", ESC},
    {"/a/b/../../../c", ESC},
    {"/./..", ESC},
    /* not dot segments */
    {"/...", "/..."},
    {"/a/.../b", "/a/.../b"},
    {"/.a/a./..a/a..", "/.a/a./..a/a.."},
    {"/..%2F", "/..%2F"},
    /* decoded dots count */
    {"/a/%2e/b", "/a/b"},
    {"/a/%2e%2e/b", "/b"},
    {"/a/%2E%2e", "/"},
    {"/a/.%2e/b", "/b"},
    {"/a/%2e./b", "/b"},
    {"/%2e%2e", ESC},
    {"/%2e%2e/x", ESC},
    /* unreserved characters are decoded */
    {"/%41%7a%30%2D%2e%5F%7E", "/Az0-._~"},
    {"/%61%62c", "/abc"},
    /* everything else stays escaped, hex upper-cased */
    {"/a%2fb", "/a%2Fb"},
    {"/a%2Fb/..", "/"},
    {"/a%2F..%2Fb", "/a%2F..%2Fb"},
    {"/%3a%3A%3b", "/%3A%3A%3B"},
    {"/%00", "/%00"},
    {"/%ff%Fe", "/%FF%FE"},
    {"/%25", "/%25"},
    {"/%252e", "/%252e"}, /* "%25" then a literal "2e" */
    {"/%20", "/%20"},
    /* invalid escapes */
    {"/%", INV},
    {"/a%", INV},
    {"/%4", INV},
    {"/%4/", INV},
    {"/%G1", INV},
    {"/%1g", INV},
    {"/%%41", INV},
    {"/a/%zz/..", INV},
    /* invalid bytes or shapes */
    {"", INV},
    {"a", INV},
    {"*", INV},
    {"a/b", INV},
    {"/a b", INV},
    {"/a\tb", INV},
    {"/a\x7f", INV},
    {"/a\x80", INV},
    {"/\xff", INV},
    {"/a/\x01/..", INV},
};

/* The output of a normalisation satisfies the invariants the router relies on. */
static bool well_formed(const char *p, size_t n)
{
    if (n == 0 || p[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '/')
            continue;
        size_t e = i + 1;
        while (e < n && p[e] != '/')
            e++;
        size_t len = e - i - 1;
        if (len == 0 && e < n) /* "//" */
            return false;
        if ((len == 1 && p[i + 1] == '.') || (len == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
            return false;
    }
    return true;
}

/* Every string over a small alphabet up to a length: idempotent, in-place safe, well formed. */
static void exhaustive(void)
{
    static const char alphabet[] = "/.a%2eF";
    const size_t k = sizeof(alphabet) - 1, maxlen = 7;
    size_t tried = 0, bad = 0;
    char in[16], out[16], again[16], inplace[16];
    for (size_t len = 1; len <= maxlen; len++) {
        size_t total = 1;
        for (size_t i = 1; i < len; i++)
            total *= k;
        for (size_t code = 0; code < total; code++) {
            size_t c = code;
            in[0] = '/';
            for (size_t i = 1; i < len; i++, c /= k)
                in[i] = alphabet[c % k];
            memcpy(inplace, in, len);
            ssize_t n = pt_path_normalize(in, len, out);
            ssize_t n2 = pt_path_normalize(inplace, len, inplace);
            tried++;
            if (n != n2 || (n > 0 && memcmp(out, inplace, (size_t)n) != 0)) {
                bad++;
                continue;
            }
            if (n < 0)
                continue;
            ssize_t n3 = pt_path_normalize(out, (size_t)n, again);
            if ((size_t)n > len || !well_formed(out, (size_t)n) || n3 != n ||
                memcmp(out, again, (size_t)n) != 0)
                bad++;
        }
    }
    is_int(bad, 0, "%zu generated paths: idempotent, in-place safe, well formed", tried);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        is_str(norm(cases[i].in), cases[i].want, "normalise \"%s\"", cases[i].in);

    /* a length that stops inside the buffer: bytes after len are never read */
    char buf[] = "/a/b/../c%zz";
    char out[sizeof(buf)];
    is_int(pt_path_normalize(buf, 9, out), 4, "only len bytes are read");
    ok(memcmp(out, "/a/c", 4) == 0, "... and give /a/c");

    /* a long path with many segments */
    char big[8192], bigout[8192];
    size_t n = 0;
    while (n + 4 < sizeof(big)) {
        memcpy(big + n, "/a/.", 4);
        n += 4;
    }
    ssize_t r = pt_path_normalize(big, n, bigout);
    ok(r > 0 && well_formed(bigout, (size_t)r), "long path with many dot segments");

    exhaustive();
    return done_testing();
}
