/*
 * cuda_nn.c — softmax, log_softmax and the cross-entropy terms on the
 * device (kernels_nn.cu); shapes as cpu_nn.c.
 */
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"

static lg_status softmax_kernel(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out, int log_)
{
    lg_shape s = in[0].shape;
    int axis = n->attrs.axis;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= s.dims[i];
    for (int i = axis + 1; i < s.rank; i++) inner *= s.dims[i];
    return lg_cuda_launched(
        lg_cuda_launch_softmax(c->stream, out[0].dtype, log_, outer, s.dims[axis], inner, in[0].data, out[0].data), n);
}

lg_status lg_cuda_softmax(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return softmax_kernel(c, n, in, out, 0); }
lg_status lg_cuda_log_softmax(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return softmax_kernel(c, n, in, out, 1); }

lg_status lg_cuda_sigmoid_xent(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    return lg_cuda_launched(lg_cuda_launch_sigmoid_xent(c->stream, out[0].dtype, lg_shape_numel(out[0].shape),
                                                        in[0].data, in[1].data, out[0].data),
                            n);
}

lg_status lg_cuda_softmax_xent(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int64_t classes = in[0].shape.dims[in[0].shape.rank - 1];
    return lg_cuda_launched(lg_cuda_launch_softmax_xent(c->stream, out[0].dtype, lg_shape_numel(out[0].shape), classes,
                                                        in[0].data, in[1].data, NULL, out[0].data, c->err, -1),
                            n);
}

lg_status lg_cuda_sparse_softmax_xent(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int64_t classes = in[0].shape.dims[in[0].shape.rank - 1];
    return lg_cuda_launched(lg_cuda_launch_softmax_xent(c->stream, out[0].dtype, lg_shape_numel(out[0].shape), classes,
                                                        in[0].data, NULL, in[1].data, out[0].data, c->err,
                                                        lg_cuda_site(c, n)),
                            n);
}
