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

static lg_status rmsprop_update(const lg_optimizer *o, const lg_backend *b, void *p, const void *g, void *const *s,
                                int64_t n, double lr, int64_t t)
{
    (void)t;
    const lg_rmsprop_opts *r = &o->opts.rmsprop;
    return b->rmsprop_update(b, o->dtype, n, p, g, s, lr, r->rho, r->momentum, r->epsilon, r->centered);
}

static const lg_optim_rule rmsprop_rule = {rmsprop_update};

lg_status lg_optimizer_rmsprop(lg_graph *g, const lg_value *params, int n, lg_rmsprop_opts o,
                               lg_optimizer **out)
{
    const char *fn = "lg_optimizer_rmsprop";
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
