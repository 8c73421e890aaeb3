/*
 * sin_cos.c — a stateful LSTM (Keras stateful=True) that reads sin(t) and
 * predicts cos(t) at every step, over windows of 20 steps cut from one long
 * stretch of the sine, with the states carried from batch to batch.
 *
 *     sin_cos [--epochs N] [--batch N] [--windows N] [--test-windows N]
 *             [--units N] [--lr X] [--plot FILE] [--dot FILE] [--svg FILE]
 *             (--help: all of them)
 *
 * The Keras counterpart is the stateful LSTM example (keras-team's
 * lstm_stateful.py): LSTM(stateful=True, return_sequences=True) with a fixed
 * batch_input_shape, fed consecutive pieces of long sequences without
 * shuffling, states reset at each epoch.
 *
 * Data: one stretch sin(phi + t dt), dt 0.1, is cut into --batch
 * contiguous pieces (one per row of a batch), each into --windows windows
 * of 20 steps. Batch k holds window k of every piece, so example b of
 * batch k + 1 continues example b of batch k, as a stateful layer needs.
 * The test data is another stretch (another phase) cut the same way.
 *
 * Why a target at every step: cos(t) is the derivative of sin(t), and one
 * value of sin(t) does not give its sign, so a network needs at least the
 * previous step to answer. With the state carried, the first step of a
 * window has the whole past behind it; with the state reset it has none.
 * A target at every step measures exactly that difference (with one target
 * at a window's last step, 19 steps of history would hide it).
 *
 * The baseline is the same LSTM without stateful (Keras's default, its
 * state reset to zeros every batch), trained on the same batches; and
 * predicting 0 (MSE 0.5). It prints the summary, a progress bar per epoch,
 * and for the three the test MSE, MAE and the MSE at the windows' first
 * steps, where the state matters most. --epochs 1 --windows 4
 * --test-windows 4 is a quick run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "graph/loopgrad.h"

enum { STEPS = 20 };

typedef struct args {
    int epochs, batch, windows, test_windows, units;
    double lr;
    uint64_t seed;
    cli_outputs out;
} args;

static int parse(int argc, char **argv, args *a)
{
    *a = (args){.epochs = 20, .batch = 32, .windows = 100, .test_windows = 50, .units = 32, .lr = 0.005, .seed = 1};
    const cli_flag flags[] = {
        CLI_EPOCHS(&a->epochs),
        {"batch", CLI_INT, &a->batch, 1, 4096, NULL, "examples per step, the contiguous pieces the sine is cut into"},
        {"windows", CLI_INT, &a->windows, 1, 100000, NULL, "training windows of 20 steps per piece"},
        {"test-windows", CLI_INT, &a->test_windows, 1, 100000, NULL, "test windows per piece"},
        {"units", CLI_INT, &a->units, 1, 4096, NULL, "LSTM units"},
        CLI_LR(&a->lr), CLI_SEED_FLAG(&a->seed), CLI_PLOT_FLAG(&a->out), CLI_GRAPH_FLAGS(&a->out),
    };
    const cli c = {"sin_cos", "A stateful LSTM reads sin(t) and predicts cos(t), against the same LSTM stateless.",
                   flags, CLI_COUNT(flags)};
    return cli_parse(&c, argc, argv);
}

/* One stretch of sin (x) and cos (y) of pieces * windows * STEPS steps, as
 * x, y [windows * pieces, STEPS, 1] with row k * pieces + b holding window k
 * of piece b (the stretch's steps (b * windows + k) * STEPS onwards), so
 * that batch k of `pieces` unshuffled rows is window k of every piece. */
static lg_status stateful_windows(int64_t pieces, int64_t windows, uint64_t seed, lg_tensor **x, lg_tensor **y)
{
    lg_sine_opts o = lg_sine_opts_default();
    o.n = 1, o.steps = pieces * windows * STEPS, o.seed = seed;
    lg_tensor *sx = NULL, *sy = NULL;
    lg_status s = lg_synth_sine(o, &sx, &sy); /* [1, steps, 1] each */
    lg_shape shape = lg_shape_of(3, windows * pieces, (int64_t)STEPS, 1);
    if (!s) s = lg_tensor_new(LG_F32, shape, x);
    if (!s) s = lg_tensor_new(LG_F32, shape, y);
    if (!s) {
        const float *from[2] = {lg_tensor_cdata(sx), lg_tensor_cdata(sy)};
        float *to[2] = {lg_tensor_data(*x), lg_tensor_data(*y)};
        for (int i = 0; i < 2; i++)
            for (int64_t k = 0; k < windows; k++)
                for (int64_t b = 0; b < pieces; b++)
                    memcpy(to[i] + (k * pieces + b) * STEPS, from[i] + (b * windows + k) * STEPS, STEPS * sizeof(float));
    }
    lg_tensor_free(sx), lg_tensor_free(sy);
    return s;
}

typedef struct model {
    lg_graph *g;
    lg_value x, y;
    lg_cell *cell;
    lg_rnn_state *state; /* NULL when not stateful */
    lg_model_spec spec;
    lg_optimizer *opt;
    lg_trainer *tr;
    lg_tensor *pred; /* test predictions [N, STEPS, 1] */
} model;

static void model_free(model *m)
{
    lg_trainer_free(m->tr), lg_optimizer_free(m->opt), lg_tensor_free(m->pred);
    lg_rnn_state_free(m->state), lg_cell_free(m->cell), lg_graph_free(m->g);
}

/* LSTM(units, return_sequences) -> Dense(1) at every step, x [B, 20, 1] ->
 * [B, 20, 1], mean squared error. Stateful, the batch is fixed at --batch
 * (Keras batch_input_shape) and the states carry over; otherwise each run
 * starts from zeros. No dropout, so one branch serves training and
 * inference. */
static lg_status build(model *m, const args *a, bool stateful)
{
    lg_graph *g = m->g = lg_graph_new();
    int64_t batch = stateful ? a->batch : -1;
    m->x = lg_input(g, "x", LG_F32, lg_shape_of(3, batch, (int64_t)STEPS, 1));
    m->y = lg_input(g, "y", LG_F32, lg_shape_of(3, batch, (int64_t)STEPS, 1));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, a->units);
    co.seed = a->seed;
    m->cell = lg_cell_new(g, "lstm", 1, co);
    if (!m->cell) return LG_ERR_GRAPH;
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.return_sequences = true;
    ro.stateful = stateful, ro.batch_size = stateful ? a->batch : 0;
    lg_rnn_result r;
    lg_status s = lg_rnn(g, "lstm", m->cell, m->x, ro, &r);
    if (s) return s;
    m->state = r.state;
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = a->seed + 1;
    lg_value pred = lg_dense(g, "dense", r.output, 1, d);
    m->spec = lg_model_spec_default();
    m->spec.x = m->x, m->spec.y = m->y, m->spec.metric = LG_METRIC_MAE;
    m->spec.loss = lg_mse(m->y, pred);
    m->spec.output = pred;
    return lg_graph_error(g) ? LG_ERR_GRAPH : LG_OK;
}

static int fail(const char *what, const lg_graph *g)
{
    const char *msg = g && lg_graph_error(g) ? lg_graph_error(g) : lg_last_error();
    fprintf(stderr, "sin_cos: %s: %s\n", what, msg);
    return 1;
}

/* Build, train on `train` and predict `test` (into m->pred); the stateful
 * model also prints its summary and writes its graph. */
static int train_model(model *m, const args *a, bool stateful, lg_dataset *train, lg_dataset *test)
{
    if (build(m, a, stateful)) return fail("building the model", m->g);
    if (stateful) lg_graph_summary(m->g, stdout);
    lg_value params[16];
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(m->g) && n < 16; i++)
        if (lg_param_trainable(lg_graph_param(m->g, i))) params[n++] = lg_graph_param(m->g, i);
    lg_adam_opts ao = lg_adam_opts_default();
    ao.learning_rate = a->lr;
    if (lg_optimizer_adam(m->g, params, n, ao, &m->opt) || lg_trainer_new(m->g, m->spec, m->opt, &m->tr) ||
        (stateful && lg_trainer_add_rnn_state(m->tr, m->state)))
        return fail("setting up training", m->g);
    if (stateful && cli_write_graph(&a->out, m->g)) return fail("writing the graph", NULL);
    printf("%s LSTM:\n", stateful ? "Stateful" : "Stateless");
    lg_fit_opts fo = lg_fit_opts_default();
    fo.epochs = a->epochs;
    if (lg_fit(m->tr, train, NULL, fo)) return fail("training", NULL);
    if (lg_predict(m->tr, test, &m->pred)) return fail("predicting", NULL);
    return 0;
}

/* Errors of predictions p against targets y (both [N, STEPS, 1]): mean
 * squared and absolute error over every step, and the squared error over
 * each window's first step only, where the state matters most. */
typedef struct errors {
    double mse, mae, mse_first;
} errors;

static errors errors_of(const lg_tensor *p, const lg_tensor *y)
{
    const float *pd = lg_tensor_cdata(p), *yd = lg_tensor_cdata(y);
    int64_t n = lg_tensor_numel(y);
    errors e = {0};
    for (int64_t i = 0; i < n; i++) {
        double d = (double)pd[i] - yd[i];
        e.mse += d * d, e.mae += fabs(d);
        if (i % STEPS == 0) e.mse_first += d * d;
    }
    e.mse /= (double)n, e.mae /= (double)n, e.mse_first /= (double)(n / STEPS);
    return e;
}

static void print_errors(const char *name, errors e)
{
    printf("%-28s %9.5f %9.5f %15.5f\n", name, e.mse, e.mae, e.mse_first);
}

/* Everything main allocates, freed in one place whatever happened. */
typedef struct session {
    model stateful, stateless;
    lg_tensor *x_train, *y_train, *x_test, *y_test, *zeros;
    lg_dataset *train, *test;
} session;

static void session_free(session *s)
{
    model_free(&s->stateful), model_free(&s->stateless);
    lg_dataset_free(s->train), lg_dataset_free(s->test);
    lg_tensor_free(s->x_train), lg_tensor_free(s->y_train), lg_tensor_free(s->x_test), lg_tensor_free(s->y_test);
    lg_tensor_free(s->zeros);
}

static int run(session *S, const args *a)
{
    if (stateful_windows(a->batch, a->windows, 11, &S->x_train, &S->y_train) ||
        stateful_windows(a->batch, a->test_windows, 12, &S->x_test, &S->y_test))
        return fail("making the data", NULL);
    /* In order and whole batches of `pieces`: the layout above depends on it. */
    lg_dataset_opts dopt = lg_dataset_opts_default();
    dopt.batch_size = a->batch, dopt.shuffle = false;
    if (lg_dataset_new(S->x_train, S->y_train, dopt, &S->train) || lg_dataset_new(S->x_test, S->y_test, dopt, &S->test))
        return fail("datasets", NULL);
    printf("Training on %d pieces x %d windows of %d steps (batch %d, Adam lr %g), testing on %d x %d\n", a->batch,
           a->windows, STEPS, a->batch, a->lr, a->batch, a->test_windows);

    int rc = train_model(&S->stateful, a, true, S->train, S->test);
    if (!rc) rc = train_model(&S->stateless, a, false, S->train, S->test);
    if (rc) return rc;
    lg_eval_result ev;
    if (lg_evaluate(S->stateful.tr, S->test, &ev)) return fail("evaluating", NULL);
    if (lg_tensor_new(LG_F32, lg_tensor_shape(S->y_test), &S->zeros) || lg_tensor_fill(S->zeros, 0))
        return fail("baseline", NULL);
    errors carried = errors_of(S->stateful.pred, S->y_test), reset = errors_of(S->stateless.pred, S->y_test),
           zero = errors_of(S->zeros, S->y_test);
    printf("\n%-28s %9s %9s %15s\n", "test", "MSE", "MAE", "MSE at step 0");
    print_errors("stateful (state carried)", carried);
    print_errors("stateless (reset each batch)", reset);
    print_errors("predicting 0", zero);
    printf("test MSE %.5f, MAE %.5f with the state carried (stateless: MSE %.5f; predicting 0: MSE %.5f)\n", ev.loss,
           ev.metric, reset.mse, zero.mse);
    if (cli_write_plot(&a->out, S->stateful.tr, LG_METRIC_MAE)) return fail("plotting the learning curves", NULL);
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
