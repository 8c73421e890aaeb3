/*
 * linalg.c — matmul: a [..., M, K] x b [K, N] or [..., K, N] -> [..., M, N],
 * attrs.trans_a / trans_b transposing the last two dims of an operand.
 */
#include "graph/ops.h"
#include "ops/op.h"

static bool infer_matmul(const lg_node *n, const lg_port *in, lg_port *out, char *err, size_t size)
{
    lg_shape a = in[0].shape, b = in[1].shape;
    if (in[0].dtype != in[1].dtype || !lg_is_float(in[0].dtype)) {
        lg_infer_error(err, size, in, 2, "needs two f32 or two f64 operands");
        return false;
    }
    if (a.rank < 2 || b.rank < 2 || (b.rank > 2 && b.rank != a.rank)) {
        lg_infer_error(err, size, in, 2, "needs a of rank >= 2 and b of rank 2 or a's rank");
        return false;
    }
    int64_t m = a.dims[a.rank - (n->attrs.trans_a ? 1 : 2)], ka = a.dims[a.rank - (n->attrs.trans_a ? 2 : 1)];
    int64_t kb = b.dims[b.rank - (n->attrs.trans_b ? 1 : 2)], nn = b.dims[b.rank - (n->attrs.trans_b ? 2 : 1)];
    bool ok = ka == kb || ka == -1 || kb == -1;
    lg_shape o = a;
    for (int i = 0; ok && b.rank > 2 && i < a.rank - 2; i++) {
        ok = a.dims[i] == b.dims[i] || a.dims[i] == -1 || b.dims[i] == -1;
        if (o.dims[i] == -1) o.dims[i] = b.dims[i];
    }
    if (!ok) {
        lg_infer_error(err, size, in, 2, "inner or batch dims differ");
        return false;
    }
    o.dims[o.rank - 2] = m;
    o.dims[o.rank - 1] = nn;
    out[0] = (lg_port){in[0].dtype, o};
    return true;
}

lg_value lg_matmul(lg_value a, lg_value b, bool trans_a, bool trans_b)
{
    lg_value in[2] = {a, b};
    return lg_build(LG_OP_MATMUL, in, 2, &(lg_attrs){.trans_a = trans_a, .trans_b = trans_b});
}

/* Sum over a's batch dims when b is 2-D: [..., K, N] -> [K, N]. */
static lg_value fold_batch(lg_value x, int rank_b)
{
    if (rank_b > 2 || lg_value_rank(x) == 2) return x;
    int axes[LG_MAX_RANK], k = 0;
    for (int i = 0; i < lg_value_rank(x) - 2; i++) axes[k++] = i;
    return lg_sum(x, axes, k, false);
}

/* x with its last two dims swapped. */
static lg_value swap_last(lg_value x)
{
    int r = lg_value_rank(x), perm[LG_MAX_RANK];
    for (int i = 0; i < r; i++) perm[i] = i;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return lg_transpose(x, perm);
}

/* C = op(A) op(B): d op(A) = dC op(B)^T and d op(B) = op(A)^T dC, each
 * transposed back when its operand was; a 2-D B sums over A's batch dims. */
static void grad_matmul(lg_graph *g, int32_t node, const lg_value *dy, lg_value *dx)
{
    bool ta = g->nodes[node].attrs.trans_a, tb = g->nodes[node].attrs.trans_b;
    lg_value a = lg_node_input(g, node, 0), b = lg_node_input(g, node, 1), d = dy[0];
    lg_value da = lg_matmul(d, b, false, !tb);
    dx[0] = ta ? swap_last(da) : da;
    lg_value db = tb ? lg_matmul(d, a, true, ta) : lg_matmul(a, d, !ta, false);
    dx[1] = fold_batch(db, lg_value_rank(b));
}

const lg_op_def lg_op_def_matmul = {"matmul", 2, infer_matmul, grad_matmul};
