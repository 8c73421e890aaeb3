/*
 * norm.h — batch normalisation (Keras BatchNormalization, axis=-1).
 *
 * x [B, F] or [B, T, F] (any rank >= 2) is normalised per feature, over
 * every axis but the last:
 *     y = gamma * (x - mean) / sqrt(var + epsilon) + beta
 * In training mode mean and var are the batch's (var biased, divided by the
 * number of elements, as Keras); in inference mode they are the moving
 * statistics. The Keras RNN guide's MNIST model puts one after its LSTM.
 *
 *     lg_batch_norm_opts o = lg_batch_norm_opts_default();
 *     o.training = true;
 *     lg_batch_norm_result bn;
 *     lg_batch_norm(g, "bn", h, o, &bn);                  // bn.output like h
 *     lg_value fetch[3] = {loss, bn.new_moving_mean, bn.new_moving_variance};
 *     lg_tensor *out[3] = {NULL, NULL, NULL};
 *     lg_graph_run(g, feeds, n, fetch, 3, out);
 *     lg_batch_norm_update(&bn, out[1], out[2]);         // after the step
 *
 * Parameters, under the scope `name` with Keras's names, all [F] of x's dtype:
 *   gamma            ones   trainable (only with opts.scale)
 *   beta             zeros  trainable (only with opts.center)
 *   moving_mean      zeros  NOT trainable
 *   moving_variance  ones   NOT trainable
 * The moving statistics live in the graph's parameter store so that
 * checkpoints carry them, but they are state, not weights: an optimizer must
 * skip them. They are returned apart from gamma and beta in the result and
 * are marked non-trainable (lg_param_trainable() is false). Nothing in the graph updates them: a training-mode
 * layer returns their next values, moving * momentum + batch * (1 -
 * momentum), as values to fetch, and lg_batch_norm_update() writes fetched
 * values into the parameter tensors. Their batch terms go through
 * lg_stop_gradient, so fetching them adds no gradient path.
 *
 * Sharing: a second call with the same name in the same scope reuses the
 * parameters the first one made (each must then be [F] of x's dtype), so a
 * training-mode and an inference-mode layer can share one graph:
 *
 *     o.training = true;  lg_batch_norm(g, "bn", h_train, o, &train);
 *     o.training = false; lg_batch_norm(g, "bn", h_eval, o, &eval);
 *
 * Errors: lg_batch_norm records the first error on g and returns its status
 * (message in lg_last_error() too): LG_ERR_INVALID_ARGUMENT for NULL
 * arguments, a bad name, momentum outside [0, 1] or epsilon <= 0 (or NaN),
 * LG_ERR_SHAPE for x of rank < 2, an unknown last dim, or a shared
 * parameter of another shape, LG_ERR_DTYPE for x not float or a shared
 * parameter of another dtype, LG_ERR_GRAPH when g already has an error. The result's values
 * are invalid on error.
 */
#ifndef LG_NORM_H
#define LG_NORM_H

#include "api.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef struct lg_batch_norm_opts {
    double momentum; /* in [0, 1]; default 0.99 (Keras) */
    double epsilon;  /* > 0; default 1e-3 (Keras) */
    bool center;     /* add beta; default true */
    bool scale;      /* multiply by gamma; default true */
    bool training;   /* batch statistics; default false (moving statistics) */
} lg_batch_norm_opts;

lg_batch_norm_opts lg_batch_norm_opts_default(void);

typedef struct lg_batch_norm_result {
    lg_value output; /* x's shape */
    /* trainable parameters [F]; invalid without scale / center */
    lg_value gamma, beta;
    /* non-trainable state parameters [F] */
    lg_value moving_mean, moving_variance;
    /* training only (invalid otherwise), [F]: the batch statistics and the
     * moving statistics' next values, to fetch and pass to
     * lg_batch_norm_update */
    lg_value batch_mean, batch_variance;
    lg_value new_moving_mean, new_moving_variance;
} lg_batch_norm_result;

/* Build the layer on x [..., F] (rank >= 2, F known, f32 or f64) under the
 * scope name (non-empty, no '/'); creates the parameters above, or reuses
 * those of an earlier call of the same name (Sharing). See Errors above. */
lg_status lg_batch_norm(lg_graph *g, const char *name, lg_value x, lg_batch_norm_opts opts, lg_batch_norm_result *r);

/* Copy fetched next values of the moving statistics (tensors [F] of the
 * layer's dtype, from new_moving_mean / new_moving_variance) into r's
 * moving_mean and moving_variance parameters. Either tensor may be NULL to
 * leave that statistic alone. Errors: LG_ERR_INVALID_ARGUMENT (r NULL or
 * without moving statistics), LG_ERR_DTYPE, LG_ERR_SHAPE; on error neither
 * parameter changes. */
lg_status lg_batch_norm_update(const lg_batch_norm_result *r, const lg_tensor *new_mean, const lg_tensor *new_var);


LG_API_END
#ifdef __cplusplus
}
#endif
#endif
