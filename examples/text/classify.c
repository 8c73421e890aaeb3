/* classify.c — the text examples' shared driver (classify.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "text/classify.h"
#include "text/licences.h"

enum { MAX_PARAMS = 16 };

typedef struct args {
    int epochs, batch;
    double lr;
    uint64_t seed;
    long limit;
    const char *data;
    cli_outputs out;
} args;

static int parse(const text_example *ex, int argc, char **argv, args *a)
{
    *a = (args){.epochs = ex->epochs, .batch = 32, .lr = ex->lr, .seed = 1, .data = "/usr/share/common-licenses"};
    const cli_flag flags[] = {
        CLI_EPOCHS(&a->epochs), CLI_BATCH(&a->batch), CLI_LR(&a->lr), CLI_SEED_FLAG(&a->seed), CLI_LIMIT(&a->limit),
        {"data", CLI_TEXT, &a->data, 0, 0, "DIR", "the licence texts"},
        CLI_PLOT_FLAG(&a->out), CLI_GRAPH_FLAGS(&a->out),
    };
    const cli c = {ex->name, "Which licence is a passage from? Trains on Debian's licence texts and reports test accuracy.",
                   flags, CLI_COUNT(flags)};
    return cli_parse(&c, argc, argv);
}

/* Everything a run owns, freed in one place whatever step failed. */
typedef struct run {
    const text_example *ex;
    licences data;
    lg_graph *g;
    lg_cell *cells[TEXT_MAX_CELLS];
    lg_model_spec spec;
    lg_optimizer *opt;
    lg_trainer *tr;
    lg_dataset *train, *test;
    lg_tensor *logits;
} run;

/* ids [B, T] -> Embedding -> the example's layers -> Dense logits [B, 4].
 * No dropout, so one branch serves training and inference. */
static lg_status build(run *r, uint64_t seed)
{
    lg_graph *g = r->g = lg_graph_new();
    lg_value x = lg_input(g, "ids", LG_I32, lg_shape_of(2, -1, -1)); /* [B, T] */
    lg_value y = lg_input(g, "licence", LG_I32, lg_shape_of(1, -1)); /* [B] */
    lg_embedding_opts eo = lg_embedding_opts_default();
    eo.seed = seed;
    lg_value emb = lg_embedding(g, "embedding", x, r->data.vocab_size, TEXT_EMBED, eo, NULL); /* [B, T, 32] */
    lg_value features;
    lg_status s = r->ex->layers(g, emb, licences_mask_lengths(x), seed + 1, r->cells, &features);
    if (s != LG_OK) return s;
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = seed + 3;
    lg_value logits = lg_dense(g, "dense", features, LICENCES_CLASSES, d); /* [B, 4] */
    r->spec = lg_model_spec_default();
    r->spec.x = x, r->spec.y = y, r->spec.metric = LG_METRIC_ACCURACY;
    r->spec.loss = lg_sparse_categorical_crossentropy(y, logits, true);
    r->spec.output = logits;
    return lg_graph_error(g) ? LG_ERR_GRAPH : LG_OK;
}

static int fail(const run *r, const char *what, const char *why)
{
    fprintf(stderr, "%s: %s: %s\n", r->ex->name, what, why);
    return 1;
}

static int train_and_test(run *r, const args *a)
{
    licences_opts lo = licences_opts_default();
    lo.dir = a->data, lo.limit = a->limit;
    if (licences_load(lo, &r->data)) return fail(r, "loading the licence texts", r->data.error);
    if (build(r, a->seed))
        return fail(r, "building the model", r->g && lg_graph_error(r->g) ? lg_graph_error(r->g) : lg_last_error());
    if (lg_graph_summary(r->g, stdout)) return fail(r, "summary", lg_last_error());

    lg_value params[MAX_PARAMS];
    int n = lg_graph_param_count(r->g);
    if (n > MAX_PARAMS) return fail(r, "setting up training", "more parameters than expected");
    for (int i = 0; i < n; i++) params[i] = lg_graph_param(r->g, i);
    lg_adam_opts ao = lg_adam_opts_default();
    ao.learning_rate = a->lr;
    if (lg_optimizer_adam(r->g, params, n, ao, &r->opt) || lg_trainer_new(r->g, r->spec, r->opt, &r->tr))
        return fail(r, "setting up training", lg_last_error());
    if (cli_write_graph(&a->out, r->g)) return fail(r, "writing the graph", lg_last_error());

    lg_dataset_opts dopt = lg_dataset_opts_default();
    dopt.batch_size = a->batch, dopt.seed = a->seed + 4;
    if (lg_dataset_new(r->data.x_train, r->data.y_train, dopt, &r->train))
        return fail(r, "training data", lg_last_error());
    dopt.shuffle = false, dopt.batch_size = 128;
    if (lg_dataset_new(r->data.x_test, r->data.y_test, dopt, &r->test)) return fail(r, "test data", lg_last_error());
    printf("Training on %lld passages, testing on %lld (vocabulary %d ids, batch %d, Adam lr %g)\n",
           (long long)lg_dataset_size(r->train), (long long)lg_dataset_size(r->test), r->data.vocab_size, a->batch,
           a->lr);

    lg_fit_opts fo = lg_fit_opts_default();
    fo.epochs = a->epochs, fo.verbose = 2;
    if (lg_fit(r->tr, r->train, r->test, fo)) return fail(r, "training", lg_last_error());
    lg_eval_result ev;
    if (lg_evaluate(r->tr, r->test, &ev)) return fail(r, "evaluating", lg_last_error());
    if (lg_predict(r->tr, r->test, &r->logits)) return fail(r, "predicting", lg_last_error());
    if (licences_report(&r->data, r->logits, stdout)) return fail(r, "report", r->data.error);
    int majority;
    double baseline = licences_majority_baseline(&r->data, &majority);
    printf("test accuracy %.4f (majority-class baseline %.4f, always %s), test loss %.4f\n", ev.metric, baseline,
           licences_class_name(majority), ev.loss);
    if (cli_write_plot(&a->out, r->tr, r->spec.metric)) return fail(r, "plotting the learning curves", lg_last_error());
    return 0;
}

int text_example_main(const text_example *ex, int argc, char **argv)
{
    run r = {.ex = ex};
    args a;
    int rc = parse(ex, argc, argv, &a);
    if (rc != CLI_RUN) return rc;
    rc = train_and_test(&r, &a);
    lg_tensor_free(r.logits);
    lg_dataset_free(r.train), lg_dataset_free(r.test);
    lg_trainer_free(r.tr), lg_optimizer_free(r.opt);
    for (int k = 0; k < TEXT_MAX_CELLS; k++) lg_cell_free(r.cells[k]);
    lg_graph_free(r.g);
    licences_free(&r.data);
    return rc;
}
