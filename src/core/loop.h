/*
 * The per-worker event loop: edge-triggered epoll, a hashed timer wheel, a
 * cached clock, same-thread deferred callbacks and a cross-thread task queue.
 *
 * Every socket is registered once (EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET) for
 * its whole life, so the hot path never calls epoll_ctl.  Owners keep their
 * own "readable"/"writable" state and read until a short read.
 */
#ifndef PT_CORE_LOOP_H
#define PT_CORE_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct pt_loop;
struct pt_io;
struct pt_timer;

typedef void (*pt_io_cb)(struct pt_loop *loop, struct pt_io *io, uint32_t events);
typedef void (*pt_timer_cb)(struct pt_loop *loop, struct pt_timer *timer);
typedef void (*pt_task_fn)(struct pt_loop *loop, void *arg);

/** A file descriptor watched by the loop; embed it in the owner. */
struct pt_io {
    int fd;
    pt_io_cb cb;
};

/**
 * A one-shot timer; embed it in the owner.  Re-arming to a later deadline is
 * O(1) and touches no list (the wheel re-slots lazily when the old slot
 * comes round), so connections can push their deadline on every event.
 */
struct pt_timer {
    struct pt_timer *next, *prev;
    uint64_t expire;  /* deadline, ms on the loop's monotonic clock */
    uint64_t slot_at; /* tick time of the slot we are linked in; 0 = not armed */
    pt_timer_cb cb;
};

/** A callback run on the same loop after the current batch of events. */
struct pt_defer {
    struct pt_defer *next;
    pt_task_fn fn;
    void *arg;
    bool queued;
};

#define PT_WHEEL_BITS    12
#define PT_WHEEL_SLOTS   (1u << PT_WHEEL_BITS)
#define PT_WHEEL_TICK_MS 4

struct pt_task;

struct pt_loop {
    int epfd;
    int wakefd; /* eventfd for cross-thread tasks */
    struct pt_io wake_io;
    uint64_t now;      /* monotonic ms, refreshed once per iteration */
    uint64_t now_us;   /* the same instant in µs (same origin: now == now_us / 1000) */
    int64_t wall_ms;   /* CLOCK_REALTIME ms at the same instant */
    uint64_t wheel_at; /* last tick time processed */
    size_t ntimers;
    struct pt_timer slots[PT_WHEEL_SLOTS]; /* sentinels */
    struct pt_defer *defer_head, **defer_tail;
    pthread_mutex_t task_lock;
    struct pt_task *tasks;
    volatile int stop;
    void *data; /* owner (the worker) */
};

/** Initialise; 0 or a negative PT_E* code (errno is set). */
int pt_loop_init(struct pt_loop *loop);
void pt_loop_destroy(struct pt_loop *loop);

/** Register fd for its lifetime (edge-triggered in + out + rdhup). 0 or -1 (errno). */
int pt_loop_add(struct pt_loop *loop, struct pt_io *io, int fd, pt_io_cb cb);
/** Register with an explicit event mask (e.g. level-triggered EPOLLIN for listeners). */
int pt_loop_add_events(struct pt_loop *loop, struct pt_io *io, int fd, pt_io_cb cb,
                       uint32_t events);
int pt_loop_del(struct pt_loop *loop, struct pt_io *io);

/** Refresh the cached clock. */
void pt_loop_update_time(struct pt_loop *loop);

static inline uint64_t pt_loop_now(const struct pt_loop *loop)
{
    return loop->now;
}

/** The cached clock in microseconds (for metrics: durations below a millisecond). */
static inline uint64_t pt_loop_now_us(const struct pt_loop *loop)
{
    return loop->now_us;
}

/** Read the monotonic clock now, in µs on the loop clock's origin (one clock_gettime). */
uint64_t pt_clock_us(void);

/** Arm (or re-arm) a timer to fire at now + ms. */
void pt_timer_arm(struct pt_loop *loop, struct pt_timer *t, uint64_t ms, pt_timer_cb cb);
/** Arm at an absolute deadline on the loop clock. */
void pt_timer_arm_at(struct pt_loop *loop, struct pt_timer *t, uint64_t deadline, pt_timer_cb cb);
void pt_timer_disarm(struct pt_loop *loop, struct pt_timer *t);

static inline bool pt_timer_armed(const struct pt_timer *t)
{
    return t->slot_at != 0;
}

static inline void pt_timer_init(struct pt_timer *t)
{
    t->next = t->prev = NULL;
    t->slot_at = 0;
    t->expire = 0;
    t->cb = NULL;
}

/** Queue fn(arg) to run on this loop after the current events; a queued defer is not re-queued. */
void pt_loop_defer(struct pt_loop *loop, struct pt_defer *d, pt_task_fn fn, void *arg);
void pt_loop_cancel_defer(struct pt_loop *loop, struct pt_defer *d);

/** Run fn(loop, arg) on the loop's thread; callable from any thread.  0 or PT_ERR_NOMEM. */
int pt_loop_post(struct pt_loop *loop, pt_task_fn fn, void *arg);

/** Run one iteration: wait for events (at most max_wait_ms, -1 = until a timer), dispatch. */
void pt_loop_run_once(struct pt_loop *loop, int max_wait_ms);

/** Run queued deferred callbacks until none is left (at shutdown, after the loop stopped). */
void pt_loop_flush_defers(struct pt_loop *loop);

/** Run until pt_loop_stop(). */
void pt_loop_run(struct pt_loop *loop);
void pt_loop_stop(struct pt_loop *loop);

#endif
