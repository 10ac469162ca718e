/*
 * HTTP caching rules (see cache_policy.h).  Everything here reads bytes that
 * came from the network, so every parser is total: malformed input gives a
 * conservative answer (not storable, stale), never a crash or an assert.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "portico/status.h"
#include "plugins/cache_policy.h"

/* ---- Cache-Control ---- */

static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* delta-seconds (RFC 9111 §1.2.2): digits only; huge values clamp.  0 or -1. */
static int parse_delta(struct pt_str v, uint32_t *out)
{
    if (v.len == 0)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return -1;
        if (n < PT_CC_DELTA_MAX)
            n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    *out = n > PT_CC_DELTA_MAX ? PT_CC_DELTA_MAX : (uint32_t)n;
    return 0;
}

static void set_delta(struct pt_cache_control *cc, unsigned flag, uint32_t *field,
                      struct pt_str arg, bool has_arg, bool invalid_is_zero)
{
    uint32_t v;
    if (!has_arg || parse_delta(arg, &v) != 0) {
        cc->flags |= PT_CC_INVALID;
        if (!invalid_is_zero)
            return;
        v = 0;
    }
    if (!(cc->flags & flag) || v < *field)
        *field = v;
    cc->flags |= flag;
}

static void apply_directive(struct pt_cache_control *cc, struct pt_str name, struct pt_str arg,
                            bool has_arg)
{
    switch (name.len) {
    case 6:
        if (pt_str_case_eq_lit(name, "public"))
            cc->flags |= PT_CC_PUBLIC;
        break;
    case 7:
        if (pt_str_case_eq_lit(name, "max-age"))
            set_delta(cc, PT_CC_MAX_AGE, &cc->max_age, arg, has_arg, true);
        else if (pt_str_case_eq_lit(name, "private"))
            cc->flags |= PT_CC_PRIVATE;
        break;
    case 8:
        if (pt_str_case_eq_lit(name, "no-store"))
            cc->flags |= PT_CC_NO_STORE;
        else if (pt_str_case_eq_lit(name, "no-cache"))
            cc->flags |= PT_CC_NO_CACHE | (has_arg ? PT_CC_NO_CACHE_FIELDS : 0);
        else if (pt_str_case_eq_lit(name, "s-maxage"))
            set_delta(cc, PT_CC_S_MAXAGE, &cc->s_maxage, arg, has_arg, true);
        break;
    case 12:
        if (pt_str_case_eq_lit(name, "no-transform"))
            cc->flags |= PT_CC_NO_TRANSFORM;
        break;
    case 14:
        if (pt_str_case_eq_lit(name, "stale-if-error"))
            set_delta(cc, PT_CC_SIE, &cc->stale_if_error, arg, has_arg, false);
        else if (pt_str_case_eq_lit(name, "only-if-cached"))
            cc->flags |= PT_CC_ONLY_IF_CACHED;
        break;
    case 15:
        if (pt_str_case_eq_lit(name, "must-revalidate"))
            cc->flags |= PT_CC_MUST_REVALIDATE;
        break;
    case 16:
        if (pt_str_case_eq_lit(name, "proxy-revalidate"))
            cc->flags |= PT_CC_PROXY_REVALIDATE;
        break;
    case 22:
        if (pt_str_case_eq_lit(name, "stale-while-revalidate"))
            set_delta(cc, PT_CC_SWR, &cc->stale_while_revalidate, arg, has_arg, false);
        break;
    default:
        break;
    }
}

void pt_cache_control_parse(struct pt_str value, struct pt_cache_control *cc)
{
    const char *p = value.ptr, *e = value.ptr + value.len;
    if (p == NULL)
        return;
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *ns = p;
        while (p < e && is_tchar(*p))
            p++;
        struct pt_str name = pt_str_make(ns, (size_t)(p - ns));
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        struct pt_str arg = PT_STR_NULL;
        bool has_arg = false;
        if (p < e && *p == '=') {
            p++;
            while (p < e && (*p == ' ' || *p == '\t'))
                p++;
            has_arg = true;
            if (p < e && *p == '"') {
                /* quoted-string; a backslash escapes the next byte */
                const char *as = ++p;
                while (p < e && *p != '"')
                    p += (*p == '\\' && p + 1 < e) ? 2 : 1;
                arg = pt_str_make(as, (size_t)((p < e ? p : e) - as));
                if (p < e)
                    p++;
            } else {
                const char *as = p;
                while (p < e && is_tchar(*p))
                    p++;
                arg = pt_str_make(as, (size_t)(p - as));
            }
        }
        if (name.len > 0)
            apply_directive(cc, name, arg, has_arg);
        /* skip whatever is left of this element (garbage) up to the next comma */
        while (p < e && *p != ',') {
            if (*p == '"') { /* a stray quoted string may hide a comma */
                p++;
                while (p < e && *p != '"')
                    p += (*p == '\\' && p + 1 < e) ? 2 : 1;
                if (p < e)
                    p++;
                continue;
            }
            p++;
        }
    }
}

void pt_cache_control_from_headers(const struct pt_h1_header *hs, size_t n,
                                   struct pt_cache_control *cc)
{
    for (size_t i = 0; i < n; i++)
        if (pt_str_case_eq_lit(hs[i].name, "cache-control"))
            pt_cache_control_parse(hs[i].value, cc);
}

/* ---- HTTP dates ---- */

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

struct cursor {
    const char *p, *e;
};

static bool lit(struct cursor *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->e - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Exactly `digits` digits (or 1..digits when flexible). */
static bool num(struct cursor *c, int digits, bool flexible, int *out)
{
    int v = 0, k = 0;
    while (k < digits && c->p < c->e && *c->p >= '0' && *c->p <= '9') {
        v = v * 10 + (*c->p++ - '0');
        k++;
    }
    if (k == 0 || (!flexible && k != digits))
        return false;
    *out = v;
    return true;
}

static bool month(struct cursor *c, int *out)
{
    if (c->e - c->p < 3)
        return false;
    for (int i = 0; i < 12; i++)
        if (memcmp(c->p, months[i], 3) == 0) {
            c->p += 3;
            *out = i;
            return true;
        }
    return false;
}

static bool hms(struct cursor *c, struct tm *tm)
{
    return num(c, 2, false, &tm->tm_hour) && lit(c, ":") && num(c, 2, false, &tm->tm_min) &&
           lit(c, ":") && num(c, 2, false, &tm->tm_sec);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; m 0-based). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m < 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (m + 10) % 12; /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 1 && leap ? 29 : dm[m];
}

int pt_http_date_parse(struct pt_str s, int64_t *out)
{
    s = pt_str_trim_ows(s);
    struct cursor c = {s.ptr, s.ptr + s.len};
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int year = 0;
    if (s.ptr == NULL || s.len < 20)
        return -1;
    /* the weekday name: three letters, or the long form of RFC 850 */
    const char *comma = memchr(s.ptr, ',', s.len < 12 ? s.len : 12);
    if (comma != NULL) {
        c.p = comma + 1;
        if (!lit(&c, " "))
            return -1;
        const char *save = c.p;
        /* IMF-fixdate: 06 Nov 1994 08:49:37 GMT */
        if (num(&c, 2, false, &tm.tm_mday) && lit(&c, " ") && month(&c, &tm.tm_mon) &&
            lit(&c, " ") && num(&c, 4, false, &year) && lit(&c, " ") && hms(&c, &tm) &&
            lit(&c, " GMT") && c.p == c.e)
            goto ok;
        /* RFC 850: 06-Nov-94 08:49:37 GMT */
        c.p = save;
        if (num(&c, 2, false, &tm.tm_mday) && lit(&c, "-") && month(&c, &tm.tm_mon) &&
            lit(&c, "-") && num(&c, 2, false, &year) && lit(&c, " ") && hms(&c, &tm) &&
            lit(&c, " GMT") && c.p == c.e) {
            year += year < 70 ? 2000 : 1900; /* RFC 9110 §5.6.7: within 50 years */
            goto ok;
        }
        return -1;
    }
    /* asctime: Sun Nov  6 08:49:37 1994 */
    bool wd = false;
    for (int i = 0; i < 7 && !wd; i++)
        wd = lit(&c, wdays[i]);
    if (!wd || !lit(&c, " ") || !month(&c, &tm.tm_mon) || !lit(&c, " "))
        return -1;
    if (c.p < c.e && *c.p == ' ')
        c.p++;
    if (!num(&c, 2, true, &tm.tm_mday) || !lit(&c, " ") || !hms(&c, &tm) || !lit(&c, " ") ||
        !num(&c, 4, false, &year) || c.p != c.e)
        return -1;
ok:
    if (tm.tm_mday < 1 || tm.tm_mday > days_in_month(year, tm.tm_mon) || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    *out = days_from_civil(year, tm.tm_mon, tm.tm_mday) * 86400 + tm.tm_hour * 3600 +
           tm.tm_min * 60 + tm.tm_sec;
    return 0;
}

size_t pt_http_date_format(int64_t t, char *buf)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    int n =
        snprintf(buf, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday % 7], tm.tm_mday,
                 months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n > 0 && n < 30 ? (size_t)n : 0;
}

/* ---- validators and conditionals ---- */

/* etagc (RFC 9110 §8.8.3): %x21 / %x23-7E / obs-text */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

int pt_etag_parse(struct pt_str v, struct pt_str *tag, bool *weak)
{
    v = pt_str_trim_ows(v);
    if (v.ptr == NULL)
        return -1;
    bool w = false;
    if (v.len >= 2 && v.ptr[0] == 'W' && v.ptr[1] == '/') {
        w = true;
        v = pt_str_make(v.ptr + 2, v.len - 2);
    }
    if (v.len < 2 || v.ptr[0] != '"' || v.ptr[v.len - 1] != '"')
        return -1;
    for (size_t i = 1; i + 1 < v.len; i++)
        if (!is_etagc((unsigned char)v.ptr[i]))
            return -1;
    *tag = v;
    *weak = w;
    return 0;
}

bool pt_etag_list_match(struct pt_str list, struct pt_str etag, bool any_star)
{
    struct pt_str have;
    bool weak;
    bool valid = pt_etag_parse(etag, &have, &weak) == 0;
    if (list.ptr == NULL)
        return false;
    struct pt_str all = pt_str_trim_ows(list);
    if (all.len == 1 && all.ptr[0] == '*')
        return valid || any_star;
    const char *p = list.ptr, *e = list.ptr + list.len;
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == e)
            break;
        const char *s = p;
        if (e - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if (p == e || *p != '"')
            return false; /* not an entity-tag: the rest of the list is garbage */
        p++;
        while (p < e && *p != '"')
            p++;
        if (p == e)
            return false;
        p++;
        struct pt_str m;
        bool mw;
        if (pt_etag_parse(pt_str_make(s, (size_t)(p - s)), &m, &mw) != 0)
            return false;
        if (valid && pt_str_eq(m, have)) /* weak comparison: W/ ignored on both sides */
            return true;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (p < e && *p != ',')
            return false;
    }
    return false;
}

bool pt_cache_is_conditional_field(struct pt_str name)
{
    return (name.len == 13 && pt_str_case_eq_lit(name, "if-none-match")) ||
           (name.len == 17 && pt_str_case_eq_lit(name, "if-modified-since"));
}

bool pt_cache_has_conditionals(const struct pt_h1_header *req, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pt_cache_is_conditional_field(req[i].name))
            return true;
    return false;
}

bool pt_cache_not_modified(const struct pt_h1_header *req, size_t n, struct pt_str etag,
                           bool has_lm, int64_t lm_s)
{
    bool inm = false, match = false;
    size_t nims = 0;
    struct pt_str ims = PT_STR_NULL;
    for (size_t i = 0; i < n; i++) {
        struct pt_str name = req[i].name;
        if (name.len == 13 && pt_str_case_eq_lit(name, "if-none-match")) {
            inm = true;
            match = match || pt_etag_list_match(req[i].value, etag, true);
        } else if (name.len == 17 && pt_str_case_eq_lit(name, "if-modified-since")) {
            nims++;
            ims = req[i].value;
        }
    }
    if (inm) /* RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is there */
        return match;
    int64_t t;
    if (nims != 1 || !has_lm || pt_http_date_parse(ims, &t) != 0)
        return false;
    return lm_s <= t;
}

/* ---- ranges (RFC 9110 §14) ---- */

/* 1*DIGIT at *p (saturating at UINT64_MAX); false when there is no digit. */
static bool range_num(const char **p, const char *e, uint64_t *out)
{
    const char *s = *p;
    uint64_t n = 0;
    while (*p < e && **p >= '0' && **p <= '9') {
        uint64_t d = (uint64_t)(**p - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
        (*p)++;
    }
    *out = n;
    return *p > s;
}

enum pt_range_verdict pt_range_parse(struct pt_str value, uint64_t len, struct pt_byte_range *r)
{
    struct pt_str v = pt_str_trim_ows(value);
    if (v.ptr == NULL || v.len < 6 || !pt_str_case_eq_lit(pt_str_make(v.ptr, 6), "bytes="))
        return PT_RANGE_IGNORE;
    const char *p = v.ptr + 6, *e = v.ptr + v.len;
    size_t nspec = 0;
    bool suffix = false;
    uint64_t a = 0, b = UINT64_MAX;
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++; /* OWS and the empty elements the list rule allows */
        if (p == e)
            break;
        if (++nspec > 1)
            return PT_RANGE_IGNORE; /* several ranges: answered in full */
        if (*p == '-') {            /* suffix-range */
            p++;
            suffix = true;
            if (!range_num(&p, e, &a))
                return PT_RANGE_IGNORE;
        } else { /* int-range */
            if (!range_num(&p, e, &a) || p == e || *p != '-')
                return PT_RANGE_IGNORE;
            p++;
            if (p < e && *p >= '0' && *p <= '9') {
                range_num(&p, e, &b);
                if (b < a)
                    return PT_RANGE_IGNORE; /* invalid (§14.1.1) */
            }
        }
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (p < e && *p != ',')
            return PT_RANGE_IGNORE;
    }
    if (nspec != 1)
        return PT_RANGE_IGNORE;
    if (suffix) {
        if (a == 0)
            return PT_RANGE_UNSATISFIABLE;
        if (len == 0)
            return PT_RANGE_IGNORE;
        r->first = a >= len ? 0 : len - a;
        r->last = len - 1;
        return PT_RANGE_PARTIAL;
    }
    if (a >= len)
        return PT_RANGE_UNSATISFIABLE;
    r->first = a;
    r->last = b >= len ? len - 1 : b;
    return PT_RANGE_PARTIAL;
}

bool pt_if_range_match(struct pt_str value, struct pt_str etag, bool has_lm, int64_t lm_s,
                       bool has_date, int64_t date_s)
{
    struct pt_str v = pt_str_trim_ows(value);
    if (v.ptr == NULL || v.len == 0)
        return false;
    if (v.ptr[0] == '"' || (v.len >= 2 && v.ptr[0] == 'W' && v.ptr[1] == '/')) {
        struct pt_str a, b;
        bool wa, wb;
        if (pt_etag_parse(v, &a, &wa) != 0 || pt_etag_parse(etag, &b, &wb) != 0)
            return false;
        return !wa && !wb && pt_str_eq(a, b); /* strong comparison (§8.8.3.2) */
    }
    int64_t t;
    if (!has_lm || pt_http_date_parse(v, &t) != 0 || t != lm_s)
        return false;
    /* §8.8.2.2: Last-Modified is strong only when the origin's Date is at least a second later */
    return has_date && lm_s <= INT64_MAX - 1 && date_s >= lm_s + 1;
}

bool pt_cache_is_range_field(struct pt_str name)
{
    return (name.len == 5 && pt_str_case_eq_lit(name, "range")) ||
           (name.len == 8 && pt_str_case_eq_lit(name, "if-range"));
}

/* The first valid HTTP-date among st's fields named name. */
static bool stored_date(const struct pt_h1_header *st, size_t nst, struct pt_str name, int64_t *out)
{
    const struct pt_h1_header *h = pt_h1_find_header(st, nst, name);
    return h != NULL && pt_http_date_parse(h->value, out) == 0;
}

enum pt_range_verdict pt_cache_range(const struct pt_h1_header *req, size_t n,
                                     const struct pt_h1_header *st, size_t nst, uint64_t len,
                                     struct pt_byte_range *r)
{
    size_t nrange = 0, nif = 0;
    struct pt_str range = PT_STR_NULL, if_range = PT_STR_NULL;
    for (size_t i = 0; i < n; i++) {
        struct pt_str name = req[i].name;
        if (name.len == 5 && pt_str_case_eq_lit(name, "range")) {
            nrange++;
            range = req[i].value;
        } else if (name.len == 8 && pt_str_case_eq_lit(name, "if-range")) {
            nif++;
            if_range = req[i].value;
        }
    }
    if (nrange != 1 || nif > 1)
        return PT_RANGE_IGNORE;
    struct pt_byte_range br;
    enum pt_range_verdict v = pt_range_parse(range, len, &br);
    if (v == PT_RANGE_IGNORE)
        return v;
    if (nif == 1) {
        const struct pt_h1_header *et = pt_h1_find_header(st, nst, PT_STR_LIT("ETag"));
        int64_t lm = 0, date = 0;
        bool has_lm = stored_date(st, nst, PT_STR_LIT("Last-Modified"), &lm);
        bool has_date = stored_date(st, nst, PT_STR_LIT("Date"), &date);
        if (!pt_if_range_match(if_range, et != NULL ? et->value : PT_STR_NULL, has_lm, lm, has_date,
                               date))
            return PT_RANGE_IGNORE;
    }
    if (v == PT_RANGE_PARTIAL)
        *r = br;
    return v;
}

/*
 * Fields a 304 never updates (RFC 9111 §3.1, §3.2): framing and the other
 * hop-by-hop fields, Age (recomputed), the request id.
 */
static bool merge_skipped(struct pt_str n, struct pt_str skip)
{
    return pt_str_case_eq_lit(n, "content-length") || pt_str_case_eq_lit(n, "transfer-encoding") ||
           pt_str_case_eq_lit(n, "age") || pt_str_case_eq_lit(n, "connection") ||
           pt_str_case_eq_lit(n, "keep-alive") || pt_str_case_eq_lit(n, "proxy-connection") ||
           pt_str_case_eq_lit(n, "te") || pt_str_case_eq_lit(n, "trailer") ||
           pt_str_case_eq_lit(n, "upgrade") || (skip.len > 0 && pt_str_case_eq(n, skip));
}

size_t pt_cache_merge_headers(const struct pt_h1_header *st, size_t nst,
                              const struct pt_h1_header *upd, size_t nupd, struct pt_str skip,
                              struct pt_h1_header *out)
{
    size_t k = 0;
    for (size_t i = 0; i < nst; i++) {
        bool replaced = false;
        for (size_t j = 0; j < nupd && !replaced; j++)
            replaced = pt_str_case_eq(st[i].name, upd[j].name) && !merge_skipped(upd[j].name, skip);
        if (!replaced)
            out[k++] = st[i];
    }
    for (size_t j = 0; j < nupd; j++)
        if (!merge_skipped(upd[j].name, skip))
            out[k++] = upd[j];
    return k;
}

/* ---- responses ---- */

static bool list_has_star(struct pt_str v)
{
    const char *p = v.ptr, *e = v.ptr + v.len;
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < e && *p != ',')
            p++;
        struct pt_str item = pt_str_trim_ows(pt_str_make(s, (size_t)(p - s)));
        if (item.len == 1 && item.ptr[0] == '*')
            return true;
    }
    return false;
}

void pt_cache_response_info(const struct pt_h1_header *hs, size_t n,
                            struct pt_cache_response_info *ri)
{
    memset(ri, 0, sizeof(*ri));
    for (size_t i = 0; i < n; i++) {
        struct pt_str name = hs[i].name, v = hs[i].value;
        switch (name.len) {
        case 3:
            if (pt_str_case_eq_lit(name, "age")) {
                uint32_t a;
                if (parse_delta(pt_str_trim_ows(v), &a) == 0) {
                    ri->has_age = true;
                    ri->age_s = a;
                }
            }
            break;
        case 4:
            if (pt_str_case_eq_lit(name, "date")) {
                ri->has_date = pt_http_date_parse(v, &ri->date_s) == 0;
            } else if (pt_str_case_eq_lit(name, "etag")) {
                struct pt_str tag;
                bool weak;
                ri->has_etag = pt_etag_parse(v, &tag, &weak) == 0;
            } else if (pt_str_case_eq_lit(name, "vary"))
                ri->vary_star |= list_has_star(v);
            break;
        case 7:
            if (pt_str_case_eq_lit(name, "expires")) {
                ri->has_expires = true;
                ri->expires_invalid = pt_http_date_parse(v, &ri->expires_s) != 0;
            }
            break;
        case 10:
            if (pt_str_case_eq_lit(name, "set-cookie"))
                ri->has_set_cookie = true;
            break;
        case 13:
            if (pt_str_case_eq_lit(name, "cache-control"))
                pt_cache_control_parse(v, &ri->cc);
            else if (pt_str_case_eq_lit(name, "last-modified"))
                ri->has_last_modified = pt_http_date_parse(v, &ri->last_modified_s) == 0;
            break;
        default:
            break;
        }
    }
}

static const char *const verdict_names[PT_CACHE_VERDICT_COUNT] = {
    "storable",  "no-store", "private",       "no-cache",  "set-cookie",
    "vary-star", "status",   "authorization", "not-fresh",
};

const char *pt_cache_verdict_name(enum pt_cache_verdict v)
{
    return (unsigned)v < PT_CACHE_VERDICT_COUNT ? verdict_names[v] : "?";
}

enum pt_cache_verdict pt_cache_storable(const struct pt_cache_response_info *ri, bool authorized)
{
    unsigned f = ri->cc.flags;
    if (f & PT_CC_NO_STORE)
        return PT_CACHE_NO_STORE;
    if (f & PT_CC_PRIVATE)
        return PT_CACHE_PRIVATE;
    /* no-cache: stored only to be revalidated, which needs a validator */
    if ((f & PT_CC_NO_CACHE) &&
        ((f & PT_CC_NO_CACHE_FIELDS) || !(ri->has_etag || ri->has_last_modified)))
        return PT_CACHE_NO_CACHE;
    if (ri->has_set_cookie)
        return PT_CACHE_SET_COOKIE;
    if (ri->vary_star)
        return PT_CACHE_VARY_STAR;
    if (authorized && !(f & (PT_CC_PUBLIC | PT_CC_S_MAXAGE | PT_CC_MUST_REVALIDATE)))
        return PT_CACHE_AUTHORIZATION;
    return PT_CACHE_STORABLE;
}

uint64_t pt_cache_freshness_ms(const struct pt_cache_response_info *ri, int64_t now_s,
                               uint64_t default_ms)
{
    const struct pt_cache_control *cc = &ri->cc;
    if (cc->flags & PT_CC_S_MAXAGE)
        return (uint64_t)cc->s_maxage * 1000;
    if (cc->flags & PT_CC_MAX_AGE)
        return (uint64_t)cc->max_age * 1000;
    if (ri->has_expires) {
        if (ri->expires_invalid) /* "0", "-1": already expired (RFC 9111 §5.3) */
            return 0;
        int64_t date = ri->has_date ? ri->date_s : now_s;
        return ri->expires_s > date ? (uint64_t)(ri->expires_s - date) * 1000 : 0;
    }
    return default_ms;
}

uint64_t pt_cache_initial_age_s(const struct pt_cache_response_info *ri, int64_t now_s)
{
    uint64_t apparent = ri->has_date && now_s > ri->date_s ? (uint64_t)(now_s - ri->date_s) : 0;
    uint64_t age = ri->has_age ? ri->age_s : 0;
    return apparent > age ? apparent : age;
}

/* ---- keys ---- */

static int put(struct pt_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    return pt_buf_append(b, p, n, SIZE_MAX);
}

static int put_sep(struct pt_buf *b)
{
    return put(b, "", 1);
}

/* Every value of header `name`, joined by ", " (in field order). */
static int put_header_values(struct pt_buf *b, const struct pt_h1_header *hs, size_t n,
                             struct pt_str name)
{
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!pt_str_case_eq(hs[i].name, name))
            continue;
        if (!first && put(b, ", ", 2) != 0)
            return PT_ERR_NOMEM;
        first = false;
        if (put(b, hs[i].value.ptr, hs[i].value.len) != 0)
            return PT_ERR_NOMEM;
    }
    /* a present-but-empty field differs from an absent one */
    if (!first && put(b, "\x01", 1) != 0)
        return PT_ERR_NOMEM;
    return 0;
}

static int put_lower(struct pt_buf *b, struct pt_str s)
{
    char *p = pt_buf_reserve(b, s.len, SIZE_MAX);
    if (p == NULL && s.len > 0)
        return PT_ERR_NOMEM;
    for (size_t i = 0; i < s.len; i++)
        p[i] = pt_tolower_ascii(s.ptr[i]);
    pt_buf_commit(b, s.len);
    return 0;
}

struct pt_str pt_cache_cookie(const struct pt_h1_header *hs, size_t n, struct pt_str name)
{
    for (size_t i = 0; i < n; i++) {
        if (!pt_str_case_eq_lit(hs[i].name, "cookie"))
            continue;
        const char *p = hs[i].value.ptr, *e = p + hs[i].value.len;
        while (p < e) {
            while (p < e && (*p == ' ' || *p == ';' || *p == '\t'))
                p++;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            const char *semi = memchr(p, ';', (size_t)(e - p));
            if (eq == NULL || (semi != NULL && semi < eq)) {
                p = semi != NULL ? semi : e;
                continue;
            }
            const char *end = semi != NULL ? semi : e;
            if ((size_t)(eq - p) == name.len && memcmp(p, name.ptr, name.len) == 0)
                return pt_str_trim_ows(pt_str_make(eq + 1, (size_t)(end - eq - 1)));
            p = end;
        }
    }
    return PT_STR_NULL;
}

int pt_cache_key_build(const struct pt_cache_key_input *in, struct pt_buf *out, size_t *path_off)
{
    if (put(out, in->route.ptr, in->route.len) != 0 || put_sep(out) != 0 ||
        put(out, in->method.ptr, in->method.len) != 0 || put_sep(out) != 0 ||
        put_lower(out, in->host) != 0 || put_sep(out) != 0)
        return PT_ERR_NOMEM;
    *path_off = pt_buf_len(out);
    if (put(out, in->path.ptr, in->path.len) != 0)
        return PT_ERR_NOMEM;
    if (in->has_query && (put(out, "?", 1) != 0 || put(out, in->query.ptr, in->query.len) != 0))
        return PT_ERR_NOMEM;
    if (put_sep(out) != 0)
        return PT_ERR_NOMEM;
    for (size_t i = 0; i < in->nvary; i++) {
        struct pt_str name = pt_str_cstr(in->vary[i]);
        if (put(out, "v", 1) != 0 || put_lower(out, name) != 0 || put(out, "=", 1) != 0 ||
            put_header_values(out, in->headers, in->nheaders, name) != 0 || put_sep(out) != 0)
            return PT_ERR_NOMEM;
    }
    for (size_t i = 0; i < in->nparts; i++) {
        const struct pt_cache_key_part *kp = &in->parts[i];
        int r = 0;
        switch (kp->kind) {
        case PT_CACHE_KEY_CONSUMER:
            r = put(out, "c=", 2) || put(out, in->consumer.ptr, in->consumer.len);
            break;
        case PT_CACHE_KEY_QUERY:
            continue; /* already in */
        case PT_CACHE_KEY_HEADER:
            r = put(out, "h", 1) || put_lower(out, pt_str_cstr(kp->name)) || put(out, "=", 1) ||
                put_header_values(out, in->headers, in->nheaders, pt_str_cstr(kp->name));
            break;
        case PT_CACHE_KEY_COOKIE: {
            struct pt_str v = pt_cache_cookie(in->headers, in->nheaders, pt_str_cstr(kp->name));
            r = put(out, "k", 1) || put(out, kp->name, strlen(kp->name)) || put(out, "=", 1) ||
                put(out, v.ptr, v.len);
            break;
        }
        default:
            continue;
        }
        if (r != 0 || put_sep(out) != 0)
            return PT_ERR_NOMEM;
    }
    return 0;
}

int pt_cache_vary_signature(const struct pt_h1_header *resp, size_t nresp,
                            const struct pt_h1_header *req, size_t nreq, struct pt_buf *out)
{
    for (size_t i = 0; i < nresp; i++) {
        if (!pt_str_case_eq_lit(resp[i].name, "vary"))
            continue;
        const char *p = resp[i].value.ptr, *e = p + resp[i].value.len;
        while (p < e) {
            while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < e && *p != ',')
                p++;
            struct pt_str name = pt_str_trim_ows(pt_str_make(s, (size_t)(p - s)));
            if (name.len == 0)
                continue;
            if (put_lower(out, name) != 0 || put(out, ":", 1) != 0 ||
                put_header_values(out, req, nreq, name) != 0 || put_sep(out) != 0)
                return PT_ERR_NOMEM;
        }
    }
    return 0;
}

uint64_t pt_cache_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    /* FNV's low bits are weak: mix (splitmix64 finaliser) before we take shard and bucket bits */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}
