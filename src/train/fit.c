/*
 * fit.c — the epoch loop (include/graph/fit.h): batches, validation,
 * history, best checkpoints and early stopping; evaluate and predict.
 */
#include <math.h>
#include <string.h>

#include "backends/backend.h"
#include "graph/checkpoint.h"
#include "optim/optim_internal.h"
#include "train/train.h"

lg_fit_opts lg_fit_opts_default(void) { return (lg_fit_opts){.epochs = 1, .verbose = 1}; }

static lg_status check_opts(const lg_trainer *tr, const lg_fit_opts *o, bool has_val)
{
    if (o->epochs < 1) return lg_fail(LG_ERR_INVALID_ARGUMENT, "fit: epochs %d must be >= 1", o->epochs);
    if (o->verbose < 0 || o->verbose > 2) return lg_fail(LG_ERR_INVALID_ARGUMENT, "fit: verbose %d must be 0, 1 or 2", o->verbose);
    if ((unsigned)o->monitor >= LG_MONITOR_COUNT) return lg_fail(LG_ERR_INVALID_ARGUMENT, "fit: unknown monitor %d", (int)o->monitor);
    /* val_loss falls back to loss without validation data; val_metric cannot */
    bool metric = o->monitor == LG_MONITOR_METRIC || o->monitor == LG_MONITOR_VAL_METRIC;
    bool used = o->best_checkpoint || o->patience > 0;
    if (used && o->monitor == LG_MONITOR_VAL_METRIC && !has_val)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "fit: the monitor needs validation data");
    if (used && metric && tr->m.metric == LG_METRIC_NONE)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "fit: the monitor is a metric, and the model has none");
    if (o->patience < 0 || !(o->min_delta >= 0))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "fit: patience %d and min_delta %g must be >= 0", o->patience, o->min_delta);
    if (o->device && strlen(o->device) >= sizeof tr->device)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "fit: device '%s' is too long", o->device);
    const lg_backend *b = NULL; /* a device that cannot be had fails here, before any file is touched */
    return lg_backend_get(o->device, &b);
}

static double average(double sum, double count) { return count > 0 ? sum / count : NAN; }

/* Every batch of ds through one kind of step. */
static lg_status run_epoch(lg_trainer *tr, lg_dataset *ds, lg_step_kind kind, lg_step_sums *sums, lg_progress *bar,
                           int epoch)
{
    for (int k = 0; k < lg_dataset_batch_count(ds); k++) {
        lg_tensor *x = NULL, *y = NULL;
        lg_status s = lg_dataset_batch(ds, k, &x, &y);
        if (!s && !y) s = lg_fail(LG_ERR_INVALID_ARGUMENT, "the dataset has no targets (y)");
        if (!s) s = lg_trainer_step(tr, x, y, kind, sums, NULL);
        if (s) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", lg_last_error());
            return lg_fail(s, "%s, epoch %d, batch %d: %s", kind == LG_STEP_TRAIN ? "fit" : "validation", epoch + 1,
                           k + 1, msg);
        }
        if (bar)
            lg_progress_update(bar, k + 1, average(sums->loss, (double)sums->examples), tr->m.metric,
                               average(sums->metric, sums->metric_count));
    }
    return LG_OK;
}

static lg_status history_add(lg_trainer *tr, const lg_epoch_logs *logs)
{
    lg_epoch_logs *h = realloc(tr->history, (size_t)(tr->n_history + 1) * sizeof *h);
    if (!h) return lg_fail(LG_ERR_OUT_OF_MEMORY, "fit: out of memory");
    tr->history = h;
    tr->history[tr->n_history++] = *logs;
    return LG_OK;
}

/* Keras CSVLogger columns; a metric-less model has none of its columns. */
static lg_status csv_row(FILE *f, const char *path, const lg_trainer *tr, const lg_epoch_logs *l, bool header)
{
    const char *m = lg_metric_name(tr->m.metric);
    bool has_m = tr->m.metric != LG_METRIC_NONE;
    if (header) fprintf(f, "epoch,loss%s%s,val_loss%s%s\n", has_m ? "," : "", m, has_m ? ",val_" : "", has_m ? m : "");
    fprintf(f, "%d,%.9g", l->epoch, l->loss);
    if (has_m) fprintf(f, ",%.9g", l->metric);
    fprintf(f, ",%.9g", l->val_loss);
    if (has_m) fprintf(f, ",%.9g", l->val_metric);
    fputc('\n', f);
    if (fflush(f) != 0 || ferror(f)) return lg_fail(LG_ERR_IO, "fit: cannot write history '%s'", path);
    return LG_OK;
}

static double monitored(const lg_epoch_logs *l, lg_monitor m, bool has_val)
{
    switch (m) {
    case LG_MONITOR_VAL_LOSS: return has_val ? l->val_loss : l->loss;
    case LG_MONITOR_LOSS: return l->loss;
    case LG_MONITOR_VAL_METRIC: return l->val_metric;
    case LG_MONITOR_METRIC: return l->metric;
    case LG_MONITOR_COUNT: break;
    }
    return NAN;
}

/* Copies of the trained parameters' values (for restore_best). */
typedef struct snapshot {
    lg_tensor **t;
    int n;
} snapshot;

static lg_status snapshot_take(snapshot *s, const lg_trainer *tr)
{
    if (!s->t) {
        s->t = calloc((size_t)(tr->n_params ? tr->n_params : 1), sizeof *s->t);
        if (!s->t) return lg_fail(LG_ERR_OUT_OF_MEMORY, "fit: out of memory");
        s->n = tr->n_params;
    }
    for (int i = 0; i < s->n; i++) {
        lg_tensor *p = lg_param_tensor(tr->params[i]);
        lg_status st = s->t[i] ? lg_tensor_copy(s->t[i], p) : lg_tensor_clone(p, &s->t[i]);
        if (st) return st;
    }
    return LG_OK;
}

static void snapshot_restore(const snapshot *s, const lg_trainer *tr)
{
    for (int i = 0; i < s->n; i++) lg_tensor_copy(lg_param_tensor(tr->params[i]), s->t[i]);
}

static void snapshot_free(snapshot *s)
{
    for (int i = 0; s->t && i < s->n; i++) lg_tensor_free(s->t[i]);
    free(s->t);
}

lg_status lg_fit(lg_trainer *tr, lg_dataset *train, lg_dataset *validation, lg_fit_opts o)
{
    if (!tr || !train) return lg_fail(LG_ERR_INVALID_ARGUMENT, "fit: trainer and training data are required");
    lg_status s = check_opts(tr, &o, validation != NULL);
    if (s) return s;
    if (!lg_trainer_lead(tr)) /* data-parallel: rank 0 alone reports and writes */
        o.verbose = 0, o.history_csv = NULL, o.best_checkpoint = NULL;
    FILE *out = o.out ? o.out : stdout, *csv = NULL;
    if (o.history_csv && !(csv = fopen(o.history_csv, "w")))
        s = lg_fail(LG_ERR_IO, "fit: cannot open history '%s' for writing", o.history_csv);
    if ((s = lg_trainer_agree(tr, s))) return s;
    tr->seed = o.seed;
    tr->stop_on_nan = !o.continue_on_nan;
    snprintf(tr->device, sizeof tr->device, "%s", o.device ? o.device : "");
    bool lower_better = o.monitor == LG_MONITOR_LOSS || o.monitor == LG_MONITOR_VAL_LOSS || tr->m.metric == LG_METRIC_MAE;
    double best = NAN;
    int waited = 0;
    snapshot snap = {0};
    for (int e = 0; !s && e < o.epochs; e++) {
        lg_progress bar;
        lg_progress_begin(&bar, out, o.verbose, e, o.epochs, lg_dataset_batch_count(train));
        lg_trainer_reset_states(tr);
        lg_step_sums ts = {0}, vs = {0};
        s = lg_dataset_epoch(train, e);
        if (!s) s = run_epoch(tr, train, LG_STEP_TRAIN, &ts, &bar, e);
        if (!s && validation) {
            lg_trainer_reset_states(tr);
            s = run_epoch(tr, validation, LG_STEP_EVAL, &vs, NULL, e);
        }
        if (s) break;
        lg_epoch_logs logs = {.epoch = e, .loss = average(ts.loss, (double)ts.examples),
                              .metric = average(ts.metric, ts.metric_count),
                              .val_loss = average(vs.loss, (double)vs.examples),
                              .val_metric = average(vs.metric, vs.metric_count),
                              .seconds = lg_now_seconds() - bar.start};
        lg_progress_end(&bar, &logs, tr->m.metric, validation != NULL);
        s = history_add(tr, &logs);
        if (!s && csv) s = csv_row(csv, o.history_csv, tr, &logs, e == 0);
        s = lg_trainer_agree(tr, s); /* rank 0 writes: every rank stops when it fails */
        /* NaN never improves, and a NaN epoch is no best to beat */
        double v = monitored(&logs, o.monitor, validation != NULL);
        bool improved = !isnan(v) && (isnan(best) || (lower_better ? v < best - o.min_delta : v > best + o.min_delta));
        if (!s && improved) {
            best = v, waited = 0;
            if (o.best_checkpoint) s = lg_checkpoint_save(o.best_checkpoint, tr->g, tr->opt);
            if (!s && o.restore_best && o.patience > 0) s = snapshot_take(&snap, tr);
            s = lg_trainer_agree(tr, s);
        } else if (!s && o.patience > 0 && ++waited >= o.patience) {
            if (o.verbose) fprintf(out, "Epoch %d: early stopping\n", e + 1);
            if (o.restore_best && snap.t) snapshot_restore(&snap, tr);
            break;
        }
        if (!s && o.on_epoch_end && !o.on_epoch_end(&logs, o.ctx)) break;
    }
    if (csv && fclose(csv) != 0 && !s) s = lg_fail(LG_ERR_IO, "fit: cannot write history '%s'", o.history_csv);
    snapshot_free(&snap);
    /* trained on a device: the host copies are current again when fit returns */
    lg_status home = lg_param_blocks_to_host(tr->g);
    if (!home) home = lg_optimizer_to_host(tr->opt);
    return s ? s : home;
}

lg_status lg_evaluate(lg_trainer *tr, lg_dataset *ds, lg_eval_result *out)
{
    if (!tr || !ds || !out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "evaluate: trainer, dataset and out are required");
    lg_trainer_reset_states(tr);
    lg_step_sums sums = {0};
    lg_status s = run_epoch(tr, ds, LG_STEP_EVAL, &sums, NULL, 0);
    if (s) return s;
    *out = (lg_eval_result){average(sums.loss, (double)sums.examples), average(sums.metric, sums.metric_count),
                            sums.examples};
    return LG_OK;
}

lg_status lg_predict(lg_trainer *tr, lg_dataset *ds, lg_tensor **out)
{
    if (out) *out = NULL;
    if (!tr || !ds || !out) return lg_fail(LG_ERR_INVALID_ARGUMENT, "predict: trainer, dataset and out are required");
    if (!lg_value_ok(tr->m.eval_output)) return lg_fail(LG_ERR_INVALID_ARGUMENT, "predict: the model has no output");
    lg_trainer_reset_states(tr);
    lg_tensor *all = NULL;
    size_t at = 0;
    lg_status s = LG_OK;
    for (int k = 0; !s && k < lg_dataset_batch_count(ds); k++) {
        lg_tensor *x = NULL, *y = NULL, *p = NULL;
        s = lg_dataset_batch(ds, k, &x, &y);
        if (!s) s = lg_trainer_step(tr, x, y, LG_STEP_PREDICT, NULL, &p);
        if (!s && !all) { /* [N, ...] from the first batch's [b, ...] */
            lg_shape sh = lg_tensor_shape(p);
            if (sh.rank < 1) s = lg_fail(LG_ERR_SHAPE, "predict: the output %s has no batch dim", lg_shape_cstr(sh));
            sh.dims[0] = lg_dataset_size(ds);
            if (!s) s = lg_tensor_new(lg_tensor_dtype(p), sh, &all);
        }
        if (!s && at + lg_tensor_bytes(p) > lg_tensor_bytes(all))
            s = lg_fail(LG_ERR_SHAPE, "predict: batch %d's output %s does not fit [N, ...]", k + 1,
                        lg_shape_cstr(lg_tensor_shape(p)));
        if (!s) {
            memcpy((char *)lg_tensor_data(all) + at, lg_tensor_cdata(p), lg_tensor_bytes(p));
            at += lg_tensor_bytes(p);
        }
        lg_tensor_free(p);
    }
    if (!s && at != lg_tensor_bytes(all)) s = lg_fail(LG_ERR_SHAPE, "predict: the batches do not cover the dataset");
    if (s) {
        lg_tensor_free(all);
        return s;
    }
    *out = all;
    return LG_OK;
}
