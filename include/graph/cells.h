/*
 * cells.h — recurrent cells: SimpleRNN, LSTM and GRU with Keras's defaults,
 * weight names, shapes and gate orders, built as the step of a loop body.
 *
 * A cell owns its parameters, created in the outer graph when the cell is
 * made (so they live in the parameter store and checkpoints), and builds one
 * step inside any loop body, capturing them as invariants:
 *
 *     lg_cell_opts o = lg_cell_opts_default(LG_CELL_LSTM, 64);
 *     lg_cell *cell = lg_cell_new(g, "lstm", 28, o);   // input dim 28
 *     lg_loop *l = lg_loop_new(g, NULL, lg_loop_opts_default());
 *     lg_value x_t = lg_loop_seq(l, x);                // [B, 28]
 *     lg_value s[2] = {lg_loop_state(l, h0), lg_loop_state(l, c0)};
 *     lg_value next[2], y;
 *     lg_cell_step(cell, l, x_t, s, lg_value_invalid(), lg_value_invalid(), next, &y);
 *     lg_loop_next(l, s[0], next[0]); lg_loop_next(l, s[1], next[1]);
 *     lg_loop_emit(l, y);
 *     ...
 *     lg_cell_free(cell);   // the parameters stay in g
 *
 * Weights (Keras names under the cell's scope, e.g. "lstm/kernel"):
 *   SimpleRNN  kernel [in, u], recurrent_kernel [u, u], bias [u]
 *   LSTM       kernel [in, 4u], recurrent_kernel [u, 4u], bias [4u];
 *              gates in Keras order i, f, c, o along the last axis
 *   GRU        kernel [in, 3u], recurrent_kernel [u, 3u]; gates z, r, h;
 *              reset_after (default, cuDNN-compatible): bias [2, 3u], row 0
 *              for the input projection, row 1 for the recurrent one, and
 *              h~ = act(x W_h + b_h + r * (h R_h + b'_h));
 *              reset_after false: bias [3u], h~ = act(x W_h + (r * h) R_h + b_h)
 *
 * PyTorch mapping (nn.RNN / nn.LSTM / nn.GRU, one layer; checked against
 * PyTorch by tests/test_cells.c): PyTorch stores weight_ih [G*u, in] and
 * weight_hh [G*u, u] in gate order i, f, g, o (LSTM) and r, z, n (GRU), with
 * bias_ih and bias_hh [G*u]. kernel = weight_ih^T, recurrent_kernel =
 * weight_hh^T, gate blocks reordered: LSTM keeps i, f, g(=c), o; GRU maps
 * z <- PyTorch block 1, r <- block 0, h <- block 2 (in the biases too).
 * SimpleRNN and LSTM bias = bias_ih + bias_hh; GRU (reset_after) bias row 0 =
 * bias_ih, row 1 = bias_hh, both reordered. PyTorch has no reset_after=false
 * GRU.
 *
 * States: SimpleRNN and GRU carry h [B, u]; LSTM carries h and c [B, u], in
 * that order. The step's output is the new h.
 *
 * Initial values: each parameter's initializer draws from the stream (seed,
 * key) with key a hash of the parameter's full name, so a cell is
 * reproducible from its seed and two cells with one seed still differ. With
 * unit_forget_bias the LSTM bias is the bias initializer's values with the
 * forget block [u, 2u) set to 1 (Keras: [zeros(u), ones(u), zeros(2u)]).
 *
 * Errors (builders' channel): lg_cell_new records bad options (a kind,
 * activation or initializer outside its enum, units or input_dim < 1, a dtype
 * other than f32/f64, a name with '/', a parameter name already taken, an
 * initializer that does not fit its parameter, e.g. orthogonal on a rank-1
 * bias) on g, naming the cell, and returns NULL; with g NULL it returns NULL
 * and sets lg_last_error. lg_cell_step records a bad step (x_t or a state of
 * the wrong shape or dtype or not of the body, a NULL argument) on the body
 * graph; lg_loop_end then reports it on the outer graph after the loop's
 * name and where the step's invalid value was first used (lg_loop_next:
 * "next state", lg_loop_emit: "output", neither: "body"), e.g. "loop 'loop':
 * next state: cell 'lstm': x_t is f32 [?, 5], the cell needs f32 [B, 3]".
 */
#ifndef LG_CELLS_H
#define LG_CELLS_H

#include "api.h"
#include "init.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef enum lg_cell_kind { LG_CELL_SIMPLE_RNN, LG_CELL_LSTM, LG_CELL_GRU, LG_CELL_KIND_COUNT } lg_cell_kind;

typedef enum lg_activation {
    LG_ACT_TANH,
    LG_ACT_SIGMOID,
    LG_ACT_HARD_SIGMOID,
    LG_ACT_RELU,
    LG_ACT_LINEAR,
    LG_ACT_COUNT
} lg_activation;

/* act(x) for an activation (an invalid enum is a graph error). */
lg_value lg_activate(lg_value x, lg_activation a);

typedef struct lg_cell_opts {
    lg_cell_kind kind;
    int units;
    lg_activation activation;           /* default tanh */
    lg_activation recurrent_activation; /* LSTM/GRU gates; default sigmoid */
    bool use_bias;                      /* default true */
    lg_initializer kernel_initializer;  /* default glorot_uniform */
    lg_initializer recurrent_initializer; /* default orthogonal */
    lg_initializer bias_initializer;    /* default zeros */
    bool unit_forget_bias;              /* LSTM: forget-gate bias starts at 1; default true */
    bool reset_after;                   /* GRU; default true */
    lg_dtype dtype;                     /* default f32 */
    uint64_t seed;                      /* initializer stream; default 0 */
} lg_cell_opts;

/* Keras's defaults for the kind, with the given units. */
lg_cell_opts lg_cell_opts_default(lg_cell_kind kind, int units);

typedef struct lg_cell lg_cell;

/* Create the cell's parameters in g under scope `name` (Keras names above;
 * NULL or "" gives the kind's name: "simple_rnn", "lstm", "gru") and
 * initialise them. input_dim is the last dim of x_t. The cell is the caller's
 * to free; NULL on error (see Errors above). */
lg_cell *lg_cell_new(lg_graph *g, const char *name, int input_dim, lg_cell_opts opts);
void lg_cell_free(lg_cell *c); /* NULL is fine; parameters stay in the graph */

int lg_cell_state_count(const lg_cell *c); /* 1, or 2 for LSTM */
/* The scope the cell's parameters were made under, relative to the scope
 * lg_cell_new was called in (its name, or the kind's default); owned by c.
 * A layer over the cell (layers.h) is named after it by default. NULL for
 * NULL. */
const char *lg_cell_name(const lg_cell *c);
int lg_cell_units(const lg_cell *c);
lg_cell_opts lg_cell_get_opts(const lg_cell *c);
/* The cell's parameters in the outer graph (invalid if absent: no bias). */
lg_value lg_cell_kernel(const lg_cell *c);
lg_value lg_cell_recurrent_kernel(const lg_cell *c);
lg_value lg_cell_bias(const lg_cell *c);

/* Build one step in l's body from x_t [B, in], states[k] body values
 * [B, u] (lg_cell_state_count of them) and the optional masks (inputs
 * first, outputs last, as every builder); writes next[k] and *output (the
 * new h; output may be NULL), all invalid on error. l must be a loop of the
 * cell's graph; each call captures the parameters as new invariants of l, so
 * call it once per loop. x_mask and h_mask are optional body values (invalid
 * for none) multiplied into x_t and h_{t-1} before the input and recurrent
 * projections: Keras 3's dropout and recurrent_dropout masks, already scaled
 * by 1 / (1 - rate), e.g. [B, in] and [B, u] captured with
 * lg_loop_invariant. As in Keras 3's GRUCell, the GRU's
 * h = z h_{t-1} + (1 - z) h~ mixes the unmasked h_{t-1}. */
void lg_cell_step(lg_cell *c, lg_loop *l, lg_value x_t, const lg_value *states, lg_value x_mask, lg_value h_mask,
                  lg_value *next, lg_value *output);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
