/*
 * dataset.h — in-memory datasets for the training loop: batches of (x, y)
 * from tensors or from windows over a time series, shuffled per epoch.
 *
 * A dataset holds N examples and hands them out in batches. Example i of a
 * tensor dataset is row i of x [N, ...] with row i of y [N, ...]; example i
 * of a time-series dataset is a window of rows of a series with its target
 * (Keras's timeseries_dataset_from_array, below). Both kinds batch alike, so
 * a training loop consumes them the same way:
 *
 *     lg_dataset_opts o = lg_dataset_opts_default();      // 32 a batch, shuffled, seed 0
 *     lg_dataset *ds = NULL;
 *     lg_status s = lg_dataset_new(x, y, o, &ds);         // x [N, 28, 28] f32, y [N] i32
 *     if (s != LG_OK) fprintf(stderr, "%s\n", lg_last_error());
 *     for (int epoch = 0; epoch < 10; epoch++) {
 *         lg_dataset_epoch(ds, epoch);                     // this epoch's order
 *         for (int k = 0; k < lg_dataset_batch_count(ds); k++) {
 *             lg_tensor *bx, *by;
 *             lg_dataset_batch(ds, k, &bx, &by);           // bx [b, 28, 28], by [b]
 *             ...feed bx and by...
 *         }
 *     }
 *     lg_dataset_free(ds);
 *
 * Batches: batch k holds the examples at positions k*B .. k*B + b - 1 of the
 * epoch's order, B = batch_size, and b = B except for the last batch, which
 * holds the N mod B examples left over (Keras keeps it) unless drop_last
 * drops it. Batch tensors have the source's dtypes and the shapes
 * x [b, ...] and y [b, ...], the source's dims after the first.
 *
 * Shuffling: with shuffle, epoch e's order is a Fisher-Yates permutation
 * drawn from the Philox stream (seed, key e) of init.h: a pure function of
 * (seed, e, N), so a run is reproducible and each epoch has its own order
 * whatever order epochs are visited in. Without shuffle the order is
 * 0, 1, ..., N - 1. A new dataset starts in epoch 0.
 *
 * Ownership: a dataset copies the rows it needs from x and y when it is
 * made, so the caller may free or change them afterwards (a dataset of N
 * examples costs one copy of them). The batch tensors belong to the dataset:
 * they stay valid, and their contents unchanged, until the next
 * lg_dataset_batch or lg_dataset_free on it; do not free them. A dataset is
 * not thread-safe.
 */
#ifndef LG_DATASET_H
#define LG_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef struct lg_dataset lg_dataset;

typedef struct lg_dataset_opts {
    int64_t batch_size; /* examples a batch (> 0) */
    bool shuffle;       /* a new order each epoch */
    uint64_t seed;      /* the shuffle's seed */
    bool drop_last;     /* drop a last batch smaller than batch_size */
} lg_dataset_opts;

/* Keras Model.fit's defaults: batch_size 32, shuffle true, seed 0,
 * drop_last false. */
lg_dataset_opts lg_dataset_opts_default(void);

/* A dataset of the N rows of x [N, ...] and y [N, ...] (any dtypes and
 * ranks >= 1; y may be NULL for inputs only, and then batches give a NULL
 * y). Copies both. Errors: LG_ERR_INVALID_ARGUMENT (x or out NULL,
 * batch_size < 1, more than INT_MAX batches, drop_last leaving no batch),
 * LG_ERR_SHAPE (x or y of rank 0, no rows, y's row count not x's),
 * LG_ERR_OUT_OF_MEMORY. *out is NULL on failure. */
lg_status lg_dataset_new(const lg_tensor *x, const lg_tensor *y, lg_dataset_opts o, lg_dataset **out);
void lg_dataset_free(lg_dataset *ds); /* NULL is fine */

/* Examples in the dataset (N). 0 for NULL. */
int64_t lg_dataset_size(const lg_dataset *ds);
/* Batches an epoch: ceil(N / B), or floor(N / B) with drop_last. 0 for NULL. */
int lg_dataset_batch_count(const lg_dataset *ds);

/* Start epoch `epoch` (>= 0): with shuffle, draw its order. Errors:
 * LG_ERR_INVALID_ARGUMENT (NULL, epoch < 0). */
lg_status lg_dataset_epoch(lg_dataset *ds, int64_t epoch);

/* Batch k (0 <= k < lg_dataset_batch_count) of the current epoch:
 * *x [b, ...] and *y [b, ...] (NULL when the dataset has no y), owned by the
 * dataset and valid until its next lg_dataset_batch or free. y may be NULL
 * when the caller does not want targets. Errors: LG_ERR_INVALID_ARGUMENT
 * (ds or x NULL, k out of range). */
lg_status lg_dataset_batch(lg_dataset *ds, int k, lg_tensor **x, lg_tensor **y);

/* ---- train/validation split -------------------------------------------------- */

typedef enum lg_split_side {
    LG_SPLIT_LAST,  /* validation is the last rows (Keras validation_split) */
    LG_SPLIT_FIRST, /* validation is the first rows */
    LG_SPLIT_SIDE_COUNT
} lg_split_side;

typedef struct lg_split_opts {
    double validation_fraction; /* in (0, 1) */
    lg_split_side side;
    lg_dataset_opts train;      /* batching of the training part */
    lg_dataset_opts validation; /* batching of the validation part */
} lg_split_opts;

/* validation_fraction 0.2, side LG_SPLIT_LAST, train lg_dataset_opts_default(),
 * validation the same without shuffle. */
lg_split_opts lg_split_opts_default(void);

/* Two datasets from the rows of x [N, ...] and y [N, ...] (y may be NULL),
 * split before any shuffling as Keras's validation_split does:
 * n_train = floor(N * (1 - validation_fraction)); with LG_SPLIT_LAST
 * training gets rows [0, n_train) and validation rows [n_train, N), with
 * LG_SPLIT_FIRST validation gets rows [0, N - n_train) and training the rest.
 * Errors: those of lg_dataset_new, and LG_ERR_INVALID_ARGUMENT (a fraction
 * outside (0, 1), a side out of range, a split that leaves a part empty,
 * NULL outs). Both outs are NULL on failure. */
lg_status lg_dataset_split(const lg_tensor *x, const lg_tensor *y, lg_split_opts o, lg_dataset **train,
                           lg_dataset **validation);

/* ---- windows over a time series ------------------------------------------------ */

/* Keras's keras.utils.timeseries_dataset_from_array, with the same names and
 * meanings. For data [T, ...], the windows start at rows
 *
 *     start_index + p,   p = 0, stride, 2*stride, ... < num_seqs,
 *     num_seqs = end_index - start_index - (sequence_length - 1) * sampling_rate
 *                (and at most targets' row count when there are targets),
 *
 * window p is rows start_index + p + j * sampling_rate, j < sequence_length
 * (x [sequence_length, ...] per example), and its target is
 * targets[start_index + p] (y [...] per example; targets [T] give y [b]).
 * end_index is exclusive: no window reaches row end_index. Forecasting
 * `delay` rows ahead is Keras's targets = data[delay:] with
 * data = data[:-delay]; delay does exactly that, so targets may be the full
 * series (or a column of it):
 *
 *     // data [T, F]: readings every 10 minutes; temperature [T]
 *     lg_timeseries_opts o = lg_timeseries_opts_default(120);   // 120 steps a window
 *     o.sampling_rate = 6;                                       // one row an hour
 *     o.delay = 6 * (120 + 24 - 1);                              // 24 hours after a window's last step
 *     o.end_index = n_train;                                     // training windows only
 *     lg_timeseries_dataset_new(data, temperature, o, &train);   // x [b, 120, F], y [b]
 *
 * start_index and end_index index data after the delay is taken off.
 * Differences from Keras: shuffle draws a new order every epoch (see
 * above), where Keras shuffles start positions once with NumPy's generator,
 * so shuffled orders differ; end_index may equal the series' length (Keras
 * rejects that and asks for None, which is -1 here); and targets too short
 * for a window's target row are an error here when the dataset is made,
 * where Keras fails while iterating. */
typedef struct lg_timeseries_opts {
    int64_t sequence_length; /* rows a window (> 0) */
    int64_t sequence_stride; /* rows between window starts, in [1, T) */
    int64_t sampling_rate;   /* rows between a window's steps, in [1, T) */
    int64_t start_index;     /* first row windows may use, in [0, T) */
    int64_t end_index;       /* one past the last row they may use, in (start_index, T]; -1: T */
    int64_t delay;           /* use data[:T - delay] and targets[delay:] (>= 0) */
    lg_dataset_opts batch;   /* batching; Keras's defaults: 128 a batch, no shuffle */
} lg_timeseries_opts;

/* sequence_length as given; stride 1, sampling_rate 1, start_index 0,
 * end_index -1, delay 0, batch size 128, no shuffle, seed 0. */
lg_timeseries_opts lg_timeseries_opts_default(int64_t sequence_length);

/* A dataset of the windows of data [T, ...] (rank 1..5, any dtype) with
 * their targets from targets [T', ...] (any dtype and rank >= 1, or NULL for
 * windows only). Copies the rows it needs. Batches give x
 * [b, sequence_length, ...] and y [b, ...] (NULL without targets).
 * Errors, each naming the field and values: LG_ERR_INVALID_ARGUMENT (data or
 * out NULL; sequence_length < 1; stride or sampling_rate outside [1, T);
 * start_index outside [0, T); end_index not -1 and outside
 * (start_index, T]; delay < 0, >= T or >= T', or > 0 without targets; a
 * window longer than rows [start_index, end_index), i.e. the sequence_length
 * times sampling_rate span exceeds the series; targets with no row for
 * a window's target; bad batch options), LG_ERR_SHAPE (data of rank 0 or 6,
 * targets of rank 0), LG_ERR_OUT_OF_MEMORY. *out is NULL on failure. */
lg_status lg_timeseries_dataset_new(const lg_tensor *data, const lg_tensor *targets, lg_timeseries_opts o,
                                    lg_dataset **out);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
