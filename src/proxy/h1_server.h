/*
 * The HTTP/1.1 server side of a client connection: reads and parses request
 * heads (pipelining and keep-alive), turns each into an exchange for the
 * proxy, reads request bodies on demand (Content-Length, chunked,
 * 100-continue), writes responses (Content-Length, chunked, close-delimited),
 * tunnels upgraded connections, and enforces the client-side limits and
 * timeouts (431, 413, 408, 400).
 */
#ifndef PT_PROXY_H1_SERVER_H
#define PT_PROXY_H1_SERVER_H

#include <sys/socket.h>

struct pt_worker;
struct pt_h1_conn;
struct pt_tls_server;

/** Take over an accepted socket; tls (the listener's, may be NULL) starts with a TLS handshake. */
void pt_h1_conn_accept(struct pt_worker *w, int fd, const struct sockaddr *peer, socklen_t len,
                       struct pt_tls_server *tls);

/** Draining: close the connection now if it is idle, else after its current response. */
void pt_h1_conn_drain(struct pt_h1_conn *c);

/** Close at once (drain timeout). */
void pt_h1_conn_kill(struct pt_h1_conn *c);

/** Next connection in the worker's list. */
struct pt_h1_conn *pt_h1_conn_next(struct pt_h1_conn *c);

#endif
