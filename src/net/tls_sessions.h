/*
 * The process-wide server session cache for TLS session-id resumption:
 * it survives configuration reloads (see tls_sessions.c).
 */
#ifndef PT_NET_TLS_SESSIONS_H
#define PT_NET_TLS_SESSIONS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* OpenSSL's own default cache size (SSL_SESSION_CACHE_MAX_SIZE_DEFAULT). */
#define PT_TLS_SESSIONS_MAX 20480
/* Serialised sessions up to this size are copied out on the stack. */
#define PT_TLS_SESSIONS_STACK_DER 1024

/** Make ctx store and look up its server sessions in the process cache. */
void pt_tls_sessions_attach(SSL_CTX *ctx);

/** Free every stored session (at exit). */
void pt_tls_sessions_clear(void);

#endif
