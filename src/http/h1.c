/*
 * HTTP/1.1 message heads.
 *
 * Design.  The parser is a single left-to-right pass over the caller's
 * buffer that stops at the first byte it cannot accept.  It keeps no state
 * between calls: a call either finds a complete, valid head (and returns its
 * length), finds a byte that no continuation could make valid (and rejects),
 * or runs out of bytes (PT_PARSE_PARTIAL).  Two properties follow and are
 * checked by the fuzz targets:
 *
 *   - prefix consistency: parsing any prefix of an input yields either
 *     PT_PARSE_PARTIAL or exactly the result of parsing the whole input;
 *   - views (method, target, names, values, reason) always lie inside the
 *     head that was returned.
 *
 * The common case is a client that sends its whole head in one segment, so
 * the first call usually completes.  When it does not, the caller calls again
 * with last_len, and we first look only at the new bytes (plus the one
 * before them, which may be a CR awaiting its LF) for anything that can
 * change the answer: the end of the head, a bare CR or LF, or another
 * control character.  If there is none the answer is still PARTIAL and the
 * head is not re-parsed, the way picohttpparser's is_complete() works.  The
 * consequence, documented in h1.h: an invalid byte that is not a control
 * character (a space before a colon, say) in bytes that arrive after the
 * first call is reported when the head's end arrives, not before.
 *
 * Hot loops avoid per-byte calls: names and methods go through the tchar
 * table, and values and request-targets are scanned 16 bytes at a time with
 * SSE2 when the compiler targets it (always on x86-64), falling back to a
 * plain byte loop elsewhere.  Both scanners are kept and the unit test checks
 * that they agree.
 *
 * The framing analysis (pt_h1_request_meta / pt_h1_response_meta) is a
 * second, separate pass over the parsed fields: the parser itself does not
 * know which names matter, which keeps its inner loop short.
 */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "portico/status.h"
#include "core/compiler.h"
#include "core/str.h"
#include "http/h1.h"
#include "http/method.h"

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
const uint8_t pt_h1_tchar[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, /* 0x50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, /* 0x70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xa0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xb0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xc0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xd0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xe0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xf0 */
};

/* Bytes a Host value may hold (RFC 3986 host [":" port]: unreserved,
 * pct-encoded, sub-delims, ":" and the brackets of an IP-literal). */
static const uint8_t host_char[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, /* 0x30 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, /* 0x50 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, /* 0x70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xa0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xb0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xc0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xd0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xe0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xf0 */
};

static inline bool is_digit(char c)
{
    return (unsigned)((unsigned char)c - '0') < 10u;
}

/* ---- scanners ---------------------------------------------------------- */

/* First byte in [p, end) that is a control character (0x00-0x1F, which
 * includes HTAB, CR and LF) or DEL; end when there is none.  Field values and
 * the reason phrase stop here: what may legally follow is HTAB or CR. */
static inline const char *find_ctl_scalar(const char *p, const char *end)
{
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            break;
    }
    return p;
}

/* First byte in [p, end) outside 0x21-0x7E (VCHAR); end when there is none.
 * A request-target stops here: what may legally follow is SP (or CR, which we
 * answer with PT_H1_BAD_VERSION). */
static inline const char *find_non_vchar_scalar(const char *p, const char *end)
{
    for (; p < end; p++)
        if ((unsigned)((unsigned char)*p - 0x21) >= 0x5eu)
            break;
    return p;
}

#if defined(__SSE2__)
static inline const char *find_ctl_sse2(const char *p, const char *end)
{
    const __m128i ctl_max = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, ctl_max), v); /* v <= 0x1f, unsigned */
        __m128i hit = _mm_or_si128(ctl, _mm_cmpeq_epi8(v, del));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
    return find_ctl_scalar(p, end);
}

static inline const char *find_non_vchar_sse2(const char *p, const char *end)
{
    const __m128i lo = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed compare: 0x80-0xFF are negative, so they are "< 0x21" too */
        __m128i hit = _mm_or_si128(_mm_cmplt_epi8(v, lo), _mm_cmpeq_epi8(v, del));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
    return find_non_vchar_scalar(p, end);
}
#define find_ctl       find_ctl_sse2
#define find_non_vchar find_non_vchar_sse2
#else
#define find_ctl       find_ctl_scalar
#define find_non_vchar find_non_vchar_scalar
#endif

/*
 * After a PARTIAL answer for buf[0..last_len), can the bytes that arrived
 * since change the answer?  They can if they complete the head (CRLFCRLF),
 * hold a bare LF or a bare CR, or hold any other control character.  The
 * scan starts one byte early: a CR that ended the old bytes is bare if the
 * first new byte is not LF.  (A CRLFCRLF straddling the boundary needs no
 * rescan: its LF is new, and the check looks behind it.)
 */
static bool worth_parsing(const char *buf, size_t len, size_t last_len)
{
    const char *p = buf + last_len - 1, *end = buf + len;
    for (;; p++) {
        p = find_ctl(p, end);
        if (p == end)
            return false;
        switch (*p) {
        case '\t':
            break;
        case '\r':
            if (p + 1 < end && p[1] != '\n')
                return true;
            break;
        case '\n':
            if (p == buf || p[-1] != '\r')
                return true;
            if (p - buf >= 3 && p[-2] == '\n' && p[-3] == '\r')
                return true;
            break;
        default:
            return true;
        }
    }
}

/* ---- the head ---------------------------------------------------------- */

/*
 * "HTTP/" DIGIT "." DIGIT at p.  Returns 0 and the two digits, PARTIAL when
 * the bytes present match so far, or INVALID.
 */
static int parse_version(const char *p, const char *end, int *major, int *minor)
{
    static const char pat[] = "HTTP/0.0";
    size_t avail = (size_t)(end - p);
    if (pt_likely(avail >= 8)) {
        if (memcmp(p, "HTTP/", 5) != 0 || !is_digit(p[5]) || p[6] != '.' || !is_digit(p[7]))
            return PT_PARSE_INVALID;
        *major = p[5] - '0';
        *minor = p[7] - '0';
        return 0;
    }
    for (size_t i = 0; i < avail; i++) {
        bool match = (i == 5 || i == 7) ? is_digit(p[i]) : p[i] == pat[i];
        if (!match)
            return PT_PARSE_INVALID;
    }
    return PT_PARSE_PARTIAL;
}

/* CRLF at *pp; advances past it. */
static inline int expect_crlf(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p == end)
        return PT_PARSE_PARTIAL;
    if (*p != '\r')
        return PT_PARSE_INVALID;
    if (++p == end)
        return PT_PARSE_PARTIAL;
    if (*p != '\n')
        return PT_PARSE_INVALID;
    *pp = p + 1;
    return 0;
}

/*
 * Field lines up to and including the empty line (RFC 9112 §5):
 *   field-line = field-name ":" OWS field-value OWS CRLF
 * The name is 1*tchar directly followed by the colon (no whitespace, which
 * also rules out obs-fold: a line starting with SP/HTAB has an empty name).
 * The value holds HTAB, SP, VCHAR and obs-text; leading and trailing SP/HTAB
 * are not part of it.  Lines beyond max_headers are validated but not stored.
 * Returns 0 with *pp after the empty line, PARTIAL or INVALID.
 */
static int parse_fields(const char **pp, const char *end, struct pt_h1_header *headers,
                        size_t max_headers, size_t *num_headers)
{
    const char *p = *pp;
    size_t n = 0;

    for (;;) {
        if (pt_unlikely(p == end))
            return PT_PARSE_PARTIAL;
        if (*p == '\r') {
            if (++p == end)
                return PT_PARSE_PARTIAL;
            if (*p != '\n')
                return PT_PARSE_INVALID;
            *pp = p + 1;
            *num_headers = n;
            return 0;
        }

        const char *name = p;
        while (pt_h1_tchar[(unsigned char)*p])
            if (++p == end)
                return PT_PARSE_PARTIAL;
        if (pt_unlikely(*p != ':' || p == name))
            return PT_PARSE_INVALID;
        size_t name_len = (size_t)(p - name);

        do
            if (++p == end)
                return PT_PARSE_PARTIAL;
        while (*p == ' ' || *p == '\t');
        const char *value = p;
        for (;;) {
            p = find_ctl(p, end);
            if (p == end)
                return PT_PARSE_PARTIAL;
            if (*p != '\t')
                break;
            p++;
        }
        if (pt_unlikely(*p != '\r'))
            return PT_PARSE_INVALID;
        const char *value_end = p;
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
            value_end--;
        if (++p == end)
            return PT_PARSE_PARTIAL;
        if (pt_unlikely(*p++ != '\n'))
            return PT_PARSE_INVALID;

        if (n < max_headers) {
            headers[n].name = pt_str_make(name, name_len);
            headers[n].value = pt_str_make(value, (size_t)(value_end - value));
        }
        n++;
    }
}

/*
 * request-line = method SP request-target SP HTTP-version CRLF
 * (RFC 9112 §3), preceded by at most one empty line (§2.2).  A request line
 * that stops after the target ("GET /" CRLF, HTTP/0.9) and any version other
 * than 1.0 and 1.1 answer PT_H1_BAD_VERSION.
 */
static int parse_request_line(const char **pp, const char *end, struct pt_h1_request *req)
{
    const char *p = *pp;
    int rc, major, minor;

    if (p == end)
        return PT_PARSE_PARTIAL;
    if (*p == '\r') {
        if ((rc = expect_crlf(&p, end)) != 0)
            return rc;
        if (p == end)
            return PT_PARSE_PARTIAL;
    }

    const char *method = p;
    while (pt_h1_tchar[(unsigned char)*p])
        if (++p == end)
            return PT_PARSE_PARTIAL;
    if (pt_unlikely(*p != ' ' || p == method))
        return PT_PARSE_INVALID;
    req->method = pt_str_make(method, (size_t)(p - method));

    const char *target = ++p;
    p = find_non_vchar(p, end);
    if (p == end)
        return PT_PARSE_PARTIAL;
    if (pt_unlikely(p == target))
        return PT_PARSE_INVALID;
    req->target = pt_str_make(target, (size_t)(p - target));
    if (pt_unlikely(*p != ' ')) {
        if (*p != '\r')
            return PT_PARSE_INVALID;
        rc = expect_crlf(&p, end);
        return rc == 0 ? PT_H1_BAD_VERSION : rc;
    }
    p++;

    if ((rc = parse_version(p, end, &major, &minor)) != 0)
        return rc;
    p += 8;
    if ((rc = expect_crlf(&p, end)) != 0)
        return rc;
    if (major != 1 || minor > 1)
        return PT_H1_BAD_VERSION;
    req->minor_version = minor;
    req->method_id = pt_method_from_str(req->method);
    *pp = p;
    return 0;
}

/*
 * status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
 * (RFC 9112 §4), also accepting no SP at all after the status code.
 */
static int parse_status_line(const char **pp, const char *end, struct pt_h1_response *resp)
{
    const char *p = *pp;
    int rc, major, minor;

    if ((rc = parse_version(p, end, &major, &minor)) != 0)
        return rc;
    p += 8;
    if (p == end)
        return PT_PARSE_PARTIAL;
    if (*p++ != ' ')
        return PT_PARSE_INVALID;
    if (major != 1 || minor > 1)
        return PT_H1_BAD_VERSION;
    resp->minor_version = minor;

    int status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end)
            return PT_PARSE_PARTIAL;
        if (!is_digit(*p) || (i == 0 && *p == '0'))
            return PT_PARSE_INVALID;
        status = status * 10 + (*p - '0');
    }
    resp->status = status;

    if (p == end)
        return PT_PARSE_PARTIAL;
    const char *reason = p;
    if (*p == ' ') {
        reason = ++p;
        for (;;) {
            p = find_ctl(p, end);
            if (p == end)
                return PT_PARSE_PARTIAL;
            if (*p != '\t')
                break;
            p++;
        }
    }
    resp->reason = pt_str_make(reason, (size_t)(p - reason));
    if ((rc = expect_crlf(&p, end)) != 0)
        return rc;
    *pp = p;
    return 0;
}

int pt_h1_parse_request(const char *buf, size_t len, size_t last_len, struct pt_h1_request *req,
                        struct pt_h1_header *headers, size_t max_headers)
{
    size_t n;
    int rc;

    if (pt_unlikely(len > INT_MAX)) /* the result must fit an int; PARTIAL beyond */
        len = INT_MAX;
    const char *p = buf, *end = buf + len;
    if (last_len != 0 && last_len <= len && !worth_parsing(buf, len, last_len))
        return PT_PARSE_PARTIAL;
    if ((rc = parse_request_line(&p, end, req)) != 0)
        return rc;
    if ((rc = parse_fields(&p, end, headers, max_headers, &n)) != 0)
        return rc;
    if (n > max_headers) {
        req->headers = headers;
        req->num_headers = max_headers;
        return PT_H1_TOO_MANY_HEADERS;
    }
    req->headers = headers;
    req->num_headers = n;
    return (int)(p - buf);
}

int pt_h1_parse_response(const char *buf, size_t len, size_t last_len, struct pt_h1_response *resp,
                         struct pt_h1_header *headers, size_t max_headers)
{
    size_t n;
    int rc;

    if (pt_unlikely(len > INT_MAX)) /* the result must fit an int; PARTIAL beyond */
        len = INT_MAX;
    const char *p = buf, *end = buf + len;
    if (last_len != 0 && last_len <= len && !worth_parsing(buf, len, last_len))
        return PT_PARSE_PARTIAL;
    if ((rc = parse_status_line(&p, end, resp)) != 0)
        return rc;
    if ((rc = parse_fields(&p, end, headers, max_headers, &n)) != 0)
        return rc;
    if (n > max_headers) {
        resp->headers = headers;
        resp->num_headers = max_headers;
        return PT_H1_TOO_MANY_HEADERS;
    }
    resp->headers = headers;
    resp->num_headers = n;
    return (int)(p - buf);
}

/* ---- framing analysis -------------------------------------------------- */

/* Iterates the elements of a comma-separated list (RFC 9110 §5.6.1), OWS
 * trimmed and empty elements skipped. */
struct list_iter {
    const char *p, *end;
};

static bool list_next(struct list_iter *it, struct pt_str *elem)
{
    for (;;) {
        if (it->p >= it->end)
            return false;
        const char *comma = memchr(it->p, ',', (size_t)(it->end - it->p));
        const char *stop = comma != NULL ? comma : it->end;
        *elem = pt_str_trim_ows(pt_str_make(it->p, (size_t)(stop - it->p)));
        it->p = stop + 1;
        if (elem->len != 0)
            return true;
    }
}

static bool is_token(struct pt_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!pt_h1_tchar[(unsigned char)s.ptr[i]])
            return false;
    return true;
}

/* What the framing analysis needs from the fields, gathered in one pass. */
struct fields_scan {
    const struct pt_str *content_length, *transfer_encoding, *host, *upgrade;
    unsigned n_content_length, n_transfer_encoding, n_host;
    bool conn_close, conn_keep_alive, conn_upgrade, conn_other;
    bool expect_continue, expect_other;
};

static int scan_connection(struct pt_str value, struct fields_scan *s, const char **why)
{
    struct list_iter it = {value.ptr, value.ptr + value.len};
    struct pt_str e;
    while (list_next(&it, &e)) {
        if (pt_str_case_eq_lit(e, "close"))
            s->conn_close = true;
        else if (pt_str_case_eq_lit(e, "keep-alive"))
            s->conn_keep_alive = true;
        else if (pt_str_case_eq_lit(e, "upgrade"))
            s->conn_upgrade = true;
        else if (is_token(e))
            s->conn_other = true;
        else {
            *why = "invalid Connection header";
            return PT_PARSE_INVALID;
        }
    }
    return 0;
}

/* Names are switched on their length first: most fields match none. */
static int scan_fields(const struct pt_h1_header *h, size_t n, struct fields_scan *s,
                       const char **why)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        struct pt_str name = h[i].name;
        switch (name.len) {
        case 4:
            if (pt_str_case_eq_lit(name, "host")) {
                s->host = &h[i].value;
                s->n_host++;
            }
            break;
        case 6:
            if (pt_str_case_eq_lit(name, "expect")) {
                if (pt_str_case_eq_lit(h[i].value, "100-continue"))
                    s->expect_continue = true;
                else
                    s->expect_other = true;
            }
            break;
        case 7:
            if (s->upgrade == NULL && pt_str_case_eq_lit(name, "upgrade"))
                s->upgrade = &h[i].value;
            break;
        case 10:
            if (pt_str_case_eq_lit(name, "connection") && scan_connection(h[i].value, s, why) != 0)
                return PT_PARSE_INVALID;
            break;
        case 14:
            if (pt_str_case_eq_lit(name, "content-length")) {
                s->content_length = &h[i].value;
                s->n_content_length++;
            }
            break;
        case 17:
            if (pt_str_case_eq_lit(name, "transfer-encoding")) {
                s->transfer_encoding = &h[i].value;
                s->n_transfer_encoding++;
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

/* Largest Content-Length / chunk size we accept: fits an off_t. */
#define MAX_BODY_LENGTH ((uint64_t)INT64_MAX)

/*
 * Content-Length and Transfer-Encoding, common to requests and responses.
 * Content-Length is one field of 1*DIGIT not above MAX_BODY_LENGTH; a
 * repeated field is refused even with equal values, and so is a list.
 * Transfer-Encoding is one field whose value is exactly "chunked": we do not
 * forward codings we cannot check, so "gzip, chunked" is refused too, and
 * so is "chunked, chunked".  Both together are refused (RFC 9112 §6.1 allows
 * a server to reject; for a proxy this is the classic smuggling vector), and
 * so is Transfer-Encoding in an HTTP/1.0 message (§6.1: faulty framing).
 */
static int check_framing(const struct fields_scan *s, int minor_version, struct pt_h1_meta *meta,
                         const char **why)
{
    if (s->n_content_length > 1) {
        *why = "conflicting Content-Length headers";
        return PT_PARSE_INVALID;
    }
    if (s->n_content_length == 1) {
        struct pt_str v = *s->content_length;
        uint64_t cl = 0;
        if (v.len == 0) {
            *why = "invalid Content-Length";
            return PT_PARSE_INVALID;
        }
        for (size_t i = 0; i < v.len; i++) {
            if (!is_digit(v.ptr[i])) {
                *why = "invalid Content-Length";
                return PT_PARSE_INVALID;
            }
            unsigned d = (unsigned)(v.ptr[i] - '0');
            if (cl > (MAX_BODY_LENGTH - d) / 10) {
                *why = "Content-Length too large";
                return PT_PARSE_INVALID;
            }
            cl = cl * 10 + d;
        }
        meta->content_length = cl;
    }
    if (s->n_transfer_encoding != 0) {
        if (s->n_content_length != 0) {
            *why = "Content-Length with Transfer-Encoding";
            return PT_PARSE_INVALID;
        }
        if (minor_version == 0) {
            *why = "Transfer-Encoding in an HTTP/1.0 message";
            return PT_PARSE_INVALID;
        }
        if (s->n_transfer_encoding > 1) {
            *why = "repeated Transfer-Encoding headers";
            return PT_PARSE_INVALID;
        }
        if (!pt_str_case_eq_lit(*s->transfer_encoding, "chunked")) {
            *why = "unsupported Transfer-Encoding";
            return PT_PARSE_INVALID;
        }
    }
    return 0;
}

static bool valid_host(struct pt_str v)
{
    for (size_t i = 0; i < v.len; i++)
        if (!host_char[(unsigned char)v.ptr[i]])
            return false;
    return true;
}

int pt_h1_request_meta(const struct pt_h1_request *req, struct pt_h1_meta *meta, const char **why)
{
    struct fields_scan s;
    const char *dummy;
    int rc;

    if (why == NULL)
        why = &dummy;
    *why = NULL;
    memset(meta, 0, sizeof(*meta));
    meta->host = PT_STR_LIT("");
    meta->upgrade_proto = PT_STR_LIT("");

    if ((rc = scan_fields(req->headers, req->num_headers, &s, why)) != 0)
        return rc;
    if ((rc = check_framing(&s, req->minor_version, meta, why)) != 0)
        return rc;
    if (s.n_host > 1) {
        *why = "repeated Host headers";
        return PT_PARSE_INVALID;
    }
    if (s.n_host == 1) {
        if (!valid_host(*s.host)) {
            *why = "invalid Host header";
            return PT_PARSE_INVALID;
        }
        meta->host = *s.host;
    } else if (req->minor_version == 1) {
        *why = "missing Host header";
        return PT_PARSE_INVALID;
    }

    if (s.n_transfer_encoding != 0)
        meta->body = PT_H1_BODY_CHUNKED;
    else if (s.n_content_length != 0)
        meta->body = PT_H1_BODY_LENGTH;
    else
        meta->body = PT_H1_BODY_NONE;

    if (req->minor_version == 1) {
        meta->keep_alive = !s.conn_close;
        /* RFC 9110 §7.8 and §10.1.1: Upgrade and 100-continue are ignored
         * in HTTP/1.0 requests. */
        meta->upgrade = s.conn_upgrade && s.upgrade != NULL;
        meta->expect_continue = s.expect_continue;
    } else {
        meta->keep_alive = s.conn_keep_alive && !s.conn_close;
    }
    if (meta->upgrade)
        meta->upgrade_proto = *s.upgrade;
    meta->has_connection_tokens = s.conn_other;

    if (s.expect_other) {
        *why = "unsupported expectation";
        return PT_DECLINED;
    }
    return 0;
}

int pt_h1_response_meta(const struct pt_h1_response *resp, enum pt_method req_method,
                        struct pt_h1_meta *meta, const char **why)
{
    struct fields_scan s;
    const char *dummy;
    int rc;

    if (why == NULL)
        why = &dummy;
    *why = NULL;
    memset(meta, 0, sizeof(*meta));
    meta->host = PT_STR_LIT("");
    meta->upgrade_proto = PT_STR_LIT("");

    if ((rc = scan_fields(resp->headers, resp->num_headers, &s, why)) != 0)
        return rc;
    if ((rc = check_framing(&s, resp->minor_version, meta, why)) != 0)
        return rc;

    if (resp->minor_version == 1)
        meta->keep_alive = !s.conn_close;
    else
        meta->keep_alive = s.conn_keep_alive && !s.conn_close;
    meta->has_connection_tokens = s.conn_other;

    /* RFC 9112 §6.3: the order of these checks is the order of the rules. */
    int st = resp->status;
    if (req_method == PT_METHOD_HEAD || (st >= 100 && st < 200) || st == 204 || st == 304 ||
        (req_method == PT_METHOD_CONNECT && st >= 200 && st < 300)) {
        meta->body = PT_H1_BODY_NONE;
        meta->content_length = 0;
        if (st == 101 && s.conn_upgrade && s.upgrade != NULL) {
            meta->upgrade = true;
            meta->upgrade_proto = *s.upgrade;
        }
    } else if (s.n_transfer_encoding != 0) {
        meta->body = PT_H1_BODY_CHUNKED;
    } else if (s.n_content_length != 0) {
        meta->body = PT_H1_BODY_LENGTH;
    } else {
        meta->body = PT_H1_BODY_UNTIL_CLOSE;
        meta->keep_alive = false;
    }
    return 0;
}

/* ---- field helpers ----------------------------------------------------- */

static bool fixed_hop_by_hop(struct pt_str name)
{
    switch (name.len) {
    case 2:
        return pt_str_case_eq_lit(name, "te");
    case 7:
        return pt_str_case_eq_lit(name, "trailer") || pt_str_case_eq_lit(name, "upgrade");
    case 10:
        return pt_str_case_eq_lit(name, "connection") || pt_str_case_eq_lit(name, "keep-alive");
    case 16:
        return pt_str_case_eq_lit(name, "proxy-connection");
    case 17:
        return pt_str_case_eq_lit(name, "transfer-encoding");
    default:
        return false;
    }
}

bool pt_h1_is_hop_by_hop(struct pt_str name, const struct pt_h1_header *headers, size_t num_headers)
{
    if (fixed_hop_by_hop(name))
        return true;
    for (size_t i = 0; i < num_headers; i++) {
        if (!pt_str_case_eq_lit(headers[i].name, "connection"))
            continue;
        struct list_iter it = {headers[i].value.ptr, headers[i].value.ptr + headers[i].value.len};
        struct pt_str e;
        while (list_next(&it, &e))
            if (pt_str_case_eq(e, name))
                return true;
    }
    return false;
}

const struct pt_h1_header *pt_h1_find_header(const struct pt_h1_header *headers, size_t n,
                                             struct pt_str name)
{
    for (size_t i = 0; i < n; i++)
        if (pt_str_case_eq(headers[i].name, name))
            return &headers[i];
    return NULL;
}
