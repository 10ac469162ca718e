#include "http/method.h"

static const char *const names[PT_METHOD_COUNT] = {
    "", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
};

enum pt_method pt_method_from_str(struct pt_str s)
{
    switch (s.len) {
    case 3:
        if (pt_str_eq_lit(s, "GET"))
            return PT_METHOD_GET;
        if (pt_str_eq_lit(s, "PUT"))
            return PT_METHOD_PUT;
        break;
    case 4:
        if (pt_str_eq_lit(s, "POST"))
            return PT_METHOD_POST;
        if (pt_str_eq_lit(s, "HEAD"))
            return PT_METHOD_HEAD;
        break;
    case 5:
        if (pt_str_eq_lit(s, "PATCH"))
            return PT_METHOD_PATCH;
        if (pt_str_eq_lit(s, "TRACE"))
            return PT_METHOD_TRACE;
        break;
    case 6:
        if (pt_str_eq_lit(s, "DELETE"))
            return PT_METHOD_DELETE;
        break;
    case 7:
        if (pt_str_eq_lit(s, "OPTIONS"))
            return PT_METHOD_OPTIONS;
        if (pt_str_eq_lit(s, "CONNECT"))
            return PT_METHOD_CONNECT;
        break;
    }
    return PT_METHOD_OTHER;
}

const char *pt_method_name(enum pt_method m)
{
    return (unsigned)m < PT_METHOD_COUNT ? names[m] : "";
}
