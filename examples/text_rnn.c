/*
 * text_rnn.c — text classification with stacked SimpleRNNs over a masked
 * embedding, the Keras RNN guide's Embedding + SimpleRNN model on a text
 * task as in Keras's text-classification tutorials: which licence does a
 * passage of 20 to 60 words come from?
 *
 *     Embedding(vocab, 32, mask_zero=True)
 *     -> SimpleRNN(32, return_sequences=True) -> SimpleRNN(32) -> Dense(4) logits
 *
 * trained with Adam on sparse categorical cross-entropy.
 *
 *     text_rnn [--epochs N] [--batch N] [--lr X] [--limit N] [--data DIR]
 *              [--dot FILE] [--svg FILE]
 *
 * Data (examples/text/licences.h): Apache-2.0, MPL-2.0, GPL-2 and GFDL-1.3
 * from /usr/share/common-licenses (--data DIR), cut into pieces of 20 to 60
 * words with every 5th held out as a test passage; the training passages
 * are overlapping crops (one every 2 words) of the text between them. Word
 * ids are padded after the words to 60 steps.
 * Masking: each row's length is computed in the graph from its ids (the
 * count of nonzero ids, Keras's mask_zero), so the dataset carries only ids
 * and labels. Both layers take the lengths: padding never changes a state,
 * and the first layer's outputs past a row's length are zero.
 *
 * --limit N trains on N training passages only (quick runs). Prints the
 * model summary, a progress line per epoch, the test accuracy beside the
 * majority-class baseline and a confusion matrix of the test passages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/loopgrad.h"
#include "text/licences.h"
#include "viz/viz.h"

enum { EMBED = 32, UNITS = 32, MAX_PARAMS = 16 };

typedef struct args {
    int epochs, batch;
    double lr;
    long limit;
    const char *data;
} args;

static int usage(const char *arg)
{
    fprintf(stderr, "text_rnn: bad argument '%s'\n"
                    "usage: text_rnn [--epochs N] [--batch N] [--lr X] [--limit N] [--data DIR]\n"
                    "                [--dot FILE] [--svg FILE]\n",
            arg);
    return 2;
}

static int parse(int argc, char **argv, args *a)
{
    *a = (args){.epochs = 8, .batch = 32, .lr = 0.001, .data = "/usr/share/common-licenses"};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v) return usage(f);
        if (!strcmp(f, "--epochs")) a->epochs = (int)strtol(v, &end, 10);
        else if (!strcmp(f, "--batch")) a->batch = (int)strtol(v, &end, 10);
        else if (!strcmp(f, "--lr")) a->lr = strtod(v, &end);
        else if (!strcmp(f, "--limit")) a->limit = strtol(v, &end, 10);
        else if (!strcmp(f, "--data")) a->data = v;
        else return usage(f);
        if (end && *end) return usage(v);
        i++;
    }
    return 0;
}

typedef struct model {
    lg_graph *g;
    lg_value x, y;
    lg_cell *cells[2];
    lg_model_spec spec;
} model;

/* ids [B, T] -> Embedding -> SimpleRNN (sequences) -> SimpleRNN -> Dense
 * logits [B, 4]. No dropout, so one branch serves training and inference. */
static lg_status build(model *m, int vocab)
{
    lg_graph *g = m->g = lg_graph_new();
    m->x = lg_input(g, "ids", LG_I32, lg_shape_of(2, -1, -1));  /* [B, T] */
    m->y = lg_input(g, "licence", LG_I32, lg_shape_of(1, -1)); /* [B] */
    lg_embedding_opts eo = lg_embedding_opts_default();
    eo.seed = 1;
    lg_value emb = lg_embedding(g, "embedding", m->x, vocab, EMBED, eo); /* [B, T, 32] */
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_SIMPLE_RNN, UNITS);
    co.seed = 2;
    m->cells[0] = lg_cell_new(g, "simple_rnn", EMBED, co);
    co.seed = 3;
    m->cells[1] = lg_cell_new(g, "simple_rnn_1", UNITS, co);
    if (!m->cells[0] || !m->cells[1]) return LG_ERR_GRAPH;

    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.lengths = licences_mask_lengths(m->x); /* [B] */
    ro.return_sequences = true, ro.name = "simple_rnn";
    lg_rnn_result r1, r2;
    lg_status s = lg_rnn(g, m->cells[0], emb, ro, &r1); /* [B, T, 32] */
    ro.return_sequences = false, ro.name = "simple_rnn_1";
    if (s == LG_OK) s = lg_rnn(g, m->cells[1], r1.output, ro, &r2); /* [B, 32], at each row's last word */
    if (s != LG_OK) return s;

    lg_dense_opts d = lg_dense_opts_default();
    d.seed = 4;
    lg_value logits = lg_dense(g, "dense", r2.output, LICENCES_CLASSES, d); /* [B, 4] */
    m->spec = lg_model_spec_default();
    m->spec.x = m->x, m->spec.y = m->y, m->spec.metric = LG_METRIC_ACCURACY;
    m->spec.loss = lg_sparse_categorical_crossentropy(m->y, logits, true);
    m->spec.output = logits;
    return lg_graph_error(g) ? LG_ERR_GRAPH : LG_OK;
}

/* Everything a run owns, freed in one place whatever step failed. */
typedef struct run {
    licences data;
    model m;
    lg_optimizer *opt;
    lg_trainer *tr;
    lg_dataset *train, *test;
    lg_tensor *logits;
} run;

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "text_rnn: %s: %s\n", what, why);
    return 1;
}

static int train_and_test(run *r, const args *a, const lg_viz_args *viz)
{
    licences_opts lo = licences_opts_default();
    lo.dir = a->data, lo.limit = a->limit;
    if (licences_load(lo, &r->data)) return fail("loading the licence texts", r->data.error);
    if (build(&r->m, r->data.vocab_size))
        return fail("building the model", lg_graph_error(r->m.g) ? lg_graph_error(r->m.g) : lg_last_error());
    if (lg_graph_summary(r->m.g, stdout)) return fail("summary", lg_last_error());

    lg_value params[MAX_PARAMS];
    int n = lg_graph_param_count(r->m.g);
    if (n > MAX_PARAMS) return fail("setting up training", "more parameters than expected");
    for (int i = 0; i < n; i++) params[i] = lg_graph_param(r->m.g, i);
    lg_adam_opts ao = lg_adam_opts_default();
    ao.learning_rate = a->lr;
    if (lg_optimizer_adam(r->m.g, params, n, &ao, &r->opt) || lg_trainer_new(r->m.g, r->m.spec, r->opt, &r->tr))
        return fail("setting up training", lg_last_error());
    if (lg_viz_args_write(r->m.g, viz, lg_dot_opts_default())) return fail("writing the graph", lg_last_error());

    lg_dataset_opts dopt = lg_dataset_opts_default();
    dopt.batch_size = a->batch, dopt.seed = 5;
    if (lg_dataset_new(r->data.x_train, r->data.y_train, dopt, &r->train))
        return fail("training data", lg_last_error());
    dopt.shuffle = false, dopt.batch_size = 128;
    if (lg_dataset_new(r->data.x_test, r->data.y_test, dopt, &r->test)) return fail("test data", lg_last_error());
    printf("Training on %lld passages, testing on %lld (vocabulary %d ids, batch %d, Adam lr %g)\n",
           (long long)lg_dataset_size(r->train), (long long)lg_dataset_size(r->test), r->data.vocab_size, a->batch,
           a->lr);

    lg_fit_opts fo = lg_fit_opts_default();
    fo.epochs = a->epochs, fo.verbose = 2;
    if (lg_fit(r->tr, r->train, r->test, fo)) return fail("training", lg_last_error());
    lg_eval_result ev;
    if (lg_evaluate(r->tr, r->test, &ev)) return fail("evaluating", lg_last_error());
    if (lg_predict(r->tr, r->test, &r->logits)) return fail("predicting", lg_last_error());
    if (licences_report(&r->data, r->logits, stdout)) return fail("report", r->data.error);
    int majority;
    double baseline = licences_majority_baseline(&r->data, &majority);
    printf("test accuracy %.4f (majority-class baseline %.4f, always %s), test loss %.4f\n", ev.metric, baseline,
           licences_class_name(majority), ev.loss);
    if (viz->dot_path) printf("graph written to %s\n", viz->dot_path);
    if (viz->svg_path) printf("graph drawn in %s\n", viz->svg_path);
    return 0;
}

int main(int argc, char **argv)
{
    lg_viz_args viz;
    if (lg_viz_args_parse(&argc, argv, &viz) != LG_OK) return fail("arguments", lg_last_error());
    args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc;
    run r = {0};
    rc = train_and_test(&r, &a, &viz);
    lg_tensor_free(r.logits);
    lg_dataset_free(r.train), lg_dataset_free(r.test);
    lg_trainer_free(r.tr), lg_optimizer_free(r.opt);
    lg_cell_free(r.m.cells[0]), lg_cell_free(r.m.cells[1]), lg_graph_free(r.m.g);
    licences_free(&r.data);
    return rc;
}
