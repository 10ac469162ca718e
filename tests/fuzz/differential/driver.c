/*
 * Driver for tests/fuzz/differential/h1_model.py: reads records
 * (u32 little-endian length, u8 kind: 0 request, 1 response, 2 chunked,
 * then the bytes) from stdin and prints one line per record describing what
 * the C code made of it.  Not a libFuzzer target (it lives in a
 * subdirectory, which the Makefile does not build).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "http/chunked.h"
#include "http/h1.h"

#define MAXH 64

static void hex(struct pt_str s)
{
    for (size_t i = 0; i < s.len; i++)
        printf("%02x", (unsigned char)s.ptr[i]);
}

static void fields(const struct pt_h1_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf(" ");
        hex(h[i].name);
        printf(":");
        hex(h[i].value);
    }
}

static unsigned long long length_of(const struct pt_h1_meta *m)
{
    return m->body == PT_H1_BODY_LENGTH ? (unsigned long long)m->content_length : 0;
}

/* rc [method target minor fields | meta-rc [body cl keep_alive expect upgrade tokens]] */
static void request(const char *b, size_t len)
{
    struct pt_h1_header h[MAXH];
    struct pt_h1_request r;
    struct pt_h1_meta m;
    const char *why;
    int rc = pt_h1_parse_request(b, len, 0, &r, h, MAXH);
    printf("%d", rc);
    if (rc < 0)
        return;
    printf(" ");
    hex(r.method);
    printf(" ");
    hex(r.target);
    printf(" %d", r.minor_version);
    fields(h, r.num_headers);
    rc = pt_h1_request_meta(&r, &m, &why);
    printf(" | %d", rc);
    if (rc == 0 || rc == PT_DECLINED)
        printf(" %d %llu %d %d %d %d", m.body, length_of(&m), m.keep_alive, m.expect_continue,
               m.upgrade, m.has_connection_tokens);
}

/* rc [minor status reason fields (| meta-rc [body cl keep_alive upgrade tokens]) x3] */
static void response(const char *b, size_t len)
{
    static const enum pt_method methods[] = {PT_METHOD_GET, PT_METHOD_HEAD, PT_METHOD_CONNECT};
    struct pt_h1_header h[MAXH];
    struct pt_h1_response r;
    int rc = pt_h1_parse_response(b, len, 0, &r, h, MAXH);
    printf("%d", rc);
    if (rc < 0)
        return;
    printf(" %d %d ", r.minor_version, r.status);
    hex(r.reason);
    fields(h, r.num_headers);
    for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++) {
        struct pt_h1_meta m;
        const char *why;
        rc = pt_h1_response_meta(&r, methods[k], &m, &why);
        printf(" | %d", rc);
        if (rc == 0)
            printf(" %d %llu %d %d %d", m.body, length_of(&m), m.keep_alive, m.upgrade,
                   m.has_connection_tokens);
    }
}

/* E, or D|P consumed payload */
static void chunked(const char *b, size_t len)
{
    struct pt_chunked c;
    char *out = malloc(len + 1);
    size_t pos = 0, out_len = 0;
    if (out == NULL)
        abort();
    pt_chunked_init(&c);
    while (pos < len && !c.done) {
        struct pt_str d;
        ssize_t k = pt_chunked_decode(&c, b + pos, len - pos, &d);
        if (k < 0) {
            printf("E");
            free(out);
            return;
        }
        memcpy(out + out_len, d.ptr, d.len);
        out_len += d.len;
        pos += (size_t)k;
        if (k == 0)
            break;
    }
    printf("%s %zu ", c.done ? "D" : "P", pos);
    hex(pt_str_make(out, out_len));
    free(out);
}

int main(void)
{
    unsigned char hdr[5];
    while (fread(hdr, 1, 5, stdin) == 5) {
        size_t len = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (size_t)hdr[3] << 24;
        char *b = malloc(len ? len : 1);
        if (b == NULL || fread(b, 1, len, stdin) != len)
            return 1;
        if (hdr[4] == 0)
            request(b, len);
        else if (hdr[4] == 1)
            response(b, len);
        else
            chunked(b, len);
        printf("\n");
        free(b);
    }
    return 0;
}
