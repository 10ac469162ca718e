/*
 * Parsing path patterns (see router.h for the grammar).
 *
 * A pattern other than a regex is first normalised exactly like a request
 * path, so that "/a/./b" and "/a/b" are the same route and a static segment
 * compares byte for byte with a normalised request segment.  It is then
 * split on '/': every segment is static text, "{name}", or, last only,
 * "*" or "{name*}".  Regexes are compiled with PCRE2 and JIT-compiled when
 * the platform allows; their named groups become the captures.
 */
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "router/path.h"
#include "router/router-int.h"

static bool is_capture_char(unsigned char c)
{
    return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/*
 * Parse one "{...}" segment (s[0] == '{') into p->caps.  last says whether
 * it is the final segment.  Returns NULL or the problem.
 */
static const char *parse_capture(struct pt_arena *a, const char *s, size_t len, bool last,
                                 struct rt_pat *p, struct rt_cap *caps, bool *rest, char *err,
                                 size_t errlen)
{
    if (s[len - 1] != '}') {
        if (memchr(s, '}', len) != NULL)
            return "mixing static text and a capture in one segment is not supported";
        return "'{' without a matching '}'";
    }
    const char *name = s + 1;
    size_t nlen = len - 2;
    *rest = nlen > 0 && name[nlen - 1] == '*';
    if (*rest)
        nlen--;
    if (nlen == 0)
        return "empty capture name";
    for (size_t i = 0; i < nlen; i++) {
        if (!is_capture_char((unsigned char)name[i])) {
            snprintf(err, errlen,
                     "invalid capture name \"%.*s\" (letters, digits, '_' and '-' only)", (int)nlen,
                     name);
            return err;
        }
    }
    if (*rest && !last) {
        snprintf(err, errlen, "{%.*s*} must be the last segment", (int)nlen, name);
        return err;
    }
    for (uint32_t i = 0; i < p->ncaps; i++) {
        if (caps[i].name.len == nlen && memcmp(caps[i].name.ptr, name, nlen) == 0) {
            snprintf(err, errlen, "duplicate capture name \"%.*s\"", (int)nlen, name);
            return err;
        }
    }
    if (p->ncaps == PT_ROUTER_MAX_CAPTURES)
        return "more than 16 captures";
    char *copy = pt_arena_strndup(a, name, nlen);
    if (copy == NULL)
        return "out of memory";
    caps[p->ncaps++] = (struct rt_cap){pt_str_make(copy, nlen), 0, *rest};
    return NULL;
}

static const char *static_segment_problem(const char *s, size_t len)
{
    bool open = memchr(s, '{', len) != NULL, close = memchr(s, '}', len) != NULL;
    if (open && close)
        return "mixing static text and a capture in one segment is not supported";
    if (open)
        return "'{' without a matching '}'";
    if (close)
        return "'}' without a matching '{'";
    if (memchr(s, '*', len) != NULL)
        return "'*' is only allowed as a whole last segment (\"/a/*\")";
    return NULL;
}

/*
 * Parse a non-regex pattern text[0..tlen) into p (segments and captures in
 * arena a).  Returns NULL or the problem (static text, or written to err).
 */
static const char *parse_trie(struct pt_arena *a, const char *text, size_t tlen, struct rt_pat *p,
                              char *err, size_t errlen)
{
    char *norm = pt_arena_alloc(a, tlen + 1);
    if (norm == NULL)
        return "out of memory";
    ssize_t n = pt_path_normalize(text, tlen, norm);
    if (n == PT_PATH_INVALID)
        return "not a valid path (a bad %-escape, or a byte outside 0x21-0x7E)";
    if (n == PT_PATH_ESCAPES_ROOT)
        return "\"..\" climbs above the root";
    norm[n] = '\0';
    p->text = norm;

    size_t nseg = 0;
    for (ssize_t i = 0; i < n; i++)
        nseg += norm[i] == '/';
    if (nseg > PT_ROUTER_MAX_SEGMENTS)
        return "too many segments (at most 64)";
    struct rt_seg *segs = pt_arena_alloc(a, nseg * sizeof(*segs));
    struct rt_cap caps[PT_ROUTER_MAX_CAPTURES];
    if (segs == NULL)
        return "out of memory";
    p->segs = segs;
    p->ncaps = 0;
    bool wild = false, param = false;
    const char *s = norm + 1, *end = norm + n;
    for (size_t k = 0; k < nseg; k++) {
        const char *e = memchr(s, '/', (size_t)(end - s));
        if (e == NULL)
            e = end;
        size_t len = (size_t)(e - s);
        bool last = e == end;
        const char *problem = NULL;
        if (len == 1 && s[0] == '*') {
            if (!last)
                return "'*' must be the last segment";
            wild = true;
        } else if (len > 0 && s[0] == '{') {
            bool rest;
            problem = parse_capture(a, s, len, last, p, caps, &rest, err, errlen);
            if (problem != NULL)
                return problem;
            if (rest) {
                caps[p->ncaps - 1].pos = p->nsegs;
                wild = true;
            } else {
                caps[p->ncaps - 1].pos = p->nsegs;
                segs[p->nsegs++] = (struct rt_seg){NULL, 0};
                param = true;
            }
        } else {
            if ((problem = static_segment_problem(s, len)) != NULL)
                return problem;
            segs[p->nsegs++] = (struct rt_seg){s, (uint32_t)len};
            p->nstatic++;
            if (!param)
                p->nlead++;
        }
        s = e + 1;
    }
    p->kind = wild ? RT_PREFIX : param ? RT_PARAM : RT_EXACT;
    if (p->ncaps > 0) {
        p->caps = pt_arena_alloc(a, p->ncaps * sizeof(*caps));
        if (p->caps == NULL)
            return "out of memory";
        memcpy(p->caps, caps, p->ncaps * sizeof(*caps));
    }
    return NULL;
}

/* Compile a regex pattern (text after "~" and blanks). */
static const char *parse_regex(struct pt_arena *a, const char *re, size_t len, struct rt_pat *p,
                               char *err, size_t errlen)
{
    if (len == 0)
        return "empty regex after '~'";
    char *src = pt_arena_strndup(a, re, len);
    if (src == NULL)
        return "out of memory";
    p->text = src;
    p->kind = RT_REGEX;
    int code;
    PCRE2_SIZE off;
    p->re = pcre2_compile((PCRE2_SPTR)src, len, 0, &code, &off, NULL);
    if (p->re == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        snprintf(err, errlen, "bad regex: %s at offset %zu", (char *)msg, (size_t)off);
        return err;
    }
    /* Without JIT support the interpreter runs the same pattern: not an error. */
    (void)pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    uint32_t ngroups = 0, nnames = 0, entsize = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(p->re, PCRE2_INFO_CAPTURECOUNT, &ngroups);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMECOUNT, &nnames);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMEENTRYSIZE, &entsize);
    pcre2_pattern_info(p->re, PCRE2_INFO_NAMETABLE, &table);
    p->pairs = ngroups + 1;
    if (nnames > PT_ROUTER_MAX_CAPTURES)
        return "more than 16 named groups";
    if (nnames > 0) {
        p->caps = pt_arena_alloc(a, nnames * sizeof(*p->caps));
        if (p->caps == NULL)
            return "out of memory";
    }
    for (uint32_t i = 0; i < nnames; i++) {
        PCRE2_SPTR ent = table + (size_t)i * entsize;
        const char *name = (const char *)ent + 2;
        size_t nlen = strlen(name);
        char *copy = pt_arena_strndup(a, name, nlen);
        if (copy == NULL)
            return "out of memory";
        p->caps[p->ncaps++] =
            (struct rt_cap){pt_str_make(copy, nlen), (uint32_t)ent[0] << 8 | ent[1], false};
    }
    return NULL;
}

const char *pt__router_parse_pattern(struct pt_arena *a, const char *text, struct rt_pat *p,
                                     char *err, size_t errlen)
{
    if (text == NULL || (text[0] != '/' && text[0] != '~'))
        return "must start with '/' or '~'";
    if (text[0] == '~') {
        const char *re = text + 1;
        while (*re == ' ' || *re == '\t')
            re++;
        return parse_regex(a, re, strlen(re), p, err, errlen);
    }
    return parse_trie(a, text, strlen(text), p, err, errlen);
}

int pt_router_pattern_has_capture(const char *pattern, const char *name)
{
    struct pt_arena a;
    struct rt_pat p = {0};
    char err[256];
    int ret = -1;
    pt_arena_init(&a);
    if (pt__router_parse_pattern(&a, pattern, &p, err, sizeof(err)) == NULL) {
        ret = 0;
        for (uint32_t i = 0; i < p.ncaps; i++)
            if (name != NULL && strcmp(p.caps[i].name.ptr, name) == 0)
                ret = 1;
    }
    pcre2_code_free(p.re);
    pt_arena_destroy(&a);
    return ret;
}
