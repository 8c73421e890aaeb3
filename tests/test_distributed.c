/*
 * test_distributed.c — data parallelism without MPI (distributed.h): a
 * local group cuts each batch into shares, weighs each by its real size and
 * sums them, which must be the arithmetic of one process over the whole
 * batch up to the rounding of a sum in two parts: parameters after 20 steps
 * within 1e-12 relative in f64, for LSTM and GRU, SGD and Adam, uneven last
 * batches, shares with no rows, dropout; the logs are the global batch's.
 * test_distributed_mpi.c checks that two MPI processes give the local
 * group's bits.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dist_model.h"

enum { CAP = 512 };

/* Parameters after fitting `epochs` on n examples in batches of `batch`,
 * on one process (replicas 0) or a local group. */
static int trained(dm_spec sp, int replicas, int n, int batch, int epochs, double *v, lg_epoch_logs *last)
{
    dm_model m = dm_new(sp);
    lg_dist *d = NULL;
    if (replicas) {
        ck_assert_int_eq(lg_dist_local_new(replicas, &d), LG_OK);
        ck_assert_int_eq(lg_trainer_distribute(m.tr, d), LG_OK);
    }
    lg_dataset *ds = dm_data(sp.dtype, n, batch);
    dm_fit(&m, ds, epochs);
    if (last) *last = *lg_trainer_history(m.tr, epochs - 1);
    int k = dm_params(&m, v, CAP);
    lg_dataset_free(ds);
    dm_free(&m);
    lg_dist_free(d);
    return k;
}

static const dm_spec models[] = {
    {LG_CELL_LSTM, false, LG_F64, 0, false, 1},
    {LG_CELL_LSTM, true, LG_F64, 0, false, 1},
    {LG_CELL_GRU, false, LG_F64, 0, false, 1},
    {LG_CELL_GRU, true, LG_F64, 0, false, 1},
};

/* A group of one is the single process, bit for bit. */
START_TEST(group_of_one_is_one_process)
{
    double a[CAP], b[CAP];
    int n = trained(models[1], 0, 80, 8, 2, a, NULL);
    ck_assert_int_eq(trained(models[1], 1, 80, 8, 2, b, NULL), n);
    ck_assert(dm_bit_equal(a, b, n));
}
END_TEST

/* 80 examples in batches of 8, 2 epochs: 20 steps; two shares of 4. */
START_TEST(two_shares_equal_one_process)
{
    double a[CAP], b[CAP];
    lg_epoch_logs la, lb;
    int n = trained(models[_i], 0, 80, 8, 2, a, &la);
    ck_assert_int_eq(trained(models[_i], 2, 80, 8, 2, b, &lb), n);
    double r = dm_max_rel(b, a, n);
    printf("%s %s f64, 2 shares vs 1 process: max relative difference %.3g\n", _i < 2 ? "LSTM" : "GRU",
           models[_i].adam ? "Adam" : "SGD", r);
    ck_assert_msg(r <= 1e-12, "relative difference %g", r);
    ck_assert(dm_max_rel(a, (double[CAP]){0}, n) > 0.01); /* the parameters are not all zero */
    ck_assert_double_eq_tol(la.loss, lb.loss, 1e-12 * la.loss);
    ck_assert_double_eq_tol(la.metric, lb.metric, 1e-12);
}
END_TEST

/* f32: the same to f32 rounding (shares summed in another order than a
 * whole batch's GEMM). */
START_TEST(two_shares_f32)
{
    dm_spec sp = models[_i];
    sp.dtype = LG_F32;
    double a[CAP], b[CAP];
    int n = trained(sp, 0, 80, 8, 2, a, NULL);
    ck_assert_int_eq(trained(sp, 2, 80, 8, 2, b, NULL), n);
    double r = dm_max_rel(b, a, n);
    printf("%s %s f32, 2 shares vs 1 process: max relative difference %.3g\n", _i < 2 ? "LSTM" : "GRU",
           sp.adam ? "Adam" : "SGD", r);
    ck_assert_msg(r <= 1e-4, "relative difference %g", r);
}
END_TEST

/* 37 examples in batches of 8: the last batch has 5 rows, cut 2 + 3 (or
 * 1 + 2 + 2 in three shares); 34 in batches of 8 with 4 replicas: the last
 * batch of 2 leaves two shares empty. Weighted by real size, each equals
 * one process (an unweighted mean of 2 and 3 rows would be off by percents). */
START_TEST(uneven_last_batch)
{
    static const int cases[][3] = {{2, 37, 4}, {3, 37, 4}, {4, 34, 4}}; /* replicas, examples, epochs */
    for (int c = 0; c < 3; c++) {
        double a[CAP], b[CAP];
        int n = trained(models[1], 0, cases[c][1], 8, cases[c][2], a, NULL);
        ck_assert_int_eq(trained(models[1], cases[c][0], cases[c][1], 8, cases[c][2], b, NULL), n);
        double r = dm_max_rel(b, a, n);
        ck_assert_msg(r <= 1e-12, "%d replicas, %d examples: relative difference %g", cases[c][0], cases[c][1], r);
    }
}
END_TEST

/* Dropout masks are drawn for the global batch and cut like it. */
START_TEST(dropout_masks_follow_the_global_batch)
{
    dm_spec sp = models[0];
    sp.dropout = 0.25;
    double a[CAP], b[CAP], c[CAP];
    int n = trained(sp, 0, 80, 8, 2, a, NULL);
    ck_assert_int_eq(trained(sp, 2, 80, 8, 2, b, NULL), n);
    ck_assert_msg(dm_max_rel(b, a, n) <= 1e-12, "relative difference %g", dm_max_rel(b, a, n));
    sp.dropout = 0;
    trained(sp, 0, 80, 8, 2, c, NULL);
    ck_assert(dm_max_rel(c, a, n) > 1e-6); /* the masks mattered */
}
END_TEST

/* Batch norm normalizes each share by its own statistics (as DDP without
 * SyncBatchNorm); the moving mean, averaged over the shares by size, is the
 * global batch's after one step. */
START_TEST(batch_norm_moving_mean)
{
    dm_spec sp = models[0];
    sp.batch_norm = true;
    double mean[2][DM_UNITS];
    for (int k = 0; k < 2; k++) {
        dm_model m = dm_new(sp);
        lg_dist *d = NULL;
        ck_assert_int_eq(lg_dist_local_new(k ? 2 : 1, &d), LG_OK);
        ck_assert_int_eq(lg_trainer_distribute(m.tr, d), LG_OK);
        lg_dataset *ds = dm_data(sp.dtype, 8, 8);
        dm_fit(&m, ds, 1);
        const lg_tensor *mm = lg_param_tensor(lg_graph_find_param(m.g, "bn/moving_mean"));
        ck_assert_ptr_nonnull(mm);
        for (int i = 0; i < DM_UNITS; i++) mean[k][i] = lg_tensor_get(mm, i);
        lg_dataset_free(ds), dm_free(&m), lg_dist_free(d);
    }
    ck_assert(fabs(mean[0][0]) > 0);
    ck_assert_msg(dm_max_rel(mean[1], mean[0], DM_UNITS) <= 1e-12, "%g", dm_max_rel(mean[1], mean[0], DM_UNITS));
}
END_TEST

/* Evaluate of a distributed trainer sums the shares: the whole set's numbers. */
START_TEST(evaluate_is_global)
{
    double v[CAP];
    lg_eval_result r[2];
    for (int k = 0; k < 2; k++) {
        dm_model m = dm_new(models[2]);
        lg_dist *d = NULL;
        ck_assert_int_eq(lg_dist_local_new(k ? 3 : 1, &d), LG_OK);
        ck_assert_int_eq(lg_trainer_distribute(m.tr, d), LG_OK);
        lg_dataset *ds = dm_data(LG_F64, 37, 8);
        ck_assert_int_eq(lg_evaluate(m.tr, ds, &r[k]), LG_OK);
        ck_assert_int_eq(dm_params(&m, v, CAP) > 0, 1);
        lg_dataset_free(ds), dm_free(&m), lg_dist_free(d);
    }
    ck_assert_int_eq(r[1].examples, 37);
    ck_assert_double_eq_tol(r[1].loss, r[0].loss, 1e-12 * r[0].loss);
    ck_assert_double_eq_tol(r[1].metric, r[0].metric, 1e-12);
}
END_TEST

/* Errors, NULLs, the local group's collectives, and undoing distribute. */
START_TEST(errors_and_local_collectives)
{
    lg_dist *d = (lg_dist *)1;
    ck_assert_int_eq(lg_dist_local_new(0, &d), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(lg_dist_local_new(2, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_dist_rank(NULL), 0);
    ck_assert_int_eq(lg_dist_size(NULL), 1);
    lg_dist_free(NULL);
    ck_assert_int_eq(lg_dist_local_new(2, &d), LG_OK);
    ck_assert_int_eq(lg_dist_rank(d), 0);
    ck_assert_int_eq(lg_dist_size(d), 2);
    ck_assert_int_eq(lg_trainer_distribute(NULL, d), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_dist_broadcast_parameters(d, NULL), LG_ERR_INVALID_ARGUMENT);
    dm_model m = dm_new(models[0]);
    /* a local group's block already is the whole batch's: it stays */
    lg_tensor *g0 = lg_optimizer_grads(m.opt)[0];
    lg_tensor_set(g0, 0, 0.75);
    ck_assert_int_eq(lg_dist_average_gradients(d, m.opt, 3), LG_OK);
    ck_assert_double_eq(lg_tensor_get(g0, 0), 0.75);
    ck_assert_int_eq(lg_dist_average_gradients(d, m.opt, -1), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_dist_average_gradients(d, m.opt, 0), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_dist_broadcast_parameters(d, m.opt), LG_OK);
    /* distribute, then back to one process: the same as never distributed */
    double a[CAP], b[CAP];
    ck_assert_int_eq(lg_trainer_distribute(m.tr, d), LG_OK);
    ck_assert_int_eq(lg_trainer_distribute(m.tr, NULL), LG_OK);
    lg_dataset *ds = dm_data(LG_F64, 80, 8);
    dm_fit(&m, ds, 2);
    int n = dm_params(&m, a, CAP);
    ck_assert_int_eq(trained(models[0], 0, 80, 8, 2, b, NULL), n);
    ck_assert(dm_bit_equal(a, b, n));
    lg_dataset_free(ds), dm_free(&m);
    lg_dist_free(d);
}
END_TEST

/* TerminateOnNaN in a group: a NaN in one share's rows makes the group's
 * loss NaN, so every replica stops before the optimizer step and the
 * parameters are as they were. */
START_TEST(nan_stops_the_group_before_the_step)
{
    dm_model m = dm_new(models[0]);
    lg_dist *d = NULL;
    ck_assert_int_eq(lg_dist_local_new(2, &d), LG_OK);
    ck_assert_int_eq(lg_trainer_distribute(m.tr, d), LG_OK);
    double before[CAP], after[CAP];
    int n = dm_params(&m, before, CAP);
    lg_tensor *x = lg_test_uniform(LG_F64, lg_shape_of(3, 8, DM_T, DM_F), 11, 1, -1, 1), *y = NULL;
    lg_tensor_set(x, 7 * DM_T * DM_F, NAN); /* the second share's last row */
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, 8), &y), LG_OK);
    lg_tensor_fill(y, 1);
    lg_dataset_opts o = lg_dataset_opts_default();
    o.batch_size = 8;
    lg_dataset *ds = NULL;
    ck_assert_int_eq(lg_dataset_new(x, y, o, &ds), LG_OK);
    lg_fit_opts fo = lg_fit_opts_default();
    fo.verbose = 0;
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, fo), LG_ERR_RUNTIME);
    ck_assert_msg(strstr(lg_last_error(), "epoch 1, batch 1") && strstr(lg_last_error(), "is nan"), "%s",
                  lg_last_error());
    ck_assert_int_eq(dm_params(&m, after, CAP), n);
    ck_assert(dm_bit_equal(before, after, n));
    lg_dataset_free(ds), lg_tensor_free(x), lg_tensor_free(y);
    dm_free(&m);
    lg_dist_free(d);
}
END_TEST

/* Stateful layers keep per-row states: they cannot be sharded. */
START_TEST(stateful_refused)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, 4, 3, 1)), y = lg_input(g, "y", LG_F32, lg_shape_of(2, 4, 1));
    lg_cell *cell = lg_cell_new(g, "rnn", 1, lg_cell_opts_default(LG_CELL_SIMPLE_RNN, 2));
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.stateful = true, ro.batch_size = 4;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, ro, &r), LG_OK);
    lg_value out = lg_dense(g, "out", r.output, 1, lg_dense_opts_default());
    lg_value params[2] = {lg_cell_kernel(cell), lg_graph_find_param(g, "out/kernel")};
    lg_optimizer *opt = NULL;
    ck_assert_int_eq(lg_optimizer_sgd(g, params, 2, lg_sgd_opts_default(), &opt), LG_OK);
    lg_model_spec s = lg_model_spec_default();
    s.x = x, s.y = y, s.loss = lg_mse(y, out);
    lg_trainer *tr = NULL;
    ck_assert_int_eq(lg_trainer_new(g, s, opt, &tr), LG_OK);
    ck_assert_int_eq(lg_trainer_add_rnn_state(tr, r.state), LG_OK);
    lg_dist *d = NULL;
    ck_assert_int_eq(lg_dist_local_new(2, &d), LG_OK);
    ck_assert_int_eq(lg_trainer_distribute(tr, d), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "stateful"));
    lg_dist_free(d);
    lg_trainer_free(tr), lg_optimizer_free(opt), lg_rnn_state_free(r.state), lg_cell_free(cell), lg_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("distributed");
    TCase *tc = tcase_create("local");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, group_of_one_is_one_process);
    tcase_add_loop_test(tc, two_shares_equal_one_process, 0, 4);
    tcase_add_loop_test(tc, two_shares_f32, 0, 4);
    tcase_add_test(tc, uneven_last_batch);
    tcase_add_test(tc, dropout_masks_follow_the_global_batch);
    tcase_add_test(tc, batch_norm_moving_mean);
    tcase_add_test(tc, evaluate_is_global);
    tcase_add_test(tc, errors_and_local_collectives);
    tcase_add_test(tc, stateful_refused);
    tcase_add_test(tc, nan_stops_the_group_before_the_step);
    suite_add_tcase(s, tc);
    return lg_check_run(s);
}
