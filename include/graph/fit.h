/*
 * fit.h — the training loop: Keras's fit, evaluate and predict over
 * datasets (dataset.h), with an optimizer (optim.h).
 *
 * A trainer joins what the graph computes to what the loop does. The graph
 * holds the model twice over shared parameters when training and inference
 * differ (dropout, batch normalization): a training loss and output, and
 * optionally inference ones; both read the same inputs x and y.
 *
 *     lg_model_spec m = lg_model_spec_default();
 *     m.x = x;  m.y = y;                          // inputs [B, 28, 28] f32, [B] i32
 *     m.loss = loss;  m.output = logits;          // training mode
 *     m.eval_loss = eval_loss;  m.eval_output = eval_logits;
 *     m.metric = LG_METRIC_ACCURACY;
 *     lg_trainer *tr = NULL;
 *     lg_trainer_new(g, m, opt, &tr);              // builds the gradients of loss
 *     lg_trainer_add_batch_norm(tr, &bn);          // moving statistics follow training
 *     lg_fit_opts o = lg_fit_opts_default();
 *     o.epochs = 5;  o.history_csv = "history.csv";
 *     lg_fit(tr, train, test, o);                  // progress bar, validation each epoch
 *     lg_eval_result r;  lg_evaluate(tr, test, &r);
 *     lg_trainer_free(tr);
 *
 * One training step feeds a batch to x and y, runs the loss, the output
 * (for the metric) and the gradients of every parameter the optimizer
 * trains, writing the gradients straight into the optimizer's contiguous
 * gradient block, then takes the optimizer step. Dropout masks registered
 * with lg_trainer_add_dropout_mask get fresh Bernoulli keep masks each
 * training batch from a counter-based stream (seed, step), so runs repeat.
 * Batch normalization layers registered with lg_trainer_add_batch_norm get
 * their moving statistics updated after each training step. Stateful
 * layers registered with lg_trainer_add_rnn_state carry their states from
 * batch to batch and are reset at the start of every epoch and before
 * evaluate and predict.
 *
 * Losses and metrics of an epoch are averages over its examples (a batch
 * counts by its size, so a smaller last batch weighs less), as Keras reports
 * them. Metrics, computed from the output and y of each batch:
 *   LG_METRIC_ACCURACY         output [B, C] scores, y [B] i32 class ids:
 *                              argmax equals y (Keras sparse categorical)
 *   LG_METRIC_BINARY_ACCURACY  output [B] or [B, 1] probabilities, y of the
 *                              same numel: (output > 0.5) equals y
 *   LG_METRIC_MAE              mean |output - y| over all elements
 *
 * Output: with verbose 1 a Keras-style progress line per epoch, redrawn in
 * place on a terminal (step count, ETA, running loss and metric) and written
 * once per epoch otherwise; verbose 2 one line per epoch; 0 nothing.
 *
 * Data parallel: lg_trainer_distribute (distributed.h) makes fit and
 * evaluate cut each batch between processes and average their gradients;
 * then only rank 0 prints and writes files.
 *
 * Errors: every function returns a status; messages name the value or file
 * at fault. A failing run (a bad label for the loss, say) stops fit with the
 * run's status and message, epoch and batch prepended.
 *
 * Non-finite losses (Keras's TerminateOnNaN, on by default): a training
 * batch whose loss is nan or inf (NaN or Inf in the data, a learning rate
 * that diverges) stops fit with LG_ERR_RUNTIME naming epoch and batch. The
 * loss is checked before the optimizer step, so the parameters, the
 * optimizer's state and the moving statistics are those from before that
 * batch. With continue_on_nan fit trains on instead, and the epoch's loss
 * is nan. A monitored value that is nan never counts as an improvement: no
 * best checkpoint is written for it, and early stopping counts it as an
 * epoch without improvement.
 */
#ifndef LG_FIT_H
#define LG_FIT_H

#include <stdio.h>

#include "api.h"
#include "dataset.h"
#include "layers.h"
#include "norm.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef enum lg_metric {
    LG_METRIC_NONE,
    LG_METRIC_ACCURACY,
    LG_METRIC_BINARY_ACCURACY,
    LG_METRIC_MAE,
    LG_METRIC_COUNT
} lg_metric;

/* "accuracy", "binary_accuracy", "mae" ("" for none), as Keras logs them. */
const char *lg_metric_name(lg_metric m);

typedef struct lg_model_spec {
    lg_value x, y;       /* inputs fed with a batch's x and y */
    lg_value loss;       /* scalar training loss */
    lg_value output;     /* training-mode predictions, for the metric (optional) */
    lg_value eval_loss;  /* inference-mode loss; invalid: loss */
    lg_value eval_output; /* inference-mode predictions; invalid: output */
    lg_metric metric;
} lg_model_spec;

/* Every value invalid, metric none. */
lg_model_spec lg_model_spec_default(void);

typedef struct lg_trainer lg_trainer;

/* A trainer for the graph's model and an optimizer over its parameters
 * (the trainer does not own opt; free it after the trainer). Builds the
 * gradients of m.loss with respect to the optimizer's parameters in g.
 * Errors: LG_ERR_INVALID_ARGUMENT (NULL g, opt or out; x, y or loss invalid
 * or of another graph; a loss that is not a scalar; a metric without an
 * output; an unknown metric), LG_ERR_GRAPH (g has an error, or gradients
 * could not be built). */
lg_status lg_trainer_new(lg_graph *g, lg_model_spec m, lg_optimizer *opt, lg_trainer **out);
void lg_trainer_free(lg_trainer *tr); /* NULL is fine */

/* Feed input `mask` (a dropout mask of the training graph, e.g.
 * lg_rnn_result.dropout_mask) with fresh keep masks of rate `rate` each
 * training batch. Errors: LG_ERR_INVALID_ARGUMENT (not an input of the
 * graph, rate outside [0, 1)). */
lg_status lg_trainer_add_dropout_mask(lg_trainer *tr, lg_value mask, double rate);
/* Update a training-mode batch norm's moving statistics after each training
 * step. The result is copied. Errors: LG_ERR_INVALID_ARGUMENT (NULL, or not
 * a training-mode result of this graph). */
lg_status lg_trainer_add_batch_norm(lg_trainer *tr, const lg_batch_norm_result *bn);
/* Carry a stateful layer's states across batches (not owned). A batch of
 * another size than the states' rows (a last partial batch, say) fails
 * that step with LG_ERR_SHAPE naming the layer and both sizes.
 * Errors: LG_ERR_INVALID_ARGUMENT (NULL), LG_ERR_OUT_OF_MEMORY. */
lg_status lg_trainer_add_rnn_state(lg_trainer *tr, lg_rnn_state *st);

/* What is monitored for best checkpoints and early stopping. Losses and MAE
 * improve downwards, accuracies upwards. */
typedef enum lg_monitor {
    LG_MONITOR_VAL_LOSS,
    LG_MONITOR_LOSS,
    LG_MONITOR_VAL_METRIC,
    LG_MONITOR_METRIC,
    LG_MONITOR_COUNT
} lg_monitor;

/* One epoch's logs; val_* are NAN without validation data, metric NAN
 * without a metric. */
typedef struct lg_epoch_logs {
    int epoch; /* from 0 */
    double loss, metric, val_loss, val_metric;
    double seconds;
} lg_epoch_logs;

typedef struct lg_fit_opts {
    int epochs;              /* default 1 */
    int verbose;             /* 0 silent, 1 progress bar (default), 2 a line per epoch */
    FILE *out;               /* where progress goes; NULL: stdout */
    uint64_t seed;           /* dropout masks' stream; default 0 */
    const char *history_csv; /* Keras CSVLogger file: epoch,loss,<metric>,val_loss,val_<metric>; NULL: none */
    lg_monitor monitor;      /* default LG_MONITOR_VAL_LOSS (LG_MONITOR_LOSS without validation data) */
    double min_delta;        /* smallest change that counts as improvement; default 0 */
    const char *best_checkpoint; /* save (lg_checkpoint_save) when the monitor improves; NULL: none */
    int patience;            /* early stopping after this many epochs without improvement; 0: off */
    bool restore_best;       /* with early stopping: put the best epoch's parameters back */
    bool continue_on_nan;    /* train on past a non-finite batch loss; default false: stop (TerminateOnNaN) */
    /* Where the steps run: NULL or "cpu" (default), "cuda:0" (lg_compile_opts
     * .device). On a device the parameters and the optimizer's blocks stay
     * there between steps (only batches, the loss and the output cross);
     * they are copied back for checkpoints and when fit returns. Later
     * lg_evaluate and lg_predict calls run there too. */
    const char *device;
    /* Called after every epoch's logs are complete; return false to stop. */
    bool (*on_epoch_end)(const lg_epoch_logs *logs, void *ctx);
    void *ctx;
} lg_fit_opts;

lg_fit_opts lg_fit_opts_default(void);

/* Train on `train` for opts.epochs epochs (epoch e uses lg_dataset_epoch(train,
 * e)), validating on `validation` (NULL for none) after each. The epochs run
 * are in the history (an epoch stopped by an error is not). Errors:
 * LG_ERR_INVALID_ARGUMENT (NULL trainer or train, epochs < 1, bad options,
 * a dataset without targets, a y the metric cannot pair with the output),
 * LG_ERR_FEED (a batch whose dtypes or shapes x or y do not take, as
 * lg_graph_run reports it), LG_ERR_RUNTIME (a non-finite training loss,
 * see above, or a kernel's), LG_ERR_IO (history or checkpoint not
 * writable), and any run's status. */
lg_status lg_fit(lg_trainer *tr, lg_dataset *train, lg_dataset *validation, lg_fit_opts opts);

/* The history of every lg_fit on tr: epochs in order (the epoch field
 * restarts at 0 with each fit). NULL / 0 for NULL or out of range. */
int lg_trainer_history_count(const lg_trainer *tr);
const lg_epoch_logs *lg_trainer_history(const lg_trainer *tr, int i);

typedef struct lg_eval_result {
    double loss, metric; /* metric NAN without one */
    int64_t examples;
} lg_eval_result;

/* The inference-mode loss and metric over every batch of ds, in its current
 * epoch's order. Errors as lg_fit. */
lg_status lg_evaluate(lg_trainer *tr, lg_dataset *ds, lg_eval_result *out);

/* The inference-mode output for every example of ds, stacked in batch
 * order: a new tensor [N, ...] the caller frees. Use a dataset without
 * shuffle to keep the examples' order. Errors as lg_fit. */
lg_status lg_predict(lg_trainer *tr, lg_dataset *ds, lg_tensor **out);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
