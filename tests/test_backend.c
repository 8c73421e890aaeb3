/*
 * test_backend.c — the backend seam (src/backends/backend.h): device
 * strings and their errors, and a program, a fit and checkpoints on a
 * device whose memory the host cannot touch.
 *
 * "hostdev", registered here, is that device: its memory is malloc'd but
 * handed out with bit 62 set, so any host access to a device pointer
 * faults, and every buffer starts as NaN bytes, so a copy the executor
 * forgot shows in the results. Its functions check that each pointer is on
 * the side it must be (a host pointer given to a kernel fails the run),
 * count the bytes that cross, and run the CPU's kernels on the real memory.
 * Results must equal the CPU backend's bit for bit.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "graph/loopgrad.h"
#include "test_util.h"

#define TAG ((uintptr_t)1 << 62)

static size_t h2d_bytes, d2h_bytes, live_allocs;
static bool bad_pointer; /* a host pointer where a device one belongs, or the reverse */

static bool is_dev(const void *p) { return ((uintptr_t)p & TAG) != 0; }
static void *real(const void *p)
{
    if (!is_dev(p)) bad_pointer = true;
    return (void *)((uintptr_t)p & ~TAG);
}
static const void *host(const void *p)
{
    if (is_dev(p)) bad_pointer = true;
    return p;
}

static lg_status hd_alloc(const lg_backend *b, size_t bytes, void **out)
{
    (void)b;
    *out = NULL;
    if (!bytes) return LG_OK;
    void *p = malloc(bytes);
    if (!p) return lg_fail(LG_ERR_OUT_OF_MEMORY, "hostdev: %zu bytes", bytes);
    memset(p, 0xff, bytes); /* NaN in every float: an uncopied buffer shows */
    live_allocs++;
    *out = (void *)((uintptr_t)p | TAG);
    return LG_OK;
}

static void hd_free(const lg_backend *b, void *p)
{
    (void)b;
    if (!p) return;
    live_allocs--;
    free(real(p));
}

static lg_status hd_h2d(const lg_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    h2d_bytes += bytes;
    if (bytes) memcpy(real(dst), host(src), bytes);
    return LG_OK;
}

static lg_status hd_d2h(const lg_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    d2h_bytes += bytes;
    if (bytes) memcpy((void *)host(dst), real(src), bytes);
    return LG_OK;
}

static lg_status hd_d2d(const lg_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    if (bytes) memmove(real(dst), real(src), bytes);
    return LG_OK;
}

static lg_status hd_zero(const lg_backend *b, void *dst, size_t bytes)
{
    (void)b;
    if (bytes) memset(real(dst), 0, bytes);
    return LG_OK;
}

static lg_status hd_sync(const lg_backend *b)
{
    (void)b;
    return LG_OK;
}

static bool hd_supports(const lg_backend *b, const lg_node *n)
{
    (void)b;
    return lg_backend_cpu()->supports_op(lg_backend_cpu(), n);
}

/* Buffers with real pointers; a zero-size buffer may have none. */
static bool unwrap(const lg_buf *in, lg_buf *out, int n)
{
    for (int i = 0; i < n; i++) {
        out[i] = in[i];
        size_t bytes = 0;
        lg_shape_bytes(in[i].shape, in[i].dtype, &bytes);
        if (!bytes) continue;
        if (!is_dev(in[i].data)) return false;
        out[i].data = real(in[i].data);
    }
    return true;
}

static lg_status hd_run(const lg_backend *b, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)b;
    lg_buf ri[64], ro[64];
    ck_assert_int_le(n->n_in, 64);
    if (!unwrap(in, ri, n->n_in) || !unwrap(out, ro, n->n_out)) {
        bad_pointer = true;
        return lg_fail(LG_ERR_RUNTIME, "hostdev: a host pointer given to the kernel of '%s'", n->name);
    }
    return lg_backend_cpu()->run_op(lg_backend_cpu(), n, ri, ro);
}

static lg_status hd_sgd(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *m, double lr,
                        double mu, bool nesterov)
{
    (void)b;
    return lg_backend_cpu()->sgd_update(lg_backend_cpu(), dt, n, real(p), real(g), m ? real(m) : NULL, lr, mu, nesterov);
}

static void real_slots(void *const *slots, void **out)
{
    for (int k = 0; k < 3; k++) out[k] = slots[k] ? real(slots[k]) : NULL;
}

static lg_status hd_adam(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                         double lr, double b1, double b2, double eps, bool amsgrad, int64_t t)
{
    (void)b;
    void *s[3];
    real_slots(slots, s);
    return lg_backend_cpu()->adam_update(lg_backend_cpu(), dt, n, real(p), real(g), s, lr, b1, b2, eps, amsgrad, t);
}

static lg_status hd_rmsprop(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                            double lr, double rho, double mu, double eps, bool centered)
{
    (void)b;
    void *s[3];
    real_slots(slots, s);
    return lg_backend_cpu()->rmsprop_update(lg_backend_cpu(), dt, n, real(p), real(g), s, lr, rho, mu, eps, centered);
}

static lg_status hd_clip(const lg_backend *b, lg_dtype dt, void *g, const int64_t *offsets, int n, double cv,
                         double cn, double gcn)
{
    (void)b;
    return lg_backend_cpu()->clip_grads(lg_backend_cpu(), dt, real(g), offsets, n, cv, cn, gcn);
}

static lg_status hd_norm(const lg_backend *b, lg_dtype dt, const void *g, int64_t n, double *norm)
{
    (void)b;
    return lg_backend_cpu()->grad_norm(lg_backend_cpu(), dt, real(g), n, norm);
}

static void hd_report(const lg_backend *b, FILE *out)
{
    fprintf(out, "device %s: %zu buffers allocated\n", b->name, live_allocs);
}

static const lg_backend hostdev = {
    .name = "hostdev:0", .alloc = hd_alloc, .free = hd_free, .copy_h2d = hd_h2d, .copy_d2h = hd_d2h,
    .copy_d2d = hd_d2d, .zero = hd_zero, .sync = hd_sync, .supports_op = hd_supports, .run_op = hd_run,
    .sgd_update = hd_sgd, .adam_update = hd_adam, .rmsprop_update = hd_rmsprop, .clip_grads = hd_clip,
    .grad_norm = hd_norm, .report = hd_report,
};

/* hostdev:1 lacks the fused RNN kernels (so loops stay loops, driven by
 * the executor over device memory) and softsign. */
static bool hd1_supports(const lg_backend *b, const lg_node *n)
{
    return n->op != LG_OP_RNN && n->op != LG_OP_RNN_GRAD && n->op != LG_OP_SOFTSIGN && hd_supports(b, n);
}

static lg_backend hostdev1;

static lg_status hostdev_open(int index, const lg_backend **out)
{
    if (index < 0 || index > 1) return lg_fail(LG_ERR_INVALID_ARGUMENT, "hostdev:%d: only hostdev:0 and :1", index);
    hostdev1 = hostdev;
    hostdev1.name = "hostdev:1", hostdev1.supports_op = hd1_supports;
    *out = index ? &hostdev1 : &hostdev;
    return LG_OK;
}

static void setup(void)
{
    static bool done;
    if (!done) ck_assert_int_eq(lg_backend_register("hostdev", hostdev_open), LG_OK);
    done = true;
    bad_pointer = false;
}

/* ---- device strings ------------------------------------------------------ */

START_TEST(device_strings)
{
    const lg_backend *b = NULL;
    ck_assert_int_eq(lg_backend_get(NULL, &b), LG_OK);
    ck_assert_str_eq(b->name, "cpu");
    ck_assert_int_eq(lg_backend_get("cpu", &b), LG_OK);
    ck_assert_ptr_eq(b, lg_backend_cpu());
    ck_assert_int_eq(lg_backend_get("hostdev:0", &b), LG_OK);
    ck_assert_ptr_eq(b, &hostdev);
    ck_assert_int_eq(lg_backend_get("hostdev", &b), LG_OK); /* index 0 */
    ck_assert_ptr_eq(b, &hostdev);
    ck_assert_int_eq(lg_backend_get("hostdev:2", &b), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "hostdev:2"));
    const char *bad[] = {"tpu:0", "cuda:x", "cuda:", ":0", "cpu:0:1", "cuda:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(lg_backend_get(bad[i], &b), LG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_null(b);
        char want[64];
        snprintf(want, sizeof want, "device '%s'", bad[i]);
        ck_assert_msg(strstr(lg_last_error(), want), "%s: %s", bad[i], lg_last_error());
    }
    ck_assert_int_eq(lg_backend_register("hostdev", hostdev_open), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_backend_register("cpu", hostdev_open), LG_ERR_INVALID_ARGUMENT);
}
END_TEST

/* "cuda:0": refused by a build without CUDA; with CUDA and no GPU (these
 * build machines), the CUDA runtime's error; never the CPU instead. */
START_TEST(cuda_device_errors)
{
    const lg_backend *b = NULL;
    lg_status st = lg_backend_get("cuda:0", &b);
#ifdef LG_TEST_CUDA_BUILT
    if (st == LG_OK) { /* a GPU is here: it is the CUDA backend, not the CPU */
        ck_assert_str_eq(b->name, "cuda:0");
        ck_assert(!b->host_memory);
        return;
    }
    ck_assert_int_eq(st, LG_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(lg_last_error(), "cudaGetDeviceCount") && strstr(lg_last_error(), "cudaError"), "%s",
                  lg_last_error());
#else
    ck_assert_int_eq(st, LG_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(lg_last_error(), "'cuda:0'") && strstr(lg_last_error(), "no CUDA backend"), "%s",
                  lg_last_error());
#endif
    ck_assert_ptr_null(b);
    /* the same through the public options */
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 2));
    lg_value y = lg_scale(x, 2);
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(1, 2), 1, 1, -1, 1);
    lg_feed f = {x, xt};
    lg_compile_opts o = lg_compile_opts_default();
    lg_program *p = NULL;
    o.device = "cuda:0";
    lg_status cs = lg_program_compile_opts(g, &f, 1, &y, 1, o, &p);
    if (st != LG_OK) ck_assert_int_eq(cs, st);
    lg_program_free(p);
    p = NULL;
    o.device = "tpu:0";
    ck_assert_int_eq(lg_program_compile_opts(g, &f, 1, &y, 1, o, &p), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "'tpu:0'"));
    ck_assert_ptr_null(p);
    lg_tensor_free(xt);
    lg_graph_free(g);
}
END_TEST

/* ---- a fit on the device -------------------------------------------------- */

enum { N = 96, F = 4, C = 3, T = 5, U = 6 };

static void blobs(lg_tensor **x, lg_tensor **y)
{
    *x = lg_test_uniform(LG_F32, lg_shape_of(2, N, F), 9, 1, -1, 1);
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, N), y), LG_OK);
    float *xv = lg_tensor_data(*x);
    for (int i = 0; i < N; i++) {
        xv[i * F + i % C] += 2.0f;
        lg_tensor_set(*y, i, i % C);
    }
}

typedef struct model {
    lg_graph *g;
    lg_cell *cell;
    lg_optimizer *opt;
    lg_trainer *tr;
    lg_batch_norm_result bn;
} model;

/* A GRU over a made-up sequence with dropout and recurrent dropout (a loop
 * the executor drives), batch norm (moving statistics the host updates
 * each step), a dense head, RMSprop with clipping. */
static model gru_model(void)
{
    model m = {.g = lg_graph_new()};
    lg_graph *g = m.g;
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, F)), y = lg_input(g, "y", LG_I32, lg_shape_of(1, -1));
    lg_value steps[T];
    for (int t = 0; t < T; t++) steps[t] = lg_scale(lg_expand_dims(x, 1), 1.0 - 0.1 * t);
    lg_value seq = lg_concat(steps, T, 1);
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_GRU, U);
    co.seed = 7;
    m.cell = lg_cell_new(g, "gru", F, co);
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.dropout = 0.3, ro.recurrent_dropout = 0.3, ro.training = true;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, "gru", m.cell, seq, ro, &r), LG_OK);
    lg_batch_norm_opts bo = lg_batch_norm_opts_default();
    bo.training = true;
    ck_assert_int_eq(lg_batch_norm(g, "bn", r.output, bo, &m.bn), LG_OK);
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = 3;
    lg_value logits = lg_dense(g, "out", m.bn.output, C, d);
    ck_assert_ptr_null(lg_graph_error(g));
    lg_value params[16];
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(g); i++)
        if (lg_param_trainable(lg_graph_param(g, i))) params[n++] = lg_graph_param(g, i);
    lg_rmsprop_opts o = lg_rmsprop_opts_default();
    o.momentum = 0.5, o.centered = true, o.clip.global_clipnorm = 0.5;
    ck_assert_int_eq(lg_optimizer_rmsprop(g, params, n, o, &m.opt), LG_OK);
    lg_model_spec s = lg_model_spec_default();
    s.x = x, s.y = y, s.metric = LG_METRIC_ACCURACY;
    s.loss = lg_sparse_categorical_crossentropy(y, logits, true), s.output = logits;
    ck_assert_int_eq(lg_trainer_new(g, s, m.opt, &m.tr), LG_OK);
    ck_assert_int_eq(lg_trainer_add_dropout_mask(m.tr, r.dropout_mask, 0.3), LG_OK);
    ck_assert_int_eq(lg_trainer_add_dropout_mask(m.tr, r.recurrent_dropout_mask, 0.3), LG_OK);
    ck_assert_int_eq(lg_trainer_add_batch_norm(m.tr, &m.bn), LG_OK);
    return m;
}

static void model_free(model *m)
{
    lg_trainer_free(m->tr), lg_optimizer_free(m->opt), lg_cell_free(m->cell), lg_graph_free(m->g);
}

/* Every parameter and optimizer state of m, as raw bytes, in one buffer. */
static unsigned char *state_bytes(model *m, size_t *len)
{
    size_t n = 0, cap = 1 << 16;
    unsigned char *buf = malloc(cap);
    int np = lg_graph_param_count(m->g), ns = lg_optimizer_state_count(m->opt);
    for (int i = 0; i < np + ns; i++) {
        lg_tensor *t = NULL;
        const char *name = NULL;
        if (i < np) t = lg_param_tensor(lg_graph_param(m->g, i));
        else ck_assert_int_eq(lg_optimizer_state(m->opt, i - np, &name, &t), LG_OK);
        ck_assert_ptr_nonnull(t);
        size_t b = lg_tensor_bytes(t);
        ck_assert_uint_le(n + b, cap);
        memcpy(buf + n, lg_tensor_cdata(t), b);
        n += b;
    }
    *len = n;
    return buf;
}

static lg_fit_opts quiet(int epochs, const char *device)
{
    lg_fit_opts o = lg_fit_opts_default();
    o.epochs = epochs, o.verbose = 0, o.seed = 11, o.device = device;
    return o;
}

/* Fit, save a best checkpoint, on the CPU and on hostdev: the
 * same history, parameters, optimizer state and checkpoint file, bit for
 * bit; then each checkpoint loaded into a fresh model and trained on the
 * other side gives the same again. */
START_TEST(fit_and_checkpoint_on_a_device)
{
    char dir[] = "/tmp/lg_backend_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[2][64];
    const char *dev[2] = {NULL, "hostdev:0"};
    lg_tensor *x, *y;
    blobs(&x, &y);
    lg_dataset_opts dso = lg_dataset_opts_default();
    dso.batch_size = 16, dso.shuffle = true, dso.seed = 5;
    lg_dataset *ds = NULL;
    ck_assert_int_eq(lg_dataset_new(x, y, dso, &ds), LG_OK);
    unsigned char *st[2];
    size_t len[2];
    double loss[2][3], acc[2][3];
    {   /* a device that cannot be had fails the fit before it starts */
        model m = gru_model();
        ck_assert_int_eq(lg_fit(m.tr, ds, NULL, quiet(1, "tpu:0")), LG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(lg_last_error(), "'tpu:0'"));
        ck_assert_int_eq(lg_trainer_history_count(m.tr), 0);
        model_free(&m);
    }
    for (int k = 0; k < 2; k++) {
        snprintf(path[k], sizeof path[k], "%s/best%d.safetensors", dir, k);
        model m = gru_model();
        lg_fit_opts o = quiet(3, dev[k]);
        o.best_checkpoint = path[k];
        ck_assert_msg(lg_fit(m.tr, ds, NULL, o) == LG_OK, "%s: %s", dev[k] ? dev[k] : "cpu", lg_last_error());
        ck_assert(!bad_pointer);
        for (int e = 0; e < 3; e++) {
            loss[k][e] = lg_trainer_history(m.tr, e)->loss;
            acc[k][e] = lg_trainer_history(m.tr, e)->metric;
        }
        st[k] = state_bytes(&m, &len[k]);
        model_free(&m);
    }
    for (int e = 0; e < 3; e++) {
        ck_assert(isfinite(loss[0][e]));
        ck_assert_double_eq(loss[0][e], loss[1][e]);
        ck_assert_double_eq(acc[0][e], acc[1][e]);
    }
    ck_assert(loss[0][2] < loss[0][0]);
    ck_assert_uint_eq(len[0], len[1]);
    ck_assert(memcmp(st[0], st[1], len[0]) == 0);
    /* the checkpoints, written from the host copy and from the device's */
    FILE *f0 = fopen(path[0], "rb"), *f1 = fopen(path[1], "rb");
    ck_assert_ptr_nonnull(f0);
    ck_assert_ptr_nonnull(f1);
    int c0, c1;
    do {
        c0 = fgetc(f0), c1 = fgetc(f1);
        ck_assert_int_eq(c0, c1);
    } while (c0 != EOF);
    fclose(f0), fclose(f1);
    /* load each into a model trained once already on the other side (its
     * device copy stale), continue one epoch there: equal again */
    unsigned char *again[2];
    for (int k = 0; k < 2; k++) {
        model m = gru_model();
        ck_assert_int_eq(lg_fit(m.tr, ds, NULL, quiet(1, dev[1 - k])), LG_OK);
        ck_assert_int_eq(lg_checkpoint_load(path[k], m.g, m.opt, lg_checkpoint_opts_default()), LG_OK);
        ck_assert_int_eq(lg_fit(m.tr, ds, NULL, quiet(1, dev[1 - k])), LG_OK);
        ck_assert(!bad_pointer);
        size_t l;
        again[k] = state_bytes(&m, &l);
        ck_assert_uint_eq(l, len[0]);
        model_free(&m);
    }
    ck_assert(memcmp(again[0], again[1], len[0]) == 0);
    ck_assert(memcmp(again[0], st[0], len[0]) != 0); /* it did train on */
    for (int k = 0; k < 2; k++) free(st[k]), free(again[k]), unlink(path[k]);
    rmdir(dir);
    lg_dataset_free(ds), lg_tensor_free(x), lg_tensor_free(y);
}
END_TEST

/* A training step by hand (a program compiled for the device, the
 * optimizer's gradient tensors as outs, lg_optimizer_step), four times: once
 * the parameters are on the device, a step copies in only the feeds and
 * out only the loss. *grad_norm is the last step's gradient norm. Returns every parameter and optimizer state's bytes;
 * *report gets the program's report. */
static unsigned char *lstm_steps(const char *device, const char *passes_off, size_t *len, char **report,
                                 double *grad_norm)
{
    lg_graph *g = lg_graph_new();
    lg_value xv = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, F)), yv = lg_input(g, "y", LG_I32, lg_shape_of(1, -1));
    lg_value steps[T];
    for (int t = 0; t < T; t++) steps[t] = lg_scale(lg_expand_dims(xv, 1), 1.0 - 0.1 * t);
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, U);
    co.seed = 7;
    model m = {.g = g, .cell = lg_cell_new(g, "lstm", F, co)};
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, m.cell, lg_concat(steps, T, 1), lg_rnn_opts_default(), &r), LG_OK);
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = 3;
    lg_value loss = lg_sparse_categorical_crossentropy(yv, lg_dense(g, "out", r.output, C, d), true);
    ck_assert_ptr_null(lg_graph_error(g));
    int np = lg_graph_param_count(g);
    ck_assert_int_le(np, 16);
    lg_value wrt[16], fetch[17];
    for (int i = 0; i < np; i++) wrt[i] = lg_graph_param(g, i);
    lg_adam_opts ao = lg_adam_opts_default();
    ao.clip.clipnorm = 0.1;
    ck_assert_int_eq(lg_optimizer_adam(g, wrt, np, ao, &m.opt), LG_OK);
    fetch[0] = loss;
    ck_assert_int_eq(lg_grad(g, loss, wrt, np, fetch + 1), LG_OK);
    lg_tensor *out[17] = {NULL};
    lg_tensor *const *grads = lg_optimizer_grads(m.opt);
    for (int i = 0; i < np; i++) out[1 + i] = grads[i];
    lg_tensor *x, *y;
    blobs(&x, &y);
    lg_feed feeds[2] = {{xv, x}, {yv, y}};
    lg_compile_opts o = lg_compile_opts_default();
    o.device = device, o.passes_off = passes_off;
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile_opts(g, feeds, 2, fetch, 1 + np, o, &p), LG_OK);
    *report = lg_program_report(p);
    for (int s = 0; s < 4; s++) {
        if (s == 1) h2d_bytes = d2h_bytes = 0;
        ck_assert_int_eq(lg_program_run(p, feeds, 2, out), LG_OK);
        ck_assert(isfinite(lg_tensor_get(out[0], 0)));
        double norm = 0;
        ck_assert_int_eq(lg_optimizer_grad_norm(m.opt, &norm), LG_OK); /* on the device: only the norm returns */
        ck_assert(norm > 0 && isfinite(norm));
        if (s == 3) *grad_norm = norm;
        ck_assert_int_eq(lg_optimizer_step(m.opt), LG_OK);
        lg_tensor_free(out[0]), out[0] = NULL;
    }
    if (device) {
        ck_assert(!bad_pointer);
        ck_assert_uint_eq(h2d_bytes, 3 * (lg_tensor_bytes(x) + lg_tensor_bytes(y)));
        ck_assert_uint_eq(d2h_bytes, 3 * sizeof(float));
    }
    unsigned char *st = state_bytes(&m, len);
    lg_program_free(p);
    lg_tensor_free(x), lg_tensor_free(y);
    lg_optimizer_free(m.opt), lg_cell_free(m.cell), lg_graph_free(g);
    return st;
}

/* hostdev:0 runs the fused LSTM kernels, hostdev:1 has none, so its
 * program keeps the loop (with hoisted chunks) and the executor drives it
 * over device memory: each equals the CPU's program of the same shape. */
START_TEST(only_feeds_and_fetches_cross)
{
    static const struct {
        const char *device, *passes_off, *note;
    } runs[] = {
        {NULL, NULL, "on cpu"},
        {"hostdev:0", NULL, "on hostdev:0"},
        {NULL, "fuse_rnn", "on cpu"},
        {"hostdev:1", NULL, "the hostdev:1 backend has no fused rnn kernel"},
    };
    unsigned char *st[4];
    size_t len[4];
    double norm[4];
    for (int k = 0; k < 4; k++) {
        char *rep = NULL;
        st[k] = lstm_steps(runs[k].device, runs[k].passes_off, &len[k], &rep, &norm[k]);
        ck_assert_msg(rep && strstr(rep, runs[k].note), "%s", rep);
        ck_assert(!runs[k].device == !strstr(rep, "MiB held by this program"));
        free(rep);
    }
    for (int k = 0; k < 4; k += 2) {
        ck_assert_double_eq(norm[k], norm[k + 1]);
        ck_assert_uint_eq(len[k], len[k + 1]);
        ck_assert(memcmp(st[k], st[k + 1], len[k]) == 0);
    }
    for (int k = 0; k < 4; k++) free(st[k]);
}
END_TEST

/* A loop with a stop condition on the device: the same values as on the
 * CPU, and the one copy back per step is its stop flag. An op the device
 * has no kernel for is an error naming the op, the node and the device. */
START_TEST(stop_condition_and_missing_kernel)
{
    lg_graph *g = lg_graph_new();
    lg_value c0 = lg_input(g, "c0", LG_F64, lg_shape_of(2, 2, 1));
    lg_loop_opts lo = lg_loop_opts_default();
    lo.max_steps = 6;
    lg_loop *l = lg_loop_new(g, NULL, lo);
    lg_value c = lg_loop_state(l, c0);
    lg_value next = lg_add_scalar(c, 1);
    lg_loop_next(l, c, next);
    lg_loop_emit(l, lg_scale(next, 10));
    lg_loop_until(l, lg_compare(lg_sum(next, NULL, 0, false), lg_scalar(lg_loop_body(l), LG_F64, 6), LG_CMP_GE));
    lg_value fetch[2];
    ck_assert_int_eq(lg_loop_end(l, &fetch[0], &fetch[1]), LG_OK);
    lg_tensor *c0t = lg_test_uniform(LG_F64, lg_shape_of(2, 2, 1), 1, 2, 0, 0.5);
    lg_feed f = {c0, c0t};
    lg_tensor *out[2][2] = {{NULL}};
    const char *dev[2] = {NULL, "hostdev:0"};
    for (int k = 0; k < 2; k++) {
        lg_compile_opts o = lg_compile_opts_default();
        o.device = dev[k];
        lg_program *p = NULL;
        ck_assert_int_eq(lg_program_compile_opts(g, &f, 1, fetch, 2, o, &p), LG_OK);
        h2d_bytes = d2h_bytes = 0;
        ck_assert_int_eq(lg_program_run(p, &f, 1, out[k]), LG_OK);
        lg_program_free(p);
    }
    ck_assert(!bad_pointer);
    size_t last = lg_tensor_bytes(out[1][0]), seq = lg_tensor_bytes(out[1][1]);
    ck_assert_uint_eq(h2d_bytes, lg_tensor_bytes(c0t));
    ck_assert_uint_eq(d2h_bytes, last + seq + 3 * sizeof(double)); /* three steps ran, a flag each */
    ck_assert_double_eq(lg_tensor_get(out[1][0], 0), lg_tensor_get(c0t, 0) + 3);
    ck_assert_double_eq(lg_tensor_get(out[1][1], 2), 10 * (lg_tensor_get(c0t, 0) + 3)); /* [2, 6, 1]: b 0, t 2 */
    ck_assert_double_eq(lg_tensor_get(out[1][1], 3), 0);                                 /* t 3: after the stop */
    for (int i = 0; i < 2; i++) {
        ck_assert(memcmp(lg_tensor_cdata(out[0][i]), lg_tensor_cdata(out[1][i]), lg_tensor_bytes(out[0][i])) == 0);
        lg_tensor_free(out[0][i]), lg_tensor_free(out[1][i]);
    }
    /* softsign: no kernel on hostdev:1 */
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 3));
    lg_value y = lg_softsign(lg_scale(x, 2));
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(1, 3), 1, 3, -1, 1);
    lg_feed fx = {x, xt};
    lg_compile_opts o = lg_compile_opts_default();
    o.device = "hostdev:1";
    lg_program *p = NULL;
    ck_assert_int_eq(lg_program_compile_opts(g, &fx, 1, &y, 1, o, &p), LG_ERR_UNSUPPORTED);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(lg_last_error(), "softsign '") && strstr(lg_last_error(), "no kernel on the hostdev:1 backend"),
                  "%s", lg_last_error());
    o.device = "hostdev:0"; /* the other device has it */
    ck_assert_int_eq(lg_program_compile_opts(g, &fx, 1, &y, 1, o, &p), LG_OK);
    lg_program_free(p);
    lg_tensor_free(xt);
    lg_graph_free(g);
    lg_tensor_free(c0t);
}
END_TEST

static Suite *backend_suite(void)
{
    Suite *s = suite_create("backend");
    TCase *tc = tcase_create("backend");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, device_strings);
    tcase_add_test(tc, cuda_device_errors);
    tcase_add_test(tc, fit_and_checkpoint_on_a_device);
    tcase_add_test(tc, only_feeds_and_fetches_cross);
    tcase_add_test(tc, stop_condition_and_missing_kernel);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(backend_suite());
    srunner_set_fork_status(r, CK_NOFORK);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
