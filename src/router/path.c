/*
 * Request-path normalisation (see path.h for the rules).
 *
 * One left-to-right pass, writing behind the read position: every step
 * writes at most as many bytes as it consumes (an escape is kept at three
 * bytes or shrinks to one, a dot segment or a repeated '/' shrinks to
 * nothing), so the write index never overtakes the read index and the
 * caller may pass out == in.  Each segment is copied (and decoded) first and
 * only then checked for being "." or "..", which is what makes "%2e%2E"
 * count as "..".  A ".." pops the previous output segment; popping the root
 * is PT_PATH_ESCAPES_ROOT rather than a silent clamp, because a client that
 * sends it is probing for a traversal.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/compiler.h"
#include "core/str.h"
#include "router/path.h"

/* Value of a hex digit, or -1. */
static inline char hexupper(char c)
{
    return (c >= 'a' && c <= 'f') ? (char)(c - ('a' - 'A')) : c;
}

/* RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
static inline bool unreserved(unsigned char c)
{
    unsigned char l = c | 0x20;
    return (l >= 'a' && l <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* Visible ASCII, the only bytes a request path may carry. */
static inline bool visible(unsigned char c)
{
    return (unsigned char)(c - 0x21) <= 0x7e - 0x21;
}

ssize_t pt_path_normalize(const char *in, size_t len, char *out)
{
    if (len == 0 || in[0] != '/')
        return PT_PATH_INVALID;
    size_t i = 1, w = 1;
    out[0] = '/';
    /* Invariant at the top of the loop: out[w - 1] == '/' and w <= i. */
    while (i < len) {
        size_t seg = w;
        while (i < len) {
            unsigned char c = (unsigned char)in[i];
            if (c == '/')
                break;
            if (c == '%') {
                if (pt_unlikely(len - i < 3))
                    return PT_PATH_INVALID;
                char a = in[i + 1], b = in[i + 2];
                int hi = pt_hexval(a), lo = pt_hexval(b);
                if (pt_unlikely(hi < 0 || lo < 0))
                    return PT_PATH_INVALID;
                unsigned char d = (unsigned char)(hi << 4 | lo);
                if (unreserved(d)) {
                    out[w++] = (char)d;
                } else {
                    out[w++] = '%';
                    out[w++] = hexupper(a);
                    out[w++] = hexupper(b);
                }
                i += 3;
                continue;
            }
            if (pt_unlikely(!visible(c)))
                return PT_PATH_INVALID;
            out[w++] = (char)c;
            i++;
        }
        size_t seglen = w - seg;
        if (seglen == 1 && out[seg] == '.') {
            w = seg; /* "." : drop it, keep the '/' before it */
        } else if (seglen == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg == 1)
                return PT_PATH_ESCAPES_ROOT;
            /* out[seg - 1] is the '/' ending the previous segment: pop that segment */
            size_t k = seg - 1;
            while (out[k - 1] != '/')
                k--;
            w = k;
        }
        if (i < len) {
            i++; /* the '/' */
            if (out[w - 1] != '/')
                out[w++] = '/';
        }
    }
    return (ssize_t)w;
}
