/*
 * cpu_rnn_f64.c — the fused RNN kernels (cpu_rnn_impl.h) for f64, their
 * activations on libm.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_rnn_kernels.h"

/* sigmoid without overflow: exp of a non-positive argument either way. */
static void sigmoid_row_f64(double *p, int64_t n)
{
    for (int64_t j = 0; j < n; j++) p[j] = p[j] >= 0 ? 1 / (1 + exp(-p[j])) : exp(p[j]) / (1 + exp(p[j]));
}

static void tanh_row_f64(double *p, int64_t n)
{
    for (int64_t j = 0; j < n; j++) p[j] = tanh(p[j]);
}

#define T double
#define FN(name) name##_f64
#define DT LG_F64
#define SIG_ROW(p, n) sigmoid_row_f64(p, n)
#define TANH_ROW(p, n) tanh_row_f64(p, n)
#include "backends/cpu/cpu_rnn_impl.h"
