/*
 * mlp_spirals.c — train a two-layer MLP on two interleaved spirals with plain
 * gradient descent, through the graph API only, and print the loss falling.
 *
 *     build/examples/mlp_spirals [steps] [--dot FILE] [--svg FILE]
 *
 * --dot and --svg write the graph, gradients included, before training.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph/loopgrad.h"
#include "viz/viz.h"

#define POINTS 200 /* per spiral */
#define HIDDEN 32
#define SEED 7

/* Two spirals, 2 * POINTS points [2 * POINTS, 2] with labels 0/1, a little
 * noise from the seeded generator. */
static void make_spirals(float *x, float *y)
{
    for (int i = 0; i < 2 * POINTS; i++) {
        int cls = i % 2;
        double t = (double)(i / 2) / POINTS * 3.0 * 3.14159265358979; /* 1.5 turns */
        double r = 0.2 + (double)(i / 2) / POINTS;
        double noise = 0.04 * (lg_philox_uniform(SEED, 99, (uint64_t)i) - 0.5);
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

int main(int argc, char **argv)
{
    lg_viz_args viz;
    lg_status s = lg_viz_args_parse(&argc, argv, &viz);
    if (s) return fail("arguments", s);
    int steps = argc > 1 ? atoi(argv[1]) : 6000;
    double lr = 0.5;
    printf("%s\n", lg_cpu_gemm_summary());
    lg_graph *g = lg_graph_new();

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
    s = lg_viz_args_write(g, &viz, lg_dot_opts_default());
    if (s) return fail("--dot/--svg", s);
    /* input scale: spread the spiral's radius over tanh's useful range */
    lg_init_glorot_uniform(lg_param_tensor(w1), SEED, 0);
    lg_init_glorot_uniform(lg_param_tensor(w2), SEED, 2);
    float *w1d = lg_tensor_data(lg_param_tensor(w1));
    for (int i = 0; i < 2 * HIDDEN; i++) w1d[i] *= 4.0f;

    lg_tensor *xt = NULL, *yt = NULL;
    lg_tensor_new(LG_F32, lg_shape_of(2, 2 * POINTS, 2), &xt);
    lg_tensor_new(LG_F32, lg_shape_of(2, 2 * POINTS, 1), &yt);
    make_spirals(lg_tensor_data(xt), lg_tensor_data(yt));
    lg_feed feeds[2] = {{x, xt}, {y, yt}};

    lg_value fetches[5] = {loss, grads[0], grads[1], grads[2], grads[3]};
    lg_tensor *out[5] = {NULL};
    for (int step = 0; step <= steps; step++) {
        s = lg_graph_run(g, feeds, 2, fetches, 5, out);
        if (s) return fail("run", s);
        if (step % (steps / 10 ? steps / 10 : 1) == 0)
            printf("step %5d  loss %.4f\n", step, lg_tensor_get(out[0], 0));
        for (int p = 0; p < 4; p++) {
            float *w = lg_tensor_data(lg_param_tensor(params[p]));
            const float *dw = lg_tensor_cdata(out[p + 1]);
            for (int64_t i = 0; i < lg_tensor_numel(out[p + 1]); i++) w[i] -= (float)lr * dw[i];
        }
    }

    lg_tensor *pred = NULL;
    s = lg_graph_run(g, feeds, 2, &logits, 1, &pred);
    if (s) return fail("predict", s);
    int correct = 0;
    for (int i = 0; i < 2 * POINTS; i++) correct += (lg_tensor_get(pred, i) > 0) == (lg_tensor_get(yt, i) > 0.5);
    printf("accuracy %.3f on %d points\n", (double)correct / (2 * POINTS), 2 * POINTS);

    lg_tensor_free(pred);
    for (int i = 0; i < 5; i++) lg_tensor_free(out[i]);
    lg_tensor_free(xt);
    lg_tensor_free(yt);
    lg_graph_free(g);
    return 0;
}
