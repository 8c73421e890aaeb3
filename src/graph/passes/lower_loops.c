/*
 * lower_loops.c — build the loop attributes the executor does not read:
 * Keras masking (per-example lengths or a mask, zeros or repeated outputs
 * at masked steps) and truncated BPTT.
 *
 * The user's loop node keeps them as attributes (lg_loop_spec: masking,
 * repeat_output, truncate), so fuse_rnn reads a masked loop as it is. Here
 * each forward loop that still has them becomes the loop lg_loop_end built
 * before there were attributes (lg_loop_lower: where nodes in a copy of the
 * body, the validity sequence, outputs filled after the loop), and its
 * gradient loop, which autodiff built from the user's step, becomes what
 * lg_grad built for that lowered loop: the gradient of the fill after the
 * loop, then the loop's own gradient rule (a gradient loop over the lowered
 * body), given the cotangents autodiff gave the gradient loop. So values
 * and gradients are exactly those of the build-time form.
 *
 * It runs after fuse_rnn (which replaces the loops it fuses, attributes
 * and all) and before hoist. It cannot be switched off: the executor runs
 * only lowered loops (lg_passes_off refuses its name).
 */
#include <stdlib.h>

#include "graph/ops.h"
#include "graph/passes/passes.h"
#include "ops/op.h"

typedef struct lowered {
    int32_t id;     /* the lowered loop in the new graph */
    lg_value *repl; /* the loop's final states, stacked outputs and saved states there */
} lowered;

static int n_inputs(const lg_loop_spec *s) { return s->n_seq + s->n_state + s->n_inv; }

static lg_status lower_forward(lg_rewrite *r, int32_t node, lowered *x)
{
    const lg_node *n = &r->src->nodes[node];
    const lg_loop_spec *s = n->attrs.loop;
    int n_out = 2 * s->n_state + s->n_y;
    lg_value in[n->n_in];
    for (int a = 0; a < n->n_in; a++) in[a] = lg_rewrite_value(r, n->in[a]);
    x->repl = malloc((size_t)(n_out ? n_out : 1) * sizeof *x->repl);
    if (!x->repl) return lg_fail(LG_ERR_OUT_OF_MEMORY, "lower_loops: out of memory");
    x->id = lg_loop_lower(r->dst, s, n->name, in, x->repl);
    if (x->id < 0) return lg_cgraph_fail(r->dst, "lower_loops");
    for (int k = 0; k < n_out; k++)
        *lg_rewrite_at(r, (lg_ref){node, k}) = (lg_ref){x->repl[k].node, x->repl[k].output};
    return LG_OK;
}

/* The lowered loop's input standing for input k of the user's loop s:
 * lowering adds sequences (validity, truncation boundaries) and states
 * (repeated outputs) after the user's. */
static int lowered_input(const lg_loop_spec *s, const lg_loop_spec *ls, int k)
{
    if (k < s->n_seq) return k;
    if (k < s->n_seq + s->n_state) return ls->n_seq + (k - s->n_seq);
    return ls->n_seq + ls->n_state + (k - s->n_seq - s->n_state);
}

/* Gradient loop `node` of forward loop fw, lowered as x, as lg_grad builds
 * the gradient of the lowered loop from the cotangents the gradient loop
 * was given: first through the nodes after the lowered loop (the filled
 * outputs), then the loop's own rule; its outputs are mapped. */
static lg_status lower_gradient(lg_rewrite *r, int32_t node, int32_t fw, const lowered *x)
{
    const lg_graph *g = r->src;
    lg_graph *dst = r->dst;
    const lg_loop_spec *s = g->nodes[fw].attrs.loop, *gs = g->nodes[node].attrs.loop;
    const lg_loop_spec *ls = dst->nodes[x->id].attrs.loop;
    int n_out = s->n_state + s->n_y, n_in = n_inputs(s), ln_in = dst->nodes[x->id].n_in, ln_out = dst->nodes[x->id].n_out;
    lg_value *v = malloc((size_t)(5 * n_out + ln_in + ln_out + 1) * sizeof *v);
    int *idx = malloc((size_t)(n_out + 1) * sizeof *idx);
    if (!v || !idx) {
        free(v), free(idx);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "lower_loops: out of memory");
    }
    lg_value *d = v, *ys = d + n_out, *dys = ys + n_out, *wrt = dys + n_out, *grads = wrt + n_out;
    lg_value *dy = grads + n_out, *dx = dy + ln_out;
    /* cotangents as the gradient loop got them: the next-state seeds after
     * its sequences, the per-step output cotangents after the stacked states */
    int nf = 0;
    for (int k = 0; k < n_out; k++) {
        int j = k < s->n_state ? gs->n_seq + k : s->n_seq + s->n_state + (k - s->n_state);
        d[k] = lg_rewrite_value(r, g->nodes[node].in[j]);
        lg_value out = lg_value_of(dst, x->id, k < s->n_state ? k : ls->n_state + (k - s->n_state));
        if (!lg_is_float(lg_value_dtype(out))) continue;
        ys[nf] = x->repl[k], dys[nf] = d[k], wrt[nf] = out, idx[nf++] = k;
    }
    bool was = dst->in_grad;
    dst->in_grad = true;
    lg_status st = lg_vjp_after(dst, x->id + 1, ys, dys, nf, wrt, nf, grads);
    for (int i = 0; !st && i < nf; i++) d[idx[i]] = grads[i];
    for (int k = 0; k < ln_out; k++) dy[k] = lg_value_invalid();
    for (int k = 0; k < ln_in; k++) dx[k] = lg_value_invalid();
    for (int k = 0; k < n_out; k++) dy[k < s->n_state ? k : ls->n_state + (k - s->n_state)] = d[k];
    if (!st) lg_op_defs[LG_OP_LOOP]->grad(dst, x->id, dy, dx);
    dst->in_grad = was;
    if (!st && dst->error) st = lg_cgraph_fail(dst, "lower_loops");
    /* the gradient loop's outputs: initial states, float invariants' sums,
     * then float sequences */
    int acc = 0, seq = 0;
    for (int k = 0; !st && k < n_in; k++) {
        if (!lg_is_float(lg_value_dtype(lg_rewrite_value(r, g->nodes[fw].in[k])))) continue;
        lg_value dk = dx[lowered_input(s, ls, k)];
        LG_ASSERT(lg_value_ok(dk));
        int out;
        if (k < s->n_seq) out = gs->n_state + seq++;
        else if (k < s->n_seq + s->n_state) out = k - s->n_seq;
        else out = s->n_state + acc++;
        *lg_rewrite_at(r, (lg_ref){node, out}) = (lg_ref){dk.node, dk.output};
    }
    free(v), free(idx);
    return st;
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
    lg_graph *dst = lg_graph_new();
    lg_rewrite r = {0};
    lg_status st = x && dst && lg_rewrite_init(&r, g, dst) ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "lower_loops: out of memory");
    for (int32_t i = 0; !st && i < n; i++) {
        const lg_node *nd = &g->nodes[i];
        const lg_loop_spec *s = nd->op == LG_OP_LOOP ? nd->attrs.loop : NULL;
        if (s && lg_loop_has_attrs(s) && !s->gradient) {
            st = lower_forward(&r, i, &x[i]);
            continue;
        }
        if (s && lg_loop_has_attrs(s)) {
            int32_t fw = lg_loop_forward_of(g, i);
            if (fw < 0 || !x[fw].repl)
                st = lg_fail(LG_ERR_GRAPH, "lower_loops: gradient loop '%s' of a masked or truncated loop without "
                                           "its forward loop", nd->name);
            else st = lower_gradient(&r, i, fw, &x[fw]);
            continue;
        }
        st = unmapped(&r, nd->in, nd->n_in, nd->name);
        if (!st && lg_rewrite_copy(&r, i, NULL, NULL) < 0) st = lg_cgraph_fail(dst, "lower_loops");
    }
    if (!st) st = unmapped(&r, cg->outputs, cg->n_outputs, "a fetch");
    if (!st) lg_cgraph_replace(cg, &r);
    else lg_graph_free(dst);
    lg_rewrite_free(&r);
    for (int32_t i = 0; x && i < n; i++) free(x[i].repl);
    free(x);
    return st;
}
