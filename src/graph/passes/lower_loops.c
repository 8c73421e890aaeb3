/*
 * lower_loops.c — build the loop attributes the executor does not read:
 * Keras masking (per-example lengths or a mask, zeros or repeated outputs
 * at masked steps) and truncated BPTT.
 *
 * The user's loop node keeps them as attributes (lg_loop_spec: masking,
 * repeat_output, truncate), so fuse_rnn reads a masked loop as it is. Here
 * each forward loop that still has them becomes the loop lg_loop_end built
 * before there were attributes (lg_loop_lower: where nodes in a copy of the
 * body, the validity sequence, outputs filled after the loop), so results
 * are those of that graph. Its gradient loop, which autodiff built from the
 * user's step, becomes the gradient of the lowered loop: the
 * vector-Jacobian product of the lowered loop's results with the
 * cotangents the gradient loop was given (lg_loop_grad_vjp), which builds
 * the gradient loop of the lowered body as lg_grad did.
 *
 * It runs after fuse_rnn (which replaces the loops it fuses, attributes
 * and all) and before hoist. It cannot be switched off: the executor runs
 * only lowered loops (lg_passes_off refuses its name).
 */
#include <stdlib.h>

#include "graph/ops.h"
#include "graph/passes/passes.h"

typedef struct lowered {
    lg_value *in;   /* the forward loop's inputs in the new graph (cut: lg_loop_inputs_cut) */
    lg_value *repl; /* its final states, stacked outputs and saved states there */
} lowered;

static lg_status lower_forward(lg_rewrite *r, int32_t node, bool *seen, lowered *x)
{
    const lg_node *n = &r->src->nodes[node];
    const lg_loop_spec *s = n->attrs.loop;
    int n_out = 2 * s->n_state + s->n_y;
    x->in = malloc((size_t)n->n_in * sizeof *x->in);
    x->repl = malloc((size_t)(n_out ? n_out : 1) * sizeof *x->repl);
    if (!x->in || !x->repl) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lower_loops: out of memory");
    if (!lg_loop_inputs_cut(r, node, seen, x->in) || lg_loop_lower(r->dst, s, n->name, x->in, x->repl) < 0)
        return lg_cgraph_fail(r->dst, "lower_loops");
    for (int k = 0; k < n_out; k++)
        *lg_rewrite_at(r, (lg_ref){node, k}) = (lg_ref){x->repl[k].node, x->repl[k].output};
    return LG_OK;
}

/* A value of the attribute-level loop that only its gradient loop may read
 * (its residuals: the lowered loop saves others). */
static lg_status unmapped(const lg_rewrite *r, const lg_ref *refs, int n, const char *reader)
{
    for (int j = 0; j < n; j++)
        if (lg_rewrite_at(r, refs[j])->node < 0)
            return lg_fail(LG_ERR_GRAPH,
                           "lower_loops: %s reads output %d of masked or truncated loop '%s' (a saved residual), "
                           "which only its gradient loop may read",
                           reader, refs[j].out, r->src->nodes[refs[j].node].name);
    return LG_OK;
}

lg_status lg_pass_lower_loops(lg_cgraph *cg)
{
    const lg_graph *g = cg->g;
    int32_t n = g->n_nodes;
    bool any = false;
    for (int32_t i = 0; i < n && !any; i++) any = g->nodes[i].op == LG_OP_LOOP && lg_loop_has_attrs(g->nodes[i].attrs.loop);
    if (!any) return LG_OK;
    lowered *x = calloc((size_t)n, sizeof *x);
    bool *seen = malloc((size_t)n * sizeof *seen);
    lg_graph *dst = lg_graph_new();
    lg_rewrite r = {0};
    lg_status st = x && seen && dst && lg_rewrite_init(&r, g, dst) ? LG_OK
                                                                   : lg_fail(LG_ERR_OUT_OF_MEMORY, "lower_loops: out of memory");
    for (int32_t i = 0; !st && i < n; i++) {
        const lg_node *nd = &g->nodes[i];
        const lg_loop_spec *s = nd->op == LG_OP_LOOP ? nd->attrs.loop : NULL;
        if (s && lg_loop_has_attrs(s) && !s->gradient) {
            st = lower_forward(&r, i, seen, &x[i]);
            continue;
        }
        if (s && lg_loop_has_attrs(s)) {
            int32_t fw = lg_loop_forward_of(g, i);
            if (fw < 0 || !x[fw].repl)
                st = lg_fail(LG_ERR_GRAPH, "lower_loops: gradient loop '%s' of a masked or truncated loop without "
                                           "its forward loop", nd->name);
            else st = lg_loop_grad_vjp(&r, i, fw, x[fw].in, x[fw].repl, "lower_loops");
            continue;
        }
        st = unmapped(&r, nd->in, nd->n_in, nd->name);
        if (!st && lg_rewrite_copy(&r, i, NULL, NULL) < 0) st = lg_cgraph_fail(dst, "lower_loops");
    }
    if (!st) st = unmapped(&r, cg->outputs, cg->n_outputs, "a fetch");
    if (!st) lg_cgraph_replace(cg, &r);
    else lg_graph_free(dst);
    lg_rewrite_free(&r);
    for (int32_t i = 0; x && i < n; i++) free(x[i].in), free(x[i].repl);
    free(x), free(seen);
    return st;
}
