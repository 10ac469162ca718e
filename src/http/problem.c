/*
 * RFC 9457 problem details and JSON string escaping.
 *
 * Everything writes through a small snprintf-like cursor (struct out): bytes
 * past the end of the caller's buffer are counted but not stored, so the
 * return value is always the full length and a caller can retry with a
 * bigger buffer.  Nothing here allocates.
 *
 * Escaping accepts arbitrary bytes and always yields valid JSON text:
 * '"' and '\\' are escaped, control characters (and DEL) become \b \f \n \r
 * \t or \u00XX, well-formed UTF-8 passes through, and every maximal
 * ill-formed subsequence (stray continuation bytes, overlong forms,
 * surrogates, code points above U+10FFFF, truncated sequences) becomes one
 * U+FFFD, the substitution the Unicode standard (chapter 3, "U+FFFD
 * Substitution of Maximal Subparts") and WHATWG's decoder use.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/compiler.h"
#include "http/problem.h"

#define TYPE_PREFIX "urn:portico:error:"

struct out {
    char *buf;
    size_t size; /* capacity, including room for the NUL */
    size_t len;  /* bytes the output needs so far */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + 1 < o->size) {
        size_t room = o->size - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

#define put_lit(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_nul(struct out *o)
{
    if (o->size > 0)
        o->buf[o->len < o->size ? o->len : o->size - 1] = '\0';
}

static void put_int(struct out *o, int v)
{
    char tmp[12], *p = tmp + sizeof(tmp);
    unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    put(o, p, (size_t)(tmp + sizeof(tmp) - p));
}

/*
 * Length of the well-formed UTF-8 sequence at s[0..n) (2-4), or, when it is
 * ill-formed, minus the length of its maximal subpart (at least 1 byte).
 * s[0] is >= 0x80.
 */
static int utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xbf;
    int need;

    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return -1; /* continuation byte, C0, C1, F5..FF */
    }
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= n || s[i] < lo || s[i] > hi)
            return -i;
        lo = 0x80;
        hi = 0xbf;
    }
    return need;
}

static void escape(struct out *o, struct pt_str s)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s.ptr, *end = p + s.len;

    while (p < end) {
        /* copy the longest run that needs no escaping in one go */
        const uint8_t *run = p;
        while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
            p++;
        if (p != run)
            put(o, (const char *)run, (size_t)(p - run));
        if (p == end)
            break;

        uint8_t c = *p;
        if (c >= 0x80) {
            int n = utf8_seq(p, (size_t)(end - p));
            if (n > 0) {
                put(o, (const char *)p, (size_t)n);
                p += n;
            } else {
                put_lit(o, "\xef\xbf\xbd"); /* U+FFFD */
                p += -n;
            }
            continue;
        }
        p++;
        switch (c) {
        case '"':
            put_lit(o, "\\\"");
            break;
        case '\\':
            put_lit(o, "\\\\");
            break;
        case '\b':
            put_lit(o, "\\b");
            break;
        case '\f':
            put_lit(o, "\\f");
            break;
        case '\n':
            put_lit(o, "\\n");
            break;
        case '\r':
            put_lit(o, "\\r");
            break;
        case '\t':
            put_lit(o, "\\t");
            break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
            put(o, u, sizeof(u));
            break;
        }
        }
    }
}

size_t pt_json_escape(char *buf, size_t size, struct pt_str s)
{
    struct out o = {buf, size, 0};
    escape(&o, s);
    put_nul(&o);
    return o.len;
}

size_t pt_problem_json(char *buf, size_t size, int status, const char *type, struct pt_str detail,
                       struct pt_str request_id)
{
    struct out o = {buf, size, 0};

    if (type == NULL || type[0] == '\0')
        type = pt_problem_default_type(status);
    put_lit(&o, "{\"type\":\"" TYPE_PREFIX);
    escape(&o, pt_str_cstr(type));
    put_lit(&o, "\",\"title\":\"");
    escape(&o, pt_str_cstr(pt_http_reason(status)));
    put_lit(&o, "\",\"status\":");
    put_int(&o, status);
    if (detail.len > 0) {
        put_lit(&o, ",\"detail\":\"");
        escape(&o, detail);
        put_lit(&o, "\"");
    }
    if (request_id.len > 0) {
        put_lit(&o, ",\"request_id\":\"");
        escape(&o, request_id);
        put_lit(&o, "\"");
    }
    put_lit(&o, "}");
    put_nul(&o);
    return o.len;
}

/* RFC 9110 section 15 names, plus the other IANA-registered codes. */
static const char *const reason_1xx[] = {
    [0] = "Continue",
    [1] = "Switching Protocols",
    [2] = "Processing",
    [3] = "Early Hints",
};

static const char *const reason_2xx[] = {
    [0] = "OK",
    [1] = "Created",
    [2] = "Accepted",
    [3] = "Non-Authoritative Information",
    [4] = "No Content",
    [5] = "Reset Content",
    [6] = "Partial Content",
    [7] = "Multi-Status",
    [8] = "Already Reported",
    [26] = "IM Used",
};

static const char *const reason_3xx[] = {
    [0] = "Multiple Choices",   [1] = "Moved Permanently",  [2] = "Found",
    [3] = "See Other",          [4] = "Not Modified",       [5] = "Use Proxy",
    [7] = "Temporary Redirect", [8] = "Permanent Redirect",
};

static const char *const reason_4xx[] = {
    [0] = "Bad Request",
    [1] = "Unauthorized",
    [2] = "Payment Required",
    [3] = "Forbidden",
    [4] = "Not Found",
    [5] = "Method Not Allowed",
    [6] = "Not Acceptable",
    [7] = "Proxy Authentication Required",
    [8] = "Request Timeout",
    [9] = "Conflict",
    [10] = "Gone",
    [11] = "Length Required",
    [12] = "Precondition Failed",
    [13] = "Content Too Large",
    [14] = "URI Too Long",
    [15] = "Unsupported Media Type",
    [16] = "Range Not Satisfiable",
    [17] = "Expectation Failed",
    [18] = "I'm a teapot",
    [21] = "Misdirected Request",
    [22] = "Unprocessable Content",
    [23] = "Locked",
    [24] = "Failed Dependency",
    [25] = "Too Early",
    [26] = "Upgrade Required",
    [28] = "Precondition Required",
    [29] = "Too Many Requests",
    [31] = "Request Header Fields Too Large",
    [51] = "Unavailable For Legal Reasons",
};

static const char *const reason_5xx[] = {
    [0] = "Internal Server Error",
    [1] = "Not Implemented",
    [2] = "Bad Gateway",
    [3] = "Service Unavailable",
    [4] = "Gateway Timeout",
    [5] = "HTTP Version Not Supported",
    [6] = "Variant Also Negotiates",
    [7] = "Insufficient Storage",
    [8] = "Loop Detected",
    [10] = "Not Extended",
    [11] = "Network Authentication Required",
};

static const char *const *const reason_class[6] = {NULL,       reason_1xx, reason_2xx,
                                                   reason_3xx, reason_4xx, reason_5xx};
static const size_t reason_count[6] = {0,
                                       PT_ARRAY_SIZE(reason_1xx),
                                       PT_ARRAY_SIZE(reason_2xx),
                                       PT_ARRAY_SIZE(reason_3xx),
                                       PT_ARRAY_SIZE(reason_4xx),
                                       PT_ARRAY_SIZE(reason_5xx)};

const char *pt_http_reason(int status)
{
    if (status < 100 || status > 599)
        return "Unknown";
    int cls = status / 100, i = status % 100;
    if ((size_t)i >= reason_count[cls] || reason_class[cls][i] == NULL)
        return "Unknown";
    return reason_class[cls][i];
}

/* Slugs for the statuses the gateway (or a plugin) answers itself. */
static const char *const type_4xx[] = {
    [0] = "bad-request",
    [1] = "unauthorized",
    [2] = "payment-required",
    [3] = "forbidden",
    [4] = "not-found",
    [5] = "method-not-allowed",
    [6] = "not-acceptable",
    [7] = "proxy-authentication-required",
    [8] = "request-timeout",
    [9] = "conflict",
    [10] = "gone",
    [11] = "length-required",
    [12] = "precondition-failed",
    [13] = "payload-too-large",
    [14] = "uri-too-long",
    [15] = "unsupported-media-type",
    [16] = "range-not-satisfiable",
    [17] = "expectation-failed",
    [21] = "misdirected-request",
    [22] = "unprocessable-content",
    [25] = "too-early",
    [26] = "upgrade-required",
    [28] = "precondition-required",
    [29] = "rate-limited",
    [31] = "request-header-fields-too-large",
    [51] = "unavailable-for-legal-reasons",
};

static const char *const type_5xx[] = {
    [0] = "internal-error",       [1] = "not-implemented", [2] = "bad-gateway",
    [3] = "service-unavailable",  [4] = "gateway-timeout", [5] = "http-version-not-supported",
    [7] = "insufficient-storage", [8] = "loop-detected",
};

const char *pt_problem_default_type(int status)
{
    const char *t = NULL;
    if (status >= 400 && status < 400 + (int)PT_ARRAY_SIZE(type_4xx))
        t = type_4xx[status - 400];
    else if (status >= 500 && status < 500 + (int)PT_ARRAY_SIZE(type_5xx))
        t = type_5xx[status - 500];
    if (t != NULL)
        return t;
    if (status >= 400 && status < 500)
        return "client-error";
    if (status >= 500 && status < 600)
        return "server-error";
    return "error";
}
