/*
 * Event loop.
 *
 * Timers live on a hashed wheel of PT_WHEEL_SLOTS slots of PT_WHEEL_TICK_MS
 * each (about 16 s per turn).  A timer is linked in the slot of its deadline's
 * tick; one further than a turn away sits in the slot it maps to and is
 * re-slotted when that slot comes round.  Pushing a deadline later does not
 * move the timer (see pt_timer_arm_at): when its slot is processed and the
 * deadline has not passed, it is re-linked where it now belongs.  That makes
 * the per-request "extend the idle deadline" update a store, not a list
 * operation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "portico/status.h"
#include "core/alloc.h"
#include "core/compiler.h"
#include "core/log.h"
#include "core/loop.h"

struct pt_task {
    struct pt_task *next;
    pt_task_fn fn;
    void *arg;
};

#define MAX_EVENTS 256

static uint64_t tick_of(uint64_t ms)
{
    return ms / PT_WHEEL_TICK_MS * PT_WHEEL_TICK_MS;
}

static struct pt_timer *slot_for(struct pt_loop *loop, uint64_t tick_ms)
{
    return &loop->slots[(tick_ms / PT_WHEEL_TICK_MS) & (PT_WHEEL_SLOTS - 1)];
}

uint64_t pt_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 + 1000000;
}

void pt_loop_update_time(struct pt_loop *loop)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* +1 s so that 0 never is a valid time (slot_at == 0 means "not armed") */
    loop->now_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 + 1000000;
    loop->now = loop->now_us / 1000;
    clock_gettime(CLOCK_REALTIME, &ts);
    loop->wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events);

int pt_loop_init(struct pt_loop *loop)
{
    memset(loop, 0, sizeof(*loop));
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd == -1)
        return PT_ERR_IO;
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wakefd == -1) {
        close(loop->epfd);
        return PT_ERR_IO;
    }
    for (size_t i = 0; i < PT_WHEEL_SLOTS; i++)
        loop->slots[i].next = loop->slots[i].prev = &loop->slots[i];
    loop->defer_tail = &loop->defer_head;
    pthread_mutex_init(&loop->task_lock, NULL);
    pt_loop_update_time(loop);
    loop->wheel_at = tick_of(loop->now);
    if (pt_loop_add_events(loop, &loop->wake_io, loop->wakefd, wake_cb, EPOLLIN) != 0) {
        close(loop->wakefd);
        close(loop->epfd);
        return PT_ERR_IO;
    }
    return 0;
}

void pt_loop_destroy(struct pt_loop *loop)
{
    struct pt_task *t = loop->tasks;
    while (t != NULL) {
        struct pt_task *n = t->next;
        free(t);
        t = n;
    }
    loop->tasks = NULL;
    pthread_mutex_destroy(&loop->task_lock);
    if (loop->wakefd != -1)
        close(loop->wakefd);
    if (loop->epfd != -1)
        close(loop->epfd);
    loop->wakefd = loop->epfd = -1;
}

int pt_loop_add_events(struct pt_loop *loop, struct pt_io *io, int fd, pt_io_cb cb, uint32_t events)
{
    io->fd = fd;
    io->cb = cb;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == -1 ? -1 : 0;
}

int pt_loop_add(struct pt_loop *loop, struct pt_io *io, int fd, pt_io_cb cb)
{
    return pt_loop_add_events(loop, io, fd, cb, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

int pt_loop_del(struct pt_loop *loop, struct pt_io *io)
{
    return epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL) == -1 ? -1 : 0;
}

/* ---- timers ---- */

static void timer_unlink(struct pt_timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

static void timer_link(struct pt_loop *loop, struct pt_timer *t)
{
    uint64_t at = tick_of(t->expire);
    if (at <= loop->wheel_at)
        at = loop->wheel_at + PT_WHEEL_TICK_MS;
    struct pt_timer *head = slot_for(loop, at);
    t->slot_at = at;
    t->prev = head->prev;
    t->next = head;
    head->prev->next = t;
    head->prev = t;
}

void pt_timer_arm_at(struct pt_loop *loop, struct pt_timer *t, uint64_t deadline, pt_timer_cb cb)
{
    t->cb = cb;
    if (t->slot_at != 0) {
        if (deadline >= t->slot_at) { /* later than its slot: re-slotted lazily */
            t->expire = deadline;
            return;
        }
        timer_unlink(t);
        loop->ntimers--;
    }
    t->expire = deadline;
    timer_link(loop, t);
    loop->ntimers++;
}

void pt_timer_arm(struct pt_loop *loop, struct pt_timer *t, uint64_t ms, pt_timer_cb cb)
{
    pt_timer_arm_at(loop, t, loop->now + ms, cb);
}

void pt_timer_disarm(struct pt_loop *loop, struct pt_timer *t)
{
    if (t->slot_at == 0)
        return;
    timer_unlink(t);
    t->slot_at = 0;
    loop->ntimers--;
}

static void process_slot(struct pt_loop *loop, struct pt_timer *head)
{
    /* Move the slot's timers to a local list first: a timer re-linked into
     * the same slot (a later turn) must not be seen twice in this pass. */
    struct pt_timer local;
    if (head->next == head)
        return;
    local.next = head->next;
    local.prev = head->prev;
    local.next->prev = &local;
    local.prev->next = &local;
    head->next = head->prev = head;
    while (local.next != &local) {
        struct pt_timer *t = local.next;
        timer_unlink(t);
        if (t->expire <= loop->now) {
            t->slot_at = 0;
            loop->ntimers--;
            t->cb(loop, t);
        } else {
            timer_link(loop, t);
        }
    }
}

static void run_timers(struct pt_loop *loop)
{
    uint64_t target = tick_of(loop->now);
    if (loop->ntimers == 0) {
        loop->wheel_at = target;
        return;
    }
    uint64_t steps = (target - loop->wheel_at) / PT_WHEEL_TICK_MS;
    if (steps > PT_WHEEL_SLOTS) { /* the loop was away a whole turn: visit each slot once */
        loop->wheel_at = target - (uint64_t)PT_WHEEL_SLOTS * PT_WHEEL_TICK_MS;
    }
    while (loop->wheel_at < target) {
        loop->wheel_at += PT_WHEEL_TICK_MS;
        process_slot(loop, slot_for(loop, loop->wheel_at));
    }
}

static int next_timeout(struct pt_loop *loop, int max_wait_ms)
{
    if (loop->defer_head != NULL)
        return 0;
    if (loop->ntimers == 0)
        return max_wait_ms;
    /* look ahead a little for the first non-empty slot */
    uint64_t at = loop->wheel_at;
    for (int i = 0; i < 64; i++) {
        at += PT_WHEEL_TICK_MS;
        struct pt_timer *head = slot_for(loop, at);
        if (head->next != head)
            break;
    }
    int64_t wait = (int64_t)(at - loop->now);
    if (wait < 0)
        wait = 0;
    if (max_wait_ms >= 0 && wait > max_wait_ms)
        wait = max_wait_ms;
    return (int)wait;
}

/* ---- deferred callbacks and cross-thread tasks ---- */

void pt_loop_defer(struct pt_loop *loop, struct pt_defer *d, pt_task_fn fn, void *arg)
{
    if (d->queued)
        return;
    d->fn = fn;
    d->arg = arg;
    d->next = NULL;
    d->queued = true;
    *loop->defer_tail = d;
    loop->defer_tail = &d->next;
}

void pt_loop_cancel_defer(struct pt_loop *loop, struct pt_defer *d)
{
    if (!d->queued)
        return;
    struct pt_defer **pp = &loop->defer_head;
    while (*pp != NULL && *pp != d)
        pp = &(*pp)->next;
    if (*pp == d) {
        *pp = d->next;
        if (loop->defer_tail == &d->next)
            loop->defer_tail = pp;
    }
    d->queued = false;
}

static void run_defers(struct pt_loop *loop)
{
    /* Only what was queued before we started: new entries wait a turn. */
    struct pt_defer *d = loop->defer_head;
    loop->defer_head = NULL;
    loop->defer_tail = &loop->defer_head;
    while (d != NULL) {
        struct pt_defer *next = d->next;
        d->queued = false;
        d->fn(loop, d->arg);
        d = next;
    }
}

void pt_loop_flush_defers(struct pt_loop *loop)
{
    for (int i = 0; i < 1000 && loop->defer_head != NULL; i++)
        run_defers(loop);
}

int pt_loop_post(struct pt_loop *loop, pt_task_fn fn, void *arg)
{
    struct pt_task *t = pt_malloc(sizeof(*t));
    if (t == NULL)
        return PT_ERR_NOMEM;
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&loop->task_lock);
    struct pt_task **pp = &loop->tasks;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = t;
    pthread_mutex_unlock(&loop->task_lock);
    uint64_t one = 1;
    ssize_t w = write(loop->wakefd, &one, sizeof(one));
    (void)w;
    return 0;
}

static void wake_cb(struct pt_loop *loop, struct pt_io *io, uint32_t events)
{
    (void)events;
    uint64_t v;
    ssize_t r = read(io->fd, &v, sizeof(v));
    (void)r;
    pthread_mutex_lock(&loop->task_lock);
    struct pt_task *t = loop->tasks;
    loop->tasks = NULL;
    pthread_mutex_unlock(&loop->task_lock);
    while (t != NULL) {
        struct pt_task *next = t->next;
        t->fn(loop, t->arg);
        free(t);
        t = next;
    }
}

void pt_loop_run_once(struct pt_loop *loop, int max_wait_ms)
{
    struct epoll_event events[MAX_EVENTS];
    int timeout = next_timeout(loop, max_wait_ms);
    int n = epoll_wait(loop->epfd, events, MAX_EVENTS, timeout);
    pt_loop_update_time(loop);
    if (n == -1 && errno != EINTR)
        pt_log_ratelimited(PT_LOG_ERR, 1, "epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        struct pt_io *io = events[i].data.ptr;
        io->cb(loop, io, events[i].events);
    }
    run_defers(loop);
    run_timers(loop);
}

void pt_loop_run(struct pt_loop *loop)
{
    while (!loop->stop)
        pt_loop_run_once(loop, -1);
}

void pt_loop_stop(struct pt_loop *loop)
{
    loop->stop = 1;
}
