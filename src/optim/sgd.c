/*
 * sgd.c — Keras SGD: plain, with momentum, or Nesterov momentum. Slot 0 is
 * the momentum (velocity), present only when momentum > 0.
 */
#include "optim/optim_internal.h"

lg_sgd_opts lg_sgd_opts_default(void) { return (lg_sgd_opts){.learning_rate = 0.01, .momentum = 0, .nesterov = false}; }

static lg_status sgd_update(const lg_optimizer *o, const lg_backend *b, void *p, const void *g, void *const *s,
                            int64_t n, double lr, int64_t t)
{
    (void)t;
    return b->sgd_update(b, o->dtype, n, p, g, s[0], lr, o->opts.sgd.momentum, o->opts.sgd.nesterov);
}

static const lg_optim_rule sgd_rule = {sgd_update};

lg_status lg_optimizer_sgd(lg_graph *g, const lg_value *params, int n, lg_sgd_opts o, lg_optimizer **out)
{
    const char *fn = "lg_optimizer_sgd";
    if (out) *out = NULL;
    lg_status st = lg_optim_check(fn, "momentum", o.momentum, o.momentum >= 0 && o.momentum < 1, "[0, 1)");
    if (st) return st;
    lg_optim_spec spec = {fn, &sgd_rule, o.learning_rate, o.clip, {"momentum"}, o.momentum > 0};
    st = lg_optimizer_create(g, params, n, &spec, out);
    if (!st) (*out)->opts.sgd = o;
    return st;
}
