/*
 * cuda_reduce.c — sum, max, sum_to and numel on the device
 * (kernels_reduce.cu): the reduced and kept axes of x split into two
 * coordinate systems, one block per kept element.
 */
#include <math.h>

#include "backends/cpu/cpu.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"

/* Merge neighbouring axes of a coordinate system that are one run in x
 * (stride[i - 1] == dims[i] stride[i]): the same offsets in the same order,
 * one division per element fewer on the device for each. The new rank. */
static int merge_runs(int rank, int64_t *dims, int64_t *strides)
{
    int m = 0;
    for (int i = 0; i < rank; i++) {
        if (m > 0 && strides[m - 1] == dims[i] * strides[i]) {
            dims[m - 1] *= dims[i];
            strides[m - 1] = strides[i];
        } else {
            dims[m] = dims[i];
            strides[m] = strides[i];
            m++;
        }
    }
    return m;
}

/* x reduced into keep (rank <= x's, aligned right; 1 on the reduced axes). */
static lg_status reduce(lg_cuda_ctx *c, const lg_node *n, const lg_buf *x, lg_shape keep, lg_buf *y, int max)
{
    lg_cuda_reduce r = {.n_out = 1, .n_red = 1};
    int64_t st[LG_MAX_RANK];
    lg_strides(x->shape, st);
    int off = x->shape.rank - keep.rank;
    for (int i = 0; i < x->shape.rank; i++) {
        int j = i - off;
        int64_t d = x->shape.dims[i];
        if (j >= 0 && keep.dims[j] == d) {
            r.kept_dims[r.kept_rank] = d;
            r.kept_strides[r.kept_rank++] = st[i];
            r.n_out *= d;
        } else {
            r.red_dims[r.red_rank] = d;
            r.red_strides[r.red_rank++] = st[i];
            r.n_red *= d;
        }
    }
    if (r.n_red == 0) { /* nothing to reduce: sums are 0, maxima -inf, as on the CPU */
        return lg_cuda_launched(lg_cuda_launch_fill(c->stream, y->dtype, r.n_out, y->data, max ? -INFINITY : 0), n);
    }
    r.kept_rank = merge_runs(r.kept_rank, r.kept_dims, r.kept_strides);
    r.red_rank = merge_runs(r.red_rank, r.red_dims, r.red_strides);
    return lg_cuda_launched(lg_cuda_launch_reduce(c->stream, max, x->dtype, &r, x->data, y->data, c->partials), n);
}

static lg_shape keep_dims(lg_shape s, uint32_t axes)
{
    for (int i = 0; i < s.rank; i++)
        if (axes & (1u << i)) s.dims[i] = 1;
    return s;
}

lg_status lg_cuda_sum(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    return reduce(c, n, &in[0], keep_dims(in[0].shape, n->attrs.axes), &out[0], 0);
}

lg_status lg_cuda_max(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    return reduce(c, n, &in[0], keep_dims(in[0].shape, n->attrs.axes), &out[0], 1);
}

lg_status lg_cuda_sum_to(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    return reduce(c, n, &in[0], out[0].shape, &out[0], 0);
}

lg_status lg_cuda_numel(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    double count = 1;
    for (int i = 0; i < in[0].shape.rank; i++)
        if (n->attrs.axes & (1u << i)) count *= (double)in[0].shape.dims[i];
    return lg_cuda_launched(lg_cuda_launch_fill(c->stream, out[0].dtype, 1, out[0].data, count), n);
}
