/*
 * Keep-alive pool.  A bucket per upstream address holds a LIFO list of idle
 * connections (the most recently used is the most likely to still be open
 * and warm).  An idle connection that becomes readable has either been
 * closed by the server or sent something unsolicited: either way it is
 * closed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/compiler.h"
#include "core/hash.h"
#include "net/sock.h"
#include "net/tls.h"
#include "upstream/pool.h"

struct pt_pool_bucket {
    struct pt_pool_bucket *chain;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint64_t tls_key; /* 0: plain connections */
    struct pt_tls_session_cache session;
    uint64_t hash;
    struct pt_upconn *idle; /* LIFO */
    unsigned nidle;
};

int pt_pool_init(struct pt_pool *p, struct pt_loop *loop)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->size = 64;
    p->table = pt_calloc(p->size, sizeof(*p->table));
    return p->table == NULL ? PT_ERR_NOMEM : 0;
}

static uint64_t addr_hash(const struct sockaddr *addr, socklen_t len)
{
    return pt_fnv1a(addr, len, PT_FNV1A_OFFSET);
}

static void idle_unlink(struct pt_upconn *c)
{
    struct pt_pool_bucket *b = c->bucket;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        b->idle = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    b->nidle--;
    c->pool->nidle--;
}

static void upconn_free(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct pt_upconn *c = arg;
    pt_buf_free(&c->rbuf);
    free(c);
}

void pt_upconn_close(struct pt_upconn *c)
{
    if (c->closed)
        return;
    struct pt_pool *p = c->pool;
    if (c->call == NULL && c->bucket != NULL && (c->prev != NULL || c->bucket->idle == c))
        idle_unlink(c);
    pt_timer_disarm(p->loop, &c->timer);
    if (c->tls != NULL) {
        pt_tls_close_notify(c->tls);
        pt_tls_free(c->tls);
        c->tls = NULL;
    }
    close(c->io.fd);
    c->closed = true;
    c->call = NULL;
    p->nopen--;
    pt_loop_defer(p->loop, &c->free_defer, upconn_free, c);
}

void pt_pool_close_idle(struct pt_pool *p)
{
    for (size_t i = 0; i < p->size; i++)
        for (struct pt_pool_bucket *b = p->table[i]; b != NULL; b = b->chain)
            while (b->idle != NULL)
                pt_upconn_close(b->idle);
}

void pt_pool_destroy(struct pt_pool *p)
{
    pt_pool_close_idle(p);
    for (size_t i = 0; i < p->size; i++) {
        struct pt_pool_bucket *b = p->table[i];
        while (b != NULL) {
            struct pt_pool_bucket *n = b->chain;
            pt_tls_session_cache_clear(&b->session);
            free(b);
            b = n;
        }
    }
    free(p->table);
    p->table = NULL;
}

static void grow(struct pt_pool *p)
{
    size_t nsize = p->size * 2;
    struct pt_pool_bucket **t = pt_calloc(nsize, sizeof(*t));
    if (t == NULL)
        return; /* keep the longer chains */
    for (size_t i = 0; i < p->size; i++) {
        struct pt_pool_bucket *b = p->table[i];
        while (b != NULL) {
            struct pt_pool_bucket *n = b->chain;
            b->chain = t[b->hash & (nsize - 1)];
            t[b->hash & (nsize - 1)] = b;
            b = n;
        }
    }
    free(p->table);
    p->table = t;
    p->size = nsize;
}

struct pt_pool_bucket *pt_pool_bucket(struct pt_pool *p, const struct sockaddr *addr, socklen_t len)
{
    return pt_pool_bucket_tls(p, addr, len, 0);
}

struct pt_tls_session_cache *pt_pool_bucket_session(struct pt_pool_bucket *b)
{
    return &b->session;
}

struct pt_pool_bucket *pt_pool_bucket_tls(struct pt_pool *p, const struct sockaddr *addr,
                                          socklen_t len, uint64_t tls_key)
{
    uint64_t h = (addr_hash(addr, len) ^ tls_key) * PT_FNV1A_PRIME;
    for (struct pt_pool_bucket *b = p->table[h & (p->size - 1)]; b != NULL; b = b->chain)
        if (b->hash == h && b->tls_key == tls_key && b->addrlen == len &&
            memcmp(&b->addr, addr, len) == 0)
            return b;
    struct pt_pool_bucket *b = pt_calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    memcpy(&b->addr, addr, len);
    b->addrlen = len;
    b->tls_key = tls_key;
    b->hash = h;
    if (p->nbuckets >= p->size)
        grow(p);
    b->chain = p->table[h & (p->size - 1)];
    p->table[h & (p->size - 1)] = b;
    p->nbuckets++;
    return b;
}

struct pt_upconn *pt_pool_take(struct pt_pool *p, struct pt_pool_bucket *b)
{
    (void)p;
    struct pt_upconn *c = b->idle;
    if (c == NULL)
        return NULL;
    idle_unlink(c);
    pt_timer_disarm(c->pool->loop, &c->timer);
    return c;
}

static void idle_timeout(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    pt_upconn_close(PT_CONTAINER_OF(t, struct pt_upconn, timer));
}

struct pt_upconn *pt_upconn_open(struct pt_pool *p, struct pt_pool_bucket *b, pt_io_cb cb)
{
    struct pt_upconn *c = pt_calloc(1, sizeof(*c));
    if (c == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    bool in_progress;
    int fd = pt_sock_connect((const struct sockaddr *)&b->addr, b->addrlen, &in_progress);
    if (fd == -1) {
        int saved = errno;
        free(c);
        errno = saved;
        return NULL;
    }
    if (pt_loop_add(p->loop, &c->io, fd, cb) != 0) {
        int saved = errno;
        close(fd);
        free(c);
        errno = saved;
        return NULL;
    }
    c->pool = p;
    c->bucket = b;
    c->connecting = in_progress;
    pt_timer_init(&c->timer);
    pt_buf_init(&c->rbuf);
    p->nopen++;
    return c;
}

void pt_upconn_release(struct pt_upconn *c, unsigned max_idle, uint64_t idle_timeout_ms)
{
    struct pt_pool_bucket *b = c->bucket;
    c->call = NULL;
    /* Leftover bytes after a complete response mean the server is confused
     * (bytes left inside OpenSSL would never wake us up: same thing). */
    if (pt_buf_len(&c->rbuf) > 0 || b->nidle >= max_idle || max_idle == 0 ||
        (c->tls != NULL && pt_tls_pending(c->tls))) {
        pt_upconn_close(c);
        return;
    }
    pt_buf_release_if_empty(&c->rbuf);
    c->requests++;
    c->prev = NULL;
    c->next = b->idle;
    if (b->idle != NULL)
        b->idle->prev = c;
    b->idle = c;
    b->nidle++;
    c->pool->nidle++;
    pt_timer_arm(c->pool->loop, &c->timer, idle_timeout_ms, idle_timeout);
}
