/*
 * cpu_rnn_f32.c — the fused RNN kernels (cpu_rnn_impl.h) for f32, their
 * activations on cpu_vmath's vector sigmoid and tanh.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_rnn_kernels.h"
#include "backends/cpu/cpu_vmath.h"

#define T float
#define FN(name) name##_f32
#define DT LG_F32
#define SIG_ROW(p, n) lg_vsigmoidf(p, p, n)
#define TANH_ROW(p, n) lg_vtanhf(p, p, n)
#include "backends/cpu/cpu_rnn_impl.h"
