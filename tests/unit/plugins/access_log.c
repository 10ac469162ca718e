/*
 * Access log: line formatting (every SPEC §10 field, JSON escaping, nulls,
 * the combined format, size caps) and the background writer (many threads,
 * reopen, bounded memory with counted drops, flush on close).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "test.h"
#include "plugins/access_log.h"
#include "plugins/logfile.h"

static struct pt_al_record sample(void)
{
    struct pt_al_record r = {
        .start_ms = 1764074135123, /* 2025-11-25T12:35:35.123Z */
        .request_id = PT_STR_LIT("req-1"),
        .trace_id = PT_STR_LIT("4bf92f3577b34da6a3ce929d0e0e4736"),
        .client_ip = PT_STR_LIT("2001:db8::1"),
        .method = PT_STR_LIT("POST"),
        .path = PT_STR_LIT("/api/users/7"),
        .query = PT_STR_LIT("a=1&b=\"2\""),
        .http_minor = 1,
        .route = PT_STR_LIT("users"),
        .service = PT_STR_LIT("users-svc"),
        .target = PT_STR_LIT("127.0.0.1:9001"),
        .status = 201,
        .bytes_in = 512,
        .bytes_out = 1024,
        .duration_ms = 12,
        .upstream_ms = 9,
        .referer = PT_STR_LIT("https://ref.test/"),
        .user_agent = PT_STR_LIT("curl/8.0"),
    };
    return r;
}

static json_t *parse_line(const char *buf, size_t n)
{
    ok(n > 0 && buf[n - 1] == '\n', "line ends with a newline");
    ok(memchr(buf, '\n', n - 1) == NULL, "exactly one line");
    json_error_t err;
    json_t *j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL)
        note("json: %s: %.*s", err.text, (int)n, buf);
    return j;
}

static void test_json_fields(void)
{
    char buf[PT_AL_LINE_MAX];
    struct pt_al_record r = sample();
    size_t n = pt_al_format(PT_AL_JSON, &r, buf, sizeof(buf));
    json_t *j = parse_line(buf, n);
    ok(j != NULL, "valid JSON");
    if (j == NULL)
        return;
    static const char *const order[] = {
        "time",      "request_id",  "trace_id",    "client_ip", "consumer", "method",
        "path",      "route",       "service",     "target",    "status",   "bytes_in",
        "bytes_out", "duration_ms", "upstream_ms", "cache",     "error"};
    is_int(json_object_size(j), 17, "the 17 SPEC fields, nothing else");
    size_t i = 0;
    const char *key;
    json_t *v;
    bool in_order = true;
    json_object_foreach(j, key, v)
    {
        in_order &= i < 17 && strcmp(key, order[i]) == 0;
        i++;
    }
    ok(in_order, "in the SPEC's order");
    is_str(json_string_value(json_object_get(j, "time")), "2025-11-25T12:35:35.123Z",
           "RFC 3339 UTC with milliseconds");
    is_str(json_string_value(json_object_get(j, "request_id")), "req-1", "request_id");
    is_str(json_string_value(json_object_get(j, "trace_id")), "4bf92f3577b34da6a3ce929d0e0e4736",
           "trace_id");
    is_str(json_string_value(json_object_get(j, "client_ip")), "2001:db8::1", "client_ip");
    ok(json_is_null(json_object_get(j, "consumer")), "consumer null");
    is_str(json_string_value(json_object_get(j, "method")), "POST", "method");
    is_str(json_string_value(json_object_get(j, "path")), "/api/users/7", "path without query");
    is_str(json_string_value(json_object_get(j, "route")), "users", "route");
    is_str(json_string_value(json_object_get(j, "service")), "users-svc", "service");
    is_str(json_string_value(json_object_get(j, "target")), "127.0.0.1:9001", "target");
    is_int(json_integer_value(json_object_get(j, "status")), 201, "status is a number");
    is_int(json_integer_value(json_object_get(j, "bytes_in")), 512, "bytes_in");
    is_int(json_integer_value(json_object_get(j, "bytes_out")), 1024, "bytes_out");
    is_int(json_integer_value(json_object_get(j, "duration_ms")), 12, "duration_ms");
    is_int(json_integer_value(json_object_get(j, "upstream_ms")), 9, "upstream_ms");
    ok(json_is_null(json_object_get(j, "cache")), "cache null");
    ok(json_is_null(json_object_get(j, "error")), "error null");
    json_decref(j);

    r = sample();
    r.route = r.service = r.target = PT_STR_NULL;
    r.upstream_ms = -1;
    r.status = 404;
    r.error = PT_STR_LIT("no route for GET /x");
    n = pt_al_format(PT_AL_JSON, &r, buf, sizeof(buf));
    j = parse_line(buf, n);
    ok(j != NULL && json_is_null(json_object_get(j, "route")) &&
           json_is_null(json_object_get(j, "service")) &&
           json_is_null(json_object_get(j, "target")) &&
           json_is_null(json_object_get(j, "upstream_ms")),
       "no route: route, service, target, upstream_ms null");
    is_str(json_string_value(json_object_get(j, "error")), "no route for GET /x", "error text");
    json_decref(j);
}

static void test_json_escaping(void)
{
    char buf[PT_AL_LINE_MAX];
    struct pt_al_record r = sample();
    static const char path[] = "/a\"b\\c\x01\x7f\xff\xc3\xa9";
    r.path = pt_str_make(path, sizeof(path) - 1);
    r.error = PT_STR_LIT("line1\nline2\t\"quoted\"");
    r.request_id = PT_STR_LIT("</script>");
    size_t n = pt_al_format(PT_AL_JSON, &r, buf, sizeof(buf));
    json_t *j = parse_line(buf, n);
    ok(j != NULL, "hostile bytes still give valid JSON on one line");
    if (j == NULL)
        return;
    is_str(json_string_value(json_object_get(j, "path")), "/a\"b\\c\x01\x7f\xef\xbf\xbd\xc3\xa9",
           "quotes, backslashes, controls escaped; invalid UTF-8 becomes U+FFFD");
    is_str(json_string_value(json_object_get(j, "error")), "line1\nline2\t\"quoted\"",
           "newline and tab round-trip");
    json_decref(j);
}

static void test_combined(void)
{
    char buf[PT_AL_LINE_MAX];
    struct pt_al_record r = sample();
    size_t n = pt_al_format(PT_AL_COMBINED, &r, buf, sizeof(buf));
    buf[n] = '\0';
    is_str(buf,
           "2001:db8::1 - - [25/Nov/2025:12:35:35 +0000] \"POST /api/users/7?a=1&b=\\x222\\x22 "
           "HTTP/1.1\" 201 1024 \"https://ref.test/\" \"curl/8.0\"\n",
           "combined: nginx escaping, query kept, UTC");
    r = sample();
    r.referer = r.user_agent = PT_STR_NULL;
    r.query = PT_STR_NULL;
    r.http_minor = 0;
    r.consumer = PT_STR_LIT("alice");
    static const char ua[] = "evil\"\n\x80";
    r.user_agent = pt_str_make(ua, sizeof(ua) - 1);
    n = pt_al_format(PT_AL_COMBINED, &r, buf, sizeof(buf));
    buf[n] = '\0';
    is_str(buf,
           "2001:db8::1 - alice [25/Nov/2025:12:35:35 +0000] \"POST /api/users/7 HTTP/1.0\" 201 "
           "1024 \"-\" \"evil\\x22\\x0A\\x80\"\n",
           "absent referer as -, hostile user agent escaped");
}

static void test_caps(void)
{
    char buf[PT_AL_LINE_MAX];
    struct pt_al_record r = sample();
    char *long_path = malloc(100000);
    memset(long_path, '"', 100000); /* the worst case for JSON: every byte doubles */
    long_path[0] = '/';
    r.path = pt_str_make(long_path, 100000);
    r.user_agent = pt_str_make(long_path, 100000);
    r.referer = pt_str_make(long_path, 100000);
    size_t n = pt_al_format(PT_AL_JSON, &r, buf, sizeof(buf));
    json_t *j = parse_line(buf, n);
    ok(j != NULL && strlen(json_string_value(json_object_get(j, "path"))) == PT_AL_PATH_MAX,
       "a huge path is cut at PT_AL_PATH_MAX bytes");
    json_decref(j);
    n = pt_al_format(PT_AL_COMBINED, &r, buf, sizeof(buf));
    ok(n > 0 && n < sizeof(buf), "combined with huge values still fits (%zu bytes)", n);
    ok(pt_al_format(PT_AL_JSON, &r, buf, 100) == 0, "a line that does not fit gives 0");
    free(long_path);
}

/* ---- the writer ---- */

static char dir[] = "/tmp/pt-al-XXXXXX";

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

struct writer_arg {
    struct pt_logfile *f;
    int id;
    int lines;
};

static void *writer_thread(void *arg)
{
    struct writer_arg *a = arg;
    char line[128];
    for (int i = 0; i < a->lines; i++) {
        int n = snprintf(line, sizeof(line), "thread %d line %d %s\n", a->id, i,
                         "padding padding padding padding padding");
        pt_logfile_write(a->f, line, (size_t)n);
    }
    return NULL;
}

static void test_writer_threads(void)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/many.log", dir);
    char err[128];
    struct pt_logfile *f = pt_logfile_open(path, err, sizeof(err));
    ok(f != NULL, "open");
    char alias[256];
    snprintf(alias, sizeof(alias), "%s/./many.log", dir);
    struct pt_logfile *g = pt_logfile_open(alias, err, sizeof(err));
    ok(g == f, "the same file by another name shares the writer");
    pt_logfile_close(g);
    enum { T = 4, L = 20000 };
    pthread_t th[T];
    struct writer_arg args[T];
    uint64_t dropped_before = pt_logfile_dropped_total();
    for (int i = 0; i < T; i++) {
        args[i] = (struct writer_arg){f, i, L};
        pthread_create(&th[i], NULL, writer_thread, &args[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    pt_logfile_close(f);
    uint64_t dropped = pt_logfile_dropped_total() - dropped_before;
    size_t lines = count_lines(path);
    note("%zu lines written, %llu dropped", lines, (unsigned long long)dropped);
    is_int(lines + dropped, T * L, "every line written or counted as dropped");
    ok(lines > 0, "lines reached the file");
}

static void test_reopen(void)
{
    char path[256], rotated[256];
    snprintf(path, sizeof(path), "%s/rot.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/rot.log.1", dir);
    char err[128];
    struct pt_logfile *f = pt_logfile_open(path, err, sizeof(err));
    pt_logfile_write(f, "before\n", 7);
    usleep(300 * 1000); /* flushed after PT_LOGFILE_FLUSH_MS */
    is_int(count_lines(path), 1, "a lone line is flushed within the flush interval");
    rename(path, rotated);
    pt_logfile_reopen_all();
    usleep(100 * 1000);
    pt_logfile_write(f, "after\n", 6);
    pt_logfile_close(f);
    is_int(count_lines(rotated), 1, "the old line stayed in the rotated file");
    is_int(count_lines(path), 1, "the new line went to a new file");
}

static void *drain_thread(void *arg)
{
    int fd = *(int *)arg;
    char b[65536];
    while (read(fd, b, sizeof(b)) > 0)
        ;
    return NULL;
}

static void test_drops(void)
{
    /* A FIFO nobody reads: the writer blocks, buffers run out, lines are dropped, not waited for.
     */
    char path[256];
    snprintf(path, sizeof(path), "%s/fifo", dir);
    ok(mkfifo(path, 0600) == 0, "mkfifo");
    char err[128];
    ok(pt_logfile_open(path, err, sizeof(err)) == NULL, "a FIFO without a reader is refused: %s",
       err);
    int rd = open(path, O_RDONLY | O_NONBLOCK);
    struct pt_logfile *f = pt_logfile_open(path, err, sizeof(err));
    ok(f != NULL, "a FIFO with a reader opens");
    if (f == NULL)
        return;
    uint64_t before = pt_logfile_dropped_total();
    char line[1000];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    int total = (PT_LOGFILE_MAX_BUFS + 8) * (PT_LOGFILE_BUF_SIZE / sizeof(line));
    int failed = 0;
    for (int i = 0; i < total; i++)
        failed += pt_logfile_write(f, line, sizeof(line)) != 0;
    ok(failed > 0, "lines dropped once memory is used up (%d of %d)", failed, total);
    is_int(pt_logfile_dropped_total() - before, failed, "and counted");
    ok(pt_logfile_write(f, line, PT_LOGFILE_BUF_SIZE + 1) == -1, "an oversized line is dropped");
    /* drain the FIFO in the background so that close can flush */
    int fl = fcntl(rd, F_GETFL);
    fcntl(rd, F_SETFL, fl & ~O_NONBLOCK);
    pthread_t th;
    pthread_create(&th, NULL, drain_thread, &rd);
    pt_logfile_close(f);
    pthread_join(th, NULL);
    close(rd);
    ok(1, "close flushed into the reader and returned");
}

int main(void)
{
    test_json_fields();
    test_json_escaping();
    test_combined();
    test_caps();
    if (mkdtemp(dir) == NULL)
        return 1;
    test_writer_threads();
    test_reopen();
    test_drops();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        note("could not remove %s", dir);
    return done_testing();
}
