/*
 * test_gradcheck_ops.c — lg_gradcheck() over every op, in f64.
 *
 * The row table of tests/gradcheck_rows.c is the test: each row is a small
 * graph (a builder family and an op of it) whose scalar loss, wrt values,
 * feeds and tolerance gradcheck_rows.h describes; every row must pass
 * lg_gradcheck, checking every wrt element.
 *
 * A last test runs every row again and fails, naming them, if any op of
 * lg_op_name(0 .. lg_op_count() - 1) appeared in no row's graph, gradient
 * nodes included.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck_rows.h"
#include "test_util.h"
#include "graph/loopgrad.h"

/* ---- running a row ---------------------------------------------------------- */

typedef struct gc_result {
    lg_status status;
    lg_gradcheck_report report;
    long long expected; /* wrt elements */
    char why[512];      /* set when the row could not be checked */
} gc_result;

/* Build row `row`, run lg_gradcheck on it, and mark in seen[] (if not NULL)
 * the op of every node the graph then holds. */
static gc_result run_row(int row, bool *seen)
{
    gc_result res = {.status = LG_ERR_GRAPH};
    gc_built b;
    gc_row_build(row, &b);
    res.expected = b.wrt_elems;
    if (lg_graph_error(b.graph)) {
        snprintf(res.why, sizeof res.why, "graph error: %s", lg_graph_error(b.graph));
    } else {
        res.status = lg_gradcheck(b.graph, b.loss, b.wrt, b.n_wrt, b.feeds, b.n_feeds, b.tol, &res.report);
        if (res.status != LG_OK)
            snprintf(res.why, sizeof res.why, "lg_gradcheck: %s: %s", lg_status_name(res.status), lg_last_error());
    }
    if (seen)
        gc_mark_ops(b.graph, seen);
    gc_built_free(&b);
    return res;
}

START_TEST(test_row)
{
    const char *name = gc_row_name(_i);
    gc_result res = run_row(_i, NULL);
    const lg_gradcheck_report *rep = &res.report;
    ck_assert_msg(res.status == LG_OK, "%s: %s", name, res.why);
    ck_assert_msg(rep->checked == res.expected, "%s: checked %lld elements, expected %lld", name,
                  rep->checked, res.expected);
    ck_assert_msg(rep->all_finite && rep->passed,
                  "%s: %s; worst %s[%lld]: analytic %.10g, numeric %.10g (max abs err %.3g, max rel err %.3g)",
                  name, rep->all_finite ? "gradient mismatch" : "non-finite gradient", rep->worst_name,
                  rep->worst_index, rep->analytic, rep->numeric, rep->max_abs_err, rep->max_rel_err);
}
END_TEST

START_TEST(test_every_op_covered)
{
    int n_ops = lg_op_count();
    ck_assert_int_gt(n_ops, 0);
    bool *seen = calloc((size_t)n_ops, sizeof *seen);
    ck_assert_ptr_nonnull(seen);
    for (int i = 0; i < gc_row_count(); i++)
        run_row(i, seen);
    char missing[1024] = "";
    int n_missing = 0;
    /* Ops that only compile passes make, which no builder reaches: the rnn
     * pair's gradcheck rows are in test_rnn_fused; fused_elementwise is made
     * after autodiff and has no gradient (test_fuse_elementwise compares it
     * with the ops it replaces, bit for bit). */
    static const char *const pass_only[] = {"rnn", "rnn_grad", "fused_elementwise"};
    for (size_t i = 0; i < sizeof pass_only / sizeof *pass_only; i++)
        for (int k = 0; k < n_ops; k++)
            if (strcmp(lg_op_name(k), pass_only[i]) == 0)
                seen[k] = true;
    for (int k = 0; k < n_ops; k++) {
        if (seen[k])
            continue;
        n_missing++;
        size_t len = strlen(missing);
        snprintf(missing + len, sizeof missing - len, "%s%s", len ? ", " : "", lg_op_name(k));
    }
    free(seen);
    ck_assert_msg(n_missing == 0, "%d op(s) in no gradcheck row's graph: %s", n_missing, missing);
}
END_TEST

/* ---- the checker itself must be able to fail -------------------------------- */

static lg_tensor *tensor_of(lg_dtype dt, lg_shape s, const double *v)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(dt, s, &t), LG_OK);
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lg_tensor_set(t, i, v[i]);
    return t;
}

static const double SIX[6] = {0.5, -1.25, 2.0, -0.75, 1.5, -2.5};

START_TEST(test_rejects_f32_wrt)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 6));
    lg_value loss = lg_sum(lg_square(lg_cast(x, LG_F64)), NULL, 0, false);
    lg_tensor *t = tensor_of(LG_F32, lg_shape_of(1, 6), SIX);
    lg_feed f = {x, t};
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, &x, 1, &f, 1, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_ERR_DTYPE, "f32 wrt gave %s", lg_status_name(s));
    ck_assert_str_ne(lg_last_error(), "");
    lg_tensor_free(t);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_rejects_f32_loss)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 6));
    lg_value loss = lg_sum(lg_square(lg_cast(x, LG_F32)), NULL, 0, false);
    lg_tensor *t = tensor_of(LG_F64, lg_shape_of(1, 6), SIX);
    lg_feed f = {x, t};
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, &x, 1, &f, 1, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_ERR_DTYPE, "f32 loss gave %s", lg_status_name(s));
    lg_tensor_free(t);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_rejects_i32_wrt)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 6));
    lg_value idx = lg_input(g, "idx", LG_I32, lg_shape_of(1, 2));
    lg_value loss = lg_sum(lg_gather(x, idx), NULL, 0, false);
    lg_tensor *t = tensor_of(LG_F64, lg_shape_of(1, 6), SIX);
    lg_tensor *it = tensor_of(LG_I32, lg_shape_of(1, 2), (const double[]){1, 4});
    lg_feed f[2] = {{x, t}, {idx, it}};
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, &idx, 1, f, 2, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_ERR_DTYPE, "i32 wrt gave %s", lg_status_name(s));
    lg_tensor_free(t);
    lg_tensor_free(it);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_rejects_nonscalar_loss)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, 2, 3));
    lg_value loss = lg_tanh(x); /* [2, 3]: not a scalar */
    lg_tensor *t = tensor_of(LG_F64, lg_shape_of(2, 2, 3), SIX);
    lg_feed f = {x, t};
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, &x, 1, &f, 1, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_ERR_SHAPE, "[2,3] loss gave %s", lg_status_name(s));
    ck_assert_str_ne(lg_last_error(), "");
    lg_tensor_free(t);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_rejects_missing_feed)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 6));
    lg_value loss = lg_sum(lg_square(x), NULL, 0, false);
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, &x, 1, NULL, 0, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_ERR_FEED, "missing feed gave %s", lg_status_name(s));
    lg_graph_free(g);
}
END_TEST

/* Each refusal names what was wrong: NULL or empty arguments, a tolerance
 * out of range, a wrt that is neither a parameter nor a fed input. */
START_TEST(test_rejects_bad_arguments)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 6));
    lg_value h = lg_tanh(x);
    lg_value loss = lg_sum(lg_square(h), NULL, 0, false);
    lg_tensor *t = tensor_of(LG_F64, lg_shape_of(1, 6), SIX);
    lg_feed f = {x, t};
    lg_gradcheck_opts o = lg_gradcheck_opts_default();
    lg_gradcheck_report rep;
    ck_assert_int_eq(lg_gradcheck(NULL, loss, &x, 1, &f, 1, o, &rep), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "NULL graph, wrt or feeds"));
    ck_assert_int_eq(lg_gradcheck(g, loss, &x, 0, &f, 1, o, &rep), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_gradcheck(g, loss, &x, 1, NULL, 1, o, &rep), LG_ERR_INVALID_ARGUMENT);
    o.eps = 0;
    ck_assert_int_eq(lg_gradcheck(g, loss, &x, 1, &f, 1, o, &rep), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "eps must be > 0"));
    o = lg_gradcheck_opts_default();
    o.rtol = -1;
    ck_assert_int_eq(lg_gradcheck(g, loss, &x, 1, &f, 1, o, &rep), LG_ERR_INVALID_ARGUMENT);
    o = lg_gradcheck_opts_default();
    lg_status s = lg_gradcheck(g, loss, &h, 1, &f, 1, o, &rep);
    ck_assert_msg(s == LG_ERR_INVALID_ARGUMENT && strstr(lg_last_error(), "is neither a parameter nor a fed input"),
                  "%s: %s", lg_status_name(s), lg_last_error());
    ck_assert_int_eq(lg_gradcheck(g, loss, &x, 1, &f, 1, o, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "report is NULL"));
    lg_tensor_free(t);
    lg_graph_free(g);
}
END_TEST

/* A loss of shape [1, 1] counts as a scalar (autodiff.h). */
START_TEST(test_accepts_all_ones_loss)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, 2, 3));
    int axes[2] = {0, 1};
    lg_value loss = lg_sum(lg_tanh(x), axes, 2, true); /* [1, 1] */
    lg_tensor *t = tensor_of(LG_F64, lg_shape_of(2, 2, 3), SIX);
    lg_feed f = {x, t};
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, &x, 1, &f, 1, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_OK, "[1,1] loss gave %s: %s", lg_status_name(s), lg_last_error());
    ck_assert(rep.passed);
    ck_assert_int_eq(rep.checked, 6);
    lg_tensor_free(t);
    lg_graph_free(g);
}
END_TEST

/* loss = sum(x * stop_gradient(x)): lg_grad says x, the function says 2x. */
START_TEST(test_detects_wrong_gradient)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_param(g, "x", LG_F64, lg_shape_of(1, 6));
    ck_assert_int_eq(lg_tensor_copy_in(lg_param_tensor(x), SIX, sizeof SIX), LG_OK);
    lg_value loss = lg_sum(lg_mul(x, lg_stop_gradient(x)), NULL, 0, false);
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, &x, 1, NULL, 0, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_OK, "%s: %s", lg_status_name(s), lg_last_error());
    ck_assert(!rep.passed);
    ck_assert(rep.all_finite);
    ck_assert_int_eq(rep.checked, 6);
    ck_assert_int_eq(rep.worst_wrt, 0);
    ck_assert(rep.worst_index >= 0 && rep.worst_index < 6);
    double xi = SIX[rep.worst_index];
    ck_assert_double_eq_tol(rep.analytic, xi, 1e-9);
    ck_assert_double_eq_tol(rep.numeric, 2 * xi, 1e-6);
    /* the parameter is restored after perturbation */
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(lg_tensor_get(lg_param_tensor(x), i), SIX[i]);
    lg_graph_free(g);
}
END_TEST

/* sqrt of a negative number: NaN in both gradients. */
START_TEST(test_detects_nonfinite)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 6));
    lg_value loss = lg_sum(lg_sqrt(x), NULL, 0, false);
    lg_tensor *t = tensor_of(LG_F64, lg_shape_of(1, 6), SIX);
    lg_feed f = {x, t};
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, &x, 1, &f, 1, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_OK, "%s: %s", lg_status_name(s), lg_last_error());
    ck_assert(!rep.all_finite);
    ck_assert(!rep.passed);
    /* the feed is perturbed in a private copy */
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(lg_tensor_get(t, i), SIX[i]);
    lg_tensor_free(t);
    lg_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gradcheck_ops");
    TCase *rows = tcase_create("rows");
    tcase_add_loop_test(rows, test_row, 0, gc_row_count());
    suite_add_tcase(s, rows);
    TCase *cover = tcase_create("coverage");
    tcase_add_test(cover, test_every_op_covered);
    suite_add_tcase(s, cover);
    TCase *checker = tcase_create("checker");
    tcase_add_test(checker, test_rejects_f32_wrt);
    tcase_add_test(checker, test_rejects_f32_loss);
    tcase_add_test(checker, test_rejects_i32_wrt);
    tcase_add_test(checker, test_rejects_nonscalar_loss);
    tcase_add_test(checker, test_rejects_missing_feed);
    tcase_add_test(checker, test_rejects_bad_arguments);
    tcase_add_test(checker, test_accepts_all_ones_loss);
    tcase_add_test(checker, test_detects_wrong_gradient);
    tcase_add_test(checker, test_detects_nonfinite);
    suite_add_tcase(s, checker);

    return lg_check_run(s);
}
