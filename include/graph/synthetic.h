/*
 * synthetic.h — seeded toy tasks for recurrent networks: sine-to-cosine
 * regression, the adding problem and the copy task.
 *
 * Each generator makes n examples as an (x, y) pair of new tensors, ready
 * for lg_dataset_new (dataset.h). Random draws come from the Philox streams
 * of init.h under the options' seed, so the same options give the same
 * tensors on every machine and run, and example i does not depend on n.
 *
 *     lg_adding_opts o = lg_adding_opts_default();   // 1000 examples of 100 steps
 *     o.seed = 7;
 *     lg_tensor *x = NULL, *y = NULL;
 *     lg_synth_adding(o, &x, &y);                    // x [1000, 100, 2], y [1000, 1]
 *
 * Ownership: *x and *y are new and belong to the caller; both are NULL on
 * failure. Errors: LG_ERR_INVALID_ARGUMENT (an out NULL, an option out of
 * its range, named with its value), LG_ERR_DTYPE (a float task asked for
 * i32 or a dtype out of range), LG_ERR_SHAPE (more elements than a tensor
 * holds), LG_ERR_OUT_OF_MEMORY.
 */
#ifndef LG_SYNTHETIC_H
#define LG_SYNTHETIC_H

#include <stdint.h>

#include "api.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

/* ---- sine to cosine ------------------------------------------------------------ */

typedef struct lg_sine_opts {
    int64_t n;     /* examples (> 0) */
    int64_t steps; /* time steps (> 0) */
    double dt;     /* phase advance a step, radians (finite, != 0) */
    uint64_t seed;
    lg_dtype dtype; /* LG_F32 or LG_F64 */
} lg_sine_opts;

/* n 1000, steps 50, dt 0.1, seed 0, f32. */
lg_sine_opts lg_sine_opts_default(void);

/* A sequence-to-sequence regression: x [n, steps, 1] with
 * x[i, t] = sin(phi_i + t * dt) and y [n, steps, 1] with
 * y[i, t] = cos(phi_i + t * dt), the phase phi_i uniform in [0, 2 pi). The
 * target at t is the input's derivative, which a network can only tell
 * from the input's history (sin alone does not fix cos's sign). */
lg_status lg_synth_sine(lg_sine_opts o, lg_tensor **x, lg_tensor **y);

/* ---- the adding problem ---------------------------------------------------------- */

typedef struct lg_adding_opts {
    int64_t n;     /* examples (> 0) */
    int64_t steps; /* time steps (>= 2) */
    uint64_t seed;
    lg_dtype dtype; /* LG_F32 or LG_F64 */
} lg_adding_opts;

/* n 1000, steps 100, seed 0, f32. */
lg_adding_opts lg_adding_opts_default(void);

/* Hochreiter and Schmidhuber's adding problem, in the form of Le et al.
 * (2015) and Arjovsky et al. (2016): x [n, steps, 2] where channel 0 holds
 * values uniform in [0, 1) and channel 1 is a marker that is 1 at exactly
 * two steps, one uniform in [0, steps/2) and one in [steps/2, steps), and 0
 * elsewhere; y [n, 1] is the sum of the two marked values. Predicting 1
 * (the mean) gives a mean squared error of 1/6, the baseline to beat. */
lg_status lg_synth_adding(lg_adding_opts o, lg_tensor **x, lg_tensor **y);

/* ---- the copy task ---------------------------------------------------------------- */

typedef struct lg_copy_opts {
    int64_t n;       /* examples (> 0) */
    int64_t length;  /* symbols to copy (> 0) */
    int64_t blanks;  /* steps between the symbols and the delimiter (>= 0) */
    int32_t symbols; /* alphabet size: symbols are 1..symbols (>= 1, < INT32_MAX) */
    uint64_t seed;
} lg_copy_opts;

/* n 1000, length 10, blanks 10, symbols 8, seed 0. */
lg_copy_opts lg_copy_opts_default(void);

/* The copy task (Graves et al. 2014; Arjovsky et al. 2016) as token ids,
 * x and y i32 [n, S] with S = 2 * length + blanks + 1. Token 0 is blank,
 * 1..symbols are symbols, symbols + 1 is the delimiter. Input row i:
 * `length` random symbols, `blanks` blanks, the delimiter, then `length`
 * blanks; target row i: blank for the first length + blanks + 1 steps, then
 * the same symbols in order. E.g. length 3, blanks 2, symbols 8:
 *
 *     x: 4 7 1 0 0 9 0 0 0
 *     y: 0 0 0 0 0 0 4 7 1
 *
 * Train with an embedding (or one-hot) of x and a sparse categorical
 * cross-entropy over symbols + 2 classes at every step. */
lg_status lg_synth_copy(lg_copy_opts o, lg_tensor **x, lg_tensor **y);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
