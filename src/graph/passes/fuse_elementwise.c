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
 *   - in no other group,
 * and the group's program stays within fused_elementwise.h's limits. A
 * member's value that is read outside the group (a loop's next state, a
 * residual the gradient loop reads, a fetch) or twice inside it is stored
 * as one more output of the kernel. Since the fused node runs where the
 * root was, a member stays only if everything outside that reads it comes
 * after the root (so nothing the group reads can depend on it), and only
 * while the root still reads it through the group; the group then settles
 * by dropping members until both hold.
 *
 * Where the backend reads windows cheaply (window_access: CUDA), a split
 * along the last axis whose pieces all go to elementwise ops of the
 * piece's shape is not run: each group reads its pieces in place from the
 * split's input, computing that input's own elementwise expression
 * (x W + h U + b) over the window; and a concatenation along the last
 * axis of pieces of one shape roots a group (formed before all others, to
 * take its pieces first) whose kernel puts each piece into its window of
 * the result (a gradient loop's dG from its gates' gradients). A group of
 * two or more ops, or reading a window, or putting pieces, becomes one
 * node in the root's place; its inputs are the values it reads from
 * outside. The pass runs only where the backend has the fused kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/passes/passes.h"
#include "ops/fused_elementwise.h"

typedef struct fuser {
    const lg_graph *g;
    const lg_backend *backend;
    int *uses;            /* per node: reads of its output 0, a fetch counting as two */
    int32_t *read_at;     /* per node: where its readers start in readers (n_nodes + 1) */
    int32_t *readers;     /* the nodes reading each node's output 0, once per read */
    int32_t *root;        /* per node: the root of its group, or -1 */
    int32_t *members;     /* the group growing, in the order its members joined */
    int n_members;
    int *in_reads;        /* per node: reads by members of the group planned */
    int *seen, stamp;     /* per node: the walk (stamp) that reached it last */
    int *slot;            /* per member: the output it is stored to, or 0 */
    bool *split_ok;       /* per split node: its pieces may be read as windows (see window_of) */
    bool no_windows;      /* the group planned reads split pieces as they are */
    const lg_port *shape; /* the group planned runs over: its root's, or a concatenation's pieces' */
    lg_ref leaves[LG_FEW_MAX_INPUTS + 1];
    int64_t leaf_c0[LG_FEW_MAX_INPUTS + 1]; /* where each leaf's window starts (0: none) */
    int n_leaves;
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

/* A group's program, counted (and written to code when it is not NULL). */
typedef struct plan {
    int64_t *code;
    int n_code, depth, max_depth, ops, stores;
    bool windows; /* a load reads a split's piece as a window */
} plan;

static void emit(plan *p, int64_t op, int64_t arg, int64_t c0)
{
    if (p->code) {
        int64_t *ins = &p->code[p->n_code * LG_FEW_WIDTH];
        ins[0] = op, ins[1] = arg, ins[2] = c0, ins[3] = 0;
    }
    p->n_code++;
}

static void push(plan *p)
{
    if (++p->depth > p->max_depth) p->max_depth = p->depth;
}

/* Loads leaf r (a window from column c0 along the last dim when c0 > 0),
 * collecting it in f->leaves (at most one past the limit). */
static void load_leaf(fuser *f, lg_ref r, int64_t c0, plan *p)
{
    int k = 0;
    while (k < f->n_leaves && !(f->leaves[k].node == r.node && f->leaves[k].out == r.out && f->leaf_c0[k] == c0)) k++;
    if (k == f->n_leaves && f->n_leaves <= LG_FEW_MAX_INPUTS) f->leaves[f->n_leaves] = r, f->leaf_c0[f->n_leaves++] = c0;
    emit(p, LG_OP_INPUT, k, c0), push(p);
}

/* Whether r is a piece of a split along the last axis that may be read in
 * place, as a window of the split's input (*src, from column *c0): every
 * reader of every piece is an elementwise op that may join a group of the
 * piece's shape, and no piece is fetched (split_ok), so the split and its
 * input are left unread once the groups read them. */
static bool window_of(const fuser *f, lg_ref r, const lg_port *shape, lg_ref *src, int64_t *c0)
{
    const lg_node *n = &f->g->nodes[r.node];
    if (n->op != LG_OP_SPLIT || !f->split_ok[r.node] || n->attrs.axis != n->out[r.out].shape.rank - 1 ||
        n->out[r.out].dtype != shape->dtype || !lg_shape_equal(n->out[r.out].shape, shape->shape))
        return false;
    *src = n->in[0];
    *c0 = 0;
    for (int k = 0; k < r.out; k++) *c0 += n->attrs.ints[k];
    return true;
}

/* The program of the window from column c0 of value r, which a split
 * along the last axis cuts: an elementwise op of r's node's shape read by
 * the split alone runs over the window (its operands' windows, a broadcast
 * operand as it is), anything else is loaded as a window leaf. */
static void walk_window(fuser *f, lg_ref r, int64_t c0, const lg_port *full, plan *p)
{
    const lg_node *n = &f->g->nodes[r.node];
    p->windows = true; /* the output's last dim is set, even where c0 is 0 */
    if (r.out != 0 || f->uses[r.node] != 1 || !candidate(f, r.node) ||
        n->out[0].dtype != full->dtype || !lg_shape_equal(n->out[0].shape, full->shape)) {
        const lg_shape *s = &n->out[r.out].shape;
        load_leaf(f, r, s->rank && s->dims[s->rank - 1] != 1 ? c0 : 0, p);
        return;
    }
    for (int j = 0; j < n->n_in; j++) walk_window(f, n->in[j], c0, full, p);
    if (p->code) lg_few_encode(n, &p->code[p->n_code * LG_FEW_WIDTH]);
    p->n_code++, p->ops++;
    p->depth -= lg_few_arity(n->op) - 1;
}

/* Node i's program (operands first): a member computed before is read
 * again from its output, a leaf loaded by its index in f->leaves (at most
 * one past the limit is collected). */
static void walk(fuser *f, int32_t i, int32_t root, plan *p);

/* Pushes operand r of a member of group root. */
static void walk_operand(fuser *f, lg_ref r, int32_t root, plan *p)
{
    if (in_group(f, r, root)) {
        if (f->seen[r.node] != f->stamp) walk(f, r.node, root, p);
        else emit(p, LG_FEW_RELOAD, f->slot[r.node], 0), push(p);
        return;
    }
    lg_ref src;
    int64_t c0;
    if (!f->no_windows && window_of(f, r, f->shape, &src, &c0))
        walk_window(f, src, c0, &f->g->nodes[src.node].out[src.out], p);
    else load_leaf(f, r, 0, p);
}

static void walk(fuser *f, int32_t i, int32_t root, plan *p)
{
    const lg_node *n = &f->g->nodes[i];
    if (n->op == LG_OP_CONCAT) { /* a concatenation root: each piece put into its window */
        for (int j = 0; j < n->n_in; j++) {
            walk_operand(f, n->in[j], root, p);
            emit(p, LG_FEW_PUT, j * f->shape->shape.dims[f->shape->shape.rank - 1], 0);
            p->depth--;
        }
        f->seen[i] = f->stamp;
        return;
    }
    for (int j = 0; j < n->n_in; j++) walk_operand(f, n->in[j], root, p);
    if (p->code) lg_few_encode(n, &p->code[p->n_code * LG_FEW_WIDTH]);
    p->n_code++, p->ops++;
    p->depth -= lg_few_arity(n->op) - 1;
    f->seen[i] = f->stamp;
    f->slot[i] = 0;
    if (i != root && (f->in_reads[i] > 1 || f->uses[i] > f->in_reads[i])) { /* read again, or outside */
        f->slot[i] = ++p->stores;
        emit(p, LG_FEW_STORE, f->slot[i], 0);
    }
}

/* Plans group root's program into p (code NULL: only counted); whether it
 * is within the limits. The leaves are collected in f->leaves. */
static bool plan_group(fuser *f, int32_t root, plan *p)
{
    for (int m = 0; m < f->n_members; m++) {
        const lg_node *n = &f->g->nodes[f->members[m]];
        for (int j = 0; j < n->n_in && f->root[f->members[m]] == root; j++)
            f->in_reads[n->in[j].node] += in_group(f, n->in[j], root);
    }
    f->n_leaves = 0;
    f->stamp++;
    walk(f, root, root, p);
    for (int m = 0; m < f->n_members; m++) {
        const lg_node *n = &f->g->nodes[f->members[m]];
        for (int j = 0; j < n->n_in; j++) f->in_reads[n->in[j].node] = 0;
    }
    return p->max_depth <= LG_FEW_MAX_DEPTH && f->n_leaves <= LG_FEW_MAX_INPUTS && p->ops <= LG_FEW_MAX_OPS &&
           p->stores < LG_FEW_MAX_OUTPUTS;
}

static bool fits(fuser *f, int32_t root)
{
    plan p = {0};
    return plan_group(f, root, &p);
}

/* Grow the group of root from member m. */
static void grow(fuser *f, int32_t root, int32_t m)
{
    const lg_node *n = &f->g->nodes[m];
    const lg_port *shape = f->shape;
    for (int j = 0; j < n->n_in && f->n_members < LG_FEW_MAX_OPS; j++) {
        int32_t p = n->in[j].node;
        const lg_node *pn = &f->g->nodes[p];
        if (n->in[j].out != 0 || f->root[p] >= 0 || !candidate(f, p) || pn->out[0].dtype != shape->dtype ||
            !lg_shape_equal(pn->out[0].shape, shape->shape))
            continue;
        f->root[p] = root;
        f->members[f->n_members++] = p;
        if (!fits(f, root)) {
            f->root[p] = -1;
            f->n_members--;
            continue;
        }
        grow(f, root, p);
    }
}

/* Drops the members the group cannot keep (see the top), and the last
 * joined while the program is past the limits; leaves f->members the
 * members that remain, and returns their program, counted. */
static plan settle(fuser *f, int32_t root)
{
    plan p;
    for (bool changed = true; changed;) {
        changed = false;
        p = (plan){0};
        if (!plan_group(f, root, &p)) { /* p's walk marked the members root reaches */
            int m = f->n_members - 1;
            while (m > 0 && f->root[f->members[m]] != root) m--;
            if (m > 0) f->root[f->members[m]] = -1, changed = true;
        }
        for (int m = 1; m < f->n_members; m++) { /* members[0] is the root */
            int32_t i = f->members[m];
            if (f->root[i] != root) continue;
            bool keep = f->seen[i] == f->stamp;
            for (int32_t k = f->read_at[i]; keep && k < f->read_at[i + 1]; k++)
                keep = f->root[f->readers[k]] == root || f->readers[k] > root;
            if (!keep) f->root[i] = -1, changed = true;
        }
        int kept = 0;
        for (int m = 0; m < f->n_members; m++)
            if (f->root[f->members[m]] == root) f->members[kept++] = f->members[m];
        f->n_members = kept;
    }
    return p;
}

/* The fused node for group `root` in r's graph (its members' outside
 * reads mapped to its outputs); -1 on error (recorded). */
static int32_t build_fused(fuser *f, lg_rewrite *r, int32_t root)
{
    plan p = {0};
    bool ok = plan_group(f, root, &p);
    LG_ASSERT(ok);
    int64_t *code = malloc((size_t)p.n_code * LG_FEW_WIDTH * sizeof *code);
    if (!code) {
        lg_graph_fail(r->dst, "compile: out of memory");
        return -1;
    }
    p = (plan){.code = code};
    plan_group(f, root, &p);
    lg_value in[LG_FEW_MAX_INPUTS];
    for (int k = 0; k < f->n_leaves; k++) in[k] = lg_rewrite_value(r, f->leaves[k]);
    const lg_node *n = &f->g->nodes[root];
    const lg_shape *w = &f->shape->shape;
    lg_attrs a = {.ints = code,
                  .n_ints = p.n_code * LG_FEW_WIDTH,
                  .dtype = n->out[0].dtype,
                  .axis = p.windows || n->op == LG_OP_CONCAT ? (int)w->dims[w->rank - 1] : 0};
    int32_t id = lg_node_build(r->dst, LG_OP_FUSED_ELEMENTWISE, in, f->n_leaves, &a, n->name);
    free(code);
    if (id < 0) return -1;
    r->dst->nodes[id].is_grad = n->is_grad;
    *lg_rewrite_at(r, (lg_ref){root, 0}) = (lg_ref){id, 0};
    for (int m = 1; m < f->n_members; m++)
        if (f->slot[f->members[m]]) *lg_rewrite_at(r, (lg_ref){f->members[m], 0}) = (lg_ref){id, f->slot[f->members[m]]};
    return id;
}

/* Whether node i, a concatenation along the last axis of pieces of one
 * shape, may root a group that puts each piece into its window: where the
 * backend writes windows as cheaply as it reads them (window_access). */
static bool concat_root(const fuser *f, int32_t i)
{
    const lg_node *n = &f->g->nodes[i];
    if (n->op != LG_OP_CONCAT || !f->backend->window_access || n->n_in < 2 || !lg_is_float(n->out[0].dtype) ||
        n->attrs.axis != n->out[0].shape.rank - 1)
        return false;
    const lg_port *piece = &f->g->nodes[n->in[0].node].out[n->in[0].out];
    for (int j = 1; j < n->n_in; j++)
        if (!lg_shape_equal(f->g->nodes[n->in[j].node].out[n->in[j].out].shape, piece->shape)) return false;
    return piece->shape.dims[piece->shape.rank - 1] > 0;
}

/* The port group root runs over: the root's, or its pieces'. */
static const lg_port *group_shape(const fuser *f, int32_t root)
{
    const lg_node *n = &f->g->nodes[root];
    return n->op == LG_OP_CONCAT ? &f->g->nodes[n->in[0].node].out[n->in[0].out] : &n->out[0];
}

/* Which splits' pieces may be read as windows (window_of). */
static void find_windows(fuser *f, const lg_cgraph *cg)
{
    const lg_graph *g = f->g;
    for (int32_t i = 0; i < g->n_nodes; i++) f->split_ok[i] = g->nodes[i].op == LG_OP_SPLIT && lg_is_float(g->nodes[i].out[0].dtype);
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const lg_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            lg_ref r = n->in[j];
            if (!f->split_ok[r.node]) continue;
            const lg_port *piece = &g->nodes[r.node].out[r.out];
            if (!candidate(f, i) || n->out[0].dtype != piece->dtype || !lg_shape_equal(n->out[0].shape, piece->shape))
                f->split_ok[r.node] = false;
        }
    }
    for (int k = 0; k < cg->n_outputs; k++) f->split_ok[cg->outputs[k].node] = false;
}

/* The readers of each node's output 0 (a CSR in f); false: out of memory. */
static bool index_readers(fuser *f)
{
    const lg_graph *g = f->g;
    int32_t N = g->n_nodes;
    for (int32_t i = 0; i < N; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) f->read_at[g->nodes[i].in[j].node + 1] += g->nodes[i].in[j].out == 0;
    for (int32_t i = 0; i < N; i++) f->read_at[i + 1] += f->read_at[i];
    f->readers = malloc(((size_t)f->read_at[N] + 1) * sizeof *f->readers);
    int32_t *at = malloc(((size_t)N + 1) * sizeof *at);
    if (!f->readers || !at) {
        free(at);
        return false;
    }
    memcpy(at, f->read_at, (size_t)N * sizeof *at);
    for (int32_t i = 0; i < N; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j].out == 0) f->readers[at[g->nodes[i].in[j].node]++] = i;
    free(at);
    return true;
}

/* A group, once formed: its members from flat[first] on, size of them;
 * the ops its kernel runs (0: no fused kernel, a lone op reading no
 * window); plain: it reads split pieces as they are. */
typedef struct group {
    int32_t first;
    int size, ops;
    bool plain;
} group;

static void fuser_free(fuser *f)
{
    free(f->uses), free(f->read_at), free(f->readers), free(f->root), free(f->members), free(f->in_reads);
    free(f->seen), free(f->slot), free(f->split_ok);
}

lg_status lg_pass_fuse_elementwise(lg_cgraph *cg)
{
    if (!lg_pass_fuses(cg)) return LG_OK;
    const lg_graph *g = cg->g;
    int32_t N = g->n_nodes;
    size_t n1 = (size_t)N + 1;
    fuser f = {.g = g,
               .backend = cg->backend,
               .uses = calloc(n1, sizeof *f.uses),
               .read_at = calloc(n1, sizeof *f.read_at),
               .root = malloc(n1 * sizeof *f.root),
               .members = malloc(n1 * sizeof *f.members),
               .in_reads = calloc(n1, sizeof *f.in_reads),
               .seen = calloc(n1, sizeof *f.seen),
               .slot = calloc(n1, sizeof *f.slot),
               .split_ok = calloc(n1, sizeof *f.split_ok)};
    /* per root: its group (members in flat), and all groups' members, the root first */
    group *grp = calloc(n1, sizeof *grp);
    int32_t *flat = malloc(n1 * sizeof *flat);
    if (!f.uses || !f.read_at || !f.root || !f.members || !f.in_reads || !f.seen || !f.slot || !f.split_ok || !grp ||
        !flat || !index_readers(&f)) {
        fuser_free(&f), free(grp), free(flat);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "fuse_elementwise: out of memory");
    }
    for (int32_t i = 0; i < N; i++) {
        f.root[i] = -1;
        f.uses[i] = f.read_at[i + 1] - f.read_at[i];
    }
    for (int k = 0; k < cg->n_outputs; k++) f.uses[cg->outputs[k].node] += 2;
    find_windows(&f, cg);
    int groups = 0, fused_ops = 0, n_flat = 0;
    char *what = NULL; /* the fused programs, for the report */
    size_t what_len = 0;
    FILE *w = open_memstream(&what, &what_len);
    /* concatenations first, so that they take their pieces before the
     * pieces' other readers do */
    for (int32_t k = 2 * N - 1; k >= 0; k--) {
        int32_t i = k % N;
        if (f.root[i] >= 0 || !(k >= N ? concat_root(&f, i) : candidate(&f, i))) continue;
        f.root[i] = i;
        f.shape = group_shape(&f, i);
        f.members[0] = i;
        f.n_members = 1;
        /* no windows on a backend that gathers them, or where the windows' programs alone are past the limits */
        f.no_windows = !cg->backend->window_access || !fits(&f, i);
        grow(&f, i, i);
        plan p = settle(&f, i);
        bool concat = g->nodes[i].op == LG_OP_CONCAT;
        grp[i] = (group){.first = n_flat, .size = f.n_members, .plain = f.no_windows};
        if (concat ? p.ops > 0 : p.ops > 1 || p.windows) groups++, fused_ops += grp[i].ops = p.ops;
        memcpy(flat + n_flat, f.members, (size_t)f.n_members * sizeof *flat);
        n_flat += f.n_members;
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
                if (root >= 0 && grp[root].ops && root != i) continue; /* inside a group: its root computes it */
                bool fused = root == i && grp[i].ops;
                if (fused) {
                    f.n_members = grp[i].size;
                    f.no_windows = grp[i].plain;
                    f.shape = group_shape(&f, i);
                    memcpy(f.members, flat + grp[i].first, (size_t)grp[i].size * sizeof *flat);
                }
                int32_t id = fused ? build_fused(&f, &r, i) : lg_rewrite_copy(&r, i, NULL, NULL);
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
    fuser_free(&f), free(grp), free(flat);
    return st;
}
