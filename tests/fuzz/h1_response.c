/*
 * libFuzzer target: HTTP/1 response heads and the response framing analysis
 * (for GET, HEAD and CONNECT).  Same invariants as h1_request.
 */
#include "h1_common.h"

static int parse_resp(const char *buf, size_t len, size_t last_len, void *msg,
                      struct pt_h1_header *h, size_t maxh)
{
    return pt_h1_parse_response(buf, len, last_len, msg, h, maxh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum pt_method methods[] = {PT_METHOD_GET, PT_METHOD_HEAD, PT_METHOD_CONNECT};
    struct pt_h1_response resp, resp2;
    struct pt_h1_header h[FUZZ_MAXH], h2[FUZZ_MAXH];
    char *buf = malloc(size == 0 ? 1 : size);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    expose(buf, size, size);

    int whole = pt_h1_parse_response(buf, size, 0, &resp, h, FUZZ_MAXH);
    CHECK(known_result(whole));
    if (whole >= 0) {
        CHECK((size_t)whole <= size);
        CHECK(resp.headers == h && resp.num_headers <= FUZZ_MAXH);
        CHECK(resp.minor_version == 0 || resp.minor_version == 1);
        CHECK(resp.status >= 100 && resp.status <= 999);
        CHECK(view_within(resp.reason, buf, whole));
        for (size_t i = 0; i < resp.reason.len; i++) {
            unsigned char c = (unsigned char)resp.reason.ptr[i];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        check_fields(h, resp.num_headers, buf, whole);

        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
            struct pt_h1_meta meta;
            const char *why = NULL;
            int rc = pt_h1_response_meta(&resp, methods[i], &meta, &why);
            CHECK(rc != PT_DECLINED);
            check_meta(rc, &meta, why, h, resp.num_headers, resp.minor_version);
            if (rc == 0 && (methods[i] == PT_METHOD_HEAD || resp.status < 200 ||
                            resp.status == 204 || resp.status == 304))
                CHECK(meta.body == PT_H1_BODY_NONE);
            if (meta.upgrade)
                CHECK(resp.status == 101);
        }
    }

    int small = pt_h1_parse_response(buf, size, 0, &resp2, h2, FUZZ_SMALL_MAXH);
    if (whole >= 0 && resp.num_headers > FUZZ_SMALL_MAXH)
        CHECK(small == PT_H1_TOO_MANY_HEADERS && resp2.num_headers == FUZZ_SMALL_MAXH);
    else
        CHECK(small == whole);

    check_incremental(parse_resp, &resp2, buf, size, whole, data);

    expose(buf, size, size);
    free(buf);
    return 0;
}
