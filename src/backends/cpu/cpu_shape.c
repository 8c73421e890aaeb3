/*
 * cpu_shape.c — kernels that move elements: reshape family (a copy),
 * transpose, slice/unslice, concat/split, broadcast_to/broadcast_like.
 *
 * Slices along one axis are copies of contiguous blocks: outer = the product
 * of the dims before the axis, inner = the product after it.
 */
#include <string.h>

#include "backends/cpu/cpu.h"

static lg_status copy_kernel(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)n;
    memcpy(out[0].data, in[0].data, (size_t)lg_buf_numel(&out[0]) * lg_dtype_size(out[0].dtype));
    return LG_OK;
}

lg_status lg_cpu_reshape(const lg_node *n, const lg_buf *in, lg_buf *out) { return copy_kernel(n, in, out); }
lg_status lg_cpu_reshape_like(const lg_node *n, const lg_buf *in, lg_buf *out) { return copy_kernel(n, in, out); }
lg_status lg_cpu_expand_dims(const lg_node *n, const lg_buf *in, lg_buf *out) { return copy_kernel(n, in, out); }
lg_status lg_cpu_squeeze(const lg_node *n, const lg_buf *in, lg_buf *out) { return copy_kernel(n, in, out); }

lg_status lg_cpu_transpose(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_shape os = out[0].shape;
    int rank = os.rank;
    size_t es = lg_dtype_size(out[0].dtype);
    int64_t in_st[LG_MAX_RANK], st[LG_MAX_RANK], idx[LG_MAX_RANK] = {0};
    lg_strides(in[0].shape, in_st);
    for (int i = 0; i < rank; i++) st[i] = in_st[n->attrs.ints[i]]; /* input stride of output axis i */
    int64_t total = lg_buf_numel(&out[0]), off = 0;
    const char *x = in[0].data;
    char *y = out[0].data;
    for (int64_t i = 0; i < total; i++) {
        memcpy(y + i * (int64_t)es, x + off * (int64_t)es, es);
        for (int d = rank - 1; d >= 0; d--) { /* odometer step */
            off += st[d];
            if (++idx[d] < os.dims[d]) break;
            off -= st[d] * os.dims[d];
            idx[d] = 0;
        }
    }
    return LG_OK;
}

/* Copy a [outer, len, inner] block between a buffer with `a` along the axis
 * (starting at a_start) and one with `b` (starting at b_start). */
static void copy_blocks(char *dst, int64_t dst_dim, int64_t dst_start, const char *src, int64_t src_dim,
                        int64_t src_start, int64_t outer, int64_t len, int64_t inner, size_t es)
{
    size_t bytes = (size_t)(len * inner) * es;
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + ((o * dst_dim + dst_start) * inner) * (int64_t)es,
               src + ((o * src_dim + src_start) * inner) * (int64_t)es, bytes);
}

static void outer_inner(lg_shape s, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= s.dims[i];
    for (int i = axis + 1; i < s.rank; i++) *inner *= s.dims[i];
}

lg_status lg_cpu_slice(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int axis = n->attrs.axis;
    int64_t outer, inner;
    outer_inner(in[0].shape, axis, &outer, &inner);
    copy_blocks(out[0].data, out[0].shape.dims[axis], 0, in[0].data, in[0].shape.dims[axis], n->attrs.ints[0], outer,
                out[0].shape.dims[axis], inner, lg_dtype_size(out[0].dtype));
    return LG_OK;
}

lg_status lg_cpu_unslice(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int axis = n->attrs.axis;
    int64_t outer, inner;
    size_t es = lg_dtype_size(out[0].dtype);
    memset(out[0].data, 0, (size_t)lg_buf_numel(&out[0]) * es);
    outer_inner(out[0].shape, axis, &outer, &inner);
    copy_blocks(out[0].data, out[0].shape.dims[axis], n->attrs.ints[0], in[0].data, in[0].shape.dims[axis], 0, outer,
                in[0].shape.dims[axis], inner, es);
    return LG_OK;
}

lg_status lg_cpu_concat(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int axis = n->attrs.axis;
    int64_t outer, inner, at = 0;
    outer_inner(out[0].shape, axis, &outer, &inner);
    for (int k = 0; k < n->n_in; k++) {
        int64_t len = in[k].shape.dims[axis];
        copy_blocks(out[0].data, out[0].shape.dims[axis], at, in[k].data, len, 0, outer, len, inner,
                    lg_dtype_size(out[0].dtype));
        at += len;
    }
    return LG_OK;
}

lg_status lg_cpu_split(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int axis = n->attrs.axis;
    int64_t outer, inner, at = 0;
    outer_inner(in[0].shape, axis, &outer, &inner);
    for (int k = 0; k < n->n_out; k++) {
        int64_t len = out[k].shape.dims[axis];
        copy_blocks(out[k].data, len, 0, in[0].data, in[0].shape.dims[axis], at, outer, len, inner,
                    lg_dtype_size(out[k].dtype));
        at += len;
    }
    return LG_OK;
}

static lg_status broadcast_kernel(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)n;
    lg_bcast bc;
    lg_bcast_init(&bc, out[0].shape, in, 1);
    size_t es = lg_dtype_size(out[0].dtype);
    const char *x = in[0].data;
    char *y = out[0].data;
    int64_t last = bc.rank ? bc.dims[bc.rank - 1] : 1, rows = bc.numel / last;
    int64_t s = bc.rank ? bc.strides[0][bc.rank - 1] : 0;
    lg_bcast_rows rw = {0};
    for (int64_t r = 0; r < rows; r++, lg_bcast_rows_next(&bc, &rw)) {
        int64_t off = rw.off[0];
        if (s == 1) {
            memcpy(y + r * last * (int64_t)es, x + off * (int64_t)es, (size_t)last * es);
        } else {
            for (int64_t j = 0; j < last; j++) memcpy(y + (r * last + j) * (int64_t)es, x + off * (int64_t)es, es);
        }
    }
    return LG_OK;
}

lg_status lg_cpu_broadcast_to(const lg_node *n, const lg_buf *in, lg_buf *out) { return broadcast_kernel(n, in, out); }
lg_status lg_cpu_broadcast_like(const lg_node *n, const lg_buf *in, lg_buf *out) { return broadcast_kernel(n, in, out); }
