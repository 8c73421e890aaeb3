/*
 * mlp_spirals.c — train a two-layer MLP on two interleaved spirals with plain
 * gradient descent, through the graph API only, and print the loss falling.
 *
 *     build/examples/mlp_spirals [--steps N] [--lr X] [--seed N] [--dot FILE] [--svg FILE]
 *
 * --dot and --svg write the graph, gradients included, before training;
 * --seed picks the noise and the initial weights; --help lists the flags.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/cli.h"
#include "graph/loopgrad.h"

#define POINTS 200 /* per spiral */
#define HIDDEN 32

/* Two spirals, 2 * POINTS points [2 * POINTS, 2] with labels 0/1, a little
 * noise from the seeded generator. */
static void make_spirals(uint64_t seed, float *x, float *y)
{
    for (int i = 0; i < 2 * POINTS; i++) {
        int cls = i % 2;
        double t = (double)(i / 2) / POINTS * 3.0 * 3.14159265358979; /* 1.5 turns */
        double r = 0.2 + (double)(i / 2) / POINTS;
        double noise = 0.04 * (lg_philox_uniform(seed, 99, (uint64_t)i) - 0.5);
        double sign = cls ? -1.0 : 1.0;
        x[2 * i] = (float)(sign * (r + noise) * cos(t));
        x[2 * i + 1] = (float)(sign * (r + noise) * sin(t));
        y[i] = (float)cls;
    }
}

static int fail(const char *what, lg_status s)
{
    fprintf(stderr, "mlp_spirals: %s: %s: %s\n", what, lg_status_name(s), lg_last_error());
    return 1;
}

typedef cli_step_args args;

/* Everything run allocates, freed in one place whatever step failed. */
typedef struct session {
    lg_graph *g;
    lg_tensor *xt, *yt, *out[5], *pred;
} session;

static int run(session *S, const args *a)
{
    lg_status s;
    lg_graph *g = S->g = lg_graph_new();

    /* model: logits = tanh(x W1 + b1) W2 + b2 */
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 2));
    lg_value y = lg_input(g, "y", LG_F32, lg_shape_of(2, -1, 1));
    lg_scope_push(g, "hidden");
    lg_value w1 = lg_param(g, "kernel", LG_F32, lg_shape_of(2, 2, HIDDEN));
    lg_value b1 = lg_param(g, "bias", LG_F32, lg_shape_of(1, HIDDEN));
    lg_value h = lg_tanh(lg_add(lg_matmul(x, w1, false, false), b1));
    lg_scope_pop(g);
    lg_scope_push(g, "out");
    lg_value w2 = lg_param(g, "kernel", LG_F32, lg_shape_of(2, HIDDEN, 1));
    lg_value b2 = lg_param(g, "bias", LG_F32, lg_shape_of(1, 1));
    lg_value logits = lg_add(lg_matmul(h, w2, false, false), b2);
    lg_scope_pop(g);
    lg_value loss = lg_binary_crossentropy(y, logits, true);

    /* gradients are graph too; an SGD step is w -= lr * dw */
    lg_value params[4] = {w1, b1, w2, b2}, grads[4];
    s = lg_grad(g, loss, params, 4, grads);
    if (s) return fail("lg_grad", s);
    s = cli_write_graph(&a->out, g);
    if (s) return fail("--dot/--svg", s);
    /* input scale: spread the spiral's radius over tanh's useful range */
    lg_init_glorot_uniform(lg_param_tensor(w1), a->seed, 0);
    lg_init_glorot_uniform(lg_param_tensor(w2), a->seed, 2);
    float *w1d = lg_tensor_data(lg_param_tensor(w1));
    for (int i = 0; i < 2 * HIDDEN; i++) w1d[i] *= 4.0f;

    if (lg_tensor_new(LG_F32, lg_shape_of(2, 2 * POINTS, 2), &S->xt) ||
        lg_tensor_new(LG_F32, lg_shape_of(2, 2 * POINTS, 1), &S->yt))
        return fail("data", LG_ERR_OUT_OF_MEMORY);
    make_spirals(a->seed, lg_tensor_data(S->xt), lg_tensor_data(S->yt));
    lg_feed feeds[2] = {{x, S->xt}, {y, S->yt}};

    lg_value fetches[5] = {loss, grads[0], grads[1], grads[2], grads[3]};
    int steps = a->steps;
    for (int step = 0; step <= steps; step++) {
        s = lg_graph_run(g, feeds, 2, fetches, 5, S->out);
        if (s) return fail("run", s);
        if (step % (steps / 10 ? steps / 10 : 1) == 0)
            printf("step %5d  loss %.4f\n", step, lg_tensor_get(S->out[0], 0));
        for (int p = 0; p < 4; p++) {
            float *w = lg_tensor_data(lg_param_tensor(params[p]));
            const float *dw = lg_tensor_cdata(S->out[p + 1]);
            for (int64_t i = 0; i < lg_tensor_numel(S->out[p + 1]); i++) w[i] -= (float)a->lr * dw[i];
        }
    }

    s = lg_graph_run(g, feeds, 2, &logits, 1, &S->pred);
    if (s) return fail("predict", s);
    int correct = 0;
    for (int i = 0; i < 2 * POINTS; i++)
        correct += (lg_tensor_get(S->pred, i) > 0) == (lg_tensor_get(S->yt, i) > 0.5);
    printf("accuracy %.3f on %d points\n", (double)correct / (2 * POINTS), 2 * POINTS);
    return 0;
}

int main(int argc, char **argv)
{
    args a = {.steps = 6000, .lr = 0.5, .seed = 7};
    const cli_flag flags[] = {CLI_STEPS(&a.steps), CLI_LR(&a.lr), CLI_SEED_FLAG(&a.seed), CLI_GRAPH_FLAGS(&a.out)};
    const cli c = {"mlp_spirals", "A two-layer MLP learns two interleaved spirals with plain gradient descent.", flags,
                   CLI_COUNT(flags)};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_RUN) return rc;
    session S = {0};
    rc = run(&S, &a);
    lg_tensor_free(S.pred);
    for (int i = 0; i < 5; i++) lg_tensor_free(S.out[i]);
    lg_tensor_free(S.xt), lg_tensor_free(S.yt);
    lg_graph_free(S.g);
    return rc;
}
