/*
 * Network addresses in the configuration: "host:port", "[v6]:port",
 * ":port" (listeners: every interface), resolved to a sockaddr when the
 * configuration loads (off the hot path, so a blocking getaddrinfo is
 * fine; it is thread-safe).
 *
 * Fuzzing builds (-DPT_FUZZING) never touch the network: only IP literals
 * and "localhost" are accepted there, so a fuzz input cannot trigger a DNS
 * query.
 */
#ifndef PT_CONFIG_ADDR_H
#define PT_CONFIG_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/str.h"

/**
 * Split s into host and port.  Accepts "host:port", "[v6]:port" and ":port"
 * (empty host).  *bracketed tells whether the host was in brackets (it must
 * then be an IPv6 literal).  The port may be 0; callers check their range.
 * Returns 0, or -1 with *err set to a static message.
 */
int pt_conf_split_hostport(struct pt_str s, struct pt_str *host, uint16_t *port, bool *bracketed,
                           const char **err);

/**
 * Resolve host (NUL-terminated: a name, an IPv4 or IPv6 literal without
 * brackets) and port.  With passive, "" and "*" mean every IPv4 interface
 * (0.0.0.0).  "localhost" is always 127.0.0.1, without asking a resolver.
 * The first address getaddrinfo returns is used.  Returns 0, or -1 with
 * *err set to a static message (gai_strerror's text).
 */
int pt_conf_resolve(const char *host, uint16_t port, bool passive, struct sockaddr_storage *ss,
                    socklen_t *len, const char **err);

#endif
