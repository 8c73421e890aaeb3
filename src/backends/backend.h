/*
 * backend.h — what a backend gives the executor. Private to the library.
 *
 * A backend is a table: one kernel per compute op (NULL where it has none;
 * the executor then reports LG_ERR_UNSUPPORTED naming the op). A kernel gets
 * its node (for attributes and the name in messages) and buffers with
 * concrete shapes; out[] is preallocated by the executor's memory plan and
 * never aliases in[], except that an elementwise op's output (add through
 * stop_gradient in op_list.h) may be the buffer of an input of the output's
 * shape and dtype: such kernels read element i before writing element i.
 */
#ifndef LG_BACKEND_H
#define LG_BACKEND_H

#include "graph/internal.h"

typedef struct lg_buf {
    void *data;
    lg_dtype dtype;
    lg_shape shape;
} lg_buf;

typedef lg_status (*lg_kernel_fn)(const lg_node *n, const lg_buf *in, lg_buf *out);

typedef struct lg_backend {
    const char *name;
    const lg_kernel_fn *kernels; /* [LG_OP_COUNT] */
} lg_backend;

const lg_backend *lg_backend_cpu(void);

#endif
