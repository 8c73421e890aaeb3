/*
 * cuda_shape.c — the kernels that move elements, on the device: the reshape
 * family is a device copy, slices, concat and split are strided 2-D copies
 * (cudaMemcpy2DAsync: outer rows of len * inner elements), transpose and
 * broadcast are kernels (kernels_shape.cu, kernels_elementwise.cu).
 */
#include "backends/cpu/cpu.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"

static lg_status copy_kernel(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)n;
    return lg_cuda_copy_d2d(c, out[0].data, in[0].data, (size_t)lg_shape_numel(out[0].shape) * lg_dtype_size(out[0].dtype));
}

lg_status lg_cuda_reshape(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return copy_kernel(c, n, in, out); }
lg_status lg_cuda_reshape_like(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return copy_kernel(c, n, in, out); }
lg_status lg_cuda_expand_dims(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return copy_kernel(c, n, in, out); }
lg_status lg_cuda_squeeze(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return copy_kernel(c, n, in, out); }

lg_status lg_cuda_transpose(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int64_t in_st[LG_MAX_RANK], st[LG_MAX_RANK];
    lg_strides(in[0].shape, in_st);
    for (int i = 0; i < out[0].shape.rank; i++) st[i] = in_st[n->attrs.ints[i]]; /* input stride of output axis i */
    return lg_cuda_launched(lg_cuda_launch_transpose(c->stream, lg_dtype_size(out[0].dtype), out[0].shape.rank,
                                                     out[0].shape.dims, st, in[0].data, out[0].data),
                            n);
}

/* Copy a [outer, len, inner] block between a buffer with dst_dim along the
 * axis (starting at dst_start) and one with src_dim (starting at src_start). */
static lg_status copy_blocks(lg_cuda_ctx *c, const lg_node *n, char *dst, int64_t dst_dim, int64_t dst_start,
                             const char *src, int64_t src_dim, int64_t src_start, int64_t outer, int64_t len,
                             int64_t inner, size_t es)
{
    size_t width = (size_t)(len * inner) * es;
    if (width == 0 || outer == 0) return LG_OK;
    /* one row (a slice of the outermost axis) is a plain copy: cudaMemcpy2D
     * refuses pitches above cudaDevAttrMaxPitch (2^31 - 1 bytes), and the
     * pitch of one row is the whole buffer's length along the axis */
    if (outer == 1)
        return lg_cuda_copy_d2d(c, dst + dst_start * inner * (int64_t)es, src + src_start * inner * (int64_t)es, width);
    cudaError_t e = cudaMemcpy2DAsync(dst + dst_start * inner * (int64_t)es, (size_t)(dst_dim * inner) * es,
                                      src + src_start * inner * (int64_t)es, (size_t)(src_dim * inner) * es, width,
                                      (size_t)outer, cudaMemcpyDeviceToDevice, c->stream);
    char what[160];
    snprintf(what, sizeof what, "'%s': %lld rows of %zu bytes", n->name, (long long)outer, width);
    return lg_cuda_status(e, "cudaMemcpy2DAsync", what);
}

static void outer_inner(lg_shape s, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= s.dims[i];
    for (int i = axis + 1; i < s.rank; i++) *inner *= s.dims[i];
}

lg_status lg_cuda_slice(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int axis = n->attrs.axis;
    int64_t outer, inner;
    outer_inner(in[0].shape, axis, &outer, &inner);
    return copy_blocks(c, n, out[0].data, out[0].shape.dims[axis], 0, in[0].data, in[0].shape.dims[axis],
                       n->attrs.ints[0], outer, out[0].shape.dims[axis], inner, lg_dtype_size(out[0].dtype));
}

lg_status lg_cuda_unslice(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int axis = n->attrs.axis;
    int64_t outer, inner;
    size_t es = lg_dtype_size(out[0].dtype);
    lg_status st = lg_cuda_memset0(c, out[0].data, (size_t)lg_shape_numel(out[0].shape) * es);
    if (st) return st;
    outer_inner(out[0].shape, axis, &outer, &inner);
    return copy_blocks(c, n, out[0].data, out[0].shape.dims[axis], n->attrs.ints[0], in[0].data,
                       in[0].shape.dims[axis], 0, outer, in[0].shape.dims[axis], inner, es);
}

lg_status lg_cuda_concat(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int axis = n->attrs.axis;
    int64_t outer, inner, at = 0;
    outer_inner(out[0].shape, axis, &outer, &inner);
    for (int k = 0; k < n->n_in; k++) {
        int64_t len = in[k].shape.dims[axis];
        lg_status st = copy_blocks(c, n, out[0].data, out[0].shape.dims[axis], at, in[k].data, len, 0, outer, len,
                                   inner, lg_dtype_size(out[0].dtype));
        if (st) return st;
        at += len;
    }
    return LG_OK;
}

lg_status lg_cuda_split(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int axis = n->attrs.axis;
    int64_t outer, inner, at = 0;
    outer_inner(in[0].shape, axis, &outer, &inner);
    for (int k = 0; k < n->n_out; k++) {
        int64_t len = out[k].shape.dims[axis];
        lg_status st = copy_blocks(c, n, out[k].data, len, 0, in[0].data, in[0].shape.dims[axis], at, outer, len,
                                   inner, lg_dtype_size(out[k].dtype));
        if (st) return st;
        at += len;
    }
    return LG_OK;
}

static lg_status broadcast_kernel(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_cuda_bcast bc;
    lg_cuda_bcast_init(&bc, out[0].shape, in, 1);
    return lg_cuda_launched(
        lg_cuda_launch_broadcast(c->stream, lg_dtype_size(out[0].dtype), &bc, in[0].data, out[0].data), n);
}

lg_status lg_cuda_broadcast_to(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return broadcast_kernel(c, n, in, out); }
lg_status lg_cuda_broadcast_like(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return broadcast_kernel(c, n, in, out); }
