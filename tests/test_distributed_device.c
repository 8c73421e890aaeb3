/*
 * test_distributed_device.c — the device path of data-parallel training
 * (src/train/dist.c with an engine that has lg_dist_ops.device, as NCCL's
 * does), run by meson under mpirun -np 2 on machines without a GPU.
 *
 * "simdev", registered here, is the device: its memory is malloc'd but
 * handed out with bit 62 set, so a host access to a device pointer faults
 * (as test_backend.c's hostdev); its kernels are the CPU's on the real
 * memory, and it counts the bytes copied to the host. The engine is NCCL's
 * shape over MPI: host sums by MPI_Allreduce, device sums and broadcasts
 * on the real memory behind a simdev pointer, checking the stream is the
 * backend's. Two ranks train bit for bit as a local group of 2 on simdev
 * (f64 and f32, LSTM and GRU, SGD and Adam, uneven and empty shares),
 * with fewer bytes coming home than one process training alone; a trainer
 * not on the group's device fails every rank with a message naming both.
 */
#include <check.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "dist_model.h"
#include "graph/distributed.h"

#define TAG ((uintptr_t)1 << 62)
enum { CAP = 512 };

static int rank;
static size_t d2h_bytes;
static int stream_token; /* simdev's "stream": its address */
static int device_sums, device_broadcasts;
static bool bad_pointer;

static void *real(const void *p)
{
    if (!((uintptr_t)p & TAG)) bad_pointer = true;
    return (void *)((uintptr_t)p & ~TAG);
}

static const lg_backend *cpu(void) { return lg_backend_cpu(); }

static lg_status sd_alloc(const lg_backend *b, size_t bytes, void **out)
{
    (void)b;
    *out = NULL;
    void *p = bytes ? malloc(bytes) : NULL;
    if (bytes && !p) return lg_fail(LG_ERR_OUT_OF_MEMORY, "simdev: %zu bytes", bytes);
    if (p) memset(p, 0xff, bytes), *out = (void *)((uintptr_t)p | TAG); /* NaN until written */
    return LG_OK;
}
static void sd_free(const lg_backend *b, void *p) { (void)b, free(p ? real(p) : NULL); }
static lg_status sd_h2d(const lg_backend *b, void *dst, const void *src, size_t n)
{
    (void)b;
    if (n) memcpy(real(dst), src, n);
    return LG_OK;
}
static lg_status sd_d2h(const lg_backend *b, void *dst, const void *src, size_t n)
{
    (void)b;
    d2h_bytes += n;
    if (n) memcpy(dst, real(src), n);
    return LG_OK;
}
static lg_status sd_d2d(const lg_backend *b, void *dst, const void *src, size_t n)
{
    (void)b;
    if (n) memmove(real(dst), real(src), n);
    return LG_OK;
}
static lg_status sd_zero(const lg_backend *b, void *dst, size_t n)
{
    (void)b;
    if (n) memset(real(dst), 0, n);
    return LG_OK;
}
static lg_status sd_sync(const lg_backend *b) { return (void)b, LG_OK; }
static bool sd_supports(const lg_backend *b, const lg_node *n) { return (void)b, cpu()->supports_op(cpu(), n); }

static void unwrap(const lg_buf *in, lg_buf *out, int n)
{
    for (int i = 0; i < n; i++) {
        size_t bytes = 0;
        lg_shape_bytes(in[i].shape, in[i].dtype, &bytes);
        out[i] = in[i];
        if (bytes) out[i].data = real(in[i].data);
    }
}
static lg_status sd_run(const lg_backend *b, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)b;
    lg_buf ri[64], ro[64];
    ck_assert_int_le(n->n_in, 64);
    unwrap(in, ri, n->n_in), unwrap(out, ro, n->n_out);
    return cpu()->run_op(cpu(), n, ri, ro);
}
static lg_status sd_sgd(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *m, double lr,
                        double mu, bool nesterov)
{
    (void)b;
    return cpu()->sgd_update(cpu(), dt, n, real(p), real(g), m ? real(m) : NULL, lr, mu, nesterov);
}
static lg_status sd_adam(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                         double lr, double b1, double b2, double eps, bool amsgrad, int64_t t)
{
    (void)b;
    void *s[3] = {real(slots[0]), real(slots[1]), slots[2] ? real(slots[2]) : NULL};
    return cpu()->adam_update(cpu(), dt, n, real(p), real(g), s, lr, b1, b2, eps, amsgrad, t);
}
static lg_status sd_clip(const lg_backend *b, lg_dtype dt, void *g, const int64_t *offsets, int n, double cv,
                         double cn, double gcn)
{
    (void)b;
    return cpu()->clip_grads(cpu(), dt, real(g), offsets, n, cv, cn, gcn);
}
static lg_status sd_norm(const lg_backend *b, lg_dtype dt, const void *g, int64_t n, double *norm)
{
    (void)b;
    return cpu()->grad_norm(cpu(), dt, real(g), n, norm);
}
/* backend.h's contract: one product in double, one rounding */
static lg_status sd_scale(const lg_backend *b, lg_dtype dt, void *x, int64_t n, double w)
{
    (void)b;
    if (dt == LG_F64)
        for (double *v = real(x); n-- > 0; v++) *v *= w;
    else
        for (float *v = real(x); n-- > 0; v++) *v = (float)((double)*v * w);
    return LG_OK;
}
static void *sd_stream(const lg_backend *b) { return (void)b, &stream_token; }
static void sd_report(const lg_backend *b, FILE *out) { fprintf(out, "device %s\n", b->name); }

static const lg_backend simdev = {
    .name = "simdev:0", .alloc = sd_alloc, .free = sd_free, .copy_h2d = sd_h2d, .copy_d2h = sd_d2h,
    .copy_d2d = sd_d2d, .zero = sd_zero, .sync = sd_sync, .supports_op = sd_supports, .run_op = sd_run,
    .sgd_update = sd_sgd, .adam_update = sd_adam, .clip_grads = sd_clip, .grad_norm = sd_norm,
    .scale = sd_scale, .native_stream = sd_stream, .report = sd_report,
};

static lg_status simdev_open(int index, const lg_backend **out)
{
    if (index) return lg_fail(LG_ERR_INVALID_ARGUMENT, "simdev:%d: only simdev:0", index);
    *out = &simdev;
    return LG_OK;
}

/* ---- the engine: NCCL's shape over MPI ----------------------------------- */

static lg_status eng_sum(void *ctx, void *data, int64_t n, lg_dtype dt)
{
    (void)ctx;
    MPI_Allreduce(MPI_IN_PLACE, data, (int)n, dt == LG_F64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    return LG_OK;
}
static lg_status eng_broadcast(void *ctx, void *data, size_t bytes)
{
    (void)ctx;
    MPI_Bcast(data, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
    return LG_OK;
}
static void eng_free(void *ctx) { (void)ctx; }
static const char *eng_device(void *ctx) { return (void)ctx, "simdev:0"; }
static lg_status eng_sum_device(void *ctx, void *stream, void *data, int64_t n, lg_dtype dt)
{
    ck_assert_ptr_eq(stream, &stream_token);
    device_sums++;
    return eng_sum(ctx, real(data), n, dt);
}
static lg_status eng_broadcast_device(void *ctx, void *stream, void *data, size_t bytes)
{
    ck_assert_ptr_eq(stream, &stream_token);
    device_broadcasts++;
    return eng_broadcast(ctx, real(data), bytes);
}
static const lg_dist_ops engine = {
    .sum = eng_sum, .broadcast = eng_broadcast, .free = eng_free,
    .device = eng_device, .sum_device = eng_sum_device, .broadcast_device = eng_broadcast_device,
};

static const char *eng_host_device(void *ctx) { return (void)ctx, "cpu"; }

static lg_dist *group(void)
{
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    lg_dist *d = NULL;
    ck_assert_int_eq(lg_dist_wrap(rank, size, &engine, NULL, &d), LG_OK);
    ck_assert_str_eq(lg_dist_device(d), "simdev:0");
    return d;
}

/* Parameters after fitting on n examples in batches of 8 on `device` over
 * `d` (NULL: alone); *home: the bytes copied to the host during fit. */
static int trained(dm_spec sp, lg_dist *d, const char *device, int n, int epochs, double *v, size_t *home)
{
    dm_model m = dm_new(sp);
    if (d) ck_assert_int_eq(lg_trainer_distribute(m.tr, d), LG_OK);
    lg_dataset *ds = dm_data(sp.dtype, n, 8);
    lg_fit_opts o = lg_fit_opts_default();
    o.epochs = epochs, o.verbose = 0, o.seed = 9, o.device = device;
    size_t before = d2h_bytes;
    lg_status s = lg_fit(m.tr, ds, NULL, o);
    ck_assert_msg(s == LG_OK, "fit: %s", lg_last_error());
    if (home) *home = d2h_bytes - before;
    int k = dm_params(&m, v, CAP);
    lg_dataset_free(ds);
    dm_free(&m);
    return k;
}

/* 20 steps (80 examples, batches of 8, 2 epochs), each summing the block on
 * the device once: the local group's bits, and fewer bytes home than one
 * process alone (which brings nothing but losses and the final parameters
 * home; a host sum would bring the whole block every step). */
START_TEST(device_sums_equal_local_group)
{
    dm_spec sp = dm_grid[_i];
    double dev[CAP], local[CAP];
    size_t home_dist = 0, home_one = 0;
    lg_dist *d = group(), *pair = NULL;
    ck_assert_int_eq(lg_dist_local_new(2, &pair), LG_OK);
    device_sums = 0;
    int n = trained(sp, d, "simdev:0", 80, 2, dev, &home_dist);
    ck_assert_int_eq(device_sums, 20);
    ck_assert_int_eq(trained(sp, pair, "simdev:0", 80, 2, local, NULL), n);
    ck_assert(dm_bit_equal(dev, local, n));
    ck_assert_int_eq(trained(sp, pair, "cpu", 80, 2, local, NULL), n);
    ck_assert(dm_bit_equal(dev, local, n));
    trained(sp, NULL, "simdev:0", 80, 2, local, &home_one);
    if (rank == 0)
        printf("%s %s %s: bit-equal to a local group of 2; bytes home in fit: %zu over the group, %zu alone\n",
               sp.kind == LG_CELL_LSTM ? "LSTM" : "GRU", sp.adam ? "Adam" : "SGD", sp.dtype == LG_F64 ? "f64" : "f32",
               home_dist, home_one);
    ck_assert_msg(home_dist <= home_one, "%zu bytes home over the group, %zu alone", home_dist, home_one);
    ck_assert(!bad_pointer);
    lg_dist_free(pair), lg_dist_free(d);
}
END_TEST

/* 37 examples: the last batch of 5 is cut 2 + 3 (weights 0.4 and 0.6);
 * 33: the last batch of 1 leaves rank 0's share empty (a zeroed block). */
START_TEST(uneven_and_empty_shares)
{
    static const int sizes[] = {37, 33};
    for (int c = 0; c < 2; c++)
        for (int m = 1; m <= 5; m += 4) {
            double dev[CAP], local[CAP];
            lg_dist *d = group(), *pair = NULL;
            ck_assert_int_eq(lg_dist_local_new(2, &pair), LG_OK);
            int n = trained(dm_grid[m], d, "simdev:0", sizes[c], 4, dev, NULL);
            ck_assert_int_eq(trained(dm_grid[m], pair, "simdev:0", sizes[c], 4, local, NULL), n);
            ck_assert_msg(dm_bit_equal(dev, local, n), "%d examples, model %d", sizes[c], m);
            lg_dist_free(pair), lg_dist_free(d);
        }
    ck_assert(!bad_pointer);
}
END_TEST

/* Each rank starts from its own seed; distribute broadcasts rank 0's
 * values on the device, where the parameters live in their block. */
START_TEST(broadcast_on_the_device)
{
    dm_model m;
    double mine[CAP], want[CAP];
    int n = dm_seeded_by_rank(dm_grid[1], rank, &m, mine, want, CAP);
    lg_dist *d = group();
    device_broadcasts = 0;
    ck_assert_int_eq(lg_trainer_distribute(m.tr, d), LG_OK);
    ck_assert_int_eq(device_broadcasts, lg_graph_param_count(m.g));
    dm_params(&m, mine, CAP);
    ck_assert(dm_bit_equal(mine, want, n));
    lg_dist_free(d), dm_free(&m);
}
END_TEST

/* lg_dist_average_gradients on a device group: rank r's block holds r + 1
 * for r + 1 examples; the weighted average (1 + 4) / 3 is made on the
 * device and read back home. */
START_TEST(average_gradients_on_the_device)
{
    dm_model m = dm_new(dm_grid[0]);
    lg_tensor *const *g = lg_optimizer_grads(m.opt);
    for (int i = 0; i < lg_optimizer_param_count(m.opt); i++) ck_assert_int_eq(lg_tensor_fill(g[i], rank + 1), LG_OK);
    lg_dist *d = group();
    device_sums = 0;
    ck_assert_int_eq(lg_dist_average_gradients(d, m.opt, rank + 1), LG_OK);
    ck_assert_int_eq(device_sums, 1);
    g = lg_optimizer_grads(m.opt);
    for (int i = 0; i < lg_optimizer_param_count(m.opt); i++)
        for (int64_t j = 0; j < lg_tensor_numel(g[i]); j++)
            ck_assert_double_eq_tol(lg_tensor_get(g[i], j), 5.0 / 3.0, 1e-15);
    lg_dist_free(d), dm_free(&m);
}
END_TEST

/* A trainer not on its group's device: fit fails on every rank, no rank
 * waits: on both ranks (each names both devices), then on rank 1 only
 * (rank 0 hears that another replica failed). */
START_TEST(trainer_off_the_group_device)
{
    lg_dist *d = group();
    lg_dataset *ds = dm_data(LG_F64, 16, 8);
    for (int c = 0; c < 2; c++) {
        dm_model m = dm_new(dm_grid[0]);
        ck_assert_int_eq(lg_trainer_distribute(m.tr, d), LG_OK);
        bool wrong = c == 0 || rank == 1;
        lg_fit_opts o = lg_fit_opts_default();
        o.verbose = 0, o.device = wrong ? "cpu" : "simdev:0";
        lg_status s = lg_fit(m.tr, ds, NULL, o);
        ck_assert_int_eq(s, wrong ? LG_ERR_INVALID_ARGUMENT : LG_ERR_RUNTIME);
        const char *msg = lg_last_error();
        if (wrong) ck_assert_msg(strstr(msg, "'simdev:0'") && strstr(msg, "'cpu'"), "%s", msg);
        else ck_assert_ptr_nonnull(strstr(msg, "another replica"));
        ck_assert_int_eq(lg_trainer_history_count(m.tr), 0);
        dm_free(&m);
    }
    lg_dataset_free(ds), lg_dist_free(d);
}
END_TEST

/* An engine with a device but without its device collectives is refused,
 * as are a rank outside the group and an engine whose device is the host. */
START_TEST(incomplete_engine)
{
    lg_dist_ops half = engine;
    half.broadcast_device = NULL;
    lg_dist *d = (lg_dist *)1;
    ck_assert_int_eq(lg_dist_wrap(0, 2, &half, NULL, &d), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "broadcast_device"));
    ck_assert_int_eq(lg_dist_wrap(2, 2, &engine, NULL, &d), LG_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(lg_last_error(), "dist: rank 2 outside a group of 2, or out NULL");
    ck_assert_int_eq(lg_dist_wrap(0, 2, &engine, NULL, NULL), LG_ERR_INVALID_ARGUMENT);
    /* an engine whose device is host memory: its device collectives would
     * be handed host pointers, so the group refuses to work */
    lg_dist_ops hosted = engine;
    hosted.device = eng_host_device;
    ck_assert_int_eq(lg_dist_wrap(0, 1, &hosted, NULL, &d), LG_OK);
    dm_model m = dm_new(dm_grid[0]);
    ck_assert_int_eq(lg_dist_broadcast_parameters(d, m.opt), LG_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(lg_last_error(), "dist: the engine's device 'cpu' is host memory (leave ops.device NULL)");
    dm_free(&m);
    lg_dist_free(d);
    ck_assert_ptr_null(lg_dist_device(NULL));
    ck_assert_int_eq(lg_dist_local_new(2, &d), LG_OK);
    ck_assert_ptr_null(lg_dist_device(d));
    lg_dist_free(d);
}
END_TEST

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) {
        fprintf(stderr, "test_distributed_device: run with mpirun -np 2 (got %d ranks)\n", size);
        MPI_Finalize();
        return 1;
    }
    if (lg_backend_register("simdev", simdev_open) != LG_OK) {
        fprintf(stderr, "test_distributed_device: %s\n", lg_last_error());
        MPI_Finalize();
        return 1;
    }
    Suite *s = suite_create("distributed_device");
    TCase *tc = tcase_create("two_ranks");
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, device_sums_equal_local_group, 0, DM_GRID_COUNT);
    tcase_add_test(tc, uneven_and_empty_shares);
    tcase_add_test(tc, broadcast_on_the_device);
    tcase_add_test(tc, average_gradients_on_the_device);
    tcase_add_test(tc, trainer_off_the_group_device);
    tcase_add_test(tc, incomplete_engine);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, rank == 0 ? CK_NORMAL : CK_SILENT);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MPI_Finalize();
    return failed ? 1 : 0;
}
