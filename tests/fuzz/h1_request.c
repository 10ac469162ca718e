/*
 * libFuzzer target: HTTP/1 request heads, the request framing analysis and
 * the hop-by-hop helpers.  Invariants: results are among the documented
 * codes, a successful head lies within the input and every view within it,
 * the fields are well-formed, prefixes and byte-by-byte feeding agree with
 * the whole (see h1_common.h), the field limit behaves.
 */
#include "h1_common.h"

static int parse_req(const char *buf, size_t len, size_t last_len, void *msg,
                     struct pt_h1_header *h, size_t maxh)
{
    return pt_h1_parse_request(buf, len, last_len, msg, h, maxh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_h1_request req, req2;
    struct pt_h1_header h[FUZZ_MAXH], h2[FUZZ_MAXH];
    char *buf = malloc(size == 0 ? 1 : size);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    expose(buf, size, size);

    int whole = pt_h1_parse_request(buf, size, 0, &req, h, FUZZ_MAXH);
    CHECK(known_result(whole));
    if (whole >= 0) {
        CHECK((size_t)whole <= size);
        CHECK(req.headers == h && req.num_headers <= FUZZ_MAXH);
        CHECK(req.minor_version == 0 || req.minor_version == 1);
        CHECK(req.method.len > 0 && view_within(req.method, buf, whole));
        CHECK(req.target.len > 0 && view_within(req.target, buf, whole));
        for (size_t i = 0; i < req.method.len; i++)
            CHECK(pt_h1_tchar[(unsigned char)req.method.ptr[i]]);
        for (size_t i = 0; i < req.target.len; i++)
            CHECK(req.target.ptr[i] >= 0x21 && req.target.ptr[i] <= 0x7e);
        CHECK(req.method_id == pt_method_from_str(req.method));
        check_fields(h, req.num_headers, buf, whole);

        struct pt_h1_meta meta;
        const char *why = NULL;
        int rc = pt_h1_request_meta(&req, &meta, &why);
        check_meta(rc, &meta, why, h, req.num_headers, req.minor_version);
        if (rc == 0 && req.minor_version == 1)
            CHECK(pt_h1_find_header(h, req.num_headers, PT_STR_LIT("host")) != NULL);
    }

    /* the field limit: same answer unless the head has more fields */
    int small = pt_h1_parse_request(buf, size, 0, &req2, h2, FUZZ_SMALL_MAXH);
    if (whole >= 0 && req.num_headers > FUZZ_SMALL_MAXH)
        CHECK(small == PT_H1_TOO_MANY_HEADERS && req2.num_headers == FUZZ_SMALL_MAXH);
    else
        CHECK(small == whole);

    check_incremental(parse_req, &req2, buf, size, whole, data);

    /* byte-by-byte parse of a valid head gives the same views */
    if (whole >= 0) {
        int again =
            pt_h1_parse_request(buf, (size_t)whole, (size_t)whole - 1, &req2, h2, FUZZ_MAXH);
        CHECK(again == whole);
        CHECK(req2.method.ptr == req.method.ptr && req2.method.len == req.method.len);
        CHECK(req2.target.ptr == req.target.ptr && req2.target.len == req.target.len);
        CHECK(req2.num_headers == req.num_headers);
        for (size_t i = 0; i < req.num_headers; i++)
            CHECK(h2[i].value.ptr == h[i].value.ptr && h2[i].value.len == h[i].value.len);
    }

    expose(buf, size, size);
    free(buf);
    return 0;
}
