/*
 * peephole.h — a peephole LSTM cell (Gers & Schmidhuber, 2000) written as a
 * loop body with the public builder API: an example of a user-defined cell.
 *
 * The gates see the cell state through elementwise peephole weights: i and f
 * see c_{t-1}, o sees the new c_t (as TensorFlow's PeepholeLSTMCell):
 *
 *     z      = x_t W + h_{t-1} U + b          // [B, 4u], blocks i, f, c, o
 *     i      = sigmoid(z_i + p_i * c_{t-1})
 *     f      = sigmoid(z_f + p_f * c_{t-1})
 *     c_t    = f * c_{t-1} + i * tanh(z_c)
 *     o      = sigmoid(z_o + p_o * c_t)
 *     h_t    = o * tanh(c_t)
 *
 * Use the step inside any loop (it captures the parameters as invariants):
 *
 *     peephole cell = peephole_new(g, "peephole", 1, 16, LG_F32, seed);
 *     lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
 *     lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, h0), c = lg_loop_state(l, c0);
 *     lg_value h_next, c_next;
 *     peephole_step(l, &cell, x_t, h, c, &h_next, &c_next);
 *     lg_loop_next(l, h, h_next); lg_loop_next(l, c, c_next);
 *     lg_loop_emit(l, h_next);
 *     lg_loop_end(l, states, &hs);
 *
 * or let peephole_sequence() build that loop. Errors go to the graph's
 * builder channel (graph.h): a bad shape gives invalid values and an error
 * on g, which lg_loop_end() reports.
 */
#ifndef PEEPHOLE_H
#define PEEPHOLE_H

#include <stdint.h>

#include "graph/loopgrad.h"

/* Parameters, all in the outer graph's parameter store under the cell's
 * scope ("<name>/kernel", ...). */
typedef struct peephole {
    lg_value kernel;           /* [in, 4u], gate blocks i, f, c, o */
    lg_value recurrent_kernel; /* [u, 4u] */
    lg_value bias;             /* [4u] */
    lg_value p_i, p_f, p_o;    /* [u] peephole weights */
    int units;
} peephole;

/* Create the parameters in g and initialise them from seed: kernels and
 * peepholes glorot_uniform (as TensorFlow), bias zero but 1 for the forget
 * gate (Keras unit_forget_bias). */
peephole peephole_new(lg_graph *g, const char *name, int input_dim, int units, lg_dtype dtype, uint64_t seed);

/* One step in loop l: x_t [B, in], h and c [B, u] are body values; writes
 * h_next and c_next [B, u]. */
void peephole_step(lg_loop *l, const peephole *cell, lg_value x_t, lg_value h, lg_value c, lg_value *h_next,
                   lg_value *c_next);

/* The cell over a whole sequence: x [B, T, in], h0 and c0 [B, u] in the
 * outer graph; hs [B, T, u] (every h_t), h_last and c_last [B, u]. Any
 * output pointer may be NULL. Returns lg_loop_end()'s status. */
lg_status peephole_sequence(lg_graph *g, const peephole *cell, lg_value x, lg_value h0, lg_value c0, lg_value *hs,
                            lg_value *h_last, lg_value *c_last);

#endif
