/*
 * Upstream connections and the per-worker keep-alive pool.
 *
 * Idle connections are kept per target address (not per service or per
 * snapshot), so they survive configuration reloads as long as the address
 * does.  TLS connections are kept apart from plain ones and from each
 * other by a key derived from the TLS settings and the server name
 * (pt_target.pool_key); each such bucket also keeps the last TLS session
 * for resumption.  Each worker has its own pool: no locks.
 */
#ifndef PT_UPSTREAM_POOL_H
#define PT_UPSTREAM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/loop.h"

struct pt_upcall;
struct pt_pool_bucket;
struct pt_tls_conn;
struct pt_tls_session_cache;

struct pt_upconn {
    struct pt_io io;
    struct pt_timer timer;
    struct pt_buf rbuf;
    struct pt_pool *pool;
    struct pt_pool_bucket *bucket;
    struct pt_upconn *next, *prev; /* idle list of the bucket */
    struct pt_upcall *call;        /* the user while busy; NULL while idle */
    struct pt_tls_conn *tls;       /* NULL: plain */
    struct pt_defer free_defer;
    uint32_t requests; /* requests served on this connection */
    bool connecting;
    bool readable; /* an input edge arrived and we have not read to a short read yet */
    bool rdhup;    /* the server shut its side: read until end of stream, not a short read */
    bool closed;   /* fd closed; the struct is freed after the current event batch */

    bool handshaking; /* TLS: connected, handshake not finished */
};

struct pt_pool {
    struct pt_loop *loop;
    struct pt_pool_bucket **table;
    size_t size; /* power of two */
    size_t nbuckets;
    size_t nidle;
    size_t nopen;
};

int pt_pool_init(struct pt_pool *p, struct pt_loop *loop);
/** Close every idle connection (busy ones are closed by their calls). */
void pt_pool_close_idle(struct pt_pool *p);
void pt_pool_destroy(struct pt_pool *p);

/** The bucket for an address (created on first use); NULL on ENOMEM. */
struct pt_pool_bucket *pt_pool_bucket(struct pt_pool *p, const struct sockaddr *addr,
                                      socklen_t len);

/** The same for TLS connections made under tls_key (pt_target.pool_key; 0 = plain). */
struct pt_pool_bucket *pt_pool_bucket_tls(struct pt_pool *p, const struct sockaddr *addr,
                                          socklen_t len, uint64_t tls_key);

/** The bucket's TLS session slot (for pt_tls_connect). */
struct pt_tls_session_cache *pt_pool_bucket_session(struct pt_pool_bucket *b);

/** Take an idle connection to the bucket's address, or NULL. */
struct pt_upconn *pt_pool_take(struct pt_pool *p, struct pt_pool_bucket *b);

/**
 * Open a new connection (non-blocking connect started).  NULL with errno
 * set when the socket could not even be created or the connect failed at
 * once (e.g. ECONNREFUSED on loopback).
 */
struct pt_upconn *pt_upconn_open(struct pt_pool *p, struct pt_pool_bucket *b, pt_io_cb cb);

/** Return a healthy connection to the pool (or close it when max_idle are already kept). */
void pt_upconn_release(struct pt_upconn *c, unsigned max_idle, uint64_t idle_timeout_ms);

/** Close and free (after the current event batch). */
void pt_upconn_close(struct pt_upconn *c);

#endif
