/*
 * Admin requests from bytes and responses to bytes, without sockets.
 *
 * A request is handled once it is complete: the head (strictly parsed by
 * the gateway's own HTTP/1 parser, at most PT_ADMIN_MAX_HEAD bytes and
 * PT_ADMIN_MAX_HEADERS fields) is copied out of the input buffer, then the
 * body is waited for: Content-Length bytes stay in the input buffer and are
 * handed over as a view; a chunked body is decoded into its own buffer as
 * it arrives.  Bodies are limited to PT_ADMIN_MAX_BODY bytes (413, checked
 * before reading when the length is declared).  A malformed request gets a
 * problem+json answer with Connection: close and nothing after it is read.
 * Expect: 100-continue is answered when the body has not arrived yet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "http/problem.h"
#include "admin/admin-int.h"

void pt_admin_session_init(struct pt_admin_session *s)
{
    memset(s, 0, sizeof(*s));
    pt_buf_init(&s->in);
    pt_buf_init(&s->body);
}

static void end_request(struct pt_admin_session *s)
{
    free(s->head);
    s->head = NULL;
    s->in_body = false;
    s->parse_last = 0;
    pt_buf_free(&s->body);
}

void pt_admin_session_free(struct pt_admin_session *s)
{
    end_request(s);
    pt_buf_free(&s->in);
}

int pt_admin_write_resp(const struct pt_admin_resp *resp, bool head_only, struct pt_buf *out)
{
    char head[768];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s%s\r\n",
                     resp->status, pt_http_reason(resp->status),
                     resp->content_type != NULL ? resp->content_type : "application/json",
                     resp->len, resp->extra, resp->close ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return PT_ERR_NOMEM;
    if (pt_buf_append(out, head, (size_t)n, SIZE_MAX) != 0)
        return PT_ERR_NOMEM;
    if (!head_only && resp->len > 0 && pt_buf_append(out, resp->body, resp->len, SIZE_MAX) != 0)
        return PT_ERR_NOMEM;
    return 0;
}

/* A response to a request that could not be read: problem+json, then close. */
static int reject(struct pt_admin_session *s, struct pt_buf *out, int status, const char *detail)
{
    struct pt_admin_resp resp = {0};
    pt_admin_problem(&resp, status, NULL, detail, NULL);
    resp.close = true;
    s->close = true;
    int rc = pt_admin_write_resp(&resp, false, out);
    free(resp.body);
    end_request(s);
    return rc != 0 ? rc : 1;
}

/* The head is complete at s->in[0..n): copy it out and parse the copy (views point there). */
static int take_head(struct pt_admin_session *s, struct pt_buf *out, size_t n)
{
    s->head = pt_malloc(n);
    if (s->head == NULL)
        return PT_ERR_NOMEM;
    memcpy(s->head, pt_buf_head(&s->in), n);
    pt_buf_consume(&s->in, n);
    s->parse_last = 0;
    int r = pt_h1_parse_request(s->head, n, 0, &s->pr, s->headers, PT_ADMIN_MAX_HEADERS);
    if (r != (int)n)
        return reject(s, out, 400, "malformed request");
    const char *why = NULL;
    int m = pt_h1_request_meta(&s->pr, &s->meta, &why);
    if (m == PT_DECLINED)
        return reject(s, out, 417, "only Expect: 100-continue is supported");
    if (m != 0)
        return reject(s, out, 400, why != NULL ? why : "malformed request");
    if (s->pr.target.len == 0 || s->pr.target.ptr[0] != '/')
        return reject(s, out, 400, "the request-target must be a path");
    if (s->meta.body == PT_H1_BODY_LENGTH && s->meta.content_length > PT_ADMIN_MAX_BODY)
        return reject(s, out, 413, "the request body is larger than 16 MiB");
    if (s->meta.body == PT_H1_BODY_CHUNKED)
        pt_chunked_init(&s->chunked);
    s->in_body = true;
    if (s->meta.expect_continue && pt_buf_len(&s->in) == 0 &&
        (s->meta.body == PT_H1_BODY_CHUNKED ||
         (s->meta.body == PT_H1_BODY_LENGTH && s->meta.content_length > 0))) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (pt_buf_append(out, cont, sizeof(cont) - 1, SIZE_MAX) != 0)
            return PT_ERR_NOMEM;
    }
    return 0;
}

#define BODY_COMPLETE 2

/* A view of b's bytes (pt_buf_head is not for a buffer that holds no memory). */
static struct pt_str buf_view(const struct pt_buf *b)
{
    return b->data != NULL ? pt_buf_str(b) : PT_STR_LIT("");
}

/*
 * Decode what arrived of a chunked body: BODY_COMPLETE, 0 (more needed), 1
 * (rejected: the answer is in out) or PT_ERR_NOMEM.
 */
static int decode_chunked(struct pt_admin_session *s, struct pt_buf *out)
{
    while (pt_buf_len(&s->in) > 0 && !s->chunked.done) {
        struct pt_str data;
        struct pt_str in = buf_view(&s->in);
        ssize_t k = pt_chunked_decode(&s->chunked, in.ptr, in.len, &data);
        if (k < 0)
            return reject(s, out, 400, "invalid chunked body");
        if (data.len > 0) {
            if (pt_buf_len(&s->body) + data.len > PT_ADMIN_MAX_BODY)
                return reject(s, out, 413, "the request body is larger than 16 MiB");
            if (pt_buf_append(&s->body, data.ptr, data.len, SIZE_MAX) != 0)
                return PT_ERR_NOMEM;
        }
        pt_buf_consume(&s->in, (size_t)k);
        if (k == 0)
            break;
    }
    return s->chunked.done ? BODY_COMPLETE : 0;
}

static void fill_req(const struct pt_admin_session *s, struct pt_admin_req *req)
{
    const struct pt_h1_request *pr = &s->pr;
    struct pt_str t = pr->target;
    const char *q = memchr(t.ptr, '?', t.len);
    req->method = pr->method;
    req->method_id = pr->method_id;
    req->path = q != NULL ? pt_str_make(t.ptr, (size_t)(q - t.ptr)) : t;
    req->query = q != NULL ? pt_str_make(q + 1, (size_t)(t.ptr + t.len - q - 1)) : PT_STR_NULL;
    req->headers = pr->headers;
    req->nheaders = pr->num_headers;
    req->head_only = pr->method_id == PT_METHOD_HEAD;
}

int pt_admin_session_step(const struct pt_admin_api *api, struct pt_admin_session *s,
                          struct pt_buf *out, bool eof)
{
    if (s->close)
        return 0;
    if (!s->in_body) {
        size_t len = pt_buf_len(&s->in);
        if (len == 0)
            return 0;
        int n = pt_h1_parse_request(buf_view(&s->in).ptr, len, s->parse_last, &s->pr, s->headers,
                                    PT_ADMIN_MAX_HEADERS);
        if (n == PT_PARSE_PARTIAL) {
            if (len > PT_ADMIN_MAX_HEAD)
                return reject(s, out, 431, "request header section too large");
            s->parse_last = len;
            return eof ? reject(s, out, 400, "incomplete request") : 0;
        }
        if (n == PT_H1_TOO_MANY_HEADERS)
            return reject(s, out, 431, "too many header fields");
        if (n == PT_H1_BAD_VERSION)
            return reject(s, out, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
        if (n < 0)
            return reject(s, out, 400, "malformed request");
        if ((size_t)n > PT_ADMIN_MAX_HEAD)
            return reject(s, out, 431, "request header section too large");
        int r = take_head(s, out, (size_t)n);
        if (r != 0)
            return r;
    }
    struct pt_admin_req req = {0};
    size_t consume = 0;
    switch (s->meta.body) {
    case PT_H1_BODY_CHUNKED: {
        int r = decode_chunked(s, out);
        if (r != BODY_COMPLETE)
            return r == 0 && eof ? reject(s, out, 400, "incomplete request body") : r;
        req.body = buf_view(&s->body);
        break;
    }
    case PT_H1_BODY_LENGTH:
        if (pt_buf_len(&s->in) < s->meta.content_length)
            return eof ? reject(s, out, 400, "incomplete request body") : 0;
        consume = (size_t)s->meta.content_length;
        req.body = pt_str_make(buf_view(&s->in).ptr, consume);
        break;
    default:
        break;
    }
    fill_req(s, &req);
    struct pt_admin_resp resp = {0};
    pt_admin_dispatch(api, &req, &resp);
    if (!s->meta.keep_alive)
        resp.close = true;
    if (resp.close)
        s->close = true;
    int rc = pt_admin_write_resp(&resp, req.head_only, out);
    free(resp.body);
    pt_buf_consume(&s->in, consume);
    end_request(s);
    return rc != 0 ? rc : 1;
}
