/*
 * fuse_elementwise.c — merge connected elementwise ops into one fused
 * elementwise op (src/ops/fused_elementwise.h), so their intermediates
 * stay in registers instead of a buffer each.
 *
 * The executor runs a loop body that fuse_rnn did not replace one kernel
 * per op, every step: a user's peephole LSTM cell is some twenty passes
 * over [B, H] memory per step. This pass runs over every compile-time
 * graph, so over each loop body (forward and gradient loops, compiled with
 * their step shapes) and the top level alike.
 *
 * A group grows from a root (walking the graph from its end) into the
 * producers of its operands while a producer is
 *   - an elementwise op of the same float dtype (cast excepted) whose
 *     inputs have that dtype (where's mask may have any),
 *   - of the root's shape (its operands may broadcast: a scalar, a bias
 *     row, a [B, 1] mask column),
 *   - read by nothing else: one reader, its consumer in the group, and not
 *     fetched (a loop's next state, a residual the gradient loop reads,
 *     a fetched value: these keep their buffers),
 * and the group's program stays within LG_FEW_MAX_DEPTH stack values,
 * LG_FEW_MAX_INPUTS inputs and LG_FEW_MAX_OPS ops. A group of two or more
 * ops becomes one node in the root's place; its inputs are the values it
 * reads from outside. The pass runs only where the backend has the fused
 * kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/passes/passes.h"
#include "ops/fused_elementwise.h"

typedef struct fuser {
    const lg_graph *g;
    const lg_backend *backend;
    int *uses;     /* per node: reads of its output 0, a fetch counting as two */
    int32_t *root; /* per node: the root of its group, or -1 */
    lg_ref leaves[LG_FEW_MAX_INPUTS + 1];
    int n_leaves;
    int size; /* ops in the group growing */
} fuser;

/* Node i may join a group: a fusible float op that the backend also runs
 * alone (so an op a backend lacks is reported by name, not hidden inside a
 * fused kernel), and not a where whose branches are one value (dce drops
 * its condition, which a fused kernel would read). */
static bool candidate(const fuser *f, int32_t i)
{
    const lg_graph *g = f->g;
    const lg_node *n = &g->nodes[i];
    if (!lg_few_fusible(n->op) || n->n_out != 1 || !lg_is_float(n->out[0].dtype)) return false;
    if (lg_where_of_one(n)) return false;
    if (!f->backend->supports_op(f->backend, n)) return false;
    for (int j = n->op == LG_OP_WHERE; j < n->n_in; j++)
        if (g->nodes[n->in[j].node].out[n->in[j].out].dtype != n->out[0].dtype) return false;
    return true;
}

static bool in_group(const fuser *f, lg_ref r, int32_t root) { return r.out == 0 && f->root[r.node] == root; }

/* The stack values group `root`'s program needs to compute node i (its
 * operands in order, each held while the next is computed); the leaves
 * it reads are collected in f->leaves (at most one past the limit). */
static int depth_of(fuser *f, int32_t i, int32_t root)
{
    const lg_node *n = &f->g->nodes[i];
    int depth = 0;
    for (int j = 0; j < n->n_in; j++) {
        int d;
        if (in_group(f, n->in[j], root) && n->in[j].node != root) {
            d = depth_of(f, n->in[j].node, root);
        } else {
            d = 1;
            int k = 0;
            while (k < f->n_leaves && !(f->leaves[k].node == n->in[j].node && f->leaves[k].out == n->in[j].out)) k++;
            if (k == f->n_leaves && f->n_leaves <= LG_FEW_MAX_INPUTS) f->leaves[f->n_leaves++] = n->in[j];
        }
        if (j + d > depth) depth = j + d;
    }
    return depth;
}

static bool fits(fuser *f, int32_t root)
{
    f->n_leaves = 0;
    int depth = depth_of(f, root, root);
    return depth <= LG_FEW_MAX_DEPTH && f->n_leaves <= LG_FEW_MAX_INPUTS;
}

/* Grow the group of root from member m (f->size counts its ops). */
static void grow(fuser *f, int32_t root, int32_t m)
{
    const lg_node *n = &f->g->nodes[m];
    const lg_port *shape = &f->g->nodes[root].out[0];
    for (int j = 0; j < n->n_in && f->size < LG_FEW_MAX_OPS; j++) {
        int32_t p = n->in[j].node;
        const lg_node *pn = &f->g->nodes[p];
        if (n->in[j].out != 0 || f->root[p] >= 0 || f->uses[p] != 1 || !candidate(f, p) ||
            pn->out[0].dtype != shape->dtype || !lg_shape_equal(pn->out[0].shape, shape->shape))
            continue;
        f->root[p] = root;
        if (!fits(f, root)) {
            f->root[p] = -1;
            continue;
        }
        f->size++;
        grow(f, root, p);
    }
}

/* Append node i's program (operands first) to ins; leaves by index in
 * f->leaves. */
static int emit(const fuser *f, int32_t i, int32_t root, int64_t *ins, int at)
{
    const lg_node *n = &f->g->nodes[i];
    for (int j = 0; j < n->n_in; j++) {
        if (in_group(f, n->in[j], root) && n->in[j].node != root) {
            at = emit(f, n->in[j].node, root, ins, at);
            continue;
        }
        int k = 0;
        while (!(f->leaves[k].node == n->in[j].node && f->leaves[k].out == n->in[j].out)) k++;
        int64_t *load = &ins[at++ * LG_FEW_WIDTH];
        load[0] = LG_OP_INPUT, load[1] = k, load[2] = 0, load[3] = 0;
    }
    lg_few_encode(n, &ins[at++ * LG_FEW_WIDTH]);
    return at;
}

/* The fused node for group `root` in r's graph; -1 on error (recorded). */
static int32_t build_fused(fuser *f, lg_rewrite *r, int32_t root, int size)
{
    bool ok = fits(f, root); /* collects the leaves in program order */
    LG_ASSERT(ok);
    /* size ops, and a load per operand from outside: at most 3 per op */
    int64_t *ins = malloc((size_t)(4 * size) * LG_FEW_WIDTH * sizeof *ins);
    if (!ins) {
        lg_graph_fail(r->dst, "compile: out of memory");
        return -1;
    }
    int n_code = emit(f, root, root, ins, 0);
    lg_value in[LG_FEW_MAX_INPUTS];
    for (int k = 0; k < f->n_leaves; k++) in[k] = lg_rewrite_value(r, f->leaves[k]);
    const lg_node *n = &f->g->nodes[root];
    lg_attrs a = {.ints = ins, .n_ints = n_code * LG_FEW_WIDTH, .dtype = n->out[0].dtype};
    int32_t id = lg_node_build(r->dst, LG_OP_FUSED_ELEMENTWISE, in, f->n_leaves, &a, n->name);
    free(ins);
    if (id < 0) return -1;
    r->dst->nodes[id].is_grad = n->is_grad;
    *lg_rewrite_at(r, (lg_ref){root, 0}) = (lg_ref){id, 0};
    return id;
}

lg_status lg_pass_fuse_elementwise(lg_cgraph *cg)
{
    const lg_node probe = {.op = LG_OP_FUSED_ELEMENTWISE};
    if (!cg->backend || !cg->backend->supports_op(cg->backend, &probe)) return LG_OK;
    const lg_graph *g = cg->g;
    int32_t N = g->n_nodes;
    fuser f = {.g = g,
               .backend = cg->backend,
               .uses = calloc((size_t)N + 1, sizeof *f.uses),
               .root = malloc(((size_t)N + 1) * sizeof *f.root)};
    int *size = calloc((size_t)N + 1, sizeof *size);
    if (!f.uses || !f.root || !size) {
        free(f.uses), free(f.root), free(size);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_elementwise: out of memory");
    }
    for (int32_t i = 0; i < N; i++) {
        f.root[i] = -1;
        for (int j = 0; j < g->nodes[i].n_in; j++) f.uses[g->nodes[i].in[j].node] += g->nodes[i].in[j].out == 0;
    }
    for (int k = 0; k < cg->n_outputs; k++) f.uses[cg->outputs[k].node] += 2;
    int groups = 0, fused_ops = 0;
    char *what = NULL; /* the fused programs, for the report */
    size_t what_len = 0;
    FILE *w = open_memstream(&what, &what_len);
    for (int32_t i = N - 1; i >= 0; i--) {
        if (f.root[i] >= 0 || !candidate(&f, i)) continue;
        f.root[i] = i;
        f.size = 1;
        grow(&f, i, i);
        size[i] = f.size;
        if (size[i] > 1) groups++, fused_ops += size[i];
    }
    lg_status st = LG_OK;
    if (groups) {
        lg_rewrite r;
        lg_graph *dst = lg_graph_new();
        if (!dst || !lg_rewrite_init(&r, g, dst)) {
            lg_graph_free(dst);
            st = lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_elementwise: out of memory");
        } else {
            for (int32_t i = 0; i < N && !st; i++) {
                int32_t root = f.root[i];
                if (root >= 0 && size[root] > 1 && root != i) continue; /* inside a group: its root computes it */
                bool fused = root == i && size[i] > 1;
                int32_t id = fused ? build_fused(&f, &r, i, size[i]) : lg_rewrite_copy(&r, i, NULL, NULL);
                if (id < 0) st = lg_cgraph_fail(dst, "fuse_elementwise");
                else if (fused && w) {
                    char text[256];
                    lg_few_describe(&dst->nodes[id], text, sizeof text);
                    fprintf(w, "%s%s", ftell(w) ? "; " : "", text);
                }
            }
            if (st) lg_graph_free(dst);
            else lg_cgraph_replace(cg, &r);
            lg_rewrite_free(&r);
        }
    }
    bool listed = w && !fclose(w); /* false: out of memory, the list is left out */
    if (!st && groups)
        lg_cgraph_note(cg, "fuse_elementwise: %d elementwise ops into %d kernels%s%s", fused_ops, groups,
                       listed ? ": " : "", listed ? what : "");
    free(what);
    free(f.uses), free(f.root), free(size);
    return st;
}
