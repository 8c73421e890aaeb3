/*
 * test_autodiff.c — reverse-mode differentiation (autodiff.h) through the
 * public API: gradients against hand-computed values, fan-out, broadcasting,
 * pruning of branches that do not reach the loss, naming, repeated calls,
 * stop_gradient, and the errors lg_grad() documents.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"

LG_TEST_GRAPH_FIXTURE

static lg_tensor *tensor_f64(lg_shape shape, const double *vals) { return lg_test_tensor(LG_F64, shape, vals); }

static void grad_ok(lg_value loss, const lg_value *wrt, int n, lg_value *grads)
{
    lg_status s = lg_grad(g, loss, wrt, n, grads);
    ck_assert_msg(s == LG_OK, "lg_grad: %s: %s (graph error: %s)", lg_status_name(s), lg_last_error(),
                  lg_graph_error(g) ? lg_graph_error(g) : "none");
    for (int i = 0; i < n; i++) {
        ck_assert(lg_value_ok(grads[i]));
        ck_assert(lg_shape_equal(lg_value_shape(grads[i]), lg_value_shape(wrt[i])));
        ck_assert_int_eq(lg_value_dtype(grads[i]), lg_value_dtype(wrt[i]));
    }
}

/* Runs g for one fetch, asserting success; the caller frees the result. */
static lg_tensor *run1(const lg_feed *feeds, int n_feeds, lg_value fetch) { return lg_test_run1(g, feeds, n_feeds, fetch); }

#define ck_assert_close(got, want, tol)                                                              \
    do {                                                                                             \
        double got_ = (got), want_ = (want);                                                         \
        ck_assert_msg(fabs(got_ - want_) <= (tol) * fmax(1.0, fabs(want_)), "got %.12g, want %.12g", \
                      got_, want_);                                                                  \
    } while (0)

static int count_grad_nodes(void)
{
    int n = 0;
    for (int i = 0; i < lg_graph_node_count(g); i++) n += lg_graph_node_is_grad(g, i);
    return n;
}

/* ---- values ------------------------------------------------------------------ */

START_TEST(test_grad_sum_of_squared_matmul)
{
    /* L = sum((x w)^2), dL/dw = 2 x^T (x w) */
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, 2, 3));
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(2, 3, 2));
    lg_value loss = lg_sum(lg_square(lg_matmul(x, w, false, false)), NULL, 0, false);
    const double xv[6] = {1, 2, 3, -1, 0, 2};
    const double wv[6] = {0.5, -1, 2, 0, -0.5, 1};
    lg_tensor_copy_in(lg_param_tensor(w), wv, sizeof wv);
    lg_value gw;
    grad_ok(loss, &w, 1, &gw);

    double xw[2][2] = {{0}};
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 3; k++) xw[r][c] += xv[r * 3 + k] * wv[k * 2 + c];
    lg_tensor *xt = tensor_f64(lg_shape_of(2, 2, 3), xv);
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, gw);
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < 2; c++) {
            double want = 0;
            for (int r = 0; r < 2; r++) want += 2 * xv[r * 3 + k] * xw[r][c];
            ck_assert_close(lg_tensor_get(out, k * 2 + c), want, 1e-12);
        }
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_grad_fan_out)
{
    /* y = x*x + x, L = sum(y), dL/dx = 2x + 1 (x is an input placeholder) */
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 4));
    lg_value loss = lg_sum(lg_add(lg_mul(x, x), x), NULL, 0, false);
    lg_value gx;
    grad_ok(loss, &x, 1, &gx);
    const double xv[4] = {-1.5, 0, 2, 3.25};
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 4), xv);
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, gx);
    for (int i = 0; i < 4; i++) ck_assert_close(lg_tensor_get(out, i), 2 * xv[i] + 1, 1e-12);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_grad_broadcast_bias_is_column_sums)
{
    /* L = sum(c * (h + b)) with b [4] broadcast over h [B, 4]: dL/db = column sums of c */
    lg_value h = lg_input(g, "h", LG_F64, lg_shape_of(2, -1, 4));
    lg_value c = lg_input(g, "c", LG_F64, lg_shape_of(2, -1, 4));
    lg_value b = lg_param(g, "b", LG_F64, lg_shape_of(1, 4));
    lg_value loss = lg_sum(lg_mul(c, lg_add(h, b)), NULL, 0, false);
    lg_value wrt[2] = {b, h}, grads[2];
    grad_ok(loss, wrt, 2, grads);

    for (int batch = 3; batch <= 5; batch += 2) {
        lg_tensor *ht = tensor_f64(lg_shape_of(2, batch, 4), NULL);
        lg_tensor *ct = tensor_f64(lg_shape_of(2, batch, 4), NULL);
        for (int i = 0; i < batch * 4; i++) {
            lg_tensor_set(ht, i, 0.25 * i);
            lg_tensor_set(ct, i, (i % 5) - 1.5 + i);
        }
        lg_feed f[2] = {{h, ht}, {c, ct}};
        lg_tensor *out[2] = {NULL, NULL};
        ck_assert_int_eq(lg_graph_run(g, f, 2, grads, 2, out), LG_OK);
        ck_assert(lg_shape_equal(lg_tensor_shape(out[0]), lg_shape_of(1, 4)));
        ck_assert(lg_shape_equal(lg_tensor_shape(out[1]), lg_shape_of(2, batch, 4)));
        for (int col = 0; col < 4; col++) {
            double want = 0;
            for (int r = 0; r < batch; r++) want += lg_tensor_get(ct, r * 4 + col);
            ck_assert_close(lg_tensor_get(out[0], col), want, 1e-12);
        }
        /* dL/dh = c */
        for (int i = 0; i < batch * 4; i++) ck_assert_close(lg_tensor_get(out[1], i), lg_tensor_get(ct, i), 1e-12);
        lg_tensor_free(out[0]);
        lg_tensor_free(out[1]);
        lg_tensor_free(ht);
        lg_tensor_free(ct);
    }
}
END_TEST

START_TEST(test_grad_mean_and_tanh_f32)
{
    /* L = mean(tanh(x)), dL/dx = (1 - tanh(x)^2) / n, in f32 */
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, 2, 3));
    lg_value loss = lg_mean(lg_tanh(x), NULL, 0, false);
    lg_value gx;
    grad_ok(loss, &x, 1, &gx);
    lg_tensor *xt = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(2, 2, 3), &xt), LG_OK);
    for (int i = 0; i < 6; i++) lg_tensor_set(xt, i, 0.3 * i - 0.7);
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, gx);
    ck_assert_int_eq(lg_tensor_dtype(out), LG_F32);
    for (int i = 0; i < 6; i++) {
        double t = tanh(lg_tensor_get(xt, i));
        ck_assert_close(lg_tensor_get(out, i), (1 - t * t) / 6, 1e-6);
    }
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_grad_wrt_intermediate)
{
    /* h = tanh(x), L = sum(h^2): dL/dh = 2h */
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value h = lg_tanh(x);
    lg_value loss = lg_sum(lg_square(h), NULL, 0, false);
    lg_value gh;
    grad_ok(loss, &h, 1, &gh);
    const double xv[3] = {-0.4, 0.1, 0.9};
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 3), xv);
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, gh);
    for (int i = 0; i < 3; i++) ck_assert_close(lg_tensor_get(out, i), 2 * tanh(xv[i]), 1e-12);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_grad_unit_shaped_loss)
{
    /* a loss of shape [1, 1] counts as a scalar */
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, 1, 3));
    const int ax[] = {1};
    lg_value loss = lg_sum(lg_scale(x, 3.0), ax, 1, true); /* [1, 1] */
    ck_assert(lg_shape_equal(lg_value_shape(loss), lg_shape_of(2, 1, 1)));
    lg_value gx;
    grad_ok(loss, &x, 1, &gx);
    lg_tensor *xt = tensor_f64(lg_shape_of(2, 1, 3), (const double[]){1, 2, 3});
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, gx);
    for (int i = 0; i < 3; i++) ck_assert_close(lg_tensor_get(out, i), 3.0, 1e-12);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_grad_unreachable_is_zeros)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 3));
    lg_value u = lg_param(g, "unused", LG_F64, lg_shape_of(2, 2, 5));
    lg_tensor_fill(lg_param_tensor(u), 7.0);
    lg_tensor_fill(lg_param_tensor(w), 2.0);
    lg_value loss = lg_sum(lg_mul(x, w), NULL, 0, false);
    lg_value wrt[2] = {u, w}, grads[2];
    grad_ok(loss, wrt, 2, grads);
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 3), (const double[]){1, 2, 3});
    lg_feed f = {x, xt};
    lg_tensor *out[2] = {NULL, NULL};
    ck_assert_int_eq(lg_graph_run(g, &f, 1, grads, 2, out), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(out[0]), lg_shape_of(2, 2, 5)));
    ck_assert_int_eq(lg_tensor_dtype(out[0]), LG_F64);
    for (int i = 0; i < 10; i++) ck_assert(lg_tensor_get(out[0], i) == 0.0);
    for (int i = 0; i < 3; i++) ck_assert_close(lg_tensor_get(out[1], i), i + 1, 1e-12);
    lg_tensor_free(out[0]);
    lg_tensor_free(out[1]);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_grad_stop_gradient)
{
    /* L = sum(stop(x) * x): dL/dx = x, not 2x */
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value loss = lg_sum(lg_mul(lg_stop_gradient(x), x), NULL, 0, false);
    /* L2 = sum(stop(x * x)): no gradient at all */
    lg_value loss2 = lg_sum(lg_stop_gradient(lg_mul(x, x)), NULL, 0, false);
    lg_value gx, gx2;
    grad_ok(loss, &x, 1, &gx);
    grad_ok(loss2, &x, 1, &gx2);
    const double xv[3] = {-2, 0.5, 3};
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 3), xv);
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, gx);
    for (int i = 0; i < 3; i++) ck_assert_close(lg_tensor_get(out, i), xv[i], 1e-12);
    lg_tensor_free(out);
    out = run1(&f, 1, gx2);
    for (int i = 0; i < 3; i++) ck_assert(lg_tensor_get(out, i) == 0.0);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_grad_through_compare_is_zero)
{
    /* compare is not differentiable: L = sum(compare(x, 0) * 5) has zero gradient */
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value loss = lg_sum(lg_scale(lg_compare(x, lg_scalar(g, LG_F64, 0.0), LG_CMP_GT), 5.0), NULL, 0, false);
    lg_value gx;
    grad_ok(loss, &x, 1, &gx);
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 3), (const double[]){-1, 0.5, 2});
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, gx);
    for (int i = 0; i < 3; i++) ck_assert(lg_tensor_get(out, i) == 0.0);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

/* ---- graph structure ------------------------------------------------------------- */

START_TEST(test_grad_nodes_named_and_flagged)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, -1, 3));
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(2, 3, 2));
    lg_value loss = lg_mean(lg_tanh(lg_matmul(x, w, false, false)), NULL, 0, false);
    int before = lg_graph_node_count(g);
    ck_assert_int_eq(count_grad_nodes(), 0);
    lg_value gw;
    grad_ok(loss, &w, 1, &gw);
    int after = lg_graph_node_count(g);
    ck_assert_int_gt(after, before);
    ck_assert_int_gt(count_grad_nodes(), 0);
    for (int i = 0; i < after; i++) {
        const char *name = lg_graph_node_name(g, i);
        if (i < before) {
            ck_assert(!lg_graph_node_is_grad(g, i));
            ck_assert_msg(strncmp(name, "grad/", 5) != 0, "forward node named %s", name);
        } else if (lg_graph_node_is_grad(g, i)) {
            ck_assert_msg(strncmp(name, "grad/", 5) == 0, "grad node %d named %s", i, name);
        }
    }
    ck_assert(lg_graph_node_is_grad(g, gw.node));
    ck_assert_int_eq(strncmp(lg_value_name(gw), "grad/", 5), 0);
}
END_TEST

/* Builds loss = sum(tanh(x) * w) on g, optionally with branches that do not
 * reach the loss, differentiates w.r.t. w and x, and returns the number of
 * grad nodes added. *side gets the first node of the unrelated branch. */
static int grad_nodes_for(bool with_side_branches, int *side_first, int *side_last)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 4));
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 4));
    lg_value t = lg_tanh(x);
    *side_first = lg_graph_node_count(g);
    if (with_side_branches) {
        /* consumes x and t, but the loss never reads it */
        lg_value s = lg_exp(lg_mul(t, x));
        s = lg_sum(lg_sigmoid(s), NULL, 0, false);
        (void)s;
    }
    *side_last = lg_graph_node_count(g);
    lg_value loss = lg_sum(lg_mul(t, w), NULL, 0, false);
    int before = count_grad_nodes();
    lg_value wrt[2] = {w, x}, grads[2];
    grad_ok(loss, wrt, 2, grads);
    return count_grad_nodes() - before;
}

START_TEST(test_grad_prunes_unrelated_branches)
{
    int s0, s1;
    int plain = grad_nodes_for(false, &s0, &s1);
    lg_graph_free(g);
    g = lg_graph_new();
    int with_side = grad_nodes_for(true, &s0, &s1);
    ck_assert_int_gt(s1, s0);
    ck_assert_int_eq(with_side, plain);
    /* no grad node reads a node of the unrelated branch */
    for (int i = 0; i < lg_graph_node_count(g); i++) {
        if (!lg_graph_node_is_grad(g, i)) continue;
        for (int k = 0; k < lg_graph_node_input_count(g, i); k++) {
            int src = lg_graph_node_input(g, i, k).node;
            ck_assert_msg(src < s0 || src >= s1, "grad node %s reads side node %s", lg_graph_node_name(g, i),
                          lg_graph_node_name(g, src));
        }
    }
}
END_TEST

START_TEST(test_grad_twice_same_values)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 3));
    lg_tensor_copy_in(lg_param_tensor(w), (const double[]){0.5, -1, 2}, 3 * sizeof(double));
    lg_value loss = lg_sum(lg_exp(lg_mul(x, w)), NULL, 0, false);
    lg_value g1, g2;
    grad_ok(loss, &w, 1, &g1);
    int n1 = lg_graph_node_count(g);
    grad_ok(loss, &w, 1, &g2);
    int n2 = lg_graph_node_count(g);
    ck_assert_int_gt(n2, n1);
    ck_assert(!lg_value_same(g1, g2));
    ck_assert_ptr_null(lg_graph_error(g));

    const double xv[3] = {1, 2, -1};
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 3), xv);
    lg_feed f = {x, xt};
    lg_value fetches[2] = {g1, g2};
    lg_tensor *out[2] = {NULL, NULL};
    ck_assert_int_eq(lg_graph_run(g, &f, 1, fetches, 2, out), LG_OK);
    const double wv[3] = {0.5, -1, 2};
    for (int i = 0; i < 3; i++) {
        double want = xv[i] * exp(xv[i] * wv[i]);
        ck_assert_close(lg_tensor_get(out[0], i), want, 1e-12);
        ck_assert(lg_tensor_get(out[0], i) == lg_tensor_get(out[1], i));
    }
    lg_tensor_free(out[0]);
    lg_tensor_free(out[1]);
    lg_tensor_free(xt);
}
END_TEST

START_TEST(test_grad_of_grad_loss)
{
    /* a second lg_grad on a loss built from a gradient: L = x^3 summed, then
     * L2 = sum(dL/dx) = sum(3x^2), dL2/dx = 6x */
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value loss = lg_sum(lg_pow(x, 3.0), NULL, 0, false);
    lg_value gx, ggx;
    grad_ok(loss, &x, 1, &gx);
    lg_value loss2 = lg_sum(gx, NULL, 0, false);
    grad_ok(loss2, &x, 1, &ggx);
    const double xv[3] = {1, -2, 0.5};
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 3), xv);
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, ggx);
    for (int i = 0; i < 3; i++) ck_assert_close(lg_tensor_get(out, i), 6 * xv[i], 1e-10);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

/* Second order through slice: slice's gradient is unslice (zeros around
 * the piece), whose own gradient slices again. L = sum(slice(x)^3) over
 * columns [1, 3) of x [2, 4]; L2 = sum(dL/dx * R), so dL2/dx is
 * 6 x R inside the piece and 0 outside; checked in closed form and against
 * central differences. */
START_TEST(test_grad_of_grad_through_slice)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, 2, 4));
    lg_value loss = lg_sum(lg_pow(lg_slice(x, 1, 1, 2), 3.0), NULL, 0, false);
    lg_value gx, ggx;
    grad_ok(loss, &x, 1, &gx);
    const double rv[8] = {0.5, -1, 2, 0.25, 1.5, -0.75, 1, 3};
    lg_tensor *rt = tensor_f64(lg_shape_of(2, 2, 4), rv);
    lg_value loss2 = lg_sum(lg_mul(gx, lg_constant(g, "r", rt)), NULL, 0, false);
    grad_ok(loss2, &x, 1, &ggx);
    const double xv[8] = {1, -2, 0.5, 3, -1.5, 2.5, -0.25, 0.75};
    lg_tensor *xt = tensor_f64(lg_shape_of(2, 2, 4), xv);
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, ggx);
    for (int i = 0; i < 8; i++) {
        int col = i % 4;
        double want = col >= 1 && col < 3 ? 6 * xv[i] * rv[i] : 0;
        ck_assert_close(lg_tensor_get(out, i), want, 1e-10);
    }
    lg_gradcheck_report rep;
    ck_assert_int_eq(lg_gradcheck(g, loss2, &x, 1, &f, 1, lg_gradcheck_opts_default(), &rep), LG_OK);
    ck_assert_msg(rep.passed && rep.checked == 8, "worst %s[%lld]: analytic %g, numeric %g", rep.worst_name,
                  (long long)rep.worst_index, rep.analytic, rep.numeric);
    lg_tensor_free(out);
    lg_tensor_free(xt);
    lg_tensor_free(rt);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------ */

static void assert_all_invalid(const lg_value *grads, int n)
{
    for (int i = 0; i < n; i++) ck_assert(!lg_value_ok(grads[i]));
}

START_TEST(test_grad_non_scalar_loss)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value loss = lg_square(x); /* [3] */
    lg_value gx = {g, 0, 0};
    ck_assert_int_eq(lg_grad(g, loss, &x, 1, &gx), LG_ERR_SHAPE);
    assert_all_invalid(&gx, 1);
    ck_assert_str_ne(lg_last_error(), "");
    lg_value y = lg_input(g, "y", LG_F64, lg_shape_of(2, -1, 1));
    lg_value loss2 = lg_square(y); /* [?, 1]: not known to be a scalar */
    ck_assert_int_eq(lg_grad(g, loss2, &y, 1, &gx), LG_ERR_SHAPE);
}
END_TEST

START_TEST(test_grad_int_loss)
{
    lg_value i = lg_input(g, "i", LG_I32, lg_shape_of(1, 3));
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value loss = lg_sum(i, NULL, 0, false);
    lg_value gx = {g, 0, 0};
    ck_assert_int_eq(lg_grad(g, loss, &x, 1, &gx), LG_ERR_DTYPE);
    assert_all_invalid(&gx, 1);
    /* a float loss with an int wrt */
    lg_value floss = lg_sum(x, NULL, 0, false);
    gx = (lg_value){g, 0, 0};
    ck_assert_int_eq(lg_grad(g, floss, &i, 1, &gx), LG_ERR_DTYPE);
    assert_all_invalid(&gx, 1);
}
END_TEST

START_TEST(test_grad_invalid_arguments)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value loss = lg_sum(x, NULL, 0, false);
    lg_value gx[2];
    ck_assert_int_eq(lg_grad(NULL, loss, &x, 1, gx), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_grad(g, lg_value_invalid(), &x, 1, gx), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_grad(g, loss, NULL, 1, gx), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_grad(g, loss, &x, 1, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_grad(g, loss, &x, -1, gx), LG_ERR_INVALID_ARGUMENT);
    lg_value bad_wrt[2] = {x, lg_value_invalid()};
    gx[0] = gx[1] = (lg_value){g, 0, 0};
    ck_assert_int_eq(lg_grad(g, loss, bad_wrt, 2, gx), LG_ERR_INVALID_ARGUMENT);
    assert_all_invalid(gx, 2);

    lg_graph *other = lg_graph_new();
    lg_value ox = lg_input(other, "x", LG_F64, lg_shape_of(1, 3));
    lg_value oloss = lg_sum(ox, NULL, 0, false);
    ck_assert_int_eq(lg_grad(g, loss, &ox, 1, gx), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_grad(g, oloss, &x, 1, gx), LG_ERR_INVALID_ARGUMENT);
    lg_graph_free(other);
    /* none of this is a builder error on g */
    ck_assert_ptr_null(lg_graph_error(g));
}
END_TEST

START_TEST(test_grad_graph_with_error)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value loss = lg_sum(x, NULL, 0, false);
    lg_value y = lg_input(g, "y", LG_F64, lg_shape_of(1, 4));
    ck_assert(!lg_value_ok(lg_add(x, y)));
    lg_value gx = {g, 0, 0};
    ck_assert_int_eq(lg_grad(g, loss, &x, 1, &gx), LG_ERR_GRAPH);
    assert_all_invalid(&gx, 1);
}
END_TEST

START_TEST(test_grad_unknown_dims_broadcast_at_compile)
{
    /* a [?, 3] and b [?, 3] both unknown at build time, fed [1, 3] and [4, 3]:
     * the gradient of a must be summed back to [1, 3] at compile time */
    lg_value a = lg_input(g, "a", LG_F64, lg_shape_of(2, -1, 3));
    lg_value b = lg_input(g, "b", LG_F64, lg_shape_of(2, -1, 3));
    lg_value loss = lg_sum(lg_mul(a, b), NULL, 0, false);
    lg_value wrt[2] = {a, b}, grads[2];
    grad_ok(loss, wrt, 2, grads);
    lg_tensor *at = tensor_f64(lg_shape_of(2, 1, 3), (const double[]){2, 2, 2});
    lg_tensor *bt = tensor_f64(lg_shape_of(2, 4, 3), NULL);
    for (int i = 0; i < 12; i++) lg_tensor_set(bt, i, i);
    lg_feed f[2] = {{a, at}, {b, bt}};
    lg_tensor *out[2] = {NULL, NULL};
    ck_assert_int_eq(lg_graph_run(g, f, 2, grads, 2, out), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(out[0]), lg_shape_of(2, 1, 3)));
    ck_assert(lg_shape_equal(lg_tensor_shape(out[1]), lg_shape_of(2, 4, 3)));
    for (int c = 0; c < 3; c++) ck_assert_close(lg_tensor_get(out[0], c), 18 + 4 * c, 1e-12);
    for (int i = 0; i < 12; i++) ck_assert_close(lg_tensor_get(out[1], i), 2, 1e-12);
    lg_tensor_free(out[0]);
    lg_tensor_free(out[1]);
    lg_tensor_free(at);
    lg_tensor_free(bt);
}
END_TEST

START_TEST(test_grad_of_loss_wrt_itself_is_one)
{
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 3));
    lg_value loss = lg_sum(lg_exp(x), NULL, 0, false);
    lg_value gl;
    grad_ok(loss, &loss, 1, &gl);
    lg_tensor *xt = tensor_f64(lg_shape_of(1, 3), (const double[]){0, 1, 2});
    lg_feed f = {x, xt};
    lg_tensor *out = run1(&f, 1, gl);
    ck_assert(lg_tensor_get(out, 0) == 1.0);
    lg_tensor_free(out);
    lg_tensor_free(xt);
}
END_TEST

static Suite *autodiff_suite(void)
{
    Suite *s = suite_create("autodiff");
    TCase *tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_grad_sum_of_squared_matmul);
    tcase_add_test(tc, test_grad_fan_out);
    tcase_add_test(tc, test_grad_broadcast_bias_is_column_sums);
    tcase_add_test(tc, test_grad_mean_and_tanh_f32);
    tcase_add_test(tc, test_grad_wrt_intermediate);
    tcase_add_test(tc, test_grad_unit_shaped_loss);
    tcase_add_test(tc, test_grad_unreachable_is_zeros);
    tcase_add_test(tc, test_grad_stop_gradient);
    tcase_add_test(tc, test_grad_through_compare_is_zero);
    tcase_add_test(tc, test_grad_unknown_dims_broadcast_at_compile);
    tcase_add_test(tc, test_grad_of_loss_wrt_itself_is_one);
    suite_add_tcase(s, tc);

    tc = tcase_create("structure");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_grad_nodes_named_and_flagged);
    tcase_add_test(tc, test_grad_prunes_unrelated_branches);
    tcase_add_test(tc, test_grad_twice_same_values);
    tcase_add_test(tc, test_grad_of_grad_loss);
    tcase_add_test(tc, test_grad_of_grad_through_slice);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_grad_non_scalar_loss);
    tcase_add_test(tc, test_grad_int_loss);
    tcase_add_test(tc, test_grad_invalid_arguments);
    tcase_add_test(tc, test_grad_graph_with_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lg_check_run(autodiff_suite());
}
