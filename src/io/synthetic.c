/*
 * synthetic.c — seeded toy tasks. Every random draw is the Philox value at a
 * position fixed by (example, step), under a key per quantity, so example i
 * is the same whatever n is.
 */
#include <math.h>

#include "graph/init.h"
#include "graph/internal.h"
#include "graph/synthetic.h"

#define LG_TWO_PI 6.283185307179586476925

enum { KEY_SINE_PHASE, KEY_ADDING_VALUE, KEY_ADDING_MARKER, KEY_COPY_SYMBOL };

lg_sine_opts lg_sine_opts_default(void)
{
    return (lg_sine_opts){.n = 1000, .steps = 50, .dt = 0.1, .seed = 0, .dtype = LG_F32};
}

lg_adding_opts lg_adding_opts_default(void)
{
    return (lg_adding_opts){.n = 1000, .steps = 100, .seed = 0, .dtype = LG_F32};
}

lg_copy_opts lg_copy_opts_default(void)
{
    return (lg_copy_opts){.n = 1000, .length = 10, .blanks = 10, .symbols = 8, .seed = 0};
}

static lg_status check_outs(const char *fn, lg_tensor **x, lg_tensor **y)
{
    if (x) *x = NULL;
    if (y) *y = NULL;
    if (!x || !y) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: x or y is NULL", fn);
    return LG_OK;
}

static lg_status check_float(const char *fn, lg_dtype dt)
{
    if (dt != LG_F32 && dt != LG_F64) return lg_fail(LG_ERR_DTYPE, "%s: dtype %d: needs LG_F32 or LG_F64", fn, (int)dt);
    return LG_OK;
}

static lg_status at_least(const char *fn, const char *field, int64_t v, int64_t lo)
{
    if (v < lo)
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: %s %lld: must be >= %lld", fn, field, (long long)v, (long long)lo);
    return LG_OK;
}

/* New tensors x and y, or both NULL and the error. */
static lg_status make_pair(lg_dtype dt, lg_shape xs, lg_shape ys, lg_tensor **x, lg_tensor **y)
{
    lg_status st = lg_tensor_new(dt, xs, x);
    if (!st) st = lg_tensor_new(dt, ys, y);
    if (st) {
        lg_tensor_free(*x);
        *x = NULL;
    }
    return st;
}

lg_status lg_synth_sine(lg_sine_opts o, lg_tensor **x, lg_tensor **y)
{
    const char *fn = "lg_synth_sine";
    lg_status st = check_outs(fn, x, y);
    if (!st) st = at_least(fn, "n", o.n, 1);
    if (!st) st = at_least(fn, "steps", o.steps, 1);
    if (!st && !(isfinite(o.dt) && o.dt != 0))
        st = lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: dt %g: must be finite and nonzero", fn, o.dt);
    if (!st) st = check_float(fn, o.dtype);
    lg_shape s = {.rank = 3, .dims = {o.n, o.steps, 1}};
    if (!st) st = make_pair(o.dtype, s, s, x, y);
    if (st) return st;
    for (int64_t i = 0; i < o.n; i++) {
        double phi = LG_TWO_PI * lg_philox_uniform(o.seed, KEY_SINE_PHASE, (uint64_t)i);
        for (int64_t t = 0; t < o.steps; t++) {
            double a = phi + (double)t * o.dt;
            lg_tensor_set(*x, i * o.steps + t, sin(a));
            lg_tensor_set(*y, i * o.steps + t, cos(a));
        }
    }
    return LG_OK;
}

lg_status lg_synth_adding(lg_adding_opts o, lg_tensor **x, lg_tensor **y)
{
    const char *fn = "lg_synth_adding";
    lg_status st = check_outs(fn, x, y);
    if (!st) st = at_least(fn, "n", o.n, 1);
    if (!st) st = at_least(fn, "steps", o.steps, 2);
    if (!st) st = check_float(fn, o.dtype);
    if (!st)
        st = make_pair(o.dtype, (lg_shape){.rank = 3, .dims = {o.n, o.steps, 2}},
                       (lg_shape){.rank = 2, .dims = {o.n, 1}}, x, y);
    if (st) return st;
    int64_t half = o.steps / 2;
    for (int64_t i = 0; i < o.n; i++) {
        int64_t m0 = (int64_t)(lg_philox_uniform(o.seed, KEY_ADDING_MARKER, 2 * (uint64_t)i) * (double)half);
        int64_t m1 = half + (int64_t)(lg_philox_uniform(o.seed, KEY_ADDING_MARKER, 2 * (uint64_t)i + 1) *
                                      (double)(o.steps - half));
        double sum = 0;
        for (int64_t t = 0; t < o.steps; t++) {
            int64_t k = i * o.steps + t;
            double v = lg_philox_uniform(o.seed, KEY_ADDING_VALUE, (uint64_t)k);
            lg_tensor_set(*x, 2 * k, v);
            lg_tensor_set(*x, 2 * k + 1, t == m0 || t == m1);
            if (t == m0 || t == m1) sum += lg_tensor_get(*x, 2 * k); /* the value as stored */
        }
        lg_tensor_set(*y, i, sum);
    }
    return LG_OK;
}

lg_status lg_synth_copy(lg_copy_opts o, lg_tensor **x, lg_tensor **y)
{
    const char *fn = "lg_synth_copy";
    lg_status st = check_outs(fn, x, y);
    if (!st) st = at_least(fn, "n", o.n, 1);
    if (!st) st = at_least(fn, "length", o.length, 1);
    if (!st) st = at_least(fn, "blanks", o.blanks, 0);
    if (!st && (o.symbols < 1 || o.symbols == INT32_MAX))
        st = lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: symbols %d: must lie in [1, %d) (the delimiter is symbols + 1)", fn,
                     (int)o.symbols, INT32_MAX);
    if (!st && (o.length > (INT64_MAX - 1) / 2 || o.blanks > INT64_MAX - 1 - 2 * o.length))
        st = lg_fail(LG_ERR_SHAPE, "%s: length %lld and blanks %lld: too many steps", fn, (long long)o.length,
                     (long long)o.blanks);
    int64_t steps = st ? 0 : 2 * o.length + o.blanks + 1;
    lg_shape s = {.rank = 2, .dims = {o.n, steps}};
    if (!st) st = make_pair(LG_I32, s, s, x, y);
    if (st) return st;
    int32_t *px = lg_tensor_data(*x), *py = lg_tensor_data(*y);
    int64_t answer = o.length + o.blanks + 1; /* where the target's symbols start */
    for (int64_t i = 0; i < o.n; i++) {
        int32_t *rx = px + i * steps, *ry = py + i * steps;
        for (int64_t j = 0; j < o.length; j++) {
            double u = lg_philox_uniform(o.seed, KEY_COPY_SYMBOL, (uint64_t)(i * o.length + j));
            rx[j] = ry[answer + j] = 1 + (int32_t)(u * o.symbols);
        }
        rx[o.length + o.blanks] = o.symbols + 1;
    }
    return LG_OK;
}
