/*
 * Socket helpers: listeners (one per worker with SO_REUSEPORT), non-blocking
 * connects, socket options.  Every function returns 0 or a file descriptor
 * on success and -1 with errno set on failure.
 */
#ifndef PT_NET_SOCK_H
#define PT_NET_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/** Open a non-blocking listening socket; reuseport lets each worker own one. */
int pt_sock_listen(const struct sockaddr *addr, socklen_t len, bool reuseport, int backlog);

/** Start a non-blocking TCP connect.  Returns the fd; *in_progress tells whether to wait for
 * EPOLLOUT. */
int pt_sock_connect(const struct sockaddr *addr, socklen_t len, bool *in_progress);

/** Pending error of a connecting socket (SO_ERROR): 0 when connected. */
int pt_sock_error(int fd);

/** TCP_NODELAY on. */
void pt_sock_nodelay(int fd);

/**
 * Whether an accept() error means the process or the kernel is out of a
 * resource (descriptors, socket buffers, memory).  The pending connection
 * stays in the backlog, so a level-triggered listener would report it again
 * at once: the caller must stop watching the listener for a while instead
 * of spinning.
 */
bool pt_sock_accept_exhausted(int err);

/**
 * Parse "host:port", "[v6]:port", ":port" or "port" without name
 * resolution; host "" or "*" means any address.  0 or -1.
 */
int pt_sock_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/** "1.2.3.4:80" / "[::1]:80" into buf; returns buf. */
char *pt_sock_format_addr(const struct sockaddr *sa, char *buf, size_t size);

#endif
