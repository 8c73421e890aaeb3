/*
 * fuse_rnn_match.h — structural matching of a loop body against the cells
 * the fused rnn op runs (src/ops/rnn.h). Private to the library; the fuse_rnn
 * pass calls it, and tests call it on loops built every way a user might.
 *
 * The matcher reads the body's dataflow from the next states back, never
 * names: a gate pre-activation is a sum (adds in any order and nesting) of
 * x_t W, h_{t-1} U and biases, where W, U and b are loop invariants, whole or
 * sliced along their last axis (in the body or before capture), and the sum
 * may be split or sliced into gates. So the cell API's bodies, hand-written
 * ones with one matmul per gate or one per weight, commuted operands, bias
 * added before or after the sum, f32 or f64 all match. Around the gates:
 *
 *   SimpleRNN  h' = act(z), act tanh or relu
 *   LSTM       c' = f c + i g, h' = o tanh(c'); i, f, o sigmoid, g tanh
 *              (Keras gate order i, f, c, o: gate numbers in reasons)
 *   GRU        h' = hh + z (h - hh) or z h + (1 - z) hh; z, r sigmoid,
 *              hh = tanh(x W_h + r (h U_h + b_h)) (reset_after) or
 *              tanh(x W_h + (r h) U_h) (reset before); gates z, r, h
 *
 * Masking (per-example lengths or a mask, zeros or repeated outputs at
 * masked steps) and reverse are the loop's attributes (lg_loop_spec), read
 * as they are: the body is the user's step. Truncated BPTT is refused.
 * Keras's dropout masks are read where the body multiplies them in: x_t or
 * h_{t-1} times a loop invariant of its shape before the products with W or
 * U (every product reading the same mask), as the cell API builds them
 * (lg_cell_step's x_mask and h_mask); the GRU's mix reads h unmasked.
 *
 * Where the body differs, the match fails with the first difference found,
 * in words ("gate 2 uses relu where LSTM has tanh", "gate 1 reads h times
 * another dropout mask than another product", "peephole term c*w_c in gate
 * 0").
 */
#ifndef LG_FUSE_RNN_MATCH_H
#define LG_FUSE_RNN_MATCH_H

#include "graph/internal.h"
#include "ops/rnn.h"

enum { LG_RNN_MATCH_MAX_PIECES = 16 };

/* H columns of one gate block, taken from a loop invariant. */
typedef struct lg_rnn_piece {
    int inv;       /* the invariant, counted among the loop's invariants */
    int64_t start; /* first column taken along its last axis */
    int64_t row;   /* a bias invariant [k, n]: the row taken; -1 for [n] or [1, n] */
    int gate;      /* the block it fills (Keras gate order) */
    int side;      /* biases: 0 input side, 1 recurrent side (row of the
                      reset_after GRU's [2, 3H] bias); pieces on one block
                      and side add up */
} lg_rnn_piece;

typedef struct lg_rnn_match {
    lg_rnn_cell cell;
    bool has_bias;
    bool reverse;
    int x_seq;          /* the sequence whose step is x_t */
    int mask_seq;       /* the loop input holding the lengths (i32 [B]) or the
                           mask ([T, B]), or -1 */
    int h_state;        /* which carried state is h */
    int c_state;        /* LSTM: which is c; else -1 */
    int y_out;          /* the per-step output that is h', or -1 (none emitted) */
    int x_mask, h_mask; /* the invariants multiplied into x_t (dropout) and into
                           h_{t-1} before U (recurrent dropout), or -1 */
    bool repeat;        /* a mask's masked steps repeat h (LG_RNN_REPEAT) */
    int64_t units;      /* H */
    int n_w, n_u, n_b;  /* W and U: one piece per gate; biases: any number */
    lg_rnn_piece w[LG_RNN_MATCH_MAX_PIECES], u[LG_RNN_MATCH_MAX_PIECES], b[LG_RNN_MATCH_MAX_PIECES];
    char reason[256];   /* why not, when lg_rnn_match_loop returns false */
    /* the backend's sizes for the rnn node (fuse_rnn sets them from
     * rnn_plan; {0, 0}: the CPU's) with and without a gradient */
    lg_rnn_sizes train_sizes, forward_sizes;
} lg_rnn_match;

/* Match the forward loop s. True with m filled in; false with m->reason set
 * (a gradient loop, a stop condition and every structural difference are
 * reasons). */
bool lg_rnn_match_loop(const lg_loop_spec *s, lg_rnn_match *m);

/* The rnn node's flags (ops/rnn.h) for a loop matched as m with n_grad
 * gradients in the program: none makes it forward only
 * (LG_RNN_FORWARD_ONLY), more than one marks its workspace shared
 * (LG_RNN_SHARED_WS). What the backend's plan is asked about and what
 * lg_rnn_fuse_loop builds. */
unsigned lg_rnn_match_flags(const lg_rnn_match *m, int n_grad);

/* Append to g (the graph of loop node `loop`, matched as m) the fused rnn
 * node that computes what the loop computes, with W, U and b assembled
 * from the matched invariants (slices and concats in g, so gradients reach
 * the original parameters), x times its dropout mask, and the recurrent
 * dropout mask as the node's hmask (LG_RNN_HMASK). repl gets, per loop
 * output k below n_state + n_y, the value that replaces it: the final states, then the stacked
 * per-step output. Nothing of the loop is changed; the caller redirects its
 * readers (fuse_rnn in the compile-time graph, tests and benchmarks in
 * theirs), with lg_rnn_match_flags(m, n_grad). Returns the rnn node id, or -1 with the error recorded on g. */
int32_t lg_rnn_fuse_loop(lg_graph *g, int32_t loop, const lg_rnn_match *m, int n_grad, lg_value *repl);

#endif
