#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "test.h"

static int fired[8];
static uint64_t fired_at[8];
static struct pt_timer timers[8];

static void on_timer(struct pt_loop *loop, struct pt_timer *t)
{
    int i = (int)(t - timers);
    fired[i]++;
    fired_at[i] = pt_loop_now(loop);
}

static int deferred;
static void on_defer(struct pt_loop *loop, void *arg)
{
    (void)loop;
    deferred += (int)(long)arg;
}

static int posted;
static void on_post(struct pt_loop *loop, void *arg)
{
    (void)arg;
    posted++;
    pt_loop_stop(loop);
}

static int io_events;
static void on_io(struct pt_loop *loop, struct pt_io *io, uint32_t ev)
{
    (void)loop;
    (void)io;
    if (ev & EPOLLIN)
        io_events++;
}

static void run_for(struct pt_loop *loop, uint64_t ms)
{
    uint64_t end = pt_loop_now(loop) + ms;
    while (pt_loop_now(loop) < end)
        pt_loop_run_once(loop, 5);
}

int main(void)
{
    struct pt_loop loop;
    ok(pt_loop_init(&loop) == 0, "init");
    uint64_t t0 = pt_loop_now(&loop);
    for (int i = 0; i < 8; i++)
        pt_timer_init(&timers[i]);

    pt_timer_arm(&loop, &timers[0], 20, on_timer);
    pt_timer_arm(&loop, &timers[1], 60, on_timer);
    pt_timer_arm(&loop, &timers[2], 40, on_timer);
    pt_timer_arm(&loop, &timers[3], 30, on_timer);
    pt_timer_disarm(&loop, &timers[3]);
    ok(!pt_timer_armed(&timers[3]), "disarmed");
    /* push timer 2 later: lazy re-slot must still honour the new deadline */
    pt_timer_arm(&loop, &timers[2], 100, on_timer);
    run_for(&loop, 130);
    is_int(fired[0], 1, "timer 0 fired once");
    is_int(fired[1], 1, "timer 1 fired once");
    is_int(fired[2], 1, "pushed-back timer fired once");
    is_int(fired[3], 0, "disarmed timer did not fire");
    ok(fired_at[0] >= t0 + 20 && fired_at[0] < t0 + 60, "timer 0 on time");
    ok(fired_at[2] >= t0 + 100, "pushed-back timer not early");
    ok(fired_at[1] < fired_at[2], "order follows deadlines");

    /* pulling a deadline earlier relinks */
    t0 = pt_loop_now(&loop);
    pt_timer_arm(&loop, &timers[4], 5000, on_timer);
    pt_timer_arm(&loop, &timers[4], 10, on_timer);
    run_for(&loop, 50);
    is_int(fired[4], 1, "earlier deadline honoured");

    /* a timer longer than one wheel turn */
    t0 = pt_loop_now(&loop);
    pt_timer_arm_at(&loop, &timers[5], t0 + (uint64_t)PT_WHEEL_SLOTS * PT_WHEEL_TICK_MS + 30,
                    on_timer);
    run_for(&loop, 60);
    is_int(fired[5], 0, "a timer beyond one turn does not fire early");
    pt_timer_disarm(&loop, &timers[5]);
    is_int(loop.ntimers, 0, "no timer left");

    struct pt_defer d = {0};
    pt_loop_defer(&loop, &d, on_defer, (void *)1L);
    pt_loop_defer(&loop, &d, on_defer, (void *)1L); /* already queued: ignored */
    pt_loop_run_once(&loop, 0);
    is_int(deferred, 1, "defer runs once");

    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct pt_io io;
    pt_loop_add(&loop, &io, sv[0], on_io);
    ssize_t w = write(sv[1], "x", 1);
    (void)w;
    pt_loop_run_once(&loop, 100);
    is_int(io_events, 1, "edge-triggered input event");
    pt_loop_run_once(&loop, 10);
    is_int(io_events, 1, "no repeat without a new edge");
    pt_loop_del(&loop, &io);
    close(sv[0]);
    close(sv[1]);

    pt_loop_post(&loop, on_post, NULL);
    pt_loop_run(&loop);
    is_int(posted, 1, "posted task runs and stops the loop");
    pt_loop_destroy(&loop);
    return done_testing();
}
