/*
 * index.c — gather along axis 0 (embedding lookup), its scatter-add
 * gradient, and one_hot (attrs.ints[0] = depth, attrs.dtype).
 */
#include "graph/ops.h"
#include "ops/op.h"

/* [N, rest...] gathered by idx [I...] -> [I..., rest...] */
static bool gathered_shape(lg_shape table, lg_shape idx, lg_shape *out)
{
    if (idx.rank + table.rank - 1 > LG_MAX_RANK) return false;
    *out = idx;
    for (int i = 1; i < table.rank; i++) out->dims[out->rank++] = table.dims[i];
    return true;
}

static bool infer_gather(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    if (in[1].dtype != LG_I32) LG_INFER_FAIL("indices must be i32");
    if (in[0].shape.rank < 1) LG_INFER_FAIL("the table needs rank >= 1");
    lg_shape s;
    if (!gathered_shape(in[0].shape, in[1].shape, &s)) LG_INFER_FAIL("the result would exceed the maximum rank");
    out[0] = (lg_port){in[0].dtype, s};
    return true;
}

static bool infer_scatter_add(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    /* in = {updates, idx, like} */
    if (in[1].dtype != LG_I32) LG_INFER_FAIL("indices must be i32");
    if (!lg_is_float(in[0].dtype) || in[2].dtype != in[0].dtype) LG_INFER_FAIL("updates and target must share a float dtype");
    lg_shape s;
    if (in[2].shape.rank < 1 || !gathered_shape(in[2].shape, in[1].shape, &s)) LG_INFER_FAIL("shapes do not fit a gather");
    bool ok = s.rank == in[0].shape.rank;
    for (int i = 0; ok && i < s.rank; i++)
        ok = s.dims[i] == in[0].shape.dims[i] || s.dims[i] == -1 || in[0].shape.dims[i] == -1;
    if (!ok) LG_INFER_FAIL("updates are not shaped like the gather of the target");
    out[0] = in[2];
    return true;
}

static bool infer_one_hot(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    if (in[0].dtype != LG_I32) LG_INFER_FAIL("indices must be i32");
    if (in[0].shape.rank >= LG_MAX_RANK) LG_INFER_FAIL("the result would exceed the maximum rank");
    lg_shape s = in[0].shape;
    s.dims[s.rank++] = n->attrs.ints[0];
    out[0] = (lg_port){n->attrs.dtype, s};
    return true;
}

lg_value lg_gather(lg_value table, lg_value idx)
{
    lg_value in[2] = {table, idx};
    return lg_build(LG_OP_GATHER, in, 2, NULL);
}

lg_value lg_scatter_add(lg_value updates, lg_value idx, lg_value like)
{
    lg_value in[3] = {updates, idx, like};
    return lg_build(LG_OP_SCATTER_ADD, in, 3, NULL);
}

lg_value lg_one_hot(lg_value idx, int64_t depth, lg_dtype dtype)
{
    if (!lg_value_ok(idx)) return lg_value_invalid();
    if (depth < 1 || (int)dtype < 0 || dtype >= LG_DTYPE_COUNT)
        return lg_graph_fail(idx.graph, "one_hot '%s': depth %lld must be >= 1 and the dtype valid", lg_value_name(idx),
                             (long long)depth);
    return lg_build(LG_OP_ONE_HOT, &idx, 1, &(lg_attrs){.ints = &depth, .n_ints = 1, .dtype = dtype});
}

static void grad_gather(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    lg_value table = lg_node_input(g, node, 0), idx = lg_node_input(g, node, 1);
    dx[0] = lg_scatter_add(dy[0], idx, table);
}

static void grad_scatter_add(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    dx[0] = lg_gather(dy[0], lg_node_input(g, node, 1));
}

const lg_op_def lg_op_def_gather = {"gather", 2, infer_gather, grad_gather};
const lg_op_def lg_op_def_scatter_add = {"scatter_add", 3, infer_scatter_add, grad_scatter_add};
const lg_op_def lg_op_def_one_hot = {"one_hot", 1, infer_one_hot, NULL};
