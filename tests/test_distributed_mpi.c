/*
 * test_distributed_mpi.c — data-parallel training over MPI
 * (distributed_mpi.h), run by meson under mpirun -np 2: two ranks train
 * exactly as a local group of 2 in one process (bit for bit, f64 and f32,
 * LSTM and GRU, SGD and Adam, uneven and empty shares) and within 1e-12
 * (f64) of one process over the whole batch; rank 0's parameters replace
 * the others' seeds; only rank 0 writes; a failure on one rank stops both.
 * Check runs without fork here (MPI and fork do not mix); mpirun's own
 * timeout, set in tests/meson.build, ends a job that would hang.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist_model.h"
#include "graph/distributed_mpi.h"

enum { CAP = 512 };

static lg_dist *world;
static int rank;

/* Parameters after fitting on n examples in batches of 8 over `group`
 * (NULL: this process alone). */
static int trained(dm_spec sp, lg_dist *group, int n, int epochs, double *v)
{
    dm_model m = dm_new(sp);
    if (group) ck_assert_int_eq(lg_trainer_distribute(m.tr, group), LG_OK);
    lg_dataset *ds = dm_data(sp.dtype, n, 8);
    dm_fit(&m, ds, epochs);
    int k = dm_params(&m, v, CAP);
    lg_dataset_free(ds);
    dm_free(&m);
    return k;
}

/* 20 steps (80 examples, batches of 8, 2 epochs): the two ranks' result is
 * the local group's bits, and one process's to 1e-12 (f64) or f32 rounding. */
START_TEST(two_ranks_equal_one_process)
{
    dm_spec sp = dm_grid[_i];
    double mpi[CAP], local[CAP], one[CAP];
    lg_dist *pair = NULL;
    ck_assert_int_eq(lg_dist_local_new(2, &pair), LG_OK);
    int n = trained(sp, world, 80, 2, mpi);
    ck_assert_int_eq(trained(sp, pair, 80, 2, local), n);
    ck_assert_int_eq(trained(sp, NULL, 80, 2, one), n);
    lg_dist_free(pair);
    double r = dm_max_rel(mpi, one, n);
    if (rank == 0)
        printf("%s %s %s: 2 ranks bit-equal to a local group of 2: %s; vs 1 process: max relative difference %.3g\n",
               sp.kind == LG_CELL_LSTM ? "LSTM" : "GRU", sp.adam ? "Adam" : "SGD", sp.dtype == LG_F64 ? "f64" : "f32",
               dm_bit_equal(mpi, local, n) ? "yes" : "NO", r);
    ck_assert(dm_bit_equal(mpi, local, n));
    ck_assert_msg(r <= (sp.dtype == LG_F64 ? 1e-12 : 1e-4), "relative difference %g", r);
}
END_TEST

/* 37 examples: the last batch of 5 is cut 2 + 3; 33: the last batch of 1
 * leaves rank 0's share empty. */
START_TEST(uneven_and_empty_shares)
{
    static const int sizes[] = {37, 33};
    for (int c = 0; c < 2; c++) {
        double mpi[CAP], local[CAP], one[CAP];
        lg_dist *pair = NULL;
        ck_assert_int_eq(lg_dist_local_new(2, &pair), LG_OK);
        int n = trained(dm_grid[1], world, sizes[c], 4, mpi);
        ck_assert_int_eq(trained(dm_grid[1], pair, sizes[c], 4, local), n);
        trained(dm_grid[1], NULL, sizes[c], 4, one);
        lg_dist_free(pair);
        ck_assert_msg(dm_bit_equal(mpi, local, n), "%d examples", sizes[c]);
        ck_assert_msg(dm_max_rel(mpi, one, n) <= 1e-12, "%d examples: %g", sizes[c], dm_max_rel(mpi, one, n));
    }
}
END_TEST

/* Each rank initialises with its own seed (and rank 1 has moved its batch
 * norm's moving mean); distribute puts rank 0's values (seed 1) everywhere. */
START_TEST(broadcast_overrides_seeds)
{
    dm_spec sp = dm_grid[1];
    sp.batch_norm = true;
    dm_model m;
    double mine[CAP], want[CAP];
    int n = dm_seeded_by_rank(sp, rank, &m, mine, want, CAP);
    lg_tensor *mm = lg_param_tensor(lg_graph_find_param(m.g, "bn/moving_mean"));
    ck_assert_int_eq(lg_tensor_fill(mm, rank), LG_OK);
    ck_assert_int_eq(lg_trainer_distribute(m.tr, world), LG_OK);
    dm_params(&m, mine, CAP);
    ck_assert(dm_bit_equal(mine, want, n));
    ck_assert_double_eq(lg_tensor_get(mm, 0), 0);
    dm_free(&m);
}
END_TEST

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Rank 0 alone prints progress, writes the history and best checkpoints;
 * every rank's history holds the same global numbers. */
START_TEST(only_rank_0_writes)
{
    char dir[] = "/tmp/lg_mpi_XXXXXX", csv[64], best[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/history.csv", dir);
    snprintf(best, sizeof best, "%s/best.safetensors", dir);
    FILE *out = tmpfile();
    ck_assert_ptr_nonnull(out);
    dm_model m = dm_new(dm_grid[3]);
    ck_assert_int_eq(lg_trainer_distribute(m.tr, world), LG_OK);
    lg_dataset *ds = dm_data(LG_F64, 40, 8);
    lg_fit_opts o = lg_fit_opts_default();
    o.epochs = 3, o.verbose = 2, o.out = out, o.history_csv = csv, o.best_checkpoint = best;
    ck_assert_int_eq(lg_fit(m.tr, ds, ds, o), LG_OK);
    ck_assert_int_eq(exists(csv), rank == 0);
    ck_assert_int_eq(exists(best), rank == 0);
    ck_assert_int_eq(ftell(out) > 0, rank == 0);
    double logs[4] = {lg_trainer_history(m.tr, 2)->loss, lg_trainer_history(m.tr, 2)->metric,
                      lg_trainer_history(m.tr, 2)->val_loss, lg_trainer_history(m.tr, 2)->val_metric}, lead[4];
    memcpy(lead, logs, sizeof logs);
    MPI_Bcast(lead, 4, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    ck_assert(dm_bit_equal(logs, lead, 4));
    /* the global numbers: one process's, to rounding */
    dm_model solo = dm_new(dm_grid[3]);
    lg_fit_opts q = lg_fit_opts_default();
    q.epochs = 3, q.verbose = 0;
    ck_assert_int_eq(lg_fit(solo.tr, ds, ds, q), LG_OK);
    ck_assert_double_eq_tol(logs[2], lg_trainer_history(solo.tr, 2)->val_loss, 1e-12);
    ck_assert_double_eq_tol(logs[3], lg_trainer_history(solo.tr, 2)->val_metric, 1e-12);
    remove(csv), remove(best), rmdir(dir);
    fclose(out);
    lg_dataset_free(ds), dm_free(&m), dm_free(&solo);
}
END_TEST

/* A failure on one rank stops fit on both, at the same place: rank 0
 * cannot write its history; rank 1's labels are out of range. */
START_TEST(failure_stops_every_rank)
{
    dm_model m = dm_new(dm_grid[0]);
    ck_assert_int_eq(lg_trainer_distribute(m.tr, world), LG_OK);
    lg_dataset *ds = dm_data(LG_F64, 16, 8);
    lg_fit_opts o = lg_fit_opts_default();
    o.verbose = 0, o.history_csv = "/nonexistent/dir/history.csv";
    lg_status s = lg_fit(m.tr, ds, NULL, o);
    ck_assert_int_eq(s, rank == 0 ? LG_ERR_IO : LG_ERR_RUNTIME);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), rank == 0 ? "history" : "another replica"));

    lg_tensor *x = lg_test_uniform(LG_F64, lg_shape_of(3, 16, DM_T, DM_F), 3, 1, -1, 1), *y = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, 16), &y), LG_OK);
    ck_assert_int_eq(lg_tensor_fill(y, rank == 1 ? 7 : 1), LG_OK);
    lg_dataset *bad = NULL;
    ck_assert_int_eq(lg_dataset_new(x, y, lg_dataset_opts_default(), &bad), LG_OK);
    s = lg_fit(m.tr, bad, NULL, (lg_fit_opts){.epochs = 2, .verbose = 0});
    ck_assert_int_eq(s == LG_OK, 0);
    if (rank == 0) ck_assert_ptr_nonnull(strstr(lg_last_error(), "another replica"));
    ck_assert_int_eq(lg_trainer_history_count(m.tr), 0);
    lg_tensor_free(x), lg_tensor_free(y), lg_dataset_free(bad), lg_dataset_free(ds), dm_free(&m);
}
END_TEST

/* Early stopping decides on the global numbers: every rank stops after the
 * same epoch (no improvement counts with a huge min_delta). */
START_TEST(early_stopping_together)
{
    dm_model m = dm_new(dm_grid[2]);
    ck_assert_int_eq(lg_trainer_distribute(m.tr, world), LG_OK);
    lg_dataset *ds = dm_data(LG_F64, 24, 8);
    lg_fit_opts o = lg_fit_opts_default();
    o.epochs = 10, o.verbose = 0, o.patience = 2, o.min_delta = 1e9, o.monitor = LG_MONITOR_LOSS;
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_OK);
    ck_assert_int_eq(lg_trainer_history_count(m.tr), 3);
    lg_dataset_free(ds), dm_free(&m);
}
END_TEST

/* A loop of one's own: lg_dist_average_gradients weighs each rank's block
 * by its examples: rank r holds r + 1 in every element and r + 1 examples,
 * so the average is (1 * 1 + 2 * 2) / 3. */
START_TEST(average_gradients_weighted)
{
    dm_model m = dm_new(dm_grid[0]);
    lg_tensor *const *g = lg_optimizer_grads(m.opt);
    for (int i = 0; i < lg_optimizer_param_count(m.opt); i++) ck_assert_int_eq(lg_tensor_fill(g[i], rank + 1), LG_OK);
    ck_assert_int_eq(lg_dist_average_gradients(world, m.opt, rank + 1), LG_OK);
    for (int i = 0; i < lg_optimizer_param_count(m.opt); i++)
        for (int64_t j = 0; j < lg_tensor_numel(g[i]); j++)
            ck_assert_double_eq_tol(lg_tensor_get(g[i], j), 5.0 / 3.0, 1e-15);
    ck_assert_int_eq(lg_dist_rank(world), rank);
    ck_assert_int_eq(lg_dist_size(world), 2);
    dm_free(&m);
}
END_TEST

/* Bad arguments; a group over a communicator of one's own. */
START_TEST(mpi_errors_and_subgroups)
{
    lg_dist *d = (lg_dist *)1;
    ck_assert_int_eq(lg_dist_mpi_new(MPI_COMM_NULL, &d), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(lg_dist_mpi_new(MPI_COMM_WORLD, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_dist_mpi_new(MPI_COMM_SELF, &d), LG_OK);
    ck_assert_int_eq(lg_dist_rank(d), 0);
    ck_assert_int_eq(lg_dist_size(d), 1);
    lg_dist_free(d);
}
END_TEST

int main(int argc, char **argv)
{
    if (lg_dist_mpi_world(&argc, &argv, &world) != LG_OK) {
        fprintf(stderr, "test_distributed_mpi: %s\n", lg_last_error());
        return 1;
    }
    rank = lg_dist_rank(world);
    if (lg_dist_size(world) != 2) {
        fprintf(stderr, "test_distributed_mpi: run with mpirun -np 2 (got %d ranks)\n", lg_dist_size(world));
        lg_dist_free(world);
        return 1;
    }
    Suite *s = suite_create("distributed_mpi");
    TCase *tc = tcase_create("two_ranks");
    tcase_add_loop_test(tc, two_ranks_equal_one_process, 0, DM_GRID_COUNT);
    tcase_add_test(tc, uneven_and_empty_shares);
    tcase_add_test(tc, broadcast_overrides_seeds);
    tcase_add_test(tc, only_rank_0_writes);
    tcase_add_test(tc, failure_stops_every_rank);
    tcase_add_test(tc, early_stopping_together);
    tcase_add_test(tc, average_gradients_weighted);
    tcase_add_test(tc, mpi_errors_and_subgroups);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    lg_dist_free(world);
    return failed ? 1 : 0;
}
