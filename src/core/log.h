/*
 * Error log: one line per event on stderr, written with a single write(2) so
 * that lines from different threads never interleave.
 *
 *   2026-11-25T12:00:00.123Z [error] worker 1: upstream 127.0.0.1:9001 reset
 */
#ifndef PT_CORE_LOG_H
#define PT_CORE_LOG_H

#include <stdarg.h>

enum pt_log_level { PT_LOG_ERR = 0, PT_LOG_WARN, PT_LOG_INFO, PT_LOG_DEBUG, PT_LOG_LEVEL_COUNT };

extern enum pt_log_level pt_log_level;

/** Set the threshold from a name (error, warn, info, debug); -1 if unknown. */
int pt_log_set_level(const char *name);

void pt_log(enum pt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pt_logv(enum pt_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define pt_log_err(...)  pt_log(PT_LOG_ERR, __VA_ARGS__)
#define pt_log_warn(...) pt_log(PT_LOG_WARN, __VA_ARGS__)
#define pt_log_info(...) pt_log(PT_LOG_INFO, __VA_ARGS__)

#ifdef PT_DEBUG
#define pt_log_debug(...) pt_log(PT_LOG_DEBUG, __VA_ARGS__)
#else
#define pt_log_debug(...) ((void)0)
#endif

/**
 * Log at most `per_sec` lines per second from this call site; the number
 * suppressed is reported with the next line that gets through.
 */
#define pt_log_ratelimited(level, per_sec, ...)                                                    \
    do {                                                                                           \
        static _Thread_local long pt__rl_sec;                                                      \
        static _Thread_local unsigned pt__rl_count, pt__rl_dropped;                                \
        if (pt__log_ratelimit(&pt__rl_sec, &pt__rl_count, &pt__rl_dropped, (per_sec)))             \
            pt_log((level), __VA_ARGS__);                                                          \
    } while (0)

int pt__log_ratelimit(long *sec, unsigned *count, unsigned *dropped, unsigned per_sec);

#endif
