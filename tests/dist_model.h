/*
 * dist_model.h — the small recurrent classifiers the data-parallel suites
 * train (test_distributed.c in one process, test_distributed_mpi.c under
 * mpirun): an LSTM or GRU over [B, 5, 3] sequences, Dense(3) logits, sparse
 * categorical cross-entropy, SGD with momentum or Adam, in f32 or f64.
 */
#ifndef LG_TEST_DIST_MODEL_H
#define LG_TEST_DIST_MODEL_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"

enum { DM_T = 5, DM_F = 3, DM_UNITS = 6, DM_C = 3 };

typedef struct dm_spec {
    lg_cell_kind kind;
    bool adam;
    lg_dtype dtype;
    double dropout;  /* > 0: input and recurrent dropout, masks fed by the trainer */
    bool batch_norm; /* between the layer and the logits */
    uint64_t seed;   /* initializers */
} dm_spec;

/* The models every data-parallel suite checks for bit equality: LSTM and
 * GRU, SGD and Adam, f64 and f32. */
enum { DM_GRID_COUNT = 8 };
static const dm_spec dm_grid[DM_GRID_COUNT] = {
    {LG_CELL_LSTM, false, LG_F64, 0, false, 1}, {LG_CELL_LSTM, true, LG_F64, 0, false, 1},
    {LG_CELL_GRU, false, LG_F64, 0, false, 1},  {LG_CELL_GRU, true, LG_F64, 0, false, 1},
    {LG_CELL_LSTM, false, LG_F32, 0, false, 1}, {LG_CELL_LSTM, true, LG_F32, 0, false, 1},
    {LG_CELL_GRU, false, LG_F32, 0, false, 1},  {LG_CELL_GRU, true, LG_F32, 0, false, 1},
};

typedef struct dm_model {
    lg_graph *g;
    lg_cell *cell;
    lg_optimizer *opt;
    lg_trainer *tr;
} dm_model;

static inline dm_model dm_new(dm_spec sp)
{
    dm_model m = {.g = lg_graph_new()};
    lg_graph *g = m.g;
    lg_value x = lg_input(g, "x", sp.dtype, lg_shape_of(3, -1, DM_T, DM_F));
    lg_value y = lg_input(g, "y", LG_I32, lg_shape_of(1, -1));
    lg_cell_opts co = lg_cell_opts_default(sp.kind, DM_UNITS);
    co.dtype = sp.dtype, co.seed = sp.seed;
    m.cell = lg_cell_new(g, "rnn", DM_F, co);
    ck_assert_ptr_nonnull(m.cell);
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.dropout = sp.dropout, ro.recurrent_dropout = sp.dropout, ro.training = true;
    lg_rnn_result r, re;
    ck_assert_int_eq(lg_rnn(g, "rnn", m.cell, x, ro, &r), LG_OK);
    ro.training = false;
    ck_assert_int_eq(lg_rnn(g, "rnn_eval", m.cell, x, ro, &re), LG_OK);
    lg_value h = r.output, he = re.output;
    lg_batch_norm_result bn = {0}, bne;
    if (sp.batch_norm) {
        lg_batch_norm_opts bo = lg_batch_norm_opts_default();
        bo.training = true;
        ck_assert_int_eq(lg_batch_norm(g, "bn", h, bo, &bn), LG_OK);
        bo.training = false;
        ck_assert_int_eq(lg_batch_norm(g, "bn", he, bo, &bne), LG_OK);
        h = bn.output, he = bne.output;
    }
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = sp.seed + 1;
    lg_value logits = lg_dense(g, "out", h, DM_C, d), eval_logits = lg_dense(g, "out", he, DM_C, d);
    ck_assert_ptr_null(lg_graph_error(g));
    lg_value params[16];
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(g); i++)
        if (lg_param_trainable(lg_graph_param(g, i))) params[n++] = lg_graph_param(g, i);
    if (sp.adam) {
        lg_adam_opts a = lg_adam_opts_default();
        a.learning_rate = 0.01;
        ck_assert_int_eq(lg_optimizer_adam(g, params, n, a, &m.opt), LG_OK);
    } else {
        lg_sgd_opts so = lg_sgd_opts_default();
        so.learning_rate = 0.1, so.momentum = 0.9;
        ck_assert_int_eq(lg_optimizer_sgd(g, params, n, so, &m.opt), LG_OK);
    }
    lg_model_spec s = lg_model_spec_default();
    s.x = x, s.y = y, s.metric = LG_METRIC_ACCURACY;
    s.loss = lg_sparse_categorical_crossentropy(y, logits, true), s.output = logits;
    s.eval_loss = lg_sparse_categorical_crossentropy(y, eval_logits, true), s.eval_output = eval_logits;
    ck_assert_int_eq(lg_trainer_new(g, s, m.opt, &m.tr), LG_OK);
    if (sp.dropout > 0) {
        ck_assert_int_eq(lg_trainer_add_dropout_mask(m.tr, r.dropout_mask, sp.dropout), LG_OK);
        ck_assert_int_eq(lg_trainer_add_dropout_mask(m.tr, r.recurrent_dropout_mask, sp.dropout), LG_OK);
    }
    if (sp.batch_norm) ck_assert_int_eq(lg_trainer_add_batch_norm(m.tr, &bn), LG_OK);
    return m;
}

static inline void dm_free(dm_model *m)
{
    lg_trainer_free(m->tr), lg_optimizer_free(m->opt), lg_cell_free(m->cell), lg_graph_free(m->g);
}

/* n sequences with labels that depend on them (the class is the step-sum
 * argmax of the first three features), shuffled in batches of `batch`. */
static inline lg_dataset *dm_data(lg_dtype dt, int n, int batch)
{
    lg_tensor *x = lg_test_uniform(dt, lg_shape_of(3, n, DM_T, DM_F), 11, 1, -1, 1), *y = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, n), &y), LG_OK);
    for (int i = 0; i < n; i++) {
        double s[DM_F] = {0};
        for (int t = 0; t < DM_T; t++)
            for (int f = 0; f < DM_F; f++) s[f] += lg_tensor_get(x, ((int64_t)i * DM_T + t) * DM_F + f);
        lg_tensor_set(y, i, s[1] > s[0] ? (s[2] > s[1] ? 2 : 1) : (s[2] > s[0] ? 2 : 0));
    }
    lg_dataset_opts o = lg_dataset_opts_default();
    o.batch_size = batch, o.shuffle = true, o.seed = 5;
    lg_dataset *ds = NULL;
    ck_assert_int_eq(lg_dataset_new(x, y, o, &ds), LG_OK);
    lg_tensor_free(x), lg_tensor_free(y);
    return ds;
}

/* fit quietly for `epochs`, asserting success. */
static inline void dm_fit(dm_model *m, lg_dataset *ds, int epochs)
{
    lg_fit_opts o = lg_fit_opts_default();
    o.epochs = epochs, o.verbose = 0, o.seed = 9;
    lg_status s = lg_fit(m->tr, ds, NULL, o);
    ck_assert_msg(s == LG_OK, "fit: %s", lg_last_error());
}

/* The trained parameters' values, in order, into v (room for `cap`); their count. */
static inline int dm_params(const dm_model *m, double *v, int cap)
{
    int k = 0;
    for (int i = 0; i < lg_optimizer_param_count(m->opt); i++) {
        const lg_tensor *t = lg_param_tensor(lg_optimizer_param(m->opt, i));
        for (int64_t j = 0; j < lg_tensor_numel(t); j++) {
            ck_assert_int_lt(k, cap);
            v[k++] = lg_tensor_get(t, j);
        }
    }
    return k;
}

/* The largest |a - b| / |b| over the elements (|b| at least 1e-3, so
 * parameters near zero are compared absolutely at that scale). */
static inline double dm_max_rel(const double *a, const double *b, int n)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double r = fabs(a[i] - b[i]) / fmax(fabs(b[i]), 1e-3);
        if (r > worst) worst = r;
    }
    return worst;
}

/* Whether every parameter is bit for bit the same. */
static inline bool dm_bit_equal(const double *a, const double *b, int n)
{
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i])) return false;
    return true;
}

/* This rank's model of sp seeded by its rank (rank 0 with seed 1, sp's
 * seed in the grid), its parameters in mine and those of sp itself in want,
 * which differ on every rank but 0 (asserted); returns their count. The
 * broadcast tests distribute m and expect mine to become want. */
static inline int dm_seeded_by_rank(dm_spec sp, int rank, dm_model *m, double *mine, double *want, int cap)
{
    dm_model ref = dm_new(sp);
    sp.seed = (uint64_t)rank + 1;
    *m = dm_new(sp);
    int n = dm_params(m, mine, cap);
    ck_assert_int_eq(dm_params(&ref, want, cap), n);
    dm_free(&ref);
    ck_assert(rank == 0 ? dm_bit_equal(mine, want, n) : !dm_bit_equal(mine, want, n));
    return n;
}

#endif
