/*
 * cpu_reduce.c — sum, max, numel, and sum_to (the reverse of broadcasting).
 *
 * All reduce x into y where y's shape, aligned right against x's, has 1 (or
 * no dim) on the reduced axes: y broadcast back to x gives each x element the
 * offset of its y element, walked row by row as in the elementwise kernels.
 */
#include <math.h>
#include <string.h>

#include "backends/cpu/cpu.h"

#define REDUCE(T, INIT, ACC)                                                         \
    do {                                                                             \
        const T *xs = x->data;                                                       \
        T *ys = y->data;                                                             \
        for (int64_t i = 0, ny = lg_shape_numel(keep); i < ny; i++) ys[i] = (INIT);  \
        int64_t last = bc.rank ? bc.dims[bc.rank - 1] : 1;                           \
        int64_t rows = bc.numel / last, s = bc.rank ? bc.strides[0][bc.rank - 1] : 0; \
        lg_bcast_rows rw = {0};                                                          \
        for (int64_t r = 0; r < rows; r++, lg_bcast_rows_next(&bc, &rw)) {          \
            int64_t off = rw.off[0];                                                 \
            for (int64_t j = 0; j < last; j++) {                                     \
                T *acc = &ys[off + j * s];                                           \
                T v = xs[r * last + j];                                              \
                ACC;                                                                 \
            }                                                                        \
        }                                                                            \
    } while (0)

/* Reduce x into y, whose data has the shape keep (rank <= x's, aligned right). */
static void reduce_into(const lg_buf *x, lg_shape keep, lg_buf *y, bool max)
{
    lg_buf kb = {.shape = keep};
    lg_bcast bc;
    lg_bcast_init(&bc, x->shape, &kb, 1);
    if (bc.numel == 0) return;
    switch (x->dtype) {
    case LG_F32:
        if (max) REDUCE(float, -INFINITY, *acc = v > *acc ? v : *acc);
        else REDUCE(float, 0, *acc += v);
        break;
    case LG_F64:
        if (max) REDUCE(double, -INFINITY, *acc = v > *acc ? v : *acc);
        else REDUCE(double, 0, *acc += v);
        break;
    default: REDUCE(int32_t, 0, *acc += v); break;
    }
}

static lg_shape keep_dims(lg_shape s, uint32_t axes)
{
    for (int i = 0; i < s.rank; i++)
        if (axes & (1u << i)) s.dims[i] = 1;
    return s;
}

lg_status lg_cpu_sum(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    reduce_into(&in[0], keep_dims(in[0].shape, n->attrs.axes), &out[0], false);
    return LG_OK;
}

lg_status lg_cpu_max(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    reduce_into(&in[0], keep_dims(in[0].shape, n->attrs.axes), &out[0], true);
    return LG_OK;
}

lg_status lg_cpu_sum_to(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)n;
    reduce_into(&in[0], out[0].shape, &out[0], false);
    return LG_OK;
}

lg_status lg_cpu_numel(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    double count = 1;
    for (int i = 0; i < in[0].shape.rank; i++)
        if (n->attrs.axes & (1u << i)) count *= (double)in[0].shape.dims[i];
    switch (out[0].dtype) {
    case LG_F32: *(float *)out[0].data = (float)count; break;
    case LG_F64: *(double *)out[0].data = count; break;
    default: *(int32_t *)out[0].data = (int32_t)count; break;
    }
    return LG_OK;
}
