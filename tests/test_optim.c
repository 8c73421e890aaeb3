/*
 * test_optim.c — optimizers (optim.h) through the public API: three steps of
 * every optimizer and option against a plain-C computation of Keras's
 * formulas (parameters and every state slot), Keras's documented examples,
 * clipping, the schedule hook, checkpoint state, parameter packing under
 * compiled programs, convergence on a linear regression, and every error.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"
#include "graph/optim.h"

/* ---- a common handle on the three optimizers ------------------------------ */

typedef enum kind { SGD, ADAM, RMSPROP } kind;

typedef struct cfg {
    kind k;
    lg_sgd_opts sgd;
    lg_adam_opts adam;
    lg_rmsprop_opts rms;
} cfg;

static cfg cfg_default(kind k)
{
    return (cfg){k, lg_sgd_opts_default(), lg_adam_opts_default(), lg_rmsprop_opts_default()};
}

static lg_status make(const cfg *c, lg_graph *g, const lg_value *params, int n, lg_optimizer **out)
{
    switch (c->k) {
    case SGD: return lg_optimizer_sgd(g, params, n, c->sgd, out);
    case ADAM: return lg_optimizer_adam(g, params, n, c->adam, out);
    default: return lg_optimizer_rmsprop(g, params, n, c->rms, out);
    }
}

static lg_optimizer *make_ok(const cfg *c, lg_graph *g, const lg_value *params, int n)
{
    lg_optimizer *o = NULL;
    lg_status s = make(c, g, params, n, &o);
    ck_assert_msg(s == LG_OK, "%s: %s", lg_status_name(s), lg_last_error());
    ck_assert_ptr_nonnull(o);
    return o;
}

static void step_ok(lg_optimizer *o)
{
    lg_status s = lg_optimizer_step(o);
    ck_assert_msg(s == LG_OK, "step: %s: %s", lg_status_name(s), lg_last_error());
}

static void expect_error(lg_status got, lg_status want, const char *substring)
{
    ck_assert_msg(got == want, "status %s, expected %s (%s)", lg_status_name(got), lg_status_name(want),
                  lg_last_error());
    ck_assert_msg(strstr(lg_last_error(), substring), "error \"%s\" lacks \"%s\"", lg_last_error(), substring);
}

static double pget(lg_value p, int i) { return lg_tensor_get(lg_param_tensor(p), i); }

/* ---- the reference: Keras's formulas in plain double ------------------- */

#define NE 9 /* elements: w [2, 3] then b [3] */

typedef struct ref {
    double p[NE], m[NE], v[NE], v_hat[NE], mom[NE], avg[NE];
} ref;

static void ref_step(const cfg *c, ref *r, const double *g, int t /* from 1 */)
{
    for (int i = 0; i < NE; i++) {
        if (c->k == SGD) {
            double lr = c->sgd.learning_rate, mu = c->sgd.momentum;
            if (mu == 0) {
                r->p[i] -= lr * g[i];
            } else {
                r->m[i] = mu * r->m[i] - lr * g[i];
                r->p[i] += c->sgd.nesterov ? mu * r->m[i] - lr * g[i] : r->m[i];
            }
        } else if (c->k == ADAM) {
            const lg_adam_opts *a = &c->adam;
            double lr_t = a->learning_rate * sqrt(1 - pow(a->beta_2, t)) / (1 - pow(a->beta_1, t));
            r->m[i] = a->beta_1 * r->m[i] + (1 - a->beta_1) * g[i];
            r->v[i] = a->beta_2 * r->v[i] + (1 - a->beta_2) * g[i] * g[i];
            r->v_hat[i] = fmax(r->v_hat[i], r->v[i]);
            r->p[i] -= lr_t * r->m[i] / (sqrt(a->amsgrad ? r->v_hat[i] : r->v[i]) + a->epsilon);
        } else {
            const lg_rmsprop_opts *o = &c->rms;
            r->v[i] = o->rho * r->v[i] + (1 - o->rho) * g[i] * g[i];
            r->avg[i] = o->rho * r->avg[i] + (1 - o->rho) * g[i];
            double denom = o->centered ? r->v[i] - r->avg[i] * r->avg[i] + o->epsilon : r->v[i] + o->epsilon;
            double inc = o->learning_rate * g[i] / sqrt(denom);
            r->mom[i] = o->momentum * r->mom[i] + inc;
            r->p[i] -= o->momentum > 0 ? r->mom[i] : inc;
        }
    }
}

/* The reference array holding the slot a state name refers to. */
static const double *ref_slot(const cfg *c, const ref *r, const char *slot)
{
    if (strcmp(slot, "velocity") == 0) return r->v;
    if (strcmp(slot, "velocity_hat") == 0) return r->v_hat;
    if (strcmp(slot, "average_gradient") == 0) return r->avg;
    if (strcmp(slot, "momentum") == 0) return c->k == RMSPROP ? r->mom : r->m;
    return NULL;
}

static const double W0[6] = {0.5, -1, 2, 0.25, -0.75, 1.5}, B0[3] = {0.1, -0.2, 0.3};

/* Gradients of step t (0-based): large at first and then small, so that
 * Adam's v falls and AMSGrad's maximum matters. */
static double grad_at(int t, int i)
{
    static const double scale[3] = {3, 0.5, 0.2};
    return scale[t] * sin(1.7 * i + 0.9 * t + 0.3);
}

/* ---- three steps against the reference ----------------------------------- */

typedef struct row {
    const char *name;
    cfg c;
    const char *slots; /* the state names' slots, space separated */
} row;

static row rows[9];

static void init_rows(void)
{
    row *r = rows;
    *r = (row){"sgd", cfg_default(SGD), ""};
    r->c.sgd.learning_rate = 0.1;
    r++;
    *r = (row){"sgd momentum", cfg_default(SGD), "momentum"};
    r->c.sgd.learning_rate = 0.1, r->c.sgd.momentum = 0.9;
    r++;
    *r = (row){"sgd nesterov", cfg_default(SGD), "momentum"};
    r->c.sgd.learning_rate = 0.1, r->c.sgd.momentum = 0.8, r->c.sgd.nesterov = true;
    r++;
    *r = (row){"adam", cfg_default(ADAM), "momentum velocity"};
    r->c.adam = (lg_adam_opts){.learning_rate = 0.01, .beta_1 = 0.8, .beta_2 = 0.95, .epsilon = 1e-3};
    r++;
    *r = (row){"adam amsgrad", cfg_default(ADAM), "momentum velocity velocity_hat"};
    r->c.adam = (lg_adam_opts){.learning_rate = 0.01, .beta_1 = 0.7, .beta_2 = 0.5, .epsilon = 1e-3, .amsgrad = true};
    r++;
    *r = (row){"rmsprop", cfg_default(RMSPROP), "velocity"};
    r->c.rms = (lg_rmsprop_opts){.learning_rate = 0.01, .rho = 0.8, .epsilon = 1e-3};
    r++;
    *r = (row){"rmsprop momentum", cfg_default(RMSPROP), "velocity momentum"};
    r->c.rms = (lg_rmsprop_opts){.learning_rate = 0.01, .rho = 0.8, .momentum = 0.7, .epsilon = 1e-3};
    r++;
    *r = (row){"rmsprop centered", cfg_default(RMSPROP), "velocity average_gradient"};
    r->c.rms = (lg_rmsprop_opts){.learning_rate = 0.01, .rho = 0.6, .epsilon = 1e-3, .centered = true};
    r++;
    *r = (row){"rmsprop centered momentum", cfg_default(RMSPROP), "velocity momentum average_gradient"};
    r->c.rms = (lg_rmsprop_opts){.learning_rate = 0.01, .rho = 0.6, .momentum = 0.5, .epsilon = 1e-3, .centered = true};
}

#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

/* Row _i % N_ROWS in f64 (tight) and f32 (loose): parameters and every
 * state tensor after each of three steps equal the reference. */
START_TEST(test_three_steps)
{
    init_rows();
    const row *rw = &rows[_i % N_ROWS];
    lg_dtype dt = _i < N_ROWS ? LG_F64 : LG_F32;
    double tol = dt == LG_F64 ? 1e-12 : 1e-5;
    lg_graph *g = lg_graph_new();
    lg_scope_push(g, "dense");
    lg_value params[2] = {lg_param(g, "kernel", dt, lg_shape_of(2, 2, 3)), lg_param(g, "bias", dt, lg_shape_of(1, 3))};
    lg_scope_pop(g);
    ref r = {0};
    for (int i = 0; i < NE; i++) {
        r.p[i] = i < 6 ? W0[i] : B0[i - 6];
        lg_tensor_set(lg_param_tensor(params[i / 6]), i % 6, r.p[i]);
    }
    lg_optimizer *o = make_ok(&rw->c, g, params, 2);
    ck_assert_int_eq(lg_optimizer_param_count(o), 2);
    for (int k = 0; k < 2; k++) ck_assert(lg_value_same(lg_optimizer_param(o, k), params[k]));
    ck_assert(!lg_value_ok(lg_optimizer_param(o, 2)) && !lg_value_ok(lg_optimizer_param(o, -1)));
    lg_tensor *const *grads = lg_optimizer_grads(o);
    /* gradients and parameters are each one flat block */
    size_t es = lg_dtype_size(dt);
    ck_assert_ptr_eq((char *)lg_tensor_data(grads[0]) + 6 * es, lg_tensor_data(grads[1]));
    ck_assert_ptr_eq((char *)lg_tensor_data(lg_param_tensor(params[0])) + 6 * es,
                     lg_tensor_data(lg_param_tensor(params[1])));
    for (int t = 0; t < 3; t++) {
        double gr[NE];
        for (int i = 0; i < NE; i++) {
            gr[i] = grad_at(t, i);
            lg_tensor_set(grads[i / 6], i % 6, gr[i]);
        }
        if (dt == LG_F32)
            for (int i = 0; i < NE; i++) gr[i] = (float)gr[i];
        step_ok(o);
        ref_step(&rw->c, &r, gr, t + 1);
        for (int i = 0; i < NE; i++)
            ck_assert_msg(fabs(pget(params[i / 6], i % 6) - r.p[i]) <= tol * fmax(1, fabs(r.p[i])),
                          "%s %s step %d element %d: %.17g, want %.17g", rw->name, lg_dtype_name(dt), t, i,
                          pget(params[i / 6], i % 6), r.p[i]);
    }
    ck_assert_int_eq(lg_optimizer_iterations(o), 3);
    if (rw->c.k == ADAM && rw->c.adam.amsgrad) { /* the test must reach the maximum */
        bool differs = false;
        for (int i = 0; i < NE; i++) differs |= r.v_hat[i] > r.v[i] * (1 + 1e-6);
        ck_assert(differs);
    }

    /* state: iterations, then each slot for kernel and bias */
    int n_slots = 0;
    char slots[64], *save = NULL;
    snprintf(slots, sizeof slots, "%s", rw->slots);
    const char *name;
    lg_tensor *t;
    ck_assert_int_eq(lg_optimizer_state(o, 0, &name, &t), LG_OK);
    ck_assert_str_eq(name, "optimizer/iterations");
    ck_assert_int_eq(lg_tensor_dtype(t), LG_I32);
    ck_assert_int_eq(lg_tensor_shape(t).rank, 0);
    ck_assert_double_eq(lg_tensor_get(t, 0), 3);
    for (char *slot = strtok_r(slots, " ", &save); slot; slot = strtok_r(NULL, " ", &save), n_slots++) {
        const double *want = ref_slot(&rw->c, &r, slot);
        for (int k = 0; k < 2; k++) {
            char expect[96];
            snprintf(expect, sizeof expect, "optimizer/%s/dense/%s", slot, k ? "bias" : "kernel");
            ck_assert_int_eq(lg_optimizer_state(o, 1 + 2 * n_slots + k, &name, &t), LG_OK);
            ck_assert_str_eq(name, expect);
            ck_assert_int_eq(lg_tensor_dtype(t), dt);
            ck_assert(lg_shape_equal(lg_tensor_shape(t), lg_value_shape(params[k])));
            for (int i = 0; i < lg_tensor_numel(t); i++)
                ck_assert_msg(fabs(lg_tensor_get(t, i) - want[6 * k + i]) <= tol * fmax(1, fabs(want[6 * k + i])),
                              "%s: %s[%d] = %.17g, want %.17g", rw->name, name, i, lg_tensor_get(t, i),
                              want[6 * k + i]);
        }
    }
    ck_assert_int_eq(lg_optimizer_state_count(o), 1 + 2 * n_slots);
    lg_optimizer_free(o);
    lg_graph_free(g);
}
END_TEST

START_TEST(test_defaults)
{
    lg_sgd_opts s = lg_sgd_opts_default();
    ck_assert_double_eq(s.learning_rate, 0.01);
    ck_assert_double_eq(s.momentum, 0);
    ck_assert(!s.nesterov);
    lg_adam_opts a = lg_adam_opts_default();
    ck_assert_double_eq(a.learning_rate, 0.001);
    ck_assert_double_eq(a.beta_1, 0.9);
    ck_assert_double_eq(a.beta_2, 0.999);
    ck_assert_double_eq(a.epsilon, 1e-7);
    ck_assert(!a.amsgrad);
    lg_rmsprop_opts r = lg_rmsprop_opts_default();
    ck_assert_double_eq(r.learning_rate, 0.001);
    ck_assert_double_eq(r.rho, 0.9);
    ck_assert_double_eq(r.momentum, 0);
    ck_assert_double_eq(r.epsilon, 1e-7);
    ck_assert(!r.centered);
    lg_clip_opts c[3] = {s.clip, a.clip, r.clip};
    for (int i = 0; i < 3; i++) ck_assert(c[i].clipvalue == 0 && c[i].clipnorm == 0 && c[i].global_clipnorm == 0);

    /* the default options step as Keras's: Adam's first step moves each
     * weight by about lr whatever the gradient's size */
    lg_graph *g = lg_graph_new();
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 2));
    lg_optimizer *o = NULL;
    ck_assert_int_eq(lg_optimizer_adam(g, &w, 1, lg_adam_opts_default(), &o), LG_OK);
    ck_assert_double_eq(lg_optimizer_learning_rate(o), 0.001);
    lg_tensor_set(lg_optimizer_grads(o)[0], 0, 5);
    lg_tensor_set(lg_optimizer_grads(o)[0], 1, -0.5);
    step_ok(o);
    ck_assert_double_eq_tol(pget(w, 0), -0.001, 1e-8);
    ck_assert_double_eq_tol(pget(w, 1), 0.001, 1e-8);
    lg_optimizer_free(o);
    lg_graph_free(g);
}
END_TEST

/* ---- Keras's documented examples, with the gradient from lg_grad ---------- */

/* var = v0, loss = var^2 / 2 (so the gradient is var); `steps` steps. */
static double keras_example(const cfg *c, lg_dtype dt, double v0, int steps)
{
    lg_graph *g = lg_graph_new();
    lg_value var = lg_param(g, "var", dt, lg_shape_of(0));
    lg_value loss = lg_scale(lg_square(var), 0.5), grad;
    ck_assert_int_eq(lg_grad(g, loss, &var, 1, &grad), LG_OK);
    lg_tensor_set(lg_param_tensor(var), 0, v0);
    lg_optimizer *o = make_ok(c, g, &var, 1);
    lg_tensor *out[1] = {lg_optimizer_grads(o)[0]};
    for (int s = 0; s < steps; s++) {
        ck_assert_int_eq(lg_graph_run(g, NULL, 0, &grad, 1, out), LG_OK);
        step_ok(o);
    }
    double v = pget(var, 0);
    lg_optimizer_free(o);
    lg_graph_free(g);
    return v;
}

START_TEST(test_keras_examples)
{
    for (int d = 0; d < 2; d++) {
        lg_dtype dt = d ? LG_F32 : LG_F64;
        double tol = d ? 1e-6 : 1e-12, doc_tol = d ? 3e-6 : 1e-6; /* the docs print 6 decimals */
        cfg c = cfg_default(SGD);
        c.sgd.learning_rate = 0.1;
        ck_assert_double_eq_tol(keras_example(&c, dt, 1.0, 1), 0.9, tol); /* SGD docstring */
        c.sgd.momentum = 0.9; /* steps -0.1, then -0.18 */
        ck_assert_double_eq_tol(keras_example(&c, dt, 1.0, 2), 0.72, tol);
        c = cfg_default(RMSPROP);
        c.rms.learning_rate = 0.1;
        ck_assert_double_eq_tol(keras_example(&c, dt, 10.0, 1), 9.683772, doc_tol); /* RMSprop docstring */
        c = cfg_default(ADAM);
        c.adam.learning_rate = 0.1;
        ck_assert_double_eq_tol(keras_example(&c, dt, 10.0, 1), 9.9, doc_tol); /* Adam docstring */
    }
}
END_TEST

/* ---- clipping ------------------------------------------------------------ */

/* SGD with lr 1: after a step p = p0 - clipped g, and the gradient tensors
 * hold the clipped gradients. w [2] gets gw, b [2] gets gb. */
static void clip_case(lg_clip_opts clip, const double gw[2], const double gb[2], const double want[4])
{
    lg_graph *g = lg_graph_new();
    lg_value p[2] = {lg_param(g, "w", LG_F64, lg_shape_of(1, 2)), lg_param(g, "b", LG_F64, lg_shape_of(1, 2))};
    cfg c = cfg_default(SGD);
    c.sgd.learning_rate = 1;
    c.sgd.clip = clip;
    lg_optimizer *o = make_ok(&c, g, p, 2);
    lg_tensor *const *gr = lg_optimizer_grads(o);
    for (int i = 0; i < 2; i++) lg_tensor_set(gr[0], i, gw[i]), lg_tensor_set(gr[1], i, gb[i]);
    step_ok(o);
    for (int i = 0; i < 4; i++) {
        double got_p = pget(p[i / 2], i % 2), got_g = lg_tensor_get(gr[i / 2], i % 2);
        if (isnan(want[i])) {
            ck_assert(isnan(got_p) && isnan(got_g));
        } else {
            ck_assert_double_eq_tol(got_p, -want[i], 1e-12);
            ck_assert_double_eq_tol(got_g, want[i], 1e-12);
        }
    }
    lg_optimizer_free(o);
    lg_graph_free(g);
}

START_TEST(test_clipping)
{
    const double gw[2] = {3, -4}, gb[2] = {0.3, -0.4};
    /* clipvalue: elementwise into [-0.35, 0.35] */
    clip_case((lg_clip_opts){.clipvalue = 0.35}, gw, gb, (double[]){0.35, -0.35, 0.3, -0.35});
    /* clipnorm 1: w (norm 5) scaled by 1/5, b (norm 0.5) kept */
    clip_case((lg_clip_opts){.clipnorm = 1}, gw, gb, (double[]){0.6, -0.8, 0.3, -0.4});
    /* just above the norm (1.5) is scaled too */
    clip_case((lg_clip_opts){.clipnorm = 1}, (double[]){0.9, 1.2}, gb, (double[]){0.6, 0.8, 0.3, -0.4});
    /* a zero gradient stays zero */
    clip_case((lg_clip_opts){.clipnorm = 1}, (double[]){0, 0}, gb, (double[]){0, 0, 0.3, -0.4});
    /* global_clipnorm 2: norm over both is sqrt(25.25) */
    double s = 2 / sqrt(25.25);
    clip_case((lg_clip_opts){.global_clipnorm = 2}, gw, gb, (double[]){3 * s, -4 * s, 0.3 * s, -0.4 * s});
    /* below the global norm nothing changes */
    clip_case((lg_clip_opts){.global_clipnorm = 6}, gw, gb, (double[]){3, -4, 0.3, -0.4});
    /* a non-finite global norm makes every gradient NaN (Keras) */
    clip_case((lg_clip_opts){.global_clipnorm = 2}, (double[]){INFINITY, 1}, gb, (double[]){NAN, NAN, NAN, NAN});
    /* off: unchanged */
    clip_case((lg_clip_opts){0}, gw, gb, (double[]){3, -4, 0.3, -0.4});
}
END_TEST

/* f32 blocks clip too (norms summed in double). */
START_TEST(test_clipping_f32)
{
    lg_graph *g = lg_graph_new();
    lg_value w = lg_param(g, "w", LG_F32, lg_shape_of(2, 1, 2));
    cfg c = cfg_default(SGD);
    c.sgd.learning_rate = 1;
    c.sgd.clip.clipnorm = 2.5;
    lg_optimizer *o = make_ok(&c, g, &w, 1);
    lg_tensor_copy_in(lg_optimizer_grads(o)[0], (float[]){6, 8}, 2 * sizeof(float));
    step_ok(o);
    ck_assert_float_eq_tol(pget(w, 0), -1.5, 1e-6);
    ck_assert_float_eq_tol(pget(w, 1), -2.0, 1e-6);
    lg_optimizer_free(o);
    lg_graph_free(g);
}
END_TEST

/* ---- the schedule ------------------------------------------------------- */

typedef struct sched_log {
    int calls;
    int64_t steps[8];
    double bases[8];
    bool fixed;   /* return value instead of the decay */
    double value;
} sched_log;

static double halving(int64_t step, double base, void *ctx)
{
    sched_log *l = ctx;
    if (l->calls < 8) l->steps[l->calls] = step, l->bases[l->calls] = base;
    l->calls++;
    return l->fixed ? l->value : base * pow(0.5, (double)step);
}

START_TEST(test_schedule)
{
    lg_graph *g = lg_graph_new();
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 1));
    cfg c = cfg_default(SGD);
    c.sgd.learning_rate = 0.4;
    lg_optimizer *o = make_ok(&c, g, &w, 1);
    ck_assert_double_eq(lg_optimizer_learning_rate(o), 0.4);
    sched_log log = {0};
    lg_optimizer_set_schedule(o, halving, &log);
    lg_tensor_set(lg_optimizer_grads(o)[0], 0, 1);
    for (int s = 0; s < 3; s++) step_ok(o); /* lr 0.4, 0.2, 0.1 */
    ck_assert_int_eq(log.calls, 3);
    for (int s = 0; s < 3; s++) {
        ck_assert_int_eq(log.steps[s], s);
        ck_assert_double_eq(log.bases[s], 0.4);
    }
    ck_assert_double_eq_tol(pget(w, 0), -0.7, 1e-12);
    ck_assert_double_eq_tol(lg_optimizer_learning_rate(o), 0.05, 1e-15); /* the next step's */
    ck_assert_int_eq(log.steps[3], 3);

    /* a bad rate stops the step before anything changes */
    double bad[3] = {-0.1, NAN, INFINITY};
    for (int k = 0; k < 3; k++) {
        log.fixed = true, log.value = bad[k];
        expect_error(lg_optimizer_step(o), LG_ERR_INVALID_ARGUMENT, "learning-rate schedule gave");
        ck_assert_int_eq(lg_optimizer_iterations(o), 3);
        ck_assert_double_eq_tol(pget(w, 0), -0.7, 1e-12);
    }
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "step 3"));

    /* no schedule: the base rate again */
    lg_optimizer_set_schedule(o, NULL, NULL);
    ck_assert_double_eq(lg_optimizer_learning_rate(o), 0.4);
    step_ok(o);
    ck_assert_double_eq_tol(pget(w, 0), -1.1, 1e-12);
    lg_optimizer_free(o);
    lg_graph_free(g);
}
END_TEST

/* ---- checkpoint state --------------------------------------------------- */

/* Restoring iterations and the slots resumes exactly where a run left off:
 * two steps in one optimizer equal one step, a state copy, and one more step
 * in a fresh optimizer. */
START_TEST(test_state_restore)
{
    cfg c = cfg_default(ADAM);
    c.adam.learning_rate = 0.05;
    c.adam.amsgrad = true;
    double result[3][3];
    for (int run = 0; run < 3; run++) {
        lg_graph *g = lg_graph_new();
        lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 3));
        lg_tensor_copy_in(lg_param_tensor(w), (double[]){1, -2, 0.5}, 3 * sizeof(double));
        lg_optimizer *a = make_ok(&c, g, &w, 1);
        lg_tensor_copy_in(lg_optimizer_grads(a)[0], (double[]){0.3, -1, 2}, 3 * sizeof(double));
        step_ok(a);
        lg_optimizer *b = a;
        if (run > 0) { /* a fresh optimizer: resumed from a's state (run 1) or not (run 2) */
            b = make_ok(&c, g, &w, 1);
            ck_assert_int_eq(lg_optimizer_iterations(b), 0);
            ck_assert_int_eq(lg_optimizer_state_count(b), lg_optimizer_state_count(a));
            for (int i = 0; run == 1 && i < lg_optimizer_state_count(a); i++) {
                const char *na, *nb;
                lg_tensor *ta, *tb;
                ck_assert_int_eq(lg_optimizer_state(a, i, &na, &ta), LG_OK);
                ck_assert_int_eq(lg_optimizer_state(b, i, &nb, &tb), LG_OK);
                ck_assert_str_eq(na, nb);
                ck_assert_int_eq(lg_tensor_copy(tb, ta), LG_OK);
            }
            ck_assert_int_eq(lg_optimizer_iterations(b), run == 1);
        }
        lg_tensor_copy_in(lg_optimizer_grads(b)[0], (double[]){-0.1, 0.2, 0.05}, 3 * sizeof(double));
        step_ok(b);
        ck_assert_int_eq(lg_optimizer_iterations(b), run == 2 ? 1 : 2);
        for (int i = 0; i < 3; i++) result[run][i] = pget(w, i);
        if (b != a) lg_optimizer_free(b);
        lg_optimizer_free(a);
        lg_graph_free(g);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_double_eq(result[0][i], result[1][i]);
        ck_assert_double_ne(result[0][i], result[2][i]); /* without the state the step differs */
    }
}
END_TEST

START_TEST(test_state_errors)
{
    lg_graph *g = lg_graph_new();
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 2));
    cfg c = cfg_default(SGD);
    lg_optimizer *o = make_ok(&c, g, &w, 1);
    ck_assert_int_eq(lg_optimizer_state_count(o), 1); /* no momentum slot */
    const char *name = "x";
    lg_tensor *t = lg_optimizer_grads(o)[0]; /* must come back NULL */
    expect_error(lg_optimizer_state(o, 1, &name, &t), LG_ERR_INVALID_ARGUMENT, "index 1 outside 0..0");
    ck_assert(name == NULL && t == NULL);
    expect_error(lg_optimizer_state(o, -1, &name, &t), LG_ERR_INVALID_ARGUMENT, "index -1");
    expect_error(lg_optimizer_state(NULL, 0, &name, &t), LG_ERR_INVALID_ARGUMENT, "NULL argument");
    expect_error(lg_optimizer_state(o, 0, NULL, &t), LG_ERR_INVALID_ARGUMENT, "NULL argument");
    ck_assert_ptr_null(t);
    expect_error(lg_optimizer_state(o, 0, &name, NULL), LG_ERR_INVALID_ARGUMENT, "NULL argument");

    /* a restored iteration count the step cannot use */
    ck_assert_int_eq(lg_optimizer_state(o, 0, &name, &t), LG_OK);
    lg_tensor_set(lg_optimizer_grads(o)[0], 0, 1);
    lg_tensor_set(t, 0, -5);
    expect_error(lg_optimizer_step(o), LG_ERR_INVALID_ARGUMENT, "optimizer/iterations holds -5");
    lg_tensor_set(t, 0, INT32_MAX);
    ck_assert_int_eq(lg_optimizer_iterations(o), INT32_MAX);
    expect_error(lg_optimizer_step(o), LG_ERR_RUNTIME, "at its maximum");
    ck_assert_double_eq(pget(w, 0), 0); /* nothing moved */
    lg_tensor_set(t, 0, INT32_MAX - 1);
    step_ok(o);
    ck_assert_int_eq(lg_optimizer_iterations(o), INT32_MAX);
    ck_assert_double_eq_tol(pget(w, 0), -0.01, 1e-15);

    /* NULL handles */
    expect_error(lg_optimizer_step(NULL), LG_ERR_INVALID_ARGUMENT, "optimizer is NULL");
    ck_assert_int_eq(lg_optimizer_state_count(NULL), 0);
    ck_assert_int_eq(lg_optimizer_param_count(NULL), 0);
    ck_assert(!lg_value_ok(lg_optimizer_param(NULL, 0)));
    ck_assert_int_eq(lg_optimizer_iterations(NULL), 0);
    ck_assert(isnan(lg_optimizer_learning_rate(NULL)));
    ck_assert_ptr_null(lg_optimizer_grads(NULL));
    lg_optimizer_set_schedule(NULL, halving, NULL);
    lg_optimizer_free(NULL);
    lg_optimizer_free(o);
    lg_graph_free(g);
}
END_TEST

/* ---- parameter packing --------------------------------------------------- */

/* sum(a) + 10 sum(c), computed by a program compiled before any packing */
START_TEST(test_packing_keeps_values_and_programs)
{
    lg_graph *g = lg_graph_new();
    lg_value a = lg_param(g, "a", LG_F64, lg_shape_of(1, 2));
    lg_value f = lg_param(g, "f", LG_F32, lg_shape_of(1, 3)); /* another dtype: its own block */
    lg_value c = lg_param(g, "c", LG_F64, lg_shape_of(2, 2, 2));
    lg_tensor_copy_in(lg_param_tensor(a), (double[]){1, 2}, 2 * sizeof(double));
    lg_tensor_copy_in(lg_param_tensor(f), (float[]){7, 8, 9}, 3 * sizeof(float));
    lg_tensor_copy_in(lg_param_tensor(c), (double[]){3, 4, 5, 6}, 4 * sizeof(double));
    lg_tensor *ta = lg_param_tensor(a), *tc = lg_param_tensor(c), *tf = lg_param_tensor(f);
    lg_value total = lg_add(lg_sum(a, NULL, 0, false), lg_scale(lg_sum(c, NULL, 0, false), 10));
    lg_program *prog = NULL;
    ck_assert_int_eq(lg_program_compile(g, NULL, 0, &total, 1, &prog), LG_OK);
    lg_tensor *out = NULL;
    ck_assert_int_eq(lg_program_run(prog, NULL, 0, &out), LG_OK);
    ck_assert_double_eq(lg_tensor_get(out, 0), 3 + 180);

    cfg sgd = cfg_default(SGD);
    sgd.sgd.learning_rate = 1;
    lg_optimizer *o1 = make_ok(&sgd, g, (lg_value[]){c, a}, 2);
    /* same tensors, same values, c then a back to back */
    ck_assert_ptr_eq(lg_param_tensor(a), ta);
    ck_assert_ptr_eq(lg_param_tensor(c), tc);
    ck_assert_ptr_eq((double *)lg_tensor_data(tc) + 4, lg_tensor_data(ta));
    for (int i = 0; i < 4; i++) ck_assert_double_eq(pget(c, i), 3 + i);
    for (int i = 0; i < 2; i++) ck_assert_double_eq(pget(a, i), 1 + i);
    for (int i = 0; i < 3; i++) ck_assert_double_eq(pget(f, i), 7 + i);
    ck_assert_ptr_eq(lg_param_tensor(f), tf);

    /* the program sees the update */
    lg_tensor *const *g1 = lg_optimizer_grads(o1);
    lg_tensor_fill(g1[0], 0.5), lg_tensor_fill(g1[1], 0.25);
    step_ok(o1); /* c -= 0.5, a -= 0.25 */
    ck_assert_int_eq(lg_program_run(prog, NULL, 0, &out), LG_OK);
    ck_assert_double_eq(lg_tensor_get(out, 0), 2.5 + 160);

    /* a parameter made later, and a second optimizer on an overlapping list
     * in another order: packing again moves data, keeps every value, and
     * both optimizers and the program go on working */
    lg_value d = lg_param(g, "d", LG_F64, lg_shape_of(1, 1));
    lg_tensor_set(lg_param_tensor(d), 0, 42);
    lg_optimizer *o2 = make_ok(&sgd, g, (lg_value[]){d, a}, 2);
    ck_assert_ptr_eq((double *)lg_tensor_data(lg_param_tensor(d)) + 1, lg_tensor_data(ta));
    ck_assert_ptr_ne((double *)lg_tensor_data(tc) + 4, lg_tensor_data(ta)); /* o1's run is apart */
    ck_assert_double_eq(pget(d, 0), 42);
    ck_assert_double_eq(pget(a, 0), 0.75);
    ck_assert_double_eq(pget(c, 3), 5.5);
    lg_tensor *const *g2 = lg_optimizer_grads(o2);
    lg_tensor_fill(g2[0], 2), lg_tensor_fill(g2[1], 1);
    step_ok(o2); /* d -= 2, a -= 1 */
    ck_assert_double_eq(pget(d, 0), 40);
    step_ok(o1); /* packs c and a again; c -= 0.5, a -= 0.25 */
    ck_assert_ptr_eq((double *)lg_tensor_data(tc) + 4, lg_tensor_data(ta));
    for (int i = 0; i < 4; i++) ck_assert_double_eq(pget(c, i), 2 + i);
    for (int i = 0; i < 2; i++) ck_assert_double_eq(pget(a, i), -0.5 + i);
    ck_assert_double_eq(pget(d, 0), 40);
    step_ok(o2); /* and back */
    ck_assert_ptr_eq((double *)lg_tensor_data(lg_param_tensor(d)) + 1, lg_tensor_data(ta));
    ck_assert_double_eq(pget(d, 0), 38);
    ck_assert_double_eq(pget(a, 1), -0.5);
    ck_assert_int_eq(lg_program_run(prog, NULL, 0, &out), LG_OK);
    ck_assert_double_eq(lg_tensor_get(out, 0), -1.5 - 0.5 + 10 * (2 + 3 + 4 + 5));
    lg_tensor_free(out);
    lg_program_free(prog);
    lg_optimizer_free(o1), lg_optimizer_free(o2);
    lg_graph_free(g);
}
END_TEST

/* Disjoint optimizers keep their runs: the second packing leaves the
 * first's run where it was relative to itself. */
START_TEST(test_packing_disjoint)
{
    lg_graph *g = lg_graph_new();
    lg_value p[4];
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "p%d", i);
        p[i] = lg_param(g, name, LG_F32, lg_shape_of(1, i + 1));
        lg_tensor_fill(lg_param_tensor(p[i]), i);
    }
    cfg c = cfg_default(SGD);
    lg_optimizer *o1 = make_ok(&c, g, (lg_value[]){p[3], p[1]}, 2);
    lg_optimizer *o2 = make_ok(&c, g, (lg_value[]){p[2], p[0]}, 2);
    ck_assert_ptr_eq((float *)lg_tensor_data(lg_param_tensor(p[3])) + 4, lg_tensor_data(lg_param_tensor(p[1])));
    ck_assert_ptr_eq((float *)lg_tensor_data(lg_param_tensor(p[2])) + 3, lg_tensor_data(lg_param_tensor(p[0])));
    for (int i = 0; i < 4; i++)
        for (int k = 0; k <= i; k++) ck_assert_float_eq(pget(p[i], k), i);
    /* stepping o1 needs no packing: its data stays put */
    void *before = lg_tensor_data(lg_param_tensor(p[3]));
    lg_tensor_fill(lg_optimizer_grads(o1)[0], 100);
    step_ok(o1);
    ck_assert_ptr_eq(lg_tensor_data(lg_param_tensor(p[3])), before);
    ck_assert_float_eq_tol(pget(p[3], 0), 2, 1e-6);
    lg_optimizer_free(o1), lg_optimizer_free(o2);
    lg_graph_free(g);
}
END_TEST

/* ---- convergence ---------------------------------------------------------- */

#define N_EX 32
#define D 3

static double decay(int64_t step, double base, void *ctx)
{
    (void)ctx;
    return base * pow(0.99, (double)step);
}

typedef struct fit_row {
    const char *name;
    cfg c;
    bool decay;
    int steps;
} fit_row;

static fit_row fit_rows[5];

static void init_fit_rows(void)
{
    fit_rows[0] = (fit_row){"sgd", cfg_default(SGD), false, 400};
    fit_rows[0].c.sgd.learning_rate = 0.3;
    fit_rows[1] = (fit_row){"sgd nesterov", cfg_default(SGD), false, 300};
    fit_rows[1].c.sgd.learning_rate = 0.05, fit_rows[1].c.sgd.momentum = 0.9, fit_rows[1].c.sgd.nesterov = true;
    fit_rows[2] = (fit_row){"adam", cfg_default(ADAM), false, 600};
    fit_rows[2].c.adam.learning_rate = 0.05;
    fit_rows[3] = (fit_row){"adam amsgrad clipped", cfg_default(ADAM), false, 600};
    fit_rows[3].c.adam.learning_rate = 0.05, fit_rows[3].c.adam.amsgrad = true;
    fit_rows[3].c.adam.clip.global_clipnorm = 1;
    fit_rows[4] = (fit_row){"rmsprop centered", cfg_default(RMSPROP), true, 600};
    fit_rows[4].c.rms.learning_rate = 0.05, fit_rows[4].c.rms.centered = true, fit_rows[4].c.rms.momentum = 0.5;
}

/* y = X w* + b* fitted from zeros in f32 with mse and lg_grad; the
 * gradients land in the optimizer's block as run outputs. */
START_TEST(test_linear_regression)
{
    init_fit_rows();
    const fit_row *fr = &fit_rows[_i];
    const double w_star[D] = {1.5, -2, 0.5}, b_star = 0.3;
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(2, N_EX, D));
    lg_value y = lg_input(g, "y", LG_F32, lg_shape_of(2, N_EX, 1));
    lg_value params[2] = {lg_param(g, "w", LG_F32, lg_shape_of(2, D, 1)), lg_param(g, "b", LG_F32, lg_shape_of(1, 1))};
    lg_value loss = lg_mse(y, lg_add(lg_matmul(x, params[0], false, false), params[1])), grads[2];
    ck_assert_int_eq(lg_grad(g, loss, params, 2, grads), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F32, lg_shape_of(2, N_EX, D), 5, 0, -1, 1);
    lg_tensor *yt = lg_test_tensor(LG_F32, lg_shape_of(2, N_EX, 1), NULL);
    for (int i = 0; i < N_EX; i++) {
        double s = b_star;
        for (int j = 0; j < D; j++) s += lg_tensor_get(xt, i * D + j) * w_star[j];
        lg_tensor_set(yt, i, s);
    }
    lg_optimizer *o = make_ok(&fr->c, g, params, 2);
    if (fr->decay) lg_optimizer_set_schedule(o, decay, NULL);
    lg_feed feeds[2] = {{x, xt}, {y, yt}};
    lg_value fetch[3] = {loss, grads[0], grads[1]};
    lg_tensor *out[3] = {NULL, lg_optimizer_grads(o)[0], lg_optimizer_grads(o)[1]};
    double first = 0;
    for (int s = 0; s < fr->steps; s++) {
        ck_assert_int_eq(lg_graph_run(g, feeds, 2, fetch, 3, out), LG_OK);
        if (s == 0) first = lg_tensor_get(out[0], 0);
        step_ok(o);
    }
    ck_assert_int_eq(lg_graph_run(g, feeds, 2, fetch, 1, out), LG_OK);
    double last = lg_tensor_get(out[0], 0);
    ck_assert_msg(first > 1 && last < 1e-10, "%s: loss %g -> %g", fr->name, first, last);
    for (int j = 0; j < D; j++)
        ck_assert_msg(fabs(pget(params[0], j) - w_star[j]) < 1e-4, "%s: w[%d] = %g, want %g", fr->name, j,
                      pget(params[0], j), w_star[j]);
    ck_assert_double_eq_tol(pget(params[1], 0), b_star, 1e-4);
    ck_assert_int_eq(lg_optimizer_iterations(o), fr->steps);
    lg_tensor_free(out[0]), lg_tensor_free(xt), lg_tensor_free(yt);
    lg_optimizer_free(o);
    lg_graph_free(g);
}
END_TEST

/* ---- errors --------------------------------------------------------------- */

typedef struct bad_row {
    const char *error;
    kind k;
    void (*edit)(cfg *c);
} bad_row;

#define BAD(name, body) \
    static void bad_##name(cfg *c) { body; }
BAD(sgd_lr, c->sgd.learning_rate = -0.1)
BAD(sgd_lr_nan, c->sgd.learning_rate = NAN)
BAD(sgd_momentum_1, c->sgd.momentum = 1)
BAD(sgd_momentum_neg, c->sgd.momentum = -0.1)
BAD(adam_lr, c->adam.learning_rate = -1)
BAD(adam_beta_1, c->adam.beta_1 = 1)
BAD(adam_beta_1_neg, c->adam.beta_1 = -0.5)
BAD(adam_beta_2, c->adam.beta_2 = 1.5)
BAD(adam_eps_0, c->adam.epsilon = 0)
BAD(adam_eps_neg, c->adam.epsilon = -1e-7)
BAD(rms_lr, c->rms.learning_rate = INFINITY)
BAD(rms_rho, c->rms.rho = 1)
BAD(rms_rho_neg, c->rms.rho = -0.1)
BAD(rms_momentum, c->rms.momentum = 1)
BAD(rms_eps, c->rms.epsilon = 0)
BAD(clipvalue, c->sgd.clip.clipvalue = -1)
BAD(clipnorm, c->adam.clip.clipnorm = -0.5)
BAD(global_clipnorm, c->rms.clip.global_clipnorm = -2)
BAD(clipnorm_nan, c->sgd.clip.clipnorm = NAN)
BAD(two_clips, c->adam.clip.clipnorm = 1; c->adam.clip.global_clipnorm = 1)
BAD(value_and_norm, c->rms.clip.clipvalue = 1; c->rms.clip.clipnorm = 2)
#undef BAD

static const bad_row bad_rows[] = {
    {"lg_optimizer_sgd: opts.learning_rate = -0.1 is outside [0, inf)", SGD, bad_sgd_lr},
    {"opts.learning_rate = nan", SGD, bad_sgd_lr_nan},
    {"lg_optimizer_sgd: opts.momentum = 1 is outside [0, 1)", SGD, bad_sgd_momentum_1},
    {"opts.momentum = -0.1", SGD, bad_sgd_momentum_neg},
    {"lg_optimizer_adam: opts.learning_rate = -1", ADAM, bad_adam_lr},
    {"lg_optimizer_adam: opts.beta_1 = 1 is outside [0, 1)", ADAM, bad_adam_beta_1},
    {"opts.beta_1 = -0.5", ADAM, bad_adam_beta_1_neg},
    {"opts.beta_2 = 1.5 is outside [0, 1)", ADAM, bad_adam_beta_2},
    {"opts.epsilon = 0 is outside (0, inf)", ADAM, bad_adam_eps_0},
    {"opts.epsilon = -1e-07", ADAM, bad_adam_eps_neg},
    {"lg_optimizer_rmsprop: opts.learning_rate = inf", RMSPROP, bad_rms_lr},
    {"opts.rho = 1 is outside [0, 1)", RMSPROP, bad_rms_rho},
    {"opts.rho = -0.1", RMSPROP, bad_rms_rho_neg},
    {"opts.momentum = 1 is outside [0, 1)", RMSPROP, bad_rms_momentum},
    {"opts.epsilon = 0", RMSPROP, bad_rms_eps},
    {"lg_optimizer_sgd: opts.clip.clipvalue = -1 is outside [0, inf)", SGD, bad_clipvalue},
    {"lg_optimizer_adam: opts.clip.clipnorm = -0.5", ADAM, bad_clipnorm},
    {"lg_optimizer_rmsprop: opts.clip.global_clipnorm = -2", RMSPROP, bad_global_clipnorm},
    {"opts.clip.clipnorm = nan", SGD, bad_clipnorm_nan},
    {"clipnorm = 1, global_clipnorm = 1; set at most one", ADAM, bad_two_clips},
    {"clipvalue = 1, clipnorm = 2, global_clipnorm = 0; set at most one", RMSPROP, bad_value_and_norm},
};

START_TEST(test_bad_hyperparameters)
{
    const bad_row *b = &bad_rows[_i];
    cfg c = cfg_default(b->k);
    b->edit(&c);
    lg_graph *g = lg_graph_new();
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 2));
    lg_optimizer *valid = make_ok(&(cfg){0}, g, &w, 1), *o = valid; /* o must come back NULL */
    expect_error(make(&c, g, &w, 1, &o), LG_ERR_INVALID_ARGUMENT, b->error);
    ck_assert_ptr_null(o);
    lg_optimizer_free(valid);
    ck_assert_ptr_null(lg_graph_error(g));
    lg_graph_free(g);
}
END_TEST

START_TEST(test_bad_params)
{
    lg_graph *g = lg_graph_new(), *h = lg_graph_new();
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(1, 2));
    lg_value b = lg_param(g, "b", LG_F64, lg_shape_of(1, 2));
    lg_value f = lg_param(g, "f", LG_F32, lg_shape_of(1, 2));
    lg_value idx = lg_param(g, "idx", LG_I32, lg_shape_of(1, 2));
    lg_value frozen = lg_param(g, "frozen", LG_F64, lg_shape_of(1, 2));
    ck_assert_int_eq(lg_param_set_trainable(frozen, false), LG_OK);
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(1, 2));
    lg_value other = lg_param(h, "other", LG_F64, lg_shape_of(1, 2));
    lg_tensor_copy_in(lg_param_tensor(w), (double[]){1, 2}, 2 * sizeof(double));
    cfg c = cfg_default(SGD);
    lg_optimizer *o = NULL;

    expect_error(make(&c, NULL, &w, 1, &o), LG_ERR_INVALID_ARGUMENT, "lg_optimizer_sgd: graph is NULL");
    expect_error(make(&c, g, &w, 1, NULL), LG_ERR_INVALID_ARGUMENT, "out is NULL");
    expect_error(make(&c, g, NULL, 1, &o), LG_ERR_INVALID_ARGUMENT, "params is NULL");
    expect_error(make(&c, g, &w, 0, &o), LG_ERR_INVALID_ARGUMENT, "n = 0, at least one parameter");
    expect_error(make(&c, g, &w, -3, &o), LG_ERR_INVALID_ARGUMENT, "n = -3");
    expect_error(make(&c, g, (lg_value[]){w, lg_value_invalid()}, 2, &o), LG_ERR_INVALID_ARGUMENT,
                 "params[1] is an invalid value");
    expect_error(make(&c, g, (lg_value[]){w, other}, 2, &o), LG_ERR_INVALID_ARGUMENT,
                 "params[1] 'other' belongs to another graph");
    expect_error(make(&c, g, &x, 1, &o), LG_ERR_INVALID_ARGUMENT, "params[0] 'x' is not a parameter (its op is input)");
    expect_error(make(&c, g, (lg_value[]){w, frozen}, 2, &o), LG_ERR_INVALID_ARGUMENT,
                 "params[1] 'frozen' is not trainable");
    expect_error(make(&c, g, &idx, 1, &o), LG_ERR_DTYPE, "params[0] 'idx' is i32; optimizers train f32 or f64");
    expect_error(make(&c, g, (lg_value[]){w, f}, 2, &o), LG_ERR_DTYPE,
                 "params[1] 'f' is f32 but params[0] 'w' is f64 (one dtype per optimizer)");
    expect_error(make(&c, g, (lg_value[]){w, b, w}, 3, &o), LG_ERR_INVALID_ARGUMENT, "params[2] 'w' repeats params[0]");
    ck_assert_ptr_null(o);
    /* the same through Adam and RMSprop, which share the checks */
    c.k = ADAM;
    expect_error(make(&c, g, &x, 1, &o), LG_ERR_INVALID_ARGUMENT, "lg_optimizer_adam: params[0] 'x' is not");
    c.k = RMSPROP;
    expect_error(make(&c, g, &frozen, 1, &o), LG_ERR_INVALID_ARGUMENT, "lg_optimizer_rmsprop: params[0] 'frozen'");
    /* nothing was packed or changed */
    ck_assert_double_eq(pget(w, 1), 2);
    ck_assert_ptr_null(lg_graph_error(g));
    /* the batch norm's moving statistics are refused too */
    lg_value hx = lg_input(g, "hx", LG_F64, lg_shape_of(2, 4, 2));
    lg_batch_norm_result bn;
    ck_assert_int_eq(lg_batch_norm(g, "bn", hx, lg_batch_norm_opts_default(), &bn), LG_OK);
    expect_error(make(&c, g, (lg_value[]){bn.gamma, bn.moving_mean}, 2, &o), LG_ERR_INVALID_ARGUMENT,
                 "params[1] 'bn/moving_mean' is not trainable");
    lg_graph_free(g), lg_graph_free(h);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tu = tcase_create("updates");
    tcase_add_test(tu, test_defaults);
    tcase_add_loop_test(tu, test_three_steps, 0, 2 * N_ROWS);
    tcase_add_test(tu, test_keras_examples);
    tcase_add_test(tu, test_clipping);
    tcase_add_test(tu, test_clipping_f32);
    tcase_add_test(tu, test_schedule);
    suite_add_tcase(s, tu);
    TCase *ts = tcase_create("state and packing");
    tcase_add_test(ts, test_state_restore);
    tcase_add_test(ts, test_state_errors);
    tcase_add_test(ts, test_packing_keeps_values_and_programs);
    tcase_add_test(ts, test_packing_disjoint);
    suite_add_tcase(s, ts);
    TCase *tc = tcase_create("convergence");
    tcase_add_loop_test(tc, test_linear_regression, 0, (int)(sizeof fit_rows / sizeof fit_rows[0]));
    suite_add_tcase(s, tc);
    TCase *te = tcase_create("errors");
    tcase_add_loop_test(te, test_bad_hyperparameters, 0, (int)(sizeof bad_rows / sizeof bad_rows[0]));
    tcase_add_test(te, test_bad_params);
    suite_add_tcase(s, te);
    return s;
}

int main(void) { return lg_check_run(optim_suite()); }
