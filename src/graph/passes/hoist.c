/*
 * hoist.c — move loop work that does not depend on the carried state out of
 * the loop, for any loop (cells built by the library or written by hand).
 *
 * Before the loop: a body value that depends only on sequences, invariants
 * and constants is computed once for all steps, as a batched op over the
 * stacked sequences [T, B, ...]: x_t W + b becomes one [T*B, I] x [I, N]
 * GEMM, an embedding lookup one gather, a dropout mask on x_t one multiply.
 * The body reads the result as a new sequence. Only values whose cone holds
 * a matmul or gather are stacked this way (stacking elementwise work alone
 * would cost memory and save nothing); values of invariants alone (a slice
 * or transpose of a weight) are computed once and read as new invariants.
 * A per-step output or saved residual that is such a value is not computed
 * in the loop at all: the loop's output becomes the batched value.
 *
 * After the loop (gradient loops): an accumulator acc' = acc + x_t^T g_t
 * (a weight's gradient summed over the steps) becomes one GEMM over all
 * steps, acc + X^T G with X, G stacked [T*B, ...]: the loop emits g_t as a
 * per-step output (x_t, a sequence, is stacked already), and its state goes.
 * acc' = acc + sum_to(g_t, b) (a bias's gradient) becomes one sum_to of the
 * stacked g, when g is stacked for a GEMM anyway. So no weight gradient
 * costs a GEMM and an add per step. Likewise a per-step output y_t = v_t W
 * (a gradient loop's dx_t = dG_t W^T) is one GEMM over the stacked v.
 *
 * Kept per example (gradient loops): an accumulator acc' = acc +
 * sum_to(g_t, like) that is not summed after the loop (its g_t is not
 * stacked: a peephole or layer-norm weight's gradient) becomes a state of
 * g_t's shape, acc_w' = acc_w + g_t, from zeros, and acc + sum_to(acc_w,
 * like) after the loop. Per step, one add of g_t's shape (fuse_elementwise
 * puts the product making g_t in its kernel) replaces a reduction over the
 * batch and an add: a call fewer per accumulator (on a GPU, a launch), for
 * about g_t's bytes moved once more. Where the backend fuses elementwise
 * ops that paid at any size measured (the peephole cell on the CPU, g_t
 * [64, 128] and [64, 512] f32, 4 and 16 times CALL_BYTES: 1-3 % faster
 * steps); without fusion, where g_t is at most CALL_BYTES.
 *
 * The cost rule: moving a product out of the loop does the same flops; it
 * trades what each step does for the weight against a stack. Per step, the
 * loop's own GEMM v_t W packs all of W [K, N] (OpenBLAS copies it for every
 * call), an accumulator acc += x_t^T g_t reads and writes all of acc
 * [K, N], and every kernel call costs about what moving CALL_BYTES does.
 * Out of the loop, a value [B, N] a step is written to a stack and read
 * back. So, in bytes per step:
 *   - a value moves before the loop when CALL_BYTES per op of its cone plus
 *     the bytes of its products' weights reach twice its own bytes: with
 *     f32 and few ops, when K >= 2B (input features against the batch);
 *   - a gradient loop's accumulators are summed after it when twice their
 *     bytes plus 2 CALL_BYTES each (the matmul and the add) reach twice the
 *     bytes of the operands they make it emit (g_t): when the weights' rows
 *     (x's features plus h's units, for an RNN's W and U) reach about B;
 *   - an output v_t W is one GEMM after the loop when v_t is emitted for
 *     the accumulators anyway, or W's bytes plus CALL_BYTES reach twice v_t's.
 * A value the loop fetches (an output, a residual the gradient loop reads)
 * is stacked either way and always moves. Measured on LSTM(32) at B = 256
 * (bench/README.md), moving x_t W (K = 14) and the weight gradients out cost
 * a fifth more time per step than keeping them; LSTM(256) at B = 64 gains
 * from summing dU (K = 256) after the loop.
 */
#include <string.h>

#include "graph/ops.h"
#include "graph/passes/passes.h"
#include "ops/op.h"

typedef enum kind { K_VAR, K_SEQ, K_INV } kind;

/* An accumulator, state's next = state + f with f = matmul(a, b, trans_a)
 * or sum_to(a, b): summed after the loop (a sink) or kept per example (a
 * wide one, sum_to only). */
typedef struct sink {
    int state;
    lg_op op;
    lg_ref a, b;
} sink;

typedef struct loop_ctx {
    lg_cgraph *cg;
    lg_rewrite *r; /* the outer rebuild */
    int32_t node;  /* the loop, in r->src */
    const lg_loop_spec *s;
    const lg_graph *body;
    int n_in, n_fetch;
    lg_ref *fetch;        /* body values the loop fetches: outputs, then the residuals read */
    const bool *res_read; /* per residual: whether anything after the loop reads it */
    int *input_k;  /* per body node: its spec input index, or -1 */
    kind *kind;
    bool *needed, *heavy, *front, *cone;
    lg_ref *lifted; /* per body node: its batched copy in r->dst (node -1: none yet) */
    lg_ref *fronts; /* frontier values, each a new body input */
    int n_fronts;
    sink *sinks;
    int n_sinks;
    sink *wides;        /* sum_to accumulators kept per example (find_wides) */
    lg_port *wide_port; /* per wide: its g_t's concrete step port (its state's) */
    int n_wides;
    const bool *read; /* per output of the loop node: whether anything reads it */
    bool *y_after; /* per per-step output: computed after the loop */
    int n_y_after;
    /* Frontier values computed per chunk of steps (see lg_loop_spec.pre):
     * chunked[f] for fronts[f]; their batched copies live in `pre`. */
    bool *chunked;
    int n_chunked;
    int64_t chunk;
    lg_graph *pre;
    lg_ref *pre_lifted;  /* per body node: its copy in pre (node -1: none yet) */
    int32_t *pre_in;     /* per loop input: pre's input node standing for it, or -1 */
    /* The sinks summed per chunk (lg_loop_spec.post) rather than after the
     * loop; their operands that are not sequences are emitted per step. */
    bool sinks_chunked;
    lg_ref *emit;
    lg_port *emit_port; /* concrete step ports */
    int n_emit;
    int64_t batch;  /* the first sequence's batch: a body dim unknown until compile */
    signed char *pays; /* per body node: the cost rule's verdict on moving it (0: not asked yet, 1, -1) */
} loop_ctx;

/* The most bytes one loop's chunked values take per chunk, and the fewest
 * steps in a chunk and chunks in a loop. */
enum { CHUNK_BYTES = 4 << 20, MIN_CHUNK = 4 };
/* The cost rule's price of one kernel call per step, in bytes moved (the
 * executor's and OpenBLAS's overhead per call), set from measurements: the
 * peephole example (B = 32, x_t W + b [32, 64] f32, two ops) gains from
 * moving x_t W + b out, Embedding + SimpleRNN(64) at B = 128 (three ops,
 * [128, 64]) loses. */
enum { CALL_BYTES = 8192 };

static bool is_elementwise(lg_op op) { return op >= LG_OP_ADD && op <= LG_OP_STOP_GRADIENT; /* op_list.h order */ }

static int rank_of(const lg_graph *g, lg_ref r) { return g->nodes[r.node].out[r.out].shape.rank; }

/* Whether a node with some sequence-dependent inputs (and no state-dependent
 * ones) has a batched form: the same op over [T, ...] stacked inputs. */
static bool liftable(const loop_ctx *c, const lg_node *n)
{
    const kind *k = c->kind;
    switch (n->op) {
    case LG_OP_MATMUL: /* [T, B, I] x [I, N] folds T into the GEMM's rows */
        return k[n->in[0].node] == K_SEQ && k[n->in[1].node] == K_INV && !n->attrs.trans_a &&
               rank_of(c->body, n->in[1]) == 2 && rank_of(c->body, n->in[0]) >= 2;
    case LG_OP_GATHER: return k[n->in[0].node] == K_INV && k[n->in[1].node] == K_SEQ;
    case LG_OP_SLICE:
    case LG_OP_SPLIT: return true; /* along axis + 1 */
    default:
        if (!is_elementwise(n->op)) return false;
        /* stacked operands stay aligned only when they have the output's rank;
         * invariants broadcast from the right as before */
        for (int j = 0; j < n->n_in; j++)
            if (k[n->in[j].node] == K_SEQ && rank_of(c->body, n->in[j]) != n->out[0].shape.rank) return false;
        return true;
    }
}

static void classify(loop_ctx *c)
{
    const lg_graph *b = c->body;
    for (int32_t i = 0; i < b->n_nodes; i++) {
        const lg_node *n = &b->nodes[i];
        int k = c->input_k[i];
        if (k >= 0) {
            c->kind[i] = k < c->s->n_seq ? K_SEQ : k < c->s->n_seq + c->s->n_state ? K_VAR : K_INV;
            continue;
        }
        if (n->op == LG_OP_CONST) {
            c->kind[i] = K_INV;
            continue;
        }
        if (!lg_op_is_compute(n->op) || n->op == LG_OP_LOOP) {
            c->kind[i] = K_VAR;
            continue;
        }
        bool var = false, seq = false, heavy = n->op == LG_OP_MATMUL || n->op == LG_OP_GATHER;
        for (int j = 0; j < n->n_in; j++) {
            kind kj = c->kind[n->in[j].node];
            var = var || kj == K_VAR;
            seq = seq || kj == K_SEQ;
            heavy = heavy || (kj == K_SEQ && c->heavy[n->in[j].node]);
        }
        c->kind[i] = var ? K_VAR : !seq ? K_INV : liftable(c, n) ? K_SEQ : K_VAR;
        c->heavy[i] = c->kind[i] == K_SEQ && heavy;
    }
}

/* Whether a value is worth computing before the loop: a batched value with
 * a GEMM or gather in it, or an invariant computed by an op. */
/* Whether the loop may stack values over its steps: not under the recompute
 * policy, which keeps memory independent of T (then only invariant work
 * moves out). */
static bool stacks_ok(const loop_ctx *c) { return c->s->memory != LG_LOOP_RECOMPUTE; }

/* Bytes of body value r per step (a dim the user's body leaves unknown, -1,
 * is the batch: an estimate for the cost rule). */
static size_t step_bytes(const loop_ctx *c, lg_ref r)
{
    lg_port p = c->body->nodes[r.node].out[r.out];
    for (int d = 0; d < p.shape.rank; d++)
        if (p.shape.dims[d] < 0) p.shape.dims[d] = c->batch;
    return lg_port_bytes(&p);
}

/* What computing sequence value i before the loop saves per step (the cost
 * rule, above): a call per op of its cone and each product's weight. */
static size_t front_gain(const loop_ctx *c, int32_t i, bool *seen)
{
    if (seen[i] || c->kind[i] != K_SEQ || c->input_k[i] >= 0) return 0;
    seen[i] = true;
    const lg_node *n = &c->body->nodes[i];
    size_t gain = CALL_BYTES + (n->op == LG_OP_MATMUL ? step_bytes(c, n->in[1]) : 0);
    for (int j = 0; j < n->n_in; j++) gain += front_gain(c, n->in[j].node, seen);
    return gain;
}

/* Whether stacking sequence value i before the loop pays. False when out of
 * memory (then nothing moves; the loop is right either way). */
static bool front_pays(loop_ctx *c, int32_t i)
{
    if (!c->pays[i]) {
        bool *seen = calloc((size_t)c->body->n_nodes, sizeof *seen);
        c->pays[i] = seen && front_gain(c, i, seen) >= 2 * step_bytes(c, (lg_ref){i, 0}) ? 1 : -1;
        free(seen);
    }
    return c->pays[i] > 0;
}

/* `fetched`: the loop fetches the value, so it is stacked either way. */
static bool hoistable(loop_ctx *c, int32_t i, bool fetched)
{
    return lg_op_is_compute(c->body->nodes[i].op) &&
           ((c->kind[i] == K_SEQ && c->heavy[i] && stacks_ok(c) && (fetched || front_pays(c, i))) ||
            c->kind[i] == K_INV);
}

static int find_ref(const lg_ref *refs, int n, lg_ref r)
{
    for (int k = 0; k < n; k++)
        if (refs[k].node == r.node && refs[k].out == r.out) return k;
    return -1;
}

static bool add_front(loop_ctx *c, lg_ref r)
{
    if (find_ref(c->fronts, c->n_fronts, r) >= 0) return true;
    lg_ref *f = realloc(c->fronts, (size_t)(c->n_fronts + 1) * sizeof *f);
    if (!f) return false;
    c->fronts = f;
    c->fronts[c->n_fronts++] = r;
    c->front[r.node] = true;
    return true;
}

/* The frontier: hoistable values that the state-dependent part of the body,
 * or the loop's fetches, read. */
static bool find_fronts(loop_ctx *c)
{
    const lg_graph *b = c->body;
    for (int32_t i = 0; i < b->n_nodes; i++) {
        const lg_node *n = &b->nodes[i];
        if (!c->needed[i] || c->kind[i] != K_VAR || !lg_op_is_compute(n->op)) continue;
        for (int j = 0; j < n->n_in; j++)
            if (hoistable(c, n->in[j].node, false) && !add_front(c, n->in[j])) return false;
    }
    for (int k = 0; k < c->n_fetch; k++)
        if (hoistable(c, c->fetch[k].node, true) && !add_front(c, c->fetch[k])) return false;
    return true;
}

static bool stacked_outside(const loop_ctx *c, lg_ref r);

/* How many needed nodes and fetches read ref r. */
static int readers(const loop_ctx *c, lg_ref r)
{
    int n = 0;
    for (int32_t i = 0; i < c->body->n_nodes; i++)
        for (int j = 0; c->needed[i] && j < c->body->nodes[i].n_in; j++)
            n += c->body->nodes[i].in[j].node == r.node && c->body->nodes[i].in[j].out == r.out;
    for (int k = 0; k < c->n_fetch; k++) n += c->fetch[k].node == r.node && c->fetch[k].out == r.out;
    return n;
}

/* Whether state k of a gradient loop is an accumulator: next = add(state,
 * f), the state read by nothing else, f = matmul(a [B, I], g [B, N],
 * trans_a) or sum_to(g, like) with `like` invariant; *sk says which. */
static bool accumulator(const loop_ctx *c, int k, sink *sk)
{
    const lg_loop_spec *s = c->s;
    const lg_graph *b = c->body;
    int32_t acc = s->inputs[s->n_seq + k];
    lg_ref next = s->outputs[k];
    const lg_node *add = &b->nodes[next.node];
    if (!s->gradient || add->op != LG_OP_ADD || readers(c, (lg_ref){acc, 0}) != 1 || readers(c, next) != 1) return false;
    int other = add->in[0].node == acc ? 1 : add->in[1].node == acc ? 0 : -1;
    if (other < 0) return false;
    lg_ref f = add->in[other];
    const lg_node *fn = &b->nodes[f.node];
    if (!lg_shape_equal(fn->out[0].shape, add->out[0].shape)) return false; /* no broadcasting in the add */
    *sk = (sink){.state = k, .op = fn->op, .a = fn->in[0], .b = fn->in[1]};
    if (fn->op == LG_OP_MATMUL)
        return fn->attrs.trans_a && !fn->attrs.trans_b && rank_of(b, fn->in[0]) == 2 && rank_of(b, fn->in[1]) == 2 &&
               c->kind[fn->in[0].node] != K_INV && c->kind[fn->in[1].node] != K_INV;
    return fn->op == LG_OP_SUM_TO && c->kind[fn->in[0].node] != K_INV && c->kind[fn->in[1].node] == K_INV;
}

/* The accumulators summed after the loop (the sinks; see the top). */
static bool find_sinks(loop_ctx *c)
{
    const lg_loop_spec *s = c->s;
    c->sinks = calloc((size_t)(s->n_state ? s->n_state : 1), sizeof *c->sinks);
    if (!c->sinks) return false;
    for (int k = 0; stacks_ok(c) && k < s->n_state; k++)
        if (accumulator(c, k, &c->sinks[c->n_sinks])) c->n_sinks++;
    /* a sum_to pays only when its g is stacked anyway (a sequence, or the g
     * of a matmul sink): stacking g for it alone costs T*B rows of memory to
     * save one small add per step */
    int kept = 0;
    for (int i = 0; i < c->n_sinks; i++) {
        const sink *sk = &c->sinks[i];
        bool pays = sk->op == LG_OP_MATMUL || stacked_outside(c, sk->a);
        for (int j = 0; !pays && j < c->n_sinks; j++)
            pays = c->sinks[j].op == LG_OP_MATMUL && (find_ref(&c->sinks[j].a, 1, sk->a) >= 0 || find_ref(&c->sinks[j].b, 1, sk->a) >= 0);
        if (pays) c->sinks[kept++] = *sk;
    }
    c->n_sinks = kept;
    /* the cost rule (above), for all of them at once: they share g_t */
    size_t gain = 0, cost = 0;
    lg_ref *emitted = malloc((size_t)(2 * kept + 1) * sizeof *emitted);
    int n_emitted = 0;
    if (!emitted) return false;
    for (int i = 0; i < kept; i++) {
        const sink *sk = &c->sinks[i];
        gain += 2 * step_bytes(c, (lg_ref){s->inputs[s->n_seq + sk->state], 0}) + 2 * CALL_BYTES;
        lg_ref ops[2] = {sk->a, sk->b};
        for (int j = 0; j < (sk->op == LG_OP_MATMUL ? 2 : 1); j++)
            if (!stacked_outside(c, ops[j]) && find_ref(emitted, n_emitted, ops[j]) < 0) {
                emitted[n_emitted++] = ops[j];
                cost += 2 * step_bytes(c, ops[j]);
            }
    }
    free(emitted);
    if (gain < cost) c->n_sinks = 0;
    return true;
}

/* Per-step outputs y_t = v_t W (W invariant), read by nothing else in the
 * body: the loop emits v_t and y is one batched GEMM after it, V W over all
 * T*B rows (a gradient loop's dx_t = dG_t W^T, whose dG_t is emitted for the
 * weight gradients anyway). */
static bool find_outputs_after(loop_ctx *c)
{
    const lg_loop_spec *s = c->s;
    c->y_after = calloc((size_t)(s->n_y ? s->n_y : 1), sizeof *c->y_after);
    if (!c->y_after) return false;
    for (int j = 0; !s->has_stop && stacks_ok(c) && j < s->n_y; j++) {
        lg_ref y = s->outputs[s->n_state + j];
        const lg_node *n = &c->body->nodes[y.node];
        if (n->op != LG_OP_MATMUL || n->attrs.trans_a || c->kind[y.node] != K_VAR || c->kind[n->in[0].node] != K_VAR ||
            c->kind[n->in[1].node] != K_INV || rank_of(c->body, n->in[0]) != 2 || rank_of(c->body, n->in[1]) != 2 ||
            readers(c, y) != 1)
            continue;
        /* the cost rule (above): free when the accumulators emit v_t anyway */
        bool emitted = false;
        for (int i = 0; i < c->n_sinks && !emitted; i++)
            emitted = c->sinks[i].op == LG_OP_MATMUL &&
                      (find_ref(&c->sinks[i].a, 1, n->in[0]) >= 0 || find_ref(&c->sinks[i].b, 1, n->in[0]) >= 0);
        if (!emitted && step_bytes(c, n->in[1]) + CALL_BYTES < 2 * step_bytes(c, n->in[0])) continue;
        c->y_after[j] = true;
        c->n_y_after++;
    }
    return true;
}

static bool is_sunk_state(const loop_ctx *c, int k)
{
    for (int i = 0; i < c->n_sinks; i++)
        if (c->sinks[i].state == k) return true;
    return false;
}

/* The accumulators kept per example (see the top): the sum_to ones that
 * are not sinks, where the backend fuses elementwise ops or g is small,
 * whose saved states nothing reads (gradient loops save none today; a loop
 * that did would need them [H]) and whose g's step shape the loop's input
 * ports give (wide_port). */
static bool find_wides(loop_ctx *c)
{
    const lg_loop_spec *s = c->s;
    c->wides = calloc((size_t)(s->n_state ? s->n_state : 1), sizeof *c->wides);
    if (!c->wides) return false;
    bool fuses = lg_pass_fuses(c->cg);
    c->wide_port = calloc((size_t)(s->n_state ? s->n_state : 1), sizeof *c->wide_port);
    if (!c->wide_port) return false;
    /* g_t's step port from the loop's concrete input ports: a dim the body
     * leaves open need not be the batch (an encoder's steps) */
    const lg_node *loop = &c->r->src->nodes[c->node];
    lg_port in[c->n_in > 0 ? c->n_in : 1];
    for (int k = 0; k < c->n_in; k++) {
        in[k] = c->r->src->nodes[loop->in[k].node].out[loop->in[k].out];
        if (k < s->n_seq) {
            for (int d = 0; d + 1 < in[k].shape.rank; d++) in[k].shape.dims[d] = in[k].shape.dims[d + 1];
            in[k].shape.rank--;
        }
    }
    for (int k = 0; k < s->n_state; k++) {
        sink sk;
        if (is_sunk_state(c, k) || !accumulator(c, k, &sk) || sk.op != LG_OP_SUM_TO || c->read[s->n_state + s->n_y + k])
            continue;
        lg_port p;
        if (lg_body_ports((lg_graph *)c->body, s->inputs, in, c->n_in, &sk.a, 1, &p)) continue;
        if (fuses || lg_port_bytes(&p) <= CALL_BYTES) c->wide_port[c->n_wides] = p, c->wides[c->n_wides++] = sk;
    }
    return true;
}

/* The wide accumulator whose next value body node i makes, or NULL. */
static const sink *wide_at(const loop_ctx *c, int32_t i)
{
    for (int w = 0; w < c->n_wides; w++)
        if (c->s->outputs[c->wides[w].state].node == i) return &c->wides[w];
    return NULL;
}

/* The wide accumulator of state k, or NULL. */
static const sink *wide_state(const loop_ctx *c, int k)
{
    for (int w = 0; w < c->n_wides; w++)
        if (c->wides[w].state == k) return &c->wides[w];
    return NULL;
}

/* The batched copy of body node i (built on first use) in the outer graph,
 * or with `pre` in the per-chunk graph: a sequence input is the loop's
 * stacked input (in pre: an input for its chunk), an invariant the loop's
 * input, a constant a borrowed copy, an op the same op over batched inputs
 * (slice and split one axis further right). Node -1 on error. */
static lg_ref lift_into(loop_ctx *c, int32_t i, bool pre)
{
    lg_ref *memo = pre ? c->pre_lifted : c->lifted;
    if (memo[i].node >= 0) return memo[i];
    const lg_node *n = &c->body->nodes[i];
    lg_graph *dst = pre ? c->pre : c->r->dst;
    const lg_node *loop = &c->r->src->nodes[c->node];
    lg_ref out = {-1, 0};
    int k = c->input_k[i];
    if (k >= 0 && pre) { /* an input of pre: a sequence's chunk [chunk, ...], or the invariant */
        lg_port pt = c->r->src->nodes[loop->in[k].node].out[loop->in[k].out];
        if (k < c->s->n_seq) pt.shape.dims[0] = c->chunk;
        lg_value v = lg_input(dst, n->name, pt.dtype, pt.shape);
        out.node = lg_value_ok(v) ? v.node : -1;
        c->pre_in[k] = out.node;
    } else if (k >= 0) {
        out = *lg_rewrite_at(c->r, loop->in[k]);
    } else if (n->op == LG_OP_CONST) {
        out.node = lg_node_copy_source(dst, n, n->out[0]);
    } else {
        lg_value in[n->n_in > 0 ? n->n_in : 1];
        for (int j = 0; j < n->n_in; j++) {
            lg_ref l = lift_into(c, n->in[j].node, pre);
            if (l.node < 0) return l;
            in[j] = lg_value_of(dst, l.node, l.out + n->in[j].out);
        }
        lg_attrs a = n->attrs;
        a.loop = NULL;
        if (c->kind[i] == K_SEQ && (n->op == LG_OP_SLICE || n->op == LG_OP_SPLIT)) a.axis++;
        out.node = lg_node_build(dst, n->op, in, n->n_in, &a, n->name);
        if (out.node >= 0) dst->nodes[out.node].is_grad = n->is_grad;
    }
    if (out.node < 0 && !dst->error) lg_graph_fail(dst, "hoist: out of memory");
    memo[i] = out;
    return out;
}

static lg_value lifted_value(loop_ctx *c, lg_ref r)
{
    lg_ref l = lift_into(c, r.node, false);
    return l.node < 0 ? lg_value_invalid() : lg_value_of(c->r->dst, l.node, l.out + r.out);
}

/* Frontier value r over one chunk of steps [chunk, ...], in pre. */
static lg_value pre_value(loop_ctx *c, lg_ref r)
{
    lg_ref l = lift_into(c, r.node, true);
    return l.node < 0 ? lg_value_invalid() : lg_value_of(c->pre, l.node, l.out + r.out);
}

/* A body value as stacked [T, ...] outside the loop without the loop
 * computing it: a sequence input or a batched frontier value. */
static bool stacked_outside(const loop_ctx *c, lg_ref r)
{
    int k = c->input_k[r.node], f = find_ref(c->fronts, c->n_fronts, r);
    return (k >= 0 && k < c->s->n_seq) || (c->kind[r.node] == K_SEQ && f >= 0 && !(c->chunked && c->chunked[f]));
}

static bool sink_reads(const loop_ctx *c, lg_ref r)
{
    for (int i = 0; i < c->n_sinks; i++)
        if (find_ref(&c->sinks[i].a, 1, r) >= 0 || (c->sinks[i].op == LG_OP_MATMUL && find_ref(&c->sinks[i].b, 1, r) >= 0))
            return true;
    for (int j = 0; j < c->s->n_y; j++)
        if (c->y_after[j] && find_ref(&c->body->nodes[c->s->outputs[c->s->n_state + j].node].in[0], 1, r) >= 0) return true;
    return false;
}

static bool is_seq_input(const loop_ctx *c, lg_ref r)
{
    int k = c->input_k[r.node];
    return k >= 0 && k < c->s->n_seq;
}

static bool add_ref(lg_ref **refs, int *n, lg_ref r)
{
    if (find_ref(*refs, *n, r) >= 0) return true;
    lg_ref *e = realloc(*refs, (size_t)(*n + 1) * sizeof *e);
    if (!e) return false;
    *refs = e;
    (*refs)[(*n)++] = r;
    return true;
}

/* Which batched frontier values are computed per chunk of steps rather
 * than for all T at once: those only the body reads (not a fetch, not an
 * operand of a sink), and the sinks' sums. A chunk is the largest divisor
 * of T that keeps its values within CHUNK_BYTES and T in at least MIN_CHUNK
 * chunks, and at least MIN_CHUNK steps; when T has none, all T at once.
 * Chunks keep memory independent of T and the batched values in cache,
 * while their GEMMs still have chunk*B rows. */
static bool choose_chunks(loop_ctx *c)
{
    c->chunked = calloc((size_t)(c->n_fronts ? c->n_fronts : 1), sizeof *c->chunked);
    if (!c->chunked) return false;
    /* the sinks' operands a chunk of steps would need emitted */
    for (int i = 0; i < c->n_sinks; i++) {
        const sink *sk = &c->sinks[i];
        if (!is_seq_input(c, sk->a) && !add_ref(&c->emit, &c->n_emit, sk->a)) return false;
        if (sk->op == LG_OP_MATMUL && !is_seq_input(c, sk->b) && !add_ref(&c->emit, &c->n_emit, sk->b)) return false;
    }
    const lg_node *loop = &c->r->src->nodes[c->node];
    if (!c->s->n_seq) {
        c->n_emit = 0;
        return true;
    }
    int64_t steps = c->r->src->nodes[loop->in[0].node].out[loop->in[0].out].shape.dims[0];
    /* the frontier's concrete step ports, from the loop's input ports */
    lg_port in[c->n_in > 0 ? c->n_in : 1], front[c->n_fronts > 0 ? c->n_fronts : 1];
    for (int k = 0; k < c->n_in; k++) {
        in[k] = c->r->src->nodes[loop->in[k].node].out[loop->in[k].out];
        if (k < c->s->n_seq) {
            for (int d = 0; d + 1 < in[k].shape.rank; d++) in[k].shape.dims[d] = in[k].shape.dims[d + 1];
            in[k].shape.rank--;
        }
    }
    lg_port emit[c->n_emit > 0 ? c->n_emit : 1];
    if ((c->n_fronts && lg_body_ports((lg_graph *)c->body, c->s->inputs, in, c->n_in, c->fronts, c->n_fronts, front)) ||
        (c->n_emit && lg_body_ports((lg_graph *)c->body, c->s->inputs, in, c->n_in, c->emit, c->n_emit, emit))) {
        c->n_emit = 0;
        return true; /* the loop's own shape inference reports it */
    }
    size_t per_step = 0;
    for (int f = 0; f < c->n_fronts; f++) {
        lg_ref r = c->fronts[f];
        c->chunked[f] = c->kind[r.node] == K_SEQ && find_ref(c->fetch, c->n_fetch, r) < 0 && !sink_reads(c, r);
        if (c->chunked[f]) per_step += lg_port_bytes(&front[f]);
    }
    for (int e = 0; e < c->n_emit; e++) per_step += lg_port_bytes(&emit[e]);
    c->emit_port = malloc((size_t)(c->n_emit ? c->n_emit : 1) * sizeof *c->emit_port);
    if (!c->emit_port) return false;
    for (int e = 0; e < c->n_emit; e++) c->emit_port[e] = emit[e];
    int64_t most = per_step ? (int64_t)(CHUNK_BYTES / per_step) : 0;
    int64_t k = most < steps / MIN_CHUNK ? most : steps / MIN_CHUNK; /* at least MIN_CHUNK chunks */
    while (k > 1 && steps % k) k--;
    if (k < MIN_CHUNK) { /* all at once */
        for (int f = 0; f < c->n_fronts; f++) c->chunked[f] = false;
        c->n_emit = 0;
        k = 0;
    }
    c->chunk = k;
    for (int f = 0; f < c->n_fronts; f++) c->n_chunked += c->chunked[f];
    c->sinks_chunked = k && c->n_sinks;
    if (!c->sinks_chunked) c->n_emit = 0;
    /* outputs after the loop read whole stacks, which chunked sinks no
     * longer make: those stay in the body */
    for (int j = 0; c->sinks_chunked && j < c->s->n_y; j++) c->y_after[j] = false;
    if (c->sinks_chunked) c->n_y_after = 0;
    return true;
}

/* ---- rebuilding the loop --------------------------------------------------- */

typedef struct rebuilt {
    lg_loop_spec *spec;
    lg_value *in; /* the new loop node's inputs */
    int n_in;
    lg_ref *emit; /* body values emitted as new per-step outputs for the sinks */
    int n_emit;
    int *y_of_old;   /* per old output j: its new index, or -1 (the loop no longer makes it) */
    int *res_of_old; /* per old residual: new index, or -1 */
    lg_ref rows_of[8]; /* stacked body values already made rows [T*B, n] */
    lg_value rows[8];
    int n_rows;
} rebuilt;

static void rebuilt_free(rebuilt *rb)
{
    lg_loop_spec_free(rb->spec);
    free(rb->in), free(rb->emit), free(rb->y_of_old), free(rb->res_of_old);
}

static bool add_emit(rebuilt *rb, lg_ref r)
{
    if (find_ref(rb->emit, rb->n_emit, r) >= 0) return true;
    lg_ref *e = realloc(rb->emit, (size_t)(rb->n_emit + 1) * sizeof *e);
    if (!e) return false;
    rb->emit = e;
    rb->emit[rb->n_emit++] = r;
    return true;
}

/* A value fetched from the loop, unless the loop no longer computes it. */
static bool fetched_in_body(const loop_ctx *c, lg_ref r)
{
    return !(c->kind[r.node] == K_SEQ && find_ref(c->fronts, c->n_fronts, r) >= 0);
}

/* Room for the new loop's inputs. */
static int n_in_cap(const loop_ctx *c) { return c->n_in + c->n_fronts + c->n_sinks; }

/* d's per-chunk accumulation (lg_loop_spec.post): per sink,
 * acc + X^T G or acc + sum_to(G, acc) over one chunk's rows; br maps the
 * emitted values into the new body. */
static lg_status build_post(loop_ctx *c, lg_loop_spec *d, const lg_rewrite *br)
{
    const lg_node *loop = &c->r->src->nodes[c->node];
    int cap = 3 * c->n_sinks;
    lg_graph *post = lg_graph_new();
    d->post_inputs = malloc((size_t)cap * sizeof *d->post_inputs);
    d->post_src = malloc((size_t)cap * sizeof *d->post_src);
    d->post_outputs = malloc((size_t)c->n_sinks * sizeof *d->post_outputs);
    d->emit = malloc((size_t)(c->n_emit ? c->n_emit : 1) * sizeof *d->emit);
    if (!post || !d->post_inputs || !d->post_src || !d->post_outputs || !d->emit) {
        lg_graph_free(post);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    }
    post->is_body = true;
    d->post = post;
    d->n_post = c->n_sinks, d->n_emit = c->n_emit, d->n_post_in = 0;
    for (int e = 0; e < c->n_emit; e++) d->emit[e] = *lg_rewrite_at(br, c->emit[e]);
    for (int i = 0; i < c->n_sinks; i++) {
        const sink *sk = &c->sinks[i];
        lg_value v[3]; /* acc, a, b */
        for (int w = 0; w < 3; w++) {
            if (w == 2 && sk->op != LG_OP_MATMUL) break;
            lg_post_src src;
            lg_port pt;
            lg_ref r = w == 1 ? sk->a : sk->b;
            if (w == 0) {
                src = (lg_post_src){LG_POST_ACC, i};
                lg_ref in = loop->in[c->s->n_seq + sk->state];
                pt = c->r->src->nodes[in.node].out[in.out];
            } else if (is_seq_input(c, r)) {
                src = (lg_post_src){LG_POST_INPUT, c->input_k[r.node]};
                lg_ref in = loop->in[src.index];
                pt = c->r->src->nodes[in.node].out[in.out];
                pt.shape.dims[0] = c->chunk;
            } else {
                src = (lg_post_src){LG_POST_EMIT, find_ref(c->emit, c->n_emit, r)};
                pt = c->emit_port[src.index];
                for (int dd = pt.shape.rank; dd > 0; dd--) pt.shape.dims[dd] = pt.shape.dims[dd - 1];
                pt.shape.dims[0] = c->chunk;
                pt.shape.rank++;
            }
            int k = 0;
            while (k < d->n_post_in && !(d->post_src[k].kind == src.kind && d->post_src[k].index == src.index)) k++;
            if (k == d->n_post_in) {
                lg_value in = lg_input(post, src.kind == LG_POST_ACC ? "acc" : "chunk", pt.dtype, pt.shape);
                if (!lg_value_ok(in)) return lg_cgraph_fail(post, "hoist");
                d->post_inputs[k] = in.node, d->post_src[k] = src;
                d->n_post_in++;
            }
            v[w] = lg_value_of(post, d->post_inputs[k], 0);
        }
        lg_value sum;
        if (sk->op == LG_OP_MATMUL) {
            lg_value rows[2];
            for (int w = 0; w < 2; w++) { /* [chunk, B, n] -> [chunk*B, n] */
                lg_shape sh = lg_value_shape(v[w + 1]);
                rows[w] = lg_reshape(v[w + 1], lg_shape_of(2, (int)(sh.dims[0] * sh.dims[1]), (int)(lg_shape_numel(sh) / (sh.dims[0] * sh.dims[1]))));
            }
            sum = lg_matmul(rows[0], rows[1], true, false);
        } else {
            sum = lg_sum_to(v[1], v[0]);
        }
        lg_value next = lg_add(v[0], sum);
        if (!lg_value_ok(next)) return lg_cgraph_fail(post, "hoist");
        d->post_outputs[i] = (lg_ref){next.node, next.output};
    }
    return LG_OK;
}

/* A wide accumulator's initial value: zeros of its g's step shape. Its
 * own initial value joins after the loop (wide_value). */
static lg_value wide_zeros(loop_ctx *c, const sink *w)
{
    lg_port p = c->wide_port[w - c->wides];
    return lg_broadcast_to(lg_scalar(c->r->dst, p.dtype, 0), p.shape);
}

/* The new body: the old one's needed nodes with the frontier values read
 * from new inputs, the sunk states gone. Fills rb->spec. */
static lg_status build_body(loop_ctx *c, rebuilt *rb)
{
    const lg_loop_spec *s = c->s;
    const lg_graph *b = c->body;
    const lg_node *loop = &c->r->src->nodes[c->node];
    lg_graph *nb = lg_graph_new();
    lg_rewrite br;
    if (!nb || !lg_rewrite_init(&br, b, nb)) {
        lg_graph_free(nb);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    }
    nb->is_body = true;
    /* which body nodes the new body needs: the kept fetches, the emitted
     * values, and every input of a kept state or sequence or invariant */
    bool *need = calloc((size_t)b->n_nodes, sizeof *need);
    lg_status st = need ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    int first_y = s->n_state, stop = s->n_state + s->n_y;
    for (int k = 0; !st && k < first_y; k++)
        if (!is_sunk_state(c, k)) need[s->outputs[k].node] = true;
    for (int k = first_y; !st && k < stop; k++) /* past a stop, outputs must be zeros: the loop makes them */
        if (s->has_stop || (fetched_in_body(c, s->outputs[k]) && !c->y_after[k - first_y])) need[s->outputs[k].node] = true;
    if (s->has_stop) need[s->outputs[stop].node] = true;
    for (int r = 0; !st && r < s->n_res; r++)
        if (c->res_read[r] && fetched_in_body(c, s->res[r])) need[s->res[r].node] = true;
    for (int j = 0; !st && j < s->n_y; j++)
        if (c->y_after[j]) need[b->nodes[s->outputs[s->n_state + j].node].in[0].node] = true;
    for (int i = 0; !st && !c->sinks_chunked && i < c->n_sinks; i++) {
        if (!stacked_outside(c, c->sinks[i].a)) need[c->sinks[i].a.node] = true;
        if (c->sinks[i].op == LG_OP_MATMUL && !stacked_outside(c, c->sinks[i].b)) need[c->sinks[i].b.node] = true;
    }
    for (int e = 0; !st && e < c->n_emit; e++) need[c->emit[e].node] = true;
    for (int k = 0; !st && k < c->n_in; k++)
        if (!(k >= s->n_seq && k < s->n_seq + s->n_state && is_sunk_state(c, k - s->n_seq))) need[s->inputs[k]] = true;
    for (int f = 0; !st && f < c->n_fronts; f++) need[c->fronts[f].node] = true; /* each becomes an input */
    for (int32_t i = b->n_nodes - 1; !st && i >= 0; i--) {
        const sink *w = need[i] ? wide_at(c, i) : NULL;
        if (w) { /* acc + a, not acc + sum_to(a, like) */
            need[s->inputs[s->n_seq + w->state]] = need[w->a.node] = true;
            continue;
        }
        for (int j = 0; need[i] && !c->front[i] && j < b->nodes[i].n_in; j++) need[b->nodes[i].in[j].node] = true;
    }
    /* copy; a frontier node's values become new inputs (one per output) */
    int32_t *front_in = malloc((size_t)(c->n_fronts ? c->n_fronts : 1) * sizeof *front_in);
    if (!st && !front_in) st = lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    for (int32_t i = 0; !st && i < b->n_nodes; i++) {
        if (!need[i]) continue;
        const lg_node *n = &b->nodes[i];
        if (c->front[i]) {
            for (int f = 0; !st && f < c->n_fronts; f++) {
                if (c->fronts[f].node != i) continue;
                lg_value outer = c->chunked[f] ? pre_value(c, c->fronts[f]) : lifted_value(c, c->fronts[f]);
                if (!lg_value_ok(outer)) {
                    st = lg_cgraph_fail(c->chunked[f] ? c->pre : c->r->dst, "hoist");
                    break;
                }
                lg_port pt = *lg_value_port(outer);
                if (c->kind[i] == K_SEQ) { /* the step of [T, ...] */
                    for (int d = 0; d + 1 < pt.shape.rank; d++) pt.shape.dims[d] = pt.shape.dims[d + 1];
                    pt.shape.rank--;
                }
                lg_value in = lg_input(nb, n->name, pt.dtype, pt.shape);
                if (!lg_value_ok(in)) st = lg_cgraph_fail(nb, "hoist");
                else front_in[f] = in.node, *lg_rewrite_at(&br, c->fronts[f]) = (lg_ref){in.node, 0};
            }
            continue;
        }
        const sink *w = wide_at(c, i);
        if (w) {
            lg_value acc = lg_rewrite_value(&br, (lg_ref){s->inputs[s->n_seq + w->state], 0});
            lg_value next = lg_add(acc, lg_rewrite_value(&br, w->a));
            if (!lg_value_ok(next)) st = lg_cgraph_fail(nb, "hoist");
            else *lg_rewrite_at(&br, (lg_ref){i, 0}) = (lg_ref){next.node, next.output};
            continue;
        }
        int k = c->input_k[i];
        lg_port port;
        if (k >= 0) { /* the concrete step port */
            port = c->r->src->nodes[loop->in[k].node].out[loop->in[k].out];
            if (k < s->n_seq) {
                for (int d = 0; d + 1 < port.shape.rank; d++) port.shape.dims[d] = port.shape.dims[d + 1];
                port.shape.rank--;
            }
            w = k >= s->n_seq && k < s->n_seq + s->n_state ? wide_state(c, k - s->n_seq) : NULL;
            if (w) port = c->wide_port[w - c->wides]; /* a wide accumulator: g's shape */
        }
        if (lg_rewrite_copy(&br, i, NULL, k >= 0 ? &port : NULL) < 0) st = lg_cgraph_fail(nb, "hoist");
    }
    /* the spec: inputs [seqs, new seqs, states, invariants, new invariants],
     * outputs [states, kept outputs, emitted values, stop], kept residuals */
    lg_loop_spec *d = st ? NULL : lg_loop_spec_dup(s);
    int n_new_seq = 0, n_new_inv = 0;
    for (int f = 0; f < c->n_fronts; f++)
        if (!c->chunked[f]) c->kind[c->fronts[f].node] == K_SEQ ? n_new_seq++ : n_new_inv++;
    int32_t *pre_inputs = c->n_chunked ? malloc((size_t)n_in_cap(c) * sizeof *pre_inputs) : NULL;
    lg_ref *pre_outputs = c->n_chunked ? malloc((size_t)c->n_chunked * sizeof *pre_outputs) : NULL;
    if (!st && c->n_chunked && (!pre_inputs || !pre_outputs)) st = lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    int n_in = c->n_in + c->n_fronts + c->n_sinks, n_out = s->n_state + 2 * s->n_y + 2 * c->n_sinks + s->has_stop;
    rb->in = malloc((size_t)n_in * sizeof *rb->in);
    rb->y_of_old = malloc((size_t)(s->n_y + 1) * sizeof *rb->y_of_old);
    rb->res_of_old = malloc((size_t)(s->n_res + 1) * sizeof *rb->res_of_old);
    int32_t *inputs = malloc((size_t)n_in * sizeof *inputs);
    lg_ref *outputs = malloc((size_t)n_out * sizeof *outputs);
    if (!st && (!d || !rb->in || !rb->y_of_old || !rb->res_of_old || !inputs || !outputs))
        st = lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    int ni = 0, n_state = 0, n_y = 0, n_res = 0;
    for (int part = 0; !st && part < 3; part++) {
        int first = part == 0 ? 0 : part == 1 ? s->n_seq : s->n_seq + s->n_state;
        int count = part == 0 ? s->n_seq : part == 1 ? s->n_state : s->n_inv;
        for (int k = first; k < first + count; k++) {
            if (part == 1 && is_sunk_state(c, k - first)) continue;
            if (pre_inputs) pre_inputs[ni] = c->pre_in[k];
            inputs[ni] = lg_rewrite_at(&br, (lg_ref){s->inputs[k], 0})->node;
            const sink *w = part == 1 ? wide_state(c, k - first) : NULL;
            rb->in[ni++] = w ? wide_zeros(c, w) : lg_rewrite_value(c->r, loop->in[k]);
        }
        for (int f = 0; part != 1 && f < c->n_fronts; f++)
            if (!c->chunked[f] && (c->kind[c->fronts[f].node] == K_SEQ) == (part == 0)) {
                if (pre_inputs) pre_inputs[ni] = -1;
                inputs[ni] = front_in[f];
                rb->in[ni++] = lifted_value(c, c->fronts[f]);
            }
    }
    /* then the body inputs fed from pre's per-chunk outputs */
    for (int f = 0, n_pre = 0; !st && f < c->n_fronts; f++)
        if (c->chunked[f]) {
            inputs[ni + n_pre] = front_in[f];
            lg_value v = pre_value(c, c->fronts[f]);
            pre_outputs[n_pre++] = (lg_ref){v.node, v.output};
        }
    int no = 0;
    for (int k = 0; !st && k < s->n_state; k++)
        if (!is_sunk_state(c, k)) outputs[no++] = *lg_rewrite_at(&br, s->outputs[k]), n_state++;
    for (int j = 0; !st && j < s->n_y; j++) {
        lg_ref y = s->outputs[s->n_state + j];
        rb->y_of_old[j] = -1;
        if (!s->has_stop && (!fetched_in_body(c, y) || c->y_after[j])) continue;
        rb->y_of_old[j] = n_y++;
        outputs[no++] = *lg_rewrite_at(&br, y);
    }
    for (int j = 0; !st && j < s->n_y; j++)
        if (c->y_after[j] && !add_emit(rb, b->nodes[s->outputs[s->n_state + j].node].in[0]))
            st = lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    for (int i = 0; !st && !c->sinks_chunked && i < c->n_sinks; i++) {
        bool ok = stacked_outside(c, c->sinks[i].a) || add_emit(rb, c->sinks[i].a);
        if (ok && c->sinks[i].op == LG_OP_MATMUL && !stacked_outside(c, c->sinks[i].b)) ok = add_emit(rb, c->sinks[i].b);
        if (!ok) st = lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    }
    for (int e = 0; !st && e < rb->n_emit; e++) outputs[no++] = *lg_rewrite_at(&br, rb->emit[e]);
    if (!st && s->has_stop) outputs[no++] = *lg_rewrite_at(&br, s->outputs[s->n_state + s->n_y]);
    for (int r = 0; !st && r < s->n_res; r++) {
        rb->res_of_old[r] = -1;
        if (!c->res_read[r] || !fetched_in_body(c, s->res[r])) continue;
        d->res[n_res] = *lg_rewrite_at(&br, s->res[r]);
        d->res_inputs[n_res] = s->res_inputs[r];
        rb->res_of_old[r] = n_res++;
    }
    if (!st) {
        free(d->inputs), free(d->outputs);
        d->inputs = inputs, d->outputs = outputs;
        inputs = NULL, outputs = NULL;
        lg_graph_free(d->body);
        d->body = nb;
        nb = NULL;
        lg_grad_step_free(d->grad); /* refers to the old body; nothing differentiates a compiled loop */
        d->grad = NULL;
        d->n_seq = s->n_seq + n_new_seq, d->n_state = n_state, d->n_inv = s->n_inv + n_new_inv;
        d->n_y = n_y + rb->n_emit, d->n_res = n_res;
        d->n_hoisted = s->n_hoisted + c->n_fronts;
        d->n_sunk = s->n_sunk + c->n_sinks;
        d->n_wide = s->n_wide + c->n_wides;
        for (int f = 0; f < c->n_fronts; f++)
            if (c->kind[c->fronts[f].node] == K_SEQ)
                d->hoisted_bytes += lg_port_bytes(lg_value_port(c->chunked[f] ? pre_value(c, c->fronts[f]) : lifted_value(c, c->fronts[f])));
        if (c->sinks_chunked) { /* the accumulators' initial values follow the invariants */
            for (int i = 0; i < c->n_sinks; i++) rb->in[ni + i] = lg_rewrite_value(c->r, loop->in[s->n_seq + c->sinks[i].state]);
            ni += c->n_sinks;
            d->chunk = c->chunk;
            st = build_post(c, d, &br);
        }
        if (c->n_chunked) {
            d->pre = c->pre, c->pre = NULL;
            d->n_pre = c->n_chunked, d->chunk = c->chunk;
            d->pre_inputs = pre_inputs, d->pre_outputs = pre_outputs;
            pre_inputs = NULL, pre_outputs = NULL;
        }
        rb->spec = d;
        rb->n_in = ni;
        d = NULL;
    }
    lg_loop_spec_free(d);
    free(inputs), free(outputs), free(front_in), free(need), free(pre_inputs), free(pre_outputs);
    lg_graph_free(nb);
    lg_rewrite_free(&br);
    return st;
}

/* Whether v (of the outer graph being copied) is zeros: a broadcast of a
 * constant 0, as lg_grad starts its accumulators. */
static bool is_zeros(const lg_graph *g, lg_ref v)
{
    const lg_node *n = &g->nodes[v.node];
    if (n->op == LG_OP_BROADCAST_LIKE || n->op == LG_OP_BROADCAST_TO) n = &g->nodes[n->in[0].node];
    if (n->op != LG_OP_CONST || !n->attrs.tensor) return false;
    for (int64_t i = 0; i < lg_tensor_numel(n->attrs.tensor); i++)
        if (lg_tensor_get(n->attrs.tensor, i) != 0) return false;
    return true;
}

/* A body value stacked [T, ...] outside loop node id: emitted by it, or a
 * sequence or batched value it reads. */
static lg_value stacked(loop_ctx *c, const rebuilt *rb, int32_t id, lg_ref v)
{
    const lg_loop_spec *d = c->r->dst->nodes[id].attrs.loop;
    int e = find_ref(rb->emit, rb->n_emit, v);
    return e >= 0 ? lg_value_of(c->r->dst, id, d->n_state + d->n_y - rb->n_emit + e) : lifted_value(c, v);
}

/* A stacked body value [T, B, n] as rows [T*B, n], made once per value (so
 * the reshape takes over the stack's buffer). */
static lg_value rows_of(loop_ctx *c, rebuilt *rb, int32_t id, lg_ref v)
{
    for (int i = 0; i < rb->n_rows; i++)
        if (rb->rows_of[i].node == v.node && rb->rows_of[i].out == v.out) return rb->rows[i];
    lg_value st = stacked(c, rb, id, v);
    if (!lg_value_ok(st) || rb->n_rows == (int)LG_ARRAY_LEN(rb->rows)) return lg_value_invalid();
    lg_shape sh = lg_value_shape(st);
    int64_t cols = 1;
    for (int i = 2; i < sh.rank; i++) cols *= sh.dims[i];
    lg_value rows = lg_reshape(st, lg_shape_of(2, (int)(sh.dims[0] * sh.dims[1]), (int)cols));
    rb->rows_of[rb->n_rows] = v;
    rb->rows[rb->n_rows++] = rows;
    return rows;
}

/* init + sum for state k's initial value init, or sum where init is zeros
 * of sum's shape. */
static lg_value plus_init(loop_ctx *c, int k, lg_value sum)
{
    lg_ref init_ref = c->r->src->nodes[c->node].in[c->s->n_seq + k];
    lg_value init = lg_rewrite_value(c->r, init_ref);
    return is_zeros(c->r->src, init_ref) && lg_value_ok(sum) && lg_shape_equal(lg_value_shape(sum), lg_value_shape(init))
               ? sum
               : lg_add(init, sum);
}

/* After the loop: a wide accumulator's final value, init + sum_to(acc, like)
 * of the loop's output k_new (its sum over all steps, per example). */
static lg_value wide_value(loop_ctx *c, int32_t id, int k_new, const sink *w)
{
    return plus_init(c, w->state, lg_sum_to(lg_value_of(c->r->dst, id, k_new), lifted_value(c, w->b)));
}

/* After the loop: each sunk state's final value, init + X^T G or
 * init + sum_to(G, like), with X, G as rows [T*B, ...] over all steps (the
 * add goes when init is zeros). */
static lg_value sink_value(loop_ctx *c, rebuilt *rb, int32_t id, const sink *sk)
{
    lg_value sum;
    if (sk->op == LG_OP_MATMUL) {
        sum = lg_matmul(rows_of(c, rb, id, sk->a), rows_of(c, rb, id, sk->b), true, false);
    } else { /* b: the invariant `like`; rows when it broadcasts along them, else [T, B, ...] */
        lg_value like = lifted_value(c, sk->b);
        lg_shape ls = lg_value_shape(like);
        bool rows = ls.rank <= 1 || (ls.rank == 2 && ls.dims[0] == 1);
        sum = lg_sum_to(rows ? rows_of(c, rb, id, sk->a) : stacked(c, rb, id, sk->a), like);
    }
    return plus_init(c, sk->state, sum);
}

static lg_status rebuild_loop(loop_ctx *c)
{
    rebuilt rb = {0};
    const lg_loop_spec *s = c->s;
    const lg_node *loop = &c->r->src->nodes[c->node];
    lg_graph *dst = c->r->dst;
    lg_status st = build_body(c, &rb);
    int32_t id = -1;
    if (!st) {
        id = lg_node_build(dst, LG_OP_LOOP, rb.in, rb.n_in, &(lg_attrs){.loop = rb.spec}, loop->name);
        if (id >= 0) rb.spec = NULL; /* the node owns it */
        if (id < 0) st = lg_cgraph_fail(dst, "hoist");
    }
    if (!st) {
        dst->nodes[id].is_grad = loop->is_grad;
        const lg_loop_spec *d = dst->nodes[id].attrs.loop;
        int k_new = 0;
        for (int k = 0; !st && k < s->n_state; k++) {
            if (is_sunk_state(c, k)) continue;
            const sink *w = wide_state(c, k);
            if (w) { /* its saved states are unread (find_wides) */
                lg_value v = wide_value(c, id, k_new++, w);
                if (!lg_value_ok(v)) st = lg_cgraph_fail(dst, "hoist");
                else *lg_rewrite_at(c->r, (lg_ref){c->node, k}) = (lg_ref){v.node, v.output};
                continue;
            }
            *lg_rewrite_at(c->r, (lg_ref){c->node, k}) = (lg_ref){id, k_new};
            *lg_rewrite_at(c->r, (lg_ref){c->node, s->n_state + s->n_y + k}) = (lg_ref){id, d->n_state + d->n_y + k_new};
            k_new++;
        }
        for (int j = 0; !st && j < s->n_y; j++) {
            lg_ref y = s->outputs[s->n_state + j];
            const lg_node *yn = &c->body->nodes[y.node];
            lg_value v = rb.y_of_old[j] >= 0 ? lg_value_of(dst, id, d->n_state + rb.y_of_old[j])
                         : c->y_after[j]     ? lg_matmul(stacked(c, &rb, id, yn->in[0]), lifted_value(c, yn->in[1]), false,
                                                         yn->attrs.trans_b)
                                             : lifted_value(c, y);
            if (!lg_value_ok(v)) {
                st = lg_cgraph_fail(dst, "hoist");
                break;
            }
            *lg_rewrite_at(c->r, (lg_ref){c->node, s->n_state + j}) = (lg_ref){v.node, v.output};
        }
        for (int r = 0; !st && r < s->n_res; r++) {
            if (rb.res_of_old[r] < 0 && !c->res_read[r]) continue; /* dropped: nothing reads it */
            lg_value v = rb.res_of_old[r] >= 0 ? lg_value_of(dst, id, 2 * d->n_state + d->n_y + rb.res_of_old[r])
                                               : lifted_value(c, s->res[r]);
            *lg_rewrite_at(c->r, (lg_ref){c->node, 2 * s->n_state + s->n_y + r}) = (lg_ref){v.node, v.output};
        }
        for (int i = 0; !st && c->sinks_chunked && i < c->n_sinks; i++)
            *lg_rewrite_at(c->r, (lg_ref){c->node, c->sinks[i].state}) =
                (lg_ref){id, 2 * d->n_state + d->n_y + d->n_res + i};
        for (int i = 0; !st && !c->sinks_chunked && i < c->n_sinks; i++) {
            lg_value v = sink_value(c, &rb, id, &c->sinks[i]);
            if (!lg_value_ok(v)) st = lg_cgraph_fail(dst, "hoist");
            else *lg_rewrite_at(c->r, (lg_ref){c->node, c->sinks[i].state}) = (lg_ref){v.node, v.output};
        }
        if (!st && dst->error) st = lg_cgraph_fail(dst, "hoist");
        if (!st)
            lg_cgraph_note(c->cg, "hoist: loop '%s': %d values batched before the steps (%.2f MiB, %d of them per chunk "
                                  "of %lld steps); %d accumulators summed %s; %d outputs batched after the loop; %d "
                                  "accumulators kept per example",
                           loop->name, c->n_fronts, (double)d->hoisted_bytes / 1048576.0, c->n_chunked,
                           (long long)(c->n_chunked ? c->chunk : 0), c->n_sinks,
                           c->sinks_chunked ? "per chunk of steps" : "after the loop", c->n_y_after, c->n_wides);
    }
    rebuilt_free(&rb);
    return st;
}

/* Hoist and sink around loop node `node` of r->src, appending to r->dst. */
static lg_status hoist_loop(lg_cgraph *cg, lg_rewrite *r, int32_t node, const bool *read)
{
    const lg_loop_spec *s = r->src->nodes[node].attrs.loop;
    const lg_graph *b = s->body;
    loop_ctx c = {.cg = cg, .r = r, .node = node, .s = s, .body = b, .read = read};
    c.res_read = read + 2 * s->n_state + s->n_y;
    c.n_in = s->n_seq + s->n_state + s->n_inv;
    c.n_fetch = s->n_state + s->n_y + s->has_stop + s->n_res;
    size_t nn = (size_t)(b->n_nodes ? b->n_nodes : 1);
    c.fetch = malloc((size_t)(c.n_fetch ? c.n_fetch : 1) * sizeof *c.fetch);
    c.input_k = malloc(nn * sizeof *c.input_k);
    c.kind = calloc(nn, sizeof *c.kind);
    c.needed = calloc(nn, sizeof *c.needed);
    c.heavy = calloc(nn, sizeof *c.heavy);
    c.front = calloc(nn, sizeof *c.front);
    c.lifted = malloc(nn * sizeof *c.lifted);
    c.pays = calloc(nn, sizeof *c.pays);
    if (s->n_seq) { /* sequences are [T, B, ...] */
        lg_port p = r->src->nodes[r->src->nodes[node].in[0].node].out[r->src->nodes[node].in[0].out];
        c.batch = p.shape.rank > 1 ? p.shape.dims[1] : 1;
    }
    lg_status st = LG_OK;
    if (!c.fetch || !c.input_k || !c.kind || !c.needed || !c.heavy || !c.front || !c.lifted || !c.pays)
        st = lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    for (int32_t i = 0; !st && i < b->n_nodes; i++) c.input_k[i] = -1, c.lifted[i] = (lg_ref){-1, 0};
    for (int k = 0; !st && k < c.n_in; k++) c.input_k[s->inputs[k]] = k;
    int first_res = s->n_state + s->n_y + s->has_stop;
    int n_live = 0;
    for (int k = 0; !st && k < c.n_fetch; k++) {
        if (k >= first_res && !c.res_read[k - first_res]) continue;
        c.fetch[n_live] = k < first_res ? s->outputs[k] : s->res[k - first_res];
        c.needed[c.fetch[n_live++].node] = true;
    }
    c.n_fetch = n_live;
    for (int32_t i = b->n_nodes - 1; !st && i >= 0; i--)
        for (int j = 0; c.needed[i] && j < b->nodes[i].n_in; j++) c.needed[b->nodes[i].in[j].node] = true;
    if (!st) classify(&c);
    if (!st && (!find_fronts(&c) || !find_sinks(&c) || !find_wides(&c) || !find_outputs_after(&c) || !choose_chunks(&c)))
        st = lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    if (!st && c.n_chunked) {
        c.pre = lg_graph_new();
        c.pre_lifted = malloc(nn * sizeof *c.pre_lifted);
        c.pre_in = malloc((size_t)(c.n_in ? c.n_in : 1) * sizeof *c.pre_in);
        if (!c.pre || !c.pre_lifted || !c.pre_in) st = lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
        for (int32_t i = 0; !st && i < b->n_nodes; i++) c.pre_lifted[i] = (lg_ref){-1, 0};
        for (int k = 0; !st && k < c.n_in; k++) c.pre_in[k] = -1;
        if (!st) c.pre->is_body = true;
    }
    if (!st) {
        if (c.n_fronts || c.n_sinks || c.n_wides || c.n_y_after) st = rebuild_loop(&c);
        else if (lg_rewrite_copy(r, node, NULL, NULL) < 0) st = lg_cgraph_fail(r->dst, "hoist");
    }
    free(c.fetch), free(c.input_k), free(c.kind), free(c.needed), free(c.heavy), free(c.front), free(c.lifted);
    free(c.fronts), free(c.sinks), free(c.wides), free(c.wide_port), free(c.y_after), free(c.chunked);
    free(c.pre_lifted), free(c.pre_in);
    free(c.emit), free(c.emit_port), free(c.pays);
    lg_graph_free(c.pre);
    return st;
}

lg_status lg_pass_hoist(lg_cgraph *cg)
{
    const lg_graph *g = cg->g;
    bool any = false;
    for (int32_t i = 0; i < g->n_nodes; i++) any = any || g->nodes[i].op == LG_OP_LOOP;
    if (!any) return LG_OK;
    lg_rewrite r;
    lg_graph *dst = lg_graph_new();
    if (!dst || !lg_rewrite_init(&r, g, dst)) {
        lg_graph_free(dst);
        return lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    }
    /* which node outputs anything reads: a loop's unread residuals are
     * left out (dce drops them), so they do not keep values stacked */
    bool *read = calloc((size_t)(r.base[g->n_nodes] ? r.base[g->n_nodes] : 1), sizeof *read);
    lg_status st = read ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "hoist: out of memory");
    for (int32_t i = 0; !st && i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) read[r.base[g->nodes[i].in[j].node] + g->nodes[i].in[j].out] = true;
    for (int k = 0; !st && k < cg->n_outputs; k++) read[r.base[cg->outputs[k].node] + cg->outputs[k].out] = true;
    for (int32_t i = 0; !st && i < g->n_nodes; i++) {
        if (g->nodes[i].op == LG_OP_LOOP) st = hoist_loop(cg, &r, i, &read[r.base[i]]);
        else if (lg_rewrite_copy(&r, i, NULL, NULL) < 0) st = lg_cgraph_fail(dst, "hoist");
    }
    free(read);
    if (st) {
        lg_rewrite_free(&r);
        lg_graph_free(dst);
        return st;
    }
    lg_cgraph_replace(cg, &r);
    lg_rewrite_free(&r);
    return LG_OK;
}
