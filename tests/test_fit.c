/*
 * test_fit.c — the training loop (fit.h): a model learns, histories and CSV
 * logs hold what was measured, evaluate and predict agree with direct runs,
 * early stopping and best checkpoints act on the monitor, dropout masks are
 * reproducible, batch norm statistics follow training, stateful layers carry
 * their states, and bad input gives errors.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, mkdtemp */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "graph/loopgrad.h"

enum { N = 96, F = 4, C = 3 };

/* Three Gaussian-ish blobs in 4-D: label = which of three directions a point
 * leans to. Deterministic. */
static void blobs(lg_tensor **x, lg_tensor **y, uint64_t key)
{
    *x = lg_test_uniform(LG_F32, lg_shape_of(2, N, F), 9, key, -1, 1);
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, N), y), LG_OK);
    float *xv = lg_tensor_data(*x);
    for (int i = 0; i < N; i++) {
        int c = i % C;
        xv[i * F + c] += 2.0f; /* a clear margin */
        lg_tensor_set(*y, i, c);
    }
}

typedef struct model {
    lg_graph *g;
    lg_value x, y, logits, loss;
    lg_optimizer *opt;
    lg_trainer *tr;
} model;

static model dense_model(double lr)
{
    model m = {.g = lg_graph_new()};
    m.x = lg_input(m.g, "x", LG_F32, lg_shape_of(2, -1, F));
    m.y = lg_input(m.g, "y", LG_I32, lg_shape_of(1, -1));
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = 3;
    m.logits = lg_dense(m.g, "out", m.x, C, d);
    m.loss = lg_sparse_categorical_crossentropy(m.y, m.logits, true);
    ck_assert_ptr_null(lg_graph_error(m.g));
    lg_adam_opts a = lg_adam_opts_default();
    a.learning_rate = lr;
    lg_value params[2] = {lg_graph_param(m.g, 0), lg_graph_param(m.g, 1)};
    ck_assert_int_eq(lg_optimizer_adam(m.g, params, 2, a, &m.opt), LG_OK);
    lg_model_spec s = lg_model_spec_default();
    s.x = m.x, s.y = m.y, s.loss = m.loss, s.output = m.logits, s.metric = LG_METRIC_ACCURACY;
    ck_assert_int_eq(lg_trainer_new(m.g, s, m.opt, &m.tr), LG_OK);
    return m;
}

static void model_free(model *m)
{
    lg_trainer_free(m->tr);
    lg_optimizer_free(m->opt);
    lg_graph_free(m->g);
}

static lg_dataset *dataset(const lg_tensor *x, const lg_tensor *y, int batch, bool shuffle)
{
    lg_dataset_opts o = lg_dataset_opts_default();
    o.batch_size = batch, o.shuffle = shuffle, o.seed = 5;
    lg_dataset *ds = NULL;
    ck_assert_int_eq(lg_dataset_new(x, y, o, &ds), LG_OK);
    return ds;
}

static lg_fit_opts quiet(int epochs)
{
    lg_fit_opts o = lg_fit_opts_default();
    o.epochs = epochs, o.verbose = 0;
    return o;
}

/* The model learns (loss falls, accuracy ends high); the history and CSV log
 * hold every epoch; evaluate on the validation data after training equals
 * the last epoch's validation logs; predict equals a direct run. */
START_TEST(learns_and_logs)
{
    model m = dense_model(0.05);
    lg_tensor *x, *y, *vx, *vy;
    blobs(&x, &y, 1), blobs(&vx, &vy, 2);
    lg_dataset *train = dataset(x, y, 10, true), *val = dataset(vx, vy, 32, false); /* 10: a smaller last batch */
    char csv[] = "/tmp/lg_fit_XXXXXX";
    int fd = mkstemp(csv);
    ck_assert_int_ge(fd, 0);
    close(fd);
    lg_fit_opts o = quiet(15);
    o.history_csv = csv;
    ck_assert_int_eq(lg_fit(m.tr, train, val, o), LG_OK);
    ck_assert_int_eq(lg_trainer_history_count(m.tr), 15);
    const lg_epoch_logs *first = lg_trainer_history(m.tr, 0), *last = lg_trainer_history(m.tr, 14);
    ck_assert_ptr_null(lg_trainer_history(m.tr, 15));
    ck_assert_int_eq(last->epoch, 14);
    ck_assert(last->loss < 0.5 * first->loss);
    ck_assert(last->metric > 0.95 && last->val_metric > 0.95);
    ck_assert(last->seconds >= 0);
    lg_eval_result r;
    ck_assert_int_eq(lg_evaluate(m.tr, val, &r), LG_OK);
    ck_assert_int_eq(r.examples, N);
    ck_assert_double_eq_tol(r.loss, last->val_loss, 1e-6);
    ck_assert_double_eq_tol(r.metric, last->val_metric, 1e-12);
    /* the CSV log: a header and one row per epoch, the last row's loss */
    FILE *f = fopen(csv, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "epoch,loss,accuracy,val_loss,val_accuracy\n");
    int rows = 0, epoch = -1;
    double loss = 0;
    while (fgets(line, sizeof line, f)) rows++, sscanf(line, "%d,%lf", &epoch, &loss);
    fclose(f);
    unlink(csv);
    ck_assert_int_eq(rows, 15);
    ck_assert_int_eq(epoch, 14);
    ck_assert_double_eq_tol(loss, last->loss, 1e-6);
    /* predict: [N, C], equal to running the graph on all of vx */
    lg_tensor *p = NULL, *direct = NULL;
    ck_assert_int_eq(lg_predict(m.tr, val, &p), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(p), lg_shape_of(2, N, C)));
    lg_feed feed = {m.x, vx};
    ck_assert_int_eq(lg_graph_run(m.g, &feed, 1, &m.logits, 1, &direct), LG_OK);
    for (int i = 0; i < N * C; i++) ck_assert_double_eq_tol(lg_tensor_get(p, i), lg_tensor_get(direct, i), 1e-5);
    lg_tensor_free(p), lg_tensor_free(direct);
    lg_dataset_free(train), lg_dataset_free(val);
    lg_tensor_free(x), lg_tensor_free(y), lg_tensor_free(vx), lg_tensor_free(vy);
    model_free(&m);
}
END_TEST

/* With a learning rate of 0 nothing improves after the first epoch, so
 * patience 2 stops after epoch 3; the best checkpoint is written once (the
 * first epoch) and holds the parameters. A callback can stop training. */
static bool stop_after_two(const lg_epoch_logs *logs, void *ctx)
{
    (*(int *)ctx)++;
    return logs->epoch < 1;
}

START_TEST(early_stopping_and_checkpoint)
{
    model m = dense_model(0);
    lg_tensor *x, *y;
    blobs(&x, &y, 1);
    lg_dataset *train = dataset(x, y, 32, false);
    char dir[] = "/tmp/lg_fit_dir_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/best.safetensors", dir);
    lg_fit_opts o = quiet(10);
    o.patience = 2, o.monitor = LG_MONITOR_LOSS, o.best_checkpoint = path, o.restore_best = true;
    ck_assert_int_eq(lg_fit(m.tr, train, NULL, o), LG_OK);
    ck_assert_int_eq(lg_trainer_history_count(m.tr), 3);
    ck_assert(isnan(lg_trainer_history(m.tr, 0)->val_loss));
    lg_safetensors *f = NULL;
    ck_assert_int_eq(lg_safetensors_open(path, &f), LG_OK);
    ck_assert_int_ge(lg_safetensors_find(f, "out/kernel"), 0);
    lg_safetensors_free(f);
    unlink(path);
    rmdir(dir);
    int calls = 0;
    o = quiet(10);
    o.on_epoch_end = stop_after_two, o.ctx = &calls;
    ck_assert_int_eq(lg_fit(m.tr, train, NULL, o), LG_OK);
    ck_assert_int_eq(calls, 2);
    ck_assert_int_eq(lg_trainer_history_count(m.tr), 5); /* histories of both fits */
    ck_assert_int_eq(lg_trainer_history(m.tr, 4)->epoch, 1);
    lg_dataset_free(train);
    lg_tensor_free(x), lg_tensor_free(y);
    model_free(&m);
}
END_TEST

/* A GRU with dropout and recurrent dropout in training, batch norm after it:
 * the same seed gives the same history, another seed another one; the
 * moving statistics move away from their initial values; inference uses no
 * masks. */
static double gru_fit(uint64_t seed, double *moving_mean0)
{
    enum { T = 5, U = 6 };
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, F)), y = lg_input(g, "y", LG_I32, lg_shape_of(1, -1));
    lg_value steps[T];
    for (int t = 0; t < T; t++) steps[t] = lg_scale(lg_expand_dims(x, 1), 1.0 - 0.1 * t);
    lg_value seq = lg_concat(steps, T, 1); /* [B, T, F] */
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_GRU, U);
    co.seed = 7;
    lg_cell *cell = lg_cell_new(g, "gru", F, co);
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.dropout = 0.3, ro.recurrent_dropout = 0.3, ro.training = true;
    lg_rnn_result tr_r, ev_r;
    ck_assert_int_eq(lg_rnn(g, "gru", cell, seq, ro, &tr_r), LG_OK);
    ro.training = false;
    ck_assert_int_eq(lg_rnn(g, "gru_eval", cell, seq, ro, &ev_r), LG_OK);
    lg_batch_norm_opts bo = lg_batch_norm_opts_default();
    bo.training = true;
    lg_batch_norm_result bn_t, bn_e;
    ck_assert_int_eq(lg_batch_norm(g, "bn", tr_r.output, bo, &bn_t), LG_OK);
    bo.training = false;
    ck_assert_int_eq(lg_batch_norm(g, "bn", ev_r.output, bo, &bn_e), LG_OK);
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = 3;
    lg_value logits = lg_dense(g, "out", bn_t.output, C, d);
    lg_value eval_logits = lg_add(lg_matmul(bn_e.output, lg_graph_find_param(g, "out/kernel"), false, false),
                                  lg_graph_find_param(g, "out/bias"));
    ck_assert_ptr_null(lg_graph_error(g));
    lg_value params[16];
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(g); i++)
        if (lg_param_trainable(lg_graph_param(g, i))) params[n++] = lg_graph_param(g, i);
    lg_optimizer *opt = NULL;
    lg_rmsprop_opts ro2 = lg_rmsprop_opts_default();
    ck_assert_int_eq(lg_optimizer_rmsprop(g, params, n, ro2, &opt), LG_OK);
    lg_model_spec s = lg_model_spec_default();
    s.x = x, s.y = y, s.metric = LG_METRIC_ACCURACY;
    s.loss = lg_sparse_categorical_crossentropy(y, logits, true), s.output = logits;
    s.eval_loss = lg_sparse_categorical_crossentropy(y, eval_logits, true), s.eval_output = eval_logits;
    lg_trainer *tr = NULL;
    ck_assert_int_eq(lg_trainer_new(g, s, opt, &tr), LG_OK);
    ck_assert_int_eq(lg_trainer_add_dropout_mask(tr, tr_r.dropout_mask, 0.3), LG_OK);
    ck_assert_int_eq(lg_trainer_add_dropout_mask(tr, tr_r.recurrent_dropout_mask, 0.3), LG_OK);
    ck_assert_int_eq(lg_trainer_add_batch_norm(tr, &bn_t), LG_OK);
    lg_tensor *xt, *yt;
    blobs(&xt, &yt, 1);
    lg_dataset *ds = dataset(xt, yt, 16, true);
    lg_fit_opts o = quiet(3);
    o.seed = seed;
    ck_assert_int_eq(lg_fit(tr, ds, ds, o), LG_OK);
    double loss = lg_trainer_history(tr, 2)->loss;
    *moving_mean0 = lg_tensor_get(lg_param_tensor(bn_t.moving_mean), 0);
    lg_dataset_free(ds), lg_tensor_free(xt), lg_tensor_free(yt);
    lg_trainer_free(tr), lg_optimizer_free(opt), lg_cell_free(cell), lg_graph_free(g);
    return loss;
}

START_TEST(dropout_and_batch_norm)
{
    double mm1, mm2, mm3;
    double a = gru_fit(1, &mm1), b = gru_fit(1, &mm2), c = gru_fit(2, &mm3);
    ck_assert_double_eq(a, b);
    ck_assert_double_eq(mm1, mm2);
    ck_assert(a != c);
    ck_assert(mm1 != 0); /* moving_mean starts at 0 */
}
END_TEST

/* The stateful tests' model: a stateful layer of `kind` (SF_U units, its
 * cell "rnn") over x [x_batch, SF_T, 1] with batch_size SF_B, Dense(1), MSE
 * and MAE, SGD at lr, the layer's states registered with the trainer. */
enum { SF_B = 4, SF_T = 3, SF_U = 5 };
typedef struct stateful_model {
    lg_graph *g;
    lg_cell *cell;
    lg_rnn_result r;
    lg_optimizer *opt;
    lg_trainer *tr;
} stateful_model;

static stateful_model stateful_new(lg_cell_kind kind, int64_t x_batch, const char *layer, double lr)
{
    stateful_model m = {.g = lg_graph_new()};
    lg_graph *g = m.g;
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(3, x_batch, SF_T, 1));
    lg_value y = lg_input(g, "y", LG_F32, lg_shape_of(2, x_batch, 1));
    lg_cell_opts co = lg_cell_opts_default(kind, SF_U);
    co.seed = 2;
    m.cell = lg_cell_new(g, "rnn", 1, co);
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.stateful = true, ro.batch_size = SF_B;
    ck_assert_int_eq(lg_rnn(g, layer, m.cell, x, ro, &m.r), LG_OK);
    lg_value out = lg_dense(g, "out", m.r.output, 1, lg_dense_opts_default());
    lg_value params[4] = {lg_cell_kernel(m.cell), lg_cell_recurrent_kernel(m.cell), lg_cell_bias(m.cell),
                          lg_graph_find_param(g, "out/kernel")};
    lg_sgd_opts so = lg_sgd_opts_default();
    so.learning_rate = lr;
    ck_assert_int_eq(lg_optimizer_sgd(g, params, 4, so, &m.opt), LG_OK);
    lg_model_spec s = lg_model_spec_default();
    s.x = x, s.y = y, s.loss = lg_mse(y, out), s.output = out, s.metric = LG_METRIC_MAE;
    ck_assert_int_eq(lg_trainer_new(g, s, m.opt, &m.tr), LG_OK);
    ck_assert_int_eq(lg_trainer_add_rnn_state(m.tr, m.r.state), LG_OK);
    return m;
}

/* The sum of |h| over the layer's first state. */
static double stateful_h_sum(const stateful_model *m)
{
    double h = 0;
    for (int i = 0; i < SF_B * SF_U; i++) h += fabs(lg_tensor_get(lg_rnn_state_tensor(m->r.state, 0), i));
    return h;
}

static void stateful_free(stateful_model *m)
{
    lg_trainer_free(m->tr), lg_optimizer_free(m->opt), lg_rnn_state_free(m->r.state), lg_cell_free(m->cell);
    lg_graph_free(m->g);
}

/* A stateful SimpleRNN over consecutive pieces: within an epoch the states
 * carry over (the final state after the epoch is not zero), and fit resets
 * them at each epoch start, so two one-epoch fits with lr 0 give the same
 * loss. */
START_TEST(stateful_states_carry_and_reset)
{
    stateful_model m = stateful_new(LG_CELL_SIMPLE_RNN, SF_B, NULL, 0);
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(3, 3 * SF_B, SF_T, 1), 4, 1, 0, 1);
    lg_tensor *yt = lg_test_uniform(LG_F32, lg_shape_of(2, 3 * SF_B, 1), 4, 2, 0, 1);
    lg_dataset *ds = dataset(xt, yt, SF_B, false);
    ck_assert_msg(lg_fit(m.tr, ds, NULL, quiet(1)) == LG_OK, "%s", lg_last_error());
    ck_assert_msg(lg_fit(m.tr, ds, NULL, quiet(1)) == LG_OK, "%s", lg_last_error());
    ck_assert_double_eq(lg_trainer_history(m.tr, 0)->loss, lg_trainer_history(m.tr, 1)->loss);
    ck_assert(stateful_h_sum(&m) > 0);
    lg_dataset_free(ds), lg_tensor_free(xt), lg_tensor_free(yt);
    stateful_free(&m);
}
END_TEST

/* A batch a stateful layer's states do not hold (here the last, partial
 * one of 3B + 2 examples, x's batch open) fails naming the layer and both
 * sizes, not the check inside the layer that caught it; the states keep
 * what the batches before it left. */
START_TEST(stateful_other_batch)
{
    stateful_model m = stateful_new(LG_CELL_LSTM, -1, "carry", 0.01);
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(3, 3 * SF_B + 2, SF_T, 1), 5, 1, 0, 1);
    lg_tensor *yt = lg_test_uniform(LG_F32, lg_shape_of(2, 3 * SF_B + 2, 1), 5, 2, 0, 1);
    lg_dataset *ds = dataset(xt, yt, SF_B, false);
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, quiet(1)), LG_ERR_SHAPE);
    ck_assert_msg(strstr(lg_last_error(), "stateful layer 'carry': batch 2, its states hold 4 rows"), "%s",
                  lg_last_error());
    ck_assert(stateful_h_sum(&m) > 0);
    lg_dataset_free(ds), lg_tensor_free(xt), lg_tensor_free(yt);
    stateful_free(&m);
}
END_TEST

/* Errors name what was wrong. */
START_TEST(bad_input)
{
    model m = dense_model(0.01);
    lg_tensor *x, *y;
    blobs(&x, &y, 1);
    lg_dataset *ds = dataset(x, y, 32, false);
    lg_fit_opts o = quiet(0);
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "epochs 0"));
    o = quiet(1);
    o.history_csv = "/nonexistent-dir/h.csv";
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "/nonexistent-dir/h.csv"));
    o = quiet(1);
    o.best_checkpoint = "/nonexistent-dir/best.safetensors";
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_ERR_IO);
    ck_assert_int_eq(lg_fit(NULL, ds, NULL, quiet(1)), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, (lg_fit_opts){.epochs = 1, .verbose = 3}), LG_ERR_INVALID_ARGUMENT);
    /* callback options that cannot work */
    int ran = lg_trainer_history_count(m.tr);
    o = quiet(1);
    o.monitor = LG_MONITOR_COUNT;
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "unknown monitor"));
    o.monitor = LG_MONITOR_VAL_METRIC, o.patience = 2;
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "needs validation data"));
    o.monitor = LG_MONITOR_LOSS, o.patience = -1;
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "patience -1"));
    o.patience = 0;
    char device[80];
    memset(device, 'c', sizeof device - 1), device[sizeof device - 1] = '\0';
    o.device = device;
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "is too long"));
    o.device = "tpu:0";
    ck_assert_int_ne(lg_fit(m.tr, ds, NULL, o), LG_OK);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "tpu:0"));
    o = quiet(1);
    {   /* the same model without a metric cannot monitor one */
        lg_model_spec bare = lg_model_spec_default();
        bare.x = m.x, bare.y = m.y, bare.loss = m.loss;
        lg_trainer *plain = NULL;
        ck_assert_int_eq(lg_trainer_new(m.g, bare, m.opt, &plain), LG_OK);
        o.monitor = LG_MONITOR_METRIC, o.patience = 2;
        ck_assert_int_eq(lg_fit(plain, ds, NULL, o), LG_ERR_INVALID_ARGUMENT);
        ck_assert_str_eq(lg_last_error(), "fit: the monitor is a metric, and the model has none");
        lg_trainer_free(plain);
    }
    ck_assert_int_eq(lg_trainer_history_count(m.tr), ran); /* no epoch ran */
    /* a label out of range stops the run, naming epoch and batch */
    lg_tensor_set(y, 40, 7);
    lg_dataset *bad = dataset(x, y, 32, false);
    ck_assert_int_eq(lg_fit(m.tr, bad, NULL, quiet(1)), LG_ERR_RUNTIME);
    ck_assert_msg(strstr(lg_last_error(), "fit, epoch 1, batch 2"), "%s", lg_last_error());
    lg_eval_result r;
    ck_assert_int_eq(lg_evaluate(m.tr, bad, &r), LG_ERR_RUNTIME);
    ck_assert_int_eq(lg_evaluate(m.tr, NULL, &r), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_predict(m.tr, NULL, NULL), LG_ERR_INVALID_ARGUMENT);
    /* a dataset without targets */
    lg_dataset *xonly = dataset(x, NULL, 32, false);
    ck_assert_int_eq(lg_fit(m.tr, xonly, NULL, quiet(1)), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "no targets"));
    /* trainer construction */
    lg_trainer *tr = NULL;
    lg_model_spec s = lg_model_spec_default();
    ck_assert_int_eq(lg_trainer_new(m.g, s, m.opt, &tr), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "x is not set"));
    s.x = m.x, s.y = m.y, s.loss = m.logits;
    ck_assert_int_eq(lg_trainer_new(m.g, s, m.opt, &tr), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "must be a scalar"));
    s.loss = m.loss, s.metric = LG_METRIC_ACCURACY;
    ck_assert_int_eq(lg_trainer_new(m.g, s, m.opt, &tr), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "needs an output"));
    s.metric = LG_METRIC_COUNT;
    ck_assert_int_eq(lg_trainer_new(m.g, s, m.opt, &tr), LG_ERR_INVALID_ARGUMENT);
    s.metric = LG_METRIC_NONE;
    lg_graph *other = lg_graph_new();
    s.output = lg_input(other, "o", LG_F32, lg_shape_of(2, -1, C));
    ck_assert_int_eq(lg_trainer_new(m.g, s, m.opt, &tr), LG_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(lg_last_error(), "trainer: output is a value of another graph");
    lg_graph_free(other);
    s.output = lg_value_invalid(), s.x = m.logits;
    ck_assert_int_eq(lg_trainer_new(m.g, s, m.opt, &tr), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "must be inputs"));
    ck_assert_ptr_null(tr);
    ck_assert_int_eq(lg_trainer_add_dropout_mask(m.tr, m.logits, 0.5), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_trainer_add_dropout_mask(m.tr, m.x, 1.0), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_trainer_add_batch_norm(m.tr, NULL), LG_ERR_INVALID_ARGUMENT);
    lg_batch_norm_result eval_bn;
    ck_assert_int_eq(lg_batch_norm(m.g, "bn", m.logits, lg_batch_norm_opts_default(), &eval_bn), LG_OK);
    ck_assert_int_eq(lg_trainer_add_batch_norm(m.tr, &eval_bn), LG_ERR_INVALID_ARGUMENT); /* inference mode */
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "not a training-mode batch norm"));
    ck_assert_int_eq(lg_trainer_add_rnn_state(m.tr, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_str_eq(lg_metric_name(LG_METRIC_MAE), "mae");
    lg_dataset_free(ds), lg_dataset_free(bad), lg_dataset_free(xonly);
    lg_tensor_free(x), lg_tensor_free(y);
    model_free(&m);
}
END_TEST

/* Every trained parameter's values, flattened. */
static double *param_values(const model *m, int *n)
{
    int total = 0;
    for (int i = 0; i < lg_graph_param_count(m->g); i++)
        total += (int)lg_tensor_numel(lg_param_tensor(lg_graph_param(m->g, i)));
    double *v = malloc((size_t)total * sizeof *v);
    ck_assert_ptr_nonnull(v);
    int k = 0;
    for (int i = 0; i < lg_graph_param_count(m->g); i++) {
        const lg_tensor *t = lg_param_tensor(lg_graph_param(m->g, i));
        for (int64_t j = 0; j < lg_tensor_numel(t); j++) v[k++] = lg_tensor_get(t, j);
    }
    *n = total;
    return v;
}

static void assert_params_equal(const model *m, const double *want, int n)
{
    int got_n;
    double *got = param_values(m, &got_n);
    ck_assert_int_eq(got_n, n);
    for (int i = 0; i < n; i++) ck_assert_msg(got[i] == want[i], "parameter value %d: %g, expected %g", i, got[i], want[i]);
    free(got);
}

/* One NaN in x (batch 2 of epoch 1) stops fit there with LG_ERR_RUNTIME
 * naming epoch and batch, and leaves the parameters as one batch of
 * training left them: equal to a model trained on batch 1 alone. No epoch
 * reaches the history. */
START_TEST(nan_in_x_stops_before_the_step)
{
    model m = dense_model(0.05), ref = dense_model(0.05);
    lg_tensor *x, *y, *x1, *y1;
    blobs(&x, &y, 1), blobs(&x1, &y1, 1);
    lg_tensor_set(x, 40 * F + 2, NAN);
    lg_dataset *ds = dataset(x, y, 32, false);
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, quiet(3)), LG_ERR_RUNTIME);
    ck_assert_msg(strstr(lg_last_error(), "fit, epoch 1, batch 2: the loss") && strstr(lg_last_error(), "is nan"),
                  "%s", lg_last_error());
    ck_assert_int_eq(lg_trainer_history_count(m.tr), 0);
    lg_tensor *first = NULL, *first_y = NULL; /* batch 1 alone */
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(2, 32, F), &first), LG_OK);
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, 32), &first_y), LG_OK);
    memcpy(lg_tensor_data(first), lg_tensor_cdata(x1), lg_tensor_bytes(first));
    memcpy(lg_tensor_data(first_y), lg_tensor_cdata(y1), lg_tensor_bytes(first_y));
    lg_dataset *one = dataset(first, first_y, 32, false);
    ck_assert_int_eq(lg_fit(ref.tr, one, NULL, quiet(1)), LG_OK);
    int n;
    double *want = param_values(&ref, &n);
    assert_params_equal(&m, want, n);
    for (int i = 0; i < n; i++) ck_assert(isfinite(want[i]));
    free(want);
    lg_dataset_free(ds), lg_dataset_free(one);
    lg_tensor_free(x), lg_tensor_free(y), lg_tensor_free(x1), lg_tensor_free(y1);
    lg_tensor_free(first), lg_tensor_free(first_y);
    model_free(&m), model_free(&ref);
}
END_TEST

/* Inf in the first batch: nothing is trained at all. With continue_on_nan
 * fit goes on as before and logs a nan loss. */
START_TEST(inf_in_x_and_continue_on_nan)
{
    model m = dense_model(0.05);
    lg_tensor *x, *y;
    blobs(&x, &y, 1);
    lg_tensor_set(x, 3, INFINITY);
    lg_dataset *ds = dataset(x, y, 32, false);
    int n;
    double *before = param_values(&m, &n);
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, quiet(1)), LG_ERR_RUNTIME);
    ck_assert_msg(strstr(lg_last_error(), "fit, epoch 1, batch 1: the loss"), "%s", lg_last_error());
    assert_params_equal(&m, before, n);
    lg_fit_opts o = quiet(2);
    o.continue_on_nan = true;
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, o), LG_OK);
    ck_assert_int_eq(lg_trainer_history_count(m.tr), 2);
    ck_assert(isnan(lg_trainer_history(m.tr, 1)->loss));
    free(before);
    lg_dataset_free(ds);
    lg_tensor_free(x), lg_tensor_free(y);
    model_free(&m);
}
END_TEST

/* SGD at learning rate 1e6 on a linear regression diverges: the loss grows
 * a millionfold a step until f32 overflows. fit stops at the first inf or
 * nan loss, and the parameters, from the last finite step, are finite. */
START_TEST(divergent_learning_rate_stops)
{
    model m = {.g = lg_graph_new()};
    m.x = lg_input(m.g, "x", LG_F32, lg_shape_of(2, -1, F));
    m.y = lg_input(m.g, "y", LG_F32, lg_shape_of(2, -1, 1));
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = 3;
    m.logits = lg_dense(m.g, "out", m.x, 1, d);
    m.loss = lg_mse(m.y, m.logits);
    lg_sgd_opts so = lg_sgd_opts_default();
    so.learning_rate = 1e6;
    lg_value params[2] = {lg_graph_param(m.g, 0), lg_graph_param(m.g, 1)};
    ck_assert_int_eq(lg_optimizer_sgd(m.g, params, 2, so, &m.opt), LG_OK);
    lg_model_spec s = lg_model_spec_default();
    s.x = m.x, s.y = m.y, s.loss = m.loss;
    ck_assert_int_eq(lg_trainer_new(m.g, s, m.opt, &m.tr), LG_OK);
    lg_tensor *x = lg_test_uniform(LG_F32, lg_shape_of(2, N, F), 9, 1, -1, 1);
    lg_tensor *y = lg_test_uniform(LG_F32, lg_shape_of(2, N, 1), 9, 2, -1, 1);
    lg_dataset *ds = dataset(x, y, 8, false);
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, quiet(5)), LG_ERR_RUNTIME);
    ck_assert_msg(strstr(lg_last_error(), "fit, epoch 1, batch ") && strstr(lg_last_error(), "stopped before the optimizer step"),
                  "%s", lg_last_error());
    int n;
    double *w = param_values(&m, &n);
    double biggest = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_msg(isfinite(w[i]), "parameter value %d is %g", i, w[i]);
        biggest = fmax(biggest, fabs(w[i]));
    }
    ck_assert(biggest > 1e6); /* it did diverge before stopping */
    free(w);
    lg_dataset_free(ds);
    lg_tensor_free(x), lg_tensor_free(y);
    model_free(&m);
}
END_TEST

/* A monitored nan never improves: validation data with a NaN makes every
 * val_loss nan, so no best checkpoint is written and patience 2 stops after
 * two epochs (the training loss, finite, is not what is monitored). */
START_TEST(nan_is_never_an_improvement)
{
    model m = dense_model(0.05);
    lg_tensor *x, *y, *vx, *vy;
    blobs(&x, &y, 1), blobs(&vx, &vy, 2);
    lg_tensor_set(vx, 5, NAN);
    lg_dataset *train = dataset(x, y, 32, false), *val = dataset(vx, vy, 32, false);
    char dir[] = "/tmp/lg_fit_nan_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/best.safetensors", dir);
    lg_fit_opts o = quiet(10);
    o.patience = 2, o.best_checkpoint = path;
    ck_assert_msg(lg_fit(m.tr, train, val, o) == LG_OK, "%s", lg_last_error());
    ck_assert_int_eq(lg_trainer_history_count(m.tr), 2);
    ck_assert(isnan(lg_trainer_history(m.tr, 0)->val_loss) && isfinite(lg_trainer_history(m.tr, 0)->loss));
    ck_assert_int_ne(access(path, F_OK), 0); /* never written */
    rmdir(dir);
    lg_dataset_free(train), lg_dataset_free(val);
    lg_tensor_free(x), lg_tensor_free(y), lg_tensor_free(vx), lg_tensor_free(vy);
    model_free(&m);
}
END_TEST

/* A batch whose x the input does not take is LG_ERR_FEED, as lg_graph_run
 * reports it (fit.h says so). */
START_TEST(wrong_batch_shape_is_a_feed_error)
{
    model m = dense_model(0.05);
    lg_tensor *x = lg_test_uniform(LG_F32, lg_shape_of(2, N, F + 1), 9, 1, -1, 1), *x3, *y;
    blobs(&x3, &y, 1);
    lg_dataset *ds = dataset(x, y, 32, false);
    ck_assert_int_eq(lg_fit(m.tr, ds, NULL, quiet(1)), LG_ERR_FEED);
    ck_assert_msg(strstr(lg_last_error(), "fit, epoch 1, batch 1: feed for input 'x'"), "%s", lg_last_error());
    lg_tensor *yf = lg_test_uniform(LG_F32, lg_shape_of(1, N), 9, 2, 0, 1);
    lg_dataset *bad_y = dataset(x3, yf, 32, false);
    ck_assert_int_eq(lg_fit(m.tr, bad_y, NULL, quiet(1)), LG_ERR_FEED);
    ck_assert_msg(strstr(lg_last_error(), "feed for input 'y': dtype f32"), "%s", lg_last_error());
    lg_dataset_free(ds), lg_dataset_free(bad_y);
    lg_tensor_free(x), lg_tensor_free(x3), lg_tensor_free(y), lg_tensor_free(yf);
    model_free(&m);
}
END_TEST

static Suite *fit_suite(void)
{
    Suite *s = suite_create("fit");
    TCase *tc = tcase_create("fit");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, learns_and_logs);
    tcase_add_test(tc, early_stopping_and_checkpoint);
    tcase_add_test(tc, dropout_and_batch_norm);
    tcase_add_test(tc, stateful_states_carry_and_reset);
    tcase_add_test(tc, stateful_other_batch);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, nan_in_x_stops_before_the_step);
    tcase_add_test(tc, inf_in_x_and_continue_on_nan);
    tcase_add_test(tc, divergent_learning_rate_stops);
    tcase_add_test(tc, nan_is_never_an_improvement);
    tcase_add_test(tc, wrong_batch_shape_is_a_feed_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lg_check_run(fit_suite()); }
