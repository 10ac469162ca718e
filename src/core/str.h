/*
 * String views.  A struct pt_str points into memory owned by someone else (a
 * connection buffer, a request arena, the configuration snapshot) and is never
 * assumed to be NUL-terminated.
 */
#ifndef PT_CORE_STR_H
#define PT_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct pt_str {
    const char *ptr;
    size_t len;
};

#define PT_STR_LIT(s) ((struct pt_str){(s), sizeof(s) - 1})
#define PT_STR_NULL   ((struct pt_str){NULL, 0})
#define PT_STR_FMT(s) (int)(s).len, (s).ptr /* for "%.*s" */

static inline struct pt_str pt_str_make(const char *p, size_t n)
{
    return (struct pt_str){p, n};
}

static inline struct pt_str pt_str_cstr(const char *s)
{
    return (struct pt_str){s, s == NULL ? 0 : strlen(s)};
}

static inline bool pt_str_eq(struct pt_str a, struct pt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool pt_str_eq_lit_n(struct pt_str a, const char *lit, size_t n)
{
    return a.len == n && memcmp(a.ptr, lit, n) == 0;
}
#define pt_str_eq_lit(a, lit) pt_str_eq_lit_n((a), (lit), sizeof(lit) - 1)

static inline char pt_tolower_ascii(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/** ASCII case-insensitive comparison (header names, schemes, hosts). */
static inline bool pt_str_case_eq(struct pt_str a, struct pt_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++)
        if (pt_tolower_ascii(a.ptr[i]) != pt_tolower_ascii(b.ptr[i]))
            return false;
    return true;
}

/** Case-insensitive comparison against a literal that is already lower case. */
static inline bool pt_str_case_eq_lower_n(struct pt_str a, const char *lower, size_t n)
{
    if (a.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (pt_tolower_ascii(a.ptr[i]) != lower[i])
            return false;
    return true;
}
#define pt_str_case_eq_lit(a, lit) pt_str_case_eq_lower_n((a), (lit), sizeof(lit) - 1)

static inline bool pt_str_starts_with(struct pt_str s, struct pt_str prefix)
{
    return s.len >= prefix.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

/** Trim optional whitespace (SP / HTAB) on both sides, as HTTP field values allow. */
static inline struct pt_str pt_str_trim_ows(struct pt_str s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/** Write v in decimal at p (no NUL); returns the number of characters (at most 20). */
static inline size_t pt_fmt_u64(char *p, unsigned long long v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/** Write v in lower-case hex at p (no NUL); returns the number of characters (at most 16). */
static inline size_t pt_fmt_hex(char *p, unsigned long long v)
{
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/** Copy a string literal to p; evaluates to the number of bytes. */
#define PT_PUT_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), sizeof(lit) - 1)

/** The value of one hexadecimal digit, or -1 when c is not one. */
static inline int pt_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
