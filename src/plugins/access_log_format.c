/*
 * Access-log line formatting.
 *
 * A format is a precompiled list of (literal, field) elements, walked once
 * per line with a switch: no format-string parsing, no allocation, no
 * strftime per line (the date part of the timestamp is cached per thread
 * and per second).  Two encodings:
 *
 *   json       every string JSON-escaped in quotes (invalid UTF-8 becomes
 *              U+FFFD, so a line is always valid JSON), absent values null,
 *              numbers bare.  Field order and names: SPEC §10.
 *   combined   the NCSA combined format of Apache and nginx:
 *              client - consumer [10/Oct/2026:13:55:36 +0000] "GET /p?q HTTP/1.1"
 *              status bytes "referer" "user-agent"
 *              strings escaped as nginx does (", \ and bytes outside
 *              0x20-0x7e as \xHH), absent values "-".
 *
 * The combined `bytes` is the bytes sent to the client including the
 * response head (Apache's %O, nginx's $bytes_sent); the time is UTC.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/problem.h"
#include "plugins/access_log.h"

enum field {
    F_NONE = 0,
    F_TIME_ISO,
    F_TIME_CLF,
    F_REQUEST_ID,
    F_TRACE_ID,
    F_CLIENT_IP,
    F_CONSUMER,
    F_METHOD,
    F_PATH,
    F_REQUEST_LINE,
    F_ROUTE,
    F_SERVICE,
    F_TARGET,
    F_STATUS,
    F_BYTES_IN,
    F_BYTES_OUT,
    F_DURATION,
    F_UPSTREAM_MS,
    F_CACHE,
    F_ERROR,
    F_REFERER,
    F_USER_AGENT,
    F_COUNT
};

struct elem {
    const char *lit; /* written before the field */
    size_t litlen;
    enum field field;
};

#define E(lit, f)                                                                                  \
    {                                                                                              \
        lit, sizeof(lit) - 1, f                                                                    \
    }

static const struct elem json_elems[] = {
    E("{\"time\":", F_TIME_ISO),
    E(",\"request_id\":", F_REQUEST_ID),
    E(",\"trace_id\":", F_TRACE_ID),
    E(",\"client_ip\":", F_CLIENT_IP),
    E(",\"consumer\":", F_CONSUMER),
    E(",\"method\":", F_METHOD),
    E(",\"path\":", F_PATH),
    E(",\"route\":", F_ROUTE),
    E(",\"service\":", F_SERVICE),
    E(",\"target\":", F_TARGET),
    E(",\"status\":", F_STATUS),
    E(",\"bytes_in\":", F_BYTES_IN),
    E(",\"bytes_out\":", F_BYTES_OUT),
    E(",\"duration_ms\":", F_DURATION),
    E(",\"upstream_ms\":", F_UPSTREAM_MS),
    E(",\"cache\":", F_CACHE),
    E(",\"error\":", F_ERROR),
    E("}\n", F_NONE),
};

static const struct elem combined_elems[] = {
    E("", F_CLIENT_IP),        E(" - ", F_CONSUMER),     E(" [", F_TIME_CLF),
    E("] \"", F_REQUEST_LINE), E("\" ", F_STATUS),       E(" ", F_BYTES_OUT),
    E(" \"", F_REFERER),       E("\" \"", F_USER_AGENT), E("\"\n", F_NONE),
};

static const struct {
    const struct elem *elems;
    size_t n;
    bool json;
} formats[PT_AL_FORMAT_COUNT] = {
    [PT_AL_JSON] = {json_elems, sizeof(json_elems) / sizeof(json_elems[0]), true},
    [PT_AL_COMBINED] = {combined_elems, sizeof(combined_elems) / sizeof(combined_elems[0]), false},
};

/* ---- output cursor ---- */

struct out {
    char *p, *end;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n) {
        o->full = true;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24], *q = tmp + sizeof(tmp);
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(o, q, (size_t)(tmp + sizeof(tmp) - q));
}

static struct pt_str cap_str(struct pt_str s, size_t max)
{
    if (s.len > max)
        s.len = max;
    return s;
}

static void put_json_str(struct out *o, struct pt_str s)
{
    if (s.ptr == NULL) {
        put(o, "null", 4);
        return;
    }
    put(o, "\"", 1);
    size_t room = (size_t)(o->end - o->p);
    size_t need = pt_json_escape(o->p, room, s);
    if (need >= room) { /* the NUL needs one more byte */
        o->full = true;
        return;
    }
    o->p += need;
    put(o, "\"", 1);
}

/* nginx's escaping for its text log formats. */
static void put_clf_str(struct out *o, struct pt_str s)
{
    static const char hex[] = "0123456789ABCDEF";
    if (s.ptr == NULL || s.len == 0) {
        put(o, "-", 1);
        return;
    }
    for (size_t i = 0; i < s.len && !o->full; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\' || c < 0x20 || c > 0x7e) {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            put(o, e, 4);
        } else {
            put(o, (const char *)&c, 1);
        }
    }
}

static void put_str(struct out *o, bool json, struct pt_str s)
{
    if (json)
        put_json_str(o, s);
    else
        put_clf_str(o, s);
}

/* ---- time ---- */

static _Thread_local int64_t tl_iso_sec = INT64_MIN, tl_clf_sec = INT64_MIN;
static _Thread_local char tl_iso[80], tl_clf[80];

static void put_time(struct out *o, int64_t ms, bool iso)
{
    static const char mon[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - sec * 1000);
    int64_t *cached = iso ? &tl_iso_sec : &tl_clf_sec;
    if (*cached != sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        if (iso)
            snprintf(tl_iso, sizeof(tl_iso), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        else
            snprintf(tl_clf, sizeof(tl_clf), "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday,
                     mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        *cached = sec;
    }
    if (!iso) {
        put(o, tl_clf, strlen(tl_clf));
        return;
    }
    char frac[7] = {'.',
                    (char)('0' + msec / 100),
                    (char)('0' + msec / 10 % 10),
                    (char)('0' + msec % 10),
                    'Z',
                    '"',
                    0};
    put(o, "\"", 1);
    put(o, tl_iso, strlen(tl_iso));
    put(o, frac, 6);
}

/* ---- fields ---- */

static void put_request_line(struct out *o, const struct pt_al_record *r)
{
    put_clf_str(o, r->method.ptr != NULL ? r->method : PT_STR_LIT("-"));
    put(o, " ", 1);
    put_clf_str(o, cap_str(r->path, PT_AL_PATH_MAX));
    if (r->query.ptr != NULL) {
        put(o, "?", 1);
        if (r->query.len > 0)
            put_clf_str(o, cap_str(r->query, PT_AL_PATH_MAX));
    }
    put(o, r->http_minor == 0 ? " HTTP/1.0" : " HTTP/1.1", 9);
}

static void put_field(struct out *o, bool json, enum field f, const struct pt_al_record *r)
{
    switch (f) {
    case F_TIME_ISO:
        put_time(o, r->start_ms, true);
        break;
    case F_TIME_CLF:
        put_time(o, r->start_ms, false);
        break;
    case F_REQUEST_ID:
        put_str(o, json, r->request_id);
        break;
    case F_TRACE_ID:
        put_str(o, json, r->trace_id);
        break;
    case F_CLIENT_IP:
        put_str(o, json, r->client_ip);
        break;
    case F_CONSUMER:
        put_str(o, json, r->consumer);
        break;
    case F_METHOD:
        put_str(o, json, r->method);
        break;
    case F_PATH:
        put_str(o, json, cap_str(r->path, PT_AL_PATH_MAX));
        break;
    case F_REQUEST_LINE:
        put_request_line(o, r);
        break;
    case F_ROUTE:
        put_str(o, json, r->route);
        break;
    case F_SERVICE:
        put_str(o, json, r->service);
        break;
    case F_TARGET:
        put_str(o, json, r->target);
        break;
    case F_STATUS:
        put_u64(o, (uint64_t)(r->status > 0 ? r->status : 0));
        break;
    case F_BYTES_IN:
        put_u64(o, r->bytes_in);
        break;
    case F_BYTES_OUT:
        put_u64(o, r->bytes_out);
        break;
    case F_DURATION:
        put_u64(o, r->duration_ms);
        break;
    case F_UPSTREAM_MS:
        if (r->upstream_ms < 0)
            put(o, json ? "null" : "-", json ? 4 : 1);
        else
            put_u64(o, (uint64_t)r->upstream_ms);
        break;
    case F_CACHE:
        put_str(o, json, r->cache);
        break;
    case F_ERROR:
        put_str(o, json, r->error);
        break;
    case F_REFERER:
        put_str(o, json, cap_str(r->referer, PT_AL_AGENT_MAX));
        break;
    case F_USER_AGENT:
        put_str(o, json, cap_str(r->user_agent, PT_AL_AGENT_MAX));
        break;
    default:
        break;
    }
}

size_t pt_al_format(enum pt_al_format_id fmt, const struct pt_al_record *r, char *buf, size_t cap)
{
    if ((unsigned)fmt >= PT_AL_FORMAT_COUNT)
        return 0;
    struct out o = {buf, buf + cap, false};
    bool json = formats[fmt].json;
    for (size_t i = 0; i < formats[fmt].n && !o.full; i++) {
        const struct elem *e = &formats[fmt].elems[i];
        put(&o, e->lit, e->litlen);
        put_field(&o, json, e->field, r);
    }
    return o.full ? 0 : (size_t)(o.p - buf);
}
