/*
 * Log files written by a background thread (see logfile.h).
 *
 * Design.  A worker formats a line on its own stack and calls
 * pt_logfile_write(), which copies it into the buffer of the worker's slot
 * (one of PT_LOGFILE_SLOTS, picked once per thread) under that slot's lock.
 * Nobody else takes a slot's lock except the writer, for a pointer swap, so
 * the lock is practically never contended and costs two atomic operations.
 *
 * When a slot's buffer is full the worker moves it to the file's queue and
 * takes an empty one from the file's free list (the file lock, once per
 * 64 KiB of lines).  Buffers are allocated on demand up to
 * PT_LOGFILE_MAX_BUFS; after that the free list is all there is, and a
 * worker that finds it empty drops the line and counts it.  So steady-state
 * logging allocates nothing and memory is bounded.
 *
 * The writer thread sleeps on the file's condition variable.  It wakes for
 * a full buffer, for a reopen or stop request, or PT_LOGFILE_FLUSH_MS after
 * the first line went into an empty buffer (the `dirty` flag: set by
 * workers with an atomic exchange, so only the first line after a flush
 * pays for a wakeup).  On the flush deadline it also takes the partly
 * filled buffers out of the slots.  It writes everything with writev(2),
 * then returns the buffers to the free list.
 *
 * Lock order: registry lock → file lock; slot lock → file lock.  The writer
 * never holds the file lock while it takes a slot lock or the registry
 * lock.
 *
 * Shutdown: the last pt_logfile_close() sets `stop`; the writer takes every
 * slot's buffer, writes, and exits.  Nothing can be writing by then: every
 * instance that held a reference is gone.  On the main thread (process
 * shutdown, a reload applied there) close joins the writer and frees
 * everything.  Elsewhere (a worker dropping the last reference to an old
 * configuration) it must not wait for a disk: the file goes to a list of
 * stopping writers, joined without waiting by later opens and closes once
 * they are done, and at exit by an atexit() handler.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/compiler.h"
#include "core/log.h"
#include "plugins/logfile.h"

struct logbuf {
    struct logbuf *next;
    uint32_t len;
    uint32_t lines;
    char data[PT_LOGFILE_BUF_SIZE];
};

struct slot {
    pthread_mutex_t lock;
    struct logbuf *cur;
    char pad[64 - (sizeof(pthread_mutex_t) + sizeof(void *)) % 64]; /* one cache line each */
};

struct pt_logfile {
    struct slot slots[PT_LOGFILE_SLOTS]; /* first: the struct is 64-byte aligned */

    /* registry (reg_lock) */
    struct pt_logfile *next;
    long refs;
    char *path; /* NULL: standard error */
    dev_t dev;
    ino_t ino;

    int fd; /* the writer's from the start on */
    pthread_t thread;
    atomic_bool dirty;
    atomic_uint_fast64_t dropped;

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t cond;
    struct logbuf *full, **full_tail;
    struct logbuf *free;
    unsigned nbufs;
    bool stop, reopen;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pt_logfile *reg_head;
static struct pt_logfile *stopped_files;    /* closed, writer not joined yet (reg_lock) */
static atomic_uint_fast64_t closed_dropped; /* from files already closed */
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static atomic_uint next_slot;
static _Thread_local int tl_slot = -1;

static unsigned slot_index(void)
{
    if (tl_slot < 0)
        tl_slot = (int)(atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) %
                        PT_LOGFILE_SLOTS);
    return (unsigned)tl_slot;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *name_of(const struct pt_logfile *f)
{
    return f->path != NULL ? f->path : "stderr";
}

/* ---- the worker side ---- */

/* With s->lock held: queue s's full buffer and give s an empty one (NULL when none is left). */
static struct logbuf *swap_buffer(struct pt_logfile *f, struct slot *s)
{
    pthread_mutex_lock(&f->lock);
    if (s->cur != NULL) {
        s->cur->next = NULL;
        *f->full_tail = s->cur;
        f->full_tail = &s->cur->next;
        s->cur = NULL;
        pthread_cond_signal(&f->cond);
    }
    struct logbuf *b = f->free;
    if (b != NULL) {
        f->free = b->next;
    } else if (f->nbufs < PT_LOGFILE_MAX_BUFS && (b = malloc(sizeof(*b))) != NULL) {
        f->nbufs++;
    }
    pthread_mutex_unlock(&f->lock);
    if (b != NULL) {
        b->len = 0;
        b->lines = 0;
        b->next = NULL;
    }
    s->cur = b;
    return b;
}

int pt_logfile_write(struct pt_logfile *f, const char *line, size_t n)
{
    if (n > PT_LOGFILE_BUF_SIZE) {
        atomic_fetch_add_explicit(&f->dropped, 1, memory_order_relaxed);
        return -1;
    }
    struct slot *s = &f->slots[slot_index()];
    pthread_mutex_lock(&s->lock);
    struct logbuf *b = s->cur;
    if (b == NULL || PT_LOGFILE_BUF_SIZE - b->len < n)
        b = swap_buffer(f, s);
    if (b == NULL) {
        pthread_mutex_unlock(&s->lock);
        atomic_fetch_add_explicit(&f->dropped, 1, memory_order_relaxed);
        return -1;
    }
    bool first = b->len == 0;
    memcpy(b->data + b->len, line, n);
    b->len += (uint32_t)n;
    b->lines++;
    pthread_mutex_unlock(&s->lock);
    if (first && !atomic_exchange_explicit(&f->dirty, true, memory_order_acq_rel)) {
        pthread_mutex_lock(&f->lock);
        pthread_cond_signal(&f->cond);
        pthread_mutex_unlock(&f->lock);
    }
    return 0;
}

/* ---- the writer thread ---- */

static int wait_writable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    return poll(&p, 1, 1000) == -1 && errno != EINTR ? -1 : 0;
}

/* Write the buffers of list in order, as few writev calls as possible. */
static void write_list(struct pt_logfile *f, struct logbuf *list)
{
    struct iovec iov[64];
    while (list != NULL) {
        int n = 0;
        uint64_t lines = 0;
        for (struct logbuf *b = list; b != NULL && n < (int)PT_ARRAY_SIZE(iov); b = b->next) {
            iov[n].iov_base = b->data;
            iov[n++].iov_len = b->len;
            lines += b->lines;
        }
        for (int i = 0; i < n; i++)
            list = list->next;
        int k = 0;
        while (k < n) {
            ssize_t w = writev(f->fd, iov + k, n - k);
            if (w == -1 && errno == EINTR)
                continue;
            if (w == -1 && errno == EAGAIN && wait_writable(f->fd) == 0)
                continue;
            if (w == -1) {
                pt_log_ratelimited(PT_LOG_ERR, 1, "access log %s: write failed: %s; lines lost",
                                   name_of(f), strerror(errno));
                atomic_fetch_add_explicit(&f->dropped, lines, memory_order_relaxed);
                break;
            }
            while (k < n && (size_t)w >= iov[k].iov_len)
                w -= (ssize_t)iov[k++].iov_len;
            if (k < n) {
                iov[k].iov_base = (char *)iov[k].iov_base + w;
                iov[k].iov_len -= (size_t)w;
            }
        }
    }
}

static int open_append(const char *path)
{
    /* O_NONBLOCK so that a FIFO without a reader fails instead of hanging the loader */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
    if (fd == -1)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

static void do_reopen(struct pt_logfile *f)
{
    if (f->path == NULL)
        return;
    int fd = open_append(f->path);
    struct stat st;
    if (fd == -1 || fstat(fd, &st) == -1) {
        pt_log_err("access log %s: cannot reopen (%s); still writing to the old file", f->path,
                   strerror(errno));
        if (fd != -1)
            close(fd);
        return;
    }
    pthread_mutex_lock(&reg_lock);
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    pthread_mutex_unlock(&reg_lock);
    close(f->fd);
    f->fd = fd;
    pt_log_info("access log %s reopened", f->path);
}

/* Take the partly filled buffers out of the slots, appending them to *tail. */
static struct logbuf **steal_slots(struct pt_logfile *f, struct logbuf **tail)
{
    atomic_store_explicit(&f->dirty, false, memory_order_release);
    for (size_t i = 0; i < PT_LOGFILE_SLOTS; i++) {
        struct slot *s = &f->slots[i];
        pthread_mutex_lock(&s->lock);
        struct logbuf *b = s->cur;
        if (b != NULL && b->len > 0) {
            s->cur = NULL;
            b->next = NULL;
            *tail = b;
            tail = &b->next;
        }
        pthread_mutex_unlock(&s->lock);
    }
    return tail;
}

static void report_drops(struct pt_logfile *f, uint64_t *reported, uint64_t *last_ms, bool force)
{
    uint64_t d = atomic_load_explicit(&f->dropped, memory_order_relaxed);
    uint64_t now = mono_ms();
    if (d == *reported || (!force && now - *last_ms < 10000))
        return;
    pt_log_warn("access log %s: %llu lines dropped (the writer could not keep up)", name_of(f),
                (unsigned long long)(d - *reported));
    *reported = d;
    *last_ms = now;
}

static void *writer_main(void *arg)
{
    struct pt_logfile *f = arg;
    uint64_t deadline = 0, reported = 0, last_report = 0;
    bool deadline_set = false;
    pthread_mutex_lock(&f->lock);
    for (;;) {
        for (;;) {
            if (!deadline_set && atomic_load_explicit(&f->dirty, memory_order_acquire)) {
                deadline = mono_ms() + PT_LOGFILE_FLUSH_MS;
                deadline_set = true;
            }
            if (f->stop || f->reopen || f->full != NULL)
                break;
            if (!deadline_set) {
                pthread_cond_wait(&f->cond, &f->lock);
                continue;
            }
            uint64_t now = mono_ms();
            if (now >= deadline)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (deadline - now) * 1000000u;
            ts.tv_sec += (time_t)(ns / 1000000000u);
            ts.tv_nsec = (long)(ns % 1000000000u);
            pthread_cond_timedwait(&f->cond, &f->lock, &ts);
        }
        struct logbuf *list = f->full, **tail = f->full_tail;
        f->full = NULL;
        f->full_tail = &f->full;
        bool stopping = f->stop, reopening = f->reopen;
        f->reopen = false;
        pthread_mutex_unlock(&f->lock);

        if (list == NULL)
            tail = &list;
        if (stopping || reopening || (deadline_set && mono_ms() >= deadline)) {
            deadline_set = false;
            tail = steal_slots(f, tail);
        }
        write_list(f, list);
        if (reopening)
            do_reopen(f);
        report_drops(f, &reported, &last_report, stopping);

        pthread_mutex_lock(&f->lock);
        while (list != NULL) {
            struct logbuf *b = list;
            list = b->next;
            b->next = f->free;
            f->free = b;
        }
        if (stopping)
            break;
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

/* ---- opening and closing ---- */

static void destroy(struct pt_logfile *f)
{
    for (size_t i = 0; i < PT_LOGFILE_SLOTS; i++) {
        free(f->slots[i].cur);
        pthread_mutex_destroy(&f->slots[i].lock);
    }
    while (f->free != NULL) {
        struct logbuf *b = f->free;
        f->free = b->next;
        free(b);
    }
    while (f->full != NULL) {
        struct logbuf *b = f->full;
        f->full = b->next;
        free(b);
    }
    if (f->path != NULL && f->fd != -1)
        close(f->fd);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f->path);
    free(f);
}

static struct pt_logfile *create(const char *path, int fd, const struct stat *st)
{
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(struct pt_logfile)) != 0)
        return NULL;
    struct pt_logfile *f = mem;
    memset(f, 0, sizeof(*f));
    f->fd = fd;
    f->refs = 1;
    f->full_tail = &f->full;
    if (path != NULL) {
        f->path = strdup(path);
        f->dev = st->st_dev;
        f->ino = st->st_ino;
        if (f->path == NULL) {
            free(f);
            return NULL;
        }
    }
    atomic_init(&f->dirty, false);
    atomic_init(&f->dropped, 0);
    for (size_t i = 0; i < PT_LOGFILE_SLOTS; i++)
        pthread_mutex_init(&f->slots[i].lock, NULL);
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);

    /* The writer must never take a process signal (the main thread reads them from a signalfd). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&f->thread, NULL, writer_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        f->fd = -1; /* the caller closes it */
        destroy(f);
        errno = rc;
        return NULL;
    }
    (void)pthread_setname_np(f->thread, "portico-log");
    return f;
}

/* Join (wait: all; else only those already finished) and free the stopping writers. */
static void reap(bool wait)
{
    pthread_mutex_lock(&reg_lock);
    struct pt_logfile *list = stopped_files;
    stopped_files = NULL;
    pthread_mutex_unlock(&reg_lock);
    struct pt_logfile *keep = NULL;
    while (list != NULL) {
        struct pt_logfile *f = list;
        list = f->next;
        if (wait ? pthread_join(f->thread, NULL) != 0 : pthread_tryjoin_np(f->thread, NULL) != 0) {
            f->next = keep;
            keep = f;
            continue;
        }
        atomic_fetch_add(&closed_dropped, atomic_load(&f->dropped));
        destroy(f);
    }
    if (keep == NULL)
        return;
    pthread_mutex_lock(&reg_lock);
    struct pt_logfile **tail = &keep;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = stopped_files;
    stopped_files = keep;
    pthread_mutex_unlock(&reg_lock);
}

static void reap_all(void)
{
    reap(true);
}

static void register_atexit(void)
{
    (void)atexit(reap_all);
}

struct pt_logfile *pt_logfile_open(const char *path, char *errbuf, size_t errlen)
{
    pthread_once(&atexit_once, register_atexit);
    reap(false);
    struct stat st;
    int fd = STDERR_FILENO;
    if (path != NULL) {
        fd = open_append(path);
        if (fd == -1 || fstat(fd, &st) == -1) {
            snprintf(errbuf, errlen, "cannot open: %s", strerror(errno));
            if (fd != -1)
                close(fd);
            return NULL;
        }
        if (S_ISDIR(st.st_mode)) {
            snprintf(errbuf, errlen, "cannot open: Is a directory");
            close(fd);
            return NULL;
        }
    }
    pthread_mutex_lock(&reg_lock);
    struct pt_logfile *f = reg_head;
    for (; f != NULL; f = f->next) {
        if (path == NULL ? f->path == NULL
                         : f->path != NULL && f->dev == st.st_dev && f->ino == st.st_ino)
            break;
    }
    if (f != NULL) {
        f->refs++;
        pthread_mutex_unlock(&reg_lock);
        if (path != NULL)
            close(fd);
        return f;
    }
    f = create(path, fd, &st);
    if (f == NULL) {
        snprintf(errbuf, errlen, "cannot start its writer thread: %s", strerror(errno));
        pthread_mutex_unlock(&reg_lock);
        if (path != NULL)
            close(fd);
        return NULL;
    }
    f->next = reg_head;
    reg_head = f;
    pthread_mutex_unlock(&reg_lock);
    return f;
}

void pt_logfile_close(struct pt_logfile *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&reg_lock);
    if (--f->refs > 0) {
        pthread_mutex_unlock(&reg_lock);
        return;
    }
    for (struct pt_logfile **p = &reg_head; *p != NULL; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
    if (gettid() == getpid()) { /* the main thread may wait for the last lines */
        pthread_join(f->thread, NULL);
        atomic_fetch_add(&closed_dropped, atomic_load(&f->dropped));
        destroy(f);
    } else {
        pthread_mutex_lock(&reg_lock);
        f->next = stopped_files;
        stopped_files = f;
        pthread_mutex_unlock(&reg_lock);
    }
    reap(false);
}

void pt_logfile_reopen_all(void)
{
    pthread_mutex_lock(&reg_lock);
    for (struct pt_logfile *f = reg_head; f != NULL; f = f->next) {
        if (f->path == NULL)
            continue;
        pthread_mutex_lock(&f->lock);
        f->reopen = true;
        pthread_cond_signal(&f->cond);
        pthread_mutex_unlock(&f->lock);
    }
    pthread_mutex_unlock(&reg_lock);
}

uint64_t pt_logfile_dropped_total(void)
{
    uint64_t total = atomic_load(&closed_dropped);
    pthread_mutex_lock(&reg_lock);
    for (struct pt_logfile *f = reg_head; f != NULL; f = f->next)
        total += atomic_load(&f->dropped);
    for (struct pt_logfile *f = stopped_files; f != NULL; f = f->next)
        total += atomic_load(&f->dropped);
    pthread_mutex_unlock(&reg_lock);
    return total;
}
