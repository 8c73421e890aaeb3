/*
 * dnnl_rnn_ref.h — one recurrent layer's training step (forward, then
 * backward) two ways on the same f32 data: loopgrad's fused CPU kernels
 * (lg_cpu_rnn, lg_cpu_rnn_grad) and oneDNN's RNN primitives (forward
 * training + backward; LSTM, GRU, linear-before-reset GRU, vanilla RNN).
 * Shared by tests/test_dnnl_rnn.c (oneDNN as the reference) and
 * bench/dnnl_rnn.c (their speeds). Built only with oneDNN.
 *
 * Everything is in the fused op's layout (src/ops/rnn.h): x [T, B, I],
 * W [I, G H], U [H, G H], b [G H] or [2, 3H] (GRU reset_after), ys
 * [T, B, H]. oneDNN's ldigo weights are the same bytes; its biases differ
 * only for the reset_after GRU (4 rows: z and r summed, h input, h
 * recurrent), converted here both ways.
 */
#ifndef LG_DNNL_RNN_REF_H
#define LG_DNNL_RNN_REF_H

#include <stdint.h>

#include "ops/rnn.h"

typedef struct rnn_problem {
    lg_rnn_cell cell; /* any; SimpleRNN runs on oneDNN's vanilla RNN (tanh or relu, slope 0) */
    int64_t T, B, I, H;
} rnn_problem;

/* A step's inputs and results; c0, dc, c_t, dc0 only for LSTM. */
typedef struct rnn_io {
    float *x, *h0, *c0, *w, *u, *b; /* inputs */
    float *dys, *dh, *dc;           /* cotangents of ys, h_T, c_T */
    float *ys, *h_t, *c_t;          /* forward results */
    float *dx, *dh0, *dc0, *dw, *du, *db; /* backward results */
} rnn_io;

/* Elements of b (and db) in the fused layout. */
int64_t rnn_bias_len(const rnn_problem *p);

/* Allocate every array of io (inputs uniform in [-0.5, 0.5) from seed,
 * results zero); 0, or -1 when out of memory. */
int rnn_io_alloc(rnn_io *io, const rnn_problem *p, uint64_t seed);
void rnn_io_free(rnn_io *io);

typedef struct rnn_runner rnn_runner;

/* The fused kernels' side: workspace and scratch for p. NULL on failure, with
 * why in err. */
rnn_runner *rnn_fused_new(const rnn_problem *p, char *err, size_t size);
/* oneDNN's side: primitives created for p (f32, left to right, one layer). */
rnn_runner *rnn_dnnl_new(const rnn_problem *p, char *err, size_t size);
/* Forward then backward on io; 0, or -1 with why in err. */
int rnn_runner_step(rnn_runner *r, rnn_io *io, char *err, size_t size);
void rnn_runner_free(rnn_runner *r);

#endif
