/*
 * cuda_index.c — gather rows, scatter-add rows, one_hot on the device
 * (kernels_shape.cu). A bad index is recorded by the kernel and reported at
 * the next sync with the CPU kernel's message (cuda.h).
 */
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"

/* Row size of a [N, ...] table in elements. */
static int64_t row_size(lg_shape table)
{
    int64_t r = 1;
    for (int i = 1; i < table.rank; i++) r *= table.dims[i];
    return r;
}

lg_status lg_cuda_gather(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    return lg_cuda_launched(lg_cuda_launch_gather(c->stream, lg_dtype_size(in[0].dtype), lg_shape_numel(in[1].shape),
                                                  in[0].shape.dims[0], row_size(in[0].shape), in[1].data, in[0].data,
                                                  out[0].data, c->err, lg_cuda_site(c, n)),
                            n);
}

lg_status lg_cuda_scatter_add(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_status st = lg_cuda_memset0(c, out[0].data, (size_t)lg_shape_numel(out[0].shape) * lg_dtype_size(out[0].dtype));
    if (st) return st;
    return lg_cuda_launched(lg_cuda_launch_scatter_add(c->stream, out[0].dtype, lg_shape_numel(in[1].shape),
                                                       out[0].shape.dims[0], row_size(out[0].shape), in[1].data,
                                                       in[0].data, out[0].data, c->err, lg_cuda_site(c, n)),
                            n);
}

lg_status lg_cuda_one_hot(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    return lg_cuda_launched(lg_cuda_launch_one_hot(c->stream, out[0].dtype, lg_shape_numel(in[0].shape),
                                                   n->attrs.ints[0], in[0].data, out[0].data),
                            n);
}
