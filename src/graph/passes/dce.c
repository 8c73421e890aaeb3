/*
 * dce.c — drop what the fetches do not read.
 *
 * Nodes no fetch needs go, and so do the loop outputs nobody reads: stacked
 * per-step outputs (the body no longer computes them), saved residuals, and
 * the saved states (then stacked [0, ...]). This is where a forward loop's
 * residuals are chosen for the fetches asked for: without its gradient
 * loop in the program, nothing reads them and the loop saves none.
 *
 * Identities go too, so that what they read is read by fewer nodes (a
 * merged rnn node can then keep a stacked layer's output inside, see
 * merge_rnn.c): a stop_gradient is its input (the program's gradients are
 * built: fuse_rnn reads a layer's input through one); a where whose two
 * branches are one value is that value broadcast to its shape, its
 * condition unread (the layers' zero states take the batch from x that
 * way, src/nn/layers.c); a transpose of a transpose that undoes it is the
 * first one's input (a batch-major layer's output transposed back to
 * time-major by the layer above).
 */
#include "graph/ops.h"
#include "graph/passes/passes.h"
#include "ops/op.h"

/* The loop's spec without the outputs used[] marks unread, and where each
 * old output went (-1: dropped). NULL when out of memory. */
static lg_loop_spec *trim_loop(const lg_loop_spec *s, const bool *used, int *to, int *dropped)
{
    lg_loop_spec *d = lg_loop_spec_dup(s);
    if (!d) return NULL;
    int saved = s->n_state + s->n_y, first_res = 2 * s->n_state + s->n_y;
    bool states_read = false;
    for (int k = 0; k < s->n_state; k++) states_read = states_read || used[saved + k];
    int n_y = 0, n_res = 0;
    *dropped = 0;
    for (int j = 0; j < s->n_y; j++) {
        if (!used[s->n_state + j]) {
            (*dropped)++;
            continue;
        }
        d->outputs[s->n_state + n_y++] = s->outputs[s->n_state + j];
    }
    if (s->has_stop) d->outputs[s->n_state + n_y] = s->outputs[s->n_state + s->n_y];
    for (int r = 0; r < s->n_res; r++) {
        if (!used[first_res + r]) {
            (*dropped)++;
            continue;
        }
        d->res[n_res] = s->res[r];
        d->res_inputs[n_res++] = s->res_inputs[r];
    }
    d->n_y = n_y, d->n_res = n_res;
    if (!states_read && !s->drop_states && !s->gradient) d->drop_states = true, (*dropped)++;
    /* outputs: states, outputs, saved states, residuals (see lg_loop_spec) */
    int o = 0;
    for (int k = 0; k < s->n_state; k++) to[k] = o++;
    for (int j = 0; j < s->n_y; j++) to[s->n_state + j] = used[s->n_state + j] ? o++ : -1;
    for (int k = 0; k < s->n_state; k++) to[saved + k] = o++;
    for (int r = 0; r < s->n_res; r++) to[first_res + r] = used[first_res + r] ? o++ : -1;
    for (int j = 0; j < s->n_post; j++) to[first_res + s->n_res + j] = o++;
    return d;
}

/* Whether node n equals a value it reads, and which (*of): stop_gradient(v)
 * (autodiff is done: it is v), or transpose(transpose(v, p), q) with
 * p[q[i]] = i. */
static bool alias_of(const lg_graph *g, const lg_node *n, lg_ref *of)
{
    if (n->op == LG_OP_STOP_GRADIENT) {
        *of = n->in[0];
        return true;
    }
    if (n->op != LG_OP_TRANSPOSE) return false;
    const lg_node *m = &g->nodes[n->in[0].node];
    if (m->op != LG_OP_TRANSPOSE || m->attrs.n_ints != n->attrs.n_ints) return false;
    for (int i = 0; i < n->attrs.n_ints; i++)
        if (m->attrs.ints[n->attrs.ints[i]] != i) return false;
    *of = m->in[0];
    return true;
}

lg_status lg_pass_dce(lg_cgraph *cg)
{
    const lg_graph *g = cg->g;
    lg_rewrite r;
    lg_graph *dst = lg_graph_new();
    if (!dst || !lg_rewrite_init(&r, g, dst)) {
        lg_graph_free(dst);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    }
    int n_outs = r.base[g->n_nodes];
    bool *used = calloc((size_t)(n_outs ? n_outs : 1), sizeof *used);
    if (!used) {
        lg_rewrite_free(&r);
        lg_graph_free(dst);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
    }
    for (int k = 0; k < cg->n_outputs; k++) used[r.base[cg->outputs[k].node] + cg->outputs[k].out] = true;
    for (int k = 0; k < cg->n_inputs; k++) /* fed inputs stay, read or not */
        if (cg->inputs[k] >= 0) used[r.base[cg->inputs[k]]] = true;
    for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
        bool any = false;
        for (int o = 0; o < g->nodes[i].n_out; o++) any = any || used[r.base[i] + o];
        lg_ref of;
        if (any && alias_of(g, &g->nodes[i], &of)) {
            used[r.base[of.node] + of.out] = true;
            continue;
        }
        for (int j = lg_where_of_one(&g->nodes[i]) ? 1 : 0; any && j < g->nodes[i].n_in; j++)
            used[r.base[g->nodes[i].in[j].node] + g->nodes[i].in[j].out] = true;
    }
    lg_status st = LG_OK;
    int dropped_nodes = 0;
    for (int32_t i = 0; !st && i < g->n_nodes; i++) {
        const lg_node *n = &g->nodes[i];
        bool any = false;
        for (int o = 0; o < n->n_out; o++) any = any || used[r.base[i] + o];
        if (!any) {
            dropped_nodes++;
            continue;
        }
        lg_ref of;
        if (alias_of(g, n, &of)) {
            *lg_rewrite_at(&r, (lg_ref){i, 0}) = *lg_rewrite_at(&r, of);
            continue;
        }
        if (lg_where_of_one(n)) {
            lg_value v = lg_rewrite_value(&r, n->in[1]);
            if (!lg_shape_equal(lg_value_shape(v), n->out[0].shape)) v = lg_broadcast_to(v, n->out[0].shape);
            if (!lg_value_ok(v)) st = lg_cgraph_fail(dst, "dce");
            else *lg_rewrite_at(&r, (lg_ref){i, 0}) = (lg_ref){v.node, v.output};
            continue;
        }
        if (n->op != LG_OP_LOOP) {
            if (lg_rewrite_copy(&r, i, NULL, NULL) < 0) st = lg_cgraph_fail(dst, "dce");
            continue;
        }
        int to[n->n_out], dropped = 0;
        lg_loop_spec *s = trim_loop(n->attrs.loop, &used[r.base[i]], to, &dropped);
        if (!s) {
            st = lg_fail(LG_ERR_OUT_OF_MEMORY, "compile: out of memory");
            break;
        }
        lg_value in[n->n_in];
        for (int j = 0; j < n->n_in; j++) in[j] = lg_rewrite_value(&r, n->in[j]);
        int32_t id = lg_node_build(dst, LG_OP_LOOP, in, n->n_in, &(lg_attrs){.loop = s}, n->name);
        if (id < 0) {
            lg_loop_spec_free(s);
            st = lg_cgraph_fail(dst, "dce");
            break;
        }
        dst->nodes[id].is_grad = n->is_grad;
        for (int o = 0; o < n->n_out; o++)
            if (to[o] >= 0) *lg_rewrite_at(&r, (lg_ref){i, o}) = (lg_ref){id, to[o]};
        if (dropped)
            lg_cgraph_note(cg, "dce: loop '%s': %d unread outputs dropped%s", n->name, dropped,
                           s->drop_states && !n->attrs.loop->drop_states ? " (saved states included)" : "");
    }
    free(used);
    if (!st && dropped_nodes) lg_cgraph_note(cg, "dce: %d unread nodes dropped", dropped_nodes);
    if (st) {
        lg_rewrite_free(&r);
        lg_graph_free(dst);
        return st;
    }
    lg_cgraph_replace(cg, &r);
    lg_rewrite_free(&r);
    return LG_OK;
}
