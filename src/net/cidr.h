/*
 * IP addresses and CIDR blocks (IPv4 and IPv6) for trusted_proxies and
 * ip-restriction.  IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4
 * blocks.
 *
 * Accepted text (the design note at the top of cidr.c says why):
 *   - IPv4: strict dotted quad, four decimal parts 0-255, no leading zeros
 *     ("01.2.3.4" is refused, as inet_pton does: some stacks read it as
 *     octal).
 *   - IPv6: RFC 4291 text, hex in either case, one "::", optional dotted
 *     tail; no zone id ("fe80::1%eth0" is refused).
 *   - IPv4-mapped addresses are stored as IPv4 (family AF_INET) by
 *     pt_ip_parse() and pt_ip_from_sockaddr(), so a client has one address
 *     whether it came over IPv4 or a dual-stack IPv6 socket.
 */
#ifndef PT_NET_CIDR_H
#define PT_NET_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/str.h"

struct pt_ip {
    uint8_t family;   /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; IPv4 uses the first 4 bytes (the rest are zero when
                         filled by this module, so parsed addresses compare with memcmp) */
};

struct pt_cidr {
    struct pt_ip ip; /* host bits are zero */
    uint8_t bits;    /* prefix length */
};

/**
 * Parse "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
 * Host bits may be set and are masked ("10.1.2.3/8" is 10.0.0.0/8).  The
 * prefix length is decimal without leading zeros, at most 32 or 128.  No
 * brackets.  A block inside ::ffff:0:0/96 becomes the IPv4 block it covers
 * ("::ffff:10.0.0.0/104" is 10.0.0.0/8).  0 or -1.
 */
int pt_cidr_parse(struct pt_str s, struct pt_cidr *out);

/** Parse a bare IPv4 or IPv6 address (IPv6 may be in brackets; no port). 0 or -1. */
int pt_ip_parse(struct pt_str s, struct pt_ip *out);

/** Address of a socket peer (IPv4-mapped unmapped).  0, or -1 for other families or NULL. */
int pt_ip_from_sockaddr(const struct sockaddr *sa, struct pt_ip *out);

/**
 * Is ip inside c?  Families are bridged through the mapped form: an IPv4
 * block holds ::ffff:a.b.c.d, and an IPv6 block holds a.b.c.d when it
 * holds ::ffff:a.b.c.d (so ::/0 holds every address, 0.0.0.0/0 no IPv6).
 */
bool pt_cidr_contains(const struct pt_cidr *c, const struct pt_ip *ip);
bool pt_cidr_list_contains(const struct pt_cidr *list, size_t n, const struct pt_ip *ip);

/**
 * Text form ("10.1.2.3", "2001:db8::1"; IPv6 as RFC 5952 says).  46 bytes
 * always suffice.  Like snprintf: returns the full length, writes at most
 * size - 1 characters and a NUL when size > 0.
 */
size_t pt_ip_format(const struct pt_ip *ip, char *buf, size_t size);

/**
 * The client address policies and logs use (SPEC §10 "Forwarding"): the
 * peer, unless the peer is trusted, in which case the right-most address of
 * the X-Forwarded-For values that is not trusted (or the left-most one when
 * all are).  xff points to the concatenated header values ("a, b, c"); an
 * unparsable entry stops the walk and the last good address is used.
 * Elements are trimmed of spaces and tabs, empty ones are skipped, and
 * besides bare addresses the forms "a.b.c.d:port", "[v6]" and "[v6]:port"
 * are accepted (the port is checked and dropped).  A bare IPv6 address is
 * never split on a port ("::1:443" is an address).
 */
void pt_client_ip(const struct pt_ip *peer, struct pt_str xff, const struct pt_cidr *trusted,
                  size_t ntrusted, struct pt_ip *client);

#endif
