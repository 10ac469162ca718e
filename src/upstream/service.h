/*
 * Services and their targets, as compiled from the configuration
 * (SPEC §2 `services`, §2.2).  Immutable once built; part of a snapshot.
 */
#ifndef PT_UPSTREAM_SERVICE_H
#define PT_UPSTREAM_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/str.h"

enum pt_upstream_proto {
    PT_PROTO_HTTP = 0,
    PT_PROTO_HTTPS,
    PT_PROTO_H2C,
    PT_PROTO_GRPC,
    PT_PROTO_COUNT
};

enum pt_balance {
    PT_BALANCE_ROUND_ROBIN = 0,
    PT_BALANCE_LEAST_CONN,
    PT_BALANCE_RANDOM,
    PT_BALANCE_HASH,
    PT_BALANCE_COUNT
};

enum pt_hash_on {
    PT_HASH_IP = 0,
    PT_HASH_CONSUMER,
    PT_HASH_HEADER,
    PT_HASH_COOKIE,
    PT_HASH_PATH,
    PT_HASH_ON_COUNT
};

/* retries.on conditions besides statuses */
#define PT_RETRY_ON_CONNECT_ERROR 0x1u
#define PT_RETRY_ON_TIMEOUT       0x2u
#define PT_RETRY_MAX_STATUSES     16

struct pt_target {
    const char *address;   /* as written in the configuration ("127.0.0.1:9001") */
    const char *host;      /* host part: a name or an IP literal (no brackets) */
    const char *authority; /* what goes into Host: "host:port" ("[v6]:port") */
    uint16_t port;
    unsigned weight;              /* >= 1 */
    size_t index;                 /* position within its service */
    struct sockaddr_storage addr; /* resolved when the configuration was loaded */
    socklen_t addrlen;
    uint8_t scheme;       /* as written: 0 host:port, 1 http://, 2 https:// */
    const char *tls_name; /* https: SNI and the name verified (tls.sni, else host) */
    uint64_t pool_key;    /* https: keeps pooled connections apart by TLS settings; 0 = plain */
};

struct pt_balancer;
struct pt_plugin_chain;
struct pt_tls_client;

struct pt_service {
    const char *name;
    size_t index; /* position within the snapshot */
    struct pt_target *targets;
    size_t ntargets;
    enum pt_upstream_proto protocol;
    enum pt_balance balance;
    enum pt_hash_on hash_on;
    const char *hash_key; /* header or cookie name for PT_HASH_HEADER / PT_HASH_COOKIE */
    const char *host; /* optional `host:` override for the Host header; NULL = target authority */
    uint64_t connect_timeout_ms; /* defaults: see docs/configuration.md */
    uint64_t read_timeout_ms;
    uint64_t write_timeout_ms;
    unsigned keepalive_max_idle; /* idle pooled connections per worker per target */
    uint64_t keepalive_idle_timeout_ms;
    unsigned retry_attempts; /* retries, not tries */
    uint32_t retry_on;       /* PT_RETRY_ON_* */
    uint16_t retry_statuses[PT_RETRY_MAX_STATUSES];
    size_t nretry_statuses;
    bool retry_idempotent_only;
    struct pt_balancer *balancer;    /* built with the snapshot */
    struct pt_plugin_chain *plugins; /* service-level plugin instances; NULL = none */
    struct pt_tls_client *tls;       /* protocol https: the upstream TLS context (owned) */
};

static inline bool pt_service_retries_status(const struct pt_service *s, int status)
{
    for (size_t i = 0; i < s->nretry_statuses; i++)
        if (s->retry_statuses[i] == status)
            return true;
    return false;
}

#endif
