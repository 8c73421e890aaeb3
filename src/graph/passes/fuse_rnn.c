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
 * the gradient loop's were. A fused loop without a gradient loop in the
 * program becomes a forward-only rnn node, which keeps no workspace.
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
    int n_grad;     /* its gradient loops in the program */
    int32_t copy;   /* the loop's copy in the rebuilt graph (dropped after) */
    lg_value *repl; /* per loop output below n_state + n_y: its replacement */
} fused;

static int n_inputs(const lg_loop_spec *s) { return s->n_seq + s->n_state + s->n_inv; }

/* True when input a of loop node `loop` is computed from input b (as
 * Keras's zero initial state is from x's batch size). */
static bool depends_on(const lg_graph *g, int32_t loop, int a, int b, bool *seen)
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

/* Whether something other than a gradient loop of `loop` reads the values
 * only the loop computes: its saved states and residuals (a loop nested in
 * a differentiated loop's body, whose gradient is in another graph), or a
 * gradient loop's own saved states. */
static bool read_elsewhere(const lg_graph *g, const lg_ref *outputs, int n_outputs, int32_t loop)
{
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
    for (int k = 0; k < n_outputs && !elsewhere; k++) {
        lg_ref o = outputs[k];
        if (o.node == loop) elsewhere = o.out >= kept;
        else if (grad[o.node]) {
            const lg_loop_spec *gs = g->nodes[o.node].attrs.loop;
            elsewhere = o.out >= gs->n_state + gs->n_y;
        }
    }
    free(grad);
    return elsewhere;
}

/* Why forward loop node `node` of g (whose program fetches outputs, and
 * which has n_grad gradient loops) cannot be fused on backend b, or NULL
 * when it is fused as m. why holds the text. */
static const char *refusal(const lg_backend *b, const lg_graph *g, const lg_ref *outputs, int n_outputs, int32_t node,
                           int n_grad, lg_rnn_match *m, char *why, size_t len)
{
    const lg_loop_spec *s = g->nodes[node].attrs.loop;
    if (!lg_rnn_match_loop(s, m)) return m->reason;
    const lg_node fwd = {.op = LG_OP_RNN}, bwd = {.op = LG_OP_RNN_GRAD};
    if (b && b->rnn_plan) {
        lg_port x = g->nodes[g->nodes[node].in[m->x_seq].node].out[g->nodes[node].in[m->x_seq].out];
        lg_rnn_desc d = {.cell = m->cell,
                         .flags = lg_rnn_match_flags(m, n_grad) & ~(unsigned)LG_RNN_FORWARD_ONLY,
                         .dtype = x.dtype,
                         .T = x.shape.dims[0],
                         .B = x.shape.dims[1],
                         .I = x.shape.rank == 3 ? x.shape.dims[2] : -1,
                         .H = m->units,
                         .mask_by_lengths = m->mask_seq >= 0 && s->masking == LG_LOOP_BY_LENGTHS,
                         .name = g->nodes[node].name};
        char no[200];
        if (!b->rnn_plan(b, &d, &m->train_sizes, &m->forward_sizes, no, sizeof no)) {
            snprintf(why, len, "the %s backend: %s", b->name, no);
            return why;
        }
    } else if (!b || !b->supports_op(b, &fwd) || !b->supports_op(b, &bwd)) {
        snprintf(why, len, "the %s backend has no fused rnn kernel", b ? b->name : "(no)");
        return why;
    }
    /* the matcher accepts only loops whose outputs are the cell's */
    LG_ASSERT(s->n_state == lg_rnn_states(m->cell) && s->n_y == (m->y_out >= 0));
    if (read_elsewhere(g, outputs, n_outputs, node)) {
        snprintf(why, len, "its saved states are read outside its gradient loop (a loop in a differentiated loop's "
                           "body, whose gradient is built in another graph)");
        return why;
    }
    return NULL;
}

/* What a matched loop runs as, for reports: "lstm (64 units, bias)". */
static void describe(const lg_rnn_match *m, char *buf, size_t len)
{
    snprintf(buf, len, "%s (%lld units%s%s%s%s%s)", lg_rnn_cell_name(m->cell), (long long)m->units,
             m->has_bias ? ", bias" : "", m->reverse ? ", reverse" : "", m->mask_seq >= 0 ? ", masked" : "",
             m->x_mask >= 0 ? ", dropout" : "", m->h_mask >= 0 ? ", recurrent dropout" : "");
}

/* The gradient loop `node`'s forward loop among the fused ones, or -1. */
static int32_t forward_of(const lg_graph *g, int32_t node, fused *const *f)
{
    int32_t fw = lg_loop_forward_of(g, node);
    return fw >= 0 && f[fw] ? fw : -1;
}

/* The gradient loop `node` of fused loop `fw` as the rnn node's
 * vector-Jacobian product in r->dst; its outputs are mapped. */
static lg_status replace_grad(lg_rewrite *r, int32_t node, int32_t fw, const fused *f)
{
    const lg_graph *g = r->src;
    lg_graph *dst = r->dst;
    const lg_loop_spec *s = g->nodes[fw].attrs.loop, *gs = g->nodes[node].attrs.loop;
    int n_in = n_inputs(s), n_out = s->n_state + s->n_y;
    lg_value ys[3], dys[3], *wrt = malloc((size_t)n_in * sizeof *wrt), *grads = malloc((size_t)n_in * sizeof *grads);
    int *slot = malloc((size_t)n_in * sizeof *slot); /* input k's place in wrt, or -1 */
    if (!wrt || !grads || !slot) {
        free(wrt), free(grads), free(slot);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_rnn: out of memory");
    }
    /* cotangents as the gradient loop got them: the next-state seeds after
     * its sequences, the per-step output cotangents after the stacked states */
    for (int k = 0; k < n_out; k++) {
        ys[k] = f->repl[k];
        int j = k < s->n_state ? gs->n_seq + k : s->n_seq + s->n_state + (k - s->n_state);
        dys[k] = lg_rewrite_value(r, g->nodes[node].in[j]);
    }
    int nw = 0;
    for (int k = 0; k < n_in; k++) {
        lg_value v = lg_node_input(dst, f->copy, k);
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
        lg_value v = lg_node_input(dst, f->copy, k), d;
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
    if (!st && dst->error) st = lg_cgraph_fail(dst, "fuse_rnn");
    free(wrt), free(grads), free(slot);
    return st;
}

/* Copy fused loop `node` into r->dst with an input that is computed from
 * another input read through stop_gradient: the rnn node's vjp then gives
 * each input only the gradient through the loop, as the gradient loop did
 * (otherwise one would come back again through the other). */
static int32_t copy_fused(lg_rewrite *r, int32_t node, bool *seen)
{
    const lg_node *n = &r->src->nodes[node];
    lg_ref saved[n->n_in];
    for (int a = 0; a < n->n_in; a++) saved[a] = *lg_rewrite_at(r, n->in[a]);
    for (int a = 0; a < n->n_in; a++) {
        bool from_other = false;
        if (!lg_is_float(r->src->nodes[n->in[a].node].out[n->in[a].out].dtype)) continue;
        for (int b = 0; b < n->n_in && !from_other; b++) from_other = depends_on(r->src, node, a, b, seen);
        if (!from_other) continue;
        lg_value v = lg_stop_gradient(lg_rewrite_value(r, n->in[a]));
        if (!lg_value_ok(v)) return -1;
        *lg_rewrite_at(r, n->in[a]) = (lg_ref){v.node, v.output};
    }
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
            st = replace_grad(&r, i, fw, f[fw]);
            continue;
        }
        int32_t id = f[i] ? copy_fused(&r, i, seen) : lg_rewrite_copy(&r, i, NULL, NULL);
        if (id < 0) st = lg_cgraph_fail(dst, "fuse_rnn");
        if (st || !f[i]) continue;
        const lg_loop_spec *s = g->nodes[i].attrs.loop;
        f[i]->copy = id;
        if (lg_rnn_fuse_loop(dst, id, &f[i]->m, f[i]->n_grad, f[i]->repl) < 0) st = lg_cgraph_fail(dst, "fuse_rnn");
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
    int n_fused = 0, *n_grad = st ? NULL : calloc((size_t)n, sizeof *n_grad);
    if (!st && !n_grad) st = lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_rnn: out of memory");
    for (int32_t i = 0; !st && i < n; i++) {
        int32_t fw = g->nodes[i].op == LG_OP_LOOP ? lg_loop_forward_of(g, i) : -1;
        if (fw >= 0) n_grad[fw]++;
    }
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
        const char *no = refusal(cg->backend, g, cg->outputs, cg->n_outputs, i, n_grad[i], &x->m, why, sizeof why);
        if (no) {
            lg_cgraph_note(cg, "fuse_rnn: loop '%s': not fused: %s", nd->name, no);
            free(x->repl), free(x);
            continue;
        }
        describe(&x->m, why, sizeof why);
        lg_cgraph_note(cg, "fuse_rnn: loop '%s': fused as %s", nd->name, why);
        x->n_grad = n_grad[i]; /* none: the rnn node keeps no workspace */
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
    free(f), free(seen), free(drop), free(n_grad);
    return st;
}

bool lg_loop_fused(const lg_graph *g, int node, char *what, size_t len)
{
    char why[256];
    const char *no = NULL;
    lg_rnn_match m;
    if (!g) no = "graph is NULL";
    else if (node < 0 || node >= g->n_nodes || g->nodes[node].op != LG_OP_LOOP) no = "not a loop node";
    else if (g->nodes[node].attrs.loop->gradient) {
        /* autodiff's gradient loop reads its forward loop's stacked states
         * right after the forward sequences, and shares its body */
        const lg_loop_spec *gs = g->nodes[node].attrs.loop;
        int32_t fw = -1;
        for (int j = 0; j < g->nodes[node].n_in && fw < 0; j++) {
            lg_ref in = g->nodes[node].in[j];
            const lg_loop_spec *s = g->nodes[in.node].op == LG_OP_LOOP ? g->nodes[in.node].attrs.loop : NULL;
            if (s && !s->gradient && s->body == gs->body && j == s->n_seq && in.out == s->n_state + s->n_y)
                fw = in.node;
        }
        if (fw < 0) no = "a gradient loop whose forward loop is in another graph";
        else return lg_loop_fused(g, fw, what, len);
    } else {
        no = refusal(lg_backend_cpu(), g, NULL, 0, node, 0, &m, why, sizeof why);
    }
    if (!what || !len) return !no;
    if (no) snprintf(what, len, "%s", no);
    else describe(&m, what, len);
    return !no;
}
