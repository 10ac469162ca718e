/*
 * Chunked decoder.  Every valid body is decoded whole, split in two at every
 * offset, and one byte at a time; each call gets an exact-size copy of its
 * input so ASan sees any read past it.  Bytes after the body must never be
 * consumed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "portico/status.h"
#include "core/compiler.h"
#include "http/chunked.h"

#define IN(s) s, sizeof(s) - 1

struct result {
    ssize_t rc;      /* last decode result: >= 0 or PT_PARSE_INVALID */
    bool done;       /* c.done at the end */
    size_t consumed; /* bytes consumed in total */
    size_t out_len;  /* payload bytes gathered */
    bool views_ok;   /* every payload view lay within the bytes consumed by its call */
    char out[1 << 16];
};

/*
 * Feeds in[0..len) the way a connection would: the bytes received so far
 * grow by `step` (a split point when step is SIZE_MAX-ish), and after each
 * arrival the decoder is called until it has consumed everything it was
 * given or is done.
 */
static void feed(const char *in, size_t len, const size_t *cuts, size_t ncuts, struct result *r)
{
    struct pt_chunked c;
    size_t received = 0, pos = 0, cut = 0;
    pt_chunked_init(&c);
    memset(r, 0, offsetof(struct result, out));
    r->views_ok = true;

    for (;;) {
        size_t next = cut < ncuts ? cuts[cut++] : len;
        if (next > len)
            next = len;
        if (next < received)
            continue;
        received = next;
        while (pos < received && !c.done) {
            size_t n = received - pos;
            char *b = malloc(n);
            struct pt_str data;
            if (b == NULL)
                abort();
            memcpy(b, in + pos, n);
            r->rc = pt_chunked_decode(&c, b, n, &data);
            if (r->rc < 0) {
                free(b);
                r->consumed = pos;
                return;
            }
            if ((size_t)r->rc > n || data.len > (size_t)r->rc ||
                (data.len > 0 && (data.ptr < b || data.ptr + data.len > b + r->rc)))
                r->views_ok = false;
            if (data.len > 0 && r->out_len + data.len <= sizeof(r->out)) {
                memcpy(r->out + r->out_len, data.ptr, data.len);
                r->out_len += data.len;
            }
            free(b);
            if (r->rc == 0)
                break;
            pos += (size_t)r->rc;
        }
        if (c.done || received == len)
            break;
    }
    r->done = c.done;
    r->consumed = pos;
}

static void feed_whole(const char *in, size_t len, struct result *r)
{
    feed(in, len, NULL, 0, r);
}

static void feed_split(const char *in, size_t len, size_t at, struct result *r)
{
    feed(in, len, &at, 1, r);
}

static void feed_bytes(const char *in, size_t len, struct result *r)
{
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    if (cuts == NULL)
        abort();
    for (size_t i = 0; i <= len; i++)
        cuts[i] = i;
    feed(in, len, cuts, len + 1, r);
    free(cuts);
}

/* ---- valid bodies -------------------------------------------------------- */

struct ok_case {
    const char *name;
    const char *in;
    size_t len;
    const char *payload;
    size_t payload_len;
    size_t body_len; /* bytes of in that belong to the body; the rest must stay */
};

#define TAIL "GET / HTTP/1.1\r\n"
#define OK(name, body, payload)                                                                    \
    {                                                                                              \
        name, IN(body TAIL), IN(payload), sizeof(body) - 1                                         \
    }

static const struct ok_case valid[] = {
    OK("one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"),
    OK("empty body", "0\r\n\r\n", ""),
    OK("two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"),
    OK("upper and lower case hex", "A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n",
       "0123456789abcdefghijk"),
    OK("leading zeros and 000 last chunk", "0005\r\nhello\r\n000\r\n\r\n", "hello"),
    OK("sixteen digits", "0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n", "hello"),
    OK("CRLF inside the data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"),
    OK("binary data", "3\r\n\0\xff\n\r\n0\r\n\r\n", "\0\xff\n"),
    OK("extension name", "5;foo\r\nhello\r\n0;bar\r\n\r\n", "hello"),
    OK("extension with token value", "5;foo=bar\r\nhello\r\n0\r\n\r\n", "hello"),
    OK("several extensions", "5;a;b=c;d=\"e\"\r\nhello\r\n0\r\n\r\n", "hello"),
    OK("BWS around ; and =", "5 ; a = b\t;\tc\r\nhello\r\n0 ;x\r\n\r\n", "hello"),
    OK("quoted-string with quoted-pair, SP, obs-text",
       "5;a=\"x \\\" y\\\\ \xe9\t\"\r\nhello\r\n0\r\n\r\n", "hello"),
    OK("empty quoted-string", "5;a=\"\"\r\nhello\r\n0\r\n\r\n", "hello"),
    OK("BWS after quoted-string before ;", "5;a=\"q\" ;b\r\nhello\r\n0\r\n\r\n", "hello"),
    OK("trailer fields", "5\r\nhello\r\n0\r\nExpires: never\r\nX-Sum:abc \t\r\n\r\n", "hello"),
    OK("empty trailer value and obs-text", "0\r\nX:\r\nY: caf\xc3\xa9\r\n\r\n", ""),
};

static void test_valid(void)
{
    static struct result whole, r;
    for (size_t i = 0; i < PT_ARRAY_SIZE(valid); i++) {
        const struct ok_case *t = &valid[i];
        size_t plen = t->payload_len;

        feed_whole(t->in, t->len, &whole);
        ok(whole.rc >= 0 && whole.done && whole.consumed == t->body_len && whole.views_ok &&
               whole.out_len == plen && memcmp(whole.out, t->payload, plen) == 0,
           "%s: decodes whole, stops at the end of the body", t->name);

        int bad_split = -1;
        for (size_t at = 0; at <= t->len && bad_split < 0; at++) {
            feed_split(t->in, t->len, at, &r);
            if (!(r.rc >= 0 && r.done && r.consumed == t->body_len && r.views_ok &&
                  r.out_len == plen && memcmp(r.out, t->payload, plen) == 0))
                bad_split = (int)at;
        }
        is_int(bad_split, -1, "%s: every two-piece split gives the same result", t->name);

        feed_bytes(t->in, t->len, &r);
        ok(r.rc >= 0 && r.done && r.consumed == t->body_len && r.views_ok && r.out_len == plen &&
               memcmp(r.out, t->payload, plen) == 0,
           "%s: one byte at a time gives the same result", t->name);

        /* every strict prefix of the body is incomplete, never an error */
        bool prefixes_ok = true;
        for (size_t k = 0; k < t->body_len; k++) {
            feed_whole(t->in, k, &r);
            if (r.rc < 0 || r.done || r.consumed != k)
                prefixes_ok = false;
        }
        ok(prefixes_ok, "%s: every prefix is consumed and not done", t->name);
    }
}

/* ---- rejected bodies ----------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *in;
    size_t len;
};

static const struct bad_case invalid[] = {
    /* sizes */
    {"empty size line", IN("\r\nhello\r\n0\r\n\r\n")},
    {"size 0x5", IN("0x5\r\nhello\r\n0\r\n\r\n")},
    {"size -1", IN("-1\r\nx\r\n0\r\n\r\n")},
    {"size +5", IN("+5\r\nhello\r\n0\r\n\r\n")},
    {"space before the size", IN(" 5\r\nhello\r\n0\r\n\r\n")},
    {"HTAB before the size", IN("\t5\r\nhello\r\n0\r\n\r\n")},
    {"space after the size without extension", IN("5 \r\nhello\r\n0\r\n\r\n")},
    {"non-hex digit", IN("5g\r\nhello\r\n0\r\n\r\n")},
    {"size overflow ffffffffffffffffff", IN("ffffffffffffffffff\r\nx\r\n0\r\n\r\n")},
    {"size above INT64_MAX (8000000000000000)", IN("8000000000000000\r\nx\r\n")},
    {"seventeen digits even with leading zeros", IN("00000000000000005\r\nhello\r\n0\r\n\r\n")},
    {"bare LF after the size", IN("5\nhello\r\n0\r\n\r\n")},
    {"bare CR after the size", IN("5\rhello\r\n0\r\n\r\n")},
    {"comma after the size", IN("5,6\r\nhello\r\n0\r\n\r\n")},
    /* extensions */
    {"empty extension name", IN("5;\r\nhello\r\n0\r\n\r\n")},
    {"extension without name", IN("5;=x\r\nhello\r\n0\r\n\r\n")},
    {"extension with empty value", IN("5;a=\r\nhello\r\n0\r\n\r\n")},
    {"BWS after name then CRLF", IN("5;a \r\nhello\r\n0\r\n\r\n")},
    {"two names without ;", IN("5;a b\r\nhello\r\n0\r\n\r\n")},
    {"two values without ;", IN("5;a=b c\r\nhello\r\n0\r\n\r\n")},
    {"= after a value", IN("5;a=b =c\r\nhello\r\n0\r\n\r\n")},
    {"= after a quoted value", IN("5;a=\"b\"=c\r\nhello\r\n0\r\n\r\n")},
    {"junk after quoted-string", IN("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n")},
    {"CTL in quoted-string", IN("5;a=\"x\x01\"\r\nhello\r\n0\r\n\r\n")},
    {"CR in quoted-string", IN("5;a=\"x\r\n\"\r\nhello\r\n0\r\n\r\n")},
    {"quoted-pair with CTL", IN("5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n")},
    {"non-tchar in extension name", IN("5;a@b\r\nhello\r\n0\r\n\r\n")},
    {"NUL in extension", IN("5;a\0\r\nhello\r\n0\r\n\r\n")},
    /* data framing */
    {"missing CRLF after data", IN("5\r\nhelloX\r\n0\r\n\r\n")},
    {"data longer than the size", IN("5\r\nhello world\r\n0\r\n\r\n")},
    {"other byte then LF after data", IN("5\r\nhelloX\n0\r\n\r\n")},
    {"LF only after data", IN("5\r\nhello\n0\r\n\r\n")},
    {"CR only after data", IN("5\r\nhello\r0\r\n\r\n")},
    {"next size straight after data", IN("5\r\nhello0\r\n\r\n")},
    /* trailers and the end */
    {"bad trailer: space before colon", IN("0\r\nX : y\r\n\r\n")},
    {"bad trailer: no colon", IN("0\r\nX\r\n\r\n")},
    {"bad trailer: empty name", IN("0\r\n: y\r\n\r\n")},
    {"bad trailer: NUL in value", IN("0\r\nX: a\0b\r\n\r\n")},
    {"bad trailer: DEL in value", IN("0\r\nX: a\x7f\r\n\r\n")},
    {"bad trailer: obs-fold", IN("0\r\nX: a\r\n b\r\n\r\n")},
    {"bad trailer: bare LF", IN("0\r\nX: y\n\r\n")},
    {"bare LF as the final line", IN("0\r\n\n")},
    {"CR CR at the end", IN("0\r\n\r\r")},
    {"bare LF after last-chunk", IN("0\n\r\n")},
};

static void test_invalid(void)
{
    static struct result r;
    for (size_t i = 0; i < PT_ARRAY_SIZE(invalid); i++) {
        const struct bad_case *t = &invalid[i];
        feed_whole(t->in, t->len, &r);
        ok(r.rc == PT_PARSE_INVALID && !r.done, "rejects %s", t->name);
        feed_bytes(t->in, t->len, &r);
        ok(r.rc == PT_PARSE_INVALID && !r.done, "rejects %s one byte at a time", t->name);
    }
}

/* ---- limits and API details ---------------------------------------------- */

static void test_limits(void)
{
    static struct result r;
    static char buf[PT_CHUNKED_MAX_TRAILERS + 64];
    size_t n;

    /* size line: PT_CHUNKED_MAX_LINE bytes including CRLF is the most */
    n = 0;
    buf[n++] = '1';
    buf[n++] = ';';
    while (n < PT_CHUNKED_MAX_LINE - 2)
        buf[n++] = 'a';
    memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
    feed_whole(buf, n + 10, &r);
    ok(r.done && r.out_len == 1, "a size line of exactly PT_CHUNKED_MAX_LINE bytes is accepted");
    n = 0;
    buf[n++] = '1';
    buf[n++] = ';';
    while (n < PT_CHUNKED_MAX_LINE - 1)
        buf[n++] = 'a';
    memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
    feed_whole(buf, n + 10, &r);
    is_int(r.rc, PT_PARSE_INVALID, "a size line one byte longer is rejected");

    /* trailer section: PT_CHUNKED_MAX_TRAILERS bytes including the final CRLF */
    n = 0;
    memcpy(buf, "0\r\nX: ", 6);
    n = 6;
    while (n < 3 + PT_CHUNKED_MAX_TRAILERS - 4)
        buf[n++] = 'v';
    memcpy(buf + n, "\r\n\r\n", 4);
    feed_whole(buf, n + 4, &r);
    ok(r.done && r.consumed == n + 4, "a trailer section of exactly the limit is accepted");
    buf[n++] = 'v';
    memcpy(buf + n, "\r\n\r\n", 4);
    feed_whole(buf, n + 4, &r);
    is_int(r.rc, PT_PARSE_INVALID, "a trailer section one byte longer is rejected");

    /* the largest size is accepted (and the data is simply not there yet) */
    struct pt_chunked c;
    struct pt_str data;
    pt_chunked_init(&c);
    ssize_t rc = pt_chunked_decode(&c, IN("7fffffffffffffff\r\nabc"), &data);
    ok(rc == 21 && data.len == 3 && memcmp(data.ptr, "abc", 3) == 0 &&
           c.remaining == (uint64_t)INT64_MAX - 3 && c.total == 3,
       "size 7fffffffffffffff is accepted, payload reported as it comes");

    /* API details */
    pt_chunked_init(&c);
    rc = pt_chunked_decode(&c, NULL, 0, &data);
    ok(rc == 0 && data.len == 0 && !c.done, "len 0 consumes nothing");
    rc = pt_chunked_decode(&c, IN("3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"), &data);
    ok(rc == 6 && data.len == 3 && memcmp(data.ptr, "abc", 3) == 0,
       "one payload run per call: the call stops after the first chunk's data");
    rc = pt_chunked_decode(&c, "\r\n4\r\ndefg\r\n0\r\n\r\n", 17, &data);
    ok(rc == 9 && data.len == 4 && memcmp(data.ptr, "defg", 4) == 0,
       "the next call finds the next");
    rc = pt_chunked_decode(&c, "\r\n0\r\n\r\nXYZ", 10, &data);
    ok(rc == 7 && data.len == 0 && c.done && c.total == 7,
       "the end is found and the bytes after it are left");
    rc = pt_chunked_decode(&c, "XYZ", 3, &data);
    ok(rc == 0 && data.len == 0 && c.done, "once done, nothing more is consumed");

    pt_chunked_init(&c);
    rc = pt_chunked_decode(&c, IN("zz"), &data);
    is_int(rc, PT_PARSE_INVALID, "error");
    rc = pt_chunked_decode(&c, IN("5\r\nhello\r\n0\r\n\r\n"), &data);
    is_int(rc, PT_PARSE_INVALID, "after an error the decoder stays failed");
    rc = pt_chunked_decode(&c, NULL, 0, &data);
    is_int(rc, PT_PARSE_INVALID, "even for an empty input");
}

int main(void)
{
    test_valid();
    test_invalid();
    test_limits();
    return done_testing();
}
