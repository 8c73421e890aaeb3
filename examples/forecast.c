/*
 * forecast.c — temperature forecasting on a real monthly series, after the
 * Keras timeseries weather tutorial (keras.io's "Timeseries forecasting for
 * weather prediction", and its longer form in Chollet's "Deep Learning with
 * Python", chapter 10): windows of the past 24 months predict the
 * temperature --ahead months after the window's last month, with two
 * recurrent models compared to the naive "same as the last value" forecast.
 *
 *     forecast [--epochs N] [--ahead N] [--units N] [--lr X] [--data FILE]
 *              [--plot FILE] [--dot FILE] [--svg FILE]   (--help: all)
 *
 * Data: data/elnino.csv (NOAA's monthly El Nino 1+2 sea surface temperature,
 * 1950-2010, see data/README.md), found in the source tree by default. Each
 * split holds the windows whose target month falls in it, in time order:
 * training targets up to 1989, validation 1990-1999, test 2000-2010 (a
 * window's inputs may reach back into the split before, as a forecaster's
 * would). The series is standardized with the mean and standard deviation
 * of 1950-1989.
 *
 * Models (both RMSprop on the mean squared error, MAE as the metric):
 *   (a) LSTM(32, recurrent_dropout 0.25) -> Dropout(0.5) -> Dense(1)
 *   (b) GRU(32, recurrent_dropout 0.5, return_sequences)
 *       -> GRU(32, dropout 0.2, recurrent_dropout 0.5) -> Dropout(0.5) -> Dense(1)
 * Each has a training branch (dropout masks fed fresh every batch by the
 * trainer) and an inference branch without dropout, sharing the weights.
 * The epoch with the best validation loss is saved (forecast_lstm.safetensors,
 * forecast_gru.safetensors in the current directory) and reloaded for the
 * test, as the tutorial's ModelCheckpoint(save_best_only) does.
 *
 * It prints each model's summary and training progress, then the test MAE in
 * degrees Celsius of the naive forecast and of both models over the same
 * test windows, and the last months of the test period. --dot and --svg
 * write the LSTM model's graph, --plot its learning curves. --epochs 1 is a quick run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "graph/loopgrad.h"

#ifndef LG_DATA_DIR
#define LG_DATA_DIR "data"
#endif

enum { WINDOW = 24, BATCH = 32, TRAIN_END = 480, VAL_END = 600, SHOWN = 6 }; /* months; 480 = 1990-01 */

typedef struct args {
    int epochs, ahead, units;
    double lr;
    uint64_t seed;
    const char *data;
    cli_outputs out;
} args;

static int parse(int argc, char **argv, args *a)
{
    *a = (args){.epochs = 60, .ahead = 3, .units = 32, .lr = 0.001, .seed = 1, .data = LG_DATA_DIR "/elnino.csv"};
    const cli_flag flags[] = {
        CLI_EPOCHS(&a->epochs),
        {"ahead", CLI_INT, &a->ahead, 1, 24, NULL, "months between a window's last month and its target"},
        {"units", CLI_INT, &a->units, 1, 4096, NULL, "units of each recurrent layer"},
        CLI_LR(&a->lr), CLI_SEED_FLAG(&a->seed),
        {"data", CLI_TEXT, &a->data, 0, 0, "FILE", "the monthly series (CSV)"},
        CLI_PLOT_FLAG(&a->out), CLI_GRAPH_FLAGS(&a->out),
    };
    const cli c = {"forecast", "Forecasts a monthly sea temperature with an LSTM and stacked GRUs, against the naive forecast.",
                   flags, CLI_COUNT(flags)};
    return cli_parse(&c, argc, argv);
}

/* ---- data ------------------------------------------------------------------------ */

/* The rows [from, T) of t [T, ...], as a new tensor. */
static lg_status tail_rows(const lg_tensor *t, int64_t from, lg_tensor **out)
{
    lg_shape s = lg_tensor_shape(t);
    size_t row = lg_tensor_bytes(t) / (size_t)s.dims[0];
    s.dims[0] -= from;
    lg_status st = lg_tensor_new(lg_tensor_dtype(t), s, out);
    if (!st) st = lg_tensor_copy_in(*out, (const char *)lg_tensor_cdata(t) + (size_t)from * row, lg_tensor_bytes(*out));
    return st;
}

/* The windows whose target month lies in rows [from, to) of series [T, 1]:
 * window i is rows i .. i + WINDOW - 1, x [b, WINDOW, 1], and its target is
 * row i + delay (delay = WINDOW - 1 + ahead), y [b, 1], taken from targets,
 * the series shifted by delay rows. Keras's recipe (the delay option) also
 * cuts the inputs to data[:-delay], which keeps the series' last WINDOW - 1
 * months from ever being targets; shifting only the targets keeps them. */
static lg_status windows(const lg_tensor *series, const lg_tensor *targets, int64_t ahead, int64_t from, int64_t to,
                         bool shuffle, uint64_t seed, lg_dataset **out)
{
    int64_t delay = WINDOW - 1 + ahead;
    lg_timeseries_opts o = lg_timeseries_opts_default(WINDOW);
    o.start_index = from > delay ? from - delay : 0;
    o.end_index = to - ahead; /* the last window ends `ahead` months before its target */
    o.batch.batch_size = BATCH, o.batch.shuffle = shuffle, o.batch.seed = seed;
    return lg_timeseries_dataset_new(series, targets, o, out);
}

/* ---- models ---------------------------------------------------------------------- */

enum { MAX_CELLS = 2, MAX_MASKS = 2 * MAX_CELLS + 1 };

typedef struct model {
    const char *name, *checkpoint;
    lg_graph *g;
    lg_value x, y;
    lg_cell *cells[MAX_CELLS];
    int n_cells;
    lg_value masks[MAX_MASKS]; /* dropout mask inputs of the training branch */
    double rates[MAX_MASKS];
    int n_masks;
    lg_model_spec spec;
    lg_optimizer *opt;
    lg_trainer *tr;
    lg_tensor *pred; /* test predictions [N, 1], standardized */
    uint64_t rng;    /* --seed: cells rng, rng + 1, ...; Dense rng + 8; dropout rng + 6 */
} model;

static void model_free(model *m)
{
    lg_trainer_free(m->tr), lg_optimizer_free(m->opt), lg_tensor_free(m->pred);
    for (int i = 0; i < m->n_cells; i++) lg_cell_free(m->cells[i]);
    lg_graph_free(m->g);
}

static void add_mask(model *m, lg_value mask, double rate)
{
    if (lg_value_ok(mask)) m->masks[m->n_masks] = mask, m->rates[m->n_masks++] = rate;
}

/* A recurrent layer over a new cell, called twice: on the training branch
 * *xt with dropout (its masks kept for the trainer) and on the inference
 * branch *xe without; both are replaced by the layer's outputs. */
static lg_status recurrent(model *m, lg_cell_kind kind, const char *name, int units, lg_value *xt, lg_value *xe,
                           lg_rnn_opts o)
{
    lg_cell_opts co = lg_cell_opts_default(kind, units);
    co.seed = m->rng + (uint64_t)m->n_cells;
    lg_cell *cell = m->cells[m->n_cells++] = lg_cell_new(m->g, name, (int)lg_value_shape(*xt).dims[2], co);
    if (!cell) return LG_ERR_GRAPH;
    lg_rnn_result rt, re;
    o.training = true;
    lg_status s = lg_rnn(m->g, name, cell, *xt, o, &rt);
    o.training = false;
    if (!s) s = lg_rnn(m->g, name, cell, *xe, o, &re);
    if (s) return s;
    add_mask(m, rt.dropout_mask, o.dropout);
    add_mask(m, rt.recurrent_dropout_mask, o.recurrent_dropout);
    *xt = rt.output, *xe = re.output;
    return LG_OK;
}

/* Dropout(0.5) -> Dense(1) on both branches' last outputs h [B, u], and the
 * losses: the model spec's training and inference halves. */
static lg_status head(model *m, lg_value ht, lg_value he)
{
    lg_value mask = lg_input(m->g, "dropout/mask", LG_F32, lg_shape_of(2, -1, lg_value_shape(ht).dims[1]));
    add_mask(m, mask, 0.5);
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = m->rng + 8;
    lg_value pt = lg_dense(m->g, "dense", lg_dropout(ht, mask, 0.5), 1, d); /* [B, 1] */
    lg_value pe = lg_dense(m->g, "dense", he, 1, d);
    m->spec = lg_model_spec_default();
    m->spec.x = m->x, m->spec.y = m->y, m->spec.metric = LG_METRIC_MAE;
    m->spec.loss = lg_mse(m->y, pt), m->spec.output = pt;
    m->spec.eval_loss = lg_mse(m->y, pe), m->spec.eval_output = pe;
    return lg_graph_error(m->g) ? LG_ERR_GRAPH : LG_OK;
}

/* (a) the LSTM with recurrent dropout, or (b) the two stacked GRUs. */
static lg_status build(model *m, bool gru, int units)
{
    m->g = lg_graph_new();
    m->x = lg_input(m->g, "x", LG_F32, lg_shape_of(3, -1, (int64_t)WINDOW, 1));
    m->y = lg_input(m->g, "y", LG_F32, lg_shape_of(2, -1, 1));
    lg_value xt = m->x, xe = m->x;
    lg_rnn_opts o = lg_rnn_opts_default();
    lg_status s;
    if (!gru) {
        o.recurrent_dropout = 0.25;
        s = recurrent(m, LG_CELL_LSTM, "lstm", units, &xt, &xe, o);
    } else {
        /* No input dropout on the first GRU: its input is one feature, and a
         * variational mask would blank whole sequences. */
        o.recurrent_dropout = 0.5, o.return_sequences = true; /* [B, WINDOW, u] for the next GRU */
        s = recurrent(m, LG_CELL_GRU, "gru", units, &xt, &xe, o);
        o.dropout = 0.2, o.return_sequences = false;
        if (!s) s = recurrent(m, LG_CELL_GRU, "gru_1", units, &xt, &xe, o);
    }
    return s ? s : head(m, xt, xe);
}

static int fail(const char *what, const lg_graph *g)
{
    const char *msg = g && lg_graph_error(g) ? lg_graph_error(g) : lg_last_error();
    fprintf(stderr, "forecast: %s: %s\n", what, msg);
    return 1;
}

/* Build, train with validation keeping the best epoch's weights, reload
 * them, and predict the test windows into m->pred. */
static int train_model(model *m, bool gru, const args *a, lg_dataset *train, lg_dataset *val, lg_dataset *test,
                       const cli_outputs *out)
{
    if (build(m, gru, a->units)) return fail("building the model", m->g);
    printf("\nModel (%s): %s\n", gru ? "b" : "a", m->name);
    lg_graph_summary(m->g, stdout);
    lg_value params[16];
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(m->g) && n < 16; i++)
        if (lg_param_trainable(lg_graph_param(m->g, i))) params[n++] = lg_graph_param(m->g, i);
    lg_rmsprop_opts ro = lg_rmsprop_opts_default();
    ro.learning_rate = a->lr;
    if (lg_optimizer_rmsprop(m->g, params, n, ro, &m->opt) || lg_trainer_new(m->g, m->spec, m->opt, &m->tr))
        return fail("setting up training", m->g);
    for (int i = 0; i < m->n_masks; i++)
        if (lg_trainer_add_dropout_mask(m->tr, m->masks[i], m->rates[i])) return fail("dropout masks", NULL);
    if (out && cli_write_graph(out, m->g)) return fail("writing the graph", NULL);

    lg_fit_opts fo = lg_fit_opts_default();
    fo.epochs = a->epochs, fo.seed = m->rng + 6, fo.best_checkpoint = m->checkpoint;
    if (lg_fit(m->tr, train, val, fo)) return fail("training", NULL);
    if (lg_checkpoint_load(m->checkpoint, m->g, NULL, lg_checkpoint_opts_default()))
        return fail("loading the best epoch", NULL);
    if (lg_predict(m->tr, test, &m->pred)) return fail("predicting", NULL);
    return 0;
}

/* ---- evaluation -------------------------------------------------------------------- */

/* The test windows' targets and naive forecasts (each window's last value),
 * as new [N, 1] tensors, standardized. */
static lg_status naive_forecasts(lg_dataset *ds, lg_tensor **target, lg_tensor **naive)
{
    lg_shape s = lg_shape_of(2, lg_dataset_size(ds), 1);
    lg_status st = lg_tensor_new(LG_F32, s, target);
    if (!st) st = lg_tensor_new(LG_F32, s, naive);
    int64_t at = 0;
    for (int k = 0; !st && k < lg_dataset_batch_count(ds); k++) {
        lg_tensor *bx = NULL, *by = NULL;
        st = lg_dataset_batch(ds, k, &bx, &by); /* [b, WINDOW, 1], [b, 1] */
        for (int64_t i = 0; !st && i < lg_tensor_shape(by).dims[0]; i++, at++) {
            lg_tensor_set(*target, at, lg_tensor_get(by, i));
            lg_tensor_set(*naive, at, lg_tensor_get(bx, i * WINDOW + WINDOW - 1));
        }
    }
    return st;
}

/* Mean |p - y| of two standardized [N, 1] tensors, in degrees. */
static double mae_degrees(const lg_tensor *p, const lg_tensor *y, double std)
{
    double sum = 0;
    for (int64_t i = 0; i < lg_tensor_numel(y); i++) sum += fabs(lg_tensor_get(p, i) - lg_tensor_get(y, i));
    return sum / (double)lg_tensor_numel(y) * std;
}

/* Everything main allocates, freed in one place whatever happened. */
typedef struct session {
    lg_tensor *series, *dates, *targets, *mean, *std, *target, *naive;
    lg_dataset *train, *val, *test;
    model lstm, gru;
} session;

static void session_free(session *s)
{
    model_free(&s->lstm), model_free(&s->gru);
    lg_dataset_free(s->train), lg_dataset_free(s->val), lg_dataset_free(s->test);
    lg_tensor_free(s->series), lg_tensor_free(s->dates), lg_tensor_free(s->targets), lg_tensor_free(s->mean);
    lg_tensor_free(s->std), lg_tensor_free(s->target), lg_tensor_free(s->naive);
}

static lg_status read_columns(const char *path, const char *const *names, int n, lg_tensor **out)
{
    lg_csv_opts o = lg_csv_opts_default();
    o.names = names, o.n_columns = n;
    return lg_csv_read(path, o, out);
}

static int run(session *S, const args *a)
{
    static const char *const sst[] = {"sst"}, *const date[] = {"year", "month"};
    if (read_columns(a->data, sst, 1, &S->series) || read_columns(a->data, date, 2, &S->dates))
        return fail("reading the data", NULL);
    int64_t T = lg_tensor_shape(S->series).dims[0];
    if (T <= VAL_END + WINDOW)
        return fprintf(stderr,
                       "forecast: %s has %lld months; needs at least %d (training on the first %d, validating on the "
                       "next %d, testing on the rest; the shipped series, 1950-2010, has 732)\n",
                       a->data, (long long)T, VAL_END + WINDOW + 1, TRAIN_END, VAL_END - TRAIN_END),
               1;
    if (lg_standardize(S->series, TRAIN_END, &S->mean, &S->std) ||
        tail_rows(S->series, WINDOW - 1 + a->ahead, &S->targets))
        return fail("preparing the series", NULL);
    double mean = lg_tensor_get(S->mean, 0), std = lg_tensor_get(S->std, 0);
    if (windows(S->series, S->targets, a->ahead, 0, TRAIN_END, true, a->seed + 4, &S->train) ||
        windows(S->series, S->targets, a->ahead, TRAIN_END, VAL_END, false, 0, &S->val) ||
        windows(S->series, S->targets, a->ahead, VAL_END, T, false, 0, &S->test))
        return fail("windows", NULL);
    printf("%lld months from %s (training mean %.2f degC, std %.2f); windows of %d months predicting %d month%s ahead:"
           " %lld training, %lld validation, %lld test\n",
           (long long)T, a->data, mean, std, WINDOW, a->ahead, a->ahead > 1 ? "s" : "",
           (long long)lg_dataset_size(S->train), (long long)lg_dataset_size(S->val), (long long)lg_dataset_size(S->test));

    S->lstm = (model){.name = "LSTM with recurrent dropout", .checkpoint = "forecast_lstm.safetensors", .rng = a->seed};
    S->gru = (model){.name = "two stacked GRUs with dropout", .checkpoint = "forecast_gru.safetensors", .rng = a->seed};
    int rc = train_model(&S->lstm, false, a, S->train, S->val, S->test, &a->out);
    if (!rc) rc = train_model(&S->gru, true, a, S->train, S->val, S->test, NULL);
    if (rc) return rc;
    if (naive_forecasts(S->test, &S->target, &S->naive)) return fail("naive forecasts", NULL);

    printf("\nTest MAE over %lld windows (targets %d-%02d to the end, %d month%s ahead):\n",
           (long long)lg_dataset_size(S->test), (int)lg_tensor_get(S->dates, 2 * VAL_END),
           (int)lg_tensor_get(S->dates, 2 * VAL_END + 1), a->ahead, a->ahead > 1 ? "s" : "");
    double naive = mae_degrees(S->naive, S->target, std);
    const model *models[] = {&S->lstm, &S->gru};
    for (int i = 0; i < 2; i++) {
        lg_eval_result ev;
        if (lg_evaluate(models[i]->tr, S->test, &ev)) return fail("evaluating", NULL);
        printf("  (%c) %-30s test MAE %.3f degC (naive baseline %.3f degC)\n", 'a' + i, models[i]->name,
               ev.metric * std, naive);
    }

    printf("\n%-9s %8s %8s %8s %8s\n", "month", "actual", "naive", "LSTM", "GRUs");
    int64_t n = lg_tensor_numel(S->target);
    for (int64_t i = n > SHOWN ? n - SHOWN : 0; i < n; i++) {
        int64_t row = VAL_END + i; /* test window i's target month */
        printf("%4d-%02d   %8.2f %8.2f %8.2f %8.2f\n", (int)lg_tensor_get(S->dates, 2 * row),
               (int)lg_tensor_get(S->dates, 2 * row + 1), lg_tensor_get(S->target, i) * std + mean,
               lg_tensor_get(S->naive, i) * std + mean, lg_tensor_get(S->lstm.pred, i) * std + mean,
               lg_tensor_get(S->gru.pred, i) * std + mean);
    }
    if (cli_write_plot(&a->out, S->lstm.tr, LG_METRIC_MAE)) return fail("plotting the learning curves", NULL);
    return 0;
}

int main(int argc, char **argv)
{
    args a;
    int rc = parse(argc, argv, &a);
    if (rc != CLI_RUN) return rc;
    session S = {0};
    rc = run(&S, &a);
    session_free(&S);
    return rc;
}
