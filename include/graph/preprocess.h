/*
 * preprocess.h — preparing tensors for training: standardising a series with
 * the training split's statistics, and padding token sequences to one length
 * (Keras's pad_sequences).
 *
 *     // series [T, F]: the first n_train rows train, the rest validate
 *     lg_tensor *mean = NULL, *std = NULL;
 *     lg_standardize(series, n_train, &mean, &std);    // in place; mean, std [F]
 *
 *     const int32_t a[] = {5, 8}, b[] = {3, 1, 4, 1};
 *     const int32_t *seqs[] = {a, b};
 *     const int64_t lens[] = {2, 4};
 *     lg_pad_opts o = lg_pad_opts_default();
 *     o.padding = LG_PAD_POST;                          // valid steps first, for masking
 *     lg_tensor *ids = NULL, *len = NULL;
 *     lg_pad_sequences(seqs, lens, 2, o, &ids, &len);   // ids [[5,8,0,0],[3,1,4,1]], len [2,4]
 *
 * Ownership: tensors returned through out-parameters are new and belong to
 * the caller (lg_tensor_free). Inputs are only read, except the tensor
 * lg_standardize changes in place.
 */
#ifndef LG_PREPROCESS_H
#define LG_PREPROCESS_H

#include <stdint.h>

#include "api.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* Standardise each column of t [T, ...] (f32 or f64; a column is one
 * position of the dims after the first, so [T] is one column) in place:
 * x = (x - mean) / std, with mean and std (population, ddof 0, as NumPy's
 * std) of rows [0, n_train) applied to every row, so validation and test
 * rows see only training statistics (the Keras weather-forecasting recipe).
 * mean and std, when not NULL, receive new tensors of t's dtype shaped like
 * one row (e.g. [F]) for undoing it. t is unchanged on failure. Errors:
 * LG_ERR_INVALID_ARGUMENT (t NULL; n_train outside [1, T]; a column whose
 * std over the training rows is 0, as for a constant column, or not finite,
 * named by its flat index in a row), LG_ERR_DTYPE (not
 * f32/f64), LG_ERR_SHAPE (rank 0), LG_ERR_OUT_OF_MEMORY. */
lg_status lg_standardize(lg_tensor *t, int64_t n_train, lg_tensor **mean, lg_tensor **std);

typedef enum lg_pad_side {
    LG_PAD_PRE,  /* at the start of a sequence */
    LG_PAD_POST, /* at the end */
    LG_PAD_SIDE_COUNT
} lg_pad_side;

typedef struct lg_pad_opts {
    int64_t maxlen;         /* output length; 0: the longest sequence's (Keras None) */
    lg_pad_side padding;    /* where the padding goes */
    lg_pad_side truncating; /* where values of longer sequences are cut */
    int32_t value;          /* the padding value */
} lg_pad_opts;

/* Keras's defaults: maxlen 0 (longest), padding and truncating
 * LG_PAD_PRE, value 0. */
lg_pad_opts lg_pad_opts_default(void);

/* Keras's pad_sequences for n ragged i32 sequences (seqs[i] has lens[i]
 * values; it may be NULL when lens[i] is 0): *out i32 [n, maxlen] where row
 * i holds the sequence, cut to maxlen values (LG_PAD_PRE truncating keeps
 * the last maxlen, LG_PAD_POST the first) and filled with value (before the
 * values with LG_PAD_PRE padding, after them with LG_PAD_POST). An empty
 * sequence gives a row of padding. *lengths (optional, NULL to skip) gets
 * i32 [n]: the values kept of each sequence, min(lens[i], maxlen).
 *
 * Masking: loopgrad's recurrent layers (layers.h, opts.lengths) take an
 * example's first lengths[b] steps as valid, the right padding Keras's and
 * cuDNN's masks assume. That is LG_PAD_POST padding: feed *lengths as the
 * layer's lengths. With Keras's default LG_PAD_PRE padding the valid steps
 * are the last lengths[b], so those lengths would mark padding as valid:
 * run such input without lengths (the layer then reads the padding first,
 * as Keras does without a mask) or pad LG_PAD_POST. Lengths must also be at
 * least 1 for masking, so drop or refill empty sequences before feeding.
 *
 * Errors: LG_ERR_INVALID_ARGUMENT (out NULL; n < 0; seqs or lens NULL with
 * n > 0; lens[i] < 0; seqs[i] NULL with lens[i] > 0; maxlen < 0 or above
 * INT32_MAX, or maxlen 0 and a longest sequence above INT32_MAX; a side out
 * of range; n == 0 with maxlen 0, which leaves no longest sequence),
 * LG_ERR_OUT_OF_MEMORY. Outs are NULL on failure. */
lg_status lg_pad_sequences(const int32_t *const *seqs, const int64_t *lens, int64_t n, lg_pad_opts o, lg_tensor **out,
                           lg_tensor **lengths);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
