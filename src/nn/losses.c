/*
 * losses.c — Keras losses as compositions of ops: per-example terms averaged
 * over every example (Keras's "sum_over_batch_size" reduction).
 */
#include "graph/ops.h"

/* Keras's backend epsilon, the clip for probabilities. */
#define LG_PROB_EPS 1e-7

static lg_value mean_all(lg_value x) { return lg_mean(x, NULL, 0, false); }

lg_value lg_mse(lg_value y_true, lg_value y_pred) { return mean_all(lg_square(lg_sub(y_pred, y_true))); }

lg_value lg_mae(lg_value y_true, lg_value y_pred) { return mean_all(lg_abs(lg_sub(y_pred, y_true))); }

lg_value lg_binary_crossentropy(lg_value y_true, lg_value y_pred, bool from_logits)
{
    if (from_logits) return mean_all(lg_sigmoid_xent(y_pred, y_true));
    lg_value p = lg_clip(y_pred, LG_PROB_EPS, 1 - LG_PROB_EPS);
    lg_value one_minus_z = lg_add_scalar(lg_neg(y_true), 1);
    lg_value one_minus_p = lg_add_scalar(lg_neg(p), 1);
    lg_value ll = lg_add(lg_mul(y_true, lg_log(p)), lg_mul(one_minus_z, lg_log(one_minus_p)));
    return lg_neg(mean_all(ll));
}

lg_value lg_categorical_crossentropy(lg_value y_true, lg_value y_pred, bool from_logits)
{
    if (from_logits) return mean_all(lg_softmax_xent(y_pred, y_true));
    int last = -1;
    lg_value p = lg_div(y_pred, lg_sum(y_pred, &last, 1, true));
    p = lg_clip(p, LG_PROB_EPS, 1 - LG_PROB_EPS);
    return lg_neg(mean_all(lg_sum(lg_mul(y_true, lg_log(p)), &last, 1, false)));
}

lg_value lg_sparse_categorical_crossentropy(lg_value labels, lg_value y_pred, bool from_logits)
{
    if (from_logits) return mean_all(lg_sparse_softmax_xent(y_pred, labels));
    /* Keras normalises, clips and takes -log p[label]. The fused op does the
     * picking and checks the labels' range; the log-sum-exp it adds is
     * log(sum of clipped p) = 0, off by at most classes * 1e-7 when the
     * clip is active. */
    int last = -1;
    lg_value p = lg_div(y_pred, lg_sum(y_pred, &last, 1, true));
    p = lg_clip(p, LG_PROB_EPS, 1 - LG_PROB_EPS);
    return mean_all(lg_sparse_softmax_xent(lg_log(p), labels));
}
