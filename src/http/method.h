/*
 * Request methods.  The well-known ones get a bit each so that routes can
 * keep their allowed methods in a mask; any other token is PT_METHOD_OTHER
 * and is compared by name.
 */
#ifndef PT_HTTP_METHOD_H
#define PT_HTTP_METHOD_H

#include <stdint.h>

#include "core/str.h"

enum pt_method {
    PT_METHOD_OTHER = 0,
    PT_METHOD_GET,
    PT_METHOD_HEAD,
    PT_METHOD_POST,
    PT_METHOD_PUT,
    PT_METHOD_DELETE,
    PT_METHOD_PATCH,
    PT_METHOD_OPTIONS,
    PT_METHOD_TRACE,
    PT_METHOD_CONNECT,
    PT_METHOD_COUNT
};

#define PT_METHOD_BIT(m) (1u << (m))

/** Map a method token (case-sensitive, as HTTP requires) to its enum. */
enum pt_method pt_method_from_str(struct pt_str s);

/** Canonical name of a known method ("GET"); "" for PT_METHOD_OTHER. */
const char *pt_method_name(enum pt_method m);

/** Idempotent per RFC 9110 §9.2.2 (GET HEAD PUT DELETE OPTIONS TRACE). */
static inline int pt_method_idempotent(enum pt_method m)
{
    return m == PT_METHOD_GET || m == PT_METHOD_HEAD || m == PT_METHOD_PUT ||
           m == PT_METHOD_DELETE || m == PT_METHOD_OPTIONS || m == PT_METHOD_TRACE;
}

#endif
