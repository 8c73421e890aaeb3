/*
 * cpu_optim.c — the optimizer updates, Keras's gradient clipping and the
 * gradient norm over host blocks (backend.h). Each update is one flat loop
 * over the n elements of every parameter at once; norms are summed in
 * double whatever the dtype.
 */
#include <math.h>

#include "backends/cpu/cpu.h"

/* p -= lr g; or m = mu m - lr g, then p += m (Nesterov: p += mu m - lr g). */
#define SGD_UPDATE(T)                                                                                              \
    static void sgd_##T(T *p, const T *g, T *m, int64_t n, double lr_, double mu_, bool nesterov)                  \
    {                                                                                                              \
        T lr = (T)lr_, mu = (T)mu_;                                                                                \
        if (mu_ == 0)                                                                                              \
            for (int64_t i = 0; i < n; i++) p[i] -= lr * g[i];                                                     \
        else if (nesterov)                                                                                         \
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

lg_status lg_cpu_sgd_update(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *momentum_slot,
                            double lr, double momentum, bool nesterov)
{
    (void)b;
    if (dt == LG_F32) sgd_float(p, g, momentum_slot, n, lr, momentum, nesterov);
    else sgd_double(p, g, momentum_slot, n, lr, momentum, nesterov);
    return LG_OK;
}

/* alpha = lr sqrt(1 - b2^t) / (1 - b1^t); m += (g - m)(1 - b1);
 * v += (g^2 - v)(1 - b2); p -= alpha m / (sqrt(v) + eps) (amsgrad: the
 * running maximum of v). */
#define ADAM_UPDATE(T, SQRT)                                                                                       \
    static void adam_##T(T *p, const T *g, T *const *s, int64_t n, double lr, double beta_1, double beta_2,        \
                         double epsilon, bool amsgrad, int64_t t)                                                  \
    {                                                                                                              \
        T alpha = (T)(lr * sqrt(1 - pow(beta_2, (double)t)) / (1 - pow(beta_1, (double)t)));                       \
        T c1 = (T)(1 - beta_1), c2 = (T)(1 - beta_2), eps = (T)epsilon;                                            \
        T *m = s[0], *v = s[1], *v_hat = s[2];                                                                     \
        for (int64_t i = 0; i < n; i++) {                                                                          \
            m[i] += (g[i] - m[i]) * c1;                                                                            \
            v[i] += (g[i] * g[i] - v[i]) * c2;                                                                     \
        }                                                                                                          \
        if (amsgrad)                                                                                               \
            for (int64_t i = 0; i < n; i++) {                                                                      \
                v_hat[i] = v_hat[i] > v[i] ? v_hat[i] : v[i];                                                      \
                p[i] -= m[i] * alpha / (SQRT(v_hat[i]) + eps);                                                     \
            }                                                                                                      \
        else                                                                                                       \
            for (int64_t i = 0; i < n; i++) p[i] -= m[i] * alpha / (SQRT(v[i]) + eps);                             \
    }
ADAM_UPDATE(float, sqrtf)
ADAM_UPDATE(double, sqrt)

lg_status lg_cpu_adam_update(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                             double lr, double beta_1, double beta_2, double epsilon, bool amsgrad, int64_t t)
{
    (void)b;
    if (dt == LG_F32) adam_float(p, g, (float *const *)slots, n, lr, beta_1, beta_2, epsilon, amsgrad, t);
    else adam_double(p, g, (double *const *)slots, n, lr, beta_1, beta_2, epsilon, amsgrad, t);
    return LG_OK;
}

/* v = rho v + (1 - rho) g^2; centered: a = rho a + (1 - rho) g, d = v - a^2 + eps,
 * else d = v + eps; inc = lr g / sqrt(d); momentum: m = mu m + inc, p -= m;
 * else p -= inc. */
#define RMSPROP_UPDATE(T, SQRT)                                                                                    \
    static void rmsprop_##T(T *p, const T *g, T *const *s, int64_t n, double lr_, double rho_, double mu_,          \
                            double epsilon, bool centered)                                                         \
    {                                                                                                              \
        T rho = (T)rho_, c = (T)(1 - rho_), lr = (T)lr_, eps = (T)epsilon, mu = (T)mu_;                            \
        T *v = s[0], *mom = mu_ > 0 ? s[1] : NULL, *avg = centered ? s[mu_ > 0 ? 2 : 1] : NULL;                    \
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

lg_status lg_cpu_rmsprop_update(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                                double lr, double rho, double momentum, double epsilon, bool centered)
{
    (void)b;
    if (dt == LG_F32) rmsprop_float(p, g, (float *const *)slots, n, lr, rho, momentum, epsilon, centered);
    else rmsprop_double(p, g, (double *const *)slots, n, lr, rho, momentum, epsilon, centered);
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

lg_status lg_cpu_clip_grads(const lg_backend *b, lg_dtype dt, void *g, const int64_t *offsets, int n_params,
                            double clipvalue, double clipnorm, double global_clipnorm)
{
    (void)b;
    int64_t total = offsets[n_params];
    if (clipvalue > 0) clamp(dt, g, total, clipvalue);
    if (clipnorm > 0)
        for (int i = 0; i < n_params; i++) {
            int64_t begin = offsets[i], end = offsets[i + 1];
            double norm = sqrt(sum_squares(dt, g, begin, end));
            if (norm > clipnorm) scale(dt, g, begin, end, clipnorm / norm);
        }
    if (global_clipnorm > 0) {
        double norm = sqrt(sum_squares(dt, g, 0, total));
        if (!isfinite(norm)) scale(dt, g, 0, total, NAN);
        else if (norm > global_clipnorm) scale(dt, g, 0, total, global_clipnorm / norm);
    }
    return LG_OK;
}

lg_status lg_cpu_grad_norm(const lg_backend *b, lg_dtype dt, const void *g, int64_t n, double *norm)
{
    (void)b;
    *norm = sqrt(sum_squares(dt, g, 0, n));
    return LG_OK;
}
