/*
 * fashion_mnist.c — the Keras RNN guide's MNIST model on Fashion-MNIST:
 * each 28x28 image is a sequence of 28 rows of 28 pixels, read by an
 * LSTM(64), then BatchNormalization and Dense(10) logits, trained with SGD
 * on sparse categorical cross-entropy.
 *
 *     fashion_mnist [--epochs N] [--batch N] [--lr X] [--momentum X]
 *                   [--limit N] [--checkpoint FILE] [--history FILE]
 *                   [--dot FILE] [--svg FILE] [--data DIR] [--distributed]
 *
 * Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
 * --limit trains on the first N training images only (quick runs). It
 * prints the model summary, a progress bar per epoch, the test accuracy,
 * and saves the checkpoint (default fashion_mnist.safetensors) and,
 * when asked, the graph. Defaults: batch 64, SGD lr 0.05 momentum 0.9;
 * one epoch reaches about 0.82 test accuracy, --epochs 12 reaches 0.884.
 *
 * --distributed trains data-parallel over MPI (distributed_mpi.h):
 * `mpirun -np 2 fashion_mnist --distributed` cuts every batch of --batch
 * images between the ranks and averages their gradients, so it trains the
 * same model as one process; rank 0 prints and writes the files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/loopgrad.h"
#include "viz/viz.h"
#ifdef LG_WITH_MPI
#include "graph/distributed_mpi.h"
#endif

enum { ROWS = 28, COLS = 28, UNITS = 64, CLASSES = 10 };

typedef struct args {
    int epochs, batch;
    double lr, momentum;
    long limit;
    const char *checkpoint, *history, *data;
    bool distributed;
} args;

static int usage(const char *arg)
{
    fprintf(stderr, "fashion_mnist: bad argument '%s'\n"
                    "usage: fashion_mnist [--epochs N] [--batch N] [--lr X] [--momentum X] [--limit N]\n"
                    "                     [--checkpoint FILE] [--history FILE] [--data DIR] [--dot FILE] [--svg FILE]\n"
                    "                     [--distributed]\n",
            arg);
    return 2;
}

static int parse(int argc, char **argv, args *a)
{
    *a = (args){.epochs = 1, .batch = 64, .lr = 0.05, .momentum = 0.9,
                .checkpoint = "fashion_mnist.safetensors", .data = "/usr/share/datasets/fashion-mnist"};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(f, "--distributed")) {
            a->distributed = true;
            continue;
        }
        if (!v) return usage(f);
        if (!strcmp(f, "--epochs")) a->epochs = (int)strtol(v, &end, 10);
        else if (!strcmp(f, "--batch")) a->batch = (int)strtol(v, &end, 10);
        else if (!strcmp(f, "--lr")) a->lr = strtod(v, &end);
        else if (!strcmp(f, "--momentum")) a->momentum = strtod(v, &end);
        else if (!strcmp(f, "--limit")) a->limit = strtol(v, &end, 10);
        else if (!strcmp(f, "--checkpoint")) a->checkpoint = v;
        else if (!strcmp(f, "--history")) a->history = v;
        else if (!strcmp(f, "--data")) a->data = v;
        else return usage(f);
        if (end && *end) return usage(v);
        i++;
    }
    return 0;
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
static lg_status build(model *m)
{
    lg_graph *g = m->g = lg_graph_new();
    m->x = lg_input(g, "x", LG_F32, lg_shape_of(3, -1, ROWS, COLS));
    m->y = lg_input(g, "y", LG_I32, lg_shape_of(1, -1));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, UNITS);
    co.seed = 1;
    m->cell = lg_cell_new(g, "lstm", COLS, co);
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.name = "lstm";
    lg_rnn_result r;
    lg_status s = m->cell ? lg_rnn(g, m->cell, m->x, ro, &r) : LG_ERR_GRAPH;
    lg_batch_norm_opts bo = lg_batch_norm_opts_default();
    lg_batch_norm_result bn_eval;
    bo.training = true;
    if (s == LG_OK) s = lg_batch_norm(g, "batch_normalization", r.output, bo, &m->bn);
    bo.training = false;
    if (s == LG_OK) s = lg_batch_norm(g, "batch_normalization", r.output, bo, &bn_eval);
    if (s != LG_OK) return s;
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = 2;
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

int main(int argc, char **argv)
{
    lg_viz_args viz;
    if (lg_viz_args_parse(&argc, argv, &viz) != LG_OK) return fail("arguments");
    args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc;
    lg_dist *dist = NULL;
    if (a.distributed && join_mpi(&dist)) return 1;
    bool lead = lg_dist_rank(dist) == 0; /* rank 0 prints and writes */

    lg_tensor *xs = NULL, *ys = NULL, *x_train = NULL, *y_train = NULL, *x_test = NULL, *y_test = NULL;
    if (load(a.data, "train-images-idx3-ubyte.gz", true, &xs) || load(a.data, "train-labels-idx1-ubyte.gz", false, &ys) ||
        load(a.data, "t10k-images-idx3-ubyte.gz", true, &x_test) || load(a.data, "t10k-labels-idx1-ubyte.gz", false, &y_test))
        return fail("loading Fashion-MNIST (apt install dataset-fashion-mnist)");
    if (head_rows(xs, a.limit, &x_train) || head_rows(ys, a.limit, &y_train)) return fail("data");
    lg_tensor_free(xs), lg_tensor_free(ys);

    model m = {0};
    if (build(&m) != LG_OK) {
        fprintf(stderr, "fashion_mnist: building the model: %s\n", lg_graph_error(m.g) ? lg_graph_error(m.g) : lg_last_error());
        return 1;
    }
    if (lead) lg_graph_summary(m.g, stdout);

    lg_value params[8];
    int n = 0;
    for (int i = 0; i < lg_graph_param_count(m.g); i++)
        if (lg_param_trainable(lg_graph_param(m.g, i))) params[n++] = lg_graph_param(m.g, i);
    lg_sgd_opts so = lg_sgd_opts_default();
    so.learning_rate = a.lr, so.momentum = a.momentum;
    lg_optimizer *opt = NULL;
    lg_trainer *tr = NULL;
    if (lg_optimizer_sgd(m.g, params, n, &so, &opt) || lg_trainer_new(m.g, m.spec, opt, &tr) ||
        lg_trainer_add_batch_norm(tr, &m.bn) || lg_trainer_distribute(tr, dist))
        return fail("setting up training");

    lg_dataset_opts dopt = lg_dataset_opts_default();
    dopt.batch_size = a.batch, dopt.seed = 3;
    lg_dataset *train = NULL, *test = NULL;
    if (lg_dataset_new(x_train, y_train, dopt, &train)) return fail("training data");
    dopt.shuffle = false, dopt.batch_size = 500;
    if (lg_dataset_new(x_test, y_test, dopt, &test)) return fail("test data");
    if (lead)
        printf("Training on %lld images, testing on %lld (batch %d, SGD lr %g momentum %g, %d process%s)\n",
               (long long)lg_dataset_size(train), (long long)lg_dataset_size(test), a.batch, a.lr, a.momentum,
               lg_dist_size(dist), lg_dist_size(dist) > 1 ? "es" : "");

    lg_fit_opts fo = lg_fit_opts_default();
    fo.epochs = a.epochs, fo.history_csv = a.history, fo.seed = 4;
    if (lg_fit(tr, train, NULL, fo)) return fail("training");
    for (int e = 0; lead && e < lg_trainer_history_count(tr); e++) /* the line bench/fashion_mnist.sh reads */
        printf("epoch %d seconds %.3f loss %.4f accuracy %.4f\n", e + 1, lg_trainer_history(tr, e)->seconds,
               lg_trainer_history(tr, e)->loss, lg_trainer_history(tr, e)->metric);
    lg_eval_result ev;
    if (lg_evaluate(tr, test, &ev)) return fail("evaluating");
    if (lead) {
        printf("test loss %.4f, test accuracy %.4f\n", ev.loss, ev.metric);
        if (lg_checkpoint_save(a.checkpoint, m.g, opt)) return fail("saving the checkpoint");
        printf("checkpoint written to %s\n", a.checkpoint);
        if (lg_viz_args_write(m.g, &viz, lg_dot_opts_default())) return fail("writing the graph");
        if (viz.dot_path) printf("graph written to %s\n", viz.dot_path);
    }

    lg_dataset_free(train), lg_dataset_free(test);
    lg_tensor_free(x_train), lg_tensor_free(y_train), lg_tensor_free(x_test), lg_tensor_free(y_test);
    lg_trainer_free(tr), lg_optimizer_free(opt), lg_cell_free(m.cell), lg_graph_free(m.g);
    lg_dist_free(dist);
    return 0;
}
