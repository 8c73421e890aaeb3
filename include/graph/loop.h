/*
 * loop.h — the loop node: a subgraph (the body) run once per timestep.
 *
 * A body is a graph of its own. Its inputs are declared through the loop:
 * the step of each sequence (x_t), each carried state (h_{t-1}, of any
 * shape and any number), and invariants captured from the outer graph
 * (weights, a whole encoder sequence, dropout masks). Its outputs are the
 * next value of every state and any number of per-step outputs, which the
 * loop stacks along time.
 *
 *     lg_loop *l = lg_loop_new(g, "rnn", lg_loop_opts_default());
 *     lg_graph *body = lg_loop_body(l);
 *     lg_value x_t = lg_loop_seq(l, x);          // x [B, T, F] -> x_t [B, F]
 *     lg_value h = lg_loop_state(l, h0);         // h0 [B, U]   -> h_{t-1} [B, U]
 *     lg_value w = lg_loop_invariant(l, kernel); // [F, U]
 *     lg_value u = lg_loop_invariant(l, recurrent_kernel);
 *     lg_value h_next = lg_tanh(lg_add(lg_matmul(x_t, w, false, false),
 *                                      lg_matmul(h, u, false, false)));
 *     lg_loop_next(l, h, h_next);
 *     lg_loop_emit(l, h_next);
 *     lg_value h_last, hs;                       // [B, U] and [B, T, U]
 *     lg_loop_end(l, &h_last, &hs);
 *
 * Values made in the body belong to the body graph (lg_loop_body); values
 * of the outer graph enter only through lg_loop_seq/state/invariant. A body
 * may itself contain loops (nested RNNs).
 *
 * Layout: at the API sequences are batch-major [B, T, ...] like Keras, or
 * time-major [T, B, ...] with opts.time_major. Inside, the loop node works
 * time-major, so each step of a sequence is one contiguous block; batch-major
 * sequences are transposed on the way in and the stacked outputs on the way
 * out.
 *
 * Gradients: lg_grad differentiates through loops (backpropagation through
 * time). The gradient of a loop is a reversed loop over the same body,
 * extended with the step's vector-Jacobian product. The forward loop saves
 * each step's incoming states ([T, ...] per state) and, by default
 * (opts.memory), the body values the gradient step reads, found when the
 * loop is built; with LG_LOOP_RECOMPUTE the backward loop recomputes them
 * from the saved states instead. Invariants are never stacked, and their
 * gradients accumulate across steps as carried state.
 *
 * Trip count: the sequences' time dim; with no sequences, opts.max_steps;
 * with lg_loop_until, until a stop condition or that many steps.
 *
 * Per-example lengths (opts.lengths, i32 [B]) give Keras masking: example b
 * takes steps t < lengths[b] (valid steps first, right padding); past its
 * length its states keep their values and its per-step outputs are zero (by
 * default; see zero_output_for_mask below), so its final states are those
 * after its last valid step. Every state and
 * output must then have the batch as its first dim. A length outside
 * [1, T] is a run-time error (LG_ERR_RUNTIME "... lengths[b] = 7 outside
 * [1, 6]", in the loop's scope "lengths_in_1_to_T").
 *
 * A mask (opts.mask, [B, T], or [T, B] with time_major; i32, f32 or f64,
 * nonzero where the step is valid) gives Keras's general masking: any steps
 * may be masked (Embedding mask_zero, a Masking layer, holes). At a masked
 * step every state keeps its value. Lengths are the special case of a
 * right-padded mask, and give one or the other, not both.
 *
 * The per-step outputs of a masked step follow opts.zero_output_for_mask,
 * Keras's name for the choice (its backend rnn() and its RNN layers).
 * True, the loop's default: zeros. False: the output of the last valid
 * step run before it, or zeros where no step before it was valid, Keras 3's
 * default for an RNN layer (and lg_rnn's, layers.h), as its TensorFlow and
 * torch backends compute it. Where an output is a next state, as
 * with the cells, and the mask is lengths, that is the state itself (a
 * forward loop) or zeros (a reverse loop, whose padded steps come first);
 * otherwise the loop carries the last valid output as one more state.
 *
 * With opts.batched (implied by lengths and a mask), the states are [B, ...]
 * with the sequences' batch B, and a state of another batch fails when the
 * program is compiled with LG_ERR_SHAPE "initial state 0 of '<loop>':
 * batch 2, x has batch 3" (x: the sequences).
 *
 * Errors (recorded on the outer graph, lg_loop_end returns LG_ERR_GRAPH): a
 * value of the wrong graph, a state without a next value or with a next
 * value of another shape or dtype, neither a sequence nor max_steps,
 * sequences of different lengths, a stop value that is not a scalar, an
 * error inside the body, lengths that are not i32 [B] or come without
 * sequences, a mask that is not [B, T] of the sequences' B and T, lengths
 * and a mask together, a repeated output whose non-batch dims are not
 * static.
 */
#ifndef LG_LOOP_H
#define LG_LOOP_H

#include "api.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* What the forward loop keeps for the backward loop. */
typedef enum lg_loop_memory {
    /* Default: every body value the gradient step reads, stacked over the
     * steps; the backward loop recomputes nothing. */
    LG_LOOP_SAVE_RESIDUALS,
    /* Only the states before each step; the backward loop recomputes the
     * step (checkpointing at every step): less memory, one more forward
     * pass of the body. */
    LG_LOOP_RECOMPUTE,
    LG_LOOP_MEMORY_COUNT
} lg_loop_memory;

typedef struct lg_loop_opts {
    bool reverse;    /* run from the last step to the first (outputs stay at their step) */
    bool time_major; /* sequences and stacked outputs are [T, B, ...] */
    bool unroll;     /* Keras unroll: inline the body once per step (static T
                        only); same values and gradients as the loop node */
    int truncate;    /* truncated BPTT: gradients cross no chunk boundary,
                        chunks of this many steps in run order (static T
                        only); 0 for full BPTT; negative: an error */
    int64_t max_steps; /* the trip count of a loop with no sequences, or the
                          most steps with a stop condition (lg_loop_until) */
    lg_loop_memory memory; /* default LG_LOOP_SAVE_RESIDUALS */
    lg_value lengths;      /* i32 [B] valid steps per example (see the
                              overview); zeroed (no graph) for none */
    lg_value mask;         /* [B, T] (time_major: [T, B]) nonzero where a
                              step is valid (see the overview); zeroed for none */
    bool zero_output_for_mask; /* masked steps output zeros (default
                              true); false: they repeat the last valid
                              output (Keras 3's layers; see the overview) */
    bool batched;          /* states are [B, ...] with x's batch B, checked
                              when compiled (see the overview) */
} lg_loop_opts;

lg_loop_opts lg_loop_opts_default(void);

typedef struct lg_loop lg_loop;

/* Start a loop in g named name (the loop node's name and the scope of what
 * is built around it; NULL or "": "loop"; copied), as every builder takes
 * its name after the graph. NULL if g is NULL, has an error, or memory
 * runs out (then recorded on g). Every other lg_loop_* function accepts
 * NULL. */
lg_loop *lg_loop_new(lg_graph *g, const char *name, lg_loop_opts opts);
/* The body graph to build the step in. */
lg_graph *lg_loop_body(lg_loop *l);

/* Body-side values for an outer sequence [B, T, ...] (its step [B, ...]),
 * an initial state, and an invariant. */
lg_value lg_loop_seq(lg_loop *l, lg_value seq);
lg_value lg_loop_state(lg_loop *l, lg_value init);
lg_value lg_loop_invariant(lg_loop *l, lg_value v);

/* The state's value after the step; every state needs exactly one. */
void lg_loop_next(lg_loop *l, lg_value state, lg_value next);
/* A per-step output, stacked into [B, T, ...] (in emit order). */
void lg_loop_emit(lg_loop *l, lg_value y);

/* Stop after the first step whose stop value (a body scalar: rank 0 or all
 * dims 1, any dtype) is nonzero, e.g. "every example emitted the end
 * token". Steps not run leave zeros in the stacked outputs; the final states
 * are those after the last step run. At most opts.max_steps steps (or the
 * sequences' length). A loop with a stop condition, or without sequences,
 * is for inference: lg_grad through it is an error. */
void lg_loop_until(lg_loop *l, lg_value stop);

/* Build the loop node and free l. states_out gets the final states (in
 * lg_loop_state order), outputs_out the stacked outputs; either may be NULL.
 * Returns LG_OK or LG_ERR_GRAPH (message in lg_last_error and on g). */
lg_status lg_loop_end(lg_loop *l, lg_value *states_out, lg_value *outputs_out);

/* ---- inspecting a loop node (tools: tools/viz draws loops from these) ----
 * A loop node's inputs are n_seq sequences (time-major [T, ...]), n_state
 * initial states and n_inv invariants; its outputs are n_state final
 * states, n_y stacked outputs [T, ...], n_state stacked incoming states and
 * n_res stacked residuals (what the gradient loop reads). A forward loop
 * and its gradient loop share one body.
 * Masking (opts.lengths or opts.mask) and truncated BPTT are attributes of
 * the node, not nodes of the body: the body is the step as the user built
 * it, a masked forward loop has one more input after the invariants (the
 * lengths, or the mask time-major), and compiling builds them (the
 * lower_loops pass). A loop built in another loop's body, or unrolled, has
 * them built into its body at once. */
typedef struct lg_loop_info {
    lg_graph *body; /* owned by the loop node; valid as long as g */
    int n_seq, n_state, n_inv, n_y, n_res;
    bool reverse;   /* steps run from T-1 down to 0 */
    bool has_stop;  /* lg_loop_until: stops after a step whose condition is nonzero */
    bool gradient;  /* the gradient loop of another loop */
    int64_t steps;  /* the trip count (the most, with a stop) when n_seq is 0 */
    bool by_lengths, by_mask; /* masked by opts.lengths or opts.mask */
    bool zero_output_for_mask; /* opts.zero_output_for_mask */
    int truncate;             /* opts.truncate (0: full BPTT) */
} lg_loop_info;

/* Whether node i of g is a loop; if so and info is not NULL, *info
 * describes it. */
bool lg_graph_node_loop(const lg_graph *g, int node, lg_loop_info *info);
/* The body's input node standing for the loop node's input k (sequences'
 * steps, states, invariants: k < n_seq + n_state + n_inv); -1 if node is
 * no loop or k is out of range. */
int lg_loop_body_input(const lg_graph *g, int node, int k);
/* The body value behind result k: the n_state next states, the n_y
 * per-step outputs, then the stop condition when has_stop (invalid if out
 * of range). */
lg_value lg_loop_body_output(const lg_graph *g, int node, int k);
/* The body value stacked as residual k (k < n_res; invalid otherwise). */
lg_value lg_loop_body_residual(const lg_graph *g, int node, int k);

/* Whether lg_program_compile runs loop node `node` of g as the fused rnn op
 * pair (the fuse_rnn pass, program.h), without compiling: the same matcher
 * on the same body, on the CPU backend that compiles. True with `what`
 * getting what it runs as ("lstm (64 units, bias, reverse, masked)"); false
 * with `what` getting the first reason it is not ("gate 2 uses relu where
 * LSTM has tanh", "not a loop node"). A gradient loop is fused exactly when
 * its forward loop is, and says the same. One thing only a compile knows:
 * a loop in a differentiated loop's body whose saved states the gradient
 * body reads stays a loop (lg_program_report tells). `what` (len bytes,
 * truncated to fit) may be NULL. */
bool lg_loop_fused(const lg_graph *g, int node, char *what, size_t len);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
