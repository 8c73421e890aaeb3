/*
 * sgd.c — Keras SGD: plain, with momentum, or Nesterov momentum. Slot 0 is
 * the momentum (velocity), present only when momentum > 0.
 */
#include "optim/optim_internal.h"

lg_sgd_opts lg_sgd_opts_default(void) { return (lg_sgd_opts){.learning_rate = 0.01, .momentum = 0, .nesterov = false}; }

/* p -= lr g; or m = mu m - lr g, then p += m (Nesterov: p += mu m - lr g). */
#define SGD_UPDATE(T)                                                                                              \
    static void sgd_##T(const lg_optimizer *o, T *p, const T *g, T *const *s, int64_t n, double lr_, int64_t t)    \
    {                                                                                                              \
        (void)t;                                                                                                   \
        T lr = (T)lr_, mu = (T)o->opts.sgd.momentum;                                                               \
        T *m = s[0];                                                                                               \
        if (o->opts.sgd.momentum == 0)                                                                             \
            for (int64_t i = 0; i < n; i++) p[i] -= lr * g[i];                                                     \
        else if (o->opts.sgd.nesterov)                                                                             \
            for (int64_t i = 0; i < n; i++) {                                                                      \
                m[i] = mu * m[i] - lr * g[i];                                                                      \
                p[i] += mu * m[i] - lr * g[i];                                                                     \
            }                                                                                                      \
        else                                                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                                      \
                m[i] = mu * m[i] - lr * g[i];                                                                      \
                p[i] += m[i];                                                                                      \
            }                                                                                                      \
    }
SGD_UPDATE(float)
SGD_UPDATE(double)

static const lg_optim_rule sgd_rule = {sgd_float, sgd_double};

lg_status lg_optimizer_sgd(lg_graph *g, const lg_value *params, int n, const lg_sgd_opts *opts, lg_optimizer **out)
{
    const char *fn = "lg_optimizer_sgd";
    lg_sgd_opts o = opts ? *opts : lg_sgd_opts_default();
    if (out) *out = NULL;
    lg_status st = lg_optim_check(fn, "momentum", o.momentum, o.momentum >= 0 && o.momentum < 1, "[0, 1)");
    if (st) return st;
    lg_optim_spec spec = {fn, &sgd_rule, o.learning_rate, o.clip, {"momentum"}, o.momentum > 0};
    st = lg_optimizer_create(g, params, n, &spec, out);
    if (!st) (*out)->opts.sgd = o;
    return st;
}
