/*
 * test_threads.c — graphs on several threads at once (issue 11 item 8).
 *
 * Two threads, each many times over: build its own LSTM classifier,
 * differentiate it (lg_trainer_new), train it with lg_fit, checkpoint it and
 * load the checkpoint into a fresh copy. Each thread's losses must equal a
 * run of the same work on one thread, and the copy's parameters the
 * original's. meson runs this suite with OPENBLAS_NUM_THREADS=2, so every
 * small product switches OpenBLAS's thread count (src/backends/cpu/
 * gemm_openblas.c), and .ci/run runs it under ThreadSanitizer, which
 * reported the old unlocked switch.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

enum { N = 48, T = 5, F = 3, U = 8, C = 3, ROUNDS = 20, EPOCHS = 2 };

typedef struct model {
    lg_graph *g;
    lg_cell *cell;
    lg_optimizer *opt;
    lg_trainer *tr;
} model;

static void model_free(model *m)
{
    lg_trainer_free(m->tr), lg_optimizer_free(m->opt), lg_cell_free(m->cell), lg_graph_free(m->g);
}

/* LSTM(U) over [B, T, F], then Dense(C) logits; seed picks the weights. */
static lg_status model_new(uint64_t seed, model *m)
{
    *m = (model){.g = lg_graph_new()};
    if (!m->g) return LG_ERR_OUT_OF_MEMORY;
    lg_value x = lg_input(m->g, "x", LG_F32, lg_shape_of(3, -1, T, F));
    lg_value y = lg_input(m->g, "y", LG_I32, lg_shape_of(1, -1));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, U);
    co.seed = seed;
    m->cell = lg_cell_new(m->g, "lstm", F, co);
    lg_rnn_result r;
    lg_status st = lg_rnn(m->g, NULL, m->cell, x, lg_rnn_opts_default(), &r);
    if (st) return st;
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = seed + 1;
    lg_value logits = lg_dense(m->g, "out", r.output, C, d);
    lg_value params[8];
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(m->g) && n < 8; i++) params[n++] = lg_graph_param(m->g, i);
    lg_adam_opts a = lg_adam_opts_default();
    a.learning_rate = 0.02;
    if ((st = lg_optimizer_adam(m->g, params, n, a, &m->opt))) return st;
    lg_model_spec s = lg_model_spec_default();
    s.x = x, s.y = y, s.output = logits, s.metric = LG_METRIC_ACCURACY;
    s.loss = lg_sparse_categorical_crossentropy(y, logits, true);
    return lg_trainer_new(m->g, s, m->opt, &m->tr);
}

/* Sequences whose class is the feature that grows fastest. */
static lg_status data_new(lg_dataset **out)
{
    lg_tensor *x = NULL, *y = NULL;
    lg_status st = lg_tensor_new(LG_F32, lg_shape_of(3, N, T, F), &x);
    if (!st) st = lg_tensor_new(LG_I32, lg_shape_of(1, N), &y);
    if (!st) st = lg_init_uniform(x, -0.5, 0.5, 11, 1);
    if (!st) {
        float *xv = lg_tensor_data(x);
        for (int i = 0; i < N; i++) {
            for (int t = 0; t < T; t++) xv[(i * T + t) * F + i % C] += 0.3f * (float)t;
            lg_tensor_set(y, i, i % C);
        }
        lg_dataset_opts o = lg_dataset_opts_default();
        o.batch_size = 16, o.shuffle = true, o.seed = 3;
        st = lg_dataset_new(x, y, o, out);
    }
    lg_tensor_free(x), lg_tensor_free(y);
    return st;
}

/* A product of 2^24 flops, over the one-thread threshold (the others are
 * under it), so that the GEMM thread count changes from call to call. Its
 * sum, in *out. */
static lg_status large_product(uint64_t seed, double *out)
{
    lg_graph *g = lg_graph_new();
    if (!g) return LG_ERR_OUT_OF_MEMORY;
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(2, 128, 256)), b = lg_input(g, "b", LG_F32, lg_shape_of(2, 256, 256));
    lg_value y = lg_sum(lg_matmul(a, b, false, false), NULL, 0, false);
    lg_tensor *ta = NULL, *tb = NULL, *ty[1] = {NULL};
    lg_status st = lg_tensor_new(LG_F32, lg_shape_of(2, 128, 256), &ta);
    if (!st) st = lg_tensor_new(LG_F32, lg_shape_of(2, 256, 256), &tb);
    if (!st) st = lg_init_uniform(ta, -1, 1, seed, 1);
    if (!st) st = lg_init_uniform(tb, -1, 1, seed, 2);
    lg_feed feeds[] = {{a, ta}, {b, tb}};
    if (!st) st = lg_graph_run(g, feeds, 2, &y, 1, ty);
    if (!st) *out = lg_tensor_get(ty[0], 0);
    lg_tensor_free(ta), lg_tensor_free(tb), lg_tensor_free(ty[0]), lg_graph_free(g);
    return st;
}

typedef struct work {
    int id;
    double loss[ROUNDS]; /* the last epoch's loss of each round */
    double large[ROUNDS]; /* large_product's sum in each round */
    lg_status status;
    char error[512];
} work;

static lg_status fail_with(work *w, lg_status st, const char *what)
{
    snprintf(w->error, sizeof w->error, "thread %d, %s: %s", w->id, what, lg_last_error());
    return st;
}

/* Parameters of a and b equal, bit for bit. */
static bool same_params(lg_graph *a, lg_graph *b)
{
    if (lg_graph_param_count(a) != lg_graph_param_count(b)) return false;
    for (int i = 0; i < lg_graph_param_count(a); i++) {
        lg_tensor *x = lg_param_tensor(lg_graph_param(a, i)), *y = lg_param_tensor(lg_graph_param(b, i));
        if (lg_tensor_bytes(x) != lg_tensor_bytes(y) || memcmp(lg_tensor_data(x), lg_tensor_data(y), lg_tensor_bytes(x)))
            return false;
    }
    return true;
}

static lg_status run_rounds(work *w)
{
    char path[256];
    snprintf(path, sizeof path, "/tmp/lg_threads_%ld_%d.safetensors", (long)getpid(), w->id);
    lg_dataset *ds = NULL;
    lg_status st = data_new(&ds);
    if (st) return fail_with(w, st, "data");
    for (int r = 0; r < ROUNDS && !st; r++) {
        model m, copy;
        if ((st = model_new((uint64_t)r, &m))) {
            fail_with(w, st, "building");
        } else {
            lg_fit_opts o = lg_fit_opts_default();
            o.epochs = EPOCHS, o.verbose = 0;
            if ((st = lg_fit(m.tr, ds, NULL, o))) fail_with(w, st, "fit");
            else w->loss[r] = lg_trainer_history(m.tr, EPOCHS - 1)->loss;
        }
        if (!st && (st = large_product((uint64_t)r, &w->large[r]))) fail_with(w, st, "large product");
        if (!st && (st = lg_checkpoint_save(path, m.g, m.opt))) fail_with(w, st, "checkpoint save");
        if (!st) {
            if ((st = model_new(100 + (uint64_t)r, &copy))) fail_with(w, st, "building the copy");
            else if ((st = lg_checkpoint_load(path, copy.g, copy.opt, lg_checkpoint_opts_default())))
                fail_with(w, st, "checkpoint load");
            else if (!same_params(m.g, copy.g))
                snprintf(w->error, sizeof w->error, "thread %d: loaded parameters differ", w->id), st = LG_ERR_RUNTIME;
            model_free(&copy);
        }
        model_free(&m);
    }
    lg_dataset_free(ds);
    remove(path);
    return st;
}

static void *thread_main(void *arg)
{
    work *w = arg;
    w->status = run_rounds(w);
    return NULL;
}

START_TEST(two_threads_equal_one)
{
    /* The threads first: they make the process's first products, together. */
    work w[2] = {{.id = 1}, {.id = 2}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, thread_main, &w[i]), 0);
    for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    work serial = {.id = 0};
    ck_assert_msg(run_rounds(&serial) == LG_OK, "%s", serial.error);
    for (int r = 0; r < ROUNDS; r++) ck_assert(isfinite(serial.loss[r]) && serial.loss[r] > 0);
    ck_assert(serial.loss[0] != serial.loss[1]); /* the rounds differ: each checks something */
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(w[i].status == LG_OK, "%s", w[i].error);
        for (int r = 0; r < ROUNDS; r++) {
            ck_assert_msg(fabs(w[i].loss[r] - serial.loss[r]) <= 1e-6 * fabs(serial.loss[r]),
                          "thread %d round %d: loss %.9g, on one thread %.9g", w[i].id, r, w[i].loss[r],
                          serial.loss[r]);
            ck_assert_msg(fabs(w[i].large[r] - serial.large[r]) <= 1e-6 * (1 + fabs(serial.large[r])),
                          "thread %d round %d: product sum %.9g, on one thread %.9g", w[i].id, r, w[i].large[r],
                          serial.large[r]);
        }
    }
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("graphs_on_threads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, two_threads_equal_one);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(threads_suite()); }
