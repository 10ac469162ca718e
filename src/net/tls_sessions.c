/*
 * The server-side TLS session cache (session-id resumption, used by TLS 1.2
 * clients that do not take tickets), kept by the process instead of by each
 * SSL_CTX.  OpenSSL's internal cache lives in a context, and every reload
 * builds new contexts, so it used to start empty after each configuration
 * change; this one survives reloads exactly like the ticket keys do.
 *
 * Sessions are stored serialised (i2d_SSL_SESSION): a lookup hands OpenSSL
 * a fresh object it owns, so no SSL_SESSION is ever shared between threads
 * or outlives the context that made it.  One mutex guards the table: it is
 * taken once per full handshake (store) and once per resumption attempt
 * (lookup), both of which cost far more than the lock.  Entries expire with
 * the session's own timeout and the oldest go first beyond
 * PT_TLS_SESSIONS_MAX.  The session id context is inside the stored session
 * and OpenSSL compares it after a lookup, so a session still resumes only
 * under the listener settings it was made with.
 *
 * TLS 1.3 sessions are not stored: they resume through (stateless) tickets.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "core/alloc.h"
#include "core/hash.h"
#include "net/tls_sessions.h"

#define BUCKETS (PT_TLS_SESSIONS_MAX * 2) /* a power of two */

struct entry {
    struct entry *hnext;         /* bucket chain */
    struct entry *older, *newer; /* insertion order, for eviction */
    time_t expires;              /* wall clock, like SSL_SESSION_get_time() */
    unsigned idlen;
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    size_t derlen;
    unsigned char der[];
};

static struct {
    pthread_mutex_t lock;
    struct entry **buckets; /* allocated on the first store */
    struct entry *oldest, *newest;
    size_t n;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t bucket_of(const unsigned char *id, unsigned len)
{
    return (size_t)pt_fnv1a(id, len, PT_FNV1A_OFFSET) & (BUCKETS - 1);
}

static struct entry **find_locked(const unsigned char *id, unsigned len)
{
    struct entry **pp = &cache.buckets[bucket_of(id, len)];
    for (; *pp != NULL; pp = &(*pp)->hnext)
        if ((*pp)->idlen == len && memcmp((*pp)->id, id, len) == 0)
            return pp;
    return NULL;
}

/* Unlink *pp (a bucket slot) from both lists and free it. */
static void drop_locked(struct entry **pp)
{
    struct entry *e = *pp;
    *pp = e->hnext;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        cache.oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        cache.newest = e->older;
    cache.n--;
    free(e);
}

static void drop_id_locked(const unsigned char *id, unsigned len)
{
    struct entry **pp = cache.buckets != NULL ? find_locked(id, len) : NULL;
    if (pp != NULL)
        drop_locked(pp);
}

static int new_cb(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    unsigned idlen = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
    if (idlen == 0 || idlen > SSL_MAX_SSL_SESSION_ID_LENGTH ||
        SSL_SESSION_get_protocol_version(sess) >= TLS1_3_VERSION)
        return 0;
    int derlen = i2d_SSL_SESSION(sess, NULL);
    if (derlen <= 0)
        return 0;
    struct entry *e = pt_malloc(sizeof(*e) + (size_t)derlen);
    if (e == NULL)
        return 0;
    unsigned char *p = e->der;
    if (i2d_SSL_SESSION(sess, &p) != derlen) {
        free(e);
        return 0;
    }
    e->derlen = (size_t)derlen;
    e->idlen = idlen;
    memcpy(e->id, id, idlen);
    e->expires = (time_t)SSL_SESSION_get_time(sess) + (time_t)SSL_SESSION_get_timeout(sess);
    e->newer = NULL;

    pthread_mutex_lock(&cache.lock);
    if (cache.buckets == NULL) {
        cache.buckets = pt_calloc(BUCKETS, sizeof(*cache.buckets));
        if (cache.buckets == NULL) {
            pthread_mutex_unlock(&cache.lock);
            free(e);
            return 0;
        }
    }
    drop_id_locked(id, idlen);
    while (cache.n >= PT_TLS_SESSIONS_MAX)
        drop_locked(find_locked(cache.oldest->id, cache.oldest->idlen));
    struct entry **head = &cache.buckets[bucket_of(id, idlen)];
    e->hnext = *head;
    *head = e;
    e->older = cache.newest;
    if (cache.newest != NULL)
        cache.newest->newer = e;
    else
        cache.oldest = e;
    cache.newest = e;
    cache.n++;
    pthread_mutex_unlock(&cache.lock);
    return 0; /* we kept a copy, not OpenSSL's reference */
}

static SSL_SESSION *get_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    (void)ssl;
    *copy = 0; /* the object returned below is new: OpenSSL takes our reference */
    if (len <= 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return NULL;
    unsigned char der[PT_TLS_SESSIONS_STACK_DER];
    unsigned char *buf = der;
    size_t derlen = 0;
    time_t now = time(NULL);

    pthread_mutex_lock(&cache.lock);
    struct entry **pp = cache.buckets != NULL ? find_locked(id, (unsigned)len) : NULL;
    if (pp != NULL && (*pp)->expires <= now) {
        drop_locked(pp);
        pp = NULL;
    }
    if (pp != NULL) {
        derlen = (*pp)->derlen;
        if (derlen > sizeof(der))
            buf = pt_malloc(derlen); /* a session with a client certificate in it */
        if (buf != NULL)
            memcpy(buf, (*pp)->der, derlen);
    }
    pthread_mutex_unlock(&cache.lock);

    SSL_SESSION *s = NULL;
    if (pp != NULL && buf != NULL) {
        const unsigned char *p = buf;
        s = d2i_SSL_SESSION(NULL, &p, (long)derlen);
    }
    if (buf != der)
        free(buf);
    return s;
}

static void remove_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    (void)ctx;
    unsigned idlen = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
    pthread_mutex_lock(&cache.lock);
    drop_id_locked(id, idlen);
    pthread_mutex_unlock(&cache.lock);
}

void pt_tls_sessions_attach(SSL_CTX *ctx)
{
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, new_cb);
    SSL_CTX_sess_set_get_cb(ctx, get_cb);
    SSL_CTX_sess_set_remove_cb(ctx, remove_cb);
}

void pt_tls_sessions_clear(void)
{
    pthread_mutex_lock(&cache.lock);
    while (cache.oldest != NULL)
        drop_locked(find_locked(cache.oldest->id, cache.oldest->idlen));
    free(cache.buckets);
    cache.buckets = NULL;
    pthread_mutex_unlock(&cache.lock);
}
