/*
 * TLS with OpenSSL 3: contexts built from the configuration, and
 * non-blocking connections whose I/O has exactly the semantics of
 * pt_io_read / pt_io_sendv (net/io.h), so that a codec only switches on
 * "is this connection TLS?".
 *
 *   struct pt_tls_server   a listener's contexts: one SSL_CTX per
 *                          certificate, picked by SNI (exact names, then
 *                          "*.rest" wildcards; the first certificate is the
 *                          default); client certificates (mTLS); ALPN; session
 *                          tickets under process-wide keys that survive
 *                          reloads and rotate every 12 hours.
 *                          Reference-counted: the snapshot holds one
 *                          reference, each connection another.
 *   struct pt_tls_client   a service's upstream context: verification (CA
 *                          file or the system store), optional client
 *                          certificate.  Owned by the snapshot; connections
 *                          keep the SSL_CTX alive through OpenSSL's own count.
 *   struct pt_tls_conn     one SSL on a non-blocking socket.
 *
 * See docs/tls.md for the configuration and docs/internals/tls.md for the
 * I/O rules.
 */
#ifndef PT_NET_TLS_H
#define PT_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "core/str.h"

struct pt_tls_server;
struct pt_tls_client;
struct pt_tls_conn;

enum pt_tls_version { PT_TLS_V1_2 = 0, PT_TLS_V1_3, PT_TLS_VERSION_COUNT };

/** What a listener does with client certificates (only with a client CA). */
enum pt_tls_client_verify {
    PT_TLS_VERIFY_NONE = 0, /* no client CA: none is asked for */
    PT_TLS_VERIFY_OPTIONAL, /* asked for; verified when presented; the handshake goes on without */
    PT_TLS_VERIFY_REQUIRE,  /* a valid certificate is required */
    PT_TLS_VERIFY_COUNT
};

/** Which input a problem is about, so that the configuration can point at it. */
enum pt_tls_field { PT_TLS_F_NONE = 0, PT_TLS_F_CERT, PT_TLS_F_KEY, PT_TLS_F_CA, PT_TLS_F_COUNT };

/** Problems found while building a context: at most one error and one warning. */
struct pt_tls_report {
    enum pt_tls_field error_field; /* PT_TLS_F_NONE: no error */
    char error[256];
    enum pt_tls_field warn_field; /* PT_TLS_F_NONE: no warning */
    char warning[256];
};

/** Step results of pt_tls_handshake besides 0 (done) and errors (< 0). */
enum { PT_TLS_WANT_READ = 1, PT_TLS_WANT_WRITE = 2 };

/** Largest plaintext per record; pt_tls_sendv gathers into records of at most this. */
#define PT_TLS_RECORD 16384

/* ---- listener contexts ---- */

/** An empty listener context set; NULL on ENOMEM (err says so). */
struct pt_tls_server *pt_tls_server_new(enum pt_tls_version min_version, struct pt_tls_report *r);

/**
 * Add a certificate (PEM chain: leaf first) and its private key (PEM, not
 * encrypted).  The first one added is the default.  0, or -1 with
 * r->error_field/r->error set: unreadable file, not a PEM certificate, not
 * a PEM key, key does not match.  An expired or not yet valid certificate
 * is a warning (r->warn_field), not an error.
 */
int pt_tls_server_add_cert(struct pt_tls_server *s, const char *cert, const char *key,
                           struct pt_tls_report *r);

/**
 * Ask for client certificates issued by the CAs in ca_file (PEM).  mode is
 * PT_TLS_VERIFY_OPTIONAL or _REQUIRE.  0, or -1 with r set (field CA).
 */
int pt_tls_server_set_client_ca(struct pt_tls_server *s, const char *ca_file,
                                enum pt_tls_client_verify mode, struct pt_tls_report *r);

/** Finish (after the last add): SNI table, callbacks.  0 or -1 with r set. */
int pt_tls_server_finish(struct pt_tls_server *s, struct pt_tls_report *r);

struct pt_tls_server *pt_tls_server_ref(struct pt_tls_server *s);
/** Drop a reference (any thread); s may be NULL. */
void pt_tls_server_unref(struct pt_tls_server *s);

/** Index of the certificate that serves name (SNI, any case); the default (0) when none does. */
size_t pt_tls_server_select(const struct pt_tls_server *s, const char *name, size_t len);

/** Number of certificates added. */
size_t pt_tls_server_count(const struct pt_tls_server *s);

/* ---- upstream contexts ---- */

struct pt_tls_client_opts {
    bool verify;      /* verify the server's certificate and name */
    const char *ca;   /* PEM file of trusted CAs; NULL = the system store */
    const char *cert; /* client certificate (PEM), with key; NULL = none */
    const char *key;
};

/** NULL with r set (unreadable CA, bad certificate or key) or on ENOMEM. */
struct pt_tls_client *pt_tls_client_new(const struct pt_tls_client_opts *o,
                                        struct pt_tls_report *r);
void pt_tls_client_free(struct pt_tls_client *c);

/**
 * Key for the keep-alive pool: connections made with the same settings to
 * the same name may be shared (also across reloads); never 0.
 */
uint64_t pt_tls_client_pool_key(const struct pt_tls_client *c, const char *name);

/** A client session kept for resumption (one per pool bucket; one thread). */
struct pt_tls_session_cache {
    void *session; /* SSL_SESSION *, owned */
};

void pt_tls_session_cache_clear(struct pt_tls_session_cache *sc);

/* ---- connections ---- */

/** Server side of an accepted socket (takes a reference on s).  NULL on ENOMEM. */
struct pt_tls_conn *pt_tls_accept(struct pt_tls_server *s, int fd);

/**
 * Client side of a connected (or connecting) socket.  name (may be NULL)
 * is sent as SNI when it is a host name, and checked against the server's
 * certificate (as a name or an IP address) when the context verifies.
 * cache (may be NULL) offers its session and receives new ones; it must
 * outlive the connection.  NULL on ENOMEM.
 */
struct pt_tls_conn *pt_tls_connect(struct pt_tls_client *c, int fd, const char *name,
                                   struct pt_tls_session_cache *cache);

/**
 * Free the connection (no I/O; the socket stays open).  A connection that
 * ended without a TLS error keeps its session resumable.
 */
void pt_tls_free(struct pt_tls_conn *t);

/** Send close_notify once (best effort, no waiting).  No-op before the handshake. */
void pt_tls_close_notify(struct pt_tls_conn *t);

/**
 * One handshake step: 0 when complete, PT_TLS_WANT_READ (the socket was
 * read dry: wait for the next input edge), PT_TLS_WANT_WRITE (wait for
 * writability), or PT_ERR_IO (pt_tls_error tells why).
 */
int pt_tls_handshake(struct pt_tls_conn *t);

bool pt_tls_handshake_done(const struct pt_tls_conn *t);

/**
 * As pt_io_read: returns bytes read (> 0), 0 at the end of the stream
 * (close_notify, or the peer closed the socket), PT_AGAIN, PT_ERR_TOO_LARGE
 * (b at max_cap), PT_ERR_NOMEM or PT_ERR_IO.  *drained is set only when no
 * byte is left inside OpenSSL and the socket was read dry, so that the next
 * input edge is the only thing worth waiting for.
 */
ssize_t pt_tls_read(struct pt_tls_conn *t, struct pt_buf *b, size_t min_room, size_t max_cap,
                    bool *drained);

/**
 * As pt_io_sendv: pending then iov[0..n), gathered into records of up to
 * PT_TLS_RECORD bytes.  Returns 0 (all written), 1 (the unsent bytes,
 * including a record the socket took only in part, are at the head of
 * pending: call again when writable), PT_ERR_NOMEM or PT_ERR_IO.
 * *written gets the plaintext bytes that went out.
 */
int pt_tls_sendv(struct pt_tls_conn *t, struct pt_buf *pending, const struct iovec *iov, size_t n,
                 size_t *written);

/** Flush pending; same returns as pt_tls_sendv. */
int pt_tls_flush(struct pt_tls_conn *t, struct pt_buf *pending, size_t *written);

/**
 * A read stopped because OpenSSL must write first (a post-handshake
 * message while the socket is full): read again once writable.
 */
bool pt_tls_read_wants_write(const struct pt_tls_conn *t);

/** Bytes wait inside OpenSSL (a record not read yet). */
bool pt_tls_pending(const struct pt_tls_conn *t);

/** The handshake failed because the peer spoke plain HTTP to a TLS port. */
bool pt_tls_plain_http(const struct pt_tls_conn *t);

/** Why the last operation failed, for logs (thread-local text, valid until the next call). */
const char *pt_tls_error(const struct pt_tls_conn *t);

/** The negotiated ALPN protocol (empty when none). */
struct pt_str pt_tls_alpn(const struct pt_tls_conn *t);

/** "TLSv1.3", ... */
const char *pt_tls_version(const struct pt_tls_conn *t);

/** The session was resumed (ticket or session cache). */
bool pt_tls_resumed(const struct pt_tls_conn *t);

/**
 * The peer's certificate subject as an RFC 2253 string ("CN=alice,O=Example"),
 * NUL-terminated in buf.  Returns its length, 0 when the peer sent no
 * certificate, or -1 when it does not fit.  *verified (may be NULL) tells
 * whether the certificate passed verification.
 */
int pt_tls_peer_subject(const struct pt_tls_conn *t, char *buf, size_t size, bool *verified);

/* ---- process-wide ---- */

/** "3.0.13": the OpenSSL library in use. */
const char *pt_tls_library_version(void);

/** Ticket keys rotate after this many seconds; the previous key still decrypts. */
#define PT_TLS_TICKET_ROTATE_S (12 * 3600)

/** Rotate the ticket keys now (tests; a future admin call). */
void pt_tls_tickets_rotate(void);

#endif
