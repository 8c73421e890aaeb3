/*
 * layers.h — Keras-style layers: a recurrent layer over a cell (SimpleRNN,
 * LSTM, GRU), its bidirectional wrapper, Dense, Embedding and Masking
 * (BatchNormalization is in norm.h).
 *
 * lg_rnn runs a cell (cells.h) over a sequence with a loop node (loop.h) and
 * gives Keras's options: return_sequences, return_state, initial_state,
 * go_backwards, masking by per-example lengths, and variational dropout.
 * Stacking is chaining: a layer with return_sequences feeds the next one.
 *
 *     lg_value ids = lg_input(g, "ids", LG_I32, lg_shape_of(2, -1, -1));     // [B, T]
 *     lg_value len = lg_input(g, "len", LG_I32, lg_shape_of(1, -1));         // [B]
 *     lg_value x = lg_embedding(g, "emb", ids, 1000, 32, lg_embedding_opts_default(), NULL); // [B, T, 32]
 *     lg_cell *c1 = lg_cell_new(g, "lstm1", 32, lg_cell_opts_default(LG_CELL_LSTM, 64));
 *     lg_cell *c2 = lg_cell_new(g, "lstm2", 64, lg_cell_opts_default(LG_CELL_LSTM, 64));
 *     lg_rnn_opts o = lg_rnn_opts_default();
 *     o.return_sequences = true;
 *     o.lengths = len;
 *     lg_rnn_result r1, r2;
 *     lg_rnn(g, NULL, c1, x, o, &r1);           // layer "lstm1", r1.output [B, T, 64]
 *     o.return_sequences = false;
 *     lg_rnn(g, "rnn2", c2, r1.output, o, &r2); // layer "rnn2", r2.output [B, 64]
 *     lg_dense_opts d = lg_dense_opts_default();
 *     d.activation = LG_ACT_SIGMOID;
 *     lg_value p = lg_dense(g, "out", r2.output, 1, d); // [B, 1]
 *     lg_cell_free(c1), lg_cell_free(c2);
 *
 * Masking (opts.lengths, i32 [B]): example b is valid for its first
 * lengths[b] steps and padded after them (right padding, as Keras and
 * cuDNN expect). Past its length an example's states stay unchanged, so
 * its last output is the output at its last valid step and its final
 * states are the states after it. A returned sequence repeats the last
 * valid output at padded steps (Keras 3's default), or is zero there with
 * opts.zero_output_for_mask (what Bidirectional does when it returns
 * sequences); with zero_output_for_mask and no sequences returned, the
 * output is the last step's, zero when it is padded (Keras). Lengths must
 * lie in [1, T]: the layer checks them when the program runs, so a bad
 * length fails the run with LG_ERR_RUNTIME and a message such as
 * "'lstm1/loop/lengths_in_1_to_T/gather': lengths[0] = 7 outside [1, 6]".
 * lg_lengths_check checks a tensor before feeding it.
 *
 * A general mask (opts.mask [B, T], e.g. from lg_embedding's mask_zero or
 * lg_masking) may mask any steps: at a masked step the states are carried
 * and the output follows zero_output_for_mask as above. Lengths are the
 * fast special case (what fused kernels expect). Keras's TensorFlow
 * backend is the reference: before the first valid step a repeated output
 * is zero. An initial state whose batch is not x's fails when the program
 * compiles with LG_ERR_SHAPE "initial state 0 of 'enc/loop': batch 2, x
 * has batch 3".
 *
 * go_backwards (Keras): the layer reads the sequence from its last step to
 * its first, and a returned sequence is in that processing order (its step
 * 0 is the output for x's last step). With lengths, the padded steps come
 * first when running backwards; they keep the initial state and emit zeros,
 * so each example effectively starts at its last valid step.
 *
 * Dropout (Gal and Ghahramani's variational dropout, Keras's
 * DropoutRNNCell): with opts.training and a rate > 0, the layer creates an
 * input placeholder per mask, "<name>/dropout_mask" [B, F] and
 * "<name>/recurrent_dropout_mask" [B, u] (returned in the result), which the
 * caller feeds with 0/1 keep masks, one per example and sequence, e.g. from
 * lg_dropout_mask_fill. The layer scales them by 1 / (1 - rate) and applies
 * the same mask at every step to x_t and h_{t-1}, one mask for all gates
 * (Gal's tied variant, and Keras's implementation 2 for dropout; Keras 3
 * switches to implementation 1, one mask per gate, when recurrent_dropout
 * > 0). Tied masks keep each step one product with U, so these layers run
 * on the fused kernels (the GRU mixes the unmasked h_{t-1}, as Keras does).
 * Without opts.training no mask exists and nothing is dropped (build an
 * inference graph with training false, or feed masks of ones).
 *
 * unroll (Keras): the loop is inlined once per step (loop.h), which gives
 * the same values and gradients; it needs a static T, and a layer over x
 * with an unknown T fails with the loop's "unroll needs a static number of
 * steps" error.
 *
 * Stateful (Keras stateful=True): the final states of one run are the
 * initial states of the next, as for a long sequence fed in consecutive
 * pieces with example b of every batch continuing example b of the one
 * before. A stateful layer has a fixed batch, opts.batch_size (Keras's
 * batch_input_shape). The states live outside the graph, in an
 * lg_rnn_state the layer returns in r.state (the caller's to free): a
 * tensor [batch_size, u] per state, zeros at first, and an input
 * "<name>/state_h" (LSTM also "<name>/state_c") [batch_size, u] that the
 * layer reads as its initial state. They are not parameters: not trained,
 * not checkpointed, and gradients treat them as constants. The simple way
 * to run is lg_rnn_state_run, which is lg_graph_run plus the states' feeds
 * and fetches and their update:
 *
 *     lg_rnn_opts o = lg_rnn_opts_default();
 *     o.stateful = true, o.batch_size = 32;
 *     lg_rnn_result r;
 *     lg_rnn(g, NULL, cell, x, o, &r);               // x [32, T, F] or [?, T, F]
 *     for (int piece = 0; piece < n_pieces; piece++) // consecutive pieces of the sequences
 *         lg_rnn_state_run(g, &r.state, 1, feeds, n_feeds, &loss, 1, out);
 *     lg_rnn_state_reset(r.state);                   // new sequences: zeros
 *     lg_rnn_state_free(r.state);
 *
 * With lg_program_run or lg_gradcheck, add the feeds with
 * lg_rnn_state_feeds and, after the run, copy the fetched final states in
 * with lg_rnn_state_update. A batch other than batch_size is an error: at
 * build time when x's batch is static (and then LG_ERR_FEED naming the input
 * that feeds x at run time), otherwise when the run compiles, LG_ERR_SHAPE.
 * lg_rnn_state_run and lg_fit's trainer (lg_trainer_add_rnn_state) say
 * "stateful layer '<name>': batch 32, its states hold 64 rows ..."; a run
 * by hand (lg_graph_run with lg_rnn_state_feeds) names the check that
 * caught it, a concat in the scope "<name>/x_batch_is_stateful_batch_size",
 * and both shapes. A run without the state feeds fails with
 * LG_ERR_FEED "missing feed for input '<name>/state_h'".
 *
 * Errors: the builders record the first error on the graph (graph.h) and
 * return a status (lg_rnn, lg_bidirectional) or an invalid value (lg_dense,
 * lg_embedding). The message names the layer and the shapes: x not
 * [B, T, F] of the cell's dtype and input dim, initial states of the wrong
 * count, dtype or shape, lengths not i32 [B] or of another batch, a dropout
 * rate outside [0, 1), an unknown merge mode, stateful without a
 * batch_size >= 1, with initial_state, or with an x of another static
 * batch; a mask not [B, T] of x's B and T, or with lengths. The result's values are invalid on error.
 */
#ifndef LG_LAYERS_H
#define LG_LAYERS_H

#include "api.h"
#include "cells.h"
#include "program.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* The most states a cell carries (LSTM: h and c). */
#define LG_RNN_MAX_STATES 2

typedef struct lg_rnn_opts {
    bool return_sequences; /* output [B, T, u] instead of the last output [B, u] */
    bool return_state;     /* fill lg_rnn_result.states (always filled; kept for Keras parity) */
    bool go_backwards;     /* see the overview */
    bool time_major;       /* x and returned sequences are [T, B, ...] */
    /* Initial states, lg_cell_state_count() of them, each [B, u] of x's
     * dtype, in the cell's state order (LSTM: h, c); NULL for zeros. For
     * lg_bidirectional: the forward states, then the backward ones. The
     * array is read during the call only. */
    const lg_value *initial_state;
    int n_initial_state;
    /* i32 [B], valid steps per example; leave zeroed (or lg_value_invalid())
     * for no masking. */
    lg_value lengths;
    /* [B, T] (time_major: [T, B]), i32 or float, nonzero where a step is
     * valid: Keras's general mask (lg_embedding's mask_zero, lg_masking,
     * holes anywhere); zeroed for none. Not with lengths. */
    lg_value mask;
    /* Keras's zero_output_for_mask, default false: a returned sequence
     * repeats the last valid output at a masked step (zeros before the
     * first valid one); true: zeros. Bidirectional sets it to
     * return_sequences, as Keras does. The layer passes it to its loop
     * (lg_loop_opts.zero_output_for_mask, whose default is true). */
    bool zero_output_for_mask;
    double dropout;           /* rate on x_t, in [0, 1); default 0 */
    double recurrent_dropout; /* rate on h_{t-1}, in [0, 1); default 0 */
    bool training;            /* dropout only when true; default false */
    bool unroll;              /* inline the loop per step (static T only); default false */
    bool stateful;            /* carry the final states to the next run (see the overview) */
    int64_t batch_size;       /* the fixed batch of a stateful layer; required with stateful */
} lg_rnn_opts;

lg_rnn_opts lg_rnn_opts_default(void);

/* The carried states of a stateful layer (see the overview). */
typedef struct lg_rnn_state lg_rnn_state;

typedef struct lg_rnn_result {
    lg_value output; /* [B, u] last output, or [B, T, u] with return_sequences */
    lg_value states[LG_RNN_MAX_STATES]; /* final states [B, u] (LSTM: h, c) */
    int n_states;
    /* The mask inputs to feed (see the overview); invalid when not made. */
    lg_value dropout_mask;           /* [B, F] */
    lg_value recurrent_dropout_mask; /* [B, u] */
    /* With stateful: the layer's states, the caller's to free with
     * lg_rnn_state_free (before or after g); NULL otherwise or on error. */
    lg_rnn_state *state;
} lg_rnn_result;

/* Run cell over x [B, T, F] (F = the cell's input dim, dtype the cell's).
 * The cell's parameters are shared, not copied: running one cell in two
 * layers ties their weights. Returns LG_OK, or the error's status
 * (LG_ERR_INVALID_ARGUMENT for NULL arguments and bad options, LG_ERR_SHAPE,
 * LG_ERR_DTYPE, LG_ERR_GRAPH when g already had an error) with the message
 * on g and in lg_last_error(). name is the layer's, and the scope of its
 * nodes, given after g as every layer builder takes it; NULL or "": the
 * cell's name (lg_cell_name), so a layer is named after its weights as in
 * Keras and a cell run again (shared weights) is one layer in summaries. */
lg_status lg_rnn(lg_graph *g, const char *name, lg_cell *cell, lg_value x, lg_rnn_opts opts, lg_rnn_result *r);

/* ---- stateful layers -------------------------------------------------------- */

/* lg_graph_run(g, ...) with the feeds of each of the n states appended to
 * feeds and their final states to fetches (out gets only the caller's
 * fetches); after a successful run each state holds its layer's final
 * states, after a failed one it is unchanged. Multiple states serve stacked
 * stateful layers; a state may appear once. Errors: those of lg_graph_run,
 * LG_ERR_INVALID_ARGUMENT for a NULL state, a repeated one or one of
 * another graph. */
lg_status lg_rnn_state_run(lg_graph *g, lg_rnn_state *const *states, int n, const lg_feed *feeds, int n_feeds,
                           const lg_value *fetches, int n_fetches, lg_tensor **out);

/* The number of states (the cell's lg_cell_state_count); 0 for NULL. */
int lg_rnn_state_count(const lg_rnn_state *st);
/* State k's current value [batch_size, u], owned by st; write into it to
 * start the next run from other states (Keras reset_states(values)). NULL
 * for NULL or k out of range. */
lg_tensor *lg_rnn_state_tensor(lg_rnn_state *st, int k);
/* Append the n_states feeds {input k, current tensor k} at feeds[*n] and
 * add their count to *n (room for LG_RNN_MAX_STATES needed). The tensors
 * are st's; they stay valid until lg_rnn_state_update or _free. */
lg_status lg_rnn_state_feeds(const lg_rnn_state *st, lg_feed *feeds, int *n);
/* Append the layer's final states (its r.states) at fetches[*n], as above. */
lg_status lg_rnn_state_fetches(const lg_rnn_state *st, lg_value *fetches, int *n);
/* Copy the fetched final states (in lg_rnn_state_fetches order) into the
 * current states. Errors: LG_ERR_INVALID_ARGUMENT (NULL), LG_ERR_DTYPE and
 * LG_ERR_SHAPE (a tensor that is not [batch_size, u] of the layer's dtype;
 * the states are then unchanged). */
lg_status lg_rnn_state_update(lg_rnn_state *st, lg_tensor *const *final_states);
/* Set every state to zeros (Keras reset_states()). NULL is fine. */
void lg_rnn_state_reset(lg_rnn_state *st);
void lg_rnn_state_free(lg_rnn_state *st); /* NULL is fine */

typedef enum lg_merge_mode {
    LG_MERGE_CONCAT, /* [.., u_fwd + u_bwd], Keras's default */
    LG_MERGE_SUM,
    LG_MERGE_MUL,
    LG_MERGE_AVE,
    LG_MERGE_NONE, /* no merged output; use forward.output and backward.output */
    LG_MERGE_COUNT
} lg_merge_mode;

/* "concat", "sum", "mul", "ave", "none"; "?" for another value. */
const char *lg_merge_mode_name(lg_merge_mode m);

typedef struct lg_bidirectional_result {
    lg_value output; /* merged; invalid with LG_MERGE_NONE */
    /* Each direction's own result. backward.output is aligned with forward
     * time, as Keras's Bidirectional returns it: with return_sequences its
     * step t is the backward state after reading steps T-1 (or the
     * example's last valid step) down to t; without, it is the state after
     * reading the whole sequence backwards. */
    lg_rnn_result forward, backward;
} lg_bidirectional_result;

/* Keras Bidirectional: fwd runs forward and bwd (a second cell with its own
 * weights, of the same kind and input dim) backwards over x, and their
 * outputs are merged. opts applies to both directions; go_backwards must be
 * false (an error otherwise). With lengths, the backward direction starts
 * at each example's last valid step; a mask is read backwards with x (so
 * a hole is a hole in both directions). zero_output_for_mask is
 * return_sequences, whatever opts says (Keras forces it). With stateful,
 * both directions carry their final states to the next run, each in its
 * own lg_rnn_state (r.forward.state, r.backward.state, inputs
 * "<name>/forward/state_h", "<name>/backward/state_h", ...): run with
 * both, reset both. Errors as lg_rnn, plus an unknown merge mode and
 * directions whose outputs do not merge (sum/mul/ave need equal units;
 * the message names the mode, "merge mode 'sum'"). name as lg_rnn's; NULL
 * or "": "bidirectional_" and the forward cell's name. merge comes before
 * opts, as Keras's Bidirectional(layer, merge_mode) takes it. */
lg_status lg_bidirectional(lg_graph *g, const char *name, lg_cell *fwd, lg_cell *bwd, lg_value x, lg_merge_mode merge,
                           lg_rnn_opts opts, lg_bidirectional_result *r);

/* Fill t (float) with 0/1 keep decisions, 1 with probability 1 - rate, from
 * the Philox stream (seed, key) (init.h); a new key or seed per batch.
 * Errors: LG_ERR_INVALID_ARGUMENT (NULL, rate outside [0, 1)), LG_ERR_DTYPE. */
lg_status lg_dropout_mask_fill(lg_tensor *t, double rate, uint64_t seed, uint64_t key);

/* Check lengths (i32 [B]) lie in [1, steps] before feeding them; the
 * message names the first bad element. Errors: LG_ERR_INVALID_ARGUMENT
 * (NULL), LG_ERR_DTYPE, LG_ERR_SHAPE (not rank 1), LG_ERR_FEED (a length
 * out of range). */
lg_status lg_lengths_check(const lg_tensor *lengths, int64_t steps);

/* ---- Dense and Embedding --------------------------------------------------- */

typedef struct lg_dense_opts {
    lg_activation activation; /* default linear */
    bool use_bias;            /* default true */
    uint64_t seed;            /* kernel initializer stream (glorot_uniform); default 0 */
} lg_dense_opts;

lg_dense_opts lg_dense_opts_default(void);

/* activation(x W + b) on the last axis: x [..., in] -> [..., units]. Creates
 * the parameters "<name>/kernel" [in, units] (glorot_uniform) and
 * "<name>/bias" [units] (zeros) in x's float dtype. x needs rank >= 2 and a
 * known last dim. A second call with the same name in the same scope shares
 * the parameters (Keras: calling a layer again), e.g. for an inference
 * branch next to a training one; their shapes must fit. Invalid value on
 * error (recorded on g). */
lg_value lg_dense(lg_graph *g, const char *name, lg_value x, int units, lg_dense_opts opts);

typedef struct lg_embedding_opts {
    lg_dtype dtype; /* default f32 */
    uint64_t seed;  /* default 0 */
    /* Keras mask_zero: id 0 is padding, and lg_embedding's *mask (required
     * then) gets the mask ids != 0, i32 of ids' shape ([B, T] for
     * lg_rnn_opts.mask). */
    bool mask_zero;
} lg_embedding_opts;

lg_embedding_opts lg_embedding_opts_default(void);

/* Rows of "<name>/embeddings" [vocab, dim] (Keras's uniform(-0.05, 0.05))
 * picked by ids (i32 [...]) -> [..., dim]. An id outside [0, vocab) fails
 * the run (LG_ERR_RUNTIME). Shared on a second call as lg_dense. With
 * opts.mask_zero, *mask gets the padding mask, as lg_masking's; mask may
 * be NULL otherwise. Invalid value on error (recorded on g), and mask_zero
 * with mask NULL is one. */
lg_value lg_embedding(lg_graph *g, const char *name, lg_value ids, int vocab, int dim, lg_embedding_opts opts,
                      lg_value *mask);

/* Keras Masking: a step of x [B, T, F] whose features all equal mask_value
 * is masked. Returns x with masked steps zeroed (as Keras does) and puts
 * the mask [B, T] (x's dtype, 1 where valid) in *mask, for
 * lg_rnn_opts.mask. Invalid value on error (recorded on g): x not a float
 * [B, T, F], mask NULL. */
lg_value lg_masking(lg_graph *g, const char *name, lg_value x, double mask_value, lg_value *mask);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
