/*
 * Chunked transfer coding decoder (RFC 9112 §7.1).
 *
 *   chunked-body   = *chunk last-chunk trailer-section CRLF
 *   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size     = 1*HEXDIG
 *   last-chunk     = 1*("0") [ chunk-ext ] CRLF
 *   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   chunk-ext-name = token
 *   chunk-ext-val  = token / quoted-string
 *   trailer-section = *( field-line CRLF )
 *
 * A byte-at-a-time state machine for the framing (size lines, CRLFs,
 * trailers), with the payload itself handed back as one view per call so
 * that the bulk of the bytes is never looked at.  All state lives in struct
 * pt_chunked, so input may be split anywhere.
 *
 * Strictness: sizes are 1-16 hex digits and at most INT64_MAX (no "0x", no
 * sign, no whitespace before, none after unless an extension follows, as the
 * grammar says); extensions must match the grammar above, and the size line
 * with them is at most PT_CHUNKED_MAX_LINE bytes; each chunk's data is
 * followed by exactly CRLF; trailer fields follow the header-field rules of
 * the head parser (token name directly followed by ':', no control
 * characters but HTAB in the value, no obs-fold, CRLF only) and the whole
 * trailer section is at most PT_CHUNKED_MAX_TRAILERS bytes.  Trailers are
 * validated and dropped.  After an error the decoder stays failed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "portico/status.h"
#include "core/compiler.h"
#include "http/chunked.h"
#include "http/h1.h"

enum {
    S_SIZE_FIRST = 0, /* first hex digit of a chunk size */
    S_SIZE,           /* more digits, then BWS ";", ";" or CR */
    S_EXT_PRE,        /* BWS before ";" */
    S_EXT_NAME_FIRST, /* after ";": BWS, then the first tchar of a name */
    S_EXT_NAME,       /* in a name */
    S_EXT_AFTER_NAME, /* BWS after a name: "=" or ";" must follow */
    S_EXT_VAL_FIRST,  /* after "=": BWS, then a token or a quoted-string */
    S_EXT_TOKEN,      /* in a token value */
    S_EXT_QUOTED,     /* in a quoted-string */
    S_EXT_QPAIR,      /* after a backslash in a quoted-string */
    S_EXT_AFTER_VAL,  /* after a closing quote */
    S_SIZE_LF,        /* CR seen at the end of the size line */
    S_DATA,           /* remaining payload bytes in this chunk */
    S_DATA_CR,        /* CRLF after the data */
    S_DATA_LF,
    S_TRL_LINE,  /* start of a trailer line, or the final CRLF */
    S_TRL_NAME,  /* in a trailer field name */
    S_TRL_VALUE, /* in a trailer field value */
    S_TRL_LF,    /* CR seen at the end of a trailer line */
    S_FINAL_LF,  /* CR of the final CRLF seen */
    S_DONE,
    S_ERROR,
};

#define MAX_SIZE_DIGITS 16

void pt_chunked_init(struct pt_chunked *c)
{
    c->state = S_SIZE_FIRST;
    c->done = false;
    c->remaining = 0;
    c->line_len = 0;
    c->total = 0;
}

static inline int hex_value(unsigned char ch)
{
    if ((unsigned)(ch - '0') < 10u)
        return ch - '0';
    ch |= 0x20; /* maps 'A'-'F' to 'a'-'f' and nothing else onto them */
    if ((unsigned)(ch - 'a') < 6u)
        return ch - 'a' + 10;
    return -1;
}

static inline bool is_ws(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

/* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
static inline bool is_qdtext(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0x7f);
}

/* HTAB / SP / VCHAR / obs-text: a field value byte, a quoted-pair's second byte */
static inline bool is_field_vchar(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* Where to go after a complete extension value or at the end of a name
 * without a value. */
static inline uint8_t after_ext(unsigned char ch)
{
    if (is_ws(ch))
        return S_EXT_PRE;
    if (ch == ';')
        return S_EXT_NAME_FIRST;
    if (ch == '\r')
        return S_SIZE_LF;
    return S_ERROR;
}

/* One framing byte: the next state, S_ERROR when ch is not allowed. */
static uint8_t step(struct pt_chunked *c, unsigned char ch)
{
    int d;

    switch (c->state) {
    case S_SIZE_FIRST:
        if ((d = hex_value(ch)) < 0)
            return S_ERROR;
        c->remaining = (uint64_t)d;
        return S_SIZE;
    case S_SIZE:
        if ((d = hex_value(ch)) >= 0) {
            /* line_len counts the digits so far, this one included */
            if (c->line_len > MAX_SIZE_DIGITS || (c->remaining >> 59) != 0)
                return S_ERROR;
            c->remaining = (c->remaining << 4) | (uint64_t)d;
            return S_SIZE;
        }
        return after_ext(ch);
    case S_EXT_PRE:
        if (is_ws(ch))
            return S_EXT_PRE;
        return ch == ';' ? S_EXT_NAME_FIRST : S_ERROR;
    case S_EXT_NAME_FIRST:
        if (is_ws(ch))
            return S_EXT_NAME_FIRST;
        return pt_h1_tchar[ch] ? S_EXT_NAME : S_ERROR;
    case S_EXT_NAME:
        if (pt_h1_tchar[ch])
            return S_EXT_NAME;
        if (ch == '=')
            return S_EXT_VAL_FIRST;
        return is_ws(ch) ? S_EXT_AFTER_NAME : after_ext(ch);
    case S_EXT_AFTER_NAME:
        if (is_ws(ch))
            return S_EXT_AFTER_NAME;
        if (ch == '=')
            return S_EXT_VAL_FIRST;
        return ch == ';' ? S_EXT_NAME_FIRST : S_ERROR;
    case S_EXT_VAL_FIRST:
        if (is_ws(ch))
            return S_EXT_VAL_FIRST;
        if (ch == '"')
            return S_EXT_QUOTED;
        return pt_h1_tchar[ch] ? S_EXT_TOKEN : S_ERROR;
    case S_EXT_TOKEN:
        return pt_h1_tchar[ch] ? S_EXT_TOKEN : after_ext(ch);
    case S_EXT_QUOTED:
        if (ch == '"')
            return S_EXT_AFTER_VAL;
        if (ch == '\\')
            return S_EXT_QPAIR;
        return is_qdtext(ch) ? S_EXT_QUOTED : S_ERROR;
    case S_EXT_QPAIR:
        return is_field_vchar(ch) ? S_EXT_QUOTED : S_ERROR;
    case S_EXT_AFTER_VAL:
        return after_ext(ch);
    case S_SIZE_LF:
        if (ch != '\n')
            return S_ERROR;
        c->line_len = 0;
        return c->remaining == 0 ? S_TRL_LINE : S_DATA;
    case S_DATA_CR:
        return ch == '\r' ? S_DATA_LF : S_ERROR;
    case S_DATA_LF:
        if (ch != '\n')
            return S_ERROR;
        c->line_len = 0;
        return S_SIZE_FIRST;
    case S_TRL_LINE:
        if (ch == '\r')
            return S_FINAL_LF;
        return pt_h1_tchar[ch] ? S_TRL_NAME : S_ERROR;
    case S_TRL_NAME:
        if (pt_h1_tchar[ch])
            return S_TRL_NAME;
        return ch == ':' ? S_TRL_VALUE : S_ERROR;
    case S_TRL_VALUE:
        if (ch == '\r')
            return S_TRL_LF;
        return is_field_vchar(ch) ? S_TRL_VALUE : S_ERROR;
    case S_TRL_LF:
        return ch == '\n' ? S_TRL_LINE : S_ERROR;
    case S_FINAL_LF:
        return ch == '\n' ? S_DONE : S_ERROR;
    default:
        return S_ERROR;
    }
}

ssize_t pt_chunked_decode(struct pt_chunked *c, const char *in, size_t len, struct pt_str *data)
{
    *data = pt_str_make(in, 0);
    if (pt_unlikely(c->state == S_ERROR))
        return PT_PARSE_INVALID;
    if (len == 0)
        return 0;

    const char *p = in, *end = in + len;

    while (p < end && c->state != S_DONE) {
        if (c->state == S_DATA) {
            size_t avail = (size_t)(end - p);
            size_t n = c->remaining < avail ? (size_t)c->remaining : avail;
            *data = pt_str_make(p, n);
            c->remaining -= n;
            c->total += n;
            if (c->remaining == 0)
                c->state = S_DATA_CR;
            p += n;
            break;
        }
        /* The size line (with its extensions) and the trailer section are
         * bounded; the CRLF after data is two bytes and resets the count. */
        uint32_t limit = c->state >= S_TRL_LINE ? PT_CHUNKED_MAX_TRAILERS : PT_CHUNKED_MAX_LINE;
        if (++c->line_len > limit) {
            c->state = S_ERROR;
            return PT_PARSE_INVALID;
        }
        c->state = step(c, (unsigned char)*p++);
        if (c->state == S_ERROR)
            return PT_PARSE_INVALID;
    }
    if (c->state == S_DONE)
        c->done = true;
    return (ssize_t)(p - in);
}
