#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "test.h"
#include "core/compiler.h"
#include "../../../src/net/cidr.c"

static const char *fmt(const struct pt_ip *ip)
{
    static char buf[64];
    pt_ip_format(ip, buf, sizeof(buf));
    return buf;
}

/* Parse s as an address and print it back; "ERR" when it does not parse. */
static const char *roundtrip(const char *s)
{
    struct pt_ip ip;
    if (pt_ip_parse(pt_str_cstr(s), &ip) != 0)
        return "ERR";
    return fmt(&ip);
}

static const char *cidr_rt(const char *s)
{
    static char buf[80];
    struct pt_cidr c;
    if (pt_cidr_parse(pt_str_cstr(s), &c) != 0)
        return "ERR";
    size_t n = pt_ip_format(&c.ip, buf, sizeof(buf));
    snprintf(buf + n, sizeof(buf) - n, "/%u", c.bits);
    return buf;
}

/* Compare our IPv6 parser with inet_pton on the same input. */
static void same_as_inet_pton(const char *s)
{
    struct in6_addr ref;
    uint8_t mine[16];
    int want = inet_pton(AF_INET6, s, &ref) == 1 ? 0 : -1;
    int got = parse_v6(s, strlen(s), mine);
    is_int(got, want, "parse_v6(\"%s\") agrees with inet_pton", s);
    if (got == 0 && want == 0)
        ok(memcmp(mine, &ref, 16) == 0, "same bytes for %s", s);
}

static void test_ipv4(void)
{
    is_str(roundtrip("1.2.3.4"), "1.2.3.4", "plain v4");
    is_str(roundtrip("0.0.0.0"), "0.0.0.0", "zero");
    is_str(roundtrip("255.255.255.255"), "255.255.255.255", "broadcast");
    is_str(roundtrip("10.0.0.10"), "10.0.0.10", "zero in the middle");
    const char *bad[] = {"",         "1.2.3",     "1.2.3.4.5",  "256.1.1.1",
                         "01.2.3.4", "1.2.3.04",  "1.2.3.4 ",   " 1.2.3.4",
                         "1..2.3",   "1.2.3.",    ".1.2.3",     "0x7f.0.0.1",
                         "1.2.3.-1", "1.2.3.4/8", "1.2.3.1000", "a.b.c.d"};
    for (size_t i = 0; i < PT_ARRAY_SIZE(bad); i++)
        is_str(roundtrip(bad[i]), "ERR", "v4 rejects \"%s\"", bad[i]);
    struct pt_ip ip;
    is_int(pt_ip_parse(pt_str_make("1.2.3.4", 5), &ip), -1, "a view is not read past its end");
    is_int(pt_ip_parse(pt_str_make("1.2.3.45", 7), &ip), 0, "a view ends where it says");
    is_str(fmt(&ip), "1.2.3.4", "... and means what it covers");
    is_int(pt_ip_parse(PT_STR_NULL, &ip), -1, "null view");
}

static void test_ipv6(void)
{
    is_str(roundtrip("::"), "::", "unspecified");
    is_str(roundtrip("::1"), "::1", "loopback");
    is_str(roundtrip("2001:DB8::1"), "2001:db8::1", "upper case accepted, printed lower");
    is_str(roundtrip("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1", "full form");
    is_str(roundtrip("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1", "first of equal runs");
    is_str(roundtrip("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1", "longest run compressed");
    is_str(roundtrip("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1", "one zero group kept");
    is_str(roundtrip("1::"), "1::", "trailing ::");
    is_str(roundtrip("1:2:3:4:5:6:7::"), "1:2:3:4:5:6:7:0", ":: for one group");
    is_str(roundtrip("::1.2.3.4"), "::102:304", "v4-compatible stays v6");
    is_str(roundtrip("1:2:3:4:5:6:1.2.3.4"), "1:2:3:4:5:6:102:304", "dotted tail");
    is_str(roundtrip("[::1]"), "::1", "brackets");
    is_str(roundtrip("fe80::1:2"), "fe80::1:2", "link local");
    const char *bad[] = {":",
                         ":::",
                         "1:2",
                         "1::2::3",
                         "12345::",
                         "::g",
                         "1:2:3:4:5:6:7:8:9",
                         "1:2:3:4:5:6:7:8::",
                         "::1:2:3:4:5:6:7:8",
                         "1:",
                         ":1",
                         "1::2:",
                         "fe80::1%eth0",
                         "[::1",
                         "::1]",
                         "[1.2.3.4]",
                         "::ffff:1.2.3",
                         "::1.2.3.4.5",
                         "1.2.3.4::",
                         "[]",
                         "1:2:3:4:5:6:7:1.2.3.4",
                         "::01.2.3.4",
                         "[[::1]]",
                         " ::1"};
    for (size_t i = 0; i < PT_ARRAY_SIZE(bad); i++)
        is_str(roundtrip(bad[i]), "ERR", "v6 rejects \"%s\"", bad[i]);

    const char *cmp[] = {"::",
                         "::1",
                         "1::",
                         "1:2:3:4:5:6:7:8",
                         "1:2:3:4:5:6:7::",
                         "::2:3:4:5:6:7:8",
                         "1::8",
                         "::1.2.3.4",
                         "1:2:3:4:5:6:1.2.3.4",
                         "1:2:3:4:5:6:7:1.2.3.4",
                         "::ffff:1.2.3.4",
                         "1::2::3",
                         ":::",
                         "1:::2",
                         "12345::",
                         "abcd:ef01:2345:6789:ABCD:EF01:2345:6789",
                         "1:2:3:4:5:6:7",
                         "::1.2.3",
                         "::256.1.1.1",
                         ":1::",
                         "1::2:",
                         "1:2:3:4:5:6:7:8:9",
                         "::ffff:01.2.3.4"};
    for (size_t i = 0; i < PT_ARRAY_SIZE(cmp); i++)
        same_as_inet_pton(cmp[i]);

    /* random strings over the address alphabet: same verdict and bytes as glibc */
    static const char alpha[] = "0123456789abcdefF::::..";
    uint64_t x = 0x243f6a8885a308d3ull;
    int disagree = 0, valid = 0;
    for (int i = 0; i < 200000; i++) {
        char s[48];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = 2 + x % 40;
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s[k] = alpha[x % (sizeof(alpha) - 1)];
        }
        s[n] = '\0';
        struct in6_addr ref;
        uint8_t mine[16];
        int want = inet_pton(AF_INET6, s, &ref) == 1 ? 0 : -1;
        int got = parse_v6(s, n, mine);
        valid += want == 0;
        if (got != want || (got == 0 && memcmp(mine, &ref, 16) != 0)) {
            if (disagree++ < 3)
                note("disagree on \"%s\": ours %d, inet_pton %d", s, got, want);
        }
    }
    is_int(disagree, 0, "random strings: parse_v6 agrees with inet_pton (%d valid)", valid);
}

static void test_mapped(void)
{
    struct pt_ip ip;
    is_int(pt_ip_parse(pt_str_cstr("::ffff:10.1.2.3"), &ip), 0, "mapped parses");
    is_int(ip.family, AF_INET, "mapped becomes IPv4");
    is_str(fmt(&ip), "10.1.2.3", "mapped printed as IPv4");
    is_int(pt_ip_parse(pt_str_cstr("::FFFF:a01:203"), &ip), 0, "mapped in hex");
    is_str(fmt(&ip), "10.1.2.3", "mapped hex printed as IPv4");

    /* a hand-built mapped address still formats and matches */
    struct pt_ip m = {.family = AF_INET6};
    m.addr[10] = m.addr[11] = 0xff;
    m.addr[12] = 10, m.addr[13] = 1, m.addr[14] = 2, m.addr[15] = 3;
    is_str(fmt(&m), "::ffff:10.1.2.3", "RFC 5952 mapped form");
    struct pt_cidr c;
    pt_cidr_parse(pt_str_cstr("10.0.0.0/8"), &c);
    ok(pt_cidr_contains(&c, &m), "v6 mapped matches v4 block");
    pt_cidr_parse(pt_str_cstr("11.0.0.0/8"), &c);
    ok(!pt_cidr_contains(&c, &m), "v6 mapped outside v4 block");

    /* sockaddr */
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    memcpy(&s6.sin6_addr, m.addr, 16);
    is_int(pt_ip_from_sockaddr((struct sockaddr *)&s6, &ip), 0, "sockaddr_in6");
    is_int(ip.family, AF_INET, "dual-stack peer unmapped");
    is_str(fmt(&ip), "10.1.2.3", "dual-stack peer text");
    inet_pton(AF_INET6, "2001:db8::7", &s6.sin6_addr);
    pt_ip_from_sockaddr((struct sockaddr *)&s6, &ip);
    is_str(fmt(&ip), "2001:db8::7", "v6 peer");
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.9", &s4.sin_addr);
    is_int(pt_ip_from_sockaddr((struct sockaddr *)&s4, &ip), 0, "sockaddr_in");
    is_str(fmt(&ip), "192.0.2.9", "v4 peer");
    struct sockaddr su = {.sa_family = AF_UNIX};
    is_int(pt_ip_from_sockaddr(&su, &ip), -1, "AF_UNIX refused");
    is_int(pt_ip_from_sockaddr(NULL, &ip), -1, "NULL refused");
}

static void test_cidr(void)
{
    is_str(cidr_rt("10.0.0.0/8"), "10.0.0.0/8", "v4 block");
    is_str(cidr_rt("10.1.2.3/8"), "10.0.0.0/8", "host bits masked");
    is_str(cidr_rt("10.1.2.3/20"), "10.1.0.0/20", "partial byte masked");
    is_str(cidr_rt("10.1.2.3"), "10.1.2.3/32", "bare v4 is /32");
    is_str(cidr_rt("0.0.0.0/0"), "0.0.0.0/0", "everything");
    is_str(cidr_rt("1.2.3.4/0"), "0.0.0.0/0", "/0 masks all");
    is_str(cidr_rt("2001:db8::/32"), "2001:db8::/32", "v6 block");
    is_str(cidr_rt("2001:db8:ffff::1/33"), "2001:db8:8000::/33", "v6 host bits masked");
    is_str(cidr_rt("::1"), "::1/128", "bare v6 is /128");
    is_str(cidr_rt("::ffff:10.0.0.0/104"), "10.0.0.0/8", "mapped block becomes v4");
    is_str(cidr_rt("::ffff:10.1.2.3"), "10.1.2.3/32", "bare mapped becomes v4 /32");
    is_str(cidr_rt("::ffff:0:0/95"), "::fffe:0:0/95", "wider than mapped stays v6");
    const char *bad[] = {"10.0.0.0/33", "::/129",      "10.0.0.0/",     "/8",
                         "10.0.0.0/08", "10.0.0.0/-1", "10.0.0.0/8/8",  "10.0.0.0/ 8",
                         "1.2.3/8",     "[::1]/128",   "10.0.0.0/1000", "",
                         "10.0.0.0/a"};
    for (size_t i = 0; i < PT_ARRAY_SIZE(bad); i++)
        is_str(cidr_rt(bad[i]), "ERR", "cidr rejects \"%s\"", bad[i]);

    struct pt_cidr c;
    struct pt_ip ip;
    pt_cidr_parse(pt_str_cstr("10.0.0.0/8"), &c);
    pt_ip_parse(pt_str_cstr("10.255.1.1"), &ip);
    ok(pt_cidr_contains(&c, &ip), "10.255.1.1 in 10/8");
    pt_ip_parse(pt_str_cstr("11.0.0.0"), &ip);
    ok(!pt_cidr_contains(&c, &ip), "11.0.0.0 not in 10/8");
    pt_cidr_parse(pt_str_cstr("192.168.1.128/25"), &c);
    pt_ip_parse(pt_str_cstr("192.168.1.200"), &ip);
    ok(pt_cidr_contains(&c, &ip), "odd prefix: inside");
    pt_ip_parse(pt_str_cstr("192.168.1.127"), &ip);
    ok(!pt_cidr_contains(&c, &ip), "odd prefix: outside");
    pt_cidr_parse(pt_str_cstr("2001:db8::/32"), &c);
    pt_ip_parse(pt_str_cstr("2001:db8:1::5"), &ip);
    ok(pt_cidr_contains(&c, &ip), "v6 inside");
    pt_ip_parse(pt_str_cstr("2001:db9::5"), &ip);
    ok(!pt_cidr_contains(&c, &ip), "v6 outside");
    pt_ip_parse(pt_str_cstr("32.1.13.184"), &ip); /* same first bytes as 2001:db8 */
    ok(!pt_cidr_contains(&c, &ip), "v4 never in a v6 block that is not mapped");
    pt_cidr_parse(pt_str_cstr("::/0"), &c);
    ok(pt_cidr_contains(&c, &ip), "::/0 holds IPv4 too (as ::ffff:a.b.c.d)");
    pt_cidr_parse(pt_str_cstr("0.0.0.0/0"), &c);
    pt_ip_parse(pt_str_cstr("::1"), &ip);
    ok(!pt_cidr_contains(&c, &ip), "0/0 does not hold IPv6");

    struct pt_cidr list[2];
    pt_cidr_parse(pt_str_cstr("10.0.0.0/8"), &list[0]);
    pt_cidr_parse(pt_str_cstr("fd00::/8"), &list[1]);
    pt_ip_parse(pt_str_cstr("fd12::1"), &ip);
    ok(pt_cidr_list_contains(list, 2, &ip), "list: second entry");
    pt_ip_parse(pt_str_cstr("192.0.2.1"), &ip);
    ok(!pt_cidr_list_contains(list, 2, &ip), "list: none");
    ok(!pt_cidr_list_contains(NULL, 0, &ip), "empty list");
}

static void test_format(void)
{
    struct pt_ip ip;
    char small[8];
    pt_ip_parse(pt_str_cstr("2001:db8::1"), &ip);
    size_t n = pt_ip_format(&ip, small, sizeof(small));
    is_int(n, 11, "returns the full length");
    is_str(small, "2001:db", "truncated and terminated");
    is_int(pt_ip_format(&ip, NULL, 0), 11, "size 0 writes nothing");
    char big[46];
    pt_ip_parse(pt_str_cstr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), &ip);
    is_int(pt_ip_format(&ip, big, sizeof(big)), 39, "longest v6");
    pt_ip_parse(pt_str_cstr("0:0:1:0:0:0:1:0"), &ip);
    is_str(fmt(&ip), "0:0:1::1:0", "longer second run wins");

    /* random zero-heavy addresses: our text parses back (ours and libc's),
     * and matches glibc's inet_ntop except where glibc prints the deprecated
     * IPv4-compatible dotted form (first six groups zero) */
    uint64_t x = 88172645463325252ull;
    int bad_rt = 0, bad_ntop = 0;
    for (int i = 0; i < 20000; i++) {
        struct pt_ip r = {.family = AF_INET6}, back;
        for (int g = 0; g < 8; g++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint16_t v = (x % 3 == 0) ? (uint16_t)(x >> 20) : 0;
            r.addr[2 * g] = (uint8_t)(v >> 8);
            r.addr[2 * g + 1] = (uint8_t)v;
        }
        char mine[64], libc[64];
        pt_ip_format(&r, mine, sizeof(mine));
        struct in6_addr a6;
        if (pt_ip_parse(pt_str_cstr(mine), &back) != 0 || inet_pton(AF_INET6, mine, &a6) != 1 ||
            (back.family == AF_INET6 && memcmp(back.addr, r.addr, 16) != 0))
            bad_rt++;
        inet_ntop(AF_INET6, r.addr, libc, sizeof(libc));
        static const uint8_t zero6[12];
        if (memcmp(r.addr, zero6, 12) != 0 && !is_v4_mapped(r.addr) && strcmp(mine, libc) != 0) {
            if (bad_ntop++ == 0)
                note("ours %s, glibc %s", mine, libc);
        }
    }
    is_int(bad_rt, 0, "random v6 addresses round-trip");
    is_int(bad_ntop, 0, "random v6 addresses print as glibc does");
}

static const char *client(const char *peer, const char *xff, const char *const *trusted,
                          size_t ntrusted)
{
    struct pt_cidr list[8];
    struct pt_ip p, c;
    for (size_t i = 0; i < ntrusted; i++)
        if (pt_cidr_parse(pt_str_cstr(trusted[i]), &list[i]) != 0)
            return "BAD TEST";
    if (pt_ip_parse(pt_str_cstr(peer), &p) != 0)
        return "BAD TEST";
    pt_client_ip(&p, pt_str_cstr(xff), list, ntrusted, &c);
    return fmt(&c);
}

static void test_client_ip(void)
{
    const char *t1[] = {"10.0.0.0/8"};
    const char *t2[] = {"10.0.0.0/8", "2001:db8::/32"};

    is_str(client("203.0.113.5", "1.1.1.1", t1, 1), "203.0.113.5", "untrusted peer: peer");
    is_str(client("10.0.0.1", "", t1, 1), "10.0.0.1", "trusted peer, no XFF: peer");
    is_str(client("10.0.0.1", "1.1.1.1", t1, 1), "1.1.1.1", "one hop");
    is_str(client("10.0.0.1", "6.6.6.6, 1.1.1.1, 10.0.0.2", t1, 1), "1.1.1.1",
           "right-most untrusted, spoofed left part ignored");
    is_str(client("10.0.0.1", "10.0.0.3, 10.0.0.2", t1, 1), "10.0.0.3", "all trusted: left-most");
    is_str(client("10.0.0.1", "1.1.1.1,10.0.0.2", t1, 1), "1.1.1.1", "no space");
    is_str(client("10.0.0.1", " \t1.1.1.1 ,\t 10.0.0.2 ", t1, 1), "1.1.1.1", "OWS trimmed");
    is_str(client("10.0.0.1", "1.1.1.1, , 10.0.0.2,", t1, 1), "1.1.1.1", "empty elements skipped");
    is_str(client("10.0.0.1", ",,,", t1, 1), "10.0.0.1", "only empty elements: peer");
    is_str(client("10.0.0.1", "1.1.1.1, garbage", t1, 1), "10.0.0.1",
           "garbage right-most: stop at the peer");
    is_str(client("10.0.0.1", "1.1.1.1, unknown, 10.0.0.2", t1, 1), "10.0.0.2",
           "garbage in the middle: last good address");
    is_str(client("10.0.0.1", "01.1.1.1, 10.0.0.2", t1, 1), "10.0.0.2", "leading zero is garbage");
    is_str(client("10.0.0.1", "1.1.1.1:5678", t1, 1), "1.1.1.1", "v4 with port");
    is_str(client("10.0.0.1", "[2001:db9::1]:443", t1, 1), "2001:db9::1", "bracketed v6 with port");
    is_str(client("10.0.0.1", "[2001:db9::1]", t1, 1), "2001:db9::1", "bracketed v6");
    is_str(client("10.0.0.1", "2001:db9::1", t1, 1), "2001:db9::1", "bare v6");
    is_str(client("10.0.0.1", "::1:443", t1, 1), "::1:443", "bare v6 never split on a port");
    is_str(client("10.0.0.1", "1.1.1.1:", t1, 1), "10.0.0.1", "empty port is garbage");
    is_str(client("10.0.0.1", "1.1.1.1:65536", t1, 1), "10.0.0.1", "port out of range");
    is_str(client("10.0.0.1", "[::1]x", t1, 1), "10.0.0.1", "junk after bracket");
    is_str(client("10.0.0.1", "[::1]:", t1, 1), "10.0.0.1", "bracket, empty port");
    is_str(client("10.0.0.1", "::ffff:1.1.1.1", t1, 1), "1.1.1.1", "mapped client unmapped");
    is_str(client("10.0.0.1", "1.1.1.1, ::ffff:10.9.9.9", t1, 1), "1.1.1.1",
           "mapped trusted hop skipped");
    is_str(client("2001:db8::1", "5.5.5.5, 2001:db8::2, 10.1.1.1", t2, 2), "5.5.5.5",
           "mixed families");
    is_str(client("::ffff:10.0.0.1", "7.7.7.7", t1, 1), "7.7.7.7", "mapped trusted peer");
    is_str(client("10.0.0.1", "1.1.1.1", NULL, 0), "10.0.0.1", "no trusted proxies: peer");
}

int main(void)
{
    test_ipv4();
    test_ipv6();
    test_mapped();
    test_cidr();
    test_format();
    test_client_ip();
    return done_testing();
}
