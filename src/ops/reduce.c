/*
 * reduce.c — sum, max and numel over axes; mean is sum / numel.
 *
 * attrs.axes is the bit set of reduced axes, attrs.keepdims keeps them as 1.
 */
#include "graph/ops.h"
#include "ops/op.h"

static lg_shape keep_shape(lg_shape s, uint32_t axes)
{
    for (int i = 0; i < s.rank; i++)
        if (axes & (1u << i)) s.dims[i] = 1;
    return s;
}

static lg_shape reduced_shape(lg_shape s, uint32_t axes, bool keepdims)
{
    if (keepdims) return keep_shape(s, axes);
    lg_shape o = {.rank = 0};
    for (int i = 0; i < s.rank; i++)
        if (!(axes & (1u << i))) o.dims[o.rank++] = s.dims[i];
    return o;
}

static bool infer_reduce(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    bool int_ok = n->op != LG_OP_MAX;
    if (!lg_is_float(in[0].dtype) && !(int_ok && in[0].dtype == LG_I32)) {
        lg_infer_error(err, size, in, 1, "needs f32 or f64");
        return false;
    }
    if (n->attrs.axes >> in[0].shape.rank) {
        lg_infer_error(err, size, in, 1, "an axis is out of range");
        return false;
    }
    if (n->op == LG_OP_NUMEL)
        out[0] = (lg_port){in[0].dtype, {.rank = 0}};
    else
        out[0] = (lg_port){in[0].dtype, reduced_shape(in[0].shape, n->attrs.axes, n->attrs.keepdims)};
    return true;
}

/* The bit set of axes (all when n is 0); records an error and returns false
 * for an axis out of range or repeated. */
static bool axes_mask(lg_value x, const int *axes, int n, const char *op, uint32_t *mask)
{
    int rank = lg_value_rank(x);
    *mask = 0;
    if (n == 0) {
        *mask = rank ? (1u << rank) - 1 : 0;
        return true;
    }
    if (n < 0 || !axes) {
        lg_graph_fail(x.graph, "%s: axes NULL or a negative count", op);
        return false;
    }
    for (int i = 0; i < n; i++) {
        int a = lg_axis_norm(axes[i], rank);
        if (a < 0 || (*mask & (1u << a))) {
            lg_graph_fail(x.graph, "%s '%s': axis %d %s for shape %s", op, lg_value_name(x), axes[i],
                          a < 0 ? "out of range" : "repeated", lg_shape_cstr(lg_value_shape(x)));
            return false;
        }
        *mask |= 1u << a;
    }
    return true;
}

static lg_value reduce(lg_op op, lg_value x, const int *axes, int n, bool keepdims)
{
    uint32_t mask;
    if (!lg_value_ok(x) || !axes_mask(x, axes, n, lg_op_defs[op]->name, &mask)) return lg_value_invalid();
    return lg_build(op, &x, 1, &(lg_attrs){.axes = mask, .keepdims = keepdims});
}

lg_value lg_sum(lg_value x, const int *axes, int n, bool keepdims) { return reduce(LG_OP_SUM, x, axes, n, keepdims); }
lg_value lg_max(lg_value x, const int *axes, int n, bool keepdims) { return reduce(LG_OP_MAX, x, axes, n, keepdims); }
lg_value lg_numel(lg_value x, const int *axes, int n) { return reduce(LG_OP_NUMEL, x, axes, n, false); }

lg_value lg_mean(lg_value x, const int *axes, int n, bool keepdims)
{
    return lg_div(lg_sum(x, axes, n, keepdims), lg_numel(x, axes, n));
}

/* dy of a reduction, with its reduced axes restored as 1, broadcast to x. */
static lg_value spread(lg_graph *g, int32_t node, lg_value dy)
{
    uint32_t axes = g->nodes[node].attrs.axes;
    lg_value x = lg_node_input(g, node, 0);
    if (!g->nodes[node].attrs.keepdims)
        for (int i = 0; i < lg_value_rank(x); i++)
            if (axes & (1u << i)) dy = lg_expand_dims(dy, i);
    return lg_broadcast_like(dy, x);
}

static void grad_sum(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx) { dx[0] = spread(g, node, dy[0]); }

static void grad_max(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    /* the gradient goes to every maximum, split evenly between ties */
    lg_value x = lg_node_input(g, node, 0);
    uint32_t mask = g->nodes[node].attrs.axes;
    bool keepdims = g->nodes[node].attrs.keepdims;
    int axes[LG_MAX_RANK], k = 0;
    for (int i = 0; i < lg_value_rank(x); i++)
        if (mask & (1u << i)) axes[k++] = i;
    lg_value is_max = lg_compare(x, spread(g, node, lg_value_of(g, node, 0)), LG_CMP_EQ);
    lg_value ties = lg_sum(is_max, axes, k, keepdims);
    dx[0] = lg_mul(is_max, spread(g, node, lg_div(dy[0], ties)));
}

const lg_op_def lg_op_def_sum = {"sum", 1, infer_reduce, grad_sum};
const lg_op_def lg_op_def_max = {"max", 1, infer_reduce, grad_max};
const lg_op_def lg_op_def_numel = {"numel", 1, infer_reduce, NULL};
