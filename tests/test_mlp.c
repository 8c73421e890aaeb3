/*
 * test_mlp.c — the foundation's proof: a two-layer MLP written only with the
 * graph API learns a non-linear task with plain gradient descent.
 *
 * Task: 2-D points in [-1, 1]^2, class 1 inside the ring 0.35 < r < 0.75,
 * class 0 elsewhere; not linearly separable. Model: relu hidden layer of 32,
 * two logits, sparse categorical cross-entropy from logits.
 * Threshold: training loss below 0.12 and accuracy above 0.95 after 8000
 * full-batch steps at learning rate 1 (the loss starts at about ln 2).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "test_util.h"
#include "graph/loopgrad.h"

#define N 256
#define HIDDEN 32
#define STEPS 8000
#define LR 1.0

static void make_ring(lg_tensor *x, lg_tensor *labels)
{
    for (int i = 0; i < N; i++) {
        double a = 2 * lg_philox_uniform(11, 0, (uint64_t)i) - 1, b = 2 * lg_philox_uniform(11, 1, (uint64_t)i) - 1;
        double r = sqrt(a * a + b * b);
        lg_tensor_set(x, 2 * i, a);
        lg_tensor_set(x, 2 * i + 1, b);
        lg_tensor_set(labels, i, r > 0.35 && r < 0.75);
    }
}

START_TEST(mlp_learns_ring)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, 2));
    lg_value labels = lg_input(g, "labels", LG_I32, lg_shape_of(1, -1));
    lg_value w1 = lg_param(g, "w1", LG_F32, lg_shape_of(2, 2, HIDDEN));
    lg_value b1 = lg_param(g, "b1", LG_F32, lg_shape_of(1, HIDDEN));
    lg_value w2 = lg_param(g, "w2", LG_F32, lg_shape_of(2, HIDDEN, 2));
    lg_value b2 = lg_param(g, "b2", LG_F32, lg_shape_of(1, 2));
    lg_value h = lg_relu(lg_add(lg_matmul(x, w1, false, false), b1));
    lg_value logits = lg_add(lg_matmul(h, w2, false, false), b2);
    lg_value loss = lg_sparse_categorical_crossentropy(labels, logits, true);
    lg_value params[4] = {w1, b1, w2, b2}, grads[4];
    ck_assert_int_eq(lg_grad(g, loss, params, 4, grads), LG_OK);
    ck_assert_ptr_null(lg_graph_error(g));
    lg_init_glorot_uniform(lg_param_tensor(w1), 3, 0);
    lg_init_uniform(lg_param_tensor(b1), -0.5, 0.5, 3, 1);
    lg_init_glorot_uniform(lg_param_tensor(w2), 3, 2);

    lg_tensor *xt = NULL, *lt = NULL;
    lg_tensor_new(LG_F32, lg_shape_of(2, N, 2), &xt);
    lg_tensor_new(LG_I32, lg_shape_of(1, N), &lt);
    make_ring(xt, lt);
    lg_feed feeds[2] = {{x, xt}, {labels, lt}};
    lg_value fetches[5] = {loss, grads[0], grads[1], grads[2], grads[3]};
    lg_tensor *out[5] = {NULL};
    double first = 0, last = 0;
    for (int step = 0; step < STEPS; step++) {
        ck_assert_int_eq(lg_graph_run(g, feeds, 2, fetches, 5, out), LG_OK);
        last = lg_tensor_get(out[0], 0);
        if (step == 0) first = last;
        for (int p = 0; p < 4; p++) {
            float *w = lg_tensor_data(lg_param_tensor(params[p]));
            const float *dw = lg_tensor_cdata(out[p + 1]);
            for (int64_t i = 0; i < lg_tensor_numel(out[p + 1]); i++) w[i] -= (float)LR * dw[i];
        }
    }
    lg_tensor *pred = NULL;
    ck_assert_int_eq(lg_graph_run(g, feeds, 2, &logits, 1, &pred), LG_OK);
    int correct = 0;
    for (int i = 0; i < N; i++) {
        int cls = lg_tensor_get(pred, 2 * i + 1) > lg_tensor_get(pred, 2 * i);
        correct += cls == (int)lg_tensor_get(lt, i);
    }
    double acc = (double)correct / N;
    ck_assert_msg(first > 0.6, "initial loss %.4f should be near ln 2", first);
    ck_assert_msg(last < 0.12 && isfinite(last), "final loss %.4f, expected below 0.12", last);
    ck_assert_msg(acc > 0.95, "accuracy %.3f, expected above 0.95", acc);
    /* one program, cached and reused every step */
    ck_assert_int_eq(lg_graph_program_count(g), 2);

    lg_tensor_free(pred);
    for (int i = 0; i < 5; i++) lg_tensor_free(out[i]);
    lg_tensor_free(xt);
    lg_tensor_free(lt);
    lg_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mlp");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, mlp_learns_ring);
    suite_add_tcase(s, tc);
    return lg_check_run(s);
}
