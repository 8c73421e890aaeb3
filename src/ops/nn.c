/*
 * nn.c — softmax and log_softmax over attrs.axis, dropout with a given mask,
 * and the fused cross-entropy terms behind the from_logits losses.
 */
#include "graph/ops.h"
#include "ops/op.h"

static bool infer_softmax(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    if (!lg_is_float(in[0].dtype)) LG_INFER_FAIL("needs f32 or f64");
    if (n->attrs.axis >= in[0].shape.rank) LG_INFER_FAIL("axis out of range");
    out[0] = in[0];
    return true;
}

static lg_value softmax_op(lg_op op, lg_value x, int axis)
{
    if (!lg_value_ok(x)) return lg_value_invalid();
    int a = lg_axis_norm(axis, lg_value_rank(x));
    if (a < 0)
        return lg_graph_fail(x.graph, "%s '%s': axis %d out of range for %s", lg_op_defs[op]->name, lg_value_name(x),
                             axis, lg_shape_cstr(lg_value_shape(x)));
    return lg_build(op, &x, 1, &(lg_attrs){.axis = a});
}

lg_value lg_softmax(lg_value x, int axis) { return softmax_op(LG_OP_SOFTMAX, x, axis); }
lg_value lg_log_softmax(lg_value x, int axis) { return softmax_op(LG_OP_LOG_SOFTMAX, x, axis); }

static void grad_softmax(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    int axis = g->nodes[node].attrs.axis;
    lg_value y = lg_value_of(g, node, 0);
    lg_value dot = lg_sum(lg_mul(dy[0], y), &axis, 1, true);
    dx[0] = lg_mul(y, lg_sub(dy[0], dot));
}

static void grad_log_softmax(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    int axis = g->nodes[node].attrs.axis;
    lg_value y = lg_value_of(g, node, 0);
    dx[0] = lg_sub(dy[0], lg_mul(lg_exp(y), lg_sum(dy[0], &axis, 1, true)));
}

lg_value lg_dropout(lg_value x, lg_value mask, double rate)
{
    if (lg_value_ok(x) && !(rate >= 0 && rate < 1))
        return lg_graph_fail(x.graph, "dropout '%s': rate %g outside [0, 1)", lg_value_name(x), rate);
    return lg_mul(x, lg_scale(mask, 1 / (1 - rate)));
}

/* ---- fused cross-entropy terms --------------------------------------------- */

static bool same_dims(lg_shape a, lg_shape b, int rank)
{
    for (int i = 0; i < rank; i++)
        if (a.dims[i] != b.dims[i] && a.dims[i] != -1 && b.dims[i] != -1) return false;
    return true;
}

static bool infer_xent(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_shape x = in[0].shape, z = in[1].shape;
    if (!lg_is_float(in[0].dtype)) LG_INFER_FAIL("logits need f32 or f64");
    if (n->op == LG_OP_SPARSE_SOFTMAX_XENT) {
        if (in[1].dtype != LG_I32) LG_INFER_FAIL("labels must be i32");
        if (x.rank < 1 || z.rank != x.rank - 1 || !same_dims(x, z, z.rank))
            LG_INFER_FAIL("labels must be shaped like the logits without their last axis");
    } else {
        if (in[1].dtype != in[0].dtype) LG_INFER_FAIL("targets must have the logits' dtype");
        if (x.rank != z.rank || !same_dims(x, z, x.rank)) LG_INFER_FAIL("targets must be shaped like the logits");
        if (n->op == LG_OP_SOFTMAX_XENT && x.rank < 1) LG_INFER_FAIL("logits need a class axis");
    }
    out[0] = in[0];
    if (n->op != LG_OP_SIGMOID_XENT) out[0].shape.rank--;
    return true;
}

lg_value lg_sigmoid_xent(lg_value targets, lg_value logits)
{
    lg_value in[2] = {logits, targets};
    return lg_build(LG_OP_SIGMOID_XENT, in, 2, NULL);
}

lg_value lg_softmax_xent(lg_value targets, lg_value logits)
{
    lg_value in[2] = {logits, targets};
    return lg_build(LG_OP_SOFTMAX_XENT, in, 2, NULL);
}

lg_value lg_sparse_softmax_xent(lg_value labels, lg_value logits)
{
    lg_value in[2] = {logits, labels};
    return lg_build(LG_OP_SPARSE_SOFTMAX_XENT, in, 2, NULL);
}

#define X(i) lg_node_input(g, node, i)

/* d/dx = sigmoid(x) - z, d/dz = -x */
static void grad_sigmoid_xent(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_mul(dy[0], lg_sub(lg_sigmoid(X(0)), X(1)));
    dx[1] = lg_neg(lg_mul(dy[0], X(0)));
}

/* d/dx = softmax(x) sum(z) - z, d/dz = -log_softmax(x) */
static void grad_softmax_xent(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    int last = -1;
    lg_value d = lg_expand_dims(dy[0], -1);
    lg_value mass = lg_sum(X(1), &last, 1, true);
    dx[0] = lg_mul(d, lg_sub(lg_mul(lg_softmax(X(0), -1), mass), X(1)));
    dx[1] = lg_neg(lg_mul(d, lg_log_softmax(X(0), -1)));
}

/* d/dx = softmax(x) - one_hot(labels) */
static void grad_sparse_softmax_xent(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    lg_value x = X(0);
    lg_shape s = lg_value_shape(x);
    int64_t classes = s.dims[s.rank - 1];
    if (classes < 0) {
        lg_graph_fail(g, "sparse_softmax_xent '%s': its gradient needs the class count at build time",
                      g->nodes[node].name);
        return;
    }
    lg_value target = lg_one_hot(X(1), classes, lg_value_dtype(x));
    dx[0] = lg_mul(lg_expand_dims(dy[0], -1), lg_sub(lg_softmax(x, -1), target));
}

#undef X

const lg_op_def lg_op_def_softmax = {"softmax", 1, infer_softmax, grad_softmax};
const lg_op_def lg_op_def_log_softmax = {"log_softmax", 1, infer_softmax, grad_log_softmax};
const lg_op_def lg_op_def_sigmoid_xent = {"sigmoid_xent", 2, infer_xent, grad_sigmoid_xent};
const lg_op_def lg_op_def_softmax_xent = {"softmax_xent", 2, infer_xent, grad_softmax_xent};
const lg_op_def lg_op_def_sparse_softmax_xent = {"sparse_softmax_xent", 2, infer_xent, grad_sparse_softmax_xent};
