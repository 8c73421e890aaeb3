/*
 * fuse_rnn.c — replace recurrent loops that match a cell by the fused rnn op
 * pair (src/ops/rnn.h).
 *
 * Each forward loop is read by the structural matcher (fuse_rnn_match.h).
 * A match becomes one rnn node (lg_rnn_fuse_loop): its final states and
 * stacked output stand where the loop's were. The loop's gradient loops
 * are found as autodiff built them (ops/loop.c's grad_loop): a gradient
 * loop shares the forward body and reads the forward node's stacked states
 * as its sequences right after the forward sequences. Each becomes the
 * vector-Jacobian product of the rnn node with the cotangents that gradient
 * loop was given: an rnn_grad node reading the forward node's workspace,
 * followed by the adjoints of the slices and concats that assembled W, U
 * and b, so every gradient reaches the invariant it belongs to. Its outputs
 * (the initial states', invariants' and sequences' gradients) stand where
 * the gradient loop's were.
 *
 * A loop that does not match keeps its loop node and gets a report line
 * with the matcher's reason. It runs before hoist: hoist moves x_t W out of
 * the body, and the matcher needs the body as the user made it.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/ops.h"
#include "graph/passes/fuse_rnn_match.h"
#include "graph/passes/passes.h"

typedef struct fused {
    lg_rnn_match m;
    int32_t copy;   /* the loop's copy in the rebuilt graph (dropped after) */
    lg_value *repl; /* per loop output below n_state + n_y: its replacement */
} fused;

static int n_inputs(const lg_loop_spec *s) { return s->n_seq + s->n_state + s->n_inv; }

/* Whether something other than a gradient loop of `loop` reads the values
 * only the loop computes: its saved states and residuals (a loop nested in
 * a differentiated loop's body, whose gradient is in another graph), or a
 * gradient loop's own saved states. */
static bool read_elsewhere(const lg_cgraph *cg, int32_t loop)
{
    const lg_graph *g = cg->g;
    const lg_loop_spec *s = g->nodes[loop].attrs.loop;
    int kept = s->n_state + s->n_y;
    bool *grad = calloc((size_t)g->n_nodes, sizeof *grad);
    if (!grad) return true;
    for (int32_t j = loop + 1; j < g->n_nodes; j++) {
        const lg_node *n = &g->nodes[j];
        const lg_loop_spec *gs = n->op == LG_OP_LOOP ? n->attrs.loop : NULL;
        grad[j] = gs && gs->gradient && gs->body == s->body && n->n_in > s->n_seq && n->in[s->n_seq].node == loop &&
                  n->in[s->n_seq].out == kept;
    }
    bool elsewhere = false;
    for (int32_t j = loop + 1; j < g->n_nodes && !elsewhere; j++)
        for (int i = 0; i < g->nodes[j].n_in && !elsewhere; i++) {
            lg_ref in = g->nodes[j].in[i];
            if (in.node == loop) elsewhere = in.out >= kept && !grad[j];
            else if (grad[in.node]) {
                const lg_loop_spec *gs = g->nodes[in.node].attrs.loop;
                elsewhere = in.out >= gs->n_state + gs->n_y;
            }
        }
    for (int k = 0; k < cg->n_outputs && !elsewhere; k++) {
        lg_ref o = cg->outputs[k];
        if (o.node == loop) elsewhere = o.out >= kept;
        else if (grad[o.node]) {
            const lg_loop_spec *gs = g->nodes[o.node].attrs.loop;
            elsewhere = o.out >= gs->n_state + gs->n_y;
        }
    }
    free(grad);
    return elsewhere;
}

/* Why loop node `node` cannot be fused beyond what the matcher says, or
 * NULL. why holds the text. */
static const char *refusal(const lg_cgraph *cg, int32_t node, const lg_rnn_match *m, char *why, size_t len)
{
    const lg_graph *g = cg->g;
    const lg_loop_spec *s = g->nodes[node].attrs.loop;
    if (!cg->backend || !cg->backend->kernels[LG_OP_RNN] || !cg->backend->kernels[LG_OP_RNN_GRAD]) {
        snprintf(why, len, "the %s backend has no fused rnn kernel", cg->backend ? cg->backend->name : "(no)");
        return why;
    }
    /* the matcher accepts only loops whose outputs are the cell's */
    LG_ASSERT(s->n_state == lg_rnn_states(m->cell) && s->n_y == (m->y_out >= 0));
    if (read_elsewhere(cg, node)) {
        snprintf(why, len, "its saved states are read outside its gradient loop (a loop in a differentiated loop's "
                           "body, whose gradient is built in another graph)");
        return why;
    }
    return NULL;
}

/* The gradient loop `node`'s forward loop among the fused ones, or -1. */
static int32_t forward_of(const lg_graph *g, int32_t node, fused *const *f)
{
    int32_t fw = lg_loop_forward_of(g, node);
    return fw >= 0 && f[fw] ? fw : -1;
}

/* Copy fused loop `node` into r->dst with its inputs cut from each other
 * (lg_loop_inputs_cut); the rnn node is built from the copy's inputs. */
static int32_t copy_fused(lg_rewrite *r, int32_t node, bool *seen)
{
    const lg_node *n = &r->src->nodes[node];
    lg_ref saved[n->n_in];
    lg_value in[n->n_in];
    for (int a = 0; a < n->n_in; a++) saved[a] = *lg_rewrite_at(r, n->in[a]);
    if (!lg_loop_inputs_cut(r, node, seen, in)) return -1;
    for (int a = 0; a < n->n_in; a++) *lg_rewrite_at(r, n->in[a]) = (lg_ref){in[a].node, in[a].output};
    int32_t id = lg_rewrite_copy(r, node, NULL, NULL);
    for (int a = 0; a < n->n_in; a++) *lg_rewrite_at(r, n->in[a]) = saved[a];
    return id;
}

static lg_status rebuild(lg_cgraph *cg, fused **f, bool *seen)
{
    const lg_graph *g = cg->g;
    lg_rewrite r;
    lg_graph *dst = lg_graph_new();
    if (!dst || !lg_rewrite_init(&r, g, dst)) {
        lg_graph_free(dst);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_rnn: out of memory");
    }
    lg_status st = LG_OK;
    for (int32_t i = 0; !st && i < g->n_nodes; i++) {
        int32_t fw = forward_of(g, i, f);
        if (fw >= 0) {
            int n_in = n_inputs(g->nodes[fw].attrs.loop);
            lg_value in[n_in > 0 ? n_in : 1];
            for (int k = 0; k < n_in; k++) in[k] = lg_node_input(dst, f[fw]->copy, k);
            st = lg_loop_grad_vjp(&r, i, fw, in, f[fw]->repl, "fuse_rnn");
            continue;
        }
        int32_t id = f[i] ? copy_fused(&r, i, seen) : lg_rewrite_copy(&r, i, NULL, NULL);
        if (id < 0) st = lg_cgraph_fail(dst, "fuse_rnn");
        if (st || !f[i]) continue;
        const lg_loop_spec *s = g->nodes[i].attrs.loop;
        f[i]->copy = id;
        if (lg_rnn_fuse_loop(dst, id, &f[i]->m, f[i]->repl) < 0) st = lg_cgraph_fail(dst, "fuse_rnn");
        for (int k = 0; !st && k < s->n_state + s->n_y; k++)
            *lg_rewrite_at(&r, (lg_ref){i, k}) = (lg_ref){f[i]->repl[k].node, f[i]->repl[k].output};
    }
    if (!st) lg_cgraph_replace(cg, &r);
    else lg_graph_free(dst);
    lg_rewrite_free(&r);
    return st;
}

/* Drop the replaced loops' copies (nothing reads them now). */
static lg_status drop_copies(lg_cgraph *cg, const bool *drop)
{
    const lg_graph *g = cg->g;
    lg_rewrite r;
    lg_graph *dst = lg_graph_new();
    if (!dst || !lg_rewrite_init(&r, g, dst)) {
        lg_graph_free(dst);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_rnn: out of memory");
    }
    lg_status st = LG_OK;
    for (int32_t i = 0; !st && i < g->n_nodes; i++)
        if (!drop[i] && lg_rewrite_copy(&r, i, NULL, NULL) < 0) st = lg_cgraph_fail(dst, "fuse_rnn");
    if (!st) lg_cgraph_replace(cg, &r);
    else lg_graph_free(dst);
    lg_rewrite_free(&r);
    return st;
}

lg_status lg_pass_fuse_rnn(lg_cgraph *cg)
{
    const lg_graph *g = cg->g;
    int32_t n = g->n_nodes;
    bool any = false;
    for (int32_t i = 0; i < n; i++) any = any || g->nodes[i].op == LG_OP_LOOP;
    if (!any) return LG_OK;
    fused **f = calloc((size_t)n, sizeof *f);
    bool *seen = malloc((size_t)n * sizeof *seen);
    lg_status st = f && seen ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_rnn: out of memory");
    int n_fused = 0;
    for (int32_t i = 0; !st && i < n; i++) {
        const lg_node *nd = &g->nodes[i];
        if (nd->op != LG_OP_LOOP || nd->attrs.loop->gradient) continue;
        fused *x = calloc(1, sizeof *x);
        if (!x || !(x->repl = calloc(3, sizeof *x->repl))) {
            free(x);
            st = lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_rnn: out of memory");
            break;
        }
        char why[256];
        const char *no = lg_rnn_match_loop(nd->attrs.loop, &x->m) ? refusal(cg, i, &x->m, why, sizeof why)
                                                                  : x->m.reason;
        if (no) {
            lg_cgraph_note(cg, "fuse_rnn: loop '%s': not fused: %s", nd->name, no);
            free(x->repl), free(x);
            continue;
        }
        lg_cgraph_note(cg, "fuse_rnn: loop '%s': fused as %s (%lld units%s%s%s)", nd->name,
                       lg_rnn_cell_name(x->m.cell), (long long)x->m.units, x->m.has_bias ? ", bias" : "",
                       x->m.reverse ? ", reverse" : "", x->m.mask_seq >= 0 ? ", masked" : "");
        f[i] = x;
        n_fused++;
    }
    bool *drop = NULL;
    if (!st && n_fused) st = rebuild(cg, f, seen);
    if (!st && n_fused) {
        drop = calloc((size_t)cg->g->n_nodes, sizeof *drop);
        if (!drop) st = lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_rnn: out of memory");
        for (int32_t i = 0; !st && i < n; i++)
            if (f[i]) drop[f[i]->copy] = true;
        if (!st) st = drop_copies(cg, drop);
    }
    for (int32_t i = 0; f && i < n; i++)
        if (f[i]) free(f[i]->repl), free(f[i]);
    free(f), free(seen), free(drop);
    return st;
}
