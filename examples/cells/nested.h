/*
 * nested.h — the NestedCell of the Keras RNN guide ("RNNs with list/dict
 * inputs, or nested inputs"): a cell whose input and state are pairs of
 * tensors of different ranks, written as a loop body with the builder API.
 *
 * Per step, with x1_t [B, i1], x2_t [B, i2, i3], s1 [B, u1], s2 [B, u2, u3]:
 *
 *     output_1   = x1_t kernel_1                          // [B, u1]
 *     output_2_3 = einsum("bij,ijkl->bkl", x2_t, kernel_2_3) // [B, u2, u3]
 *     s1'        = s1 + output_1
 *     s2'        = s2 + output_2_3
 *
 * The einsum is a matmul after flattening: x2_t [B, i2*i3] times
 * kernel_2_3 [i2*i3, u2*u3], reshaped to [B, u2, u3].
 *
 *     nested_cell cell = nested_cell_new(g, "nested", 32, 64, 32, 32, 64, 32, LG_F32, seed);
 *     lg_value outs[2], states[2];
 *     nested_cell_sequence(g, &cell, x1, x2, s1_0, s2_0, outs, states);
 *     // outs: [B, T, u1] and [B, T, u2, u3]; states: [B, u1] and [B, u2, u3]
 *
 * Errors go to the graph's builder channel (graph.h) and are reported by
 * lg_loop_end().
 */
#ifndef NESTED_H
#define NESTED_H

#include <stdint.h>

#include "graph/loopgrad.h"

typedef struct nested_cell {
    lg_value kernel_1;   /* [i1, u1] */
    lg_value kernel_2_3; /* [i2, i3, u2, u3] */
    int i1, i2, i3, u1, u2, u3;
} nested_cell;

/* Create the kernels in g under scope name, glorot_uniform from seed (the
 * guide's "uniform" initializer would do as well). */
nested_cell nested_cell_new(lg_graph *g, const char *name, int i1, int i2, int i3, int u1, int u2, int u3,
                            lg_dtype dtype, uint64_t seed);

/* One step in loop l. Body values x1_t [B, i1], x2_t [B, i2, i3], s1 [B, u1],
 * s2 [B, u2, u3]; writes out[0] [B, u1], out[1] [B, u2, u3] and
 * next[0], next[1] shaped like s1, s2. */
void nested_cell_step(lg_loop *l, const nested_cell *cell, lg_value x1_t, lg_value x2_t, lg_value s1, lg_value s2,
                      lg_value out[2], lg_value next[2]);

/* The cell over whole sequences: x1 [B, T, i1], x2 [B, T, i2, i3], initial
 * states s1_0 [B, u1], s2_0 [B, u2, u3] in the outer graph. outs (may be
 * NULL) gets the stacked outputs [B, T, u1], [B, T, u2, u3]; states (may be
 * NULL) the final states. Returns lg_loop_end()'s status. */
lg_status nested_cell_sequence(lg_graph *g, const nested_cell *cell, lg_value x1, lg_value x2, lg_value s1_0,
                               lg_value s2_0, lg_value outs[2], lg_value states[2]);

#endif
