/* train.h — what the training loop's files share (src/train). */
#ifndef LG_TRAIN_INTERNAL_H
#define LG_TRAIN_INTERNAL_H

#include <assert.h>

#include "graph/fit.h"
#include "graph/internal.h"

typedef struct lg_trainer_mask {
    lg_value input;
    double rate;
    lg_tensor *t; /* this batch's mask */
} lg_trainer_mask;

struct lg_trainer {
    lg_graph *g;
    lg_model_spec m;
    lg_optimizer *opt;
    int n_params;
    lg_value *params, *grads; /* the optimizer's parameters and their gradients in g */
    lg_trainer_mask *masks;
    int n_masks;
    lg_batch_norm_result *bns;
    int n_bns;
    lg_rnn_state **states;
    int n_states;
    uint64_t seed;
    bool stop_on_nan; /* a training step with a non-finite loss fails instead of updating (fit's default) */
    int64_t step; /* training steps taken: the dropout stream's counter */
    lg_epoch_logs *history;
    int n_history;
};

typedef enum lg_step_kind { LG_STEP_TRAIN, LG_STEP_EVAL, LG_STEP_PREDICT } lg_step_kind;

/* Running sums over the batches of an epoch or an evaluation. */
typedef struct lg_step_sums {
    double loss; /* sum of batch loss * batch size */
    int64_t examples;
    double metric, metric_count;
} lg_step_sums;

/* One batch: train (loss, gradients, optimizer step, moving statistics),
 * evaluate (inference loss and output) or predict (inference output only,
 * into *prediction when not NULL). Adds to sums when not NULL. */
lg_status lg_trainer_step(lg_trainer *tr, const lg_tensor *x, const lg_tensor *y, lg_step_kind kind, lg_step_sums *sums,
                          lg_tensor **prediction);
void lg_trainer_reset_states(lg_trainer *tr);

/* Keras-style progress output (progress.c). */
typedef struct lg_progress {
    FILE *out;
    int verbose;
    bool tty;
    int total;      /* batches in the epoch */
    double start;   /* seconds */
    double last_draw;
} lg_progress;

double lg_now_seconds(void);
void lg_progress_begin(lg_progress *p, FILE *out, int verbose, int epoch, int epochs, int total);
/* After batch `done` (1-based) with the running loss and metric (NAN: none). */
void lg_progress_update(lg_progress *p, int done, double loss, lg_metric m, double metric);
/* The epoch's final line with its logs. */
void lg_progress_end(lg_progress *p, const lg_epoch_logs *logs, lg_metric m, bool has_val);

#endif
