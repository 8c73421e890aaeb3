/*
 * cpu_rnn_select.h — which CPU implementation runs a fused recurrent op pair
 * (src/ops/rnn.h), and what buffers it needs. Private to the library.
 *
 * Two implementations: the hand-fused kernels (cpu_rnn.c, every cell, f32
 * and f64, masks) and oneDNN's RNN primitives (cpu_rnn_onednn.c, where the
 * build has oneDNN: f32 without a mask). cpu_rnn_select.c holds the
 * measured table that picks one per problem; LG_RNN_IMPL=fused|onednn
 * overrides it for tests and benchmarks. The op's workspace output and
 * rnn_grad's scratch are sized for the implementation picked, so the choice
 * is made when the program is compiled (shape inference asks
 * lg_rnn_cpu_sizes) and made again, the same way, by the kernels.
 */
#ifndef LG_CPU_RNN_SELECT_H
#define LG_CPU_RNN_SELECT_H

#include "backends/backend.h"
#include "ops/rnn.h"

typedef enum lg_rnn_impl { LG_RNN_IMPL_FUSED, LG_RNN_IMPL_ONEDNN, LG_RNN_IMPL_COUNT } lg_rnn_impl;

/* One rnn node's problem: dims concrete (>= 0). */
typedef struct lg_rnn_problem {
    lg_rnn_cell cell;
    unsigned flags;
    lg_dtype dtype;
    int64_t T, B, I, H;
} lg_rnn_problem;

/* "fused" or "onednn". */
const char *lg_rnn_impl_name(lg_rnn_impl impl);

/* The implementation that serves p, the workspace's width (elements per
 * (t, b) row) and rnn_grad's scratch length (elements) it needs. Errors:
 * LG_ERR_INVALID_ARGUMENT for an LG_RNN_IMPL that is not fused or onednn,
 * LG_ERR_UNSUPPORTED for LG_RNN_IMPL=onednn in a build without oneDNN,
 * oneDNN's own failures (out of memory). */
lg_status lg_cpu_rnn_plan(const lg_rnn_problem *p, lg_rnn_impl *impl, int64_t *ws_width, int64_t *scratch);

/* The implementation for an rnn or rnn_grad node's kernel: in[] are its
 * inputs (x and U give the dims), ws its workspace buffer, which must have
 * the width the plan gives (LG_ERR_SHAPE naming the node otherwise: the
 * program was compiled under another choice). */
lg_status lg_cpu_rnn_impl_of(const lg_node *n, const lg_buf *in, const lg_buf *ws, lg_rnn_impl *impl);

/* Tests: every later plan uses impl (LG_RNN_IMPL_COUNT: the table and
 * LG_RNN_IMPL again). Set it before compiling, as LG_RNN_IMPL would be.
 * LG_ERR_UNSUPPORTED for onednn in a build without it. */
lg_status lg_cpu_rnn_impl_force(lg_rnn_impl impl);

/* The parts the fused kernels (cpu_rnn.c) split a problem of this cell,
 * dtype, batch B and H units into under gemm.c's thread budget (not a count
 * tests force on the pool, so that forcing one does not change which
 * implementation runs): 1 means the calling thread runs it alone. */
int lg_cpu_rnn_parts(lg_rnn_cell cell, lg_dtype dt, int64_t B, int64_t H);

#ifdef LG_HAVE_ONEDNN
/* cpu_rnn_onednn.c. Sizes as in lg_cpu_rnn_plan; LG_ERR_UNSUPPORTED where
 * oneDNN cannot take p (f64, a mask, or its primitives refuse). */
lg_status lg_rnn_onednn_sizes(const lg_rnn_problem *p, int64_t *ws_width, int64_t *scratch);
/* The kernels, with the buffers lg_cpu_rnn / lg_cpu_rnn_grad get. */
lg_status lg_rnn_onednn_forward(const lg_node *n, const lg_buf *in, lg_buf *out);
lg_status lg_rnn_onednn_backward(const lg_node *n, const lg_buf *in, lg_buf *out);
#endif

#endif
