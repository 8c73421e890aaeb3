/*
 * merge_rnn.c — merge fused rnn nodes (fuse_rnn's) that one backend call
 * can run together into one merged rnn node (src/ops/rnn.h), and their
 * rnn_grad nodes into one merged rnn_grad node:
 *   - a forward and a reverse rnn over the same x (Keras's Bidirectional):
 *     LG_RNN_BIDIR, cuDNN's CUDNN_BIDIRECTIONAL, which runs both directions
 *     at once;
 *   - rnn nodes each reading the one below's ys (stacked return_sequences
 *     layers of one cell and width): LG_RNN_STACK, cuDNN's numLayers, which
 *     overlaps the layers' steps;
 *   - such pairs each reading the concatenation of the pair below's ys
 *     (stacked Keras Bidirectional layers, merge mode concat): LG_RNN_BIDIR
 *     | LG_RNN_STACK, numLayers with CUDNN_BIDIRECTIONAL.
 *
 * Members have the same cell, flags (but a reverse direction's
 * LG_RNN_REVERSE), units and mask (the same value), keep their workspace
 * for one gradient each or for none, and nothing outside the group reads
 * what the merged node keeps inside: a lower layer's ys is read by the
 * layer above and its gradient only, the upper gradient's dx by the lower
 * gradient only, and the program fetches neither. Recurrent dropout,
 * repeated outputs and shared workspaces stay single: no backend runs those
 * as one call. The backend decides: its rnn_plan, which then sizes the
 * merged workspace (the members must have been planned by it, so their
 * masks are per-example lengths), or, without one, its supports_op.
 *
 * A merged node is made once what its members read from outside the group
 * is; nodes that read an earlier member wait for it (Bidirectional's
 * forward output is transposed before the reverse loop is built). A group
 * whose members read a value computed from another member (other than the
 * stack's own links) stays single, with a note. Each member's outputs map
 * to its part's outputs of the merged node.
 *
 * Between two bidirectional layers the graph has the concatenation of the
 * lower pair's ys (in Keras's batch-major layout: each ys transposed, the
 * concat, its transpose back) and, for the gradients, the upper pair's dx
 * summed and split into the lower pair's dys (with their transposes). A
 * stacked bidirectional node computes both itself (rnn.h's joins), so
 * they merge only where nothing else reads any of it; the pass then drops
 * those nodes (a backend running the stack in one call leaves the values
 * they would read unwritten). Pairs that read each other otherwise (a
 * merge mode other than concat, another width, a middle output read
 * elsewhere) stay bidirectional nodes of one layer each, as do the pairs
 * of a stack the backend does not take, with a note saying why.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/passes/passes.h"
#include "ops/rnn.h"

/* Members in part order (rnn.h), and the merged node's attributes. */
typedef struct group {
    int32_t node[LG_RNN_MAX_LAYERS];
    int n;
    int64_t ints[5];
    int n_ints;
    /* a stacked bidirectional rnn_grad's rnn members (part q's x slot
     * holds rnn part q - 2's ys) */
    int32_t fw[LG_RNN_MAX_LAYERS];
} group;

typedef struct merge {
    lg_cgraph *cg;
    int *group_of; /* per node: its group, or -1 */
    group *groups;
    int n_groups;
    bool *seen;    /* scratch per node */
    bool *dropped; /* per node: a link between stacked bidirectional layers, not copied */
} merge;

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
 * back), as the masks two layers make from one lengths input are. */
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
        x->n_in == 0 ||
        (x->attrs.n_ints && memcmp(x->attrs.ints, y->attrs.ints, (size_t)x->attrs.n_ints * sizeof *x->attrs.ints)))
        return false;
    for (int i = 0; i < x->n_in; i++)
        if (!same_value(g, x->in[i], y->in[i], depth - 1)) return false;
    return true;
}

static bool same_ref(lg_ref a, lg_ref b) { return a.node == b.node && a.out == b.out; }

static lg_port port_of(const lg_graph *g, lg_ref r) { return g->nodes[r.node].out[r.out]; }

/* Whether rnn node b can join rnn node a's group: the same cell, the same
 * flags but `reverse` (b's own LG_RNN_REVERSE, a's none), units and mask,
 * and nothing a merged node cannot be. */
static bool alike(const lg_graph *g, int32_t a, int32_t b, unsigned reverse)
{
    const lg_node *f = &g->nodes[a], *r = &g->nodes[b];
    unsigned ff = lg_rnn_node_flags(f), rf = lg_rnn_node_flags(r);
    if (lg_rnn_node_cell(f) != lg_rnn_node_cell(r) || rf != (ff | reverse) || (ff & reverse) ||
        (ff & (LG_RNN_HMASK | LG_RNN_REPEAT | LG_RNN_SHARED_WS | LG_RNN_BIDIR | LG_RNN_STACK)) ||
        f->attrs.n_ints != r->attrs.n_ints)
        return false;
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(f), ff);
    return (L.mask < 0 || same_value(g, f->in[L.mask], r->in[L.mask], 8)) &&
           lg_shape_equal(port_of(g, f->in[L.u]).shape, port_of(g, r->in[L.u]).shape);
}

/* Whether every reader of value v is node r1 at input i1 or node r2 at
 * input i2 (r2 -1: none), and the program does not fetch it. */
static bool read_only_by(const lg_cgraph *cg, lg_ref v, int32_t r1, int i1, int32_t r2, int i2)
{
    const lg_graph *g = cg->g;
    for (int k = 0; k < cg->n_outputs; k++)
        if (same_ref(cg->outputs[k], v)) return false;
    for (int32_t j = v.node + 1; j < g->n_nodes; j++)
        for (int i = 0; i < g->nodes[j].n_in; i++)
            if (same_ref(g->nodes[j].in[i], v) && !(j == r1 && i == i1) && !(j == r2 && i == i2)) return false;
    return true;
}

/* The merged attributes of members n0.. (kind LG_RNN_BIDIR or
 * LG_RNN_STACK, `parts` of them) into *out, if the backend takes the
 * merged node; else why. */
static bool backend_takes(const lg_cgraph *cg, int32_t n0, unsigned kind, int parts, group *out, char *why,
                          size_t len)
{
    const lg_graph *g = cg->g;
    const lg_node *f = &g->nodes[n0];
    const lg_backend *b = cg->backend;
    unsigned flags = lg_rnn_node_flags(f) | kind;
    bool stack = kind & LG_RNN_STACK;
    int layers = stack ? parts / (kind & LG_RNN_BIDIR ? 2 : 1) : 1;
    out->ints[0] = lg_rnn_node_cell(f), out->ints[1] = flags;
    out->n_ints = stack ? 3 : 2;
    out->ints[2] = layers; /* moves to ints[4] with the backend's sizes */
    if (!b) {
        snprintf(why, len, "no backend");
        return false;
    }
    if (!b->rnn_plan) {
        lg_node merged = {.op = LG_OP_RNN, .attrs = {.ints = out->ints, .n_ints = out->n_ints}};
        if (b->supports_op(b, &merged)) return true;
        snprintf(why, len, "the %s backend has no merged rnn kernel", b->name);
        return false;
    }
    if (f->attrs.n_ints != 4) { /* fuse_rnn gave the CPU's sizes: the backend did not plan the members */
        snprintf(why, len, "the %s backend did not plan the layers", b->name);
        return false;
    }
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(f), lg_rnn_node_flags(f));
    lg_port x = port_of(g, f->in[L.x]), u = port_of(g, f->in[L.u]);
    lg_rnn_desc d = {.cell = lg_rnn_node_cell(f),
                     .flags = flags & ~(unsigned)LG_RNN_FORWARD_ONLY,
                     .dtype = x.dtype,
                     .T = x.shape.dims[0],
                     .B = x.shape.dims[1],
                     .I = x.shape.dims[2],
                     .H = u.shape.dims[0],
                     .layers = layers,
                     .mask_by_lengths = true, /* the backend planned each member with its mask */
                     .name = f->name};
    lg_rnn_sizes train = {0}, forward = {0};
    char no[200];
    if (!b->rnn_plan(b, &d, &train, &forward, no, sizeof no)) {
        snprintf(why, len, "the %s backend: %s", b->name, no);
        return false;
    }
    const lg_rnn_sizes *z = (flags & LG_RNN_FORWARD_ONLY) ? &forward : &train;
    out->ints[2] = z->ws_width, out->ints[3] = z->scratch, out->ints[4] = layers;
    out->n_ints = stack ? 5 : 4;
    return true;
}

/* Whether the merged node of group gr (its attributes made) can stand in
 * the graph: each member reads its part's links (rnn.h: a layer's x, a
 * gradient's dys) from the member the layout says, and everything else
 * from outside the group, computed from no member. */
static bool links_hold(const merge *m, const group *gr, lg_op op)
{
    const lg_graph *g = m->cg->g;
    int64_t attrs[5];
    memcpy(attrs, gr->ints, sizeof attrs);
    lg_node proto = {.op = op, .attrs = {.ints = attrs, .n_ints = gr->n_ints}};
    for (int k = 0; k < gr->n; k++) {
        int64_t ints[4];
        lg_rnn_part p = lg_rnn_part_of(&proto, op == LG_OP_RNN_GRAD, k, ints);
        const lg_node *n = &g->nodes[gr->node[k]];
        for (int j = 0; j < n->n_in; j++) {
            lg_ref in = n->in[j];
            if (p.in[j] == LG_RNN_JOINED) continue; /* a link between bidirectional layers, matched */
            if (p.in[j] < 0) {
                int from = -1 - p.in[j];
                if (!same_ref(in, (lg_ref){gr->node[from / p.node.n_out], from % p.node.n_out})) return false;
                continue;
            }
            for (int i = 0; i < gr->n; i++)
                if (in.node == gr->node[i] || depends(g, gr->node[i], in.node, m->seen)) return false;
        }
    }
    return true;
}

/* Group members fw[0..n) (kind, in part order) and their gradients, if
 * they can merge; else why. */
static bool try_group(merge *m, const int32_t *fw, int n, unsigned kind, char *why, size_t len)
{
    const lg_graph *g = m->cg->g;
    group f = {.n = n}, gr = {.n = n};
    int n_grad = -1;
    for (int k = 0; k < n; k++) {
        int32_t grad;
        int c = grads_of(g, fw[k], &grad);
        if (n_grad >= 0 && c != n_grad) {
            snprintf(why, len, "the layers have %d and %d gradients", n_grad, c);
            return false;
        }
        n_grad = c;
        f.node[k] = fw[k], gr.node[k] = grad, gr.fw[k] = fw[k];
    }
    if (!backend_takes(m->cg, fw[0], kind, n, &f, why, len)) return false;
    memcpy(gr.ints, f.ints, sizeof f.ints);
    gr.n_ints = f.n_ints;
    if (!links_hold(m, &f, LG_OP_RNN) || (n_grad && !links_hold(m, &gr, LG_OP_RNN_GRAD))) {
        snprintf(why, len, "a layer reads a value computed from another");
        return false;
    }
    for (int k = 0; k < n; k++) {
        m->group_of[fw[k]] = m->n_groups;
        if (n_grad) m->group_of[gr.node[k]] = m->n_groups + 1;
    }
    m->groups[m->n_groups++] = f;
    m->groups[m->n_groups++] = gr; /* unused without gradients */
    return true;
}

static void note(merge *m, const int32_t *fw, int n, const char *what, const char *why)
{
    const lg_graph *g = m->cg->g;
    char names[640] = "";
    for (int k = 0; k < n; k++) {
        size_t at = strlen(names);
        snprintf(names + at, sizeof names - at, "%s'%s'", k ? (k + 1 < n ? ", " : " and ") : "", g->nodes[fw[k]].name);
    }
    if (why) lg_cgraph_note(m->cg, "merge_rnn: rnn %s: not merged: %s", names, why);
    else lg_cgraph_note(m->cg, "merge_rnn: rnn %s: %s", names, what);
}

/* The reverse rnn over a's x with a's cell and flags, not in a pair
 * (paired: per node), or -1. */
static int32_t reverse_of(const merge *m, int32_t a, const bool *paired)
{
    const lg_graph *g = m->cg->g;
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(&g->nodes[a]), lg_rnn_node_flags(&g->nodes[a]));
    for (int32_t b = 0; b < g->n_nodes; b++)
        if (b != a && g->nodes[b].op == LG_OP_RNN && !paired[b] &&
            same_ref(g->nodes[b].in[L.x], g->nodes[a].in[L.x]) && alike(g, a, b, LG_RNN_REVERSE))
            return b;
    return -1;
}

/* The rnn reading a's ys as its x with a's cell and flags, where nothing
 * else reads that ys but b's gradient (as its x) and nothing reads b's
 * gradient's dx but a's gradient (as its dys): the link a merged node keeps
 * inside. Else -1. */
static int32_t above(const merge *m, int32_t a)
{
    const lg_graph *g = m->cg->g;
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(&g->nodes[a]), lg_rnn_node_flags(&g->nodes[a]));
    for (int32_t b = a + 1; b < g->n_nodes; b++) {
        if (g->nodes[b].op != LG_OP_RNN || m->group_of[b] >= 0 || !same_ref(g->nodes[b].in[L.x], (lg_ref){a, L.ys}) ||
            !alike(g, a, b, 0))
            continue;
        int32_t ga, gb;
        int na = grads_of(g, a, &ga), nb = grads_of(g, b, &gb);
        bool private = na == nb && na <= 1 && read_only_by(m->cg, (lg_ref){a, L.ys}, b, L.x, nb ? gb : -1, L.x) &&
                       (!nb || read_only_by(m->cg, (lg_ref){gb, L.g_dx}, ga, L.g_dys, -1, 0));
        return private ? b : -1;
    }
    return -1;
}

/* ---- links between bidirectional layers ----------------------------------- */

/* The nodes a link between two stacked bidirectional layers is made of. */
typedef struct links {
    int32_t node[32];
    int n;
} links;

static bool in_links(const links *lk, int32_t node)
{
    for (int i = 0; i < lk->n; i++)
        if (lk->node[i] == node) return true;
    return false;
}

static bool links_add(links *lk, int32_t node)
{
    if (in_links(lk, node)) return true;
    if (lk->n == (int)LG_ARRAY_LEN(lk->node)) return false;
    lk->node[lk->n++] = node;
    return true;
}

/* v under any transposes of its first two dims (of a [T, B, .] or [B, T,
 * .] value), each added to lk and flipping *flip. */
static lg_ref peel(const lg_graph *g, lg_ref v, bool *flip, links *lk)
{
    for (;;) {
        const lg_node *n = &g->nodes[v.node];
        if (n->op != LG_OP_TRANSPOSE || n->attrs.n_ints != 3 || n->attrs.ints[0] != 1 || n->attrs.ints[1] != 0 ||
            n->attrs.ints[2] != 2 || !links_add(lk, v.node))
            return v;
        *flip = !*flip;
        v = n->in[0];
    }
}

/* Whether x is ys[0] and ys[1] ([T, B, H] each) side by side in the last
 * dim, transposed back and forth (lk gets the nodes); else *op is the node
 * under x's transposes. */
static bool joins_ys(const lg_graph *g, lg_ref x, const lg_ref ys[2], links *lk, const lg_node **op)
{
    bool flip = false;
    lg_ref c = peel(g, x, &flip, lk);
    const lg_node *n = *op = &g->nodes[c.node];
    if (n->op != LG_OP_CONCAT || n->n_in != 2 || n->out[0].shape.rank != 3 || lg_axis_norm(n->attrs.axis, 3) != 2 ||
        !links_add(lk, c.node))
        return false;
    for (int d = 0; d < 2; d++) {
        bool f = flip;
        if (!same_ref(peel(g, n->in[d], &f, lk), ys[d]) || f) return false;
    }
    return true;
}

/* Whether dys is the H-wide half `half` (last dim) of dx[0] + dx[1] ([T,
 * B, 2H] each), transposed back and forth (lk gets the nodes). */
static bool halves_dx(const lg_graph *g, lg_ref dys, int half, int64_t H, const lg_ref dx[2], links *lk)
{
    bool flip = false;
    lg_ref s = peel(g, dys, &flip, lk);
    const lg_node *n = &g->nodes[s.node];
    if (n->op != LG_OP_SLICE || n->n_in != 1 || n->out[0].shape.rank != 3 || lg_axis_norm(n->attrs.axis, 3) != 2 ||
        port_of(g, n->in[0]).shape.dims[2] != 2 * H || n->attrs.ints[0] != half * H || n->out[0].shape.dims[2] != H ||
        !links_add(lk, s.node))
        return false;
    lg_ref a = peel(g, n->in[0], &flip, lk);
    const lg_node *sum = &g->nodes[a.node];
    if (flip || sum->op != LG_OP_ADD || sum->n_in != 2 || !links_add(lk, a.node)) return false;
    return (same_ref(sum->in[0], dx[0]) && same_ref(sum->in[1], dx[1])) ||
           (same_ref(sum->in[0], dx[1]) && same_ref(sum->in[1], dx[0]));
}

/* Value v may be read by node `node` at input `in`. */
typedef struct reader {
    lg_ref v;
    int32_t node;
    int in;
} reader;

/* Whether the values vs[0..n) and the outputs of lk's nodes are read only
 * by lk's nodes and the readers ok[0..n_ok), and none is fetched. */
static bool private_link(const lg_cgraph *cg, const links *lk, const lg_ref *vs, int n, const reader *ok, int n_ok)
{
    const lg_graph *g = cg->g;
    for (int i = 0; i < n + lk->n; i++) {
        lg_ref v = i < n ? vs[i] : (lg_ref){lk->node[i - n], 0};
        for (int k = 0; k < cg->n_outputs; k++)
            if (same_ref(cg->outputs[k], v)) return false;
        for (int32_t j = v.node + 1; j < g->n_nodes; j++)
            for (int e = 0; e < g->nodes[j].n_in; e++) {
                if (!same_ref(g->nodes[j].in[e], v) || in_links(lk, j)) continue;
                bool allowed = false;
                for (int r = 0; r < n_ok && !allowed; r++)
                    allowed = same_ref(ok[r].v, v) && ok[r].node == j && ok[r].in == e;
                if (!allowed) return false;
            }
    }
    return true;
}

/* Whether bidirectional pair hi (forward, reverse rnn nodes) stacks on pair
 * lo: hi reads the concatenation of lo's ys, the gradients (one per node,
 * or none) pass the sum of hi's dx halved back to lo, and nothing else
 * reads any of it. *lk gets the link's nodes. Where hi reads lo but does
 * not stack, why says so; where it does not read lo, why is empty. */
static bool stacks_on(const merge *m, const int32_t lo[2], const int32_t hi[2], links *lk, char *why, size_t len)
{
    const lg_graph *g = m->cg->g;
    const lg_node *f = &g->nodes[lo[0]], *u = &g->nodes[hi[0]];
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(f), lg_rnn_node_flags(f));
    lg_ref x = u->in[L.x];
    why[0] = '\0';
    lk->n = 0;
    if (!depends(g, lo[0], x.node, m->seen) && !depends(g, lo[1], x.node, m->seen)) return false;
    if (!alike(g, lo[0], hi[0], 0)) {
        int64_t hl = port_of(g, f->in[L.u]).shape.dims[0], hh = port_of(g, u->in[L.u]).shape.dims[0];
        if (hl != hh) snprintf(why, len, "'%s' has %lld units, '%s' %lld; a stack has one width", u->name,
                               (long long)hh, f->name, (long long)hl);
        else snprintf(why, len, "'%s' and '%s' differ in cell, flags or mask", u->name, f->name);
        return false;
    }
    const lg_ref ys[2] = {{lo[0], L.ys}, {lo[1], L.ys}};
    const lg_node *op = NULL;
    if (!joins_ys(g, x, ys, lk, &op)) {
        snprintf(why, len, "'%s' reads %s of the ys below, not their concatenation (a merge mode other than concat?)",
                 u->name, lg_op_defs[op->op]->name);
        return false;
    }
    int32_t grad[4];
    const int32_t node[4] = {lo[0], lo[1], hi[0], hi[1]};
    int n_grad = grads_of(g, node[0], &grad[0]);
    for (int k = 1; k < 4; k++)
        if (grads_of(g, node[k], &grad[k]) != n_grad || n_grad > 1) {
            snprintf(why, len, "its layers have 0, 1 or more gradients each, not one each or none");
            return false;
        }
    reader ok[4] = {{x, hi[0], L.x}, {x, hi[1], L.x}};
    if (n_grad) ok[2] = (reader){x, grad[2], L.x}, ok[3] = (reader){x, grad[3], L.x};
    if (!private_link(m->cg, lk, ys, 2, ok, n_grad ? 4 : 2)) {
        snprintf(why, len, "the ys of '%s' and '%s' or their concatenation is read elsewhere or fetched", f->name,
                 g->nodes[lo[1]].name);
        return false;
    }
    if (!n_grad) return true;
    links back = {.n = 0};
    const lg_ref dx[2] = {{grad[2], L.g_dx}, {grad[3], L.g_dx}};
    int64_t H = port_of(g, f->in[L.u]).shape.dims[0];
    lg_ref dys[2] = {g->nodes[grad[0]].in[L.g_dys], g->nodes[grad[1]].in[L.g_dys]};
    reader back_ok[2] = {{dys[0], grad[0], L.g_dys}, {dys[1], grad[1], L.g_dys}};
    if (!halves_dx(g, dys[0], 0, H, dx, &back) || !halves_dx(g, dys[1], 1, H, dx, &back) ||
        !private_link(m->cg, &back, dx, 2, back_ok, 2)) {
        snprintf(why, len, "the gradients of '%s' and '%s' are not the halves of the dx above alone", f->name,
                 g->nodes[lo[1]].name);
        return false;
    }
    for (int i = 0; i < back.n; i++)
        if (!links_add(lk, back.node[i])) {
            snprintf(why, len, "the link between the layers has too many nodes");
            return false;
        }
    return true;
}

/* The merged node of group gr (of op) in r->dst, its members' outputs
 * mapped to their parts'. */
static int32_t build_merged(lg_rewrite *r, const group *gr, lg_op op)
{
    const lg_graph *g = r->src;
    int64_t attrs[5];
    memcpy(attrs, gr->ints, sizeof attrs);
    lg_node proto = {.op = op, .attrs = {.ints = attrs, .n_ints = gr->n_ints}};
    lg_rnn_part p[LG_RNN_MAX_LAYERS];
    int64_t ints[LG_RNN_MAX_LAYERS][4];
    int n_in = 0;
    for (int k = 0; k < gr->n; k++) {
        p[k] = lg_rnn_part_of(&proto, op == LG_OP_RNN_GRAD, k, ints[k]);
        for (int j = 0; j < p[k].node.n_in; j++)
            if (p[k].in[j] >= n_in) n_in = p[k].in[j] + 1;
    }
    lg_value in[n_in];
    for (int k = 0; k < gr->n; k++)
        for (int j = 0; j < p[k].node.n_in; j++)
            if (p[k].in[j] >= 0) in[p[k].in[j]] = lg_rewrite_value(r, g->nodes[gr->node[k]].in[j]);
    /* a stacked bidirectional gradient's x slots above layer 0: the ys of
     * the rnn part two below (the member reads their join) */
    lg_rnn_layout L = lg_rnn_layout_of(lg_rnn_node_cell(&proto), lg_rnn_part_flags(lg_rnn_node_flags(&proto), 0));
    for (int k = 2; op == LG_OP_RNN_GRAD && k < gr->n; k++)
        if (p[k].join[0].at == L.x) in[p[k].join[0].from[k & 1]] = lg_rewrite_value(r, (lg_ref){gr->fw[k - 2], L.ys});
    int32_t id = lg_node_build(r->dst, op, in, n_in, &(lg_attrs){.ints = attrs, .n_ints = gr->n_ints},
                               g->nodes[gr->node[0]].name);
    if (id < 0) return -1;
    for (int k = 0; k < gr->n; k++)
        for (int o = 0; o < p[k].node.n_out; o++)
            *lg_rewrite_at(r, (lg_ref){gr->node[k], o}) = (lg_ref){id, p[k].out + o};
    return id;
}

/* Whether node i (with its group) can be made: everything it reads from
 * outside its group is. */
static bool ready(const merge *m, const bool *made, int32_t i)
{
    const lg_graph *g = m->cg->g;
    int gi = m->group_of[i];
    const group *gr = gi >= 0 ? &m->groups[gi] : NULL;
    for (int k = 0; k < (gr ? gr->n : 1); k++) {
        const lg_node *n = &g->nodes[gr ? gr->node[k] : i];
        for (int j = 0; j < n->n_in; j++)
            if (!made[n->in[j].node] && !(gr && m->group_of[n->in[j].node] == gi)) return false;
    }
    return true;
}

static int32_t make(lg_rewrite *r, const merge *m, bool *made, int32_t i)
{
    int gi = m->group_of[i];
    if (gi < 0) {
        made[i] = true;
        return lg_rewrite_copy(r, i, NULL, NULL);
    }
    const group *gr = &m->groups[gi];
    for (int k = 0; k < gr->n; k++) made[gr->node[k]] = true;
    return build_merged(r, gr, r->src->nodes[i].op);
}

/* The graph with each group as its merged node, made once what it reads
 * is: nodes in arena order, except those that wait for a group (they read
 * an earlier member) until it is made. *cycle when groups wait on each
 * other (the graph stays as it was). */
static lg_status rebuild(merge *m, bool *made, bool *cycle)
{
    const lg_graph *g = m->cg->g;
    int32_t n = g->n_nodes, *waiting = malloc((size_t)n * sizeof *waiting), n_waiting = 0;
    lg_rewrite r;
    lg_graph *dst = lg_graph_new();
    if (!waiting || !dst || !lg_rewrite_init(&r, g, dst)) {
        free(waiting);
        lg_graph_free(dst);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "merge_rnn: out of memory");
    }
    memcpy(made, m->dropped, (size_t)n * sizeof *made); /* dropped: never copied */
    lg_status st = LG_OK;
    for (int32_t i = 0; !st && i < n; i++) {
        if (made[i]) continue;
        if (!ready(m, made, i)) {
            waiting[n_waiting++] = i;
            continue;
        }
        if (make(&r, m, made, i) < 0) st = lg_cgraph_fail(dst, "merge_rnn");
        /* what waited may be ready now, in arena order */
        for (int32_t k = 0; !st && k < n_waiting;) {
            int32_t w = waiting[k];
            if (made[w]) {
                memmove(waiting + k, waiting + k + 1, (size_t)(--n_waiting - k) * sizeof *waiting);
                continue;
            }
            if (!ready(m, made, w)) {
                k++;
                continue;
            }
            memmove(waiting + k, waiting + k + 1, (size_t)(--n_waiting - k) * sizeof *waiting);
            if (make(&r, m, made, w) < 0) st = lg_cgraph_fail(dst, "merge_rnn");
            k = 0;
        }
    }
    *cycle = !st && n_waiting > 0;
    if (!st && !*cycle) lg_cgraph_replace(m->cg, &r);
    else lg_graph_free(dst);
    lg_rewrite_free(&r);
    free(waiting);
    return st;
}

/* Bidirectional pairs pairs[0..n) (in arena order) stacked where they
 * stack (stacks_on) and the backend takes the stack: each stack's pairs
 * are used (in used[]), and its links dropped. */
static void stack_pairs(merge *m, int32_t (*pairs)[2], int n, bool *used)
{
    char why[256], what[320];
    for (int lo = 0; lo < n; lo++) {
        if (used[lo]) continue;
        int chain[LG_RNN_MAX_LAYERS / 2] = {lo}, layers = 1;
        links lk[LG_RNN_MAX_LAYERS / 2];
        while (layers < LG_RNN_MAX_LAYERS / 2) {
            int next = -1;
            const int32_t *top = pairs[chain[layers - 1]];
            for (int hi = lo + 1; hi < n && next < 0; hi++) {
                if (used[hi]) continue;
                if (stacks_on(m, top, pairs[hi], &lk[layers - 1], why, sizeof why)) {
                    next = hi;
                } else if (why[0]) { /* it reads the pair below, but not as a stacked layer */
                    const lg_graph *g = m->cg->g;
                    snprintf(what, sizeof what, "not stacked on '%s' and '%s': %s", g->nodes[top[0]].name,
                             g->nodes[top[1]].name, why);
                    note(m, pairs[hi], 2, what, NULL);
                }
            }
            if (next < 0) break;
            chain[layers++] = next;
            used[next] = true;
        }
        if (layers < 2) continue;
        used[lo] = true;
        int32_t members[LG_RNN_MAX_LAYERS];
        for (int l = 0; l < layers; l++) members[2 * l] = pairs[chain[l]][0], members[2 * l + 1] = pairs[chain[l]][1];
        bool ok = try_group(m, members, 2 * layers, LG_RNN_BIDIR | LG_RNN_STACK, why, sizeof why);
        snprintf(what, sizeof what, "one stacked bidirectional node (%d layers)", layers);
        note(m, members, 2 * layers, what, ok ? NULL : why); /* refused: its pairs merge one by one */
        for (int l = 0; ok && l + 1 < layers; l++)
            for (int i = 0; i < lk[l].n; i++) m->dropped[lk[l].node[i]] = true;
    }
}

lg_status lg_pass_merge_rnn(lg_cgraph *cg)
{
    const lg_graph *g = cg->g;
    int32_t n = g->n_nodes;
    int rnns = 0;
    for (int32_t i = 0; i < n; i++) rnns += g->nodes[i].op == LG_OP_RNN;
    if (rnns < 2) return LG_OK;
    merge m = {.cg = cg,
               .group_of = malloc((size_t)n * sizeof *m.group_of),
               .groups = malloc((size_t)rnns * sizeof *m.groups),
               .seen = malloc((size_t)n * sizeof *m.seen),
               .dropped = calloc((size_t)n, sizeof *m.dropped)};
    bool *paired = calloc((size_t)n, sizeof *paired), *used = calloc((size_t)rnns, sizeof *used);
    int32_t(*pairs)[2] = malloc((size_t)rnns * sizeof *pairs);
    if (!m.group_of || !m.groups || !m.seen || !m.dropped || !paired || !used || !pairs) {
        free(m.group_of), free(m.groups), free(m.seen), free(m.dropped), free(paired), free(used), free(pairs);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "merge_rnn: out of memory");
    }
    for (int32_t i = 0; i < n; i++) m.group_of[i] = -1;
    int n_pairs = 0;
    for (int32_t a = 0; a < n; a++) { /* directions first, then stacks of them */
        int32_t b;
        if (g->nodes[a].op != LG_OP_RNN || paired[a] || (b = reverse_of(&m, a, paired)) < 0) continue;
        pairs[n_pairs][0] = a, pairs[n_pairs++][1] = b;
        paired[a] = paired[b] = true;
    }
    stack_pairs(&m, pairs, n_pairs, used);
    char why[256];
    for (int k = 0; k < n_pairs; k++) {
        if (m.group_of[pairs[k][0]] >= 0) continue;
        bool ok = try_group(&m, pairs[k], 2, LG_RNN_BIDIR, why, sizeof why);
        note(&m, pairs[k], 2, "one bidirectional node", ok ? NULL : why);
    }
    for (int32_t a = 0; a < n; a++) {
        int32_t layers[LG_RNN_MAX_LAYERS] = {a};
        int count = 1;
        if (g->nodes[a].op != LG_OP_RNN || m.group_of[a] >= 0) continue;
        while (count < LG_RNN_MAX_LAYERS && (layers[count] = above(&m, layers[count - 1])) >= 0) count++;
        if (count < 2) continue;
        bool ok = try_group(&m, layers, count, LG_RNN_STACK, why, sizeof why);
        note(&m, layers, count, "one stacked node", ok ? NULL : why);
    }
    bool cycle = false;
    lg_status st = m.n_groups ? rebuild(&m, m.seen, &cycle) : LG_OK;
    if (cycle) lg_cgraph_note(cg, "merge_rnn: not run: merged nodes would read each other's outputs");
    free(m.group_of), free(m.groups), free(m.seen), free(m.dropped), free(paired), free(used), free(pairs);
    return st;
}
