/*
 * init.c — Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy
 * as 1, 2, 3", SC'11) and the initializers built on it.
 *
 * Position i of stream (seed, key) is the first words of Philox applied to
 * the counter (i, key) under the key seed: a pure function, so values do not
 * depend on the order parameters are initialised in.
 */
#include <math.h>

#include "graph/init.h"
#include "graph/internal.h"

#define LG_TWO_PI 6.283185307179586476925

void lg_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k[0], n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k[1];
        c[0] = n0;
        c[1] = (uint32_t)p1;
        c[2] = n2;
        c[3] = (uint32_t)p0;
        k[0] += 0x9E3779B9u;
        k[1] += 0xBB67AE85u;
    }
    for (int j = 0; j < 4; j++) out[j] = c[j];
}

static void philox(uint64_t seed, uint64_t key, uint64_t i, uint32_t out[4])
{
    const uint32_t c[4] = {(uint32_t)i, (uint32_t)(i >> 32), (uint32_t)key, (uint32_t)(key >> 32)};
    const uint32_t k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    lg_philox4x32_10(c, k, out);
}

uint32_t lg_philox_u32(uint64_t seed, uint64_t key, uint64_t i)
{
    uint32_t w[4];
    philox(seed, key, i, w);
    return w[0];
}

double lg_philox_uniform(uint64_t seed, uint64_t key, uint64_t i)
{
    uint32_t w[4];
    philox(seed, key, i, w);
    uint64_t bits = ((uint64_t)w[0] << 21) ^ (w[1] >> 11); /* 53 bits */
    return (double)(bits & ((1ull << 53) - 1)) * 0x1.0p-53;
}

static lg_status check_float(const lg_tensor *t, const char *what)
{
    if (!t) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s: tensor is NULL", what);
    if (lg_tensor_dtype(t) != LG_F32 && lg_tensor_dtype(t) != LG_F64)
        return lg_fail(LG_ERR_DTYPE, "%s: tensor is %s, needs f32 or f64", what, lg_dtype_name(lg_tensor_dtype(t)));
    return LG_OK;
}

lg_status lg_init_uniform(lg_tensor *t, double lo, double hi, uint64_t seed, uint64_t key)
{
    lg_status st = check_float(t, "lg_init_uniform");
    if (st) return st;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_init_uniform: range [%g, %g]: needs finite lo <= hi", lo, hi);
    for (int64_t i = 0; i < lg_tensor_numel(t); i++) lg_tensor_set(t, i, lo + (hi - lo) * lg_philox_uniform(seed, key, i));
    return LG_OK;
}

lg_status lg_init_normal(lg_tensor *t, double mean, double stddev, uint64_t seed, uint64_t key)
{
    lg_status st = check_float(t, "lg_init_normal");
    if (st) return st;
    if (!isfinite(mean) || !(stddev >= 0) || !isfinite(stddev))
        return lg_fail(LG_ERR_INVALID_ARGUMENT, "lg_init_normal: mean %g, stddev %g: needs a finite mean and stddev >= 0",
                       mean, stddev);
    for (int64_t i = 0; i < lg_tensor_numel(t); i++) {
        uint32_t w[4];
        philox(seed, key, (uint64_t)i, w);
        double u1 = ((double)w[0] + 1.0) * 0x1.0p-32, u2 = (double)w[1] * 0x1.0p-32; /* u1 in (0, 1] */
        lg_tensor_set(t, i, mean + stddev * sqrt(-2.0 * log(u1)) * cos(LG_TWO_PI * u2));
    }
    return LG_OK;
}

lg_status lg_init_glorot_uniform(lg_tensor *t, uint64_t seed, uint64_t key)
{
    lg_status st = check_float(t, "lg_init_glorot_uniform");
    if (st) return st;
    lg_shape s = lg_tensor_shape(t);
    if (s.rank < 1) return lg_fail(LG_ERR_SHAPE, "lg_init_glorot_uniform: needs rank >= 1, got %s", lg_shape_cstr(s));
    double receptive = 1;
    for (int i = 0; i < s.rank - 2; i++) receptive *= (double)s.dims[i];
    double fan_in = s.rank == 1 ? (double)s.dims[0] : (double)s.dims[s.rank - 2] * receptive;
    double fan_out = (double)s.dims[s.rank - 1] * (s.rank == 1 ? 1 : receptive);
    double limit = sqrt(6.0 / (fan_in + fan_out));
    return lg_init_uniform(t, -limit, limit, seed, key);
}
