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

static lg_status adam_update(const lg_optimizer *o, const lg_backend *b, void *p, const void *g, void *const *s,
                             int64_t n, double lr, int64_t t)
{
    const lg_adam_opts *a = &o->opts.adam;
    return b->adam_update(b, o->dtype, n, p, g, s, lr, a->beta_1, a->beta_2, a->epsilon, a->amsgrad, t);
}

static const lg_optim_rule adam_rule = {adam_update};

lg_status lg_optimizer_adam(lg_graph *g, const lg_value *params, int n, lg_adam_opts o, lg_optimizer **out)
{
    const char *fn = "lg_optimizer_adam";
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
