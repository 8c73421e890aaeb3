/*
 * optim.h — optimizers: SGD (momentum, Nesterov), Adam (AMSGrad) and
 * RMSprop (momentum, centered), with Keras 3's defaults and update formulas,
 * gradient clipping and a learning-rate schedule hook.
 *
 * An optimizer trains a list of parameters of one graph, all f32 or all f64.
 * It owns one contiguous gradient block, laid out like the parameters (in the
 * order given, each tensor's elements row-major, no gaps), and one block of
 * the same layout per slot (momentum, velocity, ...). lg_optimizer_grads()
 * hands out the gradient block as one tensor per parameter: pass them as the
 * `out` tensors of the run that fetches the gradients, and they land in the
 * block. lg_optimizer_step() then clips and updates every parameter in one
 * flat pass over the blocks, where the gradients were written: after a run
 * on a device (lg_compile_opts.device) the blocks stay there and the step
 * runs there too; lg_optimizer_grads() and lg_optimizer_state() copy them
 * back to the host when called. The gradient tensors lie back to back, so
 * lg_tensor_data(lg_optimizer_grads(opt)[0]) is the whole block (the sum of
 * the parameters' element counts): one buffer for an allreduce between the
 * run and the step.
 *
 *     lg_value params[2] = {w, b}, grads[2];
 *     lg_grad(g, loss, params, 2, grads);
 *     lg_adam_opts o = lg_adam_opts_default();
 *     o.clip.global_clipnorm = 1.0;
 *     lg_optimizer *opt = NULL;
 *     if (lg_optimizer_adam(g, params, 2, o, &opt) != LG_OK) ...;
 *     lg_value fetch[3] = {loss, grads[0], grads[1]};
 *     lg_tensor *out[3] = {NULL, lg_optimizer_grads(opt)[0], lg_optimizer_grads(opt)[1]};
 *     for (int it = 0; it < steps; it++) {
 *         lg_graph_run(g, feeds, n_feeds, fetch, 3, out);  // loss, d loss / d params
 *         lg_optimizer_step(opt);                          // params updated in place
 *     }
 *     lg_tensor_free(out[0]);
 *     lg_optimizer_free(opt);
 *
 * Parameter storage. Creating an optimizer packs the graph's parameters of
 * its dtype into one contiguous block the graph owns, with the optimizer's
 * parameters as one run in the order given, so the parameters too are one
 * flat array during the step. Packing moves values, never loses them: each
 * parameter keeps its lg_tensor (lg_param_tensor() returns the same pointer
 * before and after), only the data moves, and compiled programs read
 * parameters through their tensors when they run, so programs compiled
 * before stay valid and see every update. Read data pointers
 * (lg_tensor_data()) of parameters after creating optimizers, not before.
 * Several optimizers may share a graph: runs of disjoint parameter lists stay
 * contiguous; when another optimizer's packing took an overlapping list apart,
 * the next step packs its own parameters again (one copy of the block).
 *
 * Formulas, per element, with g the (clipped) gradient, lr the learning rate
 * of this step and t = iterations + 1 (Keras's local step):
 *
 *   SGD       momentum = 0:  p -= lr * g
 *             otherwise:     m = momentum * m - lr * g
 *                            p += m                          (nesterov false)
 *                            p += momentum * m - lr * g      (nesterov true)
 *   Adam      alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
 *             m += (g - m) * (1 - beta_1)
 *             v += (g^2 - v) * (1 - beta_2)
 *             amsgrad: v_hat = max(v_hat, v), and v_hat is used for v below
 *             p -= alpha * m / (sqrt(v) + epsilon)
 *   RMSprop   v = rho * v + (1 - rho) * g^2
 *             centered:  a = rho * a + (1 - rho) * g
 *                        d = v - a^2 + epsilon
 *             otherwise: d = v + epsilon
 *             inc = lr * g / sqrt(d)
 *             momentum > 0: mom = momentum * mom + inc; p -= mom
 *             otherwise:    p -= inc
 *
 * Arithmetic is in the parameters' dtype; per-step scalars (alpha) are
 * computed in double and then converted, as Keras casts them.
 *
 * Clipping (Keras semantics; 0 turns each off, at most one may be set):
 *   clipvalue        g = min(max(g, -clipvalue), clipvalue), elementwise;
 *   clipnorm         each parameter's gradient scaled by
 *                    clipnorm / max(||g||_2, clipnorm);
 *   global_clipnorm  every gradient scaled by
 *                    global_clipnorm / max(N, global_clipnorm), N the L2
 *                    norm over all gradients; a non-finite N makes every
 *                    gradient NaN, as in Keras.
 * Clipping is done in place: after a step the gradient tensors hold the
 * clipped gradients.
 *
 * Learning-rate schedule: a function the optimizer calls once per step with
 * the step about to run (iterations before it: 0, 1, 2, ...) and the base
 * learning rate from the options; it returns the rate for that step (Keras
 * LearningRateSchedule(iterations)).
 *
 * State for checkpoints: lg_optimizer_state(opt, i, ...) gives each state
 * tensor with a name. Index 0 is "optimizer/iterations", an i32 rank-0
 * tensor holding the steps done; then each slot in the order listed below,
 * and within a slot each parameter in params order, named
 * "optimizer/<slot>/<parameter full name>" with the parameter's dtype and
 * shape. Slot names are Keras's:
 *   SGD      momentum (only when momentum > 0)
 *   Adam     momentum, velocity, velocity_hat (only with amsgrad)
 *   RMSprop  velocity, momentum (only when momentum > 0),
 *            average_gradient (only when centered)
 * The tensors are views into the optimizer's blocks: a loader writes saved
 * values into them (lg_tensor_copy_in) to resume training. Two optimizers
 * on one graph give the same names; checkpoint them apart.
 *
 * Errors: each constructor returns LG_ERR_INVALID_ARGUMENT for a NULL graph
 * or out, a NULL or empty parameter list, a value that is invalid, of another
 * graph, not a parameter, not trainable (lg_param_trainable()) or listed
 * twice, and a hyperparameter out of range (named as the options field, e.g.
 * "opts.beta_1 = 1"); LG_ERR_DTYPE for a parameter that is not f32 or f64 or
 * whose dtype differs from params[0]'s; LG_ERR_OUT_OF_MEMORY. *out is NULL on
 * error and the graph is unchanged.
 *
 * Ownership: the caller frees an optimizer with lg_optimizer_free(), before
 * its graph. Tensors returned by lg_optimizer_grads() and
 * lg_optimizer_state() belong to the optimizer. A graph and its optimizers
 * are not thread-safe; use them from one thread.
 */
#ifndef LG_OPTIM_H
#define LG_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef struct lg_optimizer lg_optimizer;

/* Gradient clipping before each update; 0 is off, at most one nonzero. */
typedef struct lg_clip_opts {
    double clipvalue;       /* >= 0 */
    double clipnorm;        /* >= 0 */
    double global_clipnorm; /* >= 0 */
} lg_clip_opts;

/* Keras SGD: learning_rate 0.01, momentum 0, nesterov false, no clipping. */
typedef struct lg_sgd_opts {
    double learning_rate; /* >= 0 */
    double momentum;      /* in [0, 1) */
    bool nesterov;
    lg_clip_opts clip;
} lg_sgd_opts;

/* Keras Adam: learning_rate 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7,
 * amsgrad false, no clipping. */
typedef struct lg_adam_opts {
    double learning_rate; /* >= 0 */
    double beta_1;        /* in [0, 1) */
    double beta_2;        /* in [0, 1) */
    double epsilon;       /* > 0 */
    bool amsgrad;
    lg_clip_opts clip;
} lg_adam_opts;

/* Keras RMSprop: learning_rate 0.001, rho 0.9, momentum 0, epsilon 1e-7,
 * centered false, no clipping. */
typedef struct lg_rmsprop_opts {
    double learning_rate; /* >= 0 */
    double rho;           /* in [0, 1) */
    double momentum;      /* in [0, 1) */
    double epsilon;       /* > 0 */
    bool centered;
    lg_clip_opts clip;
} lg_rmsprop_opts;

lg_sgd_opts lg_sgd_opts_default(void);
lg_adam_opts lg_adam_opts_default(void);
lg_rmsprop_opts lg_rmsprop_opts_default(void);

/* A new optimizer training params[0..n) (parameters of g, see the
 * overview for which) with options opts, by value as every options struct
 * (lg_sgd_opts_default() and so on for Keras's). Slots start at zero,
 * iterations at 0. Packs g's parameters of their dtype (see Parameter
 * storage). Errors: see the overview. */
lg_status lg_optimizer_sgd(lg_graph *g, const lg_value *params, int n, lg_sgd_opts opts, lg_optimizer **out);
lg_status lg_optimizer_adam(lg_graph *g, const lg_value *params, int n, lg_adam_opts opts, lg_optimizer **out);
lg_status lg_optimizer_rmsprop(lg_graph *g, const lg_value *params, int n, lg_rmsprop_opts opts,
                               lg_optimizer **out);

void lg_optimizer_free(lg_optimizer *opt); /* NULL is fine */

/* The parameters it trains: their count n (0 for a NULL optimizer) and the
 * i-th in params order (invalid for i outside 0..n-1). */
int lg_optimizer_param_count(const lg_optimizer *opt);
lg_value lg_optimizer_param(const lg_optimizer *opt, int i);

/* n gradient tensors (n as given at creation), views into the contiguous
 * gradient block in params order, each of its parameter's dtype and shape,
 * zero at first. Write the gradients into them (as run outputs) before each
 * step. NULL for a NULL optimizer. */
lg_tensor *const *lg_optimizer_grads(lg_optimizer *opt);

/* One training step: clip the gradients, update every parameter and slot,
 * iterations += 1. Errors: LG_ERR_INVALID_ARGUMENT for a NULL optimizer, a
 * restored "optimizer/iterations" below 0, or a schedule that returned a
 * negative or non-finite rate; LG_ERR_RUNTIME when iterations is at
 * INT32_MAX; LG_ERR_OUT_OF_MEMORY when the parameters had to be packed again
 * and could not. Nothing changes on error. */
lg_status lg_optimizer_step(lg_optimizer *opt);

/* Returns the learning rate for a step: step counts the steps done before it
 * (from 0), base_lr is the options' learning_rate, ctx the pointer given to
 * lg_optimizer_set_schedule(). */
typedef double (*lg_lr_schedule)(int64_t step, double base_lr, void *ctx);

/* Use fn (NULL: none, the constant base rate) from the next step on. A NULL
 * optimizer is ignored. */
void lg_optimizer_set_schedule(lg_optimizer *opt, lg_lr_schedule fn, void *ctx);
/* The learning rate the next step will use: the schedule's value at the
 * current iterations, or the base rate (NaN for a NULL optimizer). */
double lg_optimizer_learning_rate(const lg_optimizer *opt);
/* Steps done (restored state included); 0 for a NULL optimizer. */
int64_t lg_optimizer_iterations(const lg_optimizer *opt);
/* The L2 norm of the whole gradient block as it is now (after a step: as
 * clipped), summed in double where the gradients live (on the device after
 * a run there; only the norm comes back). LG_ERR_INVALID_ARGUMENT for NULL
 * arguments, a device's error otherwise. */
lg_status lg_optimizer_grad_norm(lg_optimizer *opt, double *norm);

/* State tensors for checkpoints (see the overview): their count (0 for a
 * NULL optimizer), and the i-th one's name and tensor, both owned by the
 * optimizer and valid until it is freed. Errors: LG_ERR_INVALID_ARGUMENT for
 * a NULL argument or i outside 0..count-1 (*name and *t are then NULL). */
int lg_optimizer_state_count(const lg_optimizer *opt);
lg_status lg_optimizer_state(lg_optimizer *opt, int i, const char **name, lg_tensor **t);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
