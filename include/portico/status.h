/*
 * Status codes shared by every layer.
 *
 * 0 is success and negative values are failures, in the style of libuv.
 * Parsers return the number of bytes consumed (>= 0) or one of the two
 * PT_PARSE_* values.  Asynchronous steps may return PT_AGAIN ("call me again
 * when the socket is ready") or PT_DECLINED ("not mine, try the next one").
 */
#ifndef PORTICO_STATUS_H
#define PORTICO_STATUS_H

enum {
    PT_OK = 0,
    PT_PARSE_INVALID = -1, /* the input can never become valid */
    PT_PARSE_PARTIAL = -2, /* valid so far; more bytes are needed */
    PT_ERR = -3,           /* generic failure, details logged by the callee */
    PT_ERR_NOMEM = -4,
    PT_ERR_IO = -5,
    PT_ERR_TIMEOUT = -6,
    PT_ERR_TOO_LARGE = -7,
    PT_ERR_NOT_FOUND = -8,
    PT_AGAIN = -9,
    PT_DECLINED = -10,
    PT_ERR_CLOSED = -11,
};

#endif
