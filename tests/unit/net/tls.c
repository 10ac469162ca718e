/*
 * TLS contexts and connections (src/net/tls.c, tls_io.c).  Certificates are
 * made here with the OpenSSL API (a CA, server certificates for two names
 * and a wildcard, a client certificate, an expired one); connections run
 * over socketpairs against a plain OpenSSL peer, both non-blocking, pumped
 * by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "test.h"
#include "portico/status.h"
#include "core/buf.h"
#include "net/tls.h"

static char dir[64];
static EVP_PKEY *ca_key;
static X509 *ca_cert;

static const char *path(const char *name)
{
    static char buf[8][256];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
}

/*
 * Write NAME.pem and NAME.key: subject "CN=cn[,O=org]", SAN sans (may be
 * NULL), valid from `from` to `to` days from now, signed by the CA (or
 * self-signed as the CA when is_ca).
 */
static void make_cert(const char *name, const char *cn, const char *org, const char *sans,
                      long from, long to, bool is_ca)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), to * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    if (org != NULL)
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)org, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509 *issuer = is_ca ? x : ca_cert;
    X509_set_issuer_name(x, X509_get_subject_name(issuer));
    if (is_ca) {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
    }
    if (sans != NULL)
        add_ext(x, issuer, NID_subject_alt_name, sans);
    X509_sign(x, is_ca ? key : ca_key, EVP_sha256());
    char fn[128];
    snprintf(fn, sizeof(fn), "%s.pem", name);
    FILE *f = fopen(path(fn), "w");
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(fn, sizeof(fn), "%s.key", name);
    f = fopen(path(fn), "w");
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    if (is_ca) {
        ca_key = key;
        ca_cert = x;
    } else {
        EVP_PKEY_free(key);
        X509_free(x);
    }
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(path(name), "w");
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/pt-tls-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    make_cert("ca", "Test CA", "Example", NULL, -1, 30, true);
    make_cert("a", "a.example", NULL, "DNS:a.example,DNS:*.wild.example", -1, 30, false);
    make_cert("b", "b.example", NULL, "DNS:b.example,DNS:A.Example", -1, 30, false);
    make_cert("cn", "cn-only.example", NULL, NULL, -1, 30, false);
    make_cert("alice", "alice", "Example", NULL, -1, 30, false);
    make_cert("old", "old.example", NULL, "DNS:old.example", -30, -1, false);
    write_file("junk.pem", "hello\n");
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        note("could not remove %s", dir);
    EVP_PKEY_free(ca_key);
    X509_free(ca_cert);
}

/* ---- contexts ---- */

static struct pt_tls_server *server(enum pt_tls_version v, const char *client_ca,
                                    enum pt_tls_client_verify mode)
{
    struct pt_tls_report r = {0};
    struct pt_tls_server *s = pt_tls_server_new(v, &r);
    int rc = pt_tls_server_add_cert(s, path("a.pem"), path("a.key"), &r);
    rc |= pt_tls_server_add_cert(s, path("b.pem"), path("b.key"), &r);
    rc |= pt_tls_server_add_cert(s, path("cn.pem"), path("cn.key"), &r);
    if (client_ca != NULL)
        rc |= pt_tls_server_set_client_ca(s, path(client_ca), mode, &r);
    rc |= pt_tls_server_finish(s, &r);
    if (rc != 0)
        note("server setup: %s", r.error);
    return s;
}

static void test_load_errors(void)
{
    struct pt_tls_report r = {0};
    struct pt_tls_server *s = pt_tls_server_new(PT_TLS_V1_2, &r);
    ok(pt_tls_server_add_cert(s, path("missing.pem"), path("a.key"), &r) == -1, "missing cert");
    is_int(r.error_field, PT_TLS_F_CERT, "blamed on the cert");
    ok(strstr(r.error, "cannot read") && strstr(r.error, "No such file"), "why: %s", r.error);

    memset(&r, 0, sizeof(r));
    ok(pt_tls_server_add_cert(s, path("a.pem"), path("missing.key"), &r) == -1, "missing key");
    is_int(r.error_field, PT_TLS_F_KEY, "blamed on the key");

    memset(&r, 0, sizeof(r));
    ok(pt_tls_server_add_cert(s, path("junk.pem"), path("a.key"), &r) == -1, "junk cert");
    ok(strstr(r.error, "not a PEM certificate") != NULL, "why: %s", r.error);

    memset(&r, 0, sizeof(r));
    ok(pt_tls_server_add_cert(s, path("a.pem"), path("junk.pem"), &r) == -1, "junk key");
    ok(strstr(r.error, "not a PEM private key") != NULL, "why: %s", r.error);

    memset(&r, 0, sizeof(r));
    ok(pt_tls_server_add_cert(s, path("a.pem"), path("b.key"), &r) == -1, "mismatched key");
    is_int(r.error_field, PT_TLS_F_KEY, "mismatch blamed on the key");
    ok(strstr(r.error, "does not match") != NULL, "why: %s", r.error);

    memset(&r, 0, sizeof(r));
    ok(pt_tls_server_add_cert(s, path("old.pem"), path("old.key"), &r) == 0, "expired: loads");
    is_int(r.warn_field, PT_TLS_F_CERT, "expired: a warning");
    ok(strstr(r.warning, "expired on") != NULL, "warning: %s", r.warning);

    memset(&r, 0, sizeof(r));
    ok(pt_tls_server_set_client_ca(s, path("junk.pem"), PT_TLS_VERIFY_REQUIRE, &r) == -1,
       "junk client CA");
    is_int(r.error_field, PT_TLS_F_CA, "blamed on the CA");
    pt_tls_server_unref(s);

    memset(&r, 0, sizeof(r));
    s = pt_tls_server_new(PT_TLS_V1_2, &r);
    ok(pt_tls_server_finish(s, &r) == -1, "no certificate: an error");
    pt_tls_server_unref(s);

    memset(&r, 0, sizeof(r));
    struct pt_tls_client_opts co = {.verify = true, .ca = path("nope.pem")};
    ok(pt_tls_client_new(&co, &r) == NULL, "upstream: missing CA");
    is_int(r.error_field, PT_TLS_F_CA, "blamed on the CA");
}

static void test_sni_select(void)
{
    struct pt_tls_server *s = server(PT_TLS_V1_2, NULL, PT_TLS_VERIFY_NONE);
    is_int(pt_tls_server_count(s), 3, "three certificates");
#define SEL(n) pt_tls_server_select(s, (n), strlen(n))
    is_int(SEL("a.example"), 0, "a.example: first");
    is_int(SEL("b.example"), 1, "b.example: second");
    is_int(SEL("B.EXAMPLE."), 1, "any case, trailing dot");
    is_int(SEL("a.example"), 0, "a.example claimed by both: the first wins");
    is_int(SEL("x.wild.example"), 0, "wildcard");
    is_int(SEL("y.x.wild.example"), 0, "wildcard is one label only (default)");
    is_int(SEL("wild.example"), 0, "the wildcard's parent does not match (default)");
    is_int(SEL("cn-only.example"), 2, "no SAN: the CN");
    is_int(SEL("unknown.example"), 0, "unknown: default");
    is_int(SEL(""), 0, "empty: default");
#undef SEL
    pt_tls_server_unref(s);
}

/* ---- connections over a socketpair ---- */

struct pair {
    int sfd, cfd;
    struct pt_tls_conn *srv;
    SSL_CTX *cctx;
    SSL *cli;
};

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static SSL_CTX *client_ctx(const char *cert, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_file(ctx, path("ca.pem"));
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (max_version)
        SSL_CTX_set_max_proto_version(ctx, max_version);
    if (cert != NULL) {
        char c[64], k[64];
        snprintf(c, sizeof(c), "%s.pem", cert);
        snprintf(k, sizeof(k), "%s.key", cert);
        SSL_CTX_use_certificate_file(ctx, path(c), SSL_FILETYPE_PEM);
        SSL_CTX_use_PrivateKey_file(ctx, path(k), SSL_FILETYPE_PEM);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    return ctx;
}

static void pair_open(struct pair *p, struct pt_tls_server *s, SSL_CTX *cctx, const char *sni)
{
    int fds[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
    p->sfd = fds[0];
    p->cfd = fds[1];
    nonblock(p->sfd);
    nonblock(p->cfd);
    p->srv = pt_tls_accept(s, p->sfd);
    p->cctx = cctx;
    p->cli = SSL_new(cctx);
    SSL_set_fd(p->cli, p->cfd);
    SSL_set_connect_state(p->cli);
    if (sni != NULL)
        SSL_set_tlsext_host_name(p->cli, sni);
}

static void pair_close(struct pair *p)
{
    SSL_shutdown(p->cli); /* else OpenSSL marks the client's session not resumable */
    ERR_clear_error();
    pt_tls_free(p->srv);
    SSL_free(p->cli);
    close(p->sfd);
    close(p->cfd);
}

/* Pump both handshakes: 0 when both are done, -1 when either failed. */
static int pump(struct pair *p)
{
    bool sdone = false, cdone = false;
    for (int i = 0; i < 100 && !(sdone && cdone); i++) {
        if (!sdone) {
            int r = pt_tls_handshake(p->srv);
            if (r < 0)
                return -1;
            sdone = r == 0;
        }
        if (!cdone) {
            int r = SSL_do_handshake(p->cli);
            if (r == 1) {
                cdone = true;
            } else {
                int e = SSL_get_error(p->cli, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    return -1;
            }
        }
    }
    /* let the client take in what the server sent after its Finished (tickets) */
    char b[1];
    SSL_peek(p->cli, b, 1);
    ERR_clear_error();
    return sdone && cdone ? 0 : -1;
}

static char *peer_cn(SSL *ssl)
{
    static char buf[256];
    X509 *x = SSL_get0_peer_certificate(ssl);
    buf[0] = '\0';
    if (x != NULL)
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof(buf));
    return buf;
}

static void test_handshake_sni(void)
{
    struct pt_tls_server *s = server(PT_TLS_V1_2, NULL, PT_TLS_VERIFY_NONE);
    SSL_CTX *cctx = client_ctx(NULL, 0);
    const char *names[][2] = {
        {"b.example", "b.example"},      {"a.example", "a.example"},
        {"x.wild.example", "a.example"}, {"cn-only.example", "cn-only.example"},
        {"other.example", "a.example"},  {NULL, "a.example"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct pair p;
        const char *sni = names[i][0] != NULL ? names[i][0] : "(none)";
        pair_open(&p, s, cctx, names[i][0]);
        is_int(pump(&p), 0, "handshake (SNI %s)", sni);
        const char *want = names[i][1];
        ok(strcmp(peer_cn(p.cli), want) == 0, "SNI %s gets the certificate of %s (got %s)", sni,
           want, peer_cn(p.cli));
        pair_close(&p);
    }
    /* ALPN: http/1.1 among the client's offers is chosen; h2 alone gets nothing */
    struct pair p;
    pair_open(&p, s, cctx, "a.example");
    SSL_set_alpn_protos(p.cli, (const unsigned char *)"\x02h2\x08http/1.1", 12);
    pump(&p);
    struct pt_str alpn = pt_tls_alpn(p.srv);
    ok(pt_str_eq_lit(alpn, "http/1.1"), "ALPN http/1.1 (got %.*s)", PT_STR_FMT(alpn));
    pair_close(&p);
    pair_open(&p, s, cctx, "a.example");
    SSL_set_alpn_protos(p.cli, (const unsigned char *)"\x02h2", 3);
    is_int(pump(&p), 0, "ALPN h2 only: the handshake goes on");
    is_int(pt_tls_alpn(p.srv).len, 0, "without ALPN");
    pair_close(&p);
    SSL_CTX_free(cctx);
    pt_tls_server_unref(s);
}

static void test_min_version(void)
{
    struct pt_tls_server *s = server(PT_TLS_V1_3, NULL, PT_TLS_VERIFY_NONE);
    SSL_CTX *c12 = client_ctx(NULL, TLS1_2_VERSION);
    struct pair p;
    pair_open(&p, s, c12, "a.example");
    is_int(pump(&p), -1, "min 1.3 refuses a TLS 1.2 client");
    pair_close(&p);
    SSL_CTX *c13 = client_ctx(NULL, 0);
    pair_open(&p, s, c13, "a.example");
    is_int(pump(&p), 0, "min 1.3 accepts TLS 1.3");
    is_str(pt_tls_version(p.srv), "TLSv1.3", "version");
    pair_close(&p);
    SSL_CTX_free(c12);
    SSL_CTX_free(c13);
    pt_tls_server_unref(s);
}

static void test_plain_http(void)
{
    struct pt_tls_server *s = server(PT_TLS_V1_2, NULL, PT_TLS_VERIFY_NONE);
    int fds[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
    nonblock(fds[0]);
    struct pt_tls_conn *t = pt_tls_accept(s, fds[0]);
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ok(write(fds[1], req, sizeof(req) - 1) > 0, "plain request sent");
    is_int(pt_tls_handshake(t), PT_ERR_IO, "handshake fails");
    ok(pt_tls_plain_http(t), "and knows it was plain HTTP (%s)", pt_tls_error(t));
    pt_tls_free(t);
    close(fds[0]);
    close(fds[1]);
    pt_tls_server_unref(s);
}

/* ---- read semantics ---- */

static void client_write(struct pair *p, char fill, size_t n)
{
    char buf[20000];
    memset(buf, fill, n);
    int w = SSL_write(p->cli, buf, (int)n);
    if (w != (int)n)
        note("client write %zu: %d", n, w);
}

static void test_read_semantics(void)
{
    struct pt_tls_server *s = server(PT_TLS_V1_2, NULL, PT_TLS_VERIFY_NONE);
    SSL_CTX *cctx = client_ctx(NULL, 0);
    struct pair p;
    pair_open(&p, s, cctx, "a.example");
    is_int(pump(&p), 0, "handshake");
    struct pt_buf b;
    pt_buf_init(&b);
    bool drained = false;

    is_int(pt_tls_read(p.srv, &b, 2048, PT_BUF_SIZE, &drained), PT_AGAIN, "nothing yet");
    ok(drained, "nothing yet: drained");

    /* three records, one read: all of them, and the socket was read dry */
    client_write(&p, 'a', 1000);
    client_write(&p, 'b', 1000);
    client_write(&p, 'c', 1000);
    is_int(pt_tls_read(p.srv, &b, 2048, PT_BUF_SIZE, &drained), 3000, "three records at once");
    ok(drained, "drained after a short recv and nothing left in OpenSSL");
    ok(pt_buf_head(&b)[0] == 'a' && pt_buf_head(&b)[2999] == 'c', "in order");
    pt_buf_consume(&b, pt_buf_len(&b));

    /* a full buffer while OpenSSL still holds bytes: never drained */
    client_write(&p, 'd', 3000);
    client_write(&p, 'e', 3000);
    pt_buf_reserve(&b, 2048, PT_BUF_SIZE);
    pt_buf_commit(&b, PT_BUF_SIZE - 1000); /* leave 1000 bytes of room */
    is_int(pt_tls_read(p.srv, &b, 1, PT_BUF_SIZE, &drained), 1000, "room-limited read");
    ok(!drained, "bytes left inside OpenSSL: not drained");
    pt_buf_consume(&b, pt_buf_len(&b));
    is_int(pt_tls_read(p.srv, &b, 2048, PT_BUF_SIZE, &drained), 5000, "the rest from OpenSSL");
    ok(!drained, "served from OpenSSL's buffer without a recv: not drained (the edge may be gone)");
    is_int(pt_tls_read(p.srv, &b, 2048, PT_BUF_SIZE, &drained), PT_AGAIN, "then EAGAIN");
    ok(drained, "drained");
    ok(pt_buf_head(&b)[1999] == 'd' && pt_buf_head(&b)[2000] == 'e', "bytes intact");
    pt_buf_consume(&b, pt_buf_len(&b));

    /* a record larger than the buffer's room */
    client_write(&p, 'f', 16384);
    size_t got = 0;
    int reads = 0;
    for (;;) {
        pt_buf_reserve(&b, 1, PT_BUF_SIZE);
        pt_buf_commit(&b, pt_buf_room(&b) - 4000);
        ssize_t r = pt_tls_read(p.srv, &b, 1, PT_BUF_SIZE, &drained);
        pt_buf_free(&b);
        if (r <= 0)
            break;
        got += (size_t)r;
        reads++;
        if (drained)
            break;
    }
    is_int(got, 16384, "a 16 KiB record through 4000-byte rooms");
    ok(reads >= 5, "in several reads (%d)", reads);

    /* close_notify: end of stream */
    SSL_shutdown(p.cli);
    is_int(pt_tls_read(p.srv, &b, 2048, PT_BUF_SIZE, &drained), 0, "close_notify reads as EOF");
    pt_buf_free(&b);
    pair_close(&p);

    /* the peer closing the socket without close_notify is an end of stream too */
    pair_open(&p, s, cctx, "a.example");
    pump(&p);
    client_write(&p, 'g', 10);
    shutdown(p.cfd, SHUT_WR);
    is_int(pt_tls_read(p.srv, &b, 2048, PT_BUF_SIZE, &drained), 10, "data before the FIN");
    is_int(pt_tls_read(p.srv, &b, 2048, PT_BUF_SIZE, &drained), 0, "FIN without close_notify: EOF");
    pt_buf_free(&b);
    pair_close(&p);
    SSL_CTX_free(cctx);
    pt_tls_server_unref(s);
}

/* ---- write semantics ---- */

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 7 + i / 251) & 0xff);
}

static void test_partial_writes(void)
{
    struct pt_tls_server *s = server(PT_TLS_V1_2, NULL, PT_TLS_VERIFY_NONE);
    SSL_CTX *cctx = client_ctx(NULL, 0);
    struct pair p;
    pair_open(&p, s, cctx, "a.example");
    is_int(pump(&p), 0, "handshake");
    int small = 4096;
    setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(p.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));

    enum { TOTAL = 1 << 20 };
    unsigned char *src = malloc(TOTAL), *dst = malloc(TOTAL);
    for (size_t i = 0; i < TOTAL; i++)
        src[i] = pattern(i);
    struct pt_buf pending;
    pt_buf_init(&pending);
    size_t sent = 0, received = 0, written_sum = 0;
    int partial = 0, records_small = 0;
    static const size_t sizes[] = {7, 300, 20000, 1, 16384, 5000, 40000, 2};
    size_t k = 0;
    bool error = false;
    while (received < TOTAL && !error) {
        if (pt_buf_len(&pending) == 0 && sent < TOTAL) {
            /* new data, as a codec passes it: a few iovecs of assorted sizes */
            struct iovec iov[3];
            size_t n = 0;
            for (; n < 3 && sent < TOTAL; n++) {
                size_t len = sizes[k++ % 8];
                if (len > TOTAL - sent)
                    len = TOTAL - sent;
                iov[n].iov_base = src + sent;
                iov[n].iov_len = len;
                sent += len;
            }
            size_t w;
            int r = pt_tls_sendv(p.srv, &pending, iov, n, &w);
            written_sum += w;
            if (r < 0)
                error = true;
            if (r == 1)
                partial++;
            if (iov[0].iov_len < 100)
                records_small++;
        } else if (pt_buf_len(&pending) > 0) {
            size_t w;
            int r = pt_tls_flush(p.srv, &pending, &w);
            written_sum += w;
            if (r < 0)
                error = true;
        }
        /* the client reads a little at a time */
        int r = SSL_read(p.cli, dst + received,
                         3000 < TOTAL - received ? 3000 : (int)(TOTAL - received));
        if (r > 0)
            received += (size_t)r;
        else if (SSL_get_error(p.cli, r) != SSL_ERROR_WANT_READ)
            error = true;
    }
    ok(!error, "no error");
    is_int(received, TOTAL, "every byte arrived");
    ok(memcmp(src, dst, TOTAL) == 0, "intact and in order");
    is_int(written_sum, TOTAL, "*written adds up");
    ok(partial > 10, "the socket took records in part (%d times)", partial);
    is_int(pt_buf_len(&pending), 0, "pending empty at the end");
    pt_buf_free(&pending);
    free(src);
    free(dst);
    pair_close(&p);
    SSL_CTX_free(cctx);
    pt_tls_server_unref(s);
}

/* ---- resumption ---- */

static bool resume(struct pt_tls_server *s, SSL_CTX *cctx, SSL_SESSION **sess, int max_version)
{
    (void)max_version;
    struct pair p;
    pair_open(&p, s, cctx, "a.example");
    if (*sess != NULL)
        SSL_set_session(p.cli, *sess);
    if (pump(&p) != 0)
        note("resume: handshake failed");
    bool reused = SSL_session_reused(p.cli) == 1;
    if (reused != pt_tls_resumed(p.srv))
        note("client and server disagree on resumption");
    SSL_SESSION_free(*sess);
    *sess = SSL_get1_session(p.cli);
    pt_tls_close_notify(p.srv);
    pair_close(&p);
    return reused;
}

static void test_resumption(void)
{
    int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    for (int i = 0; i < 2; i++) {
        const char *vn = i == 0 ? "TLS 1.3" : "TLS 1.2";
        struct pt_tls_server *s = server(PT_TLS_V1_2, NULL, PT_TLS_VERIFY_NONE);
        SSL_CTX *cctx = client_ctx(NULL, versions[i]);
        SSL_SESSION *sess = NULL;
        ok(!resume(s, cctx, &sess, versions[i]), "%s: first connection: full handshake", vn);
        ok(resume(s, cctx, &sess, versions[i]), "%s: second: resumed", vn);
        /* a "reload": new contexts, same process-wide ticket keys */
        struct pt_tls_server *s2 = server(PT_TLS_V1_2, NULL, PT_TLS_VERIFY_NONE);
        ok(resume(s2, cctx, &sess, versions[i]), "%s: resumed on rebuilt contexts", vn);
        pt_tls_tickets_rotate();
        ok(resume(s2, cctx, &sess, versions[i]), "%s: resumed after one rotation", vn);
        pt_tls_tickets_rotate();
        pt_tls_tickets_rotate();
        struct pt_tls_server *s3 = server(PT_TLS_V1_2, NULL, PT_TLS_VERIFY_NONE);
        ok(!resume(s3, cctx, &sess, versions[i]),
           "%s: not after two rotations (and no session cache on new contexts)", vn);
        /* mTLS settings differ: the session does not cross over */
        ok(resume(s3, cctx, &sess, versions[i]), "%s: resumed again", vn);
        struct pt_tls_server *m = server(PT_TLS_V1_2, "ca.pem", PT_TLS_VERIFY_OPTIONAL);
        ok(!resume(m, cctx, &sess, versions[i]), "%s: no resumption across mTLS settings", vn);
        SSL_SESSION_free(sess);
        SSL_CTX_free(cctx);
        pt_tls_server_unref(s);
        pt_tls_server_unref(s2);
        pt_tls_server_unref(s3);
        pt_tls_server_unref(m);
    }
}

/* ---- client certificates ---- */

static void test_mtls(void)
{
    struct pt_tls_server *req = server(PT_TLS_V1_2, "ca.pem", PT_TLS_VERIFY_REQUIRE);
    struct pt_tls_server *opt = server(PT_TLS_V1_2, "ca.pem", PT_TLS_VERIFY_OPTIONAL);
    SSL_CTX *anon = client_ctx(NULL, 0), *alice = client_ctx("alice", 0);
    SSL_CTX *wrong = client_ctx("a", 0); /* issued by the CA, but a server cert: still valid */
    char subj[256];
    bool verified;
    struct pair p;

    pair_open(&p, req, anon, "a.example");
    is_int(pump(&p), -1, "require: no certificate, no connection");
    pair_close(&p);

    pair_open(&p, req, alice, "a.example");
    is_int(pump(&p), 0, "require: alice gets in");
    ok(pt_tls_peer_subject(p.srv, subj, sizeof(subj), &verified) > 0, "a subject");
    is_str(subj, "CN=alice,O=Example", "RFC 2253 subject");
    ok(verified, "verified");
    pair_close(&p);

    pair_open(&p, opt, anon, "a.example");
    is_int(pump(&p), 0, "optional: no certificate is fine");
    is_int(pt_tls_peer_subject(p.srv, subj, sizeof(subj), &verified), 0, "no subject");
    ok(!verified, "not verified");
    pair_close(&p);

    pair_open(&p, opt, wrong, "a.example");
    is_int(pump(&p), 0, "optional: another certificate of the CA");
    ok(pt_tls_peer_subject(p.srv, subj, sizeof(subj), NULL) > 0 && !strcmp(subj, "CN=a.example"),
       "its subject (%s)", subj);
    pair_close(&p);

    SSL_CTX_free(anon);
    SSL_CTX_free(alice);
    SSL_CTX_free(wrong);
    pt_tls_server_unref(req);
    pt_tls_server_unref(opt);
}

/* ---- upstream side ---- */

struct upair {
    int sfd, cfd;
    struct pt_tls_conn *srv, *cli;
};

static int upump(struct upair *u)
{
    bool sdone = false, cdone = false;
    for (int i = 0; i < 100 && !(sdone && cdone); i++) {
        if (!sdone) {
            int r = pt_tls_handshake(u->srv);
            if (r < 0)
                return -1;
            sdone = r == 0;
        }
        if (!cdone) {
            int r = pt_tls_handshake(u->cli);
            if (r < 0)
                return -2;
            cdone = r == 0;
        }
    }
    return sdone && cdone ? 0 : -1;
}

static int upstream_try(struct pt_tls_server *s, struct pt_tls_client *c, const char *name,
                        struct pt_tls_session_cache *cache, bool *resumed)
{
    struct upair u;
    int fds[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
    u.sfd = fds[0];
    u.cfd = fds[1];
    nonblock(u.sfd);
    nonblock(u.cfd);
    u.srv = pt_tls_accept(s, u.sfd);
    u.cli = pt_tls_connect(c, u.cfd, name, cache);
    int rc = upump(&u);
    if (rc == 0) {
        /* a request and an answer, so that TLS 1.3 tickets reach the client */
        struct pt_buf pend, in;
        pt_buf_init(&pend);
        pt_buf_init(&in);
        size_t w;
        bool drained;
        struct iovec q = {(void *)"ping", 4};
        pt_tls_sendv(u.cli, &pend, &q, 1, &w);
        pt_tls_read(u.srv, &in, 16, PT_BUF_SIZE, &drained);
        pt_tls_sendv(u.srv, &pend, &q, 1, &w);
        pt_buf_free(&in);
        if (pt_tls_read(u.cli, &in, 16, PT_BUF_SIZE, &drained) != 4)
            rc = -3;
        pt_buf_free(&in);
        pt_buf_free(&pend);
        if (resumed != NULL)
            *resumed = pt_tls_resumed(u.cli);
        pt_tls_close_notify(u.cli);
    } else {
        note("upstream handshake: %s", pt_tls_error(u.cli));
    }
    pt_tls_free(u.srv);
    pt_tls_free(u.cli);
    close(u.sfd);
    close(u.cfd);
    return rc;
}

static void test_upstream(void)
{
    struct pt_tls_server *s = server(PT_TLS_V1_2, NULL, PT_TLS_VERIFY_NONE);
    struct pt_tls_report r = {0};
    struct pt_tls_client_opts o = {.verify = true, .ca = path("ca.pem")};
    struct pt_tls_client *c = pt_tls_client_new(&o, &r);
    ok(c != NULL, "client context (%s)", r.error);
    struct pt_tls_session_cache cache = {0};
    bool resumed = true;
    is_int(upstream_try(s, c, "b.example", &cache, &resumed), 0, "verified by name");
    ok(!resumed, "first: full handshake");
    ok(cache.session != NULL, "a session was kept");
    is_int(upstream_try(s, c, "b.example", &cache, &resumed), 0, "again");
    ok(resumed, "second: resumed from the pool's cache");
    pt_tls_session_cache_clear(&cache);
    is_int(upstream_try(s, c, "nomatch.example", NULL, NULL), -2, "wrong name: refused");
    ok(strstr(pt_tls_error(NULL), "verify") != NULL, "why: %s", pt_tls_error(NULL));
    is_int(upstream_try(s, c, "127.0.0.1", NULL, NULL), -2,
           "an IP the cert does not name: refused");

    struct pt_tls_client_opts sys = {.verify = true};
    struct pt_tls_client *cs = pt_tls_client_new(&sys, &r);
    is_int(upstream_try(s, cs, "a.example", NULL, NULL), -2, "system store: our CA is unknown");
    struct pt_tls_client_opts off = {.verify = false};
    struct pt_tls_client *co = pt_tls_client_new(&off, &r);
    is_int(upstream_try(s, co, "nomatch.example", NULL, NULL), 0, "verify off: anything goes");

    ok(pt_tls_client_pool_key(c, "a.example") != pt_tls_client_pool_key(c, "b.example"),
       "pool keys differ by name");
    ok(pt_tls_client_pool_key(c, "a.example") != pt_tls_client_pool_key(co, "a.example"),
       "pool keys differ by settings");
    struct pt_tls_client *c2 = pt_tls_client_new(&o, &r);
    ok(pt_tls_client_pool_key(c, "a.example") == pt_tls_client_pool_key(c2, "a.example"),
       "same settings, same key (pools survive reloads)");

    /* client certificate towards an mTLS upstream */
    struct pt_tls_server *m = server(PT_TLS_V1_2, "ca.pem", PT_TLS_VERIFY_REQUIRE);
    struct pt_tls_client_opts withcert = {
        .verify = true, .ca = path("ca.pem"), .cert = path("alice.pem"), .key = path("alice.key")};
    struct pt_tls_client *cc = pt_tls_client_new(&withcert, &r);
    is_int(upstream_try(m, cc, "a.example", NULL, NULL), 0, "client certificate accepted");

    pt_tls_client_free(c);
    pt_tls_client_free(c2);
    pt_tls_client_free(cs);
    pt_tls_client_free(co);
    pt_tls_client_free(cc);
    pt_tls_server_unref(s);
    pt_tls_server_unref(m);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the OpenSSL peer writes with plain write() */
    setup();
    note("OpenSSL %s", pt_tls_library_version());
    test_load_errors();
    test_sni_select();
    test_handshake_sni();
    test_min_version();
    test_plain_http();
    test_read_semantics();
    test_partial_writes();
    test_resumption();
    test_mtls();
    test_upstream();
    pt_buf_thread_cleanup();
    cleanup();
    return done_testing();
}
