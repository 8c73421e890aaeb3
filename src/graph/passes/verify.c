/*
 * verify.c — the compile-time graph is well formed: every input refers to an
 * earlier node's output, every port is concrete, and each op's shape
 * inference, run again, gives the ports the node has. Run first, it checks
 * lowering; errors are internal (LG_ERR_GRAPH) and name the node.
 */
#include "graph/passes/passes.h"
#include "ops/op.h"

static bool concrete(lg_shape s)
{
    for (int i = 0; i < s.rank; i++)
        if (s.dims[i] < 0) return false;
    return s.rank >= 0 && s.rank <= LG_MAX_RANK;
}

static lg_status verify_node(const lg_graph *g, int32_t i)
{
    const lg_node *n = &g->nodes[i];
    const char *op = lg_op_defs[n->op]->name;
    lg_port in[n->n_in > 0 ? n->n_in : 1], out[n->n_out > 0 ? n->n_out : 1];
    for (int j = 0; j < n->n_in; j++) {
        lg_ref r = n->in[j];
        if (r.node < 0 || r.node >= i || r.out < 0 || r.out >= g->nodes[r.node].n_out)
            return lg_fail(LG_ERR_GRAPH, "verify: %s '%s': input %d refers to node %d output %d, not an earlier node", op,
                           n->name, j, r.node, r.out);
        in[j] = g->nodes[r.node].out[r.out];
    }
    for (int o = 0; o < n->n_out; o++)
        if (!concrete(n->out[o].shape))
            return lg_fail(LG_ERR_GRAPH, "verify: %s '%s': output %d has shape %s, not concrete", op, n->name, o,
                           lg_shape_cstr(n->out[o].shape));
    if (!lg_op_is_compute(n->op)) return LG_OK;
    if (n->op == LG_OP_LOOP) {
        const lg_loop_spec *s = n->attrs.loop;
        int n_mask = lg_loop_mask_input(s) >= 0;
        if (n->n_in != s->n_seq + s->n_state + s->n_inv + s->n_post + n_mask)
            return lg_fail(LG_ERR_GRAPH,
                           "verify: loop '%s': %d inputs for %d sequences, %d states, %d invariants, %d accumulators "
                           "and %d lengths or masks",
                           n->name, n->n_in, s->n_seq, s->n_state, s->n_inv, s->n_post, n_mask);
    }
    char err[512] = "";
    if (!lg_op_infer(n, in, out, err, sizeof err))
        return lg_fail(LG_ERR_GRAPH, "verify: %s '%s': %s", op, n->name, err);
    for (int o = 0; o < n->n_out; o++)
        if (out[o].dtype != n->out[o].dtype || !lg_shape_equal(out[o].shape, n->out[o].shape))
            return lg_fail(LG_ERR_GRAPH, "verify: %s '%s': output %d is %s %s, its inputs give %s %s", op, n->name, o,
                           lg_dtype_name(n->out[o].dtype), lg_shape_cstr(n->out[o].shape), lg_dtype_name(out[o].dtype),
                           lg_shape_cstr(out[o].shape));
    return LG_OK;
}

lg_status lg_pass_verify(lg_cgraph *cg)
{
    const lg_graph *g = cg->g;
    for (int32_t i = 0; i < g->n_nodes; i++) {
        lg_status st = verify_node(g, i);
        if (st) return st;
    }
    for (int k = 0; k < cg->n_outputs; k++) {
        lg_ref r = cg->outputs[k];
        if (r.node < 0 || r.node >= g->n_nodes || r.out < 0 || r.out >= g->nodes[r.node].n_out)
            return lg_fail(LG_ERR_GRAPH, "verify: fetch %d refers to node %d output %d, which does not exist", k, r.node,
                           r.out);
    }
    return LG_OK;
}
