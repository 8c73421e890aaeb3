/*
 * init.h — reproducible parameter initialisation.
 *
 * Random numbers come from Philox-4x32-10, a counter-based generator: the
 * value at position i of stream (seed, key) is a pure function of its inputs,
 * so a run is reproducible from its seed whatever order parameters are
 * initialised in. Each initializer takes the seed and a key (use a different
 * key per parameter, e.g. its index).
 *
 *     lg_init_glorot_uniform(lg_param_tensor(w), 42, 0);
 *
 * Errors: LG_ERR_INVALID_ARGUMENT (NULL), LG_ERR_DTYPE (not float),
 * LG_ERR_SHAPE (glorot needs rank >= 1).
 */
#ifndef LG_INIT_H
#define LG_INIT_H

#include <stdint.h>

#include "api.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* Uniform in [lo, hi). LG_ERR_INVALID_ARGUMENT unless lo <= hi, both
 * finite (t unchanged). */
lg_status lg_init_uniform(lg_tensor *t, double lo, double hi, uint64_t seed, uint64_t key);
/* Normal(mean, stddev), Box-Muller over the same stream.
 * LG_ERR_INVALID_ARGUMENT unless mean is finite and stddev finite and >= 0. */
lg_status lg_init_normal(lg_tensor *t, double mean, double stddev, uint64_t seed, uint64_t key);
/* Keras glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)), with
 * Keras's fans: a kernel [.., fan_in, fan_out] times the product of the
 * leading dims (rank 1: fan_in = fan_out = dims[0]). */
lg_status lg_init_glorot_uniform(lg_tensor *t, uint64_t seed, uint64_t key);

/* The initializers a cell's options name (cells.h), Keras's names. */
typedef enum lg_initializer {
    LG_INIT_GLOROT_UNIFORM,
    LG_INIT_ORTHOGONAL,
    LG_INIT_ZEROS,
    LG_INIT_ONES,
    LG_INIT_COUNT
} lg_initializer;

/* Fill t (f32 or f64) with the initializer's values from stream (seed, key).
 * Orthogonal is Keras's (gain 1): on the [rows, cols] view of t (cols = its
 * last dim), the Q of the QR of a normal [max, min] matrix (lg_init_normal),
 * with R's diagonal made positive, transposed when rows < cols; rank >= 2.
 * Below 512 columns of that matrix (an LSTM or GRU of fewer than 512 units)
 * the Q comes from Gram-Schmidt, from LAPACK's Householder QR above, run
 * on one thread (the same Q to rounding, in a fraction of the time: an
 * LSTM(2048)'s in 4 s, not minutes; the same bits at any thread count,
 * other bits on another OpenBLAS core).
 * Errors: LG_ERR_INVALID_ARGUMENT (NULL, not an lg_initializer),
 * LG_ERR_DTYPE (i32), LG_ERR_SHAPE (orthogonal on rank < 2, or past
 * LAPACK's int), LG_ERR_OUT_OF_MEMORY, LG_ERR_RUNTIME (orthogonal: a
 * rank-deficient draw, probability zero, or LAPACK failing). */
lg_status lg_init_apply(lg_tensor *t, lg_initializer init, uint64_t seed, uint64_t key);

/* The block function: Philox-4x32-10 of the counter ctr under key, as
 * Random123's philox4x32 (R = 10) computes it, so its published known-answer
 * vectors check it (tests/test_init.c). The streams below are built on it:
 * position i of (seed, key) is the block of ctr = {i lo, i hi, key lo,
 * key hi} under key = {seed lo, seed hi}. */
void lg_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* The raw stream: 32 random bits (the block's word 0) for counter position i. */
uint32_t lg_philox_u32(uint64_t seed, uint64_t key, uint64_t i);
/* A double uniform in [0, 1) with 53 random bits for position i. */
double lg_philox_uniform(uint64_t seed, uint64_t key, uint64_t i);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
