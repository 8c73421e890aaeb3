/*
 * merge_rnn.c — merge a forward and a reverse fused rnn over the same x
 * (Keras's Bidirectional, after fuse_rnn) into one bidirectional rnn node
 * (LG_RNN_BIDIR, src/ops/rnn.h), and their rnn_grad pair into one, so a
 * backend runs both directions as one call: cuDNN's CUDNN_BIDIRECTIONAL
 * runs them at once on the GPU.
 *
 * A pair merges when the two nodes have the same cell and flags but
 * LG_RNN_REVERSE, read the same x and mask, have the same units, keep
 * their workspace for one gradient each or for none, and the backend takes
 * the merged node: its rnn_plan (which then sizes the merged workspace;
 * both nodes must have been planned by it, so their masks are per-example
 * lengths) or, without one, its supports_op. Recurrent dropout, repeated
 * outputs and shared workspaces stay single: no backend runs those as one
 * bidirectional call.
 *
 * The merged node is made once what both nodes read is; the nodes that
 * read the earlier node of the pair (Bidirectional's forward output,
 * transposed before the reverse loop is built) wait for it. Neither node
 * may read the other's outputs: such a pair stays single, with a note.
 * Each node's outputs map to its direction's outputs of the merged node.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/passes/passes.h"
#include "ops/rnn.h"

/* Node i's partner and role: dir is 0 for the forward node (and its
 * gradient), 1 for the reverse one; other is the pair's other node. The
 * merged node's attributes are the forward node's entry's. */
typedef struct pair {
    int32_t other;
    int dir;
    int64_t ints[4];
    int n_ints;
} pair;

/* The rnn_grad nodes reading rnn node `node`'s workspace: how many, and the
 * last one. */
static int grads_of(const lg_graph *g, int32_t node, int32_t *grad)
{
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(&g->nodes[node]), lg_rnn_node_flags(&g->nodes[node]));
    int n = 0;
    *grad = -1;
    for (int32_t j = node + 1; j < g->n_nodes; j++) {
        const lg_node *q = &g->nodes[j];
        if (q->op == LG_OP_RNN_GRAD && q->in[L.g_ws].node == node && q->in[L.g_ws].out == L.ws) n++, *grad = j;
    }
    return n;
}

/* Whether node `to` reads node `from`'s outputs, directly or through other
 * nodes (seen: scratch of g->n_nodes). */
static bool depends(const lg_graph *g, int32_t from, int32_t to, bool *seen)
{
    if (to <= from) return false; /* arena order: what a node reads comes before it */
    memset(seen + from, 0, (size_t)(to - from + 1) * sizeof *seen);
    seen[from] = true;
    for (int32_t j = from + 1; j <= to; j++)
        for (int i = 0; i < g->nodes[j].n_in && !seen[j]; i++) {
            int32_t k = g->nodes[j].in[i].node;
            seen[j] = k >= from && seen[k];
        }
    return seen[to];
}

/* Two constants of the same dtype, shape and bytes. */
static bool same_constant(const lg_node *x, const lg_node *y)
{
    const lg_tensor *s = x->attrs.tensor, *t = y->attrs.tensor;
    return x->op == LG_OP_CONST && y->op == LG_OP_CONST && s && t && lg_tensor_dtype(s) == lg_tensor_dtype(t) &&
           lg_shape_equal(lg_tensor_shape(s), lg_tensor_shape(t)) &&
           (lg_tensor_bytes(s) == 0 || !memcmp(lg_tensor_cdata(s), lg_tensor_cdata(t), lg_tensor_bytes(s)));
}

/* Two nodes that compute the same value: the same node, equal constants,
 * or the same op and attributes over inputs that are (up to `depth` nodes
 * back), as the two directions' masks from one lengths input are. */
static bool same_value(const lg_graph *g, lg_ref a, lg_ref b, int depth)
{
    if (a.node == b.node && a.out == b.out) return true;
    const lg_node *x = &g->nodes[a.node], *y = &g->nodes[b.node];
    if (same_constant(x, y)) return true;
    if (depth == 0 || a.out != b.out || x->op != y->op || x->n_in != y->n_in || x->attrs.n_ints != y->attrs.n_ints ||
        x->attrs.axis != y->attrs.axis || x->attrs.axes != y->attrs.axes || x->attrs.keepdims != y->attrs.keepdims ||
        x->attrs.trans_a != y->attrs.trans_a || x->attrs.trans_b != y->attrs.trans_b || x->attrs.cmp != y->attrs.cmp ||
        x->attrs.dtype != y->attrs.dtype || x->attrs.real[0] != y->attrs.real[0] ||
        x->attrs.real[1] != y->attrs.real[1] || x->attrs.tensor != y->attrs.tensor || x->attrs.loop || y->attrs.loop ||
        x->n_in == 0 || (x->attrs.n_ints && memcmp(x->attrs.ints, y->attrs.ints, (size_t)x->attrs.n_ints * sizeof *x->attrs.ints)))
        return false;
    for (int i = 0; i < x->n_in; i++)
        if (!same_value(g, x->in[i], y->in[i], depth - 1)) return false;
    return true;
}

static bool same_ref(lg_ref a, lg_ref b) { return a.node == b.node && a.out == b.out; }

/* Whether forward rnn node a and reverse rnn node b are one layer's
 * directions (see the overview; the backend is asked later). */
static bool directions_of_one_layer(const lg_graph *g, int32_t a, int32_t b)
{
    const lg_node *f = &g->nodes[a], *r = &g->nodes[b];
    unsigned ff = lg_rnn_node_flags(f), rf = lg_rnn_node_flags(r);
    if (lg_rnn_node_cell(f) != lg_rnn_node_cell(r) || rf != (ff | LG_RNN_REVERSE) || (ff & LG_RNN_REVERSE) ||
        (ff & (LG_RNN_HMASK | LG_RNN_REPEAT | LG_RNN_SHARED_WS | LG_RNN_BIDIR)) || f->attrs.n_ints != r->attrs.n_ints)
        return false;
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(f), ff);
    return same_ref(f->in[L.x], r->in[L.x]) && (L.mask < 0 || same_value(g, f->in[L.mask], r->in[L.mask], 8)) &&
           lg_shape_equal(g->nodes[f->in[L.u].node].out[f->in[L.u].out].shape,
                          g->nodes[r->in[L.u].node].out[r->in[L.u].out].shape);
}

/* Whether the backend takes forward node a merged with its reverse
 * partner; fills the merged attributes into p (ints, n_ints) or why. */
static bool backend_takes(const lg_cgraph *cg, int32_t a, pair *p, char *why, size_t len)
{
    const lg_graph *g = cg->g;
    const lg_node *f = &g->nodes[a];
    const lg_backend *b = cg->backend;
    unsigned flags = (lg_rnn_node_flags(f) & ~(unsigned)LG_RNN_FORWARD_ONLY) | LG_RNN_BIDIR;
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(f), lg_rnn_node_flags(f));
    lg_port x = g->nodes[f->in[L.x].node].out[f->in[L.x].out], u = g->nodes[f->in[L.u].node].out[f->in[L.u].out];
    p->ints[0] = lg_rnn_node_cell(f), p->ints[1] = lg_rnn_node_flags(f) | LG_RNN_BIDIR;
    p->n_ints = 2;
    if (!b) {
        snprintf(why, len, "no backend");
        return false;
    }
    if (!b->rnn_plan) {
        lg_node merged = {.op = LG_OP_RNN, .attrs = {.ints = p->ints, .n_ints = 2}};
        if (b->supports_op(b, &merged)) return true;
        snprintf(why, len, "the %s backend has no bidirectional rnn kernel", b->name);
        return false;
    }
    if (f->attrs.n_ints != 4) { /* the backend planned neither: fuse_rnn gave the CPU's sizes */
        snprintf(why, len, "the %s backend did not plan the directions", b->name);
        return false;
    }
    lg_rnn_desc d = {.cell = lg_rnn_node_cell(f),
                     .flags = flags,
                     .dtype = x.dtype,
                     .T = x.shape.dims[0],
                     .B = x.shape.dims[1],
                     .I = x.shape.dims[2],
                     .H = u.shape.dims[0],
                     .mask_by_lengths = true, /* the backend planned both directions with their mask */
                     .name = f->name};
    lg_rnn_sizes train = {0}, forward = {0};
    char no[200];
    if (!b->rnn_plan(b, &d, &train, &forward, no, sizeof no)) {
        snprintf(why, len, "the %s backend: %s", b->name, no);
        return false;
    }
    const lg_rnn_sizes *z = (lg_rnn_node_flags(f) & LG_RNN_FORWARD_ONLY) ? &forward : &train;
    p->ints[2] = z->ws_width, p->ints[3] = z->scratch;
    p->n_ints = 4;
    return true;
}

/* Pair forward node a with reverse node b (and their gradients) in p[];
 * false with why when they stay single. */
static bool pair_up(lg_cgraph *cg, int32_t a, int32_t b, pair *p, bool *seen, char *why, size_t len)
{
    const lg_graph *g = cg->g;
    int32_t ga, gb;
    int na = grads_of(g, a, &ga), nb = grads_of(g, b, &gb);
    if (na != nb || na > 1) {
        snprintf(why, len, "the directions have %d and %d gradients", na, nb);
        return false;
    }
    if (depends(g, a, b, seen) || depends(g, b, a, seen) ||
        (na && (depends(g, ga, gb, seen) || depends(g, gb, ga, seen)))) {
        snprintf(why, len, "one direction reads the other's outputs");
        return false;
    }
    if (!backend_takes(cg, a, &p[a], why, len)) return false;
    p[a].other = b, p[a].dir = 0;
    p[b] = (pair){.other = a, .dir = 1};
    if (na) {
        p[ga] = p[a], p[ga].other = gb;
        p[gb] = (pair){.other = ga, .dir = 1};
    }
    return true;
}

/* The merged node of pair (i, p[i].other) in r->dst, made where the later
 * of the two stands; both nodes' outputs mapped to their directions'. */
static int32_t build_merged(lg_rewrite *r, int32_t i, const pair *p)
{
    const lg_graph *g = r->src;
    int32_t dirs[2] = {p[i].dir ? p[i].other : i, p[i].dir ? i : p[i].other};
    const pair *q = &p[dirs[0]];
    const lg_node *n0 = &g->nodes[dirs[0]];
    int n_in = n0->n_in, n_out = n0->n_out;
    lg_value in[2 * n_in];
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < n_in; k++) in[d * n_in + k] = lg_rewrite_value(r, g->nodes[dirs[d]].in[k]);
    int64_t ints[4];
    memcpy(ints, q->ints, sizeof ints);
    int32_t id = lg_node_build(r->dst, n0->op, in, 2 * n_in, &(lg_attrs){.ints = ints, .n_ints = q->n_ints},
                               n0->name);
    if (id < 0) return -1;
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < n_out; k++) *lg_rewrite_at(r, (lg_ref){dirs[d], k}) = (lg_ref){id, d * n_out + k};
    return id;
}

/* Whether node i (with its partner, if paired) can be made: everything it
 * reads is. */
static bool ready(const lg_graph *g, const pair *p, const bool *made, int32_t i)
{
    for (int m = 0; m < (p[i].other >= 0 ? 2 : 1); m++) {
        const lg_node *n = &g->nodes[m ? p[i].other : i];
        for (int k = 0; k < n->n_in; k++)
            if (!made[n->in[k].node]) return false;
    }
    return true;
}

static int32_t make(lg_rewrite *r, const pair *p, bool *made, int32_t i)
{
    made[i] = true;
    if (p[i].other < 0) return lg_rewrite_copy(r, i, NULL, NULL);
    made[p[i].other] = true;
    return build_merged(r, i, p);
}

/* The graph with each pair as its merged node, made once what both nodes
 * read is: nodes in arena order, except those that wait for a pair (they
 * read its first node) until it is made. False in *cycle when pairs wait on
 * each other. */
static lg_status rebuild(lg_cgraph *cg, const pair *p, bool *made, bool *cycle)
{
    const lg_graph *g = cg->g;
    int32_t n = g->n_nodes, *waiting = malloc((size_t)n * sizeof *waiting), n_waiting = 0;
    lg_rewrite r;
    lg_graph *dst = lg_graph_new();
    if (!waiting || !dst || !lg_rewrite_init(&r, g, dst)) {
        free(waiting);
        lg_graph_free(dst);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "merge_rnn: out of memory");
    }
    memset(made, 0, (size_t)n * sizeof *made);
    lg_status st = LG_OK;
    for (int32_t i = 0; !st && i < n; i++) {
        if (made[i]) continue;
        if (!ready(g, p, made, i)) {
            waiting[n_waiting++] = i;
            continue;
        }
        if (make(&r, p, made, i) < 0) st = lg_cgraph_fail(dst, "merge_rnn");
        /* what waited may be ready now, in arena order */
        for (int32_t k = 0; !st && k < n_waiting;) {
            int32_t w = waiting[k];
            if (made[w] || !ready(g, p, made, w)) {
                k += !made[w];
                if (made[w]) memmove(waiting + k, waiting + k + 1, (size_t)(--n_waiting - k) * sizeof *waiting);
                continue;
            }
            memmove(waiting + k, waiting + k + 1, (size_t)(--n_waiting - k) * sizeof *waiting);
            if (make(&r, p, made, w) < 0) st = lg_cgraph_fail(dst, "merge_rnn");
            k = 0;
        }
    }
    *cycle = !st && n_waiting > 0;
    if (!st && !*cycle) lg_cgraph_replace(cg, &r);
    else lg_graph_free(dst);
    lg_rewrite_free(&r);
    free(waiting);
    return st;
}

lg_status lg_pass_merge_rnn(lg_cgraph *cg)
{
    const lg_graph *g = cg->g;
    int32_t n = g->n_nodes;
    int reverse = 0;
    for (int32_t i = 0; i < n; i++)
        reverse += g->nodes[i].op == LG_OP_RNN && (lg_rnn_node_flags(&g->nodes[i]) & LG_RNN_REVERSE);
    if (!reverse) return LG_OK;
    pair *p = malloc((size_t)n * sizeof *p);
    bool *seen = malloc((size_t)n * sizeof *seen);
    if (!p || !seen) {
        free(p), free(seen);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "merge_rnn: out of memory");
    }
    for (int32_t i = 0; i < n; i++) p[i] = (pair){.other = -1};
    int merged = 0;
    for (int32_t a = 0; a < n; a++) {
        if (g->nodes[a].op != LG_OP_RNN || p[a].other >= 0) continue;
        for (int32_t b = 0; b < n; b++) {
            if (b == a || g->nodes[b].op != LG_OP_RNN || p[b].other >= 0 || !directions_of_one_layer(g, a, b))
                continue;
            char why[256];
            if (pair_up(cg, a, b, p, seen, why, sizeof why)) {
                lg_cgraph_note(cg, "merge_rnn: rnn '%s' and '%s': one bidirectional node", g->nodes[a].name,
                               g->nodes[b].name);
                merged++;
            } else {
                lg_cgraph_note(cg, "merge_rnn: rnn '%s' and '%s': not merged: %s", g->nodes[a].name,
                               g->nodes[b].name, why);
            }
            break;
        }
    }
    bool cycle = false;
    lg_status st = merged ? rebuild(cg, p, seen, &cycle) : LG_OK;
    if (cycle) lg_cgraph_note(cg, "merge_rnn: not run: merged pairs would read each other's outputs");
    free(p), free(seen);
    return st;
}
