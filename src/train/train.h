/* train.h — what the training loop's files share (src/train). */
#ifndef LG_TRAIN_INTERNAL_H
#define LG_TRAIN_INTERNAL_H

#include <assert.h>

#include "graph/fit.h"
#include "graph/internal.h"

typedef struct lg_trainer_mask {
    lg_value input;
    double rate;
    lg_tensor *t;    /* this batch's mask */
    lg_tensor *full; /* a sharded step's mask of the global batch (t holds the share's rows) */
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
    struct lg_trainer_dist *dist; /* data-parallel state (dist.c); NULL: one process */
    char device[32]; /* where steps run (lg_fit_opts.device); "": the CPU */
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

/* Data parallelism (dist.c). A share of a batch: rows [offset, offset + b)
 * of a global batch of `global` rows. */
typedef struct lg_share {
    int64_t offset, global;
} lg_share;
/* A training, evaluation or prediction step of one process over the whole
 * batch (share NULL), or, for a training share, the run alone: the share's
 * gradients and batch norm statistics go to lg_trainer_dist_accumulate and
 * the optimizer step waits for the other shares. */
lg_status lg_trainer_run(lg_trainer *tr, const lg_tensor *x, const lg_tensor *y, lg_step_kind kind, lg_step_sums *sums,
                         lg_tensor **prediction, const lg_share *share);
/* The TerminateOnNaN refusal for a non-finite training loss: before the
 * optimizer step, so the parameters stay as they were. */
lg_status lg_trainer_nan_stop(const lg_trainer *tr, double loss);
/* The sharded step of a distributed trainer (fit and evaluate). */
lg_status lg_trainer_dist_step(lg_trainer *tr, const lg_tensor *x, const lg_tensor *y, lg_step_kind kind,
                               lg_step_sums *sums);
/* Add a training share's gradients (the optimizer's block) and batch norm
 * statistics (stats: mean, variance per batch norm), scaled by b / global. */
lg_status lg_trainer_dist_accumulate(lg_trainer *tr, int64_t b, int64_t global, lg_tensor *const *stats);
void lg_trainer_dist_free(struct lg_trainer_dist *d);
/* Whether this process reports and writes files: rank 0, or not distributed. */
bool lg_trainer_lead(const lg_trainer *tr);
/* s when every rank's s is LG_OK or this one's failed; otherwise a failure
 * saying another replica failed. Collective for a distributed trainer. */
lg_status lg_trainer_agree(lg_trainer *tr, lg_status s);

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
