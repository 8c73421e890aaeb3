/*
 * internal.h — the graph IR as src/ sees it. Private to the library.
 *
 * A node applies one op to input references and owns its outputs' dtypes and
 * shapes, a small attribute blob, and a name. Nodes live in the graph's arena
 * in creation order, which is a topological order. A loop node owns a
 * subgraph, its body (lg_loop_spec, shared with its gradient loop).
 */
#ifndef LG_GRAPH_INTERNAL_H
#define LG_GRAPH_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph/graph.h"
#include "graph/program.h"
#include "ops/op_list.h"

/* Broken invariants inside loopgrad (never user input). */
#define LG_ASSERT(cond)                                                                             \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "loopgrad: %s:%d: internal error: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                                \
        }                                                                                           \
    } while (0)

#define LG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct lg_port {
    lg_dtype dtype;
    lg_shape shape;
} lg_port;

typedef struct lg_ref {
    int32_t node;
    int32_t out;
} lg_ref;

/* Where an input of a loop's per-chunk accumulation (lg_loop_spec.post)
 * gets its data: loop input `index` (a sequence's chunk, or the value),
 * emitted value `index`'s chunk, or accumulator `index`'s current value. */
typedef enum lg_post_kind { LG_POST_INPUT, LG_POST_EMIT, LG_POST_ACC, LG_POST_KIND_COUNT } lg_post_kind;
typedef struct lg_post_src {
    lg_post_kind kind;
    int index;
} lg_post_src;

typedef enum lg_loop_masking { LG_LOOP_UNMASKED, LG_LOOP_BY_LENGTHS, LG_LOOP_BY_MASK, LG_LOOP_MASKING_COUNT } lg_loop_masking;

/* A loop's body and how the loop node's inputs and outputs map onto it.
 * Node inputs: n_seq sequences [T, ...] (time-major), n_state initial
 * states, n_inv invariants. Node outputs: n_state final states, n_y stacked
 * per-step outputs [T, ...], n_state stacked states before each step
 * [T, ...] (what the gradient loop reads; [0, ...] in a gradient loop, which
 * nothing differentiates again). Steps after a stop condition
 * fired leave zeros in every stacked output. */
typedef struct lg_loop_spec {
    lg_graph *body; /* counted reference: a loop and its gradient loop share it */
    int n_seq, n_state, n_inv, n_y;
    int32_t *inputs; /* body input nodes: sequences' steps, states, invariants */
    lg_ref *outputs; /* body values: n_state next states, n_y outputs, then the
                        stop condition when has_stop */
    bool reverse;    /* steps run from T-1 down to 0 */
    bool has_stop;   /* stop after a step whose condition is nonzero */
    int64_t steps;   /* the trip count (the maximum, with a condition) when
                        there are no sequences */
    /* Saved residuals (the default memory policy): the body values the
     * gradient step reads, stacked [T, ...] as n_res more node outputs after
     * the saved states. The gradient step reads body inputs res_inputs in
     * their place, so the backward loop recomputes nothing. */
    int n_res;
    lg_ref *res;
    int32_t *res_inputs;
    struct lg_grad_step *grad; /* built with the residuals; NULL: lg_grad builds it */
    int memory;    /* the lg_loop_memory asked for (reports) */
    bool gradient; /* the gradient loop of another loop */
    bool batched;  /* states are [B, ...] with the sequences' B (checked) */
    /* Keras masking and truncated BPTT stay attributes of the loop the user
     * built (lg_loop_opts) until the lower_loops pass builds them as today's
     * where nodes (lg_loop_lower), so the body is the user's step. A forward
     * loop with masking reads its lengths (i32 [B]) or mask (time-major
     * [T, B]) as one more node input, after all others; its gradient loop
     * carries the same attributes (it is lowered with it) and no such input. */
    lg_loop_masking masking;
    bool repeat_output; /* !lg_loop_opts.zero_output_for_mask */
    int truncate;       /* lg_loop_opts.truncate; 0: full BPTT */
    /* Set by compile passes on compile-time copies (src/graph/passes): */
    bool drop_states;     /* nothing reads the saved states: stacked [0, ...] */
    int n_hoisted;        /* body values computed before the loop as batched ops */
    size_t hoisted_bytes; /* their stacked [T, ...] bytes */
    int n_sunk;           /* accumulators summed after the loop as one op */
    int n_wide;           /* accumulators kept per example, summed over the batch after the loop */
    /* Hoisted work run per chunk of steps (hoist): before each run of
     * `chunk` steps the executor runs `pre` over those steps of the loop's
     * inputs (a sequence as its [chunk, ...] slice: time-major, so one
     * block); its n_pre outputs, [chunk, ...] each, feed body inputs
     * inputs[n_seq + n_state + n_inv + j] step by step. pre NULL: none. */
    lg_graph *pre;
    int n_pre;
    int64_t chunk;
    int32_t *pre_inputs; /* per loop input: pre's input node standing for it, or -1 */
    lg_ref *pre_outputs; /* n_pre */
    /* Accumulators summed per chunk of steps (hoist, gradient loops): per
     * step the body emits n_emit values (emit[], fetched after the
     * residuals) into [chunk, ...] buffers; after each chunk the executor
     * runs `post`, whose n_post outputs are the accumulators' next values.
     * The loop node has n_post more inputs (their initial values) after
     * the invariants and n_post more outputs (their final values) after the
     * residuals. post NULL: none. */
    lg_graph *post;
    int n_post, n_emit, n_post_in;
    lg_ref *emit;           /* n_emit body values */
    int32_t *post_inputs;   /* n_post_in input nodes of post */
    lg_post_src *post_src;  /* where each gets its data */
    lg_ref *post_outputs;   /* n_post */
} lg_loop_spec;

/* A loop's gradient step, built in its body: the body inputs the gradient
 * loop feeds (n_seq sequences, n_state states, then the forward
 * invariants: n_in in all) and the values it fetches (n_state next states,
 * then n_y per-step outputs: n_out in all). */
typedef struct lg_grad_step {
    int n_seq, n_state, n_y, n_in, n_out;
    int n_fwd_seq, n_fwd_inv;
    int32_t *inputs;
    lg_ref *outputs;
    int *dx_of_seq;  /* per forward sequence: its output index, or -1 (not float) */
    int *acc_of_inv; /* per invariant: its accumulator index, or -1 */
} lg_grad_step;

/* Build s's gradient step now and save the values it reads as residuals
 * (see lg_loop_spec). False, with the body as it was, when the loop cannot
 * be differentiated; lg_grad reports why later. */
bool lg_loop_save_residuals(lg_loop_spec *s);
void lg_grad_step_free(lg_grad_step *b);
/* Drop nodes n.. (added by a failed attempt) and the error they caused. */
void lg_graph_truncate(lg_graph *g, int32_t n);

void lg_loop_spec_free(lg_loop_spec *s);
/* 0, 1, ..., T-1 as f32 [T] for a sequence [T, B, ...] (time_major) or
 * [B, T, ...]; T may be known only at run time. */
lg_value lg_time_iota(lg_graph *g, lg_value seq, bool time_major);
/* A copy sharing the body (NULL when out of memory). */
lg_loop_spec *lg_loop_spec_dup(const lg_loop_spec *s);
/* Whether s has attributes that lower_loops still has to lower. */
static inline bool lg_loop_has_attrs(const lg_loop_spec *s) { return s->masking || s->truncate > 0; }
/* The node input holding a forward loop's lengths or mask, or -1. */
static inline int lg_loop_mask_input(const lg_loop_spec *s)
{
    return s->masking && !s->gradient ? s->n_seq + s->n_state + s->n_inv + s->n_post : -1;
}
/* Build in g, as lg_loop_end did before attributes, the loop that node
 * attributes s describe with its masking and truncation lowered: where
 * nodes in a copy of the body, the validity sequence, repeated outputs
 * filled after the loop. in: the node's inputs as values of g (sequences
 * time-major, states, invariants, then the lengths or mask); name: the
 * node's full name. out gets the final states, the stacked outputs
 * ([T, ...], filled) and the saved states (those the gradient of node s
 * would read: n_state + n_y + n_state values). Returns the new loop node,
 * or -1 with the error recorded on g. */
int32_t lg_loop_lower(lg_graph *g, const lg_loop_spec *s, const char *name, const lg_value *in, lg_value *out);
/* valid [T, B] from lengths i32 [B] against sequence seq [T, B, ...]
 * (time-major), built in the scope of the loop named `name` as
 * lg_loop_end builds it (its gather range-checks the lengths). */
lg_value lg_loop_valid_of_lengths(lg_graph *g, const char *name, lg_value lengths, lg_value seq);
/* A forward loop's stacked output ys [T, B, ...] repeated from its final
 * state fin [B, ...] past each example's length: where(valid, ys, fin). */
lg_value lg_loop_fill_output(lg_value valid, lg_value ys, lg_value fin);

/* Copy into g the nodes of body that the values `want` need, with body
 * input node inputs[k] standing for in[k]; out[i] gets the copy of want[i].
 * Returns false on error (recorded on g). Used to unroll loops. */
bool lg_graph_inline(lg_graph *g, lg_graph *body, const int32_t *inputs, const lg_value *in, int n_in,
                     const lg_ref *want, int n, lg_value *out);

/* Attributes; which fields an op reads is documented at its builder. */
typedef struct lg_attrs {
    int64_t *ints; /* owned: shape dims, perm, split sizes */
    int n_ints;
    int axis;
    uint32_t axes; /* bit set of reduced axes */
    bool keepdims;
    bool trans_a, trans_b;
    int cmp;        /* lg_cmp */
    lg_dtype dtype; /* cast and one_hot target */
    double real[2]; /* pow exponent, clip bounds, elu alpha */
    lg_tensor *tensor; /* owned: a constant's value, a parameter's value */
    lg_loop_spec *loop; /* owned: a loop's body and its mapping */
} lg_attrs;

typedef struct lg_node {
    lg_op op;
    int n_in;
    lg_ref *in;
    int n_out;
    lg_port *out;
    lg_attrs attrs;
    char *name;
    bool is_grad;
    bool frozen;   /* a parameter that optimizers leave alone */
    bool borrowed; /* attrs.tensor belongs to a node of another graph (compile-time copies) */
} lg_node;

/* Append to g a source node like src (an input, parameter or constant) with
 * port `port`, named as src; a parameter's or constant's tensor is borrowed
 * from src, not copied. Returns the node id, or -1 when out of memory. */
int32_t lg_node_copy_source(lg_graph *g, const lg_node *src, lg_port port);

/* A layer as summaries see it: named by its scope, of a type, with an output. */
typedef struct lg_layer_rec {
    char *name; /* full scope path, no trailing '/' */
    char *type;
    lg_ref output;
    int32_t *params; /* node ids */
    int n_params;
} lg_layer_rec;

struct lg_program_cache;

struct lg_graph {
    int refs; /* lg_graph_free drops one; loop bodies are shared */
    lg_node *nodes;
    int32_t n_nodes, cap_nodes;
    char *error;     /* first builder error */
    char *scope;     /* "a/b/" or "" */
    int32_t *params; /* node ids of parameters, creation order */
    int n_params, cap_params;
    lg_layer_rec *layers; /* creation order */
    int n_layers, cap_layers;
    bool in_grad; /* nodes made now belong to a gradient */
    bool is_body; /* a loop's body: no parameters of its own */
    lg_graph *lender; /* counted: the body whose constants this body, rebuilt
                         by a pass, borrows (lg_rewrite_copy); freed with it */
    struct lg_program_cache *cache;
    struct lg_param_store *param_store; /* owned: contiguous parameter blocks (param_block.c) */
};

static inline lg_node *lg_node_at(const lg_graph *g, int32_t id) { return &g->nodes[id]; }
static inline const lg_port *lg_value_port(lg_value v) { return &v.graph->nodes[v.node].out[v.output]; }
static inline lg_value lg_value_of(lg_graph *g, int32_t node, int32_t out) { return (lg_value){g, node, out}; }
/* Input i of a node, as a value. */
static inline lg_value lg_node_input(lg_graph *g, int32_t node, int i)
{
    lg_ref r = g->nodes[node].in[i];
    return lg_value_of(g, r.node, r.out);
}

/* Take one more reference to g (freed when every holder has freed it). */
lg_graph *lg_graph_ref(lg_graph *g);

/* Record a builder error on g (the first one wins); returns the invalid value. */
lg_value lg_graph_fail(lg_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record a builder error on g (first wins) and, for the caller's status,
 * the same message for lg_last_error(); returns s. For builders that
 * return a status (layers). */
lg_status lg_graph_fail_status(lg_graph *g, lg_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Add a node for op with inputs and attributes (attrs->ints is copied),
 * running the op's shape inference. The graph is the inputs' graph, or g if
 * there are none. Returns the node id, or -1 on error (recorded). */
int32_t lg_node_build(lg_graph *g, lg_op op, const lg_value *in, int n_in, const lg_attrs *attrs, const char *name);
/* lg_node_build for a single-output op, returning output 0. */
lg_value lg_build(lg_op op, const lg_value *in, int n_in, const lg_attrs *attrs);

/* The graph the values belong to, after checking they are valid and share
 * it. Returns NULL on error (recorded on a graph when there is one); propagates
 * an invalid value silently. */
lg_graph *lg_values_graph(const lg_value *v, int n, const char *op);

/* Whether a graph port keeps the size rule of lg_shape_bytes, its unknown
 * (-1) dims counted as 1; compile checks again with every dim known. */
bool lg_port_fits(const lg_port *p);

/* A float as i32, defined for every value (lg_cast, lg_tensor_set):
 * truncated toward zero, saturated to INT32_MIN..INT32_MAX, NaN as 0. */
static inline int32_t lg_i32_saturate(double x)
{
    if (x != x) return 0;
    if (x >= 2147483647.0) return INT32_MAX;
    if (x <= -2147483648.0) return INT32_MIN;
    return (int32_t)x;
}

/* Shapes: "[3, ?]" into a static per-call buffer ring, for messages. */
const char *lg_shape_cstr(lg_shape s);

/* A tensor handle over memory it does not own (freed with lg_tensor_free,
 * which leaves the data alone); NULL when out of memory. */
lg_tensor *lg_tensor_view(lg_dtype dtype, lg_shape shape, void *data);

/* The nodes some values need: end is one past the last wanted node,
 * needed[i] says whether node i feeds them (the wanted nodes included),
 * and base[i] is where node i's outputs start in a flat per-output array
 * over nodes 0..end-1 (base[end] is its length). */
typedef struct lg_walk {
    int32_t end;
    bool *needed;
    int *base;
} lg_walk;

/* False when out of memory (w is then freed). */
bool lg_walk_init(lg_walk *w, const lg_graph *g, const lg_ref *want, int n);
void lg_walk_free(lg_walk *w);

/* The concrete ports of a body's values `want` (n of them) when its input
 * nodes `inputs` get ports `in` (n_in of them): shape inference over the
 * nodes the wanted values need. Errors name the node and shapes. */
lg_status lg_body_ports(lg_graph *body, const int32_t *inputs, const lg_port *in, int n_in, const lg_ref *want, int n,
                        lg_port *out);

/* After a run with these feeds failed with status s: when a stateful
 * layer's x (of states[0..n-1]) has another batch than its states, a
 * status saying so (LG_ERR_SHAPE, naming the layer and both sizes) instead
 * of the check inside the layer that caught it (nn/layers.c); s and its
 * message otherwise. */
typedef struct lg_rnn_state lg_rnn_state; /* graph/layers.h */
lg_status lg_rnn_state_explain(lg_rnn_state *const *states, int n, const lg_feed *feeds, int n_feeds, lg_status s);

/* Reverse mode with given cotangents: grads[i] = sum_k dys[k] . d ys[k] / d
 * wrt[i]. An invalid dys[k] counts as zero. lg_grad is this with ys the loss
 * and dys 1. */
lg_status lg_vjp(lg_graph *g, const lg_value *ys, const lg_value *dys, int n_y, const lg_value *wrt, int n,
                 lg_value *grads);
/* lg_vjp through nodes first.. only: wrt values of earlier nodes are
 * leaves (lower_loops: through what follows a loop, not the loop). */
lg_status lg_vjp_after(lg_graph *g, int32_t first, const lg_value *ys, const lg_value *dys, int n_y, const lg_value *wrt,
                       int n, lg_value *grads);

/* The program lg_graph_run would use on a device (lg_compile_opts.device;
 * NULL: the CPU) for these feeds and fetches, compiled and cached on g if
 * new, apart per device; the graph owns it. lg_graph_run_on runs it. */
lg_status lg_graph_program_on(lg_graph *g, const char *device, const lg_feed *feeds, int n_feeds,
                              const lg_value *fetches, int n_fetches, lg_program **out);
lg_status lg_graph_run_on(lg_graph *g, const char *device, const lg_feed *feeds, int n_feeds, const lg_value *fetches,
                          int n_fetches, lg_tensor **out);

/* Programs cached on the graph; freed with it (program.c). */
void lg_program_cache_free(struct lg_program_cache *c);

/* ---- parameter blocks (param_block.c; packed for src/optim) ----------------
 * The graph keeps its parameters of a dtype in one contiguous block it owns,
 * once an optimizer asks for it: each parameter's tensor is re-pointed into
 * the block (the lg_tensor itself stays), so an update is one flat loop.
 * Programs read parameter data through the tensor when they run, so moving
 * the data never invalidates them. */

/* Make nodes[0..n) (distinct parameters of g, all of one dtype) one
 * contiguous run, in this order, of their dtype's block, and move every other
 * parameter of that dtype into the block as well. Values are kept. A run that
 * is already in place stays; runs packed before stay contiguous unless they
 * share a parameter with this one. LG_ERR_OUT_OF_MEMORY leaves all as it was. */
lg_status lg_param_block_pack(lg_graph *g, const int32_t *nodes, int n);
/* The data of nodes[0] if nodes[0..n) is a contiguous run, in this order, of
 * their dtype's block; NULL otherwise. */
void *lg_param_block_run(const lg_graph *g, const int32_t *nodes, int n);
void lg_param_store_free(struct lg_param_store *s);

/* Point t at memory it does not own, freeing the data it owned; the contents
 * are not copied (tensor.c). It then lives in no mirror. */
void lg_tensor_borrow(lg_tensor *t, void *data);

/* The mirror (graph/mirror.h: a block with a device copy) t's data lives
 * in, or NULL; set by the block's owner after pointing t into it. */
struct lg_mirror *lg_tensor_mirror(const lg_tensor *t);
void lg_tensor_set_mirror(lg_tensor *t, struct lg_mirror *m);

/* Pack every parameter of g not yet in its dtype's block into it (in
 * place: the blocks' runs stay), so a program on a device finds each one in
 * a mirrored block. */
lg_status lg_param_block_pack_all(lg_graph *g);
/* Bring every parameter block home from its device copy (checkpoints,
 * the end of a fit). */
lg_status lg_param_blocks_to_host(lg_graph *g);

#endif
