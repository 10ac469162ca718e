/*
 * DNS discovery with c-ares on the main loop.
 *
 * One job per service with `discovery`, keyed by the service name, the DNS
 * name, the port and the resolver.  A job owns a c-ares channel whose
 * sockets are watched by the loop (c-ares reports them through its
 * sock_state callback; they are level-triggered here, as c-ares expects)
 * and whose timeouts are driven by a loop timer.
 *
 * A round of lookups: A and AAAA for a plain name; SRV for a name that
 * starts with '_', then A and AAAA for each target of the lowest SRV
 * priority, carrying the SRV port and weight.  Each answer belongs to the
 * round that asked (a generation number), so answers of a superseded round
 * or of a destroyed channel are dropped.  When the round ends:
 *
 *   - at least one address: the sorted, de-duplicated list replaces the
 *     last answer if it differs, and the owner is told;
 *   - no address (resolver down, SERVFAIL, NXDOMAIN, empty): the last good
 *     answer stays (a service never loses every target because of DNS);
 *
 * and the next round is due after `interval`, or the smallest TTL when
 * shorter (1 s at least).
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ares.h>

#include "core/alloc.h"
#include "core/compiler.h"
#include "core/log.h"
#include "upstream/discovery.h"

#define MAX_ANSWERS   64 /* addresses kept per A/AAAA answer */
#define MAX_TARGETS   1024
#define MIN_REFRESH   1000
#define QUERY_TIMEOUT 2000 /* ms per try; c-ares tries each server 2 times */

struct job;

struct dns_sock {
    struct pt_io io;
    struct job *job;
    struct dns_sock *next;
    struct pt_defer free_defer;
    bool writable; /* c-ares wants to write */
    bool closed;
};

struct job {
    struct pt_discovery *d;
    struct job *next;
    char *service, *dns, *resolver;
    uint16_t port;
    uint64_t interval_ms;
    bool srv;
    ares_channel ch;
    bool ch_ok;
    struct pt_timer refresh;    /* the next round */
    struct pt_timer ares_timer; /* c-ares' own timeouts */
    struct dns_sock *socks;
    unsigned gen;
    unsigned pending;
    unsigned answered; /* queries of this round that got an answer (data or none) */
    int64_t min_ttl;   /* -1: no TTL seen */
    int last_status;
    struct pt_discovered_target *found; /* this round */
    size_t nfound, capfound;
    struct pt_discovered_target *cur; /* the last good answer */
    size_t ncur;
    bool dying;
    /* The first round has ended and its answer, if any, is in the published
     * configuration (readiness waits for it: pt_discovery_unsettled). */
    bool settled;
    bool settle_on_notify;
};

struct pt_discovery {
    struct pt_loop *loop;
    struct job *jobs;
    void (*changed)(void *ctx);
    void *ctx;
    struct pt_defer notify;
};

struct query {
    struct job *job;
    unsigned gen;
    int type;
    uint16_t port;
    unsigned weight;
};

static void start_round(struct job *j);
static void update_timer(struct job *j);

/* ---- sockets ---- */

static void sock_free(struct pt_loop *loop, void *arg)
{
    (void)loop;
    free(arg);
}

static void sock_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events)
{
    (void)loop;
    struct dns_sock *s = PT_CONTAINER_OF(io, struct dns_sock, io);
    if (s->closed)
        return;
    struct job *j = s->job;
    int fd = io->fd;
    ares_process_fd(j->ch, events & (EPOLLIN | EPOLLERR | EPOLLHUP) ? fd : ARES_SOCKET_BAD,
                    events & EPOLLOUT ? fd : ARES_SOCKET_BAD);
    if (!j->dying)
        update_timer(j);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct job *j = data;
    struct pt_loop *loop = j->d->loop;
    struct dns_sock **pp = &j->socks, *s;
    while ((s = *pp) != NULL && s->io.fd != fd)
        pp = &s->next;
    if (!readable && !writable) { /* c-ares closes it */
        if (s == NULL)
            return;
        pt_loop_del(loop, &s->io);
        s->closed = true;
        *pp = s->next;
        pt_loop_defer(loop, &s->free_defer, sock_free, s); /* events of this batch may name it */
        return;
    }
    uint32_t mask = EPOLLIN | (writable ? EPOLLOUT : 0);
    if (s != NULL) {
        if (s->writable == (writable != 0))
            return;
        pt_loop_del(loop, &s->io);
    } else {
        s = pt_calloc(1, sizeof(*s));
        if (s == NULL) {
            pt_log_ratelimited(PT_LOG_ERR, 1, "discovery: out of memory");
            return;
        }
        s->job = j;
        s->next = j->socks;
        j->socks = s;
    }
    s->writable = writable != 0;
    if (pt_loop_add_events(loop, &s->io, fd, sock_cb, mask) != 0)
        pt_log_ratelimited(PT_LOG_ERR, 1, "discovery: cannot watch a DNS socket");
}

static void ares_timer_cb(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    struct job *j = PT_CONTAINER_OF(t, struct job, ares_timer);
    ares_process_fd(j->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    if (!j->dying)
        update_timer(j);
}

static void update_timer(struct job *j)
{
    struct timeval tv;
    if (ares_timeout(j->ch, NULL, &tv) == NULL) {
        pt_timer_disarm(j->d->loop, &j->ares_timer);
        return;
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000 + 1;
    pt_timer_arm(j->d->loop, &j->ares_timer, ms, ares_timer_cb);
}

/* ---- answers ---- */

static void notify_task(struct pt_loop *loop, void *arg)
{
    (void)loop;
    struct pt_discovery *d = arg;
    d->changed(d->ctx);
    for (struct job *j = d->jobs; j != NULL; j = j->next)
        if (j->settle_on_notify)
            j->settled = true;
}

static int cmp_target(const void *a, const void *b)
{
    const struct pt_discovered_target *x = a, *y = b;
    return strcmp(x->address, y->address);
}

static void add_target(struct job *j, int family, const void *ip, uint16_t port, unsigned weight)
{
    if (j->nfound >= MAX_TARGETS)
        return;
    if (j->nfound == j->capfound) {
        size_t cap = j->capfound ? j->capfound * 2 : 8;
        struct pt_discovered_target *n = pt_realloc(j->found, cap * sizeof(*n));
        if (n == NULL)
            return;
        j->found = n;
        j->capfound = cap;
    }
    struct pt_discovered_target *t = &j->found[j->nfound];
    memset(t, 0, sizeof(*t));
    inet_ntop(family, ip, t->host, sizeof(t->host));
    t->port = port;
    t->weight = weight > 0 ? weight : 1;
    if (family == AF_INET) {
        struct sockaddr_in *sa = (struct sockaddr_in *)&t->addr;
        sa->sin_family = AF_INET;
        sa->sin_port = htons(port);
        memcpy(&sa->sin_addr, ip, sizeof(sa->sin_addr));
        t->addrlen = sizeof(*sa);
        snprintf(t->address, sizeof(t->address), "%s:%u", t->host, (unsigned)port);
    } else {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&t->addr;
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(port);
        memcpy(&sa->sin6_addr, ip, sizeof(sa->sin6_addr));
        t->addrlen = sizeof(*sa);
        snprintf(t->address, sizeof(t->address), "[%s]:%u", t->host, (unsigned)port);
    }
    j->nfound++;
}

static void note_ttl(struct job *j, int ttl)
{
    if (ttl >= 0 && (j->min_ttl < 0 || ttl < j->min_ttl))
        j->min_ttl = ttl;
}

static bool same_answer(const struct job *j)
{
    if (j->nfound != j->ncur)
        return false;
    for (size_t i = 0; i < j->nfound; i++)
        if (strcmp(j->found[i].address, j->cur[i].address) != 0 ||
            j->found[i].weight != j->cur[i].weight)
            return false;
    return true;
}

static void refresh_cb(struct pt_loop *loop, struct pt_timer *t)
{
    (void)loop;
    start_round(PT_CONTAINER_OF(t, struct job, refresh));
}

static void finish_round(struct job *j)
{
    uint64_t next = j->interval_ms;
    if (j->min_ttl >= 0 && (uint64_t)j->min_ttl * 1000 < next)
        next =
            (uint64_t)j->min_ttl * 1000 < MIN_REFRESH ? MIN_REFRESH : (uint64_t)j->min_ttl * 1000;
    pt_timer_arm(j->d->loop, &j->refresh, next, refresh_cb);
    if (j->nfound == 0) {
        j->settled = true; /* a failed first lookup counts: the other services must not wait */
        pt_log_ratelimited(PT_LOG_WARN, 1,
                           "discovery: %s: no address for %s (%s); keeping the last answer (%zu "
                           "target%s)",
                           j->service, j->dns,
                           j->answered > 0 ? "empty answer" : ares_strerror(j->last_status),
                           j->ncur, j->ncur == 1 ? "" : "s");
        return;
    }
    qsort(j->found, j->nfound, sizeof(*j->found), cmp_target);
    size_t k = 0;
    for (size_t i = 0; i < j->nfound; i++)
        if (k == 0 || strcmp(j->found[i].address, j->found[k - 1].address) != 0)
            j->found[k++] = j->found[i];
    j->nfound = k;
    if (same_answer(j)) {
        j->settled = true;
        return;
    }
    struct pt_discovered_target *tmp = j->cur;
    size_t cap = j->ncur;
    j->cur = j->found;
    j->ncur = j->nfound;
    j->found = tmp;
    j->capfound = tmp != NULL ? cap : 0;
    j->nfound = 0;
    char list[256] = "";
    size_t at = 0;
    for (size_t i = 0; i < j->ncur && at < sizeof(list) - 1; i++) {
        int w = snprintf(list + at, sizeof(list) - at, "%s%s", i ? " " : "", j->cur[i].address);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    pt_log_info("discovery: %s: %s gives %zu target%s: %s%s", j->service, j->dns, j->ncur,
                j->ncur == 1 ? "" : "s", list, at >= sizeof(list) - 1 ? " ..." : "");
    j->settle_on_notify = !j->settled;
    pt_loop_defer(j->d->loop, &j->d->notify, notify_task, j->d);
}

const char *pt_discovery_unsettled(const struct pt_discovery *d)
{
    for (const struct job *j = d->jobs; j != NULL; j = j->next)
        if (!j->settled && !j->dying)
            return j->service;
    return NULL;
}

static void query(struct job *j, const char *name, int type, uint16_t port, unsigned weight);

static void on_srv(struct job *j, const unsigned char *abuf, int alen)
{
    struct ares_srv_reply *srv = NULL;
    if (ares_parse_srv_reply(abuf, alen, &srv) != ARES_SUCCESS)
        return;
    int best = -1;
    for (struct ares_srv_reply *r = srv; r != NULL; r = r->next)
        if (best < 0 || r->priority < best)
            best = r->priority;
    for (struct ares_srv_reply *r = srv; r != NULL; r = r->next) {
        if (r->priority != best || r->port == 0)
            continue;
        query(j, r->host, ns_t_a, r->port, r->weight);
        query(j, r->host, ns_t_aaaa, r->port, r->weight);
    }
    ares_free_data(srv);
}

static void on_addresses(struct job *j, const struct query *q, const unsigned char *abuf, int alen)
{
    int n = MAX_ANSWERS;
    if (q->type == ns_t_a) {
        struct ares_addrttl a[MAX_ANSWERS];
        if (ares_parse_a_reply(abuf, alen, NULL, a, &n) != ARES_SUCCESS)
            return;
        for (int i = 0; i < n; i++) {
            add_target(j, AF_INET, &a[i].ipaddr, q->port, q->weight);
            note_ttl(j, a[i].ttl);
        }
    } else {
        struct ares_addr6ttl a[MAX_ANSWERS];
        if (ares_parse_aaaa_reply(abuf, alen, NULL, a, &n) != ARES_SUCCESS)
            return;
        for (int i = 0; i < n; i++) {
            add_target(j, AF_INET6, &a[i].ip6addr, q->port, q->weight);
            note_ttl(j, a[i].ttl);
        }
    }
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct query *q = arg;
    struct job *j = q->job;
    if (status == ARES_EDESTRUCTION || j->dying || q->gen != j->gen) {
        free(q);
        return;
    }
    if (status == ARES_SUCCESS) {
        j->answered++;
        if (q->type == ns_t_srv)
            on_srv(j, abuf, alen);
        else
            on_addresses(j, q, abuf, alen);
    } else if (status == ARES_ENODATA || status == ARES_ENOTFOUND) {
        j->answered++;
    } else {
        j->last_status = status;
    }
    free(q);
    if (--j->pending == 0)
        finish_round(j);
}

static void query(struct job *j, const char *name, int type, uint16_t port, unsigned weight)
{
    struct query *q = pt_malloc(sizeof(*q));
    if (q == NULL) {
        j->last_status = ARES_ENOMEM;
        return;
    }
    *q = (struct query){j, j->gen, type, port, weight};
    j->pending++;
    ares_query(j->ch, name, ns_c_in, type, on_answer, q);
}

static void start_round(struct job *j)
{
    j->gen++;
    j->pending =
        1; /* held while the queries go out: an answer given at once cannot end the round */
    j->answered = 0;
    j->nfound = 0;
    j->min_ttl = -1;
    j->last_status = ARES_ECONNREFUSED;
    if (j->srv) {
        query(j, j->dns, ns_t_srv, 0, 1);
    } else {
        query(j, j->dns, ns_t_a, j->port, 1);
        query(j, j->dns, ns_t_aaaa, j->port, 1);
    }
    if (--j->pending == 0)
        finish_round(j);
    else
        update_timer(j);
}

/* ---- jobs ---- */

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool job_matches(const struct job *j, const char *service, const struct pt_discovery_conf *c)
{
    return strcmp(j->service, service) == 0 && strcmp(j->dns, c->dns) == 0 && j->port == c->port &&
           same_str(j->resolver, c->resolver);
}

static void job_free(struct job *j)
{
    j->dying = true;
    pt_timer_disarm(j->d->loop, &j->refresh);
    pt_timer_disarm(j->d->loop, &j->ares_timer);
    if (j->ch_ok)
        ares_destroy(j->ch); /* answers pending get ARES_EDESTRUCTION; sockets are closed */
    while (j->socks != NULL) {
        struct dns_sock *s = j->socks;
        j->socks = s->next;
        pt_loop_del(j->d->loop, &s->io);
        s->closed = true;
        pt_loop_defer(j->d->loop, &s->free_defer, sock_free, s);
    }
    free(j->found);
    free(j->cur);
    free(j->service);
    free(j->dns);
    free(j->resolver);
    free(j);
}

static struct job *job_new(struct pt_discovery *d, const char *service,
                           const struct pt_discovery_conf *c)
{
    struct job *j = pt_calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->d = d;
    j->service = pt_strdup(service);
    j->dns = pt_strdup(c->dns);
    j->resolver = c->resolver != NULL ? pt_strdup(c->resolver) : NULL;
    j->port = c->port;
    j->srv = c->srv;
    j->interval_ms = c->interval_ms;
    pt_timer_init(&j->refresh);
    pt_timer_init(&j->ares_timer);
    if (j->service == NULL || j->dns == NULL || (c->resolver != NULL && j->resolver == NULL))
        goto fail;
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = j;
    o.timeout = QUERY_TIMEOUT;
    o.tries = 2;
    int rc =
        ares_init_options(&j->ch, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        pt_log_err("discovery: %s: cannot start the resolver: %s", service, ares_strerror(rc));
        goto fail;
    }
    j->ch_ok = true;
    if (j->resolver != NULL &&
        (rc = ares_set_servers_ports_csv(j->ch, j->resolver)) != ARES_SUCCESS) {
        pt_log_err("discovery: %s: resolver %s: %s", service, j->resolver, ares_strerror(rc));
        goto fail;
    }
    return j;
fail:
    job_free(j);
    return NULL;
}

struct pt_discovery *pt_discovery_new(struct pt_loop *loop, void (*changed)(void *ctx), void *ctx)
{
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        return NULL;
    struct pt_discovery *d = pt_calloc(1, sizeof(*d));
    if (d == NULL) {
        ares_library_cleanup();
        return NULL;
    }
    d->loop = loop;
    d->changed = changed;
    d->ctx = ctx;
    return d;
}

void pt_discovery_sync(struct pt_discovery *d, struct pt_service *const *services, size_t n)
{
    struct job *old = d->jobs, *kept = NULL;
    d->jobs = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct pt_service *svc = services[i];
        if (!svc->discovery.enabled)
            continue;
        struct job **pp = &old, *j;
        while ((j = *pp) != NULL && !job_matches(j, svc->name, &svc->discovery))
            pp = &j->next;
        if (j != NULL) { /* unchanged: keep its answer and its schedule */
            *pp = j->next;
            j->interval_ms = svc->discovery.interval_ms;
        } else {
            j = job_new(d, svc->name, &svc->discovery);
            if (j == NULL)
                continue;
            pt_timer_arm(d->loop, &j->refresh, 0, refresh_cb); /* resolve now */
        }
        j->next = kept;
        kept = j;
    }
    d->jobs = kept;
    while (old != NULL) {
        struct job *j = old;
        old = j->next;
        job_free(j);
    }
}

void pt_discovery_lookup(void *ctx, const char *service, const struct pt_discovery_conf *conf,
                         const struct pt_discovered_target **out, size_t *n)
{
    const struct pt_discovery *d = ctx;
    *out = NULL;
    *n = 0;
    for (const struct job *j = d != NULL ? d->jobs : NULL; j != NULL; j = j->next)
        if (job_matches(j, service, conf)) {
            *out = j->cur;
            *n = j->ncur;
            return;
        }
}

void pt_discovery_free(struct pt_discovery *d)
{
    if (d == NULL)
        return;
    while (d->jobs != NULL) {
        struct job *j = d->jobs;
        d->jobs = j->next;
        job_free(j);
    }
    pt_loop_cancel_defer(d->loop, &d->notify);
    free(d);
    ares_library_cleanup();
}
