/*
 * test_distributed_nccl.c — data-parallel groups over NCCL
 * (distributed_nccl.h), run by meson under mpirun -np 2.
 *
 * Default: one GPU per rank (cuda:<rank>). Two ranks train bit for bit as
 * a local group of 2 on the rank's own GPU (f64 and f32, LSTM and GRU, SGD
 * and Adam, uneven and empty shares): with 2 ranks ncclAllReduce adds two
 * scaled blocks once per element, as the local group does on the host;
 * rank 0's parameters replace the other seed; a trainer on the CPU fails
 * every rank. With fewer than 2 GPUs visible it prints why and exits 77,
 * which meson reports as SKIP. Not yet run on a machine with 2 GPUs.
 *
 * --errors: the checks that need no GPU, run everywhere: bad arguments
 * and options, MPI not initialised, and a device that is absent (or no GPU at all)
 * failing both ranks together, with MPI still usable after.
 *
 * Check runs without fork (MPI and fork do not mix); mpirun's --timeout,
 * set in tests/meson.build, ends a job that would hang.
 */
#include <check.h>
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>

#include "dist_model.h"
#include "graph/distributed_nccl.h"

enum { CAP = 512 };

static lg_dist *world;
static int rank, gpus;

/* Parameters after fitting on n examples in batches of 8 over `group` on
 * `device`. */
static int trained(dm_spec sp, lg_dist *group, const char *device, int n, int epochs, double *v)
{
    dm_model m = dm_new(sp);
    ck_assert_int_eq(lg_trainer_distribute(m.tr, group), LG_OK);
    lg_dataset *ds = dm_data(sp.dtype, n, 8);
    lg_fit_opts o = lg_fit_opts_default();
    o.epochs = epochs, o.verbose = 0, o.seed = 9, o.device = device;
    lg_status s = lg_fit(m.tr, ds, NULL, o);
    ck_assert_msg(s == LG_OK, "fit on %s: %s", device, lg_last_error());
    int k = dm_params(&m, v, CAP);
    lg_dataset_free(ds);
    dm_free(&m);
    return k;
}

/* 20 steps (80 examples, batches of 8, 2 epochs) and then 37 and 33
 * examples (the last batch cut 2 + 3, and 0 + 1): the local group's bits. */
START_TEST(two_ranks_equal_local_group)
{
    static const int sizes[] = {80, 37, 33};
    dm_spec sp = dm_grid[_i];
    const char *dev = lg_dist_device(world);
    for (int c = 0; c < 3; c++) {
        double nccl[CAP], local[CAP];
        lg_dist *pair = NULL;
        ck_assert_int_eq(lg_dist_local_new(2, &pair), LG_OK);
        int n = trained(sp, world, dev, sizes[c], sizes[c] == 80 ? 2 : 4, nccl);
        ck_assert_int_eq(trained(sp, pair, dev, sizes[c], sizes[c] == 80 ? 2 : 4, local), n);
        lg_dist_free(pair);
        if (rank == 0 && c == 0)
            printf("%s %s %s on %s: 2 NCCL ranks bit-equal to a local group of 2: %s\n",
                   sp.kind == LG_CELL_LSTM ? "LSTM" : "GRU", sp.adam ? "Adam" : "SGD",
                   sp.dtype == LG_F64 ? "f64" : "f32", dev, dm_bit_equal(nccl, local, n) ? "yes" : "NO");
        ck_assert_msg(dm_bit_equal(nccl, local, n), "%d examples", sizes[c]);
    }
}
END_TEST

/* Each rank starts from its own seed; distribute copies rank 0's values
 * (ncclBroadcast on the device). */
START_TEST(broadcast_overrides_seeds)
{
    dm_model m;
    double mine[CAP], want[CAP];
    int n = dm_seeded_by_rank(dm_grid[1], rank, &m, mine, want, CAP);
    ck_assert_int_eq(lg_trainer_distribute(m.tr, world), LG_OK);
    dm_params(&m, mine, CAP);
    ck_assert(dm_bit_equal(mine, want, n));
    dm_free(&m);
}
END_TEST

/* lg_dist_average_gradients: rank r's block holds r + 1 for r + 1
 * examples; the average (1 + 4) / 3, made on the GPU. */
START_TEST(average_gradients_weighted)
{
    dm_model m = dm_new(dm_grid[0]);
    lg_tensor *const *g = lg_optimizer_grads(m.opt);
    for (int i = 0; i < lg_optimizer_param_count(m.opt); i++) ck_assert_int_eq(lg_tensor_fill(g[i], rank + 1), LG_OK);
    ck_assert_int_eq(lg_dist_average_gradients(world, m.opt, rank + 1), LG_OK);
    g = lg_optimizer_grads(m.opt);
    for (int i = 0; i < lg_optimizer_param_count(m.opt); i++)
        for (int64_t j = 0; j < lg_tensor_numel(g[i]); j++)
            ck_assert_double_eq_tol(lg_tensor_get(g[i], j), 5.0 / 3.0, 1e-15);
    dm_free(&m);
}
END_TEST

/* A trainer on the CPU with an NCCL group: every rank fails, naming both
 * devices. */
START_TEST(trainer_on_the_cpu)
{
    dm_model m = dm_new(dm_grid[0]);
    ck_assert_int_eq(lg_trainer_distribute(m.tr, world), LG_OK);
    lg_dataset *ds = dm_data(LG_F64, 16, 8);
    lg_fit_opts o = lg_fit_opts_default();
    o.verbose = 0, o.device = "cpu";
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), lg_dist_device(world)));
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "'cpu'"));
    lg_dataset_free(ds), dm_free(&m);
}
END_TEST

/* ---- --errors: no GPU needed ---------------------------------------------- */

START_TEST(bad_arguments)
{
    lg_dist *d = (lg_dist *)1;
    ck_assert_int_eq(lg_dist_nccl_mpi_new(MPI_COMM_NULL, -1, &d), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(lg_dist_nccl_mpi_new(MPI_COMM_WORLD, -1, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_dist_nccl_mpi_new(MPI_COMM_WORLD, -2, &d), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "device"));
}
END_TEST

/* The options' defaults, and a timeout_s that is not a finite number > 0
 * refused on every rank before anything collective, with MPI going on. */
START_TEST(bad_timeout)
{
    lg_dist_nccl_opts o = lg_dist_nccl_opts_default();
    ck_assert_int_eq(o.device, -1);
    ck_assert_double_eq(o.timeout_s, 300);
    const double bad[] = {0, -1, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        o.timeout_s = bad[i];
        lg_dist *d = (lg_dist *)1;
        ck_assert_int_eq(lg_dist_nccl_mpi_new_opts(MPI_COMM_WORLD, o, &d), LG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_null(d);
        ck_assert_msg(strstr(lg_last_error(), "timeout_s"), "%s", lg_last_error());
        d = (lg_dist *)1;
        ck_assert_int_eq(lg_dist_nccl_mpi_world_opts(NULL, NULL, o, &d), LG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_null(d);
    }
    o = lg_dist_nccl_opts_default();
    o.device = -2;
    ck_assert_int_eq(lg_dist_nccl_mpi_new_opts(MPI_COMM_WORLD, o, NULL), LG_ERR_INVALID_ARGUMENT);
    int one = 1, two = 0;
    ck_assert_int_eq(MPI_Allreduce(&one, &two, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), MPI_SUCCESS);
    ck_assert_int_eq(two, 2);
}
END_TEST

/* Device 999 on both ranks: absent (or no GPU at all); both ranks return
 * their own error together, and MPI goes on. */
START_TEST(absent_device_fails_every_rank)
{
    lg_dist *d = (lg_dist *)1;
    lg_status s = lg_dist_nccl_mpi_new(MPI_COMM_WORLD, 999, &d);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(s, gpus > 0 ? LG_ERR_INVALID_ARGUMENT : LG_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), gpus > 0 ? "cuda:999" : "no usable GPU"));
    int one = 1, two = 0;
    ck_assert_int_eq(MPI_Allreduce(&one, &two, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), MPI_SUCCESS);
    ck_assert_int_eq(two, 2);
}
END_TEST

static int run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    bool errors = argc > 1 && !strcmp(argv[1], "--errors");
    if (errors) { /* before MPI_Init: refused, nothing initialised */
        lg_dist *d = NULL;
        if (lg_dist_nccl_mpi_new(MPI_COMM_WORLD, 0, &d) != LG_ERR_INVALID_ARGUMENT ||
            !strstr(lg_last_error(), "not initialised")) {
            fprintf(stderr, "test_distributed_nccl: a group before MPI_Init was not refused\n");
            return 1;
        }
    }
    MPI_Init(&argc, &argv);
    int size = 0, fewest = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (cudaGetDeviceCount(&gpus) != cudaSuccess) gpus = 0;
    MPI_Allreduce(&gpus, &fewest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    int rc = 0;
    if (size != 2) {
        fprintf(stderr, "test_distributed_nccl: run with mpirun -np 2 (got %d ranks)\n", size);
        rc = 1;
    } else if (errors) {
        Suite *s = suite_create("distributed_nccl_errors");
        TCase *tc = tcase_create("no_gpu_needed");
        tcase_add_test(tc, bad_arguments);
        tcase_add_test(tc, bad_timeout);
        tcase_add_test(tc, absent_device_fails_every_rank);
        suite_add_tcase(s, tc);
        rc = run(s);
    } else if (fewest < 2) {
        if (rank == 0)
            printf("test_distributed_nccl: skipped: %d GPU(s) visible to a rank, the suite needs 2 (one per rank)\n",
                   fewest);
        rc = 77;
    } else if (lg_dist_nccl_mpi_world(&argc, &argv, -1, &world) != LG_OK) {
        fprintf(stderr, "test_distributed_nccl: rank %d: %s\n", rank, lg_last_error());
        rc = 1;
    } else {
        Suite *s = suite_create("distributed_nccl");
        TCase *tc = tcase_create("two_gpus");
        tcase_set_timeout(tc, 240);
        tcase_add_loop_test(tc, two_ranks_equal_local_group, 0, DM_GRID_COUNT);
        tcase_add_test(tc, broadcast_overrides_seeds);
        tcase_add_test(tc, average_gradients_weighted);
        tcase_add_test(tc, trainer_on_the_cpu);
        suite_add_tcase(s, tc);
        rc = run(s);
        lg_dist_free(world);
    }
    MPI_Finalize();
    return rc;
}
