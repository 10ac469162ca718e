/*
 * IP addresses and CIDR blocks.
 *
 * The parsers are our own rather than inet_pton() because the input is a
 * view (not NUL-terminated), comes straight from X-Forwarded-For, and every
 * accepted spelling must be a deliberate choice:
 *
 *   - IPv4 is the strict dotted quad: exactly four decimal parts, 0-255,
 *     no leading zeros ("01.2.3.4" is refused: some stacks read it as
 *     octal, so accepting it would let two parsers disagree on one address).
 *     "1.2.3", "1.2.3.4.5", "0x7f.1.1.1" and "1.2.3.4 " are refused too.
 *   - IPv6 is RFC 4291 text: up to eight 1-4 digit hex groups (either case),
 *     one "::", an optional dotted-quad tail.  Zone ids ("fe80::1%eth0")
 *     are refused.
 *   - IPv4-mapped addresses (::ffff:a.b.c.d) are stored as plain IPv4 by
 *     pt_ip_parse() and pt_ip_from_sockaddr(), so a client gets the same
 *     address (and the same rate-limit key, the same log text) whether it
 *     arrived on an IPv4 socket or a dual-stack IPv6 one.
 *   - A CIDR block with host bits set ("10.1.2.3/8") is accepted and masked
 *     to 10.0.0.0/8, as nginx's allow/deny does.  The prefix length is
 *     decimal without leading zeros, at most 32 or 128.
 */
#include <netinet/in.h>
#include <string.h>

#include "core/str.h"
#include "net/cidr.h"

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Strict dotted quad, the whole of p[0..n). */
static int parse_v4(const char *p, size_t n, uint8_t out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || p[i] != '.')
                return -1;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && i - start < 3) {
            v = v * 10 + (unsigned)(p[i] - '0');
            i++;
        }
        size_t len = i - start;
        if (len == 0 || v > 255 || (len > 1 && p[start] == '0'))
            return -1;
        out[part] = (uint8_t)v;
    }
    return i == n ? 0 : -1;
}

/* RFC 4291 section 2.2 text form, the whole of p[0..n); no brackets, no zone. */
static int parse_v6(const char *p, size_t n, uint8_t out[16])
{
    uint16_t groups[8];
    int ngroups = 0, gap = -1; /* gap: index in groups where "::" stands */
    size_t i = 0;

    if (n < 2)
        return -1;
    if (p[0] == ':') {
        if (p[1] != ':')
            return -1;
        gap = 0;
        i = 2;
    }
    while (i < n) {
        if (ngroups == 8)
            return -1;
        size_t start = i;
        unsigned v = 0;
        int d;
        while (i < n && i - start < 5 && (d = pt_hexval(p[i])) >= 0) {
            v = (v << 4) | (unsigned)d;
            i++;
        }
        if (i < n && p[i] == '.') {
            /* dotted-quad tail: takes the last two groups, ends the input */
            uint8_t v4[4];
            if (ngroups > 6 || parse_v4(p + start, n - start, v4) != 0)
                return -1;
            groups[ngroups++] = (uint16_t)(v4[0] << 8 | v4[1]);
            groups[ngroups++] = (uint16_t)(v4[2] << 8 | v4[3]);
            i = n;
            break;
        }
        if (i == start || i - start > 4)
            return -1;
        groups[ngroups++] = (uint16_t)v;
        if (i == n)
            break;
        if (p[i] != ':')
            return -1;
        i++;
        if (i < n && p[i] == ':') {
            if (gap >= 0)
                return -1;
            gap = ngroups;
            i++;
        } else if (i == n) {
            return -1; /* trailing single colon */
        }
    }
    if (gap < 0 ? ngroups != 8 : ngroups > 7)
        return -1;

    memset(out, 0, 16);
    int tail = gap < 0 ? 0 : ngroups - gap; /* groups after the "::" */
    int head = ngroups - tail;
    for (int g = 0; g < head; g++) {
        out[2 * g] = (uint8_t)(groups[g] >> 8);
        out[2 * g + 1] = (uint8_t)groups[g];
    }
    for (int g = 0; g < tail; g++) {
        int dst = 8 - tail + g;
        out[2 * dst] = (uint8_t)(groups[head + g] >> 8);
        out[2 * dst + 1] = (uint8_t)groups[head + g];
    }
    return 0;
}

static bool is_v4_mapped(const uint8_t a[16])
{
    return memcmp(a, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

static void set_v4(struct pt_ip *ip, const uint8_t a[4])
{
    memset(ip, 0, sizeof(*ip));
    ip->family = AF_INET;
    memcpy(ip->addr, a, 4);
}

/* Store a 16-byte address, turning ::ffff:a.b.c.d into plain IPv4. */
static void set_v6(struct pt_ip *ip, const uint8_t a[16])
{
    if (is_v4_mapped(a)) {
        set_v4(ip, a + 12);
        return;
    }
    ip->family = AF_INET6;
    memcpy(ip->addr, a, 16);
}

/* A bare address: dotted quad, or IPv6 text when it contains a colon. */
static int parse_bare(const char *p, size_t n, struct pt_ip *out)
{
    uint8_t a[16];
    if (memchr(p, ':', n) != NULL) {
        if (parse_v6(p, n, a) != 0)
            return -1;
        set_v6(out, a);
        return 0;
    }
    if (parse_v4(p, n, a) != 0)
        return -1;
    set_v4(out, a);
    return 0;
}

int pt_ip_parse(struct pt_str s, struct pt_ip *out)
{
    if (s.len >= 2 && s.ptr[0] == '[' && s.ptr[s.len - 1] == ']') {
        uint8_t a[16];
        if (parse_v6(s.ptr + 1, s.len - 2, a) != 0)
            return -1;
        set_v6(out, a);
        return 0;
    }
    if (s.len == 0)
        return -1;
    return parse_bare(s.ptr, s.len, out);
}

/* Zero every bit after the first `bits` of addr (len bytes). */
static void mask_bits(uint8_t *addr, size_t len, unsigned bits)
{
    for (size_t i = 0; i < len; i++) {
        if (bits >= 8) {
            bits -= 8;
            continue;
        }
        addr[i] &= (uint8_t)(0xff00u >> bits);
        bits = 0;
    }
}

int pt_cidr_parse(struct pt_str s, struct pt_cidr *out)
{
    const char *slash = s.len == 0 ? NULL : memchr(s.ptr, '/', s.len);
    size_t alen = slash == NULL ? s.len : (size_t)(slash - s.ptr);
    struct pt_ip ip;
    uint8_t a[16];
    unsigned max, bits;

    if (alen == 0)
        return -1;
    memset(&ip, 0, sizeof(ip));
    if (memchr(s.ptr, ':', alen) != NULL) {
        if (parse_v6(s.ptr, alen, a) != 0)
            return -1;
        ip.family = AF_INET6;
        memcpy(ip.addr, a, 16);
        max = 128;
    } else {
        if (parse_v4(s.ptr, alen, a) != 0)
            return -1;
        set_v4(&ip, a);
        max = 32;
    }

    bits = max;
    if (slash != NULL) {
        const char *p = slash + 1, *end = s.ptr + s.len;
        size_t n = (size_t)(end - p);
        if (n == 0 || n > 3 || (n > 1 && p[0] == '0'))
            return -1;
        bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return -1;
    }

    /* ::ffff:0:0/96 and narrower are IPv4 blocks in disguise */
    if (ip.family == AF_INET6 && bits >= 96 && is_v4_mapped(ip.addr)) {
        uint8_t v4[4];
        memcpy(v4, ip.addr + 12, 4);
        set_v4(&ip, v4);
        bits -= 96;
    }
    mask_bits(ip.addr, ip.family == AF_INET ? 4 : 16, bits);
    out->ip = ip;
    out->bits = (uint8_t)bits;
    return 0;
}

int pt_ip_from_sockaddr(const struct sockaddr *sa, struct pt_ip *out)
{
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        set_v4(out, (const uint8_t *)&sin->sin_addr);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        set_v6(out, (const uint8_t *)&sin6->sin6_addr);
        return 0;
    }
    return -1;
}

/* Do the first `bits` bits of a and b agree? */
static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    size_t whole = bits / 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (bits % 8 == 0)
        return true;
    uint8_t m = (uint8_t)(0xff00u >> (bits % 8));
    return ((a[whole] ^ b[whole]) & m) == 0;
}

bool pt_cidr_contains(const struct pt_cidr *c, const struct pt_ip *ip)
{
    if (c->ip.family == ip->family)
        return prefix_eq(c->ip.addr, ip->addr, c->bits);
    if (c->ip.family == AF_INET && ip->family == AF_INET6) {
        /* only reachable for a hand-built pt_ip: the parsers unmap */
        return is_v4_mapped(ip->addr) && prefix_eq(c->ip.addr, ip->addr + 12, c->bits);
    }
    if (c->ip.family == AF_INET6 && ip->family == AF_INET) {
        /* an IPv4 address is ::ffff:a.b.c.d to an IPv6 block (e.g. ::/0) */
        uint8_t mapped[16];
        memcpy(mapped, v4_mapped_prefix, 12);
        memcpy(mapped + 12, ip->addr, 4);
        return prefix_eq(c->ip.addr, mapped, c->bits);
    }
    return false;
}

bool pt_cidr_list_contains(const struct pt_cidr *list, size_t n, const struct pt_ip *ip)
{
    for (size_t i = 0; i < n; i++)
        if (pt_cidr_contains(&list[i], ip))
            return true;
    return false;
}

static char *fmt_u8(char *p, unsigned v)
{
    if (v >= 100)
        *p++ = (char)('0' + v / 100);
    if (v >= 10)
        *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

static char *fmt_v4(char *p, const uint8_t a[4])
{
    for (int i = 0; i < 4; i++) {
        if (i > 0)
            *p++ = '.';
        p = fmt_u8(p, a[i]);
    }
    return p;
}

/* RFC 5952: lower case, no leading zeros, the longest run (first on a tie)
 * of two or more zero groups as "::", ::ffff:a.b.c.d for mapped addresses. */
static char *fmt_v6(char *p, const uint8_t a[16])
{
    static const char hex[] = "0123456789abcdef";
    int best = -1, best_len = 1, run = -1;

    if (is_v4_mapped(a)) {
        memcpy(p, "::ffff:", 7);
        return fmt_v4(p + 7, a + 12);
    }
    for (int g = 0; g <= 8; g++) {
        bool zero = g < 8 && a[2 * g] == 0 && a[2 * g + 1] == 0;
        if (zero && run < 0)
            run = g;
        if (!zero && run >= 0) {
            if (g - run > best_len) {
                best = run;
                best_len = g - run;
            }
            run = -1;
        }
    }
    for (int g = 0; g < 8; g++) {
        if (g == best) {
            *p++ = ':';
            if (g == 0)
                *p++ = ':';
            g += best_len - 1;
            continue;
        }
        unsigned v = (unsigned)a[2 * g] << 8 | a[2 * g + 1];
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned d = (v >> shift) & 0xf;
            if (d != 0 || started || shift == 0) {
                *p++ = hex[d];
                started = true;
            }
        }
        if (g < 7)
            *p++ = ':';
    }
    return p;
}

size_t pt_ip_format(const struct pt_ip *ip, char *buf, size_t size)
{
    char tmp[64];
    char *end = ip->family == AF_INET ? fmt_v4(tmp, ip->addr) : fmt_v6(tmp, ip->addr);
    size_t len = (size_t)(end - tmp);
    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(buf, tmp, n);
        buf[n] = '\0';
    }
    return len;
}

/*
 * One X-Forwarded-For element, already trimmed.  Besides a bare address,
 * the forms proxies write in the wild are accepted: "[v6]", "[v6]:port" and
 * "v4:port" (the port is checked, then dropped).  A bare IPv6 address is
 * never read as "address:port" ("::1:443" is the address ::1:443).
 */
static int parse_xff_elem(struct pt_str e, struct pt_ip *out)
{
    const char *p = e.ptr, *end = e.ptr + e.len, *port = NULL;
    uint8_t a[16];

    if (e.len == 0)
        return -1;
    if (p[0] == '[') {
        const char *rb = memchr(p, ']', e.len);
        if (rb == NULL || parse_v6(p + 1, (size_t)(rb - p - 1), a) != 0)
            return -1;
        if (rb + 1 != end) {
            if (rb[1] != ':')
                return -1;
            port = rb + 2;
        }
        set_v6(out, a);
    } else {
        const char *colon = memchr(p, ':', e.len);
        if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)) == NULL) {
            /* exactly one colon: "a.b.c.d:port" */
            if (parse_v4(p, (size_t)(colon - p), a) != 0)
                return -1;
            set_v4(out, a);
            port = colon + 1;
        } else if (parse_bare(p, e.len, out) != 0) {
            return -1;
        }
    }
    if (port != NULL) {
        size_t n = (size_t)(end - port);
        unsigned v = 0;
        if (n == 0 || n > 5)
            return -1;
        for (; port < end; port++) {
            if (*port < '0' || *port > '9')
                return -1;
            v = v * 10 + (unsigned)(*port - '0');
        }
        if (v > 65535)
            return -1;
    }
    return 0;
}

void pt_client_ip(const struct pt_ip *peer, struct pt_str xff, const struct pt_cidr *trusted,
                  size_t ntrusted, struct pt_ip *client)
{
    *client = *peer;
    if (!pt_cidr_list_contains(trusted, ntrusted, peer))
        return;

    /* right to left: each hop appended the address it saw */
    size_t end = xff.len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff.ptr[start - 1] != ',')
            start--;
        struct pt_str e = pt_str_trim_ows(pt_str_make(xff.ptr + start, end - start));
        end = start > 0 ? start - 1 : 0;
        if (e.len == 0)
            continue; /* empty list elements are allowed (RFC 9110 5.6.1) */
        struct pt_ip ip;
        if (parse_xff_elem(e, &ip) != 0)
            return; /* garbage: trust nothing further left */
        *client = ip;
        if (!pt_cidr_list_contains(trusted, ntrusted, &ip))
            return;
    }
}
