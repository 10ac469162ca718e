/*
 * Fuzz target for client addresses and error bodies: pt_ip_parse,
 * pt_cidr_parse, pt_client_ip and pt_problem_json.
 *
 * The input is read as lines:
 *   line 1   trusted proxies, comma-separated CIDRs
 *   line 2   the peer address
 *   line 3   the X-Forwarded-For value
 *   rest     the problem detail (any bytes)
 * and the whole input is also given to each parser on its own.
 *
 * Besides "no crash, no sanitizer report", it checks properties:
 *   - an address that parses prints back to text that parses to the same
 *     address, and agrees with glibc's inet_pton on what is valid;
 *   - a CIDR block that parses has no host bits and contains its address;
 *   - pt_client_ip returns the peer when the peer is not trusted;
 *   - the problem body is valid JSON (jansson) and its length does not
 *     depend on the buffer size.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/problem.h"
#include "net/cidr.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static struct pt_str next_line(struct pt_str *rest)
{
    const char *nl = rest->len == 0 ? NULL : memchr(rest->ptr, '\n', rest->len);
    size_t n = nl == NULL ? rest->len : (size_t)(nl - rest->ptr);
    struct pt_str line = pt_str_make(rest->ptr, n);
    size_t skip = nl == NULL ? n : n + 1;
    rest->ptr += skip;
    rest->len -= skip;
    return line;
}

static bool ip_eq(const struct pt_ip *a, const struct pt_ip *b)
{
    return a->family == b->family && memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

static void check_ip(struct pt_str s)
{
    struct pt_ip ip, back;
    int rc = pt_ip_parse(s, &ip);

    /* differential: glibc inet_pton on the same text (no brackets) */
    char z[64];
    if (s.len < sizeof(z) && memchr(s.ptr, '\0', s.len) == NULL &&
        !(s.len > 0 && s.ptr[0] == '[')) {
        uint8_t ref[16];
        memcpy(z, s.ptr, s.len);
        z[s.len] = '\0';
        bool v6 = memchr(s.ptr, ':', s.len) != NULL;
        int want = inet_pton(v6 ? AF_INET6 : AF_INET, z, ref) == 1 ? 0 : -1;
        CHECK(rc == want);
        if (rc == 0 && v6 && ip.family == AF_INET6)
            CHECK(memcmp(ip.addr, ref, 16) == 0);
        if (rc == 0 && v6 && ip.family == AF_INET) /* unmapped */
            CHECK(memcmp(ip.addr, ref + 12, 4) == 0);
        if (rc == 0 && !v6)
            CHECK(memcmp(ip.addr, ref, 4) == 0);
    }
    if (rc != 0)
        return;
    CHECK(ip.family == AF_INET || ip.family == AF_INET6);
    char buf[64];
    size_t n = pt_ip_format(&ip, buf, sizeof(buf));
    CHECK(n < 46 && strlen(buf) == n);
    CHECK(pt_ip_parse(pt_str_make(buf, n), &back) == 0 && ip_eq(&ip, &back));
}

static void check_cidr(struct pt_str s)
{
    struct pt_cidr c;
    if (pt_cidr_parse(s, &c) != 0)
        return;
    unsigned max = c.ip.family == AF_INET ? 32 : 128;
    CHECK(c.bits <= max);
    CHECK(pt_cidr_contains(&c, &c.ip));
    for (unsigned bit = c.bits; bit < max; bit++) /* host bits are zero */
        CHECK(!(c.ip.addr[bit / 8] & (0x80 >> (bit % 8))));
}

static void check_problem(int status, struct pt_str detail, struct pt_str rid)
{
    static char big[1 << 17];
    char small[37];
    size_t n = pt_problem_json(big, sizeof(big), status, NULL, detail, rid);
    if (n >= sizeof(big))
        return;
    CHECK(pt_problem_json(small, sizeof(small), status, NULL, detail, rid) == n);
    CHECK(strlen(small) == (n < sizeof(small) ? n : sizeof(small) - 1));
    CHECK(memcmp(small, big, strlen(small)) == 0);
    json_error_t err;
    json_t *j = json_loadb(big, n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
    CHECK(j != NULL);
    CHECK(json_is_object(j));
    CHECK(json_integer_value(json_object_get(j, "status")) == status);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pt_str all = pt_str_make((const char *)data, size), rest = all;

    check_ip(all);
    check_cidr(all);

    struct pt_str tline = next_line(&rest);
    struct pt_str peer_s = next_line(&rest);
    struct pt_str xff = next_line(&rest);
    struct pt_str detail = rest;
    check_ip(peer_s);
    check_ip(pt_str_trim_ows(xff));

    struct pt_cidr trusted[8];
    size_t ntrusted = 0;
    while (tline.len > 0 && ntrusted < 8) {
        const char *comma = memchr(tline.ptr, ',', tline.len);
        size_t n = comma == NULL ? tline.len : (size_t)(comma - tline.ptr);
        struct pt_str item = pt_str_trim_ows(pt_str_make(tline.ptr, n));
        check_cidr(item);
        if (pt_cidr_parse(item, &trusted[ntrusted]) == 0)
            ntrusted++;
        tline.ptr += comma == NULL ? n : n + 1;
        tline.len -= comma == NULL ? n : n + 1;
    }

    struct pt_ip peer, client;
    if (pt_ip_parse(peer_s, &peer) != 0)
        pt_ip_parse(pt_str_cstr("10.0.0.1"), &peer);
    pt_client_ip(&peer, xff, trusted, ntrusted, &client);
    if (!pt_cidr_list_contains(trusted, ntrusted, &peer))
        CHECK(ip_eq(&client, &peer));
    char buf[64];
    CHECK(pt_ip_format(&client, buf, sizeof(buf)) < 46);

    int status = size > 0 ? 100 + data[0] % 500 : 500;
    check_problem(status, detail, peer_s);
    check_problem(status, all, PT_STR_NULL);
    return 0;
}
