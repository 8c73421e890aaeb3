/*
 * norm.c — batch normalisation (include/graph/norm.h).
 *
 * Built from reductions and broadcasting ops, so its gradient is autodiff's
 * and needs no kernel of its own: the statistics are [F] and broadcast
 * against x [..., F] at the right.
 */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "graph/norm.h"
#include "graph/ops.h"
#include "graph/internal.h"

lg_batch_norm_opts lg_batch_norm_opts_default(void)
{
    return (lg_batch_norm_opts){.momentum = 0.99, .epsilon = 1e-3, .center = true, .scale = true};
}

static void result_clear(lg_batch_norm_result *r)
{
    lg_value none = lg_value_invalid();
    *r = (lg_batch_norm_result){none, none, none, none, none, none, none, none, none};
}

/* The parameter `pname` [F] under the current scope: the existing one of
 * an earlier call with the same name, or a new one filled with `fill`. */
static lg_status state_param(lg_graph *g, const char *layer, const char *pname, lg_dtype dt, int64_t f, double fill,
                             lg_value *out)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", g->scope, pname);
    lg_shape want = {.rank = 1, .dims = {f}};
    lg_value p = lg_graph_find_param(g, full);
    if (lg_value_ok(p)) {
        if (lg_value_dtype(p) != dt)
            return lg_graph_fail_status(g, LG_ERR_DTYPE, "%s: shared parameter '%s' is %s, x is %s", layer, full,
                             lg_dtype_name(lg_value_dtype(p)), lg_dtype_name(dt));
        if (!lg_shape_equal(lg_value_shape(p), want))
            return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: shared parameter '%s' is %s, x needs %s", layer, full,
                             lg_shape_cstr(lg_value_shape(p)), lg_shape_cstr(want));
        *out = p;
        return LG_OK;
    }
    p = lg_param(g, pname, dt, want);
    if (!lg_value_ok(p)) return lg_fail(LG_ERR_GRAPH, "%s: %s", layer, lg_graph_error(g));
    if (fill != 0) lg_tensor_fill(lg_param_tensor(p), fill); /* params start zero-filled */
    *out = p;
    return LG_OK;
}

static lg_status build(lg_graph *g, const char *layer, lg_value x, const lg_batch_norm_opts *o,
                       lg_batch_norm_result *r)
{
    lg_shape xs = lg_value_shape(x);
    lg_dtype dt = lg_value_dtype(x);
    int64_t f = xs.dims[xs.rank - 1];
    lg_status s = LG_OK;
    if (o->scale) s = state_param(g, layer, "gamma", dt, f, 1, &r->gamma);
    if (s == LG_OK && o->center) s = state_param(g, layer, "beta", dt, f, 0, &r->beta);
    if (s == LG_OK) s = state_param(g, layer, "moving_mean", dt, f, 0, &r->moving_mean);
    if (s == LG_OK) s = state_param(g, layer, "moving_variance", dt, f, 1, &r->moving_variance);
    if (s != LG_OK) return s;
    lg_param_set_trainable(r->moving_mean, false); /* state, not weights */
    lg_param_set_trainable(r->moving_variance, false);

    int axes[LG_MAX_RANK];
    for (int i = 0; i < xs.rank - 1; i++) axes[i] = i;
    lg_value mean, var;
    if (o->training) {
        mean = lg_mean(x, axes, xs.rank - 1, false);                            /* [F] */
        var = lg_mean(lg_square(lg_sub(x, mean)), axes, xs.rank - 1, false);    /* [F], biased */
        r->batch_mean = mean;
        r->batch_variance = var;
        r->new_moving_mean = lg_add(lg_scale(r->moving_mean, o->momentum),
                                    lg_scale(lg_stop_gradient(mean), 1 - o->momentum));
        r->new_moving_variance = lg_add(lg_scale(r->moving_variance, o->momentum),
                                        lg_scale(lg_stop_gradient(var), 1 - o->momentum));
    } else {
        mean = r->moving_mean;
        var = r->moving_variance;
    }
    lg_value y = lg_div(lg_sub(x, mean), lg_sqrt(lg_add_scalar(var, o->epsilon)));
    if (o->scale) y = lg_mul(y, r->gamma);
    if (o->center) y = lg_add(y, r->beta);
    r->output = y;
    lg_value params[4];
    int n = 0;
    if (o->scale) params[n++] = r->gamma;
    if (o->center) params[n++] = r->beta;
    params[n++] = r->moving_mean;
    params[n++] = r->moving_variance;
    lg_graph_add_layer(g, "BatchNormalization", y, params, n);
    if (g->error) return lg_fail(LG_ERR_GRAPH, "%s: %s", layer, g->error);
    return LG_OK;
}

lg_status lg_batch_norm(lg_graph *g, const char *name, lg_value x, lg_batch_norm_opts o, lg_batch_norm_result *r)
{
    if (r) result_clear(r);
    if (!g) return lg_fail(LG_ERR_INVALID_ARGUMENT, "batch_norm: graph is NULL");
    if (g->error) return lg_fail(LG_ERR_GRAPH, "batch_norm: the graph has an error: %s", g->error);
    if (!name || !name[0] || strchr(name, '/'))
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "batch_norm: a name without '/' is required");
    char layer[160];
    snprintf(layer, sizeof layer, "batch_norm '%s'", name);
    if (!r) return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: result is NULL", layer);
    if (!lg_value_ok(x) || x.graph != g)
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: x is %s", layer,
                         lg_value_ok(x) ? "a value of another graph" : "an invalid value");
    lg_shape xs = lg_value_shape(x);
    if (lg_value_dtype(x) == LG_I32)
        return lg_graph_fail_status(g, LG_ERR_DTYPE, "%s: x '%s' must be f32 or f64, got i32", layer, lg_value_name(x));
    if (xs.rank < 2 || xs.dims[xs.rank - 1] < 1)
        return lg_graph_fail_status(g, LG_ERR_SHAPE, "%s: x '%s' must be [B, ..., F] with rank >= 2 and a known F, got %s",
                         layer, lg_value_name(x), lg_shape_cstr(xs));
    if (!(o.momentum >= 0 && o.momentum <= 1)) /* also rejects NaN */
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: momentum %g must lie in [0, 1]", layer, o.momentum);
    if (!(o.epsilon > 0))
        return lg_graph_fail_status(g, LG_ERR_INVALID_ARGUMENT, "%s: epsilon %g must be > 0", layer, o.epsilon);
    lg_scope_push(g, name);
    lg_status s = build(g, layer, x, &o, r);
    lg_scope_pop(g);
    if (s != LG_OK) result_clear(r);
    return s;
}

/* t may replace param's value: same dtype and shape. */
static lg_status update_check(lg_value param, const lg_tensor *t, const char *what)
{
    if (!t) return LG_OK;
    lg_tensor *dst = lg_param_tensor(param);
    if (lg_tensor_dtype(t) != lg_tensor_dtype(dst))
        return lg_fail(LG_ERR_DTYPE, "lg_batch_norm_update: %s is %s, '%s' is %s", what,
                       lg_dtype_name(lg_tensor_dtype(t)), lg_value_name(param), lg_dtype_name(lg_tensor_dtype(dst)));
    if (!lg_shape_equal(lg_tensor_shape(t), lg_tensor_shape(dst)))
        return lg_fail(LG_ERR_SHAPE, "lg_batch_norm_update: %s is %s, '%s' is %s", what,
                       lg_shape_cstr(lg_tensor_shape(t)), lg_value_name(param), lg_shape_cstr(lg_tensor_shape(dst)));
    return LG_OK;
}

lg_status lg_batch_norm_update(const lg_batch_norm_result *r, const lg_tensor *new_mean, const lg_tensor *new_var)
{
    if (!r || !lg_param_tensor(r->moving_mean) || !lg_param_tensor(r->moving_variance))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_batch_norm_update: %s", r ? "the result has no moving statistics"
                                                                             : "result is NULL");
    lg_status s = update_check(r->moving_mean, new_mean, "the new mean");
    if (s == LG_OK) s = update_check(r->moving_variance, new_var, "the new variance");
    if (s == LG_OK && new_mean) s = lg_tensor_copy(lg_param_tensor(r->moving_mean), new_mean);
    if (s == LG_OK && new_var) s = lg_tensor_copy(lg_param_tensor(r->moving_variance), new_var);
    return s;
}
