/*
 * clip.c — Keras's gradient clipping over the contiguous gradient block:
 * by value (elementwise), by norm (each parameter's slice) or by global norm
 * (the whole block), by the backend where the gradients live (its
 * clip_grads; the CPU's in src/backends/cpu/cpu_optim.c).
 */
#include <math.h>

#include "optim/optim_internal.h"

lg_status lg_clip_check(const char *fn, const lg_clip_opts *c)
{
    lg_status st = lg_optim_check(fn, "clip.clipvalue", c->clipvalue, c->clipvalue >= 0 && isfinite(c->clipvalue),
                                  "[0, inf)");
    if (!st)
        st = lg_optim_check(fn, "clip.clipnorm", c->clipnorm, c->clipnorm >= 0 && isfinite(c->clipnorm), "[0, inf)");
    if (!st)
        st = lg_optim_check(fn, "clip.global_clipnorm", c->global_clipnorm,
                            c->global_clipnorm >= 0 && isfinite(c->global_clipnorm), "[0, inf)");
    if (st) return st;
    if ((c->clipvalue > 0) + (c->clipnorm > 0) + (c->global_clipnorm > 0) > 1)
        return lg_fail(LG_ERR_INVALID_ARGUMENT,
                       "%s: opts.clip sets clipvalue = %g, clipnorm = %g, global_clipnorm = %g; set at most one", fn,
                       c->clipvalue, c->clipnorm, c->global_clipnorm);
    return LG_OK;
}

lg_status lg_clip_apply(const lg_optimizer *o, const lg_backend *b, void *g)
{
    const lg_clip_opts *c = &o->clip;
    if (!(c->clipvalue > 0 || c->clipnorm > 0 || c->global_clipnorm > 0)) return LG_OK;
    return b->clip_grads(b, o->dtype, g, o->offsets, o->n, c->clipvalue, c->clipnorm, c->global_clipnorm);
}
