/*
 * nested_cell.c — the Keras RNN guide's NestedCell (cells/nested.h): a cell
 * whose input is a pair (x1 [B, T, i1], x2 [B, T, i2, i3]) and whose state is
 * a pair (s1 [B, u1], s2 [B, u2, u3]), run by the loop node and trained with
 * plain gradient descent on random data, as the guide does with model.fit.
 *
 * The guide fits random targets, which only a least-squares floor can meet;
 * here the targets come from a "teacher" NestedCell with other weights, so
 * the loss can fall towards zero. As the guide's RNN layer returns the last
 * step's outputs, the loss is their MSE; the final states' MSE is added so
 * that the gradient also runs back through every step.
 *
 *     build/examples/nested_cell [--steps N] [--lr X] [--seed N] [--dot FILE] [--svg FILE]
 *
 * --dot and --svg write the graph, gradients included, before training.
 *
 * The guide's sizes (i1 32, i2 64, i3 32, u1 10, u2 20, u3 30, T 50) are cut
 * down to keep the example quick; change the defines to scale it up.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cells/nested.h"
#include "common/cli.h"

#define BATCH 16
#define STEPS_T 10
#define I1 8
#define I2 6
#define I3 4
#define U1 5
#define U2 3
#define U3 4

static int fail(const char *what, lg_status s)
{
    fprintf(stderr, "nested_cell: %s: %s: %s\n", what, lg_status_name(s), lg_last_error());
    return 1;
}

/* The last step of a stacked output [B, T, ...] -> [B, ...]. */
static lg_value last_step(lg_value seq) { return lg_squeeze(lg_slice(seq, 1, STEPS_T - 1, 1), 1); }

typedef cli_step_args args;

/* Everything run allocates, freed in one place whatever step failed. */
typedef struct session {
    lg_graph *g;
    lg_tensor *xt[4], *yt[4], *out[3];
} session;

static int run(session *S, const args *a)
{
    lg_status s;
    int steps = a->steps;
    uint64_t seed = a->seed;
    double lr = a->lr;
    lg_graph *g = S->g = lg_graph_new();

    lg_value x1 = lg_input(g, "x1", LG_F32, lg_shape_of(3, BATCH, STEPS_T, I1));
    lg_value x2 = lg_input(g, "x2", LG_F32, lg_shape_of(4, BATCH, STEPS_T, I2, I3));
    lg_value s1_0 = lg_input(g, "s1_0", LG_F32, lg_shape_of(2, BATCH, U1));
    lg_value s2_0 = lg_input(g, "s2_0", LG_F32, lg_shape_of(3, BATCH, U2, U3));

    /* the teacher makes the targets; the student learns them */
    nested_cell teacher = nested_cell_new(g, "teacher", I1, I2, I3, U1, U2, U3, LG_F32, seed + 1000);
    nested_cell cell = nested_cell_new(g, "nested", I1, I2, I3, U1, U2, U3, LG_F32, seed);
    lg_value t_outs[2], t_states[2], outs[2], states[2];
    s = nested_cell_sequence(g, &teacher, x1, x2, s1_0, s2_0, t_outs, t_states);
    if (s) return fail("teacher", s);
    s = nested_cell_sequence(g, &cell, x1, x2, s1_0, s2_0, outs, states);
    if (s) return fail("nested_cell_sequence", s);
    lg_value targets[4] = {last_step(t_outs[0]), last_step(t_outs[1]), t_states[0], t_states[1]};
    lg_value preds[4] = {last_step(outs[0]), last_step(outs[1]), states[0], states[1]};
    /* targets enter as inputs, computed once, so no gradient reaches the teacher */
    lg_value y[4], loss = lg_value_invalid();
    const char *names[4] = {"y_output_1", "y_output_2_3", "y_state_1", "y_state_2_3"};
    for (int k = 0; k < 4; k++) {
        y[k] = lg_input(g, names[k], LG_F32, lg_value_shape(targets[k]));
        lg_value term = lg_mse(y[k], preds[k]);
        loss = k ? lg_add(loss, term) : term;
    }

    lg_value params[2] = {cell.kernel_1, cell.kernel_2_3};
    lg_value fetches[3] = {loss};
    s = lg_grad(g, loss, params, 2, fetches + 1);
    if (s) return fail("lg_grad", s);
    s = cli_write_graph(&a->out, g);
    if (s) return fail("--dot/--svg", s);

    /* random inputs in [-1, 1) and initial states, fixed for the whole fit */
    lg_tensor **xt = S->xt, **yt = S->yt, **out = S->out;
    lg_value src[4] = {x1, x2, s1_0, s2_0};
    for (int k = 0; k < 4; k++)
        if (lg_tensor_new(LG_F32, lg_value_shape(src[k]), &xt[k]) || lg_init_uniform(xt[k], -1, 1, seed, 100 + (uint64_t)k))
            return fail("inputs", LG_ERR_OUT_OF_MEMORY);
    lg_feed feeds[8] = {{x1, xt[0]}, {x2, xt[1]}, {s1_0, xt[2]}, {s2_0, xt[3]}};
    s = lg_graph_run(g, feeds, 4, targets, 4, yt);
    if (s) return fail("targets", s);
    for (int k = 0; k < 4; k++) feeds[4 + k] = (lg_feed){y[k], yt[k]};

    double last = 0;
    for (int step = 0; step <= steps; step++) {
        s = lg_graph_run(g, feeds, 8, fetches, 3, out);
        if (s) return fail("run", s);
        last = lg_tensor_get(out[0], 0);
        if (step % (steps / 10 ? steps / 10 : 1) == 0) printf("step %5d  loss %.6f\n", step, last);
        for (int p = 0; p < 2; p++) {
            float *w = lg_tensor_data(lg_param_tensor(params[p]));
            const float *dw = lg_tensor_cdata(out[p + 1]);
            for (int64_t i = 0; i < lg_tensor_numel(out[p + 1]); i++) w[i] -= (float)lr * dw[i];
        }
    }
    printf("final loss %.6f\n", last);
    return 0;
}

int main(int argc, char **argv)
{
    args a = {.steps = 1000, .lr = 0.05, .seed = 1};
    const cli_flag flags[] = {CLI_STEPS(&a.steps), CLI_LR(&a.lr), CLI_SEED_FLAG(&a.seed), CLI_GRAPH_FLAGS(&a.out)};
    const cli c = {"nested_cell", "The Keras RNN guide's NestedCell learns a teacher cell's outputs and states.", flags,
                   CLI_COUNT(flags)};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_RUN) return rc;
    session S = {0};
    rc = run(&S, &a);
    for (int k = 0; k < 3; k++) lg_tensor_free(S.out[k]);
    for (int k = 0; k < 4; k++) lg_tensor_free(S.xt[k]), lg_tensor_free(S.yt[k]);
    lg_graph_free(S.g);
    return rc;
}
