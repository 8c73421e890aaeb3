/*
 * plot.h — learning curves: a fit history (the CSV that lg_fit writes with
 * lg_fit_opts.history_csv, or a trainer's history in memory) drawn as SVG
 * or PNG through PLplot.
 *
 * The picture has one panel for the loss (loss and val_loss per epoch) and,
 * when the history has a metric, one for it (e.g. accuracy and
 * val_accuracy): training solid, validation dashed, each epoch marked, so
 * a one-epoch history still shows its point. Columns that are all NaN (no
 * validation data) are left out.
 *
 *     lg_fit_opts o = lg_fit_opts_default();
 *     o.history_csv = "history.csv";
 *     lg_fit(tr, train, val, o);
 *     if (lg_plot_history_csv("history.csv", "history.png") != LG_OK)
 *         fprintf(stderr, "%s\n", lg_last_error());
 *
 * The tool lg-plot does the same from the command line:
 * `lg-plot history.csv curves.svg`.
 *
 * Formats: the output path's extension picks it: ".svg" (PLplot's svg
 * driver) or ".png" (its pngcairo driver, 1000 x 450 pixels), any case. The
 * file is written beside the path and renamed over it when complete, so a
 * failure leaves no partial file and an existing file whole.
 *
 * The CSV: a header row naming the columns (epoch, loss, val_loss and at
 * most one metric with its val_ column, in any order; Keras's CSVLogger
 * writes the same, with a learning_rate or lr column where a schedule or
 * ReduceLROnPlateau ran, which is read past), then one row per epoch of
 * numbers ("nan" allowed).
 *
 * Errors (lg_status, message in lg_last_error()): LG_ERR_INVALID_ARGUMENT
 * (NULL arguments, an extension other than .svg/.png, a history with no
 * epochs, a CSV without an epoch or loss column, a row that is not numbers
 * or has the wrong number of fields, naming the file and line), LG_ERR_IO
 * (a file that cannot be read or written), LG_ERR_UNSUPPORTED (PLplot
 * lacks the driver; the PNG one is in Debian's plplot-driver-cairo),
 * LG_ERR_OUT_OF_MEMORY.
 *
 * Threading: PLplot keeps global state; plot from one thread at a time.
 */
#ifndef LG_PLOT_H
#define LG_PLOT_H

#include "graph/api.h"
#include "graph/fit.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* Plot the history in csv_path to out_path. */
lg_status lg_plot_history_csv(const char *csv_path, const char *out_path);

/* Plot n epochs of logs (e.g. lg_trainer_history(tr, 0 .. count - 1)) to
 * out_path; epoch i is drawn at i + 1 whatever its epoch field says, so the
 * histories of several fits follow each other. metric labels the metric
 * panel (lg_metric_name; NULL or "": "metric"). */
lg_status lg_plot_history(const lg_epoch_logs *logs, int n, const char *metric, const char *out_path);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
