/*
 * TLS contexts: what a listener or an upstream service needs from OpenSSL,
 * built once per configuration load (off the event loops), immutable
 * afterwards and shared by every worker thread (OpenSSL locks what it
 * shares itself: the session cache, reference counts).
 *
 * Listener: one SSL_CTX per certificate.  The first is the connection's
 * initial context; the servername callback switches to the certificate
 * whose names (SAN DNS entries, else the CN) match the SNI, exact names
 * first, then a "*.rest" wildcard for the first label.  Settings that the
 * switch does not carry over (verify mode, options) are the same on every
 * context.  The session id context belongs to the initial context, as
 * OpenSSL reads it from there; the session cache is the process's
 * (tls_sessions.c), so that, like the ticket keys, it survives reloads.
 *
 * Session tickets are encrypted with process-wide keys (AES-256-CBC and
 * HMAC-SHA256, OpenSSL's own ticket format) that do not belong to any
 * snapshot, so a configuration reload keeps every ticket valid.  The key
 * rotates every PT_TLS_TICKET_ROTATE_S; the previous key still decrypts (and
 * the ticket is then renewed), so a ticket lives at most two periods.  The
 * session id context is derived from the client-certificate settings (the
 * mode and the CA file's bytes), so a session resumes only under the same
 * mTLS rules, whichever listener issued it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/alloc.h"
#include "net/tls-int.h"
#include "net/tls_sessions.h"

#define SESSION_TIMEOUT_S 3600
#define MAX_PEM_FILE      (1u << 20)

/* ALPN, in the server's order of preference (wire format: length-prefixed).
 * HTTP/2 is one more entry in front: "\x02" "h2" "\x08" "http/1.1". */
static const unsigned char alpn_server[] = "\x08"
                                           "http/1.1";
static const unsigned char alpn_client[] = "\x08"
                                           "http/1.1";

static void report(struct pt_tls_report *r, enum pt_tls_field f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct pt_tls_report *r, enum pt_tls_field f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct pt_tls_report *r, enum pt_tls_field f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->error_field = f;
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    ERR_clear_error();
}

static void warn(struct pt_tls_report *r, enum pt_tls_field f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->warn_field = f;
    vsnprintf(r->warning, sizeof(r->warning), fmt, ap);
    va_end(ap);
}

/* The whole of a (small) file, malloc'd; NULL with errno set. */
static unsigned char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) == -1)
        goto out;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto out;
    }
    if (st.st_size > (off_t)MAX_PEM_FILE) {
        errno = EFBIG;
        goto out;
    }
    buf = pt_malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        errno = ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *len = got;
out : {
    int e = errno;
    close(fd);
    errno = e;
    return buf;
}
}

/* Can the file be read?  Reports "cannot read" otherwise. */
static int readable(const char *path, enum pt_tls_field f, struct pt_tls_report *r)
{
    size_t len;
    unsigned char *p = slurp(path, &len);
    if (p == NULL) {
        report(r, f, "cannot read \"%s\": %s", path,
               errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
        return -1;
    }
    free(p);
    return 0;
}

static void sha256(const void *parts[], const size_t lens[], size_t n, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int olen = 32;
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        memset(out, 0, 32);
        EVP_MD_CTX_free(md);
        return;
    }
    for (size_t i = 0; i < n; i++)
        EVP_DigestUpdate(md, parts[i], lens[i]);
    EVP_DigestFinal_ex(md, out, &olen);
    EVP_MD_CTX_free(md);
}

/* Hash of a file's content ("" when it cannot be read: the load reports that). */
static void file_digest(const char *path, unsigned char out[32])
{
    size_t len = 0;
    unsigned char *p = path != NULL ? slurp(path, &len) : NULL;
    const void *parts[] = {p != NULL ? (const void *)p : (const void *)""};
    size_t lens[] = {p != NULL ? len : 0};
    sha256(parts, lens, 1, out);
    free(p);
}

/* ---- ticket keys (process-wide) ---- */

struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
};

static struct {
    pthread_mutex_t lock;
    bool ready, have_prev;
    time_t rotated; /* CLOCK_MONOTONIC seconds */
    struct ticket_key cur, prev;
} tickets = {.lock = PTHREAD_MUTEX_INITIALIZER};

static time_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static void rotate_locked(time_t now)
{
    struct ticket_key k;
    if (RAND_bytes((unsigned char *)&k, sizeof(k)) != 1)
        return; /* keep the current key; try again next time */
    if (tickets.ready) {
        tickets.prev = tickets.cur;
        tickets.have_prev = true;
    }
    tickets.cur = k;
    tickets.ready = true;
    tickets.rotated = now;
    OPENSSL_cleanse(&k, sizeof(k));
}

void pt_tls_tickets_rotate(void)
{
    pthread_mutex_lock(&tickets.lock);
    rotate_locked(mono_s());
    pthread_mutex_unlock(&tickets.lock);
}

/* The key to encrypt with (rotating when due); false when none could be made. */
static bool ticket_current(struct ticket_key *out)
{
    time_t now = mono_s();
    pthread_mutex_lock(&tickets.lock);
    if (!tickets.ready || now - tickets.rotated >= PT_TLS_TICKET_ROTATE_S)
        rotate_locked(now);
    bool ok = tickets.ready;
    if (ok)
        *out = tickets.cur;
    pthread_mutex_unlock(&tickets.lock);
    return ok;
}

/* The key named name: 1 current, 2 previous (renew the ticket), 0 unknown. */
static int ticket_find(const unsigned char name[16], struct ticket_key *out)
{
    int rc = 0;
    pthread_mutex_lock(&tickets.lock);
    if (tickets.ready && memcmp(tickets.cur.name, name, 16) == 0) {
        *out = tickets.cur;
        rc = 1;
    } else if (tickets.have_prev && memcmp(tickets.prev.name, name, 16) == 0) {
        *out = tickets.prev;
        rc = 2;
    }
    pthread_mutex_unlock(&tickets.lock);
    return rc;
}

static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct ticket_key k;
    int rc = 1;
    if (enc) {
        if (!ticket_current(&k) || RAND_bytes(iv, 16) != 1)
            return -1;
        memcpy(key_name, k.name, 16);
    } else {
        rc = ticket_find(key_name, &k);
        if (rc == 0)
            return 0; /* unknown or expired key: a full handshake, then a fresh ticket */
        /* TLS 1.3 tickets are meant for one use: always send a new one (as nginx does) */
        if (SSL_version(ssl) == TLS1_3_VERSION)
            rc = 2;
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"sha256", 0),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_MAC_CTX_set_params(hctx, params) == 1 &&
             (enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv)
                  : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv)) == 1;
    OPENSSL_cleanse(&k, sizeof(k));
    return ok ? rc : -1;
}

/* ---- certificates and keys ---- */

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0; /* never prompt on the terminal: encrypted keys are refused */
}

static void format_time(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, size, "?");
}

/* The leaf certificate of a PEM file; NULL after reporting. */
static X509 *read_leaf(const char *path, struct pt_tls_report *r)
{
    if (readable(path, PT_TLS_F_CERT, r) != 0)
        return NULL;
    BIO *b = BIO_new_file(path, "r");
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, no_password, NULL) : NULL;
    BIO_free(b);
    if (x == NULL)
        report(r, PT_TLS_F_CERT, "\"%s\" is not a PEM certificate", path);
    return x;
}

static void check_validity(X509 *x, const char *path, struct pt_tls_report *r)
{
    char when[64];
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        format_time(X509_get0_notAfter(x), when, sizeof(when));
        warn(r, PT_TLS_F_CERT, "certificate \"%s\" expired on %s (it is served anyway)", path,
             when);
    } else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        format_time(X509_get0_notBefore(x), when, sizeof(when));
        warn(r, PT_TLS_F_CERT, "certificate \"%s\" is not valid before %s (it is served anyway)",
             path, when);
    }
}

/* Load cert chain + key into ctx, checking each step.  0 or -1 after reporting. */
static int use_cert_and_key(SSL_CTX *ctx, const char *cert, const char *key, X509 **leaf,
                            struct pt_tls_report *r)
{
    X509 *x = read_leaf(cert, r);
    if (x == NULL)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        unsigned long e = ERR_peek_last_error();
        report(r, PT_TLS_F_CERT, "cannot use the certificate chain in \"%s\": %s", cert,
               e ? ERR_reason_error_string(e) : "unknown error");
        X509_free(x);
        return -1;
    }
    if (readable(key, PT_TLS_F_KEY, r) != 0) {
        X509_free(x);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        bool mismatch = ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                        ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH;
        if (mismatch)
            report(r, PT_TLS_F_KEY, "the key in \"%s\" does not match the certificate \"%s\"", key,
                   cert);
        else
            report(r, PT_TLS_F_KEY, "\"%s\" is not a PEM private key (or it is encrypted)", key);
        X509_free(x);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        report(r, PT_TLS_F_KEY, "the key in \"%s\" does not match the certificate \"%s\"", key,
               cert);
        X509_free(x);
        return -1;
    }
    ERR_clear_error();
    check_validity(x, cert, r);
    *leaf = x;
    return 0;
}

static void common_options(SSL_CTX *ctx)
{
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* Read whole socket buffers at once: one recv() per batch of records,
     * not two per record (header, then body). */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
}

/* ---- listener contexts ---- */

struct pt_tls_server *pt_tls_server_new(enum pt_tls_version min_version, struct pt_tls_report *r)
{
    struct pt_tls_server *s = pt_calloc(1, sizeof(*s));
    if (s == NULL) {
        report(r, PT_TLS_F_NONE, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->min_version = min_version;
    return s;
}

static bool name_char_ok(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
           ch == '_';
}

/* Add one DNS name of certificate idx (first claim wins; odd names are skipped). */
static int add_name(struct pt_tls_server *s, const unsigned char *p, size_t len, size_t idx)
{
    char buf[256];
    if (len > 0 && p[len - 1] == '.')
        len--;
    if (len == 0 || len >= sizeof(buf))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = (char)p[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        bool wildcard_star = i == 0 && ch == '*' && len > 2 && p[1] == '.';
        if (!wildcard_star && !name_char_ok(ch))
            return 0;
        buf[i] = ch;
    }
    buf[len] = '\0';
    if (s->nnames == s->names_cap) {
        size_t cap = s->names_cap ? s->names_cap * 2 : 8;
        struct pt_tls_sni *n = pt_realloc(s->names, cap * sizeof(*n));
        if (n == NULL)
            return -1;
        s->names = n;
        s->names_cap = cap;
    }
    char *copy = pt_strdup(buf);
    if (copy == NULL)
        return -1;
    s->names[s->nnames++] = (struct pt_tls_sni){copy, idx};
    return 0;
}

static int add_cert_names(struct pt_tls_server *s, X509 *x, size_t idx)
{
    int rc = 0, found = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        found++;
        if (add_name(s, ASN1_STRING_get0_data(g->d.dNSName),
                     (size_t)ASN1_STRING_length(g->d.dNSName), idx) != 0)
            rc = -1;
    }
    GENERAL_NAMES_free(gens);
    if (found > 0)
        return rc;
    /* no DNS names: the subject's CN, as older certificates have it */
    X509_NAME *subj = X509_get_subject_name(x);
    int pos = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (pos < 0)
        return 0;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, pos)));
    if (n > 0)
        rc = add_name(s, utf8, (size_t)n, idx);
    OPENSSL_free(utf8);
    return rc;
}

int pt_tls_server_add_cert(struct pt_tls_server *s, const char *cert, const char *key,
                           struct pt_tls_report *r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        report(r, PT_TLS_F_NONE, "cannot create a TLS context");
        return -1;
    }
    common_options(ctx);
    SSL_CTX_set_min_proto_version(ctx,
                                  s->min_version == PT_TLS_V1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_dh_auto(ctx, 1);
    X509 *leaf = NULL;
    if (use_cert_and_key(ctx, cert, key, &leaf, r) != 0) {
        SSL_CTX_free(ctx);
        return -1;
    }
    if (s->nctx == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        SSL_CTX **n = pt_realloc(s->ctx, cap * sizeof(*n));
        if (n == NULL) {
            X509_free(leaf);
            SSL_CTX_free(ctx);
            report(r, PT_TLS_F_NONE, "out of memory");
            return -1;
        }
        s->ctx = n;
        s->cap = cap;
    }
    s->ctx[s->nctx] = ctx;
    int rc = add_cert_names(s, leaf, s->nctx);
    s->nctx++;
    X509_free(leaf);
    if (rc != 0)
        report(r, PT_TLS_F_NONE, "out of memory");
    return rc;
}

int pt_tls_server_set_client_ca(struct pt_tls_server *s, const char *ca_file,
                                enum pt_tls_client_verify mode, struct pt_tls_report *r)
{
    if (readable(ca_file, PT_TLS_F_CA, r) != 0)
        return -1;
    X509_STORE *store = X509_STORE_new();
    if (store == NULL || X509_STORE_load_file(store, ca_file) != 1) {
        X509_STORE_free(store);
        report(r, PT_TLS_F_CA, "\"%s\" holds no PEM certificate", ca_file);
        return -1;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (names == NULL) {
        X509_STORE_free(store);
        report(r, PT_TLS_F_CA, "\"%s\" holds no PEM certificate", ca_file);
        return -1;
    }
    X509_STORE_free(s->client_store);
    if (s->client_ca_names != NULL)
        sk_X509_NAME_pop_free(s->client_ca_names, X509_NAME_free);
    s->client_store = store;
    s->client_ca_names = names;
    s->verify = mode == PT_TLS_VERIFY_REQUIRE ? PT_TLS_VERIFY_REQUIRE : PT_TLS_VERIFY_OPTIONAL;
    unsigned char digest[32];
    file_digest(ca_file, digest);
    unsigned char m = (unsigned char)s->verify;
    const void *parts[] = {"portico-sid/1", &m, digest};
    size_t lens[] = {13, 1, 32};
    sha256(parts, lens, 3, s->sid_ctx);
    ERR_clear_error();
    return 0;
}

static int sni_cmp(const void *a, const void *b)
{
    const struct pt_tls_sni *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->cert < y->cert ? -1 : x->cert > y->cert;
}

static int sni_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct pt_tls_sni *)elem)->name);
}

size_t pt_tls_server_select(const struct pt_tls_server *s, const char *name, size_t len)
{
    char buf[256];
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len + 1 >= sizeof(buf) || s->nnames == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        buf[i + 1] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    buf[len + 1] = '\0';
    const struct pt_tls_sni *e =
        bsearch(buf + 1, s->names, s->nnames, sizeof(*s->names), sni_key_cmp);
    if (e != NULL)
        return e->cert;
    char *dot = memchr(buf + 1, '.', len);
    if (dot == NULL || dot == buf + 1)
        return 0;
    dot[-1] = '*'; /* "a.example.com" -> "*.example.com" */
    e = bsearch(dot - 1, s->names, s->nnames, sizeof(*s->names), sni_key_cmp);
    return e != NULL ? e->cert : 0;
}

size_t pt_tls_server_count(const struct pt_tls_server *s)
{
    return s->nctx;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct pt_tls_server *s = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    size_t i = pt_tls_server_select(s, name, strlen(name));
    if (i != 0 && SSL_set_SSL_CTX(ssl, s->ctx[i]) == NULL)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, alpn_server, sizeof(alpn_server) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* nothing in common: go on without ALPN */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int pt_tls_server_finish(struct pt_tls_server *s, struct pt_tls_report *r)
{
    if (s->nctx == 0) {
        report(r, PT_TLS_F_CERT, "at least one certificate is required");
        return -1;
    }
    if (s->client_store == NULL) {
        const void *parts[] = {"portico-sid/1"};
        size_t lens[] = {13};
        sha256(parts, lens, 1, s->sid_ctx);
    }
    if (s->nnames > 1)
        qsort(s->names, s->nnames, sizeof(*s->names), sni_cmp);
    /* the first certificate to claim a name keeps it */
    size_t k = 0;
    for (size_t i = 0; i < s->nnames; i++) {
        if (k > 0 && strcmp(s->names[k - 1].name, s->names[i].name) == 0) {
            free(s->names[i].name);
            continue;
        }
        s->names[k++] = s->names[i];
    }
    s->nnames = k;
    int mode = SSL_VERIFY_NONE;
    if (s->verify == PT_TLS_VERIFY_OPTIONAL)
        mode = SSL_VERIFY_PEER;
    else if (s->verify == PT_TLS_VERIFY_REQUIRE)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    for (size_t i = 0; i < s->nctx; i++) {
        SSL_CTX *ctx = s->ctx[i];
        SSL_CTX_set_verify(ctx, mode, NULL);
        if (s->client_store != NULL) {
            STACK_OF(X509_NAME) *names = SSL_dup_CA_list(s->client_ca_names);
            if (names == NULL || SSL_CTX_set1_verify_cert_store(ctx, s->client_store) != 1) {
                sk_X509_NAME_pop_free(names, X509_NAME_free);
                report(r, PT_TLS_F_CA, "out of memory");
                return -1;
            }
            SSL_CTX_set_client_CA_list(ctx, names);
        }
        if (SSL_CTX_set_session_id_context(ctx, s->sid_ctx, sizeof(s->sid_ctx)) != 1) {
            report(r, PT_TLS_F_NONE, "cannot set the session id context");
            return -1;
        }
        pt_tls_sessions_attach(ctx); /* the process's cache: it outlives this context */
        SSL_CTX_set_timeout(ctx, SESSION_TIMEOUT_S);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
        SSL_CTX_set_tlsext_servername_arg(ctx, s);
        SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    }
    ERR_clear_error();
    return 0;
}

struct pt_tls_server *pt_tls_server_ref(struct pt_tls_server *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void pt_tls_server_unref(struct pt_tls_server *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->nctx; i++)
        SSL_CTX_free(s->ctx[i]);
    for (size_t i = 0; i < s->nnames; i++)
        free(s->names[i].name);
    free(s->names);
    free(s->ctx);
    X509_STORE_free(s->client_store);
    if (s->client_ca_names != NULL)
        sk_X509_NAME_pop_free(s->client_ca_names, X509_NAME_free);
    free(s);
}

/* ---- upstream contexts ---- */

struct pt_tls_client *pt_tls_client_new(const struct pt_tls_client_opts *o, struct pt_tls_report *r)
{
    struct pt_tls_client *c = pt_calloc(1, sizeof(*c));
    SSL_CTX *ctx = c != NULL ? SSL_CTX_new(TLS_client_method()) : NULL;
    if (ctx == NULL) {
        free(c);
        report(r, PT_TLS_F_NONE, "out of memory");
        return NULL;
    }
    c->ctx = ctx;
    common_options(ctx);
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (o->ca != NULL) {
        if (readable(o->ca, PT_TLS_F_CA, r) != 0)
            goto fail;
        if (SSL_CTX_load_verify_file(ctx, o->ca) != 1) {
            report(r, PT_TLS_F_CA, "\"%s\" holds no PEM certificate", o->ca);
            goto fail;
        }
    } else if (o->verify && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        report(r, PT_TLS_F_CA, "cannot load the system's trusted certificates");
        goto fail;
    }
    if (o->cert != NULL) {
        X509 *leaf = NULL;
        if (use_cert_and_key(ctx, o->cert, o->key, &leaf, r) != 0)
            goto fail;
        X509_free(leaf);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, pt__tls_client_new_session);
    if (SSL_CTX_set_alpn_protos(ctx, alpn_client, sizeof(alpn_client) - 1) != 0) {
        report(r, PT_TLS_F_NONE, "out of memory");
        goto fail;
    }
    unsigned char ca[32], cert[32], id[32];
    file_digest(o->ca, ca);
    file_digest(o->cert, cert);
    unsigned char v = o->verify ? 1 : 0;
    const char *ca_kind = o->ca != NULL ? "file" : "system";
    const void *parts[] = {"portico-up/1", &v, ca_kind, ca, cert};
    size_t lens[] = {12, 1, strlen(ca_kind), 32, 32};
    sha256(parts, lens, 5, id);
    memcpy(&c->id, id, sizeof(c->id));
    ERR_clear_error();
    return c;
fail:
    pt_tls_client_free(c);
    return NULL;
}

void pt_tls_client_free(struct pt_tls_client *c)
{
    if (c == NULL)
        return;
    SSL_CTX_free(c->ctx);
    free(c);
}

uint64_t pt_tls_client_pool_key(const struct pt_tls_client *c, const char *name)
{
    unsigned char out[32];
    const void *parts[] = {&c->id, name != NULL ? name : ""};
    size_t lens[] = {sizeof(c->id), name != NULL ? strlen(name) + 1 : 0};
    sha256(parts, lens, 2, out);
    uint64_t key;
    memcpy(&key, out, sizeof(key));
    return key != 0 ? key : 1;
}

const char *pt_tls_library_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION_STRING);
}
