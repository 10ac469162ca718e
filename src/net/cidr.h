/*
 * IP addresses and CIDR blocks (IPv4 and IPv6) for trusted_proxies and
 * ip-restriction.  IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4
 * blocks.
 */
#ifndef PT_NET_CIDR_H
#define PT_NET_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/str.h"

struct pt_ip {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; IPv4 uses the first 4 bytes */
};

struct pt_cidr {
    struct pt_ip ip; /* host bits are zero */
    uint8_t bits;    /* prefix length */
};

/** Parse "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). 0 or -1. */
int pt_cidr_parse(struct pt_str s, struct pt_cidr *out);

/** Parse a bare IPv4 or IPv6 address (IPv6 may be in brackets). 0 or -1. */
int pt_ip_parse(struct pt_str s, struct pt_ip *out);

/** Address of a socket peer.  0, or -1 for families other than IPv4/IPv6. */
int pt_ip_from_sockaddr(const struct sockaddr *sa, struct pt_ip *out);

bool pt_cidr_contains(const struct pt_cidr *c, const struct pt_ip *ip);
bool pt_cidr_list_contains(const struct pt_cidr *list, size_t n, const struct pt_ip *ip);

/** Text form ("10.1.2.3", "2001:db8::1"); buf needs 46 bytes; returns length. */
size_t pt_ip_format(const struct pt_ip *ip, char *buf, size_t size);

/**
 * The client address policies and logs use (SPEC §10 "Forwarding"): the
 * peer, unless the peer is trusted, in which case the right-most address of
 * the X-Forwarded-For values that is not trusted (or the left-most one when
 * all are).  xff points to the concatenated header values ("a, b, c"); an
 * unparsable entry stops the walk and the last good address is used.
 */
void pt_client_ip(const struct pt_ip *peer, struct pt_str xff, const struct pt_cidr *trusted,
                  size_t ntrusted, struct pt_ip *client);

#endif
