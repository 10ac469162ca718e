/*
 * Private to src/net/tls.c (contexts) and src/net/tls_io.c (connections).
 */
#ifndef PT_NET_TLS_INT_H
#define PT_NET_TLS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "net/tls.h"

struct pt_tls_sni {
    char *name; /* lower case, no trailing dot; "*.example.com" for a wildcard */
    size_t cert;
};

struct pt_tls_server {
    atomic_long refs;
    enum pt_tls_version min_version;
    SSL_CTX **ctx; /* one per certificate; ctx[0] is the default and holds the session cache */
    size_t nctx, cap;
    struct pt_tls_sni *names; /* sorted by name */
    size_t nnames, names_cap;
    enum pt_tls_client_verify verify;
    X509_STORE *client_store;              /* NULL without client_ca */
    STACK_OF(X509_NAME) * client_ca_names; /* sent in CertificateRequest */
    unsigned char sid_ctx[32];             /* sessions resume only where the settings match */
};

struct pt_tls_client {
    SSL_CTX *ctx;
    uint64_t id; /* fingerprint of the settings (pool keys) */
};

struct pt_tls_conn {
    SSL *ssl;
    int fd;
    struct pt_tls_server *server;       /* server side: our reference */
    struct pt_tls_session_cache *cache; /* client side: where new sessions go */
    bool short_read;                    /* the last recv() got less than asked, EAGAIN or EOF */
    bool read_wants_write;              /* a read stopped on SSL_ERROR_WANT_WRITE */
    bool handshake_done;
    bool tls_error;     /* a TLS-level failure: the session is not kept for resumption */
    bool io_error;      /* any failure: no close_notify */
    bool shutdown_sent; /* close_notify went out (or was attempted) */
    bool plain_http;    /* the handshake saw an HTTP request */
};

/** The socket BIO shared by every connection (created once). */
BIO_METHOD *pt__tls_bio_method(void);

/** SSL_CTX_sess_set_new_cb for upstream contexts: keep the session in the connection's cache. */
int pt__tls_client_new_session(SSL *ssl, SSL_SESSION *sess);

/** Format OpenSSL's error queue (and a verify result) into the thread's error text. */
const char *pt__tls_set_error(const SSL *ssl, int ssl_error, int sys_errno);

#endif
