/*
 * ops.h — builders for tensor ops.
 *
 * Every builder records a node on the graph its inputs belong to, infers the
 * output dtype and shape, and returns the output value. Builders compute
 * nothing; see program.h to run a graph and autodiff.h to differentiate it.
 *
 *     lg_value h = lg_tanh(lg_add(lg_matmul(x, w, false, false), b)); // [B, U]
 *     lg_value loss = lg_mse(y, h);                                    // []
 *
 * Conventions:
 *   - Shapes in comments: [B, T, F] etc.; -1 dims stay -1 until compile.
 *   - Binary elementwise ops broadcast like numpy: shapes are aligned at the
 *     right and a dim of 1 stretches. Both inputs must have the same dtype
 *     (no implicit promotion; use lg_cast).
 *   - Float ops take f32 or f64. i32 is accepted where stated.
 *   - Axes may be negative (counted from the end).
 *   - On bad input a builder records an error on the graph (graph.h) and
 *     returns an invalid value; invalid inputs give an invalid output.
 */
#ifndef LG_OPS_H
#define LG_OPS_H

#include "api.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* ---- linear algebra ------------------------------------------------------ */

/* a [..., M, K] x b [K, N] or [..., K, N] (same leading dims) -> [..., M, N].
 * trans_a / trans_b transpose the last two dims of that operand first. */
lg_value lg_matmul(lg_value a, lg_value b, bool trans_a, bool trans_b);

/* ---- elementwise, broadcasting (f32, f64; add/sub/mul also i32) ---------- */

lg_value lg_add(lg_value a, lg_value b);
lg_value lg_sub(lg_value a, lg_value b);
lg_value lg_mul(lg_value a, lg_value b);
lg_value lg_div(lg_value a, lg_value b);
/* x * s and x + s with a scalar constant of x's dtype. */
lg_value lg_scale(lg_value x, double s);
lg_value lg_add_scalar(lg_value x, double s);

typedef enum lg_cmp { LG_CMP_GT, LG_CMP_GE, LG_CMP_LT, LG_CMP_LE, LG_CMP_EQ, LG_CMP_NE, LG_CMP_COUNT } lg_cmp;
/* 1 where (a op b) holds, else 0, in the inputs' dtype (f32, f64, i32).
 * Not differentiable: gradients stop here. */
lg_value lg_compare(lg_value a, lg_value b, lg_cmp op);

/* mask ? a : b elementwise, all three broadcast together. mask is i32 or
 * float (nonzero is true) and gets no gradient; a and b share a dtype. */
lg_value lg_where(lg_value mask, lg_value a, lg_value b);

/* ---- elementwise, unary (f32, f64; neg/abs also i32) --------------------- */

lg_value lg_neg(lg_value x);
lg_value lg_exp(lg_value x);
lg_value lg_log(lg_value x);
lg_value lg_sqrt(lg_value x);
lg_value lg_square(lg_value x);
lg_value lg_pow(lg_value x, double exponent); /* x^p for a constant p */
lg_value lg_abs(lg_value x);
lg_value lg_sigmoid(lg_value x);
/* Keras 3 / PyTorch: relu6(x + 3) / 6, i.e. clip(x / 6 + 0.5, 0, 1). */
lg_value lg_hard_sigmoid(lg_value x);
lg_value lg_tanh(lg_value x);
lg_value lg_relu(lg_value x);
lg_value lg_elu(lg_value x, double alpha); /* x > 0 ? x : alpha (e^x - 1) */
lg_value lg_softplus(lg_value x);          /* log(1 + e^x), stable */
lg_value lg_softsign(lg_value x);          /* x / (1 + |x|) */
lg_value lg_clip(lg_value x, double lo, double hi);

/* Convert between f32, f64 and i32. Float to i32 truncates toward zero and
 * is defined for every value: below INT32_MIN (-inf included) gives
 * INT32_MIN, above INT32_MAX (+inf included) gives INT32_MAX, NaN gives 0;
 * its gradient is zero. Float to float casts pass gradients through. */
lg_value lg_cast(lg_value x, lg_dtype dtype);
/* Identity whose gradient is zero. */
lg_value lg_stop_gradient(lg_value x);

/* ---- reductions ---------------------------------------------------------- */

/* Reduce over the listed axes (all axes when n_axes is 0). keepdims leaves
 * reduced dims as 1. sum also takes i32. */
lg_value lg_sum(lg_value x, const int *axes, int n_axes, bool keepdims);
lg_value lg_mean(lg_value x, const int *axes, int n_axes, bool keepdims);
/* Gradient goes to the maxima, split evenly between ties. */
lg_value lg_max(lg_value x, const int *axes, int n_axes, bool keepdims);
/* The number of elements of x over the axes (all when n_axes is 0), as a
 * rank-0 value of x's dtype. Computed from x's shape at run time. */
lg_value lg_numel(lg_value x, const int *axes, int n_axes);

/* ---- shape --------------------------------------------------------------- */

/* New dims with the same element count; one dim may be -1 (inferred). */
lg_value lg_reshape(lg_value x, lg_shape shape);
/* x reshaped to like's shape (at run time); like gets no gradient. */
lg_value lg_reshape_like(lg_value x, lg_value like);
/* Insert a dim of 1 before axis (axis in [-rank-1, rank]); remove one. */
lg_value lg_expand_dims(lg_value x, int axis);
lg_value lg_squeeze(lg_value x, int axis);
/* perm[i] is the input axis that becomes output axis i; NULL reverses. */
lg_value lg_transpose(lg_value x, const int *perm);
/* size elements of axis starting at start; size -1 means "to the end". */
lg_value lg_slice(lg_value x, int axis, int64_t start, int64_t size);
/* Join along axis; all other dims equal. n >= 1. */
lg_value lg_concat(const lg_value *xs, int n, int axis);
/* Split axis into n pieces of the given sizes (summing to the dim), written
 * to outs[0..n-1]. sizes NULL means n equal pieces. */
void lg_split(lg_value x, int axis, const int64_t *sizes, int n, lg_value *outs);
/* Broadcast to a concrete shape (numpy rules). */
lg_value lg_broadcast_to(lg_value x, lg_shape shape);
/* Broadcast to like's shape at run time; like gets no gradient. */
lg_value lg_broadcast_like(lg_value x, lg_value like);
/* Sum x down to like's shape (the reverse of broadcasting; used by gradients
 * of broadcasting ops). like gets no gradient. */
lg_value lg_sum_to(lg_value x, lg_value like);

/* ---- indexing ------------------------------------------------------------ */

/* Rows of table [N, ...] picked by i32 indices idx [...] -> [idx..., ...].
 * An index outside [0, N) is a run-time error (LG_ERR_RUNTIME). */
lg_value lg_gather(lg_value table, lg_value idx);
/* The gradient of gather: zeros shaped like table, with updates [idx..., ...]
 * added at rows idx. */
lg_value lg_scatter_add(lg_value updates, lg_value idx, lg_value like);
/* i32 indices [...] -> [..., depth] of 0/1 in dtype; out-of-range rows are
 * all zero (as tf.one_hot). */
lg_value lg_one_hot(lg_value idx, int64_t depth, lg_dtype dtype);

/* ---- normalisation and dropout ------------------------------------------- */

lg_value lg_softmax(lg_value x, int axis);
lg_value lg_log_softmax(lg_value x, int axis);
/* x * mask / (1 - rate): inverted dropout with a given 0/1 mask of x's dtype
 * (broadcast against x). rate in [0, 1). */
lg_value lg_dropout(lg_value x, lg_value mask, double rate);

/* ---- losses --------------------------------------------------------------
 * Two layers, on purpose, as TensorFlow has keras.losses over
 * tf.nn.*_cross_entropy_with_logits and PyTorch nn.CrossEntropyLoss over
 * F.cross_entropy: the losses, named as Keras names them, give the scalar a
 * model trains on; the *_xent ops below them give the unreduced per-element
 * cross-entropy terms, for a reduction of your own (weights, a mask). Both
 * take the targets first.
 *
 * Keras semantics: (y_true, y_pred) order, the per-example loss averaged over
 * all examples (Keras "sum_over_batch_size"), a rank-0 result. Probabilities
 * are clipped to [1e-7, 1 - 1e-7] like Keras; the from_logits forms use
 * numerically stable fused ops. A loss's ops are named under a scope of
 * Keras's name for it (mean_squared_error, mean_absolute_error,
 * binary_crossentropy, categorical_crossentropy,
 * sparse_categorical_crossentropy) inside the current scope. */

lg_value lg_mse(lg_value y_true, lg_value y_pred);
lg_value lg_mae(lg_value y_true, lg_value y_pred);
/* y_true in [0, 1], same shape as y_pred. */
lg_value lg_binary_crossentropy(lg_value y_true, lg_value y_pred, bool from_logits);
/* y_true a distribution over the last axis of y_pred. */
lg_value lg_categorical_crossentropy(lg_value y_true, lg_value y_pred, bool from_logits);
/* labels: i32 class ids shaped like y_pred without its last axis. */
lg_value lg_sparse_categorical_crossentropy(lg_value labels, lg_value y_pred, bool from_logits);

/* The fused per-element / per-row terms behind the from_logits losses, not
 * reduced (the losses above are their mean), targets z first as in the
 * losses, logits x second:
 *   sigmoid_xent:        [...], [...] -> [...], max(x,0) - x z + log(1 + e^-|x|)
 *   softmax_xent:        [..., C], [..., C] -> [...], -sum z log_softmax(x)
 *   sparse_softmax_xent: i32 [...], [..., C] -> [...]; a label outside
 *                        [0, C) is a run-time error (LG_ERR_RUNTIME).
 * No gradient reaches the i32 labels. */
lg_value lg_sigmoid_xent(lg_value targets, lg_value logits);
lg_value lg_softmax_xent(lg_value targets, lg_value logits);
lg_value lg_sparse_softmax_xent(lg_value labels, lg_value logits);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
