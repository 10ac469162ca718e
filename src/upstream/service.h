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

/** A set of HTTP statuses (0..639) as a bitmap: health, breaker and check status lists. */
struct pt_status_set {
    uint64_t bits[10];
};

static inline bool pt_status_set_has(const struct pt_status_set *s, int status)
{
    return status >= 0 && status < 640 && (s->bits[status / 64] >> (status % 64) & 1) != 0;
}

static inline void pt_status_set_add(struct pt_status_set *s, int status)
{
    if (status >= 0 && status < 640)
        s->bits[status / 64] |= (uint64_t)1 << (status % 64);
}

/** Ratios (failure_ratio, retries.budget) in parts per million. */
#define PT_PPM 1000000u

/** health.active (docs/resilience.md): probes from the main thread. */
struct pt_active_conf {
    bool enabled; /* the section is present */
    const char *path;
    uint64_t interval_ms, timeout_ms;
    unsigned healthy, unhealthy;   /* consecutive results that flip the state */
    struct pt_status_set statuses; /* answers that count as a pass */
};

/** health.passive: outlier ejection from the outcomes of real requests. */
struct pt_passive_conf {
    bool enabled;
    unsigned failures;          /* consecutive failures that eject */
    uint32_t failure_ratio_ppm; /* ratio within window that ejects (with min_requests) */
    unsigned min_requests;
    uint64_t window_ms, ejection_ms, max_ejection_ms;
    struct pt_status_set statuses;
    bool eject_last; /* may the last healthy target be ejected? */
};

/** circuit_breaker: per target, closed → open → half-open → closed. */
struct pt_breaker_conf {
    bool enabled;
    uint32_t failure_ratio_ppm;
    unsigned min_requests;
    uint64_t window_ms, open_for_ms;
    unsigned half_open_requests;
    struct pt_status_set on;
};

/** discovery: DNS names resolved on the main thread (upstream/discovery.h). */
struct pt_discovery_conf {
    bool enabled;
    const char *dns;      /* A/AAAA name, or an SRV name ("_http._tcp.users.internal") */
    uint16_t port;        /* for A/AAAA answers; SRV answers carry their own */
    uint64_t interval_ms; /* refresh period (a shorter TTL wins, down to 1 s) */
    const char *resolver; /* "host:port" of the DNS server; NULL = /etc/resolv.conf */
    bool srv;             /* dns names an SRV record (starts with '_') */
};

/** A target found by discovery, handed to the configuration compiler. */
struct pt_discovered_target {
    char address[64]; /* "10.0.0.7:9001", "[fd00::7]:9001" */
    char host[48];    /* the IP literal */
    uint16_t port;
    unsigned weight; /* SRV weight, at least 1 */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct pt_target_health;
struct pt_service_health;

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
    struct pt_target_health *health; /* process-wide state (upstream/health.h), refcounted */
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
    uint32_t retry_budget_ppm; /* retries allowed per request within the budget window */
    uint64_t retry_budget_window_ms;
    unsigned retry_budget_min;      /* retries per second always allowed */
    uint64_t retry_backoff_base_ms; /* 0 = retry at once */
    uint64_t retry_backoff_max_ms;
    struct pt_active_conf active;
    struct pt_passive_conf passive;
    struct pt_breaker_conf breaker;
    struct pt_discovery_conf discovery;
    struct pt_service_health *health; /* process-wide state (upstream/health.h), refcounted */
    struct pt_balancer *balancer;     /* built with the snapshot */
    struct pt_plugin_chain *plugins;  /* service-level plugin instances; NULL = none */
    struct pt_tls_client *tls;        /* protocol https: the upstream TLS context (owned) */
};

static inline bool pt_service_retries_status(const struct pt_service *s, int status)
{
    for (size_t i = 0; i < s->nretry_statuses; i++)
        if (s->retry_statuses[i] == status)
            return true;
    return false;
}

#endif
