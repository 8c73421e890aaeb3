/*
 * cuda_elementwise.c — the elementwise ops' host side: broadcasting
 * parameters and the launch (kernels_elementwise.cu).
 */
#include <string.h>

#include "backends/cpu/cpu.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"
#include "ops/fused_elementwise.h"

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

/* ---- the fused elementwise op ----------------------------------------------- */

_Static_assert((int)LG_CUDA_FEW_INPUTS >= (int)LG_FEW_MAX_INPUTS && (int)LG_CUDA_FEW_DEPTH >= (int)LG_FEW_MAX_DEPTH &&
                   (int)LG_CUDA_FEW_CODE >= 3 * (int)LG_FEW_MAX_OPS + (int)LG_FEW_MAX_OUTPUTS &&
                   (int)LG_CUDA_FEW_OUTPUTS >= (int)LG_FEW_MAX_OUTPUTS,
               "the CUDA kernel holds every program fused_elementwise.h allows");
_Static_assert(LG_OP_DIV - LG_OP_ADD == LG_CUDA_DIV - LG_CUDA_ADD && LG_OP_CLIP - LG_OP_NEG == LG_CUDA_CLIP - LG_CUDA_NEG,
               "lg_cuda_binary_op and lg_cuda_unary_op follow op_list.h");

/* Instruction ins of a fused program, as the kernel runs it. */
static lg_cuda_few_ins few_ins(const int64_t *ins)
{
    if (ins[0] == LG_OP_INPUT) return (lg_cuda_few_ins){LG_CUDA_FEW_LOAD, (int8_t)ins[1], 0, 0};
    if (ins[0] == LG_FEW_STORE) return (lg_cuda_few_ins){LG_CUDA_FEW_STORE, (int8_t)ins[1], 0, 0};
    if (ins[0] == LG_FEW_RELOAD) return (lg_cuda_few_ins){LG_CUDA_FEW_RELOAD, (int8_t)ins[1], 0, 0};
    if (ins[0] == LG_FEW_PUT) return (lg_cuda_few_ins){LG_CUDA_FEW_PUT, 0, (double)ins[1], 0};
    lg_node op = lg_few_decode(ins);
    double r0 = op.attrs.real[0], r1 = op.attrs.real[1];
    switch (op.op) {
    case LG_OP_ADD:
    case LG_OP_SUB:
    case LG_OP_MUL:
    case LG_OP_DIV: return (lg_cuda_few_ins){LG_CUDA_FEW_BINARY, (int8_t)(LG_CUDA_ADD + (op.op - LG_OP_ADD)), 0, 0};
    case LG_OP_COMPARE: return (lg_cuda_few_ins){LG_CUDA_FEW_BINARY, (int8_t)(LG_CUDA_GT + op.attrs.cmp), 0, 0};
    case LG_OP_WHERE: return (lg_cuda_few_ins){LG_CUDA_FEW_WHERE, 0, 0, 0};
    case LG_OP_STOP_GRADIENT: return (lg_cuda_few_ins){LG_CUDA_FEW_UNARY, LG_CUDA_IDENTITY, 0, 0};
    default: /* neg .. clip (inference admits only fusible ops) */
        return (lg_cuda_few_ins){LG_CUDA_FEW_UNARY, (int8_t)(LG_CUDA_NEG + (op.op - LG_OP_NEG)), r0, r1};
    }
}

lg_status lg_cuda_fused_elementwise(lg_cuda_ctx *c, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_cuda_few p;
    memset(&p, 0, sizeof p);
    lg_shape s = out[0].shape; /* the shape the program runs over: last dim w where it puts */
    if (lg_few_puts(n)) p.put_w = s.dims[s.rank - 1] = n->attrs.axis, p.put_W = out[0].shape.dims[s.rank - 1];
    p.rank = s.rank, p.n_in = n->n_in, p.n_code = n->attrs.n_ints / LG_FEW_WIDTH, p.numel = lg_shape_numel(s);
    p.all_full = 1;
    for (int k = 0; k < n->n_in; k++) p.all_full = p.all_full && lg_shape_equal(in[k].shape, s);
    for (int d = 0; d < s.rank; d++) p.dims[d] = s.dims[d];
    for (int k = 0; k < n->n_in; k++) { /* strides along the output's dims, 0 where input k broadcasts */
        int64_t st[LG_MAX_RANK];
        lg_strides(in[k].shape, st);
        int shift = s.rank - in[k].shape.rank;
        for (int d = shift; d < s.rank; d++)
            p.strides[k][d] = in[k].shape.dims[d - shift] != 1 ? st[d - shift] : 0;
        p.in_dt[k] = (int8_t)in[k].dtype;
        p.in[k] = in[k].data;
    }
    for (int o = 0; o < n->n_out; o++) p.out[o] = out[o].data;
    for (int i = 0; i < p.n_code; i++) {
        const int64_t *ins = &n->attrs.ints[i * LG_FEW_WIDTH];
        p.code[i] = few_ins(ins);
        if (ins[0] == LG_OP_INPUT) /* a window starts c0 elements in */
            p.in[ins[1]] = (const char *)in[ins[1]].data + (size_t)ins[2] * lg_dtype_size(in[ins[1]].dtype);
    }
    return lg_cuda_launched(lg_cuda_launch_fused(c->stream, out[0].dtype, &p), n);
}
