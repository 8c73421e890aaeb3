/* status.c — status names and the per-thread error message. */
#include <stdarg.h>
#include <stdio.h>

#include "graph/internal.h"

static _Thread_local char last_error[1024];

static const char *const status_names[] = {
    [LG_OK] = "LG_OK",
    [LG_ERR_INVALID_ARGUMENT] = "LG_ERR_INVALID_ARGUMENT",
    [LG_ERR_SHAPE] = "LG_ERR_SHAPE",
    [LG_ERR_DTYPE] = "LG_ERR_DTYPE",
    [LG_ERR_GRAPH] = "LG_ERR_GRAPH",
    [LG_ERR_FEED] = "LG_ERR_FEED",
    [LG_ERR_RUNTIME] = "LG_ERR_RUNTIME",
    [LG_ERR_UNSUPPORTED] = "LG_ERR_UNSUPPORTED",
    [LG_ERR_OUT_OF_MEMORY] = "LG_ERR_OUT_OF_MEMORY",
    [LG_ERR_IO] = "LG_ERR_IO",
};
_Static_assert(LG_ARRAY_LEN(status_names) == LG_STATUS_COUNT, "a status without a name");

const char *lg_status_name(lg_status s)
{
    if ((int)s < 0 || s >= LG_STATUS_COUNT) return "LG_STATUS_UNKNOWN";
    return status_names[s];
}

const char *lg_last_error(void) { return last_error; }

lg_status lg_fail(lg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}
