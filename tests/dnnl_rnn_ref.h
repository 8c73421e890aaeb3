/*
 * dnnl_rnn_ref.h — one recurrent layer's training step (forward, then
 * backward) through the fused op's CPU kernels (lg_cpu_rnn,
 * lg_cpu_rnn_grad) with a chosen implementation forced: the hand-fused
 * kernels or oneDNN's RNN primitives (src/backends/cpu/cpu_rnn_onednn.c),
 * on the same f32 data. Shared by tests/test_dnnl_rnn.c (each the other's
 * reference) and bench/dnnl_rnn.c (their speeds).
 *
 * Everything is in the fused op's layout (src/ops/rnn.h): x [T, B, I],
 * W [I, G H], U [H, G H], b [G H] or [2, 3H] (GRU reset_after), ys
 * [T, B, H]; workspace and scratch sized by lg_cpu_rnn_plan.
 */
#ifndef LG_DNNL_RNN_REF_H
#define LG_DNNL_RNN_REF_H

#include <stdint.h>

#include "backends/cpu/cpu_rnn_select.h"

typedef struct rnn_problem {
    lg_rnn_cell cell;
    int64_t T, B, I, H;
    bool reverse; /* LG_RNN_REVERSE (the bias is always there) */
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

/* A runner for p on impl (planned for p with impl forced, and
 * lg_cpu_rnn_impl_force(impl) left set, as rnn_runner_step leaves it): NULL
 * with why in err when impl cannot take p or memory runs out. */
rnn_runner *rnn_runner_new(const rnn_problem *p, lg_rnn_impl impl, char *err, size_t size);
/* Forward then backward on io; 0, or -1 with why in err. */
int rnn_runner_step(rnn_runner *r, rnn_io *io, char *err, size_t size);
void rnn_runner_free(rnn_runner *r);

#endif
