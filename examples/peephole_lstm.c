/*
 * peephole_lstm.c — a user-defined recurrent cell (the peephole LSTM of
 * cells/peephole.h, built with the loop builder API) trained with plain SGD
 * through the graph API to output a delayed copy of its input: a sine of
 * random frequency and phase, y_t = x_{t-DELAY} (0 for t < DELAY). Each
 * step draws a fresh batch; the loss printed is the mean since the last print.
 *
 *     build/examples/peephole_lstm [--steps N] [--lr X] [--seed N] [--dot FILE] [--svg FILE]
 *
 * --dot and --svg write the graph, gradients included, before training.
 *
 * Every random number comes from the seeded Philox stream (init.h), so a run
 * with the same seed prints the same losses.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cells/peephole.h"
#include "common/cli.h"

#define BATCH 32
#define STEPS_T 24 /* sequence length */
#define DELAY 4
#define UNITS 16

static int fail(const char *what, lg_status s)
{
    fprintf(stderr, "peephole_lstm: %s: %s: %s\n", what, lg_status_name(s), lg_last_error());
    return 1;
}

/* A fresh batch for training step `step`: x, y [BATCH, STEPS_T, 1]. */
static void make_batch(uint64_t seed, int step, float *x, float *y)
{
    for (int b = 0; b < BATCH; b++) {
        uint64_t i = (uint64_t)step * BATCH + (uint64_t)b;
        double omega = 0.2 + 0.4 * lg_philox_uniform(seed, 100, i); /* radians per step */
        double phase = 6.283185307179586 * lg_philox_uniform(seed, 101, i);
        for (int t = 0; t < STEPS_T; t++) {
            x[b * STEPS_T + t] = (float)sin(omega * t + phase);
            y[b * STEPS_T + t] = t >= DELAY ? (float)sin(omega * (t - DELAY) + phase) : 0.0f;
        }
    }
}

typedef cli_step_args args;

/* Everything run allocates, freed in one place whatever step failed. */
enum { NP = 8 };
typedef struct session {
    lg_graph *g;
    lg_tensor *xt, *yt, *h0t, *c0t, *out[NP + 1];
} session;

static int run(session *S, const args *a)
{
    lg_status s;
    uint64_t seed = a->seed;
    lg_graph *g = S->g = lg_graph_new();

    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, BATCH, STEPS_T, 1));
    lg_value y = lg_input(g, "y", LG_F32, lg_shape_of(3, BATCH, STEPS_T, 1));
    lg_value h0 = lg_input(g, "h0", LG_F32, lg_shape_of(2, BATCH, UNITS));
    lg_value c0 = lg_input(g, "c0", LG_F32, lg_shape_of(2, BATCH, UNITS));
    peephole cell = peephole_new(g, "peephole", 1, UNITS, LG_F32, seed);
    lg_value hs; /* [B, T, u] */
    s = peephole_sequence(g, &cell, x, h0, c0, &hs, NULL, NULL);
    if (s) return fail("peephole_sequence", s);
    /* a linear readout per step: [B, T, u] x [u, 1] + [1] */
    lg_scope_push(g, "readout");
    lg_value wy = lg_param(g, "kernel", LG_F32, lg_shape_of(2, UNITS, 1));
    lg_value by = lg_param(g, "bias", LG_F32, lg_shape_of(1, 1));
    lg_scope_pop(g);
    lg_init_glorot_uniform(lg_param_tensor(wy), seed, 10);
    lg_value pred = lg_add(lg_matmul(hs, wy, false, false), by);
    lg_value loss = lg_mse(y, pred);

    lg_value params[NP] = {cell.kernel, cell.recurrent_kernel, cell.bias, cell.p_i, cell.p_f, cell.p_o, wy, by};
    lg_value fetches[NP + 1] = {loss};
    s = lg_grad(g, loss, params, NP, fetches + 1);
    if (s) return fail("lg_grad", s);
    s = cli_write_graph(&a->out, g);
    if (s) return fail("--dot/--svg", s);

    /* zero initial states */
    if (lg_tensor_new(LG_F32, lg_shape_of(3, BATCH, STEPS_T, 1), &S->xt) ||
        lg_tensor_new(LG_F32, lg_shape_of(3, BATCH, STEPS_T, 1), &S->yt) ||
        lg_tensor_new(LG_F32, lg_shape_of(2, BATCH, UNITS), &S->h0t) ||
        lg_tensor_new(LG_F32, lg_shape_of(2, BATCH, UNITS), &S->c0t))
        return fail("data", LG_ERR_OUT_OF_MEMORY);
    lg_feed feeds[4] = {{x, S->xt}, {y, S->yt}, {h0, S->h0t}, {c0, S->c0t}};

    /* each batch is fresh, so the printed loss is the mean over the steps
     * since the last print (step 0: its own loss) */
    int steps = a->steps, every = steps / 10 ? steps / 10 : 1, since = 0;
    double sum = 0, mean = 0;
    for (int step = 0; step <= steps; step++) {
        make_batch(seed, step, lg_tensor_data(S->xt), lg_tensor_data(S->yt));
        s = lg_graph_run(g, feeds, 4, fetches, NP + 1, S->out);
        if (s) return fail("run", s);
        sum += lg_tensor_get(S->out[0], 0), since++;
        if (step % every == 0) {
            mean = sum / since;
            printf("step %5d  loss %.6f\n", step, mean);
            sum = 0, since = 0;
        }
        for (int p = 0; p < NP; p++) {
            float *w = lg_tensor_data(lg_param_tensor(params[p]));
            const float *dw = lg_tensor_cdata(S->out[p + 1]);
            for (int64_t i = 0; i < lg_tensor_numel(S->out[p + 1]); i++) w[i] -= (float)a->lr * dw[i];
        }
    }
    printf("final loss %.6f\n", mean);
    return 0;
}

int main(int argc, char **argv)
{
    args a = {.steps = 1500, .lr = 0.2, .seed = 1};
    const cli_flag flags[] = {CLI_STEPS(&a.steps), CLI_LR(&a.lr), CLI_SEED_FLAG(&a.seed), CLI_GRAPH_FLAGS(&a.out)};
    const cli c = {"peephole_lstm", "A user-defined peephole LSTM learns to output a delayed copy of a sine.", flags,
                   CLI_COUNT(flags)};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_RUN) return rc;
    session S = {0};
    rc = run(&S, &a);
    for (int i = 0; i < NP + 1; i++) lg_tensor_free(S.out[i]);
    lg_tensor_free(S.xt), lg_tensor_free(S.yt), lg_tensor_free(S.h0t), lg_tensor_free(S.c0t);
    lg_graph_free(S.g);
    return rc;
}
