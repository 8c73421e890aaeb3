/*
 * hand_lstm.h — the standard LSTM cell (Keras gate order i, f, c, o, no
 * peepholes) written as a loop body from plain ops: two matmuls, a bias add,
 * a split into gates, sigmoid, tanh and products. The fuse_rnn pass matches
 * this body to the fused LSTM op (CPU kernels, cuDNN), so it is the test and
 * benchmark of "a user's own LSTM runs as fast as the built-in one"
 * (bench/rnn_bench.c, bench/cudnn_lstm.c, tests/test_cuda.c).
 *
 *     z   = x_t W + h_{t-1} U + b     // [B, 4u], blocks i, f, c, o
 *     c_t = sigmoid(z_f) * c_{t-1} + sigmoid(z_i) * tanh(z_c)
 *     h_t = sigmoid(z_o) * tanh(c_t)
 *
 *     hand_lstm cell = hand_lstm_new(g, "hand", 32, 256, LG_F32);
 *     lg_init_glorot_uniform(lg_param_tensor(cell.kernel), seed, 0);  // the caller initialises
 *     lg_loop_opts lo = lg_loop_opts_default();
 *     lo.time_major = true;
 *     hand_lstm_sequence(g, &cell, x, lo, &ys, &h_last);
 *
 * Errors go to the graph's builder channel (graph.h); hand_lstm_sequence()
 * returns lg_loop_end()'s status.
 */
#ifndef HAND_LSTM_H
#define HAND_LSTM_H

#include "graph/loopgrad.h"

/* Parameters in the outer graph's store under the cell's scope
 * ("<name>/kernel", "<name>/recurrent_kernel", "<name>/bias"). */
typedef struct hand_lstm {
    lg_value kernel;           /* [in, 4u], gate blocks i, f, c, o */
    lg_value recurrent_kernel; /* [u, 4u] */
    lg_value bias;             /* [4u] */
    int units;
} hand_lstm;

/* Create the parameters in g, as lg_param() leaves them (zero): the caller
 * chooses the initialisation. */
hand_lstm hand_lstm_new(lg_graph *g, const char *name, int input_dim, int units, lg_dtype dtype);

/* One step in loop l: x_t [B, in], h and c [B, u] are body values; writes
 * h_next and c_next [B, u]. */
void hand_lstm_step(lg_loop *l, const hand_lstm *cell, lg_value x_t, lg_value h, lg_value c, lg_value *h_next,
                    lg_value *c_next);

/* The cell over x ([B, T, in], or [T, B, in] with lo.time_major) in a loop
 * with options lo (lengths, name, ...), from zero states: ys, every h_t
 * ([B, T, u] or [T, B, u]), and h_last [B, u]. Either output may be NULL.
 * Returns lg_loop_end()'s status. */
lg_status hand_lstm_sequence(lg_graph *g, const hand_lstm *cell, lg_value x, lg_loop_opts lo, lg_value *ys,
                             lg_value *h_last);

#endif
