#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

enum pt_log_level pt_log_level = PT_LOG_INFO;

static const char *const level_names[PT_LOG_LEVEL_COUNT] = {"error", "warn", "info", "debug"};

int pt_log_set_level(const char *name)
{
    for (int i = 0; i < PT_LOG_LEVEL_COUNT; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            pt_log_level = (enum pt_log_level)i;
            return 0;
        }
    }
    return -1;
}

void pt_logv(enum pt_log_level level, const char *fmt, va_list ap)
{
    if (level > pt_log_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] ", ts.tv_nsec / 1000000,
                          level_names[level]);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    /* Never let a control character from a peer forge a log line. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
            line[i] = '?';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void pt_log(enum pt_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pt_logv(level, fmt, ap);
    va_end(ap);
}

int pt__log_ratelimit(long *sec, unsigned *count, unsigned *dropped, unsigned per_sec)
{
    long now = (long)time(NULL);
    if (now != *sec) {
        if (*dropped > 0)
            pt_log(PT_LOG_WARN, "%u similar log lines suppressed", *dropped);
        *sec = now;
        *count = 0;
        *dropped = 0;
    }
    if (*count >= per_sec) {
        (*dropped)++;
        return 0;
    }
    (*count)++;
    return 1;
}
