/*
 * adam.c — Keras Adam, with the AMSGrad option. Slots: momentum (m),
 * velocity (v) and, with amsgrad, velocity_hat (the running maximum of v).
 */
#include <math.h>

#include "optim/optim_internal.h"

lg_adam_opts lg_adam_opts_default(void)
{
    return (lg_adam_opts){.learning_rate = 0.001, .beta_1 = 0.9, .beta_2 = 0.999, .epsilon = 1e-7, .amsgrad = false};
}

/* alpha = lr sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1);
 * v += (g^2 - v)(1 - b2); [v_hat = max(v_hat, v)]; p -= m alpha / (sqrt(v) + eps) */
#define ADAM_UPDATE(T, SQRT)                                                                                       \
    static void adam_##T(const lg_optimizer *o, T *p, const T *g, T *const *s, int64_t n, double lr, int64_t t)    \
    {                                                                                                              \
        const lg_adam_opts *a = &o->opts.adam;                                                                     \
        T alpha = (T)(lr * sqrt(1 - pow(a->beta_2, (double)t)) / (1 - pow(a->beta_1, (double)t)));                 \
        T c1 = (T)(1 - a->beta_1), c2 = (T)(1 - a->beta_2), eps = (T)a->epsilon;                                   \
        T *m = s[0], *v = s[1], *v_hat = s[2];                                                                     \
        for (int64_t i = 0; i < n; i++) {                                                                          \
            m[i] += (g[i] - m[i]) * c1;                                                                            \
            v[i] += (g[i] * g[i] - v[i]) * c2;                                                                     \
        }                                                                                                          \
        if (a->amsgrad)                                                                                            \
            for (int64_t i = 0; i < n; i++) {                                                                      \
                v_hat[i] = v_hat[i] > v[i] ? v_hat[i] : v[i];                                                      \
                p[i] -= m[i] * alpha / (SQRT(v_hat[i]) + eps);                                                     \
            }                                                                                                      \
        else                                                                                                       \
            for (int64_t i = 0; i < n; i++) p[i] -= m[i] * alpha / (SQRT(v[i]) + eps);                             \
    }
ADAM_UPDATE(float, sqrtf)
ADAM_UPDATE(double, sqrt)

static const lg_optim_rule adam_rule = {adam_float, adam_double};

lg_status lg_optimizer_adam(lg_graph *g, const lg_value *params, int n, const lg_adam_opts *opts, lg_optimizer **out)
{
    const char *fn = "lg_optimizer_adam";
    lg_adam_opts o = opts ? *opts : lg_adam_opts_default();
    if (out) *out = NULL;
    lg_status st = lg_optim_check(fn, "beta_1", o.beta_1, o.beta_1 >= 0 && o.beta_1 < 1, "[0, 1)");
    if (!st) st = lg_optim_check(fn, "beta_2", o.beta_2, o.beta_2 >= 0 && o.beta_2 < 1, "[0, 1)");
    if (!st) st = lg_optim_check(fn, "epsilon", o.epsilon, o.epsilon > 0 && isfinite(o.epsilon), "(0, inf)");
    if (st) return st;
    lg_optim_spec spec = {fn, &adam_rule, o.learning_rate, o.clip, {"momentum", "velocity", "velocity_hat"},
                          o.amsgrad ? 3 : 2};
    st = lg_optimizer_create(g, params, n, &spec, out);
    if (!st) (*out)->opts.adam = o;
    return st;
}
