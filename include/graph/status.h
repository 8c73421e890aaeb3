/*
 * status.h — how loopgrad reports errors.
 *
 * Two channels, used deliberately:
 *
 *   - Builders (lg_add, lg_matmul, ...) never fail loudly. Given bad input they
 *     record an error on the graph (read it with lg_graph_error()), return an
 *     invalid value, and every later builder that receives an invalid value
 *     propagates it. Compile and run refuse a graph that has an error.
 *
 *   - Everything else (tensor creation, compile, run, gradcheck) returns an
 *     lg_status. LG_OK is zero. On failure the call also leaves a message for
 *     the calling thread that names what was wrong (the node, the op, the
 *     shapes); read it with lg_last_error().
 *
 * Example:
 *
 *     lg_tensor *out = NULL;
 *     lg_status s = lg_graph_run(g, feeds, 1, &loss, 1, &out);
 *     if (s != LG_OK) fprintf(stderr, "%s: %s\n", lg_status_name(s), lg_last_error());
 *
 * The library never calls exit() or abort() on user input. Broken internal
 * invariants (bugs in loopgrad itself) go through LG_ASSERT, which prints
 * file:line and the expression and then aborts.
 */
#ifndef LG_STATUS_H
#define LG_STATUS_H

#include "api.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef enum lg_status {
    LG_OK = 0,
    LG_ERR_INVALID_ARGUMENT, /* NULL handle, bad option, value from another graph */
    LG_ERR_SHAPE,            /* shapes that do not fit together */
    LG_ERR_DTYPE,            /* a dtype the op does not take */
    LG_ERR_GRAPH,            /* the graph carries a builder error */
    LG_ERR_FEED,             /* a missing feed, or one of the wrong shape or dtype */
    LG_ERR_RUNTIME,          /* a kernel found bad data, e.g. an index out of range */
    LG_ERR_UNSUPPORTED,      /* the op has no kernel on this backend */
    LG_ERR_OUT_OF_MEMORY,
    LG_ERR_IO,
    LG_STATUS_COUNT
} lg_status;

/* A short constant name for the code, e.g. "LG_ERR_SHAPE". */
const char *lg_status_name(lg_status s);

/* The message of the last failed call on this thread ("" if none). The
 * pointer stays valid until the next failing call on the same thread. */
const char *lg_last_error(void);

/* For code built on loopgrad (custom layers and cells, tools such as
 * libloopgrad_viz) that reports errors the same way: record the message
 * (printf format) for lg_last_error() on this thread and return s. */
lg_status lg_fail(lg_status s, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
