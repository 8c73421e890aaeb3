/*
 * cuda_elementwise.c — the elementwise ops' host side: broadcasting
 * parameters and the launch (kernels_elementwise.cu).
 */
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"

static lg_status binary(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out, lg_cuda_binary_op op)
{
    lg_cuda_bcast bc;
    lg_cuda_bcast_init(&bc, out[0].shape, in, 2);
    return lg_cuda_launched(lg_cuda_launch_binary(c->stream, op, out[0].dtype, &bc, in[0].data, in[1].data, out[0].data), n);
}

lg_status lg_cuda_add(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return binary(c, n, in, out, LG_CUDA_ADD); }
lg_status lg_cuda_sub(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return binary(c, n, in, out, LG_CUDA_SUB); }
lg_status lg_cuda_mul(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return binary(c, n, in, out, LG_CUDA_MUL); }
lg_status lg_cuda_div(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return binary(c, n, in, out, LG_CUDA_DIV); }

lg_status lg_cuda_compare(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    return binary(c, n, in, out, (lg_cuda_binary_op)(LG_CUDA_GT + n->attrs.cmp));
}

lg_status lg_cuda_where(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_cuda_bcast bc;
    lg_cuda_bcast_init(&bc, out[0].shape, in, 3);
    return lg_cuda_launched(lg_cuda_launch_where(c->stream, in[0].dtype, out[0].dtype, &bc, in[0].data, in[1].data,
                                                 in[2].data, out[0].data),
                            n);
}

static lg_status unary(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out, lg_cuda_unary_op op)
{
    return lg_cuda_launched(lg_cuda_launch_unary(c->stream, op, out[0].dtype, lg_shape_numel(out[0].shape), in[0].data,
                                                 out[0].data, n->attrs.real[0], n->attrs.real[1]),
                            n);
}

#define UNARY(name, OP) \
    lg_status lg_cuda_##name(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out) { return unary(c, n, in, out, OP); }
UNARY(neg, LG_CUDA_NEG)
UNARY(exp, LG_CUDA_EXP)
UNARY(log, LG_CUDA_LOG)
UNARY(sqrt, LG_CUDA_SQRT)
UNARY(square, LG_CUDA_SQUARE)
UNARY(pow, LG_CUDA_POW)
UNARY(abs, LG_CUDA_ABS)
UNARY(sigmoid, LG_CUDA_SIGMOID)
UNARY(hard_sigmoid, LG_CUDA_HARD_SIGMOID)
UNARY(tanh, LG_CUDA_TANH)
UNARY(relu, LG_CUDA_RELU)
UNARY(elu, LG_CUDA_ELU)
UNARY(softplus, LG_CUDA_SOFTPLUS)
UNARY(softsign, LG_CUDA_SOFTSIGN)
UNARY(clip, LG_CUDA_CLIP)
UNARY(stop_gradient, LG_CUDA_IDENTITY)
#undef UNARY

lg_status lg_cuda_cast(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    return lg_cuda_launched(lg_cuda_launch_cast(c->stream, in[0].dtype, out[0].dtype, lg_shape_numel(out[0].shape),
                                                in[0].data, out[0].data),
                            n);
}
