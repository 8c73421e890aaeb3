/*
 * fashion_mnist.c — the Keras RNN guide's MNIST model on Fashion-MNIST:
 * each 28x28 image is a sequence of 28 rows of 28 pixels, read by an
 * LSTM(64), then BatchNormalization and Dense(10) logits, trained with SGD
 * on sparse categorical cross-entropy.
 *
 *     fashion_mnist [--epochs N] [--batch N] [--lr X] [--momentum X]
 *                   [--seed N] [--limit N] [--checkpoint FILE]
 *                   [--history FILE] [--plot FILE] [--dot FILE]
 *                   [--svg FILE] [--full-graph] [--expand SCOPE]
 *                   [--data DIR] [--keras FILE] [--device cpu|cuda:N]
 *                   [--distributed]
 *                   (--help: all of them)
 *
 * Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
 * --limit trains on the first N training images only (quick runs). With
 * --plot or --history the test images also validate after every epoch (the
 * guide's validation_data), so the curves show both; without, they are
 * read once at the end and the epoch times are training only. It
 * prints the model summary, a progress bar per epoch, the test accuracy,
 * and saves the checkpoint (default fashion_mnist.safetensors) and, when
 * asked, the graph and the learning curves. --keras FILE (when built with
 * HDF5) loads weights trained by Keras (keras/train_fashion_mnist.py) into
 * the same layers instead of training, and reports their test accuracy; it
 * saves them only to a --checkpoint given (the default is for training).
 * Defaults: batch 64, SGD lr 0.05 momentum 0.9; one epoch reaches about
 * 0.82 test accuracy (see the README on OpenBLAS cores), --epochs 12
 * reaches 0.890.
 *
 * --distributed trains data-parallel over MPI (distributed_mpi.h):
 * `mpirun -np 2 fashion_mnist --distributed` cuts every batch of --batch
 * images between the ranks and averages their gradients, so it trains the
 * same model as one process; rank 0 prints and writes the files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "graph/loopgrad.h"
#if LG_KERAS
#include "graph/keras.h"
#endif
#ifdef LG_WITH_MPI
#include "graph/distributed_mpi.h"
#endif

enum { ROWS = 28, COLS = 28, UNITS = 64, CLASSES = 10 };

typedef struct args {
    int epochs, batch;
    double lr, momentum;
    uint64_t seed;
    long limit;
    const char *checkpoint, *history, *data, *keras, *device;
    bool distributed;
    cli_outputs out;
} args;

/* Whether argv holds --keras (as getopt_long reads it: "--k" is enough,
 * no other flag starting with k): then --checkpoint has no default, so
 * testing Keras's weights never replaces (or needs to be able to write) a
 * model trained here. */
static bool keras_asked(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        size_t len = strcspn(argv[i], "=");
        if (len >= 3 && len <= 7 && !strncmp(argv[i], "--keras", len)) return true;
    }
    return false;
}

static int parse(int argc, char **argv, args *a)
{
    *a = (args){.epochs = 1, .batch = 64, .lr = 0.05, .momentum = 0.9, .seed = 1,
                .checkpoint = keras_asked(argc, argv) ? NULL : "fashion_mnist.safetensors",
                .data = "/usr/share/datasets/fashion-mnist", .device = "cpu"};
    const cli_flag flags[] = {
        CLI_EPOCHS(&a->epochs), CLI_BATCH(&a->batch), CLI_LR(&a->lr),
        {"momentum", CLI_DOUBLE, &a->momentum, 0, 1, NULL, "SGD momentum"},
        CLI_SEED_FLAG(&a->seed), CLI_LIMIT(&a->limit),
        {"checkpoint", CLI_OUTPUT, &a->checkpoint, 0, 0, "FILE", "save the trained weights (safetensors)"},
        {"history", CLI_OUTPUT, &a->history, 0, 0, "FILE", "write the per-epoch logs as CSV"},
        {"data", CLI_TEXT, &a->data, 0, 0, "DIR", "the Fashion-MNIST IDX files"},
        {"device", CLI_DEVICE, &a->device, 0, 0, NULL, "where training runs: cpu or cuda:N"},
        CLI_PLOT_FLAG(&a->out), CLI_GRAPH_FLAGS(&a->out),
        {"distributed", CLI_SWITCH, &a->distributed, 0, 0, NULL, "train data-parallel over MPI (under mpirun)"},
#if LG_KERAS
        {"keras", CLI_TEXT, &a->keras, 0, 0, "FILE",
         "test Keras's weights (.weights.h5) instead of training (saved only to a --checkpoint given)"},
#endif
    };
    const cli c = {"fashion_mnist", "Trains the Keras RNN guide's LSTM model on Fashion-MNIST and reports test accuracy.",
                   flags, CLI_COUNT(flags)};
    return cli_parse(&c, argc, argv);
}

static lg_status load(const char *dir, const char *name, bool images, lg_tensor **out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lg_idx_opts o = lg_idx_opts_default();
    o.dtype = images ? LG_F32 : LG_I32;
    o.scale = images; /* pixels to [0, 1] */
    return lg_idx_read(path, o, out);
}

/* The first n rows of t (all when n is 0 or too large), as a new tensor. */
static lg_status head_rows(const lg_tensor *t, long n, lg_tensor **out)
{
    lg_shape s = lg_tensor_shape(t);
    if (n <= 0 || n > s.dims[0]) n = s.dims[0];
    s.dims[0] = n;
    lg_status st = lg_tensor_new(lg_tensor_dtype(t), s, out);
    if (st == LG_OK) st = lg_tensor_copy_in(*out, lg_tensor_cdata(t), lg_tensor_bytes(*out));
    return st;
}

typedef struct model {
    lg_graph *g;
    lg_value x, y;
    lg_cell *cell;
    lg_batch_norm_result bn;
    lg_model_spec spec;
} model;

/* LSTM(64) -> BatchNormalization -> Dense(10): a training branch (batch
 * statistics) and an inference branch (moving statistics) sharing every
 * parameter. */
static lg_status build(model *m, uint64_t seed)
{
    lg_graph *g = m->g = lg_graph_new();
    m->x = lg_input(g, "x", LG_F32, lg_shape_of(3, -1, ROWS, COLS));
    m->y = lg_input(g, "y", LG_I32, lg_shape_of(1, -1));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, UNITS);
    co.seed = seed;
    m->cell = lg_cell_new(g, "lstm", COLS, co);
    lg_rnn_opts ro = lg_rnn_opts_default();
    lg_rnn_result r;
    lg_status s = m->cell ? lg_rnn(g, "lstm", m->cell, m->x, ro, &r) : LG_ERR_GRAPH;
    lg_batch_norm_opts bo = lg_batch_norm_opts_default();
    lg_batch_norm_result bn_eval;
    bo.training = true;
    if (s == LG_OK) s = lg_batch_norm(g, "batch_normalization", r.output, bo, &m->bn);
    bo.training = false;
    if (s == LG_OK) s = lg_batch_norm(g, "batch_normalization", r.output, bo, &bn_eval);
    if (s != LG_OK) return s;
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = seed + 1;
    lg_value logits = lg_dense(g, "dense", m->bn.output, CLASSES, d);
    lg_value eval_logits = lg_dense(g, "dense", bn_eval.output, CLASSES, d);
    m->spec = lg_model_spec_default();
    m->spec.x = m->x, m->spec.y = m->y, m->spec.metric = LG_METRIC_ACCURACY;
    m->spec.loss = lg_sparse_categorical_crossentropy(m->y, logits, true);
    m->spec.output = logits;
    m->spec.eval_loss = lg_sparse_categorical_crossentropy(m->y, eval_logits, true);
    m->spec.eval_output = eval_logits;
    return lg_graph_error(g) ? LG_ERR_GRAPH : LG_OK;
}

/* The group of mpirun's processes (MPI_Init on the way). */
static int join_mpi(lg_dist **d)
{
#ifdef LG_WITH_MPI
    if (lg_dist_mpi_world(NULL, NULL, d) == LG_OK) return 0;
    fprintf(stderr, "fashion_mnist: --distributed: %s\n", lg_last_error());
#else
    (void)d;
    fprintf(stderr, "fashion_mnist: --distributed: built without MPI (install libopenmpi-dev, then scripts/setup)\n");
#endif
    return 1;
}

static int fail(const char *what)
{
    fprintf(stderr, "fashion_mnist: %s: %s\n", what, lg_last_error());
    return 1;
}

/* Everything main allocates, freed in one place whatever step failed. */
typedef struct session {
    lg_tensor *xs, *ys, *x_train, *y_train, *x_test, *y_test;
    model m;
    lg_optimizer *opt;
    lg_trainer *tr;
    lg_dataset *train, *test;
    lg_dist *dist; /* NULL: one process */
} session;

static void session_free(session *S)
{
    lg_dataset_free(S->train), lg_dataset_free(S->test);
    lg_tensor_free(S->xs), lg_tensor_free(S->ys), lg_tensor_free(S->x_train), lg_tensor_free(S->y_train);
    lg_tensor_free(S->x_test), lg_tensor_free(S->y_test);
    lg_trainer_free(S->tr), lg_optimizer_free(S->opt), lg_cell_free(S->m.cell), lg_graph_free(S->m.g);
    lg_dist_free(S->dist);
}

/* --dot/--svg: the layer view with the optimizer. */
static int write_graph(session *S, const args *a)
{
    cli_outputs out = a->out;
    out.optimizer = S->opt;
    if (cli_write_graph(&out, S->m.g)) return fail("writing the graph");
    return 0;
}

/* Test, save the checkpoint and, under mpirun, write the graph (see run). */
static int report(session *S, const args *a)
{
    lg_eval_result ev;
    if (lg_evaluate(S->tr, S->test, &ev)) return fail("evaluating"); /* every rank: a group step */
    if (lg_dist_rank(S->dist) != 0) return 0;                          /* rank 0 prints and writes */
    printf("test loss %.4f, test accuracy %.4f\n", ev.loss, ev.metric);
    if (!a->checkpoint) { /* --keras without --checkpoint */
        printf("no checkpoint written (--keras: give --checkpoint FILE to save these weights)\n");
    } else {
        if (lg_checkpoint_save(a->checkpoint, S->m.g, S->opt)) return fail("saving the checkpoint");
        printf("checkpoint written to %s\n", a->checkpoint);
    }
    return lg_dist_size(S->dist) > 1 ? write_graph(S, a) : 0;
}

static int run(session *S, const args *a)
{
    if (load(a->data, "train-images-idx3-ubyte.gz", true, &S->xs) ||
        load(a->data, "train-labels-idx1-ubyte.gz", false, &S->ys) ||
        load(a->data, "t10k-images-idx3-ubyte.gz", true, &S->x_test) ||
        load(a->data, "t10k-labels-idx1-ubyte.gz", false, &S->y_test))
        return fail("loading Fashion-MNIST (apt install dataset-fashion-mnist)");
    if (head_rows(S->xs, a->limit, &S->x_train) || head_rows(S->ys, a->limit, &S->y_train)) return fail("data");

    model *m = &S->m;
    if (build(m, a->seed) != LG_OK) {
        fprintf(stderr, "fashion_mnist: building the model: %s\n", lg_graph_error(m->g) ? lg_graph_error(m->g) : lg_last_error());
        return 1;
    }
    bool lead = lg_dist_rank(S->dist) == 0; /* rank 0 prints and writes */
    if (lead) lg_graph_summary(m->g, stdout);

    lg_value params[8];
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(m->g); i++)
        if (lg_param_trainable(lg_graph_param(m->g, i))) params[n++] = lg_graph_param(m->g, i);
    lg_sgd_opts so = lg_sgd_opts_default();
    so.learning_rate = a->lr, so.momentum = a->momentum;
    if (lg_optimizer_sgd(m->g, params, n, so, &S->opt) || lg_trainer_new(m->g, m->spec, S->opt, &S->tr) ||
        lg_trainer_add_batch_norm(S->tr, &m->bn) ||
        lg_trainer_distribute(S->tr, S->dist))
        return fail("setting up training");
    /* One process draws the graph before training, as the other examples do,
     * so a bad --expand or --dot path fails at once, not after the epochs.
     * Under mpirun rank 0 draws it after the last group step (report): failing
     * alone before them would leave the other ranks waiting in MPI. */
    if (lg_dist_size(S->dist) == 1 && write_graph(S, a)) return 1;

    lg_dataset_opts dopt = lg_dataset_opts_default();
    dopt.batch_size = a->batch, dopt.seed = a->seed + 2;
    if (lg_dataset_new(S->x_train, S->y_train, dopt, &S->train)) return fail("training data");
    dopt.shuffle = false, dopt.batch_size = 500;
    if (lg_dataset_new(S->x_test, S->y_test, dopt, &S->test)) return fail("test data");
#if LG_KERAS
    if (a->keras) {
        if (lg_keras_load_weights(a->keras, m->g)) return fail("loading the Keras weights");
        printf("weights from %s (Keras), not trained here\n", a->keras);
        return report(S, a);
    }
#endif
    if (lead)
        printf("Training on %lld images, testing on %lld (batch %d, SGD lr %g momentum %g, %d process%s)\n",
               (long long)lg_dataset_size(S->train), (long long)lg_dataset_size(S->test), a->batch, a->lr, a->momentum,
               lg_dist_size(S->dist), lg_dist_size(S->dist) > 1 ? "es" : "");

    lg_fit_opts fo = lg_fit_opts_default();
    fo.epochs = a->epochs, fo.history_csv = a->history, fo.seed = a->seed + 3, fo.device = a->device;
    bool curves = a->out.plot || a->history;
    if (lg_fit(S->tr, S->train, curves ? S->test : NULL, fo)) return fail("training");
    int epochs = lg_trainer_history_count(S->tr);
    for (int e = 0; lead && e < epochs; e++) /* the line bench/fashion_mnist.sh reads */
        printf("epoch %d seconds %.3f loss %.4f accuracy %.4f\n", e + 1, lg_trainer_history(S->tr, e)->seconds,
               lg_trainer_history(S->tr, e)->loss, lg_trainer_history(S->tr, e)->metric);
    if (lead && cli_write_plot(&a->out, S->tr, m->spec.metric)) return fail("plotting the learning curves");
    return report(S, a);
}

/* Under mpirun (Open MPI, or a PMI launcher) with more than one process
 * and no --distributed, each process trains alone on all the data and all
 * write the same files: say so. */
static void warn_lone_ranks(const args *a)
{
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (!size) size = getenv("PMI_SIZE");
    if (a->distributed || !size || atoi(size) < 2) return;
    fprintf(stderr, "fashion_mnist: warning: %s processes under mpirun without --distributed: each trains alone and "
                    "they write the same files\n", size);
}

int main(int argc, char **argv)
{
    args a;
    int rc = parse(argc, argv, &a);
    if (rc != CLI_RUN) return rc;
    warn_lone_ranks(&a);
    session S = {0};
    rc = a.distributed ? join_mpi(&S.dist) : 0;
    if (!rc) rc = run(&S, &a);
    session_free(&S);
    return rc;
}
