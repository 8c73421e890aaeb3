/*
 * elementwise.c — broadcasting binary ops, compare and where, unary math,
 * cast and stop_gradient: builders, shape inference and gradient rules.
 */
#include "graph/ops.h"
#include "ops/op.h"

/* ---- inference ----------------------------------------------------------- */

static bool infer_broadcast(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    int first = n->op == LG_OP_WHERE ? 1 : 0; /* where's mask may differ in dtype */
    for (int i = first + 1; i < n->n_in; i++)
        if (in[i].dtype != in[first].dtype) {
            lg_infer_error(err, size, in, n->n_in, "dtypes differ (no implicit promotion; use lg_cast)");
            return false;
        }
    bool int_ok = n->op == LG_OP_ADD || n->op == LG_OP_SUB || n->op == LG_OP_MUL || n->op == LG_OP_COMPARE ||
                  n->op == LG_OP_WHERE;
    if (!lg_is_float(in[first].dtype) && !(int_ok && in[first].dtype == LG_I32)) {
        lg_infer_error(err, size, in, n->n_in, "needs f32 or f64");
        return false;
    }
    lg_shape s = in[0].shape;
    for (int i = 1; i < n->n_in; i++)
        if (!lg_broadcast_shapes(s, in[i].shape, &s)) {
            lg_infer_error(err, size, in, n->n_in, "shapes do not broadcast");
            return false;
        }
    out[0] = (lg_port){in[first].dtype, s};
    return true;
}

static bool infer_unary(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    bool int_ok = n->op == LG_OP_NEG || n->op == LG_OP_ABS || n->op == LG_OP_STOP_GRADIENT;
    if (!lg_is_float(in[0].dtype) && !(int_ok && in[0].dtype == LG_I32)) {
        lg_infer_error(err, size, in, 1, "needs f32 or f64");
        return false;
    }
    out[0] = in[0];
    return true;
}

static bool infer_cast(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    if ((int)n->attrs.dtype < 0 || n->attrs.dtype >= LG_DTYPE_COUNT) {
        lg_infer_error(err, size, in, 1, "invalid target dtype");
        return false;
    }
    out[0] = (lg_port){n->attrs.dtype, in[0].shape};
    return true;
}

/* ---- builders ------------------------------------------------------------ */

static lg_value binary(lg_op op, lg_value a, lg_value b)
{
    lg_value in[2] = {a, b};
    return lg_build(op, in, 2, NULL);
}

lg_value lg_add(lg_value a, lg_value b) { return binary(LG_OP_ADD, a, b); }
lg_value lg_sub(lg_value a, lg_value b) { return binary(LG_OP_SUB, a, b); }
lg_value lg_mul(lg_value a, lg_value b) { return binary(LG_OP_MUL, a, b); }
lg_value lg_div(lg_value a, lg_value b) { return binary(LG_OP_DIV, a, b); }
lg_value lg_scale(lg_value x, double s) { return lg_mul(x, lg_scalar_like(x, s)); }
lg_value lg_add_scalar(lg_value x, double s) { return lg_add(x, lg_scalar_like(x, s)); }

lg_value lg_compare(lg_value a, lg_value b, lg_cmp op)
{
    if ((int)op < 0 || op >= LG_CMP_COUNT) {
        lg_graph *g = lg_values_graph((lg_value[]){a, b}, 2, "compare");
        return g ? lg_graph_fail(g, "compare: invalid comparison %d", (int)op) : lg_value_invalid();
    }
    lg_value in[2] = {a, b};
    return lg_build(LG_OP_COMPARE, in, 2, &(lg_attrs){.cmp = op});
}

lg_value lg_where(lg_value mask, lg_value a, lg_value b)
{
    if (lg_value_ok(mask) && lg_value_dtype(mask) != LG_I32 && !lg_is_float(lg_value_dtype(mask)))
        return lg_graph_fail(mask.graph, "where: mask dtype %s", lg_dtype_name(lg_value_dtype(mask)));
    lg_value in[3] = {mask, a, b};
    return lg_build(LG_OP_WHERE, in, 3, NULL);
}

static lg_value unary(lg_op op, lg_value x, double r0, double r1)
{
    return lg_build(op, &x, 1, &(lg_attrs){.real = {r0, r1}});
}

lg_value lg_neg(lg_value x) { return unary(LG_OP_NEG, x, 0, 0); }
lg_value lg_exp(lg_value x) { return unary(LG_OP_EXP, x, 0, 0); }
lg_value lg_log(lg_value x) { return unary(LG_OP_LOG, x, 0, 0); }
lg_value lg_sqrt(lg_value x) { return unary(LG_OP_SQRT, x, 0, 0); }
lg_value lg_square(lg_value x) { return unary(LG_OP_SQUARE, x, 0, 0); }
lg_value lg_pow(lg_value x, double p) { return unary(LG_OP_POW, x, p, 0); }
lg_value lg_abs(lg_value x) { return unary(LG_OP_ABS, x, 0, 0); }
lg_value lg_sigmoid(lg_value x) { return unary(LG_OP_SIGMOID, x, 0, 0); }
lg_value lg_hard_sigmoid(lg_value x) { return unary(LG_OP_HARD_SIGMOID, x, 0, 0); }
lg_value lg_tanh(lg_value x) { return unary(LG_OP_TANH, x, 0, 0); }
lg_value lg_relu(lg_value x) { return unary(LG_OP_RELU, x, 0, 0); }
lg_value lg_elu(lg_value x, double alpha) { return unary(LG_OP_ELU, x, alpha, 0); }
lg_value lg_softplus(lg_value x) { return unary(LG_OP_SOFTPLUS, x, 0, 0); }
lg_value lg_softsign(lg_value x) { return unary(LG_OP_SOFTSIGN, x, 0, 0); }
lg_value lg_stop_gradient(lg_value x) { return unary(LG_OP_STOP_GRADIENT, x, 0, 0); }

lg_value lg_clip(lg_value x, double lo, double hi)
{
    if (lg_value_ok(x) && !(lo <= hi))
        return lg_graph_fail(x.graph, "clip of '%s' %s: lo %g > hi %g", lg_value_name(x), lg_shape_cstr(lg_value_shape(x)),
                             lo, hi);
    return unary(LG_OP_CLIP, x, lo, hi);
}

lg_value lg_cast(lg_value x, lg_dtype dtype) { return lg_build(LG_OP_CAST, &x, 1, &(lg_attrs){.dtype = dtype}); }

/* ---- gradient rules -------------------------------------------------------
 * x, y: the node's input 0 and output; dy is the incoming gradient. Builders
 * may move the node arena, so rules copy attributes out before building. */

#define X(i) lg_node_input(g, node, i)
#define Y lg_value_of(g, node, 0)

static lg_value cmp0(lg_value x, lg_cmp op, double v) { return lg_compare(x, lg_scalar_like(x, v), op); }

static void grad_add(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_sum_to(dy[0], X(0));
    dx[1] = lg_sum_to(dy[0], X(1));
}

static void grad_sub(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_sum_to(dy[0], X(0));
    dx[1] = lg_sum_to(lg_neg(dy[0]), X(1));
}

static void grad_mul(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_sum_to(lg_mul(dy[0], X(1)), X(0));
    dx[1] = lg_sum_to(lg_mul(dy[0], X(0)), X(1));
}

static void grad_div(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    lg_value q = lg_div(dy[0], X(1)); /* dy / b */
    dx[0] = lg_sum_to(q, X(0));
    dx[1] = lg_sum_to(lg_neg(lg_mul(q, Y)), X(1)); /* -dy a / b^2 = -(dy / b) y */
}

static void grad_where(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    lg_value zero = lg_scalar_like(dy[0], 0);
    dx[1] = lg_sum_to(lg_where(X(0), dy[0], zero), X(1));
    dx[2] = lg_sum_to(lg_where(X(0), zero, dy[0]), X(2));
}

static void grad_neg(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    (void)g, (void)node;
    dx[0] = lg_neg(dy[0]);
}

static void grad_exp(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx) { dx[0] = lg_mul(dy[0], Y); }
static void grad_log(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx) { dx[0] = lg_div(dy[0], X(0)); }
static void grad_sqrt(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_div(lg_scale(dy[0], 0.5), Y);
}
static void grad_square(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_mul(dy[0], lg_scale(X(0), 2));
}

static void grad_pow(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    double p = g->nodes[node].attrs.real[0];
    dx[0] = lg_mul(dy[0], lg_scale(lg_pow(X(0), p - 1), p));
}

static void grad_abs(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    lg_value sign = lg_sub(cmp0(X(0), LG_CMP_GT, 0), cmp0(X(0), LG_CMP_LT, 0));
    dx[0] = lg_mul(dy[0], sign);
}

static void grad_sigmoid(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    lg_value one_minus = lg_sub(lg_scalar_like(Y, 1), Y);
    dx[0] = lg_mul(dy[0], lg_mul(Y, one_minus));
}

static void grad_hard_sigmoid(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    lg_value inside = lg_mul(cmp0(X(0), LG_CMP_GT, -3), cmp0(X(0), LG_CMP_LT, 3));
    dx[0] = lg_mul(dy[0], lg_scale(inside, 1.0 / 6.0));
}

static void grad_tanh(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_mul(dy[0], lg_sub(lg_scalar_like(Y, 1), lg_square(Y)));
}

static void grad_relu(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_mul(dy[0], cmp0(X(0), LG_CMP_GT, 0));
}

static void grad_elu(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    /* for x <= 0: d/dx alpha (e^x - 1) = alpha e^x = y + alpha */
    lg_value neg_slope = lg_add_scalar(Y, g->nodes[node].attrs.real[0]);
    dx[0] = lg_mul(dy[0], lg_where(cmp0(X(0), LG_CMP_GT, 0), lg_scalar_like(Y, 1), neg_slope));
}

static void grad_softplus(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_mul(dy[0], lg_sigmoid(X(0)));
}

static void grad_softsign(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_div(dy[0], lg_square(lg_add_scalar(lg_abs(X(0)), 1)));
}

static void grad_clip(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    double lo = g->nodes[node].attrs.real[0], hi = g->nodes[node].attrs.real[1];
    lg_value inside = lg_mul(cmp0(X(0), LG_CMP_GE, lo), cmp0(X(0), LG_CMP_LE, hi));
    dx[0] = lg_mul(dy[0], inside);
}

static void grad_cast(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    lg_dtype from = lg_value_dtype(X(0));
    if (lg_is_float(from) && lg_is_float(g->nodes[node].attrs.dtype)) dx[0] = lg_cast(dy[0], from);
}

#undef X
#undef Y

/* ---- descriptors ----------------------------------------------------------- */

#define BINARY(name, rule) const lg_op_def lg_op_def_##name = {#name, 2, infer_broadcast, rule};
#define UNARY(name, rule) const lg_op_def lg_op_def_##name = {#name, 1, infer_unary, rule};

BINARY(add, grad_add)
BINARY(sub, grad_sub)
BINARY(mul, grad_mul)
BINARY(div, grad_div)
BINARY(compare, NULL)
const lg_op_def lg_op_def_where = {"where", 3, infer_broadcast, grad_where};
UNARY(neg, grad_neg)
UNARY(exp, grad_exp)
UNARY(log, grad_log)
UNARY(sqrt, grad_sqrt)
UNARY(square, grad_square)
UNARY(pow, grad_pow)
UNARY(abs, grad_abs)
UNARY(sigmoid, grad_sigmoid)
UNARY(hard_sigmoid, grad_hard_sigmoid)
UNARY(tanh, grad_tanh)
UNARY(relu, grad_relu)
UNARY(elu, grad_elu)
UNARY(softplus, grad_softplus)
UNARY(softsign, grad_softsign)
UNARY(clip, grad_clip)
UNARY(stop_gradient, NULL)
const lg_op_def lg_op_def_cast = {"cast", 1, infer_cast, grad_cast};
