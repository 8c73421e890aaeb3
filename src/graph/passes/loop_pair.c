/*
 * loop_pair.c — a forward loop and its gradient loop, for passes that
 * replace the pair (fuse_rnn by the rnn op pair, lower_loops by the lowered
 * loop pair): the forward loop's replacement is built from its inputs, and
 * the gradient loop becomes the vector-Jacobian product of that
 * replacement with the cotangents autodiff gave the gradient loop
 * (ops/loop.c's grad_loop).
 */
#include <stdlib.h>
#include <string.h>

#include "graph/ops.h"
#include "graph/passes/passes.h"
#include "ops/op.h"

static int n_inputs(const lg_loop_spec *s) { return s->n_seq + s->n_state + s->n_inv; }

bool lg_loop_input_depends(const lg_graph *g, int32_t loop, int a, int b, bool *seen)
{
    int32_t from = g->nodes[loop].in[a].node, to = g->nodes[loop].in[b].node;
    if (from <= to) return false; /* arena order: an ancestor comes first */
    memset(seen, 0, (size_t)(from + 1) * sizeof *seen);
    seen[from] = true;
    for (int32_t i = from; i > to; i--) {
        if (!seen[i]) continue;
        for (int j = 0; j < g->nodes[i].n_in; j++) {
            if (g->nodes[i].in[j].node == to) return true;
            seen[g->nodes[i].in[j].node] = true;
        }
    }
    return false;
}

bool lg_loop_inputs_cut(lg_rewrite *r, int32_t node, bool *seen, lg_value *in)
{
    const lg_node *n = &r->src->nodes[node];
    for (int a = 0; a < n->n_in; a++) {
        in[a] = lg_rewrite_value(r, n->in[a]);
        bool from_other = false;
        if (!lg_is_float(r->src->nodes[n->in[a].node].out[n->in[a].out].dtype)) continue;
        for (int b = 0; b < n->n_in && !from_other; b++) from_other = lg_loop_input_depends(r->src, node, a, b, seen);
        if (from_other) in[a] = lg_stop_gradient(in[a]);
        if (!lg_value_ok(in[a])) return false;
    }
    return true;
}

int32_t lg_loop_forward_of(const lg_graph *g, int32_t node)
{
    const lg_node *n = &g->nodes[node];
    if (n->op != LG_OP_LOOP || !n->attrs.loop->gradient) return -1;
    const lg_loop_spec *gs = n->attrs.loop;
    for (int j = 0; j < n->n_in; j++) {
        int32_t fw = n->in[j].node;
        if (g->nodes[fw].op != LG_OP_LOOP) continue;
        const lg_loop_spec *s = g->nodes[fw].attrs.loop;
        if (!s->gradient && gs->body == s->body && j == s->n_seq && n->in[j].out == s->n_state + s->n_y) return fw;
    }
    return -1;
}

lg_status lg_loop_grad_vjp(lg_rewrite *r, int32_t node, int32_t fw, const lg_value *fw_in, const lg_value *repl,
                           const char *pass)
{
    const lg_graph *g = r->src;
    lg_graph *dst = r->dst;
    const lg_loop_spec *s = g->nodes[fw].attrs.loop, *gs = g->nodes[node].attrs.loop;
    int n_in = n_inputs(s), n_out = s->n_state + s->n_y;
    lg_value *ys = malloc((size_t)(n_out ? n_out : 1) * sizeof *ys), *dys = malloc((size_t)(n_out ? n_out : 1) * sizeof *dys);
    lg_value *wrt = malloc((size_t)(n_in ? n_in : 1) * sizeof *wrt), *grads = malloc((size_t)(n_in ? n_in : 1) * sizeof *grads);
    int *slot = malloc((size_t)(n_in ? n_in : 1) * sizeof *slot); /* input k's place in wrt, or -1 */
    if (!ys || !dys || !wrt || !grads || !slot) {
        free(ys), free(dys), free(wrt), free(grads), free(slot);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "%s: out of memory", pass);
    }
    /* cotangents as the gradient loop got them: the next-state seeds after
     * its sequences, the per-step output cotangents after the stacked states */
    for (int k = 0; k < n_out; k++) {
        ys[k] = repl[k];
        int j = k < s->n_state ? gs->n_seq + k : s->n_seq + s->n_state + (k - s->n_state);
        dys[k] = lg_rewrite_value(r, g->nodes[node].in[j]);
    }
    int nw = 0;
    for (int k = 0; k < n_in; k++) {
        lg_value v = fw_in[k];
        slot[k] = -1;
        if (!lg_is_float(lg_value_dtype(v))) continue;
        for (int i = 0; i < nw && slot[k] < 0; i++)
            if (wrt[i].node == v.node && wrt[i].output == v.output) slot[k] = -2 - i; /* a repeat */
        if (slot[k] == -1) slot[k] = nw, wrt[nw++] = v;
    }
    lg_status st = lg_vjp(dst, ys, dys, n_out, wrt, nw, grads);
    /* the gradient loop's outputs: initial states, float invariants' sums,
     * then float sequences */
    int acc = 0, seq = 0;
    for (int k = 0; !st && k < n_in; k++) {
        if (slot[k] == -1) continue;
        lg_value v = fw_in[k], d;
        if (slot[k] >= 0) d = grads[slot[k]];
        else { /* one value feeding two loop inputs: its gradient went to the first */
            lg_value zero = lg_scalar_like(v, 0);
            d = lg_value_rank(v) ? lg_broadcast_like(zero, v) : zero;
        }
        int out;
        if (k < s->n_seq) out = gs->n_state + seq++;
        else if (k < s->n_seq + s->n_state) out = k - s->n_seq;
        else out = s->n_state + acc++;
        *lg_rewrite_at(r, (lg_ref){node, out}) = (lg_ref){d.node, d.output};
    }
    if (!st && dst->error) st = lg_cgraph_fail(dst, pass);
    free(ys), free(dys), free(wrt), free(grads), free(slot);
    return st;
}
