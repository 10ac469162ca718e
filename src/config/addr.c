/*
 * Address splitting and resolution for listeners and upstream targets.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "config/addr.h"

#ifdef PT_FUZZING
/* Fuzz inputs must not make the fuzzer talk to DNS: literals and localhost only. */
#define RESOLVE_NAMES 0
#else
#define RESOLVE_NAMES 1
#endif

static int parse_port(struct pt_str s, uint16_t *port)
{
    unsigned v = 0;
    if (s.len == 0 || s.len > 5)
        return -1;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s.ptr[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == '*' || c == ':';
}

int pt_conf_split_hostport(struct pt_str s, struct pt_str *host, uint16_t *port, bool *bracketed,
                           const char **err)
{
    struct pt_str h, p;
    *bracketed = false;
    if (s.len > 0 && s.ptr[0] == '[') {
        const char *close = memchr(s.ptr, ']', s.len);
        if (close == NULL) {
            *err = "missing ']' after an IPv6 address";
            return -1;
        }
        h = pt_str_make(s.ptr + 1, (size_t)(close - s.ptr) - 1);
        size_t rest = (size_t)(close - s.ptr) + 1;
        if (rest >= s.len || s.ptr[rest] != ':') {
            *err = "missing port (write [address]:port)";
            return -1;
        }
        p = pt_str_make(s.ptr + rest + 1, s.len - rest - 1);
        *bracketed = true;
    } else {
        const char *colon = NULL;
        for (size_t i = s.len; i > 0; i--) {
            if (s.ptr[i - 1] == ':') {
                colon = s.ptr + i - 1;
                break;
            }
        }
        if (colon == NULL) {
            *err = "missing port (write host:port)";
            return -1;
        }
        h = pt_str_make(s.ptr, (size_t)(colon - s.ptr));
        p = pt_str_make(colon + 1, s.len - h.len - 1);
        if (memchr(h.ptr, ':', h.len) != NULL) {
            *err = "IPv6 addresses must be in brackets, e.g. [::1]:8080";
            return -1;
        }
    }
    for (size_t i = 0; i < h.len; i++) {
        if (!host_char_ok(h.ptr[i])) {
            *err = "invalid character in host name";
            return -1;
        }
    }
    if (*bracketed) {
        char buf[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (h.len == 0 || h.len >= sizeof(buf)) {
            *err = "only IPv6 addresses go in brackets";
            return -1;
        }
        memcpy(buf, h.ptr, h.len);
        buf[h.len] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1) {
            *err = "only IPv6 addresses go in brackets";
            return -1;
        }
    }
    if (parse_port(p, port) != 0) {
        *err = "invalid port (expected a number from 1 to 65535)";
        return -1;
    }
    *host = h;
    return 0;
}

static void set_v4(struct sockaddr_storage *ss, socklen_t *len, const struct in_addr *a,
                   uint16_t port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr = *a;
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &sin, sizeof(sin));
    *len = sizeof(sin);
}

int pt_conf_resolve(const char *host, uint16_t port, bool passive, struct sockaddr_storage *ss,
                    socklen_t *len, const char **err)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (passive && (host[0] == '\0' || strcmp(host, "*") == 0)) {
        a4.s_addr = htonl(INADDR_ANY);
        set_v4(ss, len, &a4, port);
        return 0;
    }
    if (host[0] == '\0') {
        *err = "missing host";
        return -1;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        set_v4(ss, len, &a4, port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        sin6.sin6_addr = a6;
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, &sin6, sizeof(sin6));
        *len = sizeof(sin6);
        return 0;
    }
    if (strcasecmp(host, "localhost") == 0) {
        a4.s_addr = htonl(INADDR_LOOPBACK);
        set_v4(ss, len, &a4, port);
        return 0;
    }
    if (!RESOLVE_NAMES) {
        *err = "host names are not resolved in fuzzing builds";
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (passive)
        hints.ai_flags |= AI_PASSIVE;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        *err = gai_strerror(rc);
        return -1;
    }
    if (res == NULL || res->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        *err = "no usable address";
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    freeaddrinfo(res);
    return 0;
}
