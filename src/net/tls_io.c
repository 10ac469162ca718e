/*
 * TLS connections on non-blocking sockets, with the semantics of net/io.h.
 *
 * Reading.  With edge-triggered epoll a connection reads until the socket
 * is dry and then waits for the next edge.  OpenSSL adds a second place
 * where bytes can wait: its own read buffer (read-ahead is on, so one recv()
 * takes in as many records as the socket holds).  A byte left there never
 * produces another edge, so pt_tls_read reports `drained` only when both
 * are empty: nothing is pending inside OpenSSL (SSL_has_pending) and a
 * recv() made during this very call came back short (or EAGAIN).  Our own
 * socket BIO records that; a short recv() seen in an earlier call does not
 * count, because its edge may have been consumed by an epoll_wait since.
 *
 * Writing.  pt_tls_sendv takes pending plus the new iovecs as one stream
 * and cuts it into records of up to 16 KiB (small pieces are gathered into
 * a staging buffer so that a response head and a small body make one
 * record and one send()).  With SSL_MODE_ENABLE_PARTIAL_WRITE each
 * SSL_write returns as soon as its record is out.  When the socket takes a
 * record only in part, OpenSSL keeps the encrypted rest and we keep the
 * plaintext of that record and everything after it at the head of
 * `pending`; the retry passes the same bytes again (possibly from a new
 * address: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), at least as many as
 * before, which is what OpenSSL requires.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "net/tls-int.h"

#define MAX_IOV 16

static _Thread_local char error_text[256];
static _Thread_local char stage[PT_TLS_RECORD];

/* ---- the socket BIO ---- */

static int bio_write(BIO *b, const char *buf, int len)
{
    struct pt_tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t w;
    do {
        w = send(t->fd, buf, (size_t)len, MSG_NOSIGNAL);
    } while (w == -1 && errno == EINTR);
    if (w >= 0)
        return (int)w;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_write(b);
    return -1;
}

static int bio_read(BIO *b, char *buf, int len)
{
    struct pt_tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r;
    do {
        r = recv(t->fd, buf, (size_t)len, 0);
    } while (r == -1 && errno == EINTR);
    if (r > 0) {
        t->short_read = r < len;
        return (int)r;
    }
    t->short_read = true;
    if (r == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        BIO_set_retry_read(b);
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    BIO_set_data(b, NULL);
    return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "portico socket");
    if (m == NULL)
        return;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    BIO_meth_set_destroy(m, bio_destroy);
    bio_method = m;
}

BIO_METHOD *pt__tls_bio_method(void)
{
    pthread_once(&bio_once, bio_method_init);
    return bio_method;
}

/* ---- errors ---- */

const char *pt__tls_set_error(const SSL *ssl, int ssl_error, int sys_errno)
{
    unsigned long e = ERR_peek_last_error();
    if (ssl_error == SSL_ERROR_SSL && e != 0) {
        const char *reason = ERR_reason_error_string(e);
        long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && v != X509_V_OK)
            snprintf(error_text, sizeof(error_text), "%s (%s)", reason ? reason : "?",
                     X509_verify_cert_error_string(v));
        else
            snprintf(error_text, sizeof(error_text), "%s", reason ? reason : "TLS error");
    } else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_SSL) {
        snprintf(error_text, sizeof(error_text), "%s",
                 sys_errno != 0 ? strerror(sys_errno) : "the peer closed the connection");
    } else {
        snprintf(error_text, sizeof(error_text), "TLS error %d", ssl_error);
    }
    ERR_clear_error();
    return error_text;
}

const char *pt_tls_error(const struct pt_tls_conn *t)
{
    (void)t;
    return error_text[0] != '\0' ? error_text : "TLS error";
}

/* A failed SSL call: remember why, set errno, return PT_ERR_IO. */
static int failed(struct pt_tls_conn *t, int ssl_error, int sys_errno)
{
    if (ssl_error == SSL_ERROR_SSL)
        t->tls_error = true;
    t->io_error = true;
    pt__tls_set_error(t->ssl, ssl_error, sys_errno);
    errno = sys_errno != 0 ? sys_errno : (ssl_error == SSL_ERROR_SSL ? EPROTO : ECONNRESET);
    return PT_ERR_IO;
}

/* ---- connections ---- */

static struct pt_tls_conn *conn_new(SSL_CTX *ctx, int fd)
{
    BIO_METHOD *m = pt__tls_bio_method();
    struct pt_tls_conn *t = pt_calloc(1, sizeof(*t));
    if (t == NULL || m == NULL) {
        free(t);
        return NULL;
    }
    t->fd = fd;
    t->ssl = SSL_new(ctx);
    BIO *bio = t->ssl != NULL ? BIO_new(m) : NULL;
    if (bio == NULL) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
    SSL_set_app_data(t->ssl, t);
    return t;
}

struct pt_tls_conn *pt_tls_accept(struct pt_tls_server *s, int fd)
{
    struct pt_tls_conn *t = conn_new(s->ctx[0], fd);
    if (t == NULL)
        return NULL;
    SSL_set_accept_state(t->ssl);
    t->server = pt_tls_server_ref(s);
    return t;
}

static bool is_ip_literal(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

struct pt_tls_conn *pt_tls_connect(struct pt_tls_client *c, int fd, const char *name,
                                   struct pt_tls_session_cache *cache)
{
    struct pt_tls_conn *t = conn_new(c->ctx, fd);
    if (t == NULL)
        return NULL;
    SSL_set_connect_state(t->ssl);
    int ok = 1;
    if (name != NULL && name[0] != '\0') {
        if (is_ip_literal(name)) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name);
        } else {
            ok = SSL_set_tlsext_host_name(t->ssl, name) == 1 && SSL_set1_host(t->ssl, name) == 1;
        }
    }
    if (ok && cache != NULL && cache->session != NULL)
        SSL_set_session(t->ssl, cache->session);
    if (!ok) {
        pt_tls_free(t);
        ERR_clear_error();
        return NULL;
    }
    t->cache = cache;
    return t;
}

int pt__tls_client_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct pt_tls_conn *t = SSL_get_app_data(ssl);
    if (t == NULL || t->cache == NULL)
        return 0;
    if (t->cache->session != NULL)
        SSL_SESSION_free(t->cache->session);
    t->cache->session = sess;
    return 1; /* we keep the reference */
}

void pt_tls_session_cache_clear(struct pt_tls_session_cache *sc)
{
    if (sc->session != NULL)
        SSL_SESSION_free(sc->session);
    sc->session = NULL;
}

void pt_tls_free(struct pt_tls_conn *t)
{
    if (t == NULL)
        return;
    /* OpenSSL drops a session from the cache when the connection did not
     * shut down cleanly; a client that went away is no reason for that, a
     * TLS error is (and OpenSSL already dropped it then). */
    if (!t->tls_error)
        SSL_set_shutdown(t->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(t->ssl);
    pt_tls_server_unref(t->server);
    free(t);
}

void pt_tls_close_notify(struct pt_tls_conn *t)
{
    if (t == NULL || !t->handshake_done || t->shutdown_sent || t->io_error)
        return;
    t->shutdown_sent = true;
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

int pt_tls_handshake(struct pt_tls_conn *t)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->handshake_done = true;
        return 0;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return PT_TLS_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return PT_TLS_WANT_WRITE;
    int sys = errno;
    unsigned long code = ERR_peek_error();
    if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST)
        t->plain_http = true;
    return failed(t, e, e == SSL_ERROR_SYSCALL ? sys : 0);
}

bool pt_tls_handshake_done(const struct pt_tls_conn *t)
{
    return t->handshake_done;
}

ssize_t pt_tls_read(struct pt_tls_conn *t, struct pt_buf *b, size_t min_room, size_t max_cap,
                    bool *drained)
{
    char *dst = pt_buf_reserve(b, min_room, max_cap);
    if (dst == NULL) {
        /* at the cap: read whatever room is left, if any */
        if (b->data == NULL || pt_buf_room(b) == 0) {
            *drained = false;
            return b->data == NULL ? PT_ERR_NOMEM : PT_ERR_TOO_LARGE;
        }
        dst = b->data + b->end;
    }
    size_t room = pt_buf_room(b);
    if (room > INT_MAX)
        room = INT_MAX;
    size_t total = 0;
    t->short_read = false;
    t->read_wants_write = false;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_read(t->ssl, dst + total, (int)(room - total));
        if (r > 0) {
            total += (size_t)r;
            if (total == room) {
                *drained = false;
                break;
            }
            if (SSL_has_pending(t->ssl))
                continue; /* more records are here already */
            *drained = t->short_read;
            break;
        }
        int e = SSL_get_error(t->ssl, r);
        int sys = errno;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            t->read_wants_write = e == SSL_ERROR_WANT_WRITE;
            *drained = true;
            if (total == 0)
                return PT_AGAIN;
            break;
        }
        if (total > 0) { /* hand over the data first; the end or the error comes next time */
            *drained = false;
            break;
        }
        *drained = true;
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (e == SSL_ERROR_SYSCALL && sys == 0)
            return 0; /* EOF without close_notify on an old OpenSSL path */
        return failed(t, e, e == SSL_ERROR_SYSCALL ? sys : 0);
    }
    pt_buf_commit(b, total);
    return (ssize_t)total;
}

struct seg {
    const char *p;
    size_t len;
};

int pt_tls_sendv(struct pt_tls_conn *t, struct pt_buf *pending, const struct iovec *iov, size_t n,
                 size_t *written)
{
    struct seg s[MAX_IOV + 1];
    size_t ns = 0, total = 0;
    size_t plen = pt_buf_len(pending);
    if (plen > 0) {
        s[ns++] = (struct seg){pt_buf_head(pending), plen};
        total += plen;
    }
    size_t niov = 0; /* iovecs taken into s */
    for (; niov < n && ns <= MAX_IOV; niov++) {
        if (iov[niov].iov_len == 0)
            continue;
        s[ns++] = (struct seg){iov[niov].iov_base, iov[niov].iov_len};
        total += iov[niov].iov_len;
    }
    *written = 0;
    if (total == 0)
        return 0;
    size_t done = 0, si = 0, off = 0; /* bytes out; cursor (segment, offset) */
    int rc = 0;
    while (done < total) {
        const char *p;
        size_t len, left = s[si].len - off;
        if (left >= PT_TLS_RECORD || si + 1 == ns) {
            p = s[si].p + off; /* one segment fills the record: no copy */
            len = left < PT_TLS_RECORD ? left : PT_TLS_RECORD;
        } else {
            len = 0;
            for (size_t k = si, o = off; k < ns && len < PT_TLS_RECORD; k++, o = 0) {
                size_t take = s[k].len - o;
                if (take > PT_TLS_RECORD - len)
                    take = PT_TLS_RECORD - len;
                memcpy(stage + len, s[k].p + o, take);
                len += take;
            }
            p = stage;
        }
        ERR_clear_error();
        errno = 0;
        int w = SSL_write(t->ssl, p, (int)len);
        if (w <= 0) {
            int e = SSL_get_error(t->ssl, w);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                rc = 1;
                break;
            }
            int sys = errno;
            *written = done;
            return failed(t, e, e == SSL_ERROR_SYSCALL ? sys : 0);
        }
        done += (size_t)w;
        for (size_t adv = (size_t)w; adv > 0;) { /* move the cursor */
            size_t step = s[si].len - off < adv ? s[si].len - off : adv;
            off += step;
            adv -= step;
            if (off == s[si].len) {
                si++;
                off = 0;
            }
        }
    }
    *written = done;
    size_t from_pending = done < plen ? done : plen;
    pt_buf_consume(pending, from_pending);
    if (rc == 0 && niov == n) {
        pt_buf_release_if_empty(pending);
        return 0;
    }
    /* keep what did not go out: the rest of the iovecs after pending's own tail */
    size_t skip = done - from_pending;
    for (size_t i = 0; i < n; i++) {
        const char *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        p += skip;
        len -= skip;
        skip = 0;
        if (pt_buf_append(pending, p, len, SIZE_MAX) != 0)
            return PT_ERR_NOMEM;
    }
    return 1;
}

int pt_tls_flush(struct pt_tls_conn *t, struct pt_buf *pending, size_t *written)
{
    return pt_tls_sendv(t, pending, NULL, 0, written);
}

bool pt_tls_read_wants_write(const struct pt_tls_conn *t)
{
    return t->read_wants_write;
}

bool pt_tls_pending(const struct pt_tls_conn *t)
{
    return SSL_has_pending(t->ssl) == 1;
}

bool pt_tls_plain_http(const struct pt_tls_conn *t)
{
    return t->plain_http;
}

struct pt_str pt_tls_alpn(const struct pt_tls_conn *t)
{
    const unsigned char *p = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    return p != NULL ? pt_str_make((const char *)p, len) : pt_str_make("", 0);
}

const char *pt_tls_version(const struct pt_tls_conn *t)
{
    return SSL_get_version(t->ssl);
}

bool pt_tls_resumed(const struct pt_tls_conn *t)
{
    return SSL_session_reused(t->ssl) == 1;
}

int pt_tls_peer_subject(const struct pt_tls_conn *t, char *buf, size_t size, bool *verified)
{
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (verified != NULL)
        *verified = x != NULL && SSL_get_verify_result(t->ssl) == X509_V_OK;
    if (size > 0)
        buf[0] = '\0';
    if (x == NULL)
        return 0;
    BIO *m = BIO_new(BIO_s_mem());
    if (m == NULL)
        return -1;
    int rc = -1;
    if (X509_NAME_print_ex(m, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        char *p;
        long len = BIO_get_mem_data(m, &p);
        if (len >= 0 && (size_t)len < size) {
            memcpy(buf, p, (size_t)len);
            buf[len] = '\0';
            rc = (int)len;
        }
    }
    BIO_free(m);
    ERR_clear_error();
    return rc;
}
