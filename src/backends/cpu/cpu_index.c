/* cpu_index.c — gather rows, scatter-add rows, one_hot. */
#include <string.h>

#include "backends/cpu/cpu.h"
#include "ops/op.h"

/* Row size of a [N, ...] table in elements. */
static int64_t row_size(lg_shape table)
{
    int64_t r = 1;
    for (int i = 1; i < table.rank; i++) r *= table.dims[i];
    return r;
}

static lg_status check_index(const lg_node *n, int64_t i, int32_t v, int64_t rows)
{
    if (v >= 0 && v < rows) return LG_OK;
    if (n->op == LG_OP_GATHER && n->attrs.axis == LG_GATHER_OF_LENGTHS)
        return lg_fail(LG_ERR_RUNTIME, "'%s': lengths[%lld] = %lld outside [1, %lld]", n->name, (long long)i,
                       (long long)v + 1, (long long)rows);
    return lg_fail(LG_ERR_RUNTIME, "%s '%s': index %d outside [0, %lld)", n->op == LG_OP_GATHER ? "gather" : "scatter_add",
                   n->name, (int)v, (long long)rows);
}

lg_status lg_cpu_gather(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    const int32_t *idx = in[1].data;
    int64_t count = lg_buf_numel(&in[1]), rows = in[0].shape.dims[0], row = row_size(in[0].shape);
    size_t bytes = (size_t)row * lg_dtype_size(in[0].dtype);
    for (int64_t i = 0; i < count; i++) {
        lg_status s = check_index(n, i, idx[i], rows);
        if (s) return s;
        memcpy((char *)out[0].data + i * (int64_t)bytes, (const char *)in[0].data + idx[i] * (int64_t)bytes, bytes);
    }
    return LG_OK;
}

#define SCATTER(T)                                                                      \
    do {                                                                                \
        const T *u = in[0].data;                                                        \
        T *y = out[0].data;                                                             \
        for (int64_t i = 0; i < count; i++) {                                           \
            lg_status s = check_index(n, i, idx[i], rows);                                 \
            if (s) return s;                                                            \
            for (int64_t j = 0; j < row; j++) y[idx[i] * row + j] += u[i * row + j];    \
        }                                                                               \
    } while (0)

lg_status lg_cpu_scatter_add(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    const int32_t *idx = in[1].data;
    int64_t count = lg_buf_numel(&in[1]), rows = out[0].shape.dims[0], row = row_size(out[0].shape);
    memset(out[0].data, 0, (size_t)lg_buf_numel(&out[0]) * lg_dtype_size(out[0].dtype));
    if (out[0].dtype == LG_F32) SCATTER(float);
    else SCATTER(double);
    return LG_OK;
}

lg_status lg_cpu_one_hot(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    const int32_t *idx = in[0].data;
    int64_t count = lg_buf_numel(&in[0]), depth = n->attrs.ints[0];
    size_t es = lg_dtype_size(out[0].dtype);
    memset(out[0].data, 0, (size_t)(count * depth) * es);
    for (int64_t i = 0; i < count; i++) {
        if (idx[i] < 0 || idx[i] >= depth) continue; /* an all-zero row, as tf.one_hot */
        int64_t at = i * depth + idx[i];
        switch (out[0].dtype) {
        case LG_F32: ((float *)out[0].data)[at] = 1; break;
        case LG_F64: ((double *)out[0].data)[at] = 1; break;
        default: ((int32_t *)out[0].data)[at] = 1; break;
        }
    }
    return LG_OK;
}
