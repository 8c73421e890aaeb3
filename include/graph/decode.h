/*
 * decode.h — a readout decoder with teacher forcing (RecurrentShop's
 * "readout" pattern) and optional attention over an encoder sequence.
 *
 * At step t the decoder feeds its cell the concatenation of the step's
 * input, its previous output and, with attention, a context read from the
 * whole encoder sequence (memory), and reads its output out of the cell's
 * new h through a Dense projection (the readout):
 *
 *     in_t = [x_t, y_{t-1}, c_t]            // [B, F + O + H]; x_t and c_t optional
 *     h_t  = cell(in_t, states_{t-1})       // lg_cell_step, any cell kind
 *     y_t  = act(h_t K + b)                 // [B, O], K [u, O], b [O]
 *
 * Teacher forcing: in training (opts.training) y_{t-1} is the ground truth,
 * the targets [B, T, O] shifted by one step, and in inference it is the
 * decoder's own previous prediction. Either way y_{-1} is opts.start (zeros
 * when not given). Both are one loop (loop.h) that carries y_{t-1} as a
 * state: its next value is targets_t in training and y_t in inference, so
 * the shift needs no slicing and works for a T known only at run time.
 *
 * Attention (lg_decoder_opts.attention) reads memory [B, T_enc, H], captured
 * as a loop invariant, at every step:
 *   LG_ATTENTION_MEAN  c_t = mean over s of memory[:, s]
 *   LG_ATTENTION_DOT   Luong's dot score with the previous h (needs H = u):
 *                      a_t = softmax_s(memory[:, s] . h_{t-1}),
 *                      c_t = sum_s a_t[s] memory[:, s]; a_t is returned
 *                      stacked, [B, T, T_enc]
 *
 *     lg_cell *cell = lg_cell_new(g, "dec_cell", F + O + H,
 *                                 lg_cell_opts_default(LG_CELL_LSTM, H));
 *     lg_decoder_opts dopts = lg_decoder_opts_default();
 *     dopts.attention = LG_ATTENTION_DOT;
 *     lg_decoder *dec = lg_decoder_new(g, "decoder", cell, O, dopts);
 *     lg_decode_opts o = lg_decode_opts_default();
 *     o.memory = enc_seq;                     // [B, T_enc, H]
 *     o.initial_state = enc_states, o.n_initial_state = 2;
 *     o.training = true, o.targets = y;       // [B, T, O]
 *     lg_decode_result train;
 *     lg_decode(dec, x, o, &train);           // train.output [B, T, O]
 *     o.training = false, o.targets = lg_value_invalid();
 *     lg_decode_result infer;                 // same weights, own predictions
 *     lg_decode(dec, x, o, &infer);
 *     lg_decoder_free(dec), lg_cell_free(cell);
 *
 * x may be left out (lg_value_invalid()) for a decoder driven by its
 * outputs alone; then T is the targets' in training and opts.steps in
 * inference. Such an inference loop has no sequences, so lg_grad through it
 * is an error (loop.h).
 *
 * Errors: lg_decoder_new records bad arguments on g (a NULL or foreign
 * cell, output_dim < 1, an activation or attention outside its enum, a bad
 * name, a readout parameter name already taken) and returns NULL.
 * lg_decode records the first error on the decoder's graph and
 * returns its status (message in lg_last_error() too), naming the decoder
 * and the shapes: LG_ERR_INVALID_ARGUMENT (NULL arguments, training without
 * targets, memory missing with attention or given without, no steps and no
 * x in inference, initial states of the wrong count, values of another
 * graph), LG_ERR_DTYPE (a value not of the cell's dtype), LG_ERR_SHAPE
 * (x, targets or memory not rank 3, targets' last dim not O, a T or B that
 * disagrees, start or a state not [B, O] / [B, u], a cell whose input dim is
 * not F + O + H, dot attention with H != u), LG_ERR_GRAPH (the graph
 * already had an error). The result's values are invalid on error.
 */
#ifndef LG_DECODE_H
#define LG_DECODE_H

#include "api.h"
#include "cells.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* The most states a cell carries (LSTM: h and c). */
#define LG_DECODER_MAX_STATES 2

typedef enum lg_attention {
    LG_ATTENTION_NONE,
    LG_ATTENTION_MEAN, /* mean-pool the memory */
    LG_ATTENTION_DOT,  /* Luong dot-product attention, query h_{t-1} */
    LG_ATTENTION_COUNT
} lg_attention;

typedef struct lg_decoder_opts {
    lg_attention attention;           /* default none */
    lg_activation readout_activation; /* default linear */
    uint64_t seed;                    /* readout kernel initializer stream; default 0 */
} lg_decoder_opts;

lg_decoder_opts lg_decoder_opts_default(void);

typedef struct lg_decoder lg_decoder;

/* A decoder over cell (borrowed: keep it alive while the decoder is used)
 * with an output of output_dim O. Creates the readout parameters in the
 * cell's graph, "<name>/readout/kernel" [u, O] (glorot_uniform from
 * opts.seed) and "<name>/readout/bias" [O] (zeros), in the cell's dtype.
 * Each lg_decode call builds a loop with these weights and the
 * cell's. The decoder is the caller's to free; NULL on error (recorded on
 * g, or in lg_last_error when g is NULL). */
lg_decoder *lg_decoder_new(lg_graph *g, const char *name, lg_cell *cell, int output_dim, lg_decoder_opts opts);
void lg_decoder_free(lg_decoder *d); /* NULL is fine; parameters stay in the graph */

lg_value lg_decoder_readout_kernel(const lg_decoder *d); /* [u, O]; invalid for NULL */
lg_value lg_decoder_readout_bias(const lg_decoder *d);   /* [O] */

typedef struct lg_decode_opts {
    bool training;    /* teacher forcing from targets; default false */
    lg_value targets; /* [B, T, O], training only */
    lg_value start;   /* y_{-1} [B, O]; absent (zeroed or invalid): zeros */
    lg_value memory;  /* [B, T_enc, H]: required with attention, else absent */
    /* Initial cell states, lg_cell_state_count() of them, [B, u]; NULL for
     * zeros. Read during the call only. */
    const lg_value *initial_state;
    int n_initial_state;
    int64_t steps; /* the trip count of an inference decoder without x */
} lg_decode_opts;

lg_decode_opts lg_decode_opts_default(void);

typedef struct lg_decode_result {
    lg_value output; /* [B, T, O]: y_t at every step */
    lg_value states[LG_DECODER_MAX_STATES]; /* final cell states [B, u] */
    int n_states;
    lg_value attention; /* [B, T, T_enc] weights with LG_ATTENTION_DOT, else invalid */
} lg_decode_result;

/* Build one decoding loop over x [B, T, F] (or no x: lg_value_invalid())
 * under the decoder's name scope. Returns LG_OK or an error (see Errors
 * above). */
lg_status lg_decode(lg_decoder *d, lg_value x, lg_decode_opts opts, lg_decode_result *r);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
