/*
 * test_custom_cells.c — the user-defined cells of examples/cells (a peephole
 * LSTM and the Keras guide's NestedCell), built with the loop builder API:
 * f64 gradients through loops of 1, 2 and 7 steps against finite
 * differences, with respect to every parameter, the input sequences and the
 * initial states; and their values against recurrences written out in C.
 */
#include <check.h>
#include <math.h>

#include "test_util.h"
#include "graph/loopgrad.h"
#include "../examples/cells/nested.h"
#include "../examples/cells/peephole.h"

#define SEED 11

LG_TEST_GRAPH_FIXTURE

static const int lengths[] = {1, 2, 7}; /* loop-test index -> T */

static lg_tensor *filled(lg_shape s, uint64_t key) { return lg_test_uniform(LG_F64, s, SEED, key, -1, 1); }

/* sum(y * R) with a fixed random R of y's shape: every element of y reaches
 * the loss with its own weight. */
static lg_value weigh(lg_value y, uint64_t key)
{
    lg_tensor *r = filled(lg_value_shape(y), 1000 + key);
    lg_value rv = lg_constant(g, "R", r);
    lg_tensor_free(r);
    return lg_sum(lg_mul(y, rv), NULL, 0, false);
}

/* Gradcheck loss w.r.t. wrt; every element of every wrt value is compared. */
static void expect_gradients(lg_value loss, const lg_value *wrt, int n_wrt, const lg_feed *feeds, int n_feeds)
{
    ck_assert_msg(lg_graph_error(g) == NULL, "graph error: %s", lg_graph_error(g));
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, wrt, n_wrt, feeds, n_feeds, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_OK, "gradcheck: %s: %s", lg_status_name(s), lg_last_error());
    ck_assert_msg(rep.passed, "worst %s[%lld]: analytic %.10g vs numeric %.10g", rep.worst_name, rep.worst_index,
                  rep.analytic, rep.numeric);
    long long numel = 0;
    for (int i = 0; i < n_wrt; i++) numel += lg_shape_numel(lg_value_shape(wrt[i]));
    ck_assert_int_eq(rep.checked, numel);
}

/* ---- peephole LSTM ------------------------------------------------------------ */

enum { PB = 2, PF = 3, PU = 4 };

typedef struct peephole_net {
    peephole cell;
    lg_value x, h0, c0, hs, h_last, c_last;
} peephole_net;

static peephole_net build_peephole(int t)
{
    peephole_net n;
    n.x = lg_input(g, "x", LG_F64, lg_shape_of(3, PB, t, PF));
    n.h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, PB, PU));
    n.c0 = lg_input(g, "c0", LG_F64, lg_shape_of(2, PB, PU));
    n.cell = peephole_new(g, "peephole", PF, PU, LG_F64, SEED);
    /* a bias with every entry distinct from the default zeros and ones */
    ck_assert_int_eq(lg_init_uniform(lg_param_tensor(n.cell.bias), -0.5, 0.5, SEED, 50), LG_OK);
    lg_status s = peephole_sequence(g, &n.cell, n.x, n.h0, n.c0, &n.hs, &n.h_last, &n.c_last);
    ck_assert_msg(s == LG_OK, "%s", lg_last_error());
    return n;
}

START_TEST(test_peephole_gradients)
{
    int t = lengths[_i];
    peephole_net n = build_peephole(t);
    lg_value loss = lg_add(lg_add(weigh(n.hs, 1), weigh(n.h_last, 2)), weigh(n.c_last, 3));
    lg_tensor *x = filled(lg_shape_of(3, PB, t, PF), 1), *h0 = filled(lg_shape_of(2, PB, PU), 2),
              *c0 = filled(lg_shape_of(2, PB, PU), 3);
    lg_feed f[3] = {{n.x, x}, {n.h0, h0}, {n.c0, c0}};
    const peephole *c = &n.cell;
    lg_value wrt[9] = {c->kernel, c->recurrent_kernel, c->bias, c->p_i, c->p_f, c->p_o, n.x, n.h0, n.c0};
    expect_gradients(loss, wrt, 9, f, 3);
    lg_tensor_free(x), lg_tensor_free(h0), lg_tensor_free(c0);
}
END_TEST

static double sigmoid(double z) { return 1 / (1 + exp(-z)); }

/* The peephole equations of cells/peephole.h, written out per element. */
START_TEST(test_peephole_values_match_hand_recurrence)
{
    enum { T = 3 };
    peephole_net n = build_peephole(T);
    lg_tensor *x = filled(lg_shape_of(3, PB, T, PF), 4), *h0 = filled(lg_shape_of(2, PB, PU), 5),
              *c0 = filled(lg_shape_of(2, PB, PU), 6);
    lg_feed f[3] = {{n.x, x}, {n.h0, h0}, {n.c0, c0}};
    lg_value fetch[3] = {n.hs, n.h_last, n.c_last};
    lg_tensor *out[3] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, f, 3, fetch, 3, out), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(out[0]), lg_shape_of(3, PB, T, PU)));
    const lg_tensor *w = lg_param_tensor(n.cell.kernel), *u = lg_param_tensor(n.cell.recurrent_kernel),
                    *bias = lg_param_tensor(n.cell.bias), *pi = lg_param_tensor(n.cell.p_i),
                    *pf = lg_param_tensor(n.cell.p_f), *po = lg_param_tensor(n.cell.p_o);
    for (int b = 0; b < PB; b++) {
        double h[PU], c[PU];
        for (int j = 0; j < PU; j++) h[j] = lg_tensor_get(h0, b * PU + j), c[j] = lg_tensor_get(c0, b * PU + j);
        for (int t = 0; t < T; t++) {
            double z[4 * PU], hn[PU], cn[PU];
            for (int j = 0; j < 4 * PU; j++) {
                z[j] = lg_tensor_get(bias, j);
                for (int k = 0; k < PF; k++) z[j] += lg_tensor_get(x, (b * T + t) * PF + k) * lg_tensor_get(w, k * 4 * PU + j);
                for (int k = 0; k < PU; k++) z[j] += h[k] * lg_tensor_get(u, k * 4 * PU + j);
            }
            for (int j = 0; j < PU; j++) {
                double i = sigmoid(z[j] + lg_tensor_get(pi, j) * c[j]);
                double fg = sigmoid(z[PU + j] + lg_tensor_get(pf, j) * c[j]);
                cn[j] = fg * c[j] + i * tanh(z[2 * PU + j]);
                double o = sigmoid(z[3 * PU + j] + lg_tensor_get(po, j) * cn[j]);
                hn[j] = o * tanh(cn[j]);
            }
            for (int j = 0; j < PU; j++) {
                h[j] = hn[j], c[j] = cn[j];
                ck_assert_double_eq_tol(lg_tensor_get(out[0], (b * T + t) * PU + j), h[j], 1e-12);
            }
        }
        for (int j = 0; j < PU; j++) {
            ck_assert_double_eq_tol(lg_tensor_get(out[1], b * PU + j), h[j], 1e-12);
            ck_assert_double_eq_tol(lg_tensor_get(out[2], b * PU + j), c[j], 1e-12);
        }
    }
    for (int k = 0; k < 3; k++) lg_tensor_free(out[k]);
    lg_tensor_free(x), lg_tensor_free(h0), lg_tensor_free(c0);
}
END_TEST

/* ---- NestedCell ----------------------------------------------------------------- */

enum { NB = 2, I1 = 3, I2 = 2, I3 = 3, U1 = 4, U2 = 2, U3 = 3 };

typedef struct nested_net {
    nested_cell cell;
    lg_value x1, x2, s1, s2, outs[2], states[2];
    lg_tensor *feed[4]; /* x1, x2, s1, s2 */
} nested_net;

static nested_net build_nested(int t)
{
    nested_net n;
    n.x1 = lg_input(g, "x1", LG_F64, lg_shape_of(3, NB, t, I1));
    n.x2 = lg_input(g, "x2", LG_F64, lg_shape_of(4, NB, t, I2, I3));
    n.s1 = lg_input(g, "s1", LG_F64, lg_shape_of(2, NB, U1));
    n.s2 = lg_input(g, "s2", LG_F64, lg_shape_of(3, NB, U2, U3));
    n.cell = nested_cell_new(g, "nested", I1, I2, I3, U1, U2, U3, LG_F64, SEED);
    lg_status s = nested_cell_sequence(g, &n.cell, n.x1, n.x2, n.s1, n.s2, n.outs, n.states);
    ck_assert_msg(s == LG_OK, "%s", lg_last_error());
    lg_value in[4] = {n.x1, n.x2, n.s1, n.s2};
    for (int k = 0; k < 4; k++) n.feed[k] = filled(lg_value_shape(in[k]), 10 + (uint64_t)k);
    return n;
}

static void free_nested(nested_net *n)
{
    for (int k = 0; k < 4; k++) lg_tensor_free(n->feed[k]);
}

START_TEST(test_nested_gradients)
{
    nested_net n = build_nested(lengths[_i]);
    lg_value loss = lg_add(lg_add(weigh(n.outs[0], 1), weigh(n.outs[1], 2)),
                           lg_add(weigh(n.states[0], 3), weigh(n.states[1], 4)));
    lg_feed f[4] = {{n.x1, n.feed[0]}, {n.x2, n.feed[1]}, {n.s1, n.feed[2]}, {n.s2, n.feed[3]}};
    lg_value wrt[6] = {n.cell.kernel_1, n.cell.kernel_2_3, n.x1, n.x2, n.s1, n.s2};
    expect_gradients(loss, wrt, 6, f, 4);
    free_nested(&n);
}
END_TEST

/* Shapes [B, T, u1] and [B, T, u2, u3]; with T = 3, every output and final
 * state against the guide's equations written out in C (output_2_3 as the
 * einsum "bij,ijkl->bkl" itself, not the reshaped matmul). */
START_TEST(test_nested_shapes_and_values)
{
    enum { T = 3 };
    nested_net n = build_nested(T);
    ck_assert(lg_shape_equal(lg_value_shape(n.outs[0]), lg_shape_of(3, NB, T, U1)));
    ck_assert(lg_shape_equal(lg_value_shape(n.outs[1]), lg_shape_of(4, NB, T, U2, U3)));
    ck_assert(lg_shape_equal(lg_value_shape(n.states[0]), lg_shape_of(2, NB, U1)));
    ck_assert(lg_shape_equal(lg_value_shape(n.states[1]), lg_shape_of(3, NB, U2, U3)));

    lg_feed f[4] = {{n.x1, n.feed[0]}, {n.x2, n.feed[1]}, {n.s1, n.feed[2]}, {n.s2, n.feed[3]}};
    lg_value fetch[4] = {n.outs[0], n.outs[1], n.states[0], n.states[1]};
    lg_tensor *out[4] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, f, 4, fetch, 4, out), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(out[0]), lg_shape_of(3, NB, T, U1)));
    ck_assert(lg_shape_equal(lg_tensor_shape(out[1]), lg_shape_of(4, NB, T, U2, U3)));

    const lg_tensor *k1 = lg_param_tensor(n.cell.kernel_1), *k23 = lg_param_tensor(n.cell.kernel_2_3);
    const lg_tensor *x1 = n.feed[0], *x2 = n.feed[1];
    for (int b = 0; b < NB; b++) {
        double s1[U1], s2[U2 * U3];
        for (int j = 0; j < U1; j++) s1[j] = lg_tensor_get(n.feed[2], b * U1 + j);
        for (int j = 0; j < U2 * U3; j++) s2[j] = lg_tensor_get(n.feed[3], b * U2 * U3 + j);
        for (int t = 0; t < T; t++) {
            for (int j = 0; j < U1; j++) {
                double o = 0;
                for (int k = 0; k < I1; k++) o += lg_tensor_get(x1, (b * T + t) * I1 + k) * lg_tensor_get(k1, k * U1 + j);
                s1[j] += o;
                ck_assert_double_eq_tol(lg_tensor_get(out[0], (b * T + t) * U1 + j), o, 1e-12);
            }
            for (int k = 0; k < U2; k++)
                for (int l = 0; l < U3; l++) {
                    double o = 0;
                    for (int i = 0; i < I2; i++)
                        for (int j = 0; j < I3; j++)
                            o += lg_tensor_get(x2, ((b * T + t) * I2 + i) * I3 + j) *
                                 lg_tensor_get(k23, ((i * I3 + j) * U2 + k) * U3 + l);
                    s2[k * U3 + l] += o;
                    ck_assert_double_eq_tol(lg_tensor_get(out[1], ((b * T + t) * U2 + k) * U3 + l), o, 1e-12);
                }
        }
        for (int j = 0; j < U1; j++) ck_assert_double_eq_tol(lg_tensor_get(out[2], b * U1 + j), s1[j], 1e-12);
        for (int j = 0; j < U2 * U3; j++)
            ck_assert_double_eq_tol(lg_tensor_get(out[3], b * U2 * U3 + j), s2[j], 1e-12);
    }
    for (int k = 0; k < 4; k++) lg_tensor_free(out[k]);
    free_nested(&n);
}
END_TEST

static Suite *custom_cells_suite(void)
{
    Suite *s = suite_create("custom_cells");
    TCase *tp = tcase_create("peephole");
    tcase_add_checked_fixture(tp, setup, teardown);
    tcase_add_loop_test(tp, test_peephole_gradients, 0, 3);
    tcase_add_test(tp, test_peephole_values_match_hand_recurrence);
    suite_add_tcase(s, tp);
    TCase *tn = tcase_create("nested");
    tcase_add_checked_fixture(tn, setup, teardown);
    tcase_add_loop_test(tn, test_nested_gradients, 0, 3);
    tcase_add_test(tn, test_nested_shapes_and_values);
    suite_add_tcase(s, tn);
    return s;
}

int main(void) { return lg_check_run(custom_cells_suite()); }
