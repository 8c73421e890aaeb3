/*
 * clip.c — Keras's gradient clipping over the contiguous gradient block:
 * by value (elementwise), by norm (each parameter's slice) or by global norm
 * (the whole block). Norms are summed in double whatever the dtype.
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

static double sum_squares(lg_dtype dt, const void *g, int64_t begin, int64_t end)
{
    double s = 0;
    if (dt == LG_F32)
        for (int64_t i = begin; i < end; i++) s += (double)((const float *)g)[i] * ((const float *)g)[i];
    else
        for (int64_t i = begin; i < end; i++) s += ((const double *)g)[i] * ((const double *)g)[i];
    return s;
}

static void scale(lg_dtype dt, void *g, int64_t begin, int64_t end, double by)
{
    if (dt == LG_F32)
        for (int64_t i = begin; i < end; i++) ((float *)g)[i] *= (float)by;
    else
        for (int64_t i = begin; i < end; i++) ((double *)g)[i] *= by;
}

static void clamp(lg_dtype dt, void *g, int64_t n, double c)
{
    if (dt == LG_F32) {
        float *x = g, cf = (float)c;
        for (int64_t i = 0; i < n; i++) x[i] = x[i] < -cf ? -cf : x[i] > cf ? cf : x[i];
    } else {
        double *x = g;
        for (int64_t i = 0; i < n; i++) x[i] = x[i] < -c ? -c : x[i] > c ? c : x[i];
    }
}

void lg_clip_apply(const lg_optimizer *o)
{
    const lg_clip_opts *c = &o->clip;
    int64_t total = o->offsets[o->n];
    if (c->clipvalue > 0) clamp(o->dtype, o->grad_block, total, c->clipvalue);
    if (c->clipnorm > 0)
        for (int i = 0; i < o->n; i++) {
            int64_t begin = o->offsets[i], end = o->offsets[i + 1];
            double norm = sqrt(sum_squares(o->dtype, o->grad_block, begin, end));
            if (norm > c->clipnorm) scale(o->dtype, o->grad_block, begin, end, c->clipnorm / norm);
        }
    if (c->global_clipnorm > 0) {
        double norm = sqrt(sum_squares(o->dtype, o->grad_block, 0, total));
        if (!isfinite(norm)) scale(o->dtype, o->grad_block, 0, total, NAN);
        else if (norm > c->global_clipnorm) scale(o->dtype, o->grad_block, 0, total, c->global_clipnorm / norm);
    }
}
