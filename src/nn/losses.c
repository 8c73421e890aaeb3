/*
 * losses.c — Keras losses as compositions of ops: per-example terms averaged
 * over every example (Keras's "sum_over_batch_size" reduction). Each
 * loss's ops are named under Keras's name for it ("mean_squared_error/..."),
 * so that views of the graph group them.
 */
#include "graph/graph.h"
#include "graph/ops.h"

/* Keras's backend epsilon, the clip for probabilities. */
#define LG_PROB_EPS 1e-7

static lg_value mean_all(lg_value x) { return lg_mean(x, NULL, 0, false); }

static lg_value mse_ops(lg_value y_true, lg_value y_pred) { return mean_all(lg_square(lg_sub(y_pred, y_true))); }

static lg_value mae_ops(lg_value y_true, lg_value y_pred) { return mean_all(lg_abs(lg_sub(y_pred, y_true))); }

static lg_value binary_crossentropy_ops(lg_value y_true, lg_value y_pred, bool from_logits)
{
    if (from_logits) return mean_all(lg_sigmoid_xent(y_true, y_pred));
    lg_value p = lg_clip(y_pred, LG_PROB_EPS, 1 - LG_PROB_EPS);
    lg_value one_minus_z = lg_add_scalar(lg_neg(y_true), 1);
    lg_value one_minus_p = lg_add_scalar(lg_neg(p), 1);
    lg_value ll = lg_add(lg_mul(y_true, lg_log(p)), lg_mul(one_minus_z, lg_log(one_minus_p)));
    return lg_neg(mean_all(ll));
}

static lg_value categorical_crossentropy_ops(lg_value y_true, lg_value y_pred, bool from_logits)
{
    if (from_logits) return mean_all(lg_softmax_xent(y_true, y_pred));
    int last = -1;
    lg_value p = lg_div(y_pred, lg_sum(y_pred, &last, 1, true));
    p = lg_clip(p, LG_PROB_EPS, 1 - LG_PROB_EPS);
    return lg_neg(mean_all(lg_sum(lg_mul(y_true, lg_log(p)), &last, 1, false)));
}

static lg_value sparse_categorical_crossentropy_ops(lg_value labels, lg_value y_pred, bool from_logits)
{
    if (from_logits) return mean_all(lg_sparse_softmax_xent(labels, y_pred));
    /* Keras normalises, clips and takes -log p[label]. The fused op does the
     * picking and checks the labels' range; the log-sum-exp it adds is
     * log(sum of clipped p) = 0, off by at most classes * 1e-7 when the
     * clip is active. */
    int last = -1;
    lg_value p = lg_div(y_pred, lg_sum(y_pred, &last, 1, true));
    p = lg_clip(p, LG_PROB_EPS, 1 - LG_PROB_EPS);
    return mean_all(lg_sparse_softmax_xent(labels, lg_log(p)));
}

/* A loss's ops go under the scope `name` of y_pred's graph: enter, then
 * leave with the loss. */
static void enter(lg_value y_pred, const char *name) { lg_scope_push(y_pred.graph, name); }

static lg_value leave(lg_value y_pred, lg_value loss)
{
    lg_scope_pop(y_pred.graph);
    return loss;
}

lg_value lg_mse(lg_value y_true, lg_value y_pred)
{
    enter(y_pred, "mean_squared_error");
    return leave(y_pred, mse_ops(y_true, y_pred));
}

lg_value lg_mae(lg_value y_true, lg_value y_pred)
{
    enter(y_pred, "mean_absolute_error");
    return leave(y_pred, mae_ops(y_true, y_pred));
}

lg_value lg_binary_crossentropy(lg_value y_true, lg_value y_pred, bool from_logits)
{
    enter(y_pred, "binary_crossentropy");
    return leave(y_pred, binary_crossentropy_ops(y_true, y_pred, from_logits));
}

lg_value lg_categorical_crossentropy(lg_value y_true, lg_value y_pred, bool from_logits)
{
    enter(y_pred, "categorical_crossentropy");
    return leave(y_pred, categorical_crossentropy_ops(y_true, y_pred, from_logits));
}

lg_value lg_sparse_categorical_crossentropy(lg_value labels, lg_value y_pred, bool from_logits)
{
    enter(y_pred, "sparse_categorical_crossentropy");
    return leave(y_pred, sparse_categorical_crossentropy_ops(labels, y_pred, from_logits));
}
