/*
 * cuda_optim.c — the optimizer updates and gradient clipping on device
 * blocks (kernels_optim.cu), with src/optim's formulas. Per-step scalars
 * (Adam's alpha) are computed here in double, as on the CPU; norms are
 * summed in double on the device and never come back to the host.
 */
#include <math.h>

#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"

static lg_status launched(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return LG_OK;
    return lg_fail(LG_ERR_RUNTIME, "CUDA kernel for %s could not be launched: %s: %s", what, cudaGetErrorName(e),
                   cudaGetErrorString(e));
}

lg_status lg_cuda_sgd_update(lg_cuda_ctx *c, lg_dtype dt, int64_t n, void *p, const void *g, void *momentum_slot,
                             double lr, double momentum, bool nesterov)
{
    return launched(lg_cuda_launch_sgd(c->stream, dt, n, p, g, momentum_slot, lr, momentum, nesterov), "the SGD update");
}

lg_status lg_cuda_adam_update(lg_cuda_ctx *c, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                              double lr, double beta_1, double beta_2, double epsilon, bool amsgrad, int64_t t)
{
    double alpha = lr * sqrt(1 - pow(beta_2, (double)t)) / (1 - pow(beta_1, (double)t));
    return launched(lg_cuda_launch_adam(c->stream, dt, n, p, g, slots[0], slots[1], amsgrad ? slots[2] : NULL, alpha,
                                        1 - beta_1, 1 - beta_2, epsilon),
                    "the Adam update");
}

lg_status lg_cuda_rmsprop_update(lg_cuda_ctx *c, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                                 double lr, double rho, double momentum, double epsilon, bool centered)
{
    void *mom = momentum > 0 ? slots[1] : NULL, *avg = centered ? slots[momentum > 0 ? 2 : 1] : NULL;
    return launched(lg_cuda_launch_rmsprop(c->stream, dt, n, p, g, slots[0], mom, avg, lr, rho, momentum, epsilon),
                    "the RMSprop update");
}

/* c->scratch = sum of squares of g[begin, end). */
static lg_status sum_squares(lg_cuda_ctx *c, lg_dtype dt, const void *g, int64_t begin, int64_t end)
{
    lg_status st = lg_cuda_memset0(c, c->scratch, sizeof(double));
    if (st) return st;
    const char *base = g;
    return launched(lg_cuda_launch_sum_squares(c->stream, dt, end - begin, base + begin * (int64_t)lg_dtype_size(dt),
                                               c->scratch),
                    "the gradient norm");
}

lg_status lg_cuda_clip_grads(lg_cuda_ctx *c, lg_dtype dt, void *g, const int64_t *offsets, int n_params,
                             double clipvalue, double clipnorm, double global_clipnorm)
{
    int64_t total = offsets[n_params];
    char *base = g;
    size_t es = lg_dtype_size(dt);
    lg_status st = LG_OK;
    if (clipvalue > 0) st = launched(lg_cuda_launch_clip_value(c->stream, dt, total, g, clipvalue), "clipvalue");
    if (clipnorm > 0)
        for (int i = 0; i < n_params && !st; i++) {
            int64_t begin = offsets[i], end = offsets[i + 1];
            st = sum_squares(c, dt, g, begin, end);
            if (!st)
                st = launched(lg_cuda_launch_clip_norm(c->stream, dt, end - begin, base + begin * (int64_t)es,
                                                       c->scratch, clipnorm, 0),
                              "clipnorm");
        }
    if (global_clipnorm > 0 && !st) {
        st = sum_squares(c, dt, g, 0, total);
        if (!st)
            st = launched(lg_cuda_launch_clip_norm(c->stream, dt, total, g, c->scratch, global_clipnorm, 1),
                          "global_clipnorm");
    }
    return st;
}

lg_status lg_cuda_global_norm(lg_cuda_ctx *c, lg_dtype dt, const void *g, int64_t n, double *norm)
{
    double sum = 0;
    lg_status st = sum_squares(c, dt, g, 0, n);
    if (!st) st = lg_cuda_copy_d2h(c, &sum, c->scratch, sizeof sum);
    *norm = sqrt(sum);
    return st;
}

lg_status lg_cuda_scale(lg_cuda_ctx *c, lg_dtype dt, void *x, int64_t n, double w)
{
    return launched(lg_cuda_launch_scale(c->stream, dt, n, x, w), "scaling a gradient share");
}
