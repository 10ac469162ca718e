/*
 * Private to src/compose: the state of one running composition (run.c) and
 * of each of its calls (call.c).  Everything here lives in the exchange's
 * arena, except the jansson values and response buffers, which the
 * composition's cleanup releases.
 */
#ifndef PT_COMPOSE_RUN_INT_H
#define PT_COMPOSE_RUN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/loop.h"
#include "compose/json.h"
#include "compose/plan.h"
#include "http/h1.h"
#include "http/reqid.h"
#include "upstream/call.h"

struct pt_exchange;
struct pt_compose_run;

enum pt_ccall_state {
    PT_CCALL_WAITING = 0, /* for the calls it depends on */
    PT_CCALL_RUNNING,
    PT_CCALL_DONE, /* succeeded, or failed and settled (fallback / omitted / fatal) */
    PT_CCALL_STATE_COUNT
};

/** One call of a running composition. */
struct pt_ccall {
    struct pt_compose_run *run;
    const struct pt_compose_call *def;
    enum pt_ccall_state state;
    bool failed;     /* the call itself failed (why says how) */
    bool timed_out;  /* failed by a timeout: the composition answers 504 for it */
    const char *why; /* "answered 500", "timed out after 300ms", ... (arena or static) */
    struct pt_upcall up;
    bool up_started;
    struct pt_timer timer; /* the call's own timeout */
    struct pt_traceparent trace;
    struct pt_str target;    /* path and query as sent */
    struct pt_str head_rest; /* header lines after Host */
    struct pt_str body;
    size_t body_off;
    int status;
    enum pt_json_media media;
    struct pt_jbuf resp;          /* response body (malloc) */
    struct pt_h1_header *exposed; /* expose_headers found in the response (arena copies) */
    size_t nexposed;
    json_t *result; /* what dependents read: the body, or the fallback; NULL when none */
    json_t *shown;  /* what the document shows: after fields; NULL when left out */
};

struct pt_compose_run {
    struct pt_exchange *ex;
    const struct pt_aggregate *agg;
    struct pt_ccall *calls;
    struct pt_timer timer; /* the composition's timeout */
    struct pt_defer pump;  /* progress is made here, after the current event batch */
    bool decided;          /* the answer is chosen (or the client left): nothing more runs */
    bool partial;          /* a result was replaced by its fallback or left out */
};

/* call.c */

/**
 * Fill cc's templates and start its upstream call.  A template that cannot
 * be filled fails the call at once (pt_ccall_failed); so may the upcall.
 */
void pt_ccall_start(struct pt_ccall *cc);

/** Stop cc's upcall and timer if they run (no callback follows). */
void pt_ccall_cancel(struct pt_ccall *cc);

/** Release cc's buffers and values. */
void pt_ccall_release(struct pt_ccall *cc);

/* run.c */

/** cc failed (why: how, for the problem detail; timeout: a timeout did it). */
void pt_ccall_failed(struct pt_ccall *cc, const char *why, bool timeout);

/** cc succeeded with result (a new reference, taken). */
void pt_ccall_succeeded(struct pt_ccall *cc, json_t *result);

/** The client's header name, repeated fields joined with ", "; false when absent. */
bool pt__compose_client_header(struct pt_exchange *ex, struct pt_str name, struct pt_str *out);

/** Values for the templates of cc. */
void pt__compose_scope(struct pt_ccall *cc, struct pt_tpl_scope *scope);

#endif
