/*
 * test_norm.c — batch normalisation (norm.h) through its public API: values
 * of both modes against a hand computation, the moving-statistics update,
 * f64 gradchecks of the training-mode output, parameter sharing and
 * trainability, and every builder error.
 */
#include <check.h>
#include <math.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"
#include "graph/norm.h"

#define B 3
#define T 4
#define F 2

static lg_tensor *rand_tensor(lg_shape s, uint64_t key, double lo, double hi)
{
    return lg_test_uniform(LG_F64, s, 31, key, lo, hi);
}

static lg_batch_norm_result build(lg_graph *g, const char *name, lg_value x, bool training, double momentum)
{
    lg_batch_norm_opts o = lg_batch_norm_opts_default();
    o.training = training;
    o.momentum = momentum;
    lg_batch_norm_result r;
    lg_status s = lg_batch_norm(g, name, x, o, &r);
    ck_assert_msg(s == LG_OK, "%s: %s", lg_status_name(s), lg_last_error());
    return r;
}

/* gamma, beta and the moving statistics set away from their initial values,
 * so that every term of the formula shows in the output */
static void randomize(const lg_batch_norm_result *r)
{
    lg_init_uniform(lg_param_tensor(r->gamma), 0.5, 1.5, 7, 0);
    lg_init_uniform(lg_param_tensor(r->beta), -0.5, 0.5, 7, 1);
    lg_init_uniform(lg_param_tensor(r->moving_mean), -0.3, 0.3, 7, 2);
    lg_init_uniform(lg_param_tensor(r->moving_variance), 0.5, 2, 7, 3);
}

static double pget(lg_value p, int i) { return lg_tensor_get(lg_param_tensor(p), i); }

/* ---- values ------------------------------------------------------------------- */

START_TEST(test_defaults_and_initial_values)
{
    lg_batch_norm_opts o = lg_batch_norm_opts_default();
    ck_assert_double_eq(o.momentum, 0.99);
    ck_assert_double_eq(o.epsilon, 1e-3);
    ck_assert(o.center && o.scale && !o.training);
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, -1, F));
    lg_batch_norm_result r = build(g, "bn", x, false, 0.99);
    ck_assert_str_eq(lg_value_name(r.gamma), "bn/gamma");
    ck_assert_str_eq(lg_value_name(r.moving_variance), "bn/moving_variance");
    ck_assert_int_eq(lg_value_dtype(r.beta), LG_F32);
    for (int j = 0; j < F; j++) {
        ck_assert_double_eq(pget(r.gamma, j), 1);
        ck_assert_double_eq(pget(r.beta, j), 0);
        ck_assert_double_eq(pget(r.moving_mean, j), 0);
        ck_assert_double_eq(pget(r.moving_variance, j), 1);
    }
    ck_assert(!lg_value_ok(r.new_moving_mean) && !lg_value_ok(r.batch_variance)); /* inference only */
    lg_graph_free(g);
}
END_TEST

/* x [B, T, F] in training mode: per-feature statistics over B and T, biased
 * variance, and the momentum update, all against plain C. */
START_TEST(test_training_values_rank3)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_batch_norm_result r = build(g, "bn", x, true, 0.9);
    randomize(&r);
    lg_tensor *xt = rand_tensor(lg_shape_of(3, B, T, F), 1, -2, 3);
    lg_feed feed = {x, xt};
    lg_value fetch[5] = {r.output, r.batch_mean, r.batch_variance, r.new_moving_mean, r.new_moving_variance};
    lg_tensor *out[5] = {NULL};
    ck_assert_int_eq(lg_graph_run(g, &feed, 1, fetch, 5, out), LG_OK);
    ck_assert(lg_shape_equal(lg_tensor_shape(out[0]), lg_shape_of(3, B, T, F)));
    const int n = B * T;
    for (int j = 0; j < F; j++) {
        double m = 0, v = 0;
        for (int i = 0; i < n; i++) m += lg_tensor_get(xt, i * F + j);
        m /= n;
        for (int i = 0; i < n; i++) v += pow(lg_tensor_get(xt, i * F + j) - m, 2);
        v /= n; /* biased, as Keras */
        ck_assert_double_eq_tol(lg_tensor_get(out[1], j), m, 1e-12);
        ck_assert_double_eq_tol(lg_tensor_get(out[2], j), v, 1e-12);
        ck_assert_double_eq_tol(lg_tensor_get(out[3], j), 0.9 * pget(r.moving_mean, j) + 0.1 * m, 1e-12);
        ck_assert_double_eq_tol(lg_tensor_get(out[4], j), 0.9 * pget(r.moving_variance, j) + 0.1 * v, 1e-12);
        for (int i = 0; i < n; i++) {
            double want = pget(r.gamma, j) * (lg_tensor_get(xt, i * F + j) - m) / sqrt(v + 1e-3) + pget(r.beta, j);
            ck_assert_double_eq_tol(lg_tensor_get(out[0], i * F + j), want, 1e-12);
        }
    }
    for (int k = 0; k < 5; k++) lg_tensor_free(out[k]);
    lg_tensor_free(xt);
    lg_graph_free(g);
}
END_TEST

/* Inference mode uses the moving statistics, whatever the batch holds. */
START_TEST(test_inference_values_rank2)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, -1, F));
    lg_batch_norm_result r = build(g, "bn", x, false, 0.99);
    randomize(&r);
    lg_tensor *xt = rand_tensor(lg_shape_of(2, 5, F), 2, -2, 3);
    lg_feed feed = {x, xt};
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_graph_run(g, &feed, 1, &r.output, 1, &out), LG_OK);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < F; j++) {
            double want = pget(r.gamma, j) * (lg_tensor_get(xt, i * F + j) - pget(r.moving_mean, j)) /
                              sqrt(pget(r.moving_variance, j) + 1e-3) +
                          pget(r.beta, j);
            ck_assert_double_eq_tol(lg_tensor_get(out, i * F + j), want, 1e-12);
        }
    lg_tensor_free(out), lg_tensor_free(xt);
    lg_graph_free(g);
}
END_TEST

/* Without scale and center: no gamma or beta, plain standardisation. */
START_TEST(test_no_scale_no_center)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, 4, 1));
    lg_batch_norm_opts o = lg_batch_norm_opts_default();
    o.scale = o.center = false;
    o.training = true;
    o.epsilon = 1e-9;
    lg_batch_norm_result r;
    ck_assert_int_eq(lg_batch_norm(g, "bn", x, o, &r), LG_OK);
    ck_assert(!lg_value_ok(r.gamma) && !lg_value_ok(r.beta));
    ck_assert_int_eq(lg_graph_param_count(g), 2);
    lg_tensor *xt = NULL;
    lg_tensor_new(LG_F64, lg_shape_of(2, 4, 1), &xt);
    const double v[4] = {1, 2, 3, 6}; /* mean 3, biased variance 3.5 */
    lg_tensor_copy_in(xt, v, sizeof v);
    lg_feed feed = {x, xt};
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_graph_run(g, &feed, 1, &r.output, 1, &out), LG_OK);
    for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(lg_tensor_get(out, i), (v[i] - 3) / sqrt(3.5), 1e-8);
    lg_tensor_free(out), lg_tensor_free(xt);
    lg_graph_free(g);
}
END_TEST

/* Two training steps with the fetched statistics written back: the moving
 * mean follows m1 = 0.5 m0 + 0.5 b, m2 = 0.5 m1 + 0.5 b for a fixed batch. */
START_TEST(test_moving_update)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(2, B, F));
    lg_batch_norm_result r = build(g, "bn", x, true, 0.5);
    lg_tensor *xt = rand_tensor(lg_shape_of(2, B, F), 3, 1, 4);
    lg_feed feed = {x, xt};
    lg_value fetch[4] = {r.new_moving_mean, r.new_moving_variance, r.batch_mean, r.batch_variance};
    double mm = 0, mv = 1; /* feature 0 */
    for (int step = 0; step < 2; step++) {
        lg_tensor *out[4] = {NULL};
        ck_assert_int_eq(lg_graph_run(g, &feed, 1, fetch, 4, out), LG_OK);
        mm = 0.5 * mm + 0.5 * lg_tensor_get(out[2], 0);
        mv = 0.5 * mv + 0.5 * lg_tensor_get(out[3], 0);
        ck_assert_int_eq(lg_batch_norm_update(&r, out[0], out[1]), LG_OK);
        ck_assert_double_eq_tol(pget(r.moving_mean, 0), mm, 1e-12);
        ck_assert_double_eq_tol(pget(r.moving_variance, 0), mv, 1e-12);
        for (int k = 0; k < 4; k++) lg_tensor_free(out[k]);
    }
    ck_assert(mm > 1); /* the mean moved toward the batch's, in [1, 4) */

    /* NULL leaves that statistic alone */
    lg_tensor *z = NULL;
    lg_tensor_new(LG_F64, lg_shape_of(1, F), &z);
    ck_assert_int_eq(lg_batch_norm_update(&r, z, NULL), LG_OK);
    ck_assert_double_eq(pget(r.moving_mean, 0), 0);
    ck_assert_double_eq_tol(pget(r.moving_variance, 0), mv, 1e-12);

    /* bad tensors change nothing */
    lg_tensor *f32 = NULL, *wide = NULL;
    lg_tensor_new(LG_F32, lg_shape_of(1, F), &f32);
    lg_tensor_new(LG_F64, lg_shape_of(1, F + 1), &wide);
    lg_tensor_fill(wide, 5);
    ck_assert_int_eq(lg_batch_norm_update(&r, NULL, f32), LG_ERR_DTYPE);
    ck_assert(strstr(lg_last_error(), "bn/moving_variance"));
    ck_assert_int_eq(lg_batch_norm_update(&r, z, wide), LG_ERR_SHAPE);
    ck_assert_double_eq_tol(pget(r.moving_variance, 0), mv, 1e-12);
    ck_assert_int_eq(lg_batch_norm_update(NULL, z, z), LG_ERR_INVALID_ARGUMENT);
    lg_batch_norm_result empty;
    memset(&empty, 0, sizeof empty);
    empty.moving_mean = empty.moving_variance = lg_value_invalid();
    ck_assert_int_eq(lg_batch_norm_update(&empty, z, z), LG_ERR_INVALID_ARGUMENT);
    lg_tensor_free(z), lg_tensor_free(f32), lg_tensor_free(wide), lg_tensor_free(xt);
    lg_graph_free(g);
}
END_TEST

/* One graph, a training and an inference layer sharing "bn"'s parameters;
 * gamma and beta trainable, the moving statistics not. */
START_TEST(test_sharing_and_trainable)
{
    lg_graph *g = lg_graph_new();
    lg_value xa = lg_input(g, "xa", LG_F64, lg_shape_of(3, -1, -1, F));
    lg_value xb = lg_input(g, "xb", LG_F64, lg_shape_of(2, -1, F));
    lg_batch_norm_result tr = build(g, "bn", xa, true, 0.99);
    lg_batch_norm_result ev = build(g, "bn", xb, false, 0.99);
    ck_assert_int_eq(lg_graph_param_count(g), 4);
    ck_assert(lg_value_same(tr.gamma, ev.gamma) && lg_value_same(tr.moving_variance, ev.moving_variance));
    int trainable = 0;
    for (int i = 0; i < lg_graph_param_count(g); i++) trainable += lg_param_trainable(lg_graph_param(g, i));
    ck_assert_int_eq(trainable, 2);
    ck_assert(lg_param_trainable(tr.gamma) && lg_param_trainable(tr.beta));
    ck_assert(!lg_param_trainable(tr.moving_mean) && !lg_param_trainable(tr.moving_variance));
    ck_assert(!lg_param_trainable(xa)); /* not a parameter */
    ck_assert(!lg_param_trainable(lg_value_invalid()));
    ck_assert_int_eq(lg_param_set_trainable(xa, false), LG_ERR_INVALID_ARGUMENT);
    /* one layer record for the shared layer, listing its four parameters */
    ck_assert_int_eq(lg_graph_layer_count(g), 1);
    ck_assert_str_eq(lg_graph_layer_name(g, 0), "bn");
    ck_assert_str_eq(lg_graph_layer_type(g, 0), "BatchNormalization");
    ck_assert_int_eq(lg_graph_layer_param_count(g, 0), 4);
    ck_assert(lg_value_same(lg_graph_layer_output(g, 0), tr.output));
    /* a shared parameter must fit */
    lg_value xc = lg_input(g, "xc", LG_F64, lg_shape_of(2, -1, F + 1));
    lg_batch_norm_result bad;
    ck_assert_int_eq(lg_batch_norm(g, "bn", xc, lg_batch_norm_opts_default(), &bad), LG_ERR_SHAPE);
    ck_assert(strstr(lg_graph_error(g), "bn/gamma") && strstr(lg_graph_error(g), "[3]"));
    ck_assert(!lg_value_ok(bad.output));
    lg_graph_free(g);
}
END_TEST

/* ---- gradients ------------------------------------------------------------------ */

typedef struct grad_case {
    const char *name;
    int rank;
    bool unknown_batch;
    bool scale, center;
} grad_case;

static const grad_case GRAD_CASES[] = {
    {"rank 2", 2, false, true, true},
    {"rank 3", 3, false, true, true},
    {"rank 3 unknown B and T", 3, true, true, true},
    {"rank 2 no scale", 2, false, false, true},
    {"rank 3 no center", 3, false, true, false},
};

START_TEST(test_gradcheck_training)
{
    const grad_case *c = &GRAD_CASES[_i];
    lg_graph *g = lg_graph_new();
    lg_shape xs = c->rank == 2 ? lg_shape_of(2, B, F) : lg_shape_of(3, B, T, F);
    lg_shape decl = xs;
    if (c->unknown_batch) decl.dims[0] = decl.dims[1] = -1;
    lg_value x = lg_input(g, "x", LG_F64, decl);
    lg_batch_norm_opts o = lg_batch_norm_opts_default();
    o.training = true;
    o.scale = c->scale;
    o.center = c->center;
    lg_batch_norm_result r;
    ck_assert_int_eq(lg_batch_norm(g, "bn", x, o, &r), LG_OK);
    if (c->scale) lg_init_uniform(lg_param_tensor(r.gamma), 0.5, 1.5, 7, 0);
    if (c->center) lg_init_uniform(lg_param_tensor(r.beta), -0.5, 0.5, 7, 1);
    /* sum(y * w) + sum(y^2) / 2 over a weight per element: sum(y) alone has
     * a zero gradient with respect to x */
    lg_tensor *w = rand_tensor(xs, 9, -1, 1);
    lg_value y = r.output;
    lg_value loss = lg_add(lg_sum(lg_mul(y, lg_constant(g, "w", w)), NULL, 0, false),
                           lg_scale(lg_sum(lg_square(y), NULL, 0, false), 0.5));
    lg_tensor *xt = rand_tensor(xs, 4 + (uint64_t)_i, -1, 1);
    lg_feed feed = {x, xt};
    lg_value wrt[3] = {x};
    int nw = 1;
    if (c->scale) wrt[nw++] = r.gamma;
    if (c->center) wrt[nw++] = r.beta;
    lg_gradcheck_report rep;
    lg_status s = lg_gradcheck(g, loss, wrt, nw, &feed, 1, lg_gradcheck_opts_default(), &rep);
    ck_assert_msg(s == LG_OK, "%s: %s", c->name, lg_last_error());
    ck_assert_msg(rep.passed, "%s: worst %s[%lld] analytic %.10g numeric %.10g", c->name, rep.worst_name,
                  rep.worst_index, rep.analytic, rep.numeric);
    ck_assert_int_eq(rep.checked, lg_shape_numel(xs) + (nw - 1) * F);
    lg_tensor_free(w), lg_tensor_free(xt);
    lg_graph_free(g);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------- */

typedef struct error_case {
    const char *name;
    lg_dtype dtype;
    lg_shape shape;
    double momentum, epsilon;
    const char *layer_name;
    lg_status want;
    const char *message; /* a fragment the message must hold */
} error_case;

static const error_case ERROR_CASES[] = {
    {"rank 1", LG_F64, {1, {B}}, 0.99, 1e-3, "bn", LG_ERR_SHAPE, "rank >= 2"},
    {"rank 0", LG_F64, {0, {0}}, 0.99, 1e-3, "bn", LG_ERR_SHAPE, "got []"},
    {"unknown F", LG_F64, {2, {B, -1}}, 0.99, 1e-3, "bn", LG_ERR_SHAPE, "[3, ?]"},
    {"i32 x", LG_I32, {2, {B, F}}, 0.99, 1e-3, "bn", LG_ERR_DTYPE, "got i32"},
    {"momentum < 0", LG_F64, {2, {B, F}}, -0.1, 1e-3, "bn", LG_ERR_INVALID_ARGUMENT, "momentum -0.1"},
    {"momentum > 1", LG_F64, {2, {B, F}}, 1.5, 1e-3, "bn", LG_ERR_INVALID_ARGUMENT, "[0, 1]"},
    {"momentum NaN", LG_F64, {2, {B, F}}, NAN, 1e-3, "bn", LG_ERR_INVALID_ARGUMENT, "momentum"},
    {"epsilon 0", LG_F64, {2, {B, F}}, 0.99, 0, "bn", LG_ERR_INVALID_ARGUMENT, "epsilon 0"},
    {"epsilon < 0", LG_F64, {2, {B, F}}, 0.99, -1e-3, "bn", LG_ERR_INVALID_ARGUMENT, "> 0"},
    {"name with /", LG_F64, {2, {B, F}}, 0.99, 1e-3, "a/b", LG_ERR_INVALID_ARGUMENT, "without '/'"},
    {"empty name", LG_F64, {2, {B, F}}, 0.99, 1e-3, "", LG_ERR_INVALID_ARGUMENT, "name"},
};

START_TEST(test_builder_errors)
{
    const error_case *c = &ERROR_CASES[_i];
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", c->dtype, c->shape);
    ck_assert(lg_value_ok(x));
    lg_batch_norm_opts o = lg_batch_norm_opts_default();
    o.momentum = c->momentum;
    o.epsilon = c->epsilon;
    o.training = true;
    lg_batch_norm_result r;
    lg_status s = lg_batch_norm(g, c->layer_name, x, o, &r);
    ck_assert_msg(s == c->want, "%s: got %s", c->name, lg_status_name(s));
    ck_assert_msg(lg_graph_error(g) && strstr(lg_graph_error(g), c->message), "%s: message '%s'", c->name,
                  lg_graph_error(g));
    ck_assert_str_eq(lg_last_error(), lg_graph_error(g));
    ck_assert(!lg_value_ok(r.output) && !lg_value_ok(r.new_moving_mean));
    ck_assert_int_eq(lg_graph_param_count(g), 0);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_null_and_foreign_arguments)
{
    lg_batch_norm_result r;
    ck_assert_int_eq(lg_batch_norm(NULL, "bn", lg_value_invalid(), lg_batch_norm_opts_default(), &r),
                     LG_ERR_INVALID_ARGUMENT);
    ck_assert(!lg_value_ok(r.output));
    lg_graph *g = lg_graph_new(), *h = lg_graph_new();
    lg_value xh = lg_input(h, "x", LG_F64, lg_shape_of(2, B, F));
    ck_assert_int_eq(lg_batch_norm(g, "bn", xh, lg_batch_norm_opts_default(), &r), LG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(lg_graph_error(g), "another graph"));
    /* a graph with an error refuses further layers */
    lg_value xg = lg_input(g, "x", LG_F64, lg_shape_of(2, B, F));
    ck_assert_int_eq(lg_batch_norm(g, "bn2", xg, lg_batch_norm_opts_default(), &r), LG_ERR_GRAPH);
    lg_value xh2 = lg_input(h, "x2", LG_F64, lg_shape_of(2, B, F));
    ck_assert_int_eq(lg_batch_norm(h, "bn", xh2, lg_batch_norm_opts_default(), NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(lg_graph_error(h), "result is NULL"));
    lg_graph_free(g), lg_graph_free(h);
}
END_TEST

static Suite *norm_suite(void)
{
    Suite *s = suite_create("norm");
    TCase *tv = tcase_create("values");
    tcase_add_test(tv, test_defaults_and_initial_values);
    tcase_add_test(tv, test_training_values_rank3);
    tcase_add_test(tv, test_inference_values_rank2);
    tcase_add_test(tv, test_no_scale_no_center);
    tcase_add_test(tv, test_moving_update);
    tcase_add_test(tv, test_sharing_and_trainable);
    suite_add_tcase(s, tv);
    TCase *tg = tcase_create("gradients");
    tcase_add_loop_test(tg, test_gradcheck_training, 0, (int)(sizeof GRAD_CASES / sizeof GRAD_CASES[0]));
    suite_add_tcase(s, tg);
    TCase *te = tcase_create("errors");
    tcase_add_loop_test(te, test_builder_errors, 0, (int)(sizeof ERROR_CASES / sizeof ERROR_CASES[0]));
    tcase_add_test(te, test_null_and_foreign_arguments);
    suite_add_tcase(s, te);
    return s;
}

int main(void) { return lg_check_run(norm_suite()); }
