/*
 * rmsprop.c — Keras RMSprop, with plain momentum and the centered variant.
 * Slots: velocity (the moving mean of g^2), then momentum when momentum > 0,
 * then average_gradient (the moving mean of g) when centered.
 */
#include <math.h>

#include "optim/optim_internal.h"

lg_rmsprop_opts lg_rmsprop_opts_default(void)
{
    return (lg_rmsprop_opts){.learning_rate = 0.001, .rho = 0.9, .momentum = 0, .epsilon = 1e-7, .centered = false};
}

/* v = rho v + (1 - rho) g^2; centered: a = rho a + (1 - rho) g, d = v - a^2 + eps,
 * else d = v + eps; inc = lr g / sqrt(d); momentum: mom = mu mom + inc, p -= mom;
 * else p -= inc */
#define RMSPROP_UPDATE(T, SQRT)                                                                                    \
    static void rmsprop_##T(const lg_optimizer *o, T *p, const T *g, T *const *s, int64_t n, double lr_,          \
                            int64_t t)                                                                             \
    {                                                                                                              \
        (void)t;                                                                                                   \
        const lg_rmsprop_opts *r = &o->opts.rmsprop;                                                               \
        T rho = (T)r->rho, c = (T)(1 - r->rho), lr = (T)lr_, eps = (T)r->epsilon, mu = (T)r->momentum;             \
        T *v = s[0], *mom = r->momentum > 0 ? s[1] : NULL, *avg = r->centered ? s[r->momentum > 0 ? 2 : 1] : NULL; \
        for (int64_t i = 0; i < n; i++) {                                                                          \
            v[i] = rho * v[i] + c * (g[i] * g[i]);                                                                 \
            T d = v[i] + eps;                                                                                      \
            if (avg) {                                                                                             \
                avg[i] = rho * avg[i] + c * g[i];                                                                  \
                d = v[i] - avg[i] * avg[i] + eps;                                                                  \
            }                                                                                                      \
            T inc = lr * g[i] / SQRT(d);                                                                           \
            if (mom) {                                                                                             \
                mom[i] = mu * mom[i] + inc;                                                                        \
                p[i] -= mom[i];                                                                                    \
            } else {                                                                                               \
                p[i] -= inc;                                                                                       \
            }                                                                                                      \
        }                                                                                                          \
    }
RMSPROP_UPDATE(float, sqrtf)
RMSPROP_UPDATE(double, sqrt)

static const lg_optim_rule rmsprop_rule = {rmsprop_float, rmsprop_double};

lg_status lg_optimizer_rmsprop(lg_graph *g, const lg_value *params, int n, const lg_rmsprop_opts *opts,
                               lg_optimizer **out)
{
    const char *fn = "lg_optimizer_rmsprop";
    lg_rmsprop_opts o = opts ? *opts : lg_rmsprop_opts_default();
    if (out) *out = NULL;
    lg_status st = lg_optim_check(fn, "rho", o.rho, o.rho >= 0 && o.rho < 1, "[0, 1)");
    if (!st) st = lg_optim_check(fn, "momentum", o.momentum, o.momentum >= 0 && o.momentum < 1, "[0, 1)");
    if (!st) st = lg_optim_check(fn, "epsilon", o.epsilon, o.epsilon > 0 && isfinite(o.epsilon), "(0, inf)");
    if (st) return st;
    lg_optim_spec spec = {fn, &rmsprop_rule, o.learning_rate, o.clip, {"velocity"}, 1};
    if (o.momentum > 0) spec.slots[spec.n_slots++] = "momentum";
    if (o.centered) spec.slots[spec.n_slots++] = "average_gradient";
    st = lg_optimizer_create(g, params, n, &spec, out);
    if (!st) (*out)->opts.rmsprop = o;
    return st;
}
