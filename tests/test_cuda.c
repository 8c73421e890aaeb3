/*
 * test_cuda.c — the GPU suite: every CUDA kernel against the CPU kernel of
 * its op on random data, the optimizer updates and clipping against
 * src/optim, device errors (out of memory, bad indices), and cuDNN LSTM,
 * GRU and SimpleRNN stacks (values and every gradient) against loopgrad's
 * own CPU loop over the same Keras weights; a training program compiled
 * for "cuda:0" (the backend seam) against the same program on the CPU; and
 * every gradcheck row (gradcheck_rows.h), its loss and every gradient
 * element, compiled for "cuda:0" against the CPU.
 *
 * Without a GPU it prints why and exits 77, which meson reports as SKIP;
 * with --host it runs what needs no GPU: CUDA errors as statuses, the
 * refusal a machine without a GPU gets, and cuBLAS opened on demand.
 * Tests run in one process (no fork): a CUDA context does not survive
 * fork().
 * Built with -DLG_CUDA_EMU (tests/cuda_emu: the kernels compiled as host
 * code, a fake CUDA runtime and cuBLAS, a host model of cuDNN's RNN API)
 * everything runs; with LG_CUDA_EMU_CUDNN=refuse there (meson test
 * cuda_emu_no_cudnn) the fake cuDNN refuses to start, the four cuDNN tests
 * are not registered, main says so, and programs' loops run step by step.
 *
 * Tolerances, |cuda - cpu| <= tol * max(1, |cpu|):
 *   f64 kernels and optimizers,
 *   gradcheck rows (f64)         1e-10
 *   f32 elementwise              1e-5  (CUDA's and glibc's float math differ by ulps)
 *   f32 matmul, reductions,
 *   softmax, cross-entropy       1e-4  (sums in another order, FMA contraction)
 *   shape, index, compare, cast,
 *   i32                          exact
 *   cuDNN RNN f32 (FP32 math)    2e-4; f64 1e-9 (different summation order over T
 *                                steps and B examples), the wrapper and programs alike
 */
#include <dlfcn.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "backends/cpu/cpu.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/cudnn_rnn.h"
#include "dist_model.h"
#include "gradcheck_rows.h"
#include "graph/internal.h"
#include "hand_lstm.h"
#include "ops/fused_elementwise.h"
#include "ops/rnn.h"
#include "test_util.h"

static lg_cuda_ctx *ctx;
/* Set by the tests that open the backend "cuda:0" (programs, rnn_plan),
 * whose context lives until the process ends (registry.c). */
static bool backend_opened;

/* tests/cuda_emu builds this file with -DLG_CUDA_EMU; its fake cuDNN
 * refuses to start under LG_CUDA_EMU_CUDNN=refuse: then the cuDNN tests are
 * not registered and programs' loops are not fused. */
#ifdef LG_CUDA_EMU
static const bool cuda_emulated = true;
#else
static const bool cuda_emulated = false;
#endif
static bool cudnn_refused;

static void ctx_setup(void)
{
    lg_status st = lg_cuda_ctx_new(0, &ctx);
    ck_assert_msg(st == LG_OK, "%s", lg_last_error());
}

static void ctx_teardown(void)
{
    lg_cuda_ctx_free(ctx);
    ctx = NULL;
    /* A kernel that faulted (an illegal address) leaves the process's CUDA
     * context unusable, and every later test would fail in ctx_setup: reset
     * it, so that one bad kernel fails its own row only. Not once the
     * backend is open: its context would dangle. */
    if (!backend_opened && cudaDeviceSynchronize() != cudaSuccess) cudaDeviceReset();
}

/* ---- buffers --------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(double lo, double hi)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

static void fill(lg_dtype dt, void *p, int64_t n, double lo, double hi, bool ints)
{
    for (int64_t i = 0; i < n; i++) {
        double v = uniform(lo, hi);
        if (ints || dt == LG_I32) v = floor(v);
        if (dt == LG_F32) ((float *)p)[i] = (float)v;
        else if (dt == LG_F64) ((double *)p)[i] = v;
        else ((int32_t *)p)[i] = (int32_t)v;
    }
}

static double value_at(lg_dtype dt, const void *p, int64_t i)
{
    return dt == LG_F32 ? ((const float *)p)[i] : dt == LG_F64 ? ((const double *)p)[i] : ((const int32_t *)p)[i];
}

static void *dev_copy(const void *host, size_t bytes)
{
    void *d = NULL;
    ck_assert_int_eq(lg_cuda_alloc(ctx, bytes ? bytes : 1, &d), LG_OK);
    ck_assert_int_eq(lg_cuda_copy_h2d(ctx, d, host, bytes), LG_OK);
    return d;
}

static void *host_from(const void *dev, size_t bytes)
{
    void *h = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(h);
    lg_status st = lg_cuda_copy_d2h(ctx, h, dev, bytes);
    ck_assert_msg(st == LG_OK, "%s", lg_last_error());
    return h;
}

/* Compare n values with the tolerance rule above; tol 0 is exact. */
static void expect_close(const char *what, lg_dtype dt, const void *cuda, const void *cpu, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++) {
        double a = value_at(dt, cuda, i), b = value_at(dt, cpu, i);
        if (isnan(b)) {
            ck_assert_msg(isnan(a), "%s [%lld]: cuda %.17g, cpu NaN", what, (long long)i, a);
            continue;
        }
        if (isinf(b)) {
            ck_assert_msg(a == b, "%s [%lld]: cuda %.17g, cpu %.17g", what, (long long)i, a, b);
            continue;
        }
        double bound = tol * fmax(1, fabs(b));
        ck_assert_msg(fabs(a - b) <= bound, "%s [%lld]: cuda %.17g, cpu %.17g (|diff| %.3g > %.3g)", what,
                      (long long)i, a, b, fabs(a - b), bound);
    }
}

/* ---- every op: CUDA kernel against the CPU kernel -------------------------- */

#define F32 (1u << LG_F32)
#define F64 (1u << LG_F64)
#define I32 (1u << LG_I32)

typedef struct in_range {
    double lo, hi;
    bool ints; /* whole numbers, so that comparisons meet equal values */
} in_range;

typedef struct op_row {
    const char *name;
    lg_op op;
    unsigned dtypes;
    /* Build the node in g from inputs of dtype dt; the row's node is the
     * last one of op. */
    void (*build)(lg_graph *g, lg_dtype dt);
    in_range in[3]; /* ranges of the node's inputs; unset ({0, 0}) is [-2, 2) */
    double tol32;   /* f32 tolerance; 0: exact in every dtype */
} op_row;

static lg_value in(lg_graph *g, lg_dtype dt, int rank, int64_t d0, int64_t d1, int64_t d2)
{
    lg_shape s = {.rank = rank, .dims = {d0, d1, d2}};
    return lg_input(g, "x", dt, s);
}

static void b_matmul(lg_graph *g, lg_dtype dt) { lg_matmul(in(g, dt, 2, 7, 5, 0), in(g, dt, 2, 5, 9, 0), false, false); }
static void b_matmul_fold(lg_graph *g, lg_dtype dt) { lg_matmul(in(g, dt, 3, 3, 7, 5), in(g, dt, 2, 5, 9, 0), false, false); }
static void b_matmul_tt(lg_graph *g, lg_dtype dt) { lg_matmul(in(g, dt, 3, 3, 5, 7), in(g, dt, 3, 3, 9, 5), true, true); }
static void b_matmul_tb(lg_graph *g, lg_dtype dt) { lg_matmul(in(g, dt, 3, 2, 4, 3), in(g, dt, 2, 6, 3, 0), false, true); }
static void b_add(lg_graph *g, lg_dtype dt) { lg_add(in(g, dt, 3, 4, 1, 5), in(g, dt, 2, 3, 1, 0)); }
static void b_sub(lg_graph *g, lg_dtype dt) { lg_sub(in(g, dt, 3, 2, 3, 4), in(g, dt, 1, 4, 0, 0)); }
static void b_mul(lg_graph *g, lg_dtype dt) { lg_mul(in(g, dt, 2, 3, 4, 0), in(g, dt, 2, 3, 4, 0)); }
static void b_div(lg_graph *g, lg_dtype dt) { lg_div(in(g, dt, 2, 3, 4, 0), in(g, dt, 2, 1, 4, 0)); }
#define CMP(name, C) \
    static void b_##name(lg_graph *g, lg_dtype dt) { lg_compare(in(g, dt, 2, 3, 4, 0), in(g, dt, 1, 4, 0, 0), C); }
CMP(gt, LG_CMP_GT)
CMP(ge, LG_CMP_GE)
CMP(lt, LG_CMP_LT)
CMP(le, LG_CMP_LE)
CMP(eq, LG_CMP_EQ)
CMP(ne, LG_CMP_NE)
#undef CMP
static void b_where(lg_graph *g, lg_dtype dt) { lg_where(in(g, LG_I32, 2, 3, 1, 0), in(g, dt, 2, 3, 4, 0), in(g, dt, 1, 4, 0, 0)); }
static void b_where_fmask(lg_graph *g, lg_dtype dt) { lg_where(in(g, dt, 2, 3, 4, 0), in(g, dt, 2, 3, 4, 0), in(g, dt, 2, 3, 4, 0)); }
#define UNARY(name, EXPR) \
    static void b_##name(lg_graph *g, lg_dtype dt) { lg_value x = in(g, dt, 2, 5, 7, 0); (void)(EXPR); }
UNARY(neg, lg_neg(x))
UNARY(exp, lg_exp(x))
UNARY(log, lg_log(x))
UNARY(sqrt, lg_sqrt(x))
UNARY(square, lg_square(x))
UNARY(pow, lg_pow(x, 2.5))
UNARY(abs, lg_abs(x))
UNARY(sigmoid, lg_sigmoid(x))
UNARY(hard_sigmoid, lg_hard_sigmoid(x))
UNARY(tanh, lg_tanh(x))
UNARY(relu, lg_relu(x))
UNARY(elu, lg_elu(x, 0.7))
UNARY(softplus, lg_softplus(x))
UNARY(softsign, lg_softsign(x))
UNARY(clip, lg_clip(x, -1, 0.5))
UNARY(stop_gradient, lg_stop_gradient(x))
UNARY(cast_i32, lg_cast(x, LG_I32))
UNARY(cast_f32, lg_cast(x, LG_F32))
UNARY(cast_f64, lg_cast(x, LG_F64))
#undef UNARY
static void b_sum(lg_graph *g, lg_dtype dt) { lg_sum(in(g, dt, 3, 3, 4, 5), (int[]){0, 2}, 2, true); }
static void b_sum_all(lg_graph *g, lg_dtype dt) { lg_sum(in(g, dt, 2, 60, 70, 0), NULL, 0, false); }
static void b_max(lg_graph *g, lg_dtype dt) { lg_max(in(g, dt, 3, 3, 4, 5), (int[]){1}, 1, true); }
/* few outputs of many elements: split into chunks, one block each (kernels_reduce.cu) */
static void b_sum_rows(lg_graph *g, lg_dtype dt) { lg_sum(in(g, dt, 2, 9000, 3, 0), (int[]){0}, 1, false); }
static void b_max_all(lg_graph *g, lg_dtype dt) { lg_max(in(g, dt, 2, 60, 70, 0), NULL, 0, false); }
static void b_numel(lg_graph *g, lg_dtype dt) { lg_numel(in(g, dt, 3, 3, 4, 5), (int[]){0, 1}, 2); }
static void b_reshape(lg_graph *g, lg_dtype dt) { lg_reshape(in(g, dt, 2, 3, 4, 0), lg_shape_of(2, 2, 6)); }
static void b_reshape_like(lg_graph *g, lg_dtype dt) { lg_reshape_like(in(g, dt, 2, 3, 4, 0), in(g, dt, 3, 2, 2, 3)); }
static void b_expand_dims(lg_graph *g, lg_dtype dt) { lg_expand_dims(in(g, dt, 2, 3, 4, 0), 1); }
static void b_squeeze(lg_graph *g, lg_dtype dt) { lg_squeeze(in(g, dt, 3, 3, 1, 4), 1); }
static void b_transpose(lg_graph *g, lg_dtype dt) { lg_transpose(in(g, dt, 3, 2, 3, 4), (int[]){2, 0, 1}); }
static void b_slice(lg_graph *g, lg_dtype dt) { lg_slice(in(g, dt, 3, 3, 5, 4), 1, 1, 2); }
static void b_unslice(lg_graph *g, lg_dtype dt)
{
    lg_attrs a = {.axis = 1, .ints = (int64_t[]){1, 2}, .n_ints = 2};
    lg_build(LG_OP_UNSLICE, (lg_value[]){in(g, dt, 3, 3, 2, 4), in(g, dt, 3, 3, 5, 4)}, 2, &a);
}
static void b_concat(lg_graph *g, lg_dtype dt)
{
    lg_concat((lg_value[]){in(g, dt, 3, 2, 1, 3), in(g, dt, 3, 2, 4, 3), in(g, dt, 3, 2, 2, 3)}, 3, 1);
}
static void b_split(lg_graph *g, lg_dtype dt)
{
    lg_value outs[3];
    lg_split(in(g, dt, 3, 3, 7, 2), 1, (int64_t[]){2, 4, 1}, 3, outs);
}
static void b_broadcast_to(lg_graph *g, lg_dtype dt) { lg_broadcast_to(in(g, dt, 2, 3, 1, 0), lg_shape_of(3, 2, 3, 4)); }
static void b_broadcast_like(lg_graph *g, lg_dtype dt) { lg_broadcast_like(in(g, dt, 1, 4, 0, 0), in(g, dt, 3, 2, 3, 4)); }
static void b_sum_to(lg_graph *g, lg_dtype dt) { lg_sum_to(in(g, dt, 3, 20, 30, 4), in(g, dt, 2, 30, 1, 0)); }
static void b_gather(lg_graph *g, lg_dtype dt) { lg_gather(in(g, dt, 3, 10, 3, 2), in(g, LG_I32, 2, 4, 5, 0)); }
static void b_scatter_add(lg_graph *g, lg_dtype dt)
{
    lg_scatter_add(in(g, dt, 2, 60, 3, 0), in(g, LG_I32, 1, 60, 0, 0), in(g, dt, 2, 4, 3, 0));
}
static void b_one_hot(lg_graph *g, lg_dtype dt) { lg_one_hot(in(g, LG_I32, 1, 40, 0, 0), 5, dt); }
static void b_softmax(lg_graph *g, lg_dtype dt) { lg_softmax(in(g, dt, 3, 3, 6, 4), 1); }
static void b_log_softmax(lg_graph *g, lg_dtype dt) { lg_log_softmax(in(g, dt, 3, 3, 4, 6), 2); }
static void b_sigmoid_xent(lg_graph *g, lg_dtype dt) { lg_sigmoid_xent(in(g, dt, 2, 5, 6, 0), in(g, dt, 2, 5, 6, 0)); }
static void b_softmax_xent(lg_graph *g, lg_dtype dt) { lg_softmax_xent(in(g, dt, 2, 8, 10, 0), in(g, dt, 2, 8, 10, 0)); }
static void b_sparse_xent(lg_graph *g, lg_dtype dt) { lg_sparse_softmax_xent(in(g, LG_I32, 1, 8, 0, 0), in(g, dt, 2, 8, 10, 0)); }

/* A fused program as the fuse_elementwise pass writes one, over a [4, 3, 5],
 * a row [5] and an i32 mask [4, 3, 1]: where(mask, tanh(a row) + row,
 * clip(sigmoid(-a), 0.2, 0.6)) * (a > row), each op encoded from a node
 * built for it. */
static void b_fused(lg_graph *g, lg_dtype dt)
{
    lg_value a = in(g, dt, 3, 4, 3, 5), row = in(g, dt, 1, 5, 0, 0), mask = in(g, LG_I32, 3, 4, 3, 1);
    lg_value m = lg_mul(a, row), t = lg_tanh(m), sum = lg_add(t, row), ng = lg_neg(a), sg = lg_sigmoid(ng);
    lg_value cl = lg_clip(sg, 0.2, 0.6), w = lg_where(mask, sum, cl), gt = lg_compare(a, row, LG_CMP_GT);
    lg_value y = lg_mul(w, gt);
    /* postfix: input k as -1 - k */
    const lg_value prog[] = {mask, a, row, m, t, row, sum, a, ng, sg, cl, w, a, row, gt, y};
    const lg_value ins[] = {a, row, mask};
    enum { N = sizeof prog / sizeof prog[0] };
    int64_t ints[N * LG_FEW_WIDTH];
    for (int i = 0; i < N; i++) {
        int64_t *e = &ints[i * LG_FEW_WIDTH];
        int k = 0;
        while (k < 3 && !lg_value_same(prog[i], ins[k])) k++;
        if (k < 3) e[0] = LG_OP_INPUT, e[1] = k, e[2] = e[3] = 0;
        else lg_few_encode(&g->nodes[prog[i].node], e);
    }
    lg_node_build(g, LG_OP_FUSED_ELEMENTWISE, ins, 3, &(lg_attrs){.ints = ints, .n_ints = N * LG_FEW_WIDTH, .dtype = dt},
                  "fused");
}

/* A fused program with more outputs, over a [4, 3, 5] and a row [5]:
 * s = sigmoid(a row) stored as output 1, tanh(s) as output 2, and
 * tanh(s) s + s, reading s twice more. */
static void b_fused_stores(lg_graph *g, lg_dtype dt)
{
    lg_value a = in(g, dt, 3, 4, 3, 5), row = in(g, dt, 1, 5, 0, 0);
    lg_value m = lg_mul(a, row), s = lg_sigmoid(m), t = lg_tanh(s), p = lg_mul(t, s), y = lg_add(p, s);
    const lg_value ops[] = {m, s, t, p, y};
    int64_t ints[11 * LG_FEW_WIDTH] = {0}, *e = ints;
    e[0] = LG_OP_INPUT, e[1] = 0, e += LG_FEW_WIDTH;
    e[0] = LG_OP_INPUT, e[1] = 1, e += LG_FEW_WIDTH;
    for (int i = 0; i < 5; i++) {
        lg_few_encode(&g->nodes[ops[i].node], e), e += LG_FEW_WIDTH;
        if (i == 1 || i == 2) e[0] = LG_FEW_STORE, e[1] = i, e += LG_FEW_WIDTH; /* s, t */
        if (i == 2 || i == 3) e[0] = LG_FEW_RELOAD, e[1] = 1, e += LG_FEW_WIDTH; /* s again */
    }
    const lg_value ins[] = {a, row};
    lg_node_build(g, LG_OP_FUSED_ELEMENTWISE, ins, 2, &(lg_attrs){.ints = ints, .n_ints = 11 * LG_FEW_WIDTH, .dtype = dt},
                  "fused");
}

/* A fused program reading windows (split pieces in place): over a
 * [4, 3, 20] and a row [20], tanh(a[..., 5:10] a[..., 10:15] + row[15:]),
 * a an input twice at two starts. */
static void b_fused_windows(lg_graph *g, lg_dtype dt)
{
    lg_value a = in(g, dt, 3, 4, 3, 20), row = in(g, dt, 1, 20, 0, 0);
    lg_value m = lg_mul(a, a), s = lg_add(m, row), t = lg_tanh(s);
    int64_t ints[6 * LG_FEW_WIDTH] = {LG_OP_INPUT, 0, 5, 0, LG_OP_INPUT, 1, 10, 0};
    lg_few_encode(&g->nodes[m.node], &ints[2 * LG_FEW_WIDTH]);
    ints[3 * LG_FEW_WIDTH] = LG_OP_INPUT, ints[3 * LG_FEW_WIDTH + 1] = 2, ints[3 * LG_FEW_WIDTH + 2] = 15;
    lg_few_encode(&g->nodes[s.node], &ints[4 * LG_FEW_WIDTH]);
    lg_few_encode(&g->nodes[t.node], &ints[5 * LG_FEW_WIDTH]);
    const lg_value ins[] = {a, a, row};
    lg_node_build(g, LG_OP_FUSED_ELEMENTWISE, ins, 3,
                  &(lg_attrs){.ints = ints, .n_ints = 6 * LG_FEW_WIDTH, .dtype = dt, .axis = 5}, "fused");
}

/* A fused program that puts: over a [4, 3, 5] and a row [5], the
 * concatenation [tanh(a), a row] along the last axis, [4, 3, 10]. */
static void b_fused_puts(lg_graph *g, lg_dtype dt)
{
    lg_value a = in(g, dt, 3, 4, 3, 5), row = in(g, dt, 1, 5, 0, 0);
    lg_value t = lg_tanh(a), m = lg_mul(a, row);
    int64_t ints[7 * LG_FEW_WIDTH] = {LG_OP_INPUT, 0, 0, 0};
    lg_few_encode(&g->nodes[t.node], &ints[1 * LG_FEW_WIDTH]);
    ints[2 * LG_FEW_WIDTH] = LG_FEW_PUT, ints[2 * LG_FEW_WIDTH + 1] = 0;
    ints[3 * LG_FEW_WIDTH] = LG_OP_INPUT, ints[3 * LG_FEW_WIDTH + 1] = 0;
    ints[4 * LG_FEW_WIDTH] = LG_OP_INPUT, ints[4 * LG_FEW_WIDTH + 1] = 1;
    lg_few_encode(&g->nodes[m.node], &ints[5 * LG_FEW_WIDTH]);
    ints[6 * LG_FEW_WIDTH] = LG_FEW_PUT, ints[6 * LG_FEW_WIDTH + 1] = 5;
    const lg_value ins[] = {a, row};
    lg_node_build(g, LG_OP_FUSED_ELEMENTWISE, ins, 2,
                  &(lg_attrs){.ints = ints, .n_ints = 7 * LG_FEW_WIDTH, .dtype = dt, .axis = 5}, "fused");
}

#define R(lo, hi) {lo, hi, false}
#define RI(lo, hi) {lo, hi, true}
static const op_row rows[] = {
    {"matmul", LG_OP_MATMUL, F32 | F64, b_matmul, {R(-2, 2)}, 1e-4},
    {"matmul batch folded", LG_OP_MATMUL, F32 | F64, b_matmul_fold, {R(-2, 2)}, 1e-4},
    {"matmul trans_a trans_b batched", LG_OP_MATMUL, F32 | F64, b_matmul_tt, {R(-2, 2)}, 1e-4},
    {"matmul trans_b 2-D b", LG_OP_MATMUL, F32 | F64, b_matmul_tb, {R(-2, 2)}, 1e-4},
    {"add broadcast", LG_OP_ADD, F32 | F64 | I32, b_add, {R(-50, 50), R(-50, 50)}, 1e-5},
    {"sub broadcast", LG_OP_SUB, F32 | F64 | I32, b_sub, {R(-50, 50), R(-50, 50)}, 1e-5},
    {"mul", LG_OP_MUL, F32 | F64 | I32, b_mul, {R(-50, 50), R(-50, 50)}, 1e-5},
    {"div broadcast", LG_OP_DIV, F32 | F64, b_div, {R(-2, 2), R(0.5, 2)}, 1e-5},
    {"compare gt", LG_OP_COMPARE, F32 | F64 | I32, b_gt, {RI(-2, 2), RI(-2, 2)}, 0},
    {"compare ge", LG_OP_COMPARE, F32 | F64 | I32, b_ge, {RI(-2, 2), RI(-2, 2)}, 0},
    {"compare lt", LG_OP_COMPARE, F32 | F64 | I32, b_lt, {RI(-2, 2), RI(-2, 2)}, 0},
    {"compare le", LG_OP_COMPARE, F32 | F64 | I32, b_le, {RI(-2, 2), RI(-2, 2)}, 0},
    {"compare eq", LG_OP_COMPARE, F32 | F64 | I32, b_eq, {RI(-2, 2), RI(-2, 2)}, 0},
    {"compare ne", LG_OP_COMPARE, F32 | F64 | I32, b_ne, {RI(-2, 2), RI(-2, 2)}, 0},
    {"where i32 mask", LG_OP_WHERE, F32 | F64 | I32, b_where, {RI(0, 2), R(-9, 9), R(-9, 9)}, 0},
    {"where float mask", LG_OP_WHERE, F32 | F64, b_where_fmask, {RI(0, 2), R(-9, 9), R(-9, 9)}, 0},
    {"neg", LG_OP_NEG, F32 | F64 | I32, b_neg, {R(-50, 50)}, 0},
    {"exp", LG_OP_EXP, F32 | F64, b_exp, {R(-10, 10)}, 1e-5},
    {"log", LG_OP_LOG, F32 | F64, b_log, {R(0.01, 50)}, 1e-5},
    {"sqrt", LG_OP_SQRT, F32 | F64, b_sqrt, {R(0, 50)}, 1e-5},
    {"square", LG_OP_SQUARE, F32 | F64, b_square, {R(-9, 9)}, 1e-5},
    {"pow", LG_OP_POW, F32 | F64, b_pow, {R(0.01, 5)}, 1e-5},
    {"abs", LG_OP_ABS, F32 | F64 | I32, b_abs, {R(-50, 50)}, 0},
    {"sigmoid", LG_OP_SIGMOID, F32 | F64, b_sigmoid, {R(-20, 20)}, 1e-5},
    {"hard_sigmoid", LG_OP_HARD_SIGMOID, F32 | F64, b_hard_sigmoid, {R(-5, 5)}, 1e-5},
    {"tanh", LG_OP_TANH, F32 | F64, b_tanh, {R(-5, 5)}, 1e-5},
    {"relu", LG_OP_RELU, F32 | F64, b_relu, {R(-5, 5)}, 0},
    {"elu", LG_OP_ELU, F32 | F64, b_elu, {R(-5, 5)}, 1e-5},
    {"softplus", LG_OP_SOFTPLUS, F32 | F64, b_softplus, {R(-30, 30)}, 1e-5},
    {"softsign", LG_OP_SOFTSIGN, F32 | F64, b_softsign, {R(-30, 30)}, 1e-5},
    {"clip", LG_OP_CLIP, F32 | F64, b_clip, {R(-3, 3)}, 0},
    {"stop_gradient", LG_OP_STOP_GRADIENT, F32 | F64 | I32, b_stop_gradient, {R(-9, 9)}, 0},
    {"cast to i32 (saturating)", LG_OP_CAST, F32 | F64, b_cast_i32, {R(-5e9, 5e9)}, 0},
    {"cast to f32", LG_OP_CAST, F64 | I32, b_cast_f32, {R(-1e6, 1e6)}, 0},
    {"cast to f64", LG_OP_CAST, F32 | I32, b_cast_f64, {R(-1e6, 1e6)}, 0},
    {"sum axes 0, 2", LG_OP_SUM, F32 | F64 | I32, b_sum, {R(-50, 50)}, 1e-4},
    {"sum all (no cancellation: f32 sums 4200 terms)", LG_OP_SUM, F32 | F64 | I32, b_sum_all, {R(0, 50)}, 1e-4},
    {"max axis 1", LG_OP_MAX, F32 | F64, b_max, {R(-50, 50)}, 0},
    {"sum axis 0 of [9000, 3] (in chunks)", LG_OP_SUM, F32 | F64 | I32, b_sum_rows, {R(0, 50)}, 1e-4},
    {"max all of 4200 (in chunks)", LG_OP_MAX, F32 | F64, b_max_all, {R(-50, 50)}, 0},
    {"numel", LG_OP_NUMEL, F32 | F64, b_numel, {R(-2, 2)}, 0},
    {"reshape", LG_OP_RESHAPE, F32 | F64 | I32, b_reshape, {R(-9, 9)}, 0},
    {"reshape_like", LG_OP_RESHAPE_LIKE, F32 | F64 | I32, b_reshape_like, {R(-9, 9)}, 0},
    {"expand_dims", LG_OP_EXPAND_DIMS, F32 | F64 | I32, b_expand_dims, {R(-9, 9)}, 0},
    {"squeeze", LG_OP_SQUEEZE, F32 | F64 | I32, b_squeeze, {R(-9, 9)}, 0},
    {"transpose", LG_OP_TRANSPOSE, F32 | F64 | I32, b_transpose, {R(-9, 9)}, 0},
    {"slice", LG_OP_SLICE, F32 | F64 | I32, b_slice, {R(-9, 9)}, 0},
    {"unslice", LG_OP_UNSLICE, F32 | F64, b_unslice, {R(-9, 9)}, 0},
    {"concat", LG_OP_CONCAT, F32 | F64 | I32, b_concat, {R(-9, 9), R(-9, 9), R(-9, 9)}, 0},
    {"split", LG_OP_SPLIT, F32 | F64 | I32, b_split, {R(-9, 9)}, 0},
    {"broadcast_to", LG_OP_BROADCAST_TO, F32 | F64 | I32, b_broadcast_to, {R(-9, 9)}, 0},
    {"broadcast_like", LG_OP_BROADCAST_LIKE, F32 | F64 | I32, b_broadcast_like, {R(-9, 9)}, 0},
    {"sum_to", LG_OP_SUM_TO, F32 | F64, b_sum_to, {R(-9, 9)}, 1e-4},
    {"gather", LG_OP_GATHER, F32 | F64 | I32, b_gather, {R(-9, 9), R(0, 10)}, 0},
    {"scatter_add (repeated rows)", LG_OP_SCATTER_ADD, F32 | F64, b_scatter_add, {R(-9, 9), R(0, 4)}, 1e-5},
    {"one_hot (out-of-range rows)", LG_OP_ONE_HOT, F32 | F64 | I32, b_one_hot, {R(-1, 6)}, 0},
    {"softmax axis 1", LG_OP_SOFTMAX, F32 | F64, b_softmax, {R(-20, 20)}, 1e-4},
    {"log_softmax axis 2", LG_OP_LOG_SOFTMAX, F32 | F64, b_log_softmax, {R(-20, 20)}, 1e-4},
    {"sigmoid_xent", LG_OP_SIGMOID_XENT, F32 | F64, b_sigmoid_xent, {R(-30, 30), R(0, 1)}, 1e-4},
    {"softmax_xent", LG_OP_SOFTMAX_XENT, F32 | F64, b_softmax_xent, {R(-20, 20), R(0, 1)}, 1e-4},
    {"sparse_softmax_xent", LG_OP_SPARSE_SOFTMAX_XENT, F32 | F64, b_sparse_xent, {R(-20, 20), R(0, 10)}, 1e-4},
    {"fused_elementwise (broadcasts, an i32 mask, reals, a comparison)", LG_OP_FUSED_ELEMENTWISE, F32 | F64, b_fused,
     {R(-2, 2), R(-2, 2), RI(0, 2)}, 1e-5},
    {"fused_elementwise (stores, values read again)", LG_OP_FUSED_ELEMENTWISE, F32 | F64, b_fused_stores,
     {R(-2, 2), R(-2, 2)}, 1e-5},
    {"fused_elementwise (windows)", LG_OP_FUSED_ELEMENTWISE, F32 | F64, b_fused_windows, {R(-2, 2), R(-2, 2), R(-2, 2)},
     1e-5},
    {"fused_elementwise (puts)", LG_OP_FUSED_ELEMENTWISE, F32 | F64, b_fused_puts, {R(-2, 2), R(-2, 2)}, 1e-5},
};
#undef R
#undef RI
#define N_ROWS (sizeof rows / sizeof rows[0])

/* The last node of g with op (the row's node). */
static const lg_node *node_of(const lg_graph *g, lg_op op)
{
    for (int32_t i = g->n_nodes - 1; i >= 0; i--)
        if (g->nodes[i].op == op) return &g->nodes[i];
    return NULL;
}

static void run_row(const op_row *r, lg_dtype dt)
{
    char what[160];
    snprintf(what, sizeof what, "%s (%s)", r->name, dt == LG_F32 ? "f32" : dt == LG_F64 ? "f64" : "i32");
    lg_graph *g = lg_graph_new();
    r->build(g, dt);
    ck_assert_msg(!lg_graph_error(g), "%s: %s", what, lg_graph_error(g));
    const lg_node *n = node_of(g, r->op);
    ck_assert_msg(n, "%s: the builder made no node of the op", what);
    lg_buf cin[3], gin[3], cout[4], gout[4];
    for (int k = 0; k < n->n_in; k++) {
        const lg_port *p = &g->nodes[n->in[k].node].out[n->in[k].out];
        size_t bytes = (size_t)lg_shape_numel(p->shape) * lg_dtype_size(p->dtype);
        cin[k] = (lg_buf){malloc(bytes + 1), p->dtype, p->shape};
        in_range ir = r->in[k].lo == r->in[k].hi ? (in_range){-2, 2, false} : r->in[k];
        fill(p->dtype, cin[k].data, lg_shape_numel(p->shape), ir.lo, ir.hi, ir.ints);
        gin[k] = (lg_buf){dev_copy(cin[k].data, bytes), p->dtype, p->shape};
    }
    for (int k = 0; k < n->n_out; k++) {
        size_t bytes = (size_t)lg_shape_numel(n->out[k].shape) * lg_dtype_size(n->out[k].dtype);
        cout[k] = (lg_buf){calloc(1, bytes + 1), n->out[k].dtype, n->out[k].shape};
        gout[k] = (lg_buf){NULL, n->out[k].dtype, n->out[k].shape};
        ck_assert_int_eq(lg_cuda_alloc(ctx, bytes + 1, &gout[k].data), LG_OK);
    }
    lg_status st = lg_backend_cpu()->run_op(lg_backend_cpu(), n, cin, cout);
    ck_assert_msg(st == LG_OK, "%s: CPU: %s", what, lg_last_error());
    st = lg_cuda_kernel(r->op)(ctx, n, gin, gout);
    if (!st) st = lg_cuda_sync(ctx);
    ck_assert_msg(st == LG_OK, "%s: CUDA: %s", what, lg_last_error());
    double tol = r->tol32 == 0 || dt == LG_I32 ? 0 : dt == LG_F64 ? 1e-10 : r->tol32;
    for (int k = 0; k < n->n_out; k++) {
        int64_t count = lg_shape_numel(n->out[k].shape);
        void *h = host_from(gout[k].data, (size_t)count * lg_dtype_size(n->out[k].dtype));
        char w2[200];
        snprintf(w2, sizeof w2, "%s output %d", what, k);
        expect_close(w2, n->out[k].dtype, h, cout[k].data, count, tol);
        free(h);
        free(cout[k].data);
        lg_cuda_free(ctx, gout[k].data);
    }
    for (int k = 0; k < n->n_in; k++) {
        free(cin[k].data);
        lg_cuda_free(ctx, gin[k].data);
    }
    lg_graph_free(g);
}

START_TEST(every_op_against_cpu)
{
    const op_row *r = &rows[_i];
    for (lg_dtype dt = 0; dt < LG_DTYPE_COUNT; dt++)
        if (r->dtypes & (1u << dt)) run_row(r, dt);
}
END_TEST

/* Every compute op, and the fused elementwise op, has a CUDA kernel and a
 * row above; sources and control ops have no kernel. */
START_TEST(every_kernel_has_a_row)
{
    static const lg_op compute[] = {
#define LG_X_OP(ID, name) LG_OP_##ID,
        LG_COMPUTE_OPS(LG_X_OP)
#undef LG_X_OP
        LG_OP_FUSED_ELEMENTWISE, /* of the fused ops; the rnn pair has its own tests below */
    };
    for (size_t i = 0; i < sizeof compute / sizeof compute[0]; i++) {
        lg_op op = compute[i];
        ck_assert_msg(lg_cuda_kernel(op), "compute op %d has no CUDA kernel", (int)op);
        bool found = false;
        for (size_t r = 0; r < N_ROWS && !found; r++) found = rows[r].op == op;
        ck_assert_msg(found, "op %d has a CUDA kernel but no test row", (int)op);
    }
    ck_assert_ptr_null(lg_cuda_kernel(LG_OP_INPUT));
    ck_assert_ptr_null(lg_cuda_kernel(LG_OP_LOOP));
}
END_TEST

/* TF32 is opt-in: off, f32 matmul agrees to FP32 rounding; on, to TF32's. */
START_TEST(tf32_opt_in)
{
    lg_graph *g = lg_graph_new();
    lg_value c = lg_matmul(in(g, LG_F32, 2, 64, 256, 0), in(g, LG_F32, 2, 256, 64, 0), false, false);
    const lg_node *n = &g->nodes[c.node];
    float *a = malloc(64 * 256 * 4), *b = malloc(256 * 64 * 4), *ref = malloc(64 * 64 * 4);
    fill(LG_F32, a, 64 * 256, -1, 1, false);
    fill(LG_F32, b, 256 * 64, -1, 1, false);
    lg_buf cin[2] = {{a, LG_F32, lg_shape_of(2, 64, 256)}, {b, LG_F32, lg_shape_of(2, 256, 64)}};
    lg_buf cout = {ref, LG_F32, lg_shape_of(2, 64, 64)};
    ck_assert_int_eq(lg_cpu_matmul(n, cin, &cout), LG_OK);
    lg_buf gin[2] = {{dev_copy(a, 64 * 256 * 4), LG_F32, cin[0].shape}, {dev_copy(b, 256 * 64 * 4), LG_F32, cin[1].shape}};
    lg_buf gout = {NULL, LG_F32, cout.shape};
    ck_assert_int_eq(lg_cuda_alloc(ctx, 64 * 64 * 4, &gout.data), LG_OK);
    for (int tf32 = 0; tf32 < 2; tf32++) {
        lg_cuda_set_tf32(ctx, tf32);
        ck_assert_int_eq(lg_cuda_matmul(ctx, n, gin, &gout), LG_OK);
        float *h = host_from(gout.data, 64 * 64 * 4);
        expect_close(tf32 ? "matmul with TF32" : "matmul in FP32", LG_F32, h, ref, 64 * 64, tf32 ? 2e-2 : 1e-4);
        free(h);
    }
    lg_cuda_set_tf32(ctx, false);
    lg_cuda_free(ctx, gin[0].data), lg_cuda_free(ctx, gin[1].data), lg_cuda_free(ctx, gout.data);
    free(a), free(b), free(ref);
    lg_graph_free(g);
}
END_TEST

/* ---- errors ---------------------------------------------------------------- */

START_TEST(out_of_memory_names_the_bytes)
{
    void *p = (void *)1;
    size_t huge = (size_t)1 << 50;
    ck_assert_int_eq(lg_cuda_alloc(ctx, huge, &p), LG_ERR_OUT_OF_MEMORY);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(lg_last_error(), "1125899906842624 bytes") && strstr(lg_last_error(), "cuda:0"), "%s",
                  lg_last_error());
    /* the context still works */
    ck_assert_int_eq(lg_cuda_alloc(ctx, 1024, &p), LG_OK);
    ck_assert_int_eq(lg_cuda_sync(ctx), LG_OK);
    lg_cuda_free(ctx, p);
}
END_TEST

START_TEST(no_such_device)
{
    lg_cuda_ctx *c = (lg_cuda_ctx *)1;
    ck_assert_int_eq(lg_cuda_ctx_new(1000, &c), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(lg_last_error(), "cuda:1000: no such device"), "%s", lg_last_error());
}
END_TEST

START_TEST(bad_gather_index_reported_at_sync)
{
    lg_graph *g = lg_graph_new();
    lg_value v = lg_gather(in(g, LG_F32, 2, 5, 3, 0), in(g, LG_I32, 1, 4, 0, 0));
    const lg_node *n = &g->nodes[v.node];
    float table[15] = {0};
    int32_t idx[4] = {0, 4, 7, 1};
    lg_buf gin[2] = {{dev_copy(table, sizeof table), LG_F32, lg_shape_of(2, 5, 3)},
                     {dev_copy(idx, sizeof idx), LG_I32, lg_shape_of(1, 4)}};
    lg_buf gout = {NULL, LG_F32, lg_shape_of(2, 4, 3)};
    ck_assert_int_eq(lg_cuda_alloc(ctx, 12 * 4, &gout.data), LG_OK);
    ck_assert_int_eq(lg_cuda_gather(ctx, n, gin, &gout), LG_OK);
    ck_assert_int_eq(lg_cuda_sync(ctx), LG_ERR_RUNTIME);
    char want[160];
    snprintf(want, sizeof want, "gather '%s': index 7 outside [0, 5)", n->name);
    ck_assert_msg(strstr(lg_last_error(), want), "'%s' lacks '%s'", lg_last_error(), want);
    ck_assert_int_eq(lg_cuda_sync(ctx), LG_OK); /* reported once */
    lg_cuda_free(ctx, gin[0].data), lg_cuda_free(ctx, gin[1].data), lg_cuda_free(ctx, gout.data);
    lg_graph_free(g);
}
END_TEST

START_TEST(bad_label_reported_at_sync)
{
    lg_graph *g = lg_graph_new();
    lg_value v = lg_sparse_softmax_xent(in(g, LG_I32, 1, 2, 0, 0), in(g, LG_F64, 2, 2, 3, 0));
    const lg_node *n = node_of(g, LG_OP_SPARSE_SOFTMAX_XENT);
    (void)v;
    double x[6] = {0};
    int32_t labels[2] = {2, -1};
    lg_buf gin[2] = {{dev_copy(x, sizeof x), LG_F64, lg_shape_of(2, 2, 3)},
                     {dev_copy(labels, sizeof labels), LG_I32, lg_shape_of(1, 2)}};
    lg_buf gout = {NULL, LG_F64, lg_shape_of(1, 2)};
    ck_assert_int_eq(lg_cuda_alloc(ctx, 16, &gout.data), LG_OK);
    ck_assert_int_eq(lg_cuda_sparse_softmax_xent(ctx, n, gin, &gout), LG_OK);
    ck_assert_int_eq(lg_cuda_sync(ctx), LG_ERR_RUNTIME);
    ck_assert_msg(strstr(lg_last_error(), "label -1 outside [0, 3)"), "%s", lg_last_error());
    lg_cuda_free(ctx, gin[0].data), lg_cuda_free(ctx, gin[1].data), lg_cuda_free(ctx, gout.data);
    lg_graph_free(g);
}
END_TEST

/* ---- optimizers: device updates against src/optim ------------------------- */

typedef enum { OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAM, OPT_AMSGRAD, OPT_RMSPROP, OPT_RMSPROP_MC, OPT_COUNT } opt_kind;

static const char *const opt_names[] = {"sgd", "sgd momentum", "sgd nesterov", "adam", "adam amsgrad", "rmsprop",
                                        "rmsprop momentum centered"};

static void optimizer_case(opt_kind kind, lg_dtype dt, lg_clip_opts clip)
{
    enum { STEPS = 3, N0 = 37, N1 = 300 };
    lg_graph *g = lg_graph_new();
    lg_value p[2] = {lg_param(g, "a", dt, lg_shape_of(1, N0)), lg_param(g, "b", dt, lg_shape_of(2, 30, 10))};
    lg_optimizer *o = NULL;
    lg_sgd_opts so = lg_sgd_opts_default();
    lg_adam_opts ao = lg_adam_opts_default();
    lg_rmsprop_opts ro = lg_rmsprop_opts_default();
    so.clip = ao.clip = ro.clip = clip;
    so.momentum = kind == OPT_SGD ? 0 : 0.9;
    so.nesterov = kind == OPT_NESTEROV;
    ao.amsgrad = kind == OPT_AMSGRAD;
    ro.momentum = kind == OPT_RMSPROP_MC ? 0.5 : 0;
    ro.centered = kind == OPT_RMSPROP_MC;
    lg_status st = kind <= OPT_NESTEROV ? lg_optimizer_sgd(g, p, 2, so, &o)
                   : kind <= OPT_AMSGRAD ? lg_optimizer_adam(g, p, 2, ao, &o)
                                         : lg_optimizer_rmsprop(g, p, 2, ro, &o);
    ck_assert_msg(st == LG_OK, "%s", lg_last_error());
    int64_t n = N0 + N1, offsets[3] = {0, N0, N0 + N1};
    size_t bytes = (size_t)n * lg_dtype_size(dt);
    void *params = lg_tensor_data(lg_param_tensor(p[0]));
    void *grads = lg_tensor_data(lg_optimizer_grads(o)[0]);
    fill(dt, params, n, -1, 1, false);
    void *g_host[STEPS];
    for (int s = 0; s < STEPS; s++) {
        g_host[s] = malloc(bytes);
        fill(dt, g_host[s], n, -3, 3, false);
    }
    void *d_p = dev_copy(params, bytes), *d_g = NULL, *d_slots[3] = {NULL, NULL, NULL};
    ck_assert_int_eq(lg_cuda_alloc(ctx, bytes, &d_g), LG_OK);
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(lg_cuda_alloc(ctx, bytes, &d_slots[k]), LG_OK);
        ck_assert_int_eq(lg_cuda_memset0(ctx, d_slots[k], bytes), LG_OK);
    }
    for (int s = 0; s < STEPS; s++) {
        memcpy(grads, g_host[s], bytes);
        ck_assert_int_eq(lg_optimizer_step(o), LG_OK);
        ck_assert_int_eq(lg_cuda_copy_h2d(ctx, d_g, g_host[s], bytes), LG_OK);
        st = lg_cuda_clip_grads(ctx, dt, d_g, offsets, 2, clip.clipvalue, clip.clipnorm, clip.global_clipnorm);
        if (!st) {
            switch (kind) {
            case OPT_SGD:
            case OPT_MOMENTUM:
            case OPT_NESTEROV:
                st = lg_cuda_sgd_update(ctx, dt, n, d_p, d_g, d_slots[0], so.learning_rate, so.momentum, so.nesterov);
                break;
            case OPT_ADAM:
            case OPT_AMSGRAD:
                st = lg_cuda_adam_update(ctx, dt, n, d_p, d_g, d_slots, ao.learning_rate, ao.beta_1, ao.beta_2,
                                         ao.epsilon, ao.amsgrad, s + 1);
                break;
            default:
                st = lg_cuda_rmsprop_update(ctx, dt, n, d_p, d_g, d_slots, ro.learning_rate, ro.rho, ro.momentum,
                                            ro.epsilon, ro.centered);
                break;
            }
        }
        ck_assert_msg(st == LG_OK, "%s", lg_last_error());
    }
    char what[128];
    snprintf(what, sizeof what, "%s %s clip (%g, %g, %g): parameters", opt_names[kind], dt == LG_F32 ? "f32" : "f64",
             clip.clipvalue, clip.clipnorm, clip.global_clipnorm);
    void *h = host_from(d_p, bytes);
    expect_close(what, dt, h, params, n, dt == LG_F64 ? 1e-10 : 1e-5);
    free(h);
    h = host_from(d_g, bytes); /* clipping is in place on both */
    snprintf(what + strlen(what) - strlen("parameters"), 16, "gradients");
    expect_close(what, dt, h, grads, n, dt == LG_F64 ? 1e-10 : 1e-5);
    free(h);
    for (int s = 0; s < STEPS; s++) free(g_host[s]);
    lg_cuda_free(ctx, d_p), lg_cuda_free(ctx, d_g);
    for (int k = 0; k < 3; k++) lg_cuda_free(ctx, d_slots[k]);
    lg_optimizer_free(o);
    lg_graph_free(g);
}

START_TEST(optimizers_against_cpu)
{
    const lg_clip_opts clips[4] = {{0, 0, 0}, {0.5, 0, 0}, {0, 2, 0}, {0, 0, 3}};
    for (int c = 0; c < 4; c++)
        for (lg_dtype dt = LG_F32; dt <= LG_F64; dt++) optimizer_case((opt_kind)_i, dt, clips[c]);
}
END_TEST

START_TEST(global_norm)
{
    double g[1000], want = 0, norm = 0;
    fill(LG_F64, g, 1000, -1, 1, false);
    for (int i = 0; i < 1000; i++) want += g[i] * g[i];
    void *d = dev_copy(g, sizeof g);
    ck_assert_int_eq(lg_cuda_global_norm(ctx, LG_F64, d, 1000, &norm), LG_OK);
    ck_assert_double_eq_tol(norm, sqrt(want), 1e-12 * sqrt(want));
    lg_cuda_free(ctx, d);
}
END_TEST

/* ---- cuDNN RNN stacks against loopgrad's CPU loop --------------------------- */

typedef struct rnn_case {
    const char *name;
    lg_cell_kind kind;
    lg_dtype dt;
    int layers;
    bool bidi, lengths, use_bias;
} rnn_case;

static const rnn_case rnn_cases[] = {
    {"LSTM f32 with lengths", LG_CELL_LSTM, LG_F32, 1, false, true, true},
    {"LSTM f64", LG_CELL_LSTM, LG_F64, 1, false, false, true},
    {"LSTM f32 bidirectional with lengths", LG_CELL_LSTM, LG_F32, 1, true, true, true},
    {"LSTM f32 two layers", LG_CELL_LSTM, LG_F32, 2, false, false, true},
    {"GRU f32 with lengths", LG_CELL_GRU, LG_F32, 1, false, true, true},
    {"GRU f64 two layers bidirectional", LG_CELL_GRU, LG_F64, 2, true, false, true},
    {"GRU f32 without bias", LG_CELL_GRU, LG_F32, 1, false, false, false},
    {"SimpleRNN f64 with lengths", LG_CELL_SIMPLE_RNN, LG_F64, 1, false, true, true},
};
#define N_RNN_CASES (sizeof rnn_cases / sizeof rnn_cases[0])

static lg_tensor *random_tensor(lg_dtype dt, lg_shape s, double lo, double hi)
{
    lg_tensor *t = lg_test_tensor(dt, s, NULL);
    fill(dt, lg_tensor_data(t), lg_shape_numel(s), lo, hi, false);
    return t;
}

START_TEST(cudnn_rnn_against_cpu)
{
    const rnn_case *rc = &rnn_cases[_i];
    enum { B = 3, T = 5, F = 4, U = 6 };
    lg_dtype dt = rc->dt;
    int dirs = rc->bidi ? 2 : 1, n_pseudo = rc->layers * dirs, n_states = rc->kind == LG_CELL_LSTM ? 2 : 1;
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", dt, lg_shape_of(3, B, T, F)), len = lg_value_invalid();
    int32_t lengths[B] = {T, 2, 4};
    if (rc->lengths) len = lg_input(g, "len", LG_I32, lg_shape_of(1, B));
    lg_cell *cells[4];
    char names[4][16];
    lg_rnn_layer_desc descs[2];
    lg_value cur = x, finals[4][2]; /* per pseudo-layer: h (and c) */
    /* random initial states, fed and differentiated: cuDNN's hx, cx, dhx, dcx */
    lg_value s0[4][2];
    lg_tensor *s0t[4][2];
    for (int p = 0; p < n_pseudo; p++)
        for (int k = 0; k < n_states; k++) {
            char sn[16];
            snprintf(sn, sizeof sn, "s0_%d_%d", p, k);
            s0[p][k] = lg_input(g, sn, dt, lg_shape_of(2, B, U));
            s0t[p][k] = random_tensor(dt, lg_shape_of(2, B, U), -0.5, 0.5);
        }
    for (int l = 0; l < rc->layers; l++) {
        int64_t in_dim = l == 0 ? F : U * dirs;
        for (int d = 0; d < dirs; d++) {
            lg_cell_opts co = lg_cell_opts_default(rc->kind, U);
            co.dtype = dt;
            co.use_bias = rc->use_bias;
            co.seed = (uint64_t)(7 + l * 2 + d);
            char *name = names[l * dirs + d];
            snprintf(name, sizeof names[0], "c%d%d", l, d);
            cells[l * dirs + d] = lg_cell_new(g, name, (int)in_dim, co);
            ck_assert_ptr_nonnull(cells[l * dirs + d]);
            descs[l] = (lg_rnn_layer_desc){.name = name, .kind = rc->kind, .dtype = dt, .input_dim = in_dim,
                                           .units = U, .activation = co.activation,
                                           .recurrent_activation = co.recurrent_activation, .use_bias = co.use_bias,
                                           .reset_after = co.reset_after, .bidirectional = rc->bidi,
                                           .merge = LG_MERGE_CONCAT};
        }
        lg_rnn_opts ro = lg_rnn_opts_default();
        ro.return_sequences = true;
        /* cuDNN writes 0 to y past each example's length (the padding fill)
         * and ignores dy there; lg_rnn's default (Keras 3) repeats the last
         * valid output there, which the wrapper does not compute */
        ro.zero_output_for_mask = true;
        if (rc->lengths) ro.lengths = len;
        lg_value init[4]; /* the forward direction's states, then the backward one's */
        for (int d = 0; d < dirs; d++)
            for (int k = 0; k < n_states; k++) init[d * n_states + k] = s0[l * dirs + d][k];
        ro.initial_state = init;
        ro.n_initial_state = dirs * n_states;
        if (rc->bidi) {
            lg_bidirectional_result br;
            ck_assert_int_eq(lg_bidirectional(g, NULL, cells[l * 2], cells[l * 2 + 1], cur, LG_MERGE_CONCAT, ro, &br),
                             LG_OK);
            cur = br.output;
            for (int k = 0; k < n_states; k++) {
                finals[l * 2][k] = br.forward.states[k];
                finals[l * 2 + 1][k] = br.backward.states[k];
            }
        } else {
            lg_rnn_result rr;
            ck_assert_int_eq(lg_rnn(g, NULL, cells[l], cur, ro, &rr), LG_OK);
            cur = rr.output;
            for (int k = 0; k < n_states; k++) finals[l][k] = rr.states[k];
        }
    }
    /* Random biases, so that every bias path is exercised. */
    for (int p = 0; p < n_pseudo && rc->use_bias; p++) {
        lg_tensor *b = lg_param_tensor(lg_cell_bias(cells[p]));
        fill(dt, lg_tensor_data(b), lg_shape_numel(lg_tensor_shape(b)), -0.5, 0.5, false);
    }
    /* loss = sum(y wy) + sum over pseudo-layers of sum(h wh) (+ sum(c wc)):
     * the cotangents of y, hy and cy are wy, wh and wc. */
    lg_tensor *wy = random_tensor(dt, lg_shape_of(3, B, T, U * dirs), -1, 1), *ws[4][2];
    lg_value loss = lg_sum(lg_mul(cur, lg_constant(g, "wy", wy)), NULL, 0, false);
    for (int p = 0; p < n_pseudo; p++)
        for (int k = 0; k < n_states; k++) {
            ws[p][k] = random_tensor(dt, lg_shape_of(2, B, U), -1, 1);
            loss = lg_add(loss, lg_sum(lg_mul(finals[p][k], lg_constant(g, "ws", ws[p][k])), NULL, 0, false));
        }
    lg_value wrt[1 + 4 * 3 + 4 * 2], grads[1 + 4 * 3 + 4 * 2];
    int n_wrt = 0;
    wrt[n_wrt++] = x;
    for (int p = 0; p < n_pseudo; p++) {
        wrt[n_wrt++] = lg_cell_kernel(cells[p]);
        wrt[n_wrt++] = lg_cell_recurrent_kernel(cells[p]);
        if (rc->use_bias) wrt[n_wrt++] = lg_cell_bias(cells[p]);
    }
    for (int p = 0; p < n_pseudo; p++)
        for (int k = 0; k < n_states; k++) wrt[n_wrt++] = s0[p][k];
    ck_assert_msg(lg_grad(g, loss, wrt, n_wrt, grads) == LG_OK, "%s", lg_last_error());
    lg_value fetch[1 + 8 + 21];
    int n_fetch = 0;
    fetch[n_fetch++] = cur;
    for (int p = 0; p < n_pseudo; p++)
        for (int k = 0; k < n_states; k++) fetch[n_fetch++] = finals[p][k];
    for (int i = 0; i < n_wrt; i++) fetch[n_fetch++] = grads[i];
    lg_tensor *xt = random_tensor(dt, lg_shape_of(3, B, T, F), -1, 1), *lt = NULL, *out[30] = {NULL};
    lg_feed feeds[2 + 8] = {{x, xt}};
    int n_feeds = 1;
    if (rc->lengths) {
        lt = lg_test_tensor(LG_I32, lg_shape_of(1, B), lengths);
        feeds[n_feeds++] = (lg_feed){len, lt};
    }
    for (int p = 0; p < n_pseudo; p++)
        for (int k = 0; k < n_states; k++) feeds[n_feeds++] = (lg_feed){s0[p][k], s0t[p][k]};
    lg_status st = lg_graph_run(g, feeds, n_feeds, fetch, n_fetch, out);
    ck_assert_msg(st == LG_OK, "CPU: %s", lg_last_error());

    /* The same on cuDNN. */
    lg_rnn_spec spec;
    char why[256];
    ck_assert_msg(lg_rnn_eligible(descs, rc->layers, &spec, why, sizeof why) == LG_RNN_ELIGIBLE, "%s", why);
    lg_cudnn_rnn *r = NULL;
    st = lg_cudnn_rnn_new(ctx, &spec, B, T, false, &r);
    ck_assert_msg(st == LG_OK, "%s", lg_last_error());
    lg_rnn_src src[4];
    int64_t n_src = lg_rnn_src_dense(&spec, src);
    size_t es = lg_dtype_size(dt), src_bytes = (size_t)n_src * es;
    char *params = calloc(1, src_bytes);
    for (int p = 0; p < n_pseudo; p++) {
        lg_tensor *k = lg_param_tensor(lg_cell_kernel(cells[p])), *rk = lg_param_tensor(lg_cell_recurrent_kernel(cells[p]));
        memcpy(params + src[p].kernel * (int64_t)es, lg_tensor_data(k), lg_tensor_bytes(k));
        memcpy(params + src[p].recurrent_kernel * (int64_t)es, lg_tensor_data(rk), lg_tensor_bytes(rk));
        if (rc->use_bias) {
            lg_tensor *b = lg_param_tensor(lg_cell_bias(cells[p]));
            memcpy(params + src[p].bias * (int64_t)es, lg_tensor_data(b), lg_tensor_bytes(b));
        }
    }
    size_t y_bytes = (size_t)(B * T * U * dirs) * es, s_bytes = (size_t)(n_pseudo * B * U) * es,
           x_bytes = (size_t)(B * T * F) * es;
    /* [P, B, U]: pseudo-layer p's state at p B U */
    char *dhy_host = malloc(s_bytes), *dcy_host = malloc(s_bytes), *hx_host = malloc(s_bytes), *cx_host = malloc(s_bytes);
    for (int p = 0; p < n_pseudo; p++) {
        size_t at_p = (size_t)(p * B * U) * es, n_p = (size_t)(B * U) * es;
        memcpy(dhy_host + at_p, lg_tensor_data(ws[p][0]), n_p);
        memcpy(hx_host + at_p, lg_tensor_data(s0t[p][0]), n_p);
        if (n_states == 2) {
            memcpy(dcy_host + at_p, lg_tensor_data(ws[p][1]), n_p);
            memcpy(cx_host + at_p, lg_tensor_data(s0t[p][1]), n_p);
        }
    }
    void *d_params = dev_copy(params, src_bytes), *d_x = dev_copy(lg_tensor_data(xt), x_bytes);
    void *d_dy = dev_copy(lg_tensor_data(wy), y_bytes), *d_dhy = dev_copy(dhy_host, s_bytes),
         *d_dcy = dev_copy(dcy_host, s_bytes), *d_hx = dev_copy(hx_host, s_bytes), *d_cx = dev_copy(cx_host, s_bytes);
    void *d_y, *d_hy, *d_cy, *d_dx, *d_dparams, *d_dhx, *d_dcx;
    ck_assert_int_eq(lg_cuda_alloc(ctx, y_bytes, &d_y), LG_OK);
    ck_assert_int_eq(lg_cuda_alloc(ctx, s_bytes, &d_hy), LG_OK);
    ck_assert_int_eq(lg_cuda_alloc(ctx, s_bytes, &d_cy), LG_OK);
    ck_assert_int_eq(lg_cuda_alloc(ctx, s_bytes, &d_dhx), LG_OK);
    ck_assert_int_eq(lg_cuda_alloc(ctx, s_bytes, &d_dcx), LG_OK);
    ck_assert_int_eq(lg_cuda_alloc(ctx, x_bytes, &d_dx), LG_OK);
    ck_assert_int_eq(lg_cuda_memset0(ctx, d_dx, x_bytes), LG_OK);
    ck_assert_int_eq(lg_cuda_alloc(ctx, src_bytes, &d_dparams), LG_OK);
    bool lstm = rc->kind == LG_CELL_LSTM;
    st = lg_cudnn_rnn_bind(r, src);
    if (!st) st = lg_cudnn_rnn_pack(r, d_params);
    /* more than once: a call must not see the one before (cuDNN adds into
     * its weight gradients); with lengths, full lengths come between two
     * calls with them, so the descriptors change and change back, and the
     * last two calls have the same lengths (the wrapper keeps its
     * descriptors then) */
    for (int rep = 0; rep < (rc->lengths ? 4 : 2) && !st; rep++) {
        st = lg_cudnn_rnn_forward(r, rc->lengths && rep != 1 ? lengths : NULL, true, d_x, d_hx, lstm ? d_cx : NULL,
                                  d_y, d_hy, lstm ? d_cy : NULL);
        if (!st)
            st = lg_cudnn_rnn_backward(r, d_x, d_hx, lstm ? d_cx : NULL, d_y, d_dy, d_dhy, lstm ? d_dcy : NULL, d_dx,
                                       d_dhx, lstm ? d_dcx : NULL, d_dparams);
        if (!st && rc->lengths && rep == 1) { /* full lengths: example 1 (length 2) has a real last step, not the fill */
            char *y1 = host_from(d_y, y_bytes);
            size_t at = (size_t)((1 * T + T - 1) * U * dirs) * es;
            double v = dt == LG_F64 ? *(const double *)(y1 + at) : *(const float *)(y1 + at);
            free(y1);
            ck_assert_msg(v != 0, "%s: full lengths after lengths: example 1's last step is still padding", rc->name);
        }
    }
    if (!st) st = lg_cuda_sync(ctx);
    ck_assert_msg(st == LG_OK, "%s: %s", rc->name, lg_last_error());

    double tol = dt == LG_F64 ? 1e-9 : 2e-4;
    char what[160];
    void *h = host_from(d_y, y_bytes);
    snprintf(what, sizeof what, "%s: y", rc->name);
    expect_close(what, dt, h, lg_tensor_data(out[0]), B * T * U * dirs, tol);
    free(h);
    char *hy = host_from(d_hy, s_bytes), *cy = host_from(d_cy, s_bytes);
    for (int p = 0; p < n_pseudo; p++)
        for (int k = 0; k < n_states; k++) {
            snprintf(what, sizeof what, "%s: pseudo-layer %d final %s", rc->name, p, k ? "c" : "h");
            expect_close(what, dt, (k ? cy : hy) + (size_t)(p * B * U) * es, lg_tensor_data(out[1 + p * n_states + k]),
                         B * U, tol);
        }
    free(hy), free(cy);
    int at = 1 + n_pseudo * n_states;
    /* dx over each example's valid steps (cuDNN leaves padded steps alone) */
    char *dx = host_from(d_dx, x_bytes);
    const char *dx_cpu = lg_tensor_data(out[at]);
    for (int b = 0; b < B; b++) {
        int valid = rc->lengths ? lengths[b] : T;
        snprintf(what, sizeof what, "%s: dx example %d", rc->name, b);
        expect_close(what, dt, dx + (size_t)(b * T * F) * es, dx_cpu + (size_t)(b * T * F) * es, valid * F, tol);
    }
    free(dx);
    char *dp = host_from(d_dparams, src_bytes);
    at++;
    for (int p = 0; p < n_pseudo; p++) {
        const char *names[3] = {"kernel", "recurrent_kernel", "bias"};
        int64_t offs[3] = {src[p].kernel, src[p].recurrent_kernel, src[p].bias};
        for (int q = 0; q < (rc->use_bias ? 3 : 2); q++, at++) {
            snprintf(what, sizeof what, "%s: pseudo-layer %d d%s", rc->name, p, names[q]);
            expect_close(what, dt, dp + offs[q] * (int64_t)es, lg_tensor_data(out[at]),
                         lg_shape_numel(lg_tensor_shape(out[at])), tol);
        }
    }
    free(dp);
    char *dhx = host_from(d_dhx, s_bytes), *dcx = host_from(d_dcx, s_bytes);
    for (int p = 0; p < n_pseudo; p++)
        for (int k = 0; k < n_states; k++, at++) {
            snprintf(what, sizeof what, "%s: pseudo-layer %d d%s0", rc->name, p, k ? "c" : "h");
            expect_close(what, dt, (k ? dcx : dhx) + (size_t)(p * B * U) * es, lg_tensor_data(out[at]), B * U, tol);
        }
    free(dhx), free(dcx);
    lg_cuda_free(ctx, d_params), lg_cuda_free(ctx, d_x), lg_cuda_free(ctx, d_dy), lg_cuda_free(ctx, d_dhy);
    lg_cuda_free(ctx, d_dcy), lg_cuda_free(ctx, d_y), lg_cuda_free(ctx, d_hy), lg_cuda_free(ctx, d_cy);
    lg_cuda_free(ctx, d_dx), lg_cuda_free(ctx, d_dparams), lg_cuda_free(ctx, d_hx), lg_cuda_free(ctx, d_cx);
    lg_cuda_free(ctx, d_dhx), lg_cuda_free(ctx, d_dcx);
    lg_cudnn_rnn_free(r);
    free(params), free(dhy_host), free(dcy_host), free(hx_host), free(cx_host);
    for (int i = 0; i < n_fetch; i++) lg_tensor_free(out[i]);
    lg_tensor_free(xt), lg_tensor_free(lt), lg_tensor_free(wy);
    for (int p = 0; p < n_pseudo; p++)
        for (int k = 0; k < n_states; k++) lg_tensor_free(ws[p][k]), lg_tensor_free(s0t[p][k]);
    for (int p = 0; p < n_pseudo; p++) lg_cell_free(cells[p]);
    lg_graph_free(g);
}
END_TEST

START_TEST(cudnn_backward_needs_a_training_forward)
{
    lg_rnn_spec s = {.kind = LG_CELL_LSTM, .dtype = LG_F32, .input_dim = 3, .units = 2, .layers = 1, .use_bias = true};
    lg_cudnn_rnn *r = NULL;
    ck_assert_int_eq(lg_cudnn_rnn_new(ctx, &s, 2, 4, true, &r), LG_OK);
    ck_assert_int_eq(lg_cudnn_rnn_pack(r, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "lg_cudnn_rnn_bind"), "%s", lg_last_error());
    lg_rnn_src src[1];
    lg_rnn_src_dense(&s, src);
    ck_assert_int_eq(lg_cudnn_rnn_bind(r, src), LG_OK);
    ck_assert_int_eq(lg_cudnn_rnn_backward(r, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                     LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "no training forward"), "%s", lg_last_error());
    int32_t bad[2] = {4, 5};
    ck_assert_int_eq(lg_cudnn_rnn_forward(r, bad, true, NULL, NULL, NULL, NULL, NULL, NULL), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "length 5 of example 1 outside [1, 4]"), "%s", lg_last_error());
    ck_assert_uint_gt(lg_cudnn_rnn_device_bytes(r), 0);
    lg_cudnn_rnn_free(r);
}
END_TEST

START_TEST(cudnn_refuses_sizes_past_int)
{
    /* the states' stride B u = 2^20 2^12 does not fit cuDNN's int */
    lg_rnn_spec s = {.kind = LG_CELL_GRU, .dtype = LG_F32, .input_dim = 3, .units = 1 << 12, .layers = 1};
    lg_cudnn_rnn *r = NULL;
    ck_assert_int_eq(lg_cudnn_rnn_new(ctx, &s, 1 << 20, 4, true, &r), LG_ERR_UNSUPPORTED);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(lg_last_error(), "batch 1048576 times 4096 features is past cuDNN's int sizes"), "%s",
                  lg_last_error());
    ck_assert_int_eq(lg_cudnn_rnn_new(ctx, &s, 0, 4, true, &r), LG_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(lg_last_error(), "batch 0, steps 4"), "%s", lg_last_error());
}
END_TEST

/* ---- fused loops on cuDNN, through programs --------------------------------
 * A recurrent layer compiled for the CPU (its fused kernels) and for
 * "cuda:0" (cuDNN through the rnn op pair): the stacked outputs, the final
 * h and every gradient (parameters and x) of loss = sum(ys R) + sum(h_T S)
 * agree; the report says the loop was fused on cuda:0, or why not. A
 * Keras-style Bidirectional layer (concat) becomes one bidirectional node
 * on cuda:0, one cuDNN call; its final states are those of both
 * directions (LSTM: h and c). Stacked return_sequences layers of one cell
 * and width become one stacked node on cuda:0 (cuDNN's numLayers); their
 * final states are every layer's (LSTM: h and c). So do stacked
 * Bidirectional layers (concat), numLayers with CUDNN_BIDIRECTIONAL,
 * unless their merge mode or widths differ: then each pair is one
 * bidirectional node and the report says why they were not stacked. The
 * CPU runs with merge_rnn off, so cuDNN's calls are compared with each
 * loop's own fused kernels. */
typedef struct fused_case {
    const char *what;
    lg_cell_kind kind;
    lg_dtype dt;
    lg_activation act; /* SimpleRNN */
    bool reset_before; /* GRU reset_after false: cuDNN refuses */
    bool lengths, backwards;
    bool hand;         /* an LSTM step written from ops, not the cell API */
    bool bidir;        /* lg_bidirectional over two cells of the case */
    int layers;        /* 1, or that many stacked layers */
    lg_merge_mode merge; /* bidirectional */
    int units_above;   /* the layers' units above the first; 0: FU */
    const char *no_stack; /* stacked bidirectional layers that must stay pairs: the report's reason */
} fused_case;

static const fused_case fused_cases[] = {
    {"LSTM f32", LG_CELL_LSTM, LG_F32, LG_ACT_TANH, false, false, false, false, false, 1, LG_MERGE_CONCAT, 0, NULL},
    {"LSTM f64", LG_CELL_LSTM, LG_F64, LG_ACT_TANH, false, false, false, false, false, 1, LG_MERGE_CONCAT, 0, NULL},
    {"LSTM f32, lengths", LG_CELL_LSTM, LG_F32, LG_ACT_TANH, false, true, false, false, false, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"LSTM f64, lengths, go_backwards", LG_CELL_LSTM, LG_F64, LG_ACT_TANH, false, true, true, false, false, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"GRU f32", LG_CELL_GRU, LG_F32, LG_ACT_TANH, false, false, false, false, false, 1, LG_MERGE_CONCAT, 0, NULL},
    {"GRU f64, lengths, go_backwards", LG_CELL_GRU, LG_F64, LG_ACT_TANH, false, true, true, false, false, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"SimpleRNN tanh f32, go_backwards", LG_CELL_SIMPLE_RNN, LG_F32, LG_ACT_TANH, false, false, true, false, false, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"SimpleRNN relu f64, lengths", LG_CELL_SIMPLE_RNN, LG_F64, LG_ACT_RELU, false, true, false, false, false, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"hand-written LSTM f32", LG_CELL_LSTM, LG_F32, LG_ACT_TANH, false, false, false, true, false, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"hand-written LSTM f64, lengths", LG_CELL_LSTM, LG_F64, LG_ACT_TANH, false, true, false, true, false, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"GRU reset_after false f32 (refused)", LG_CELL_GRU, LG_F32, LG_ACT_TANH, true, false, false, false, false, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"Bidirectional LSTM f32, lengths", LG_CELL_LSTM, LG_F32, LG_ACT_TANH, false, true, false, false, true, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"Bidirectional GRU f32, lengths", LG_CELL_GRU, LG_F32, LG_ACT_TANH, false, true, false, false, true, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"Bidirectional LSTM f64", LG_CELL_LSTM, LG_F64, LG_ACT_TANH, false, false, false, false, true, 1,
     LG_MERGE_CONCAT, 0, NULL},
    {"2 stacked bidirectional LSTM f32", LG_CELL_LSTM, LG_F32, LG_ACT_TANH, false, false, false, false, true, 2,
     LG_MERGE_CONCAT, 0, NULL},
    {"2 stacked bidirectional GRU f64, lengths", LG_CELL_GRU, LG_F64, LG_ACT_TANH, false, true, false, false, true, 2,
     LG_MERGE_CONCAT, 0, NULL},
    {"3 stacked bidirectional LSTM f64, lengths", LG_CELL_LSTM, LG_F64, LG_ACT_TANH, false, true, false, false, true, 3,
     LG_MERGE_CONCAT, 0, NULL},
    {"2 stacked bidirectional SimpleRNN relu f32", LG_CELL_SIMPLE_RNN, LG_F32, LG_ACT_RELU, false, false, false, false,
     true, 2, LG_MERGE_CONCAT, 0, NULL},
    {"2 bidirectional LSTM f32 merged by sum (not stacked)", LG_CELL_LSTM, LG_F32, LG_ACT_TANH, false, false, false,
     false, true, 2, LG_MERGE_SUM, 0, "reads add of the ys below, not their concatenation"},
    {"2 bidirectional GRU f64, lengths, 8 then 6 units (not stacked)", LG_CELL_GRU, LG_F64, LG_ACT_TANH, false, true,
     false, false, true, 2, LG_MERGE_CONCAT, 6, "has 6 units, 'bidirectional_forward0/forward/loop' 8"},
    {"3 stacked LSTM f32", LG_CELL_LSTM, LG_F32, LG_ACT_TANH, false, false, false, false, false, 3,
     LG_MERGE_CONCAT, 0, NULL},
    {"2 stacked GRU f32", LG_CELL_GRU, LG_F32, LG_ACT_TANH, false, false, false, false, false, 2,
     LG_MERGE_CONCAT, 0, NULL},
    {"2 stacked LSTM f64, lengths", LG_CELL_LSTM, LG_F64, LG_ACT_TANH, false, true, false, false, false, 2,
     LG_MERGE_CONCAT, 0, NULL},
    {"2 stacked GRU f64, lengths, reversed", LG_CELL_GRU, LG_F64, LG_ACT_TANH, false, true, true, false, false, 2,
     LG_MERGE_CONCAT, 0, NULL},
    {"3 stacked LSTM f32, lengths, reversed", LG_CELL_LSTM, LG_F32, LG_ACT_TANH, false, true, true, false, false, 3,
     LG_MERGE_CONCAT, 0, NULL},
};
#define N_FUSED_CASES (sizeof fused_cases / sizeof fused_cases[0])

enum { FB = 5, FT = 7, FF = 6, FU = 8 };

/* Bidirectional: ys [B, T, 2U] (merged by concat) and the final states
 * of both directions side by side, [B, 2U] (LSTM: h, h', c, c', [B,
 * 4U]); with layers > 1, each layer (merged as the case says) reads the
 * one below's ys, and the states are every layer's. */
static void bidir_layer(lg_graph *g, const fused_case *fc, lg_value x, lg_value lengths, lg_value *ys, lg_value *h)
{
    lg_value states[2 * LG_RNN_MAX_LAYERS * LG_RNN_MAX_STATES];
    int n = 0, in_dim = FF;
    *ys = x;
    for (int l = 0; l < fc->layers; l++) {
        int units = l && fc->units_above ? fc->units_above : FU;
        lg_cell_opts co = lg_cell_opts_default(fc->kind, units);
        co.dtype = fc->dt;
        if (fc->kind == LG_CELL_SIMPLE_RNN) co.activation = fc->act;
        co.seed = 5 + 2 * (uint64_t)l;
        char name[32];
        snprintf(name, sizeof name, "forward%d", l);
        lg_cell *fwd = lg_cell_new(g, name, in_dim, co);
        co.seed = 6 + 2 * (uint64_t)l;
        snprintf(name, sizeof name, "backward%d", l);
        lg_cell *bwd = lg_cell_new(g, name, in_dim, co);
        ck_assert(fwd && bwd);
        lg_rnn_opts ro = lg_rnn_opts_default();
        ro.return_sequences = true;
        ro.lengths = lengths;
        lg_bidirectional_result r;
        lg_merge_mode m = l + 1 < fc->layers ? fc->merge : LG_MERGE_CONCAT;
        ck_assert_msg(lg_bidirectional(g, NULL, fwd, bwd, *ys, m, ro, &r) == LG_OK, "%s", lg_last_error());
        *ys = r.output;
        in_dim = m == LG_MERGE_CONCAT ? 2 * units : units;
        for (int k = 0; k < r.forward.n_states; k++)
            states[n++] = r.forward.states[k], states[n++] = r.backward.states[k];
        lg_cell_free(fwd), lg_cell_free(bwd);
    }
    *h = lg_concat(states, n, 1);
}

/* Stacked: the top layer's ys [B, T, U] and every layer's final states
 * side by side, [B, layers U] (LSTM: h, c of each, [B, 2 layers U]).
 * With lengths, loops each over the one below's outputs, run backwards
 * where the case says so (lg_loop_opts.reverse, outputs at their steps; a
 * go_backwards layer's are in its processing order instead, and lg_rnn's
 * masked layers do not merge today): one stacked node on cuda:0, reversed
 * (cuDNN forwards over each example's valid steps reversed). Their
 * initial states are random parameters, so the values and gradients check
 * the order cuda_rnn stages them in ([layers, B, U]). */
static void stacked_layers(lg_graph *g, const fused_case *fc, lg_value x, lg_value lengths, lg_value *ys,
                           lg_value *h)
{
    lg_cell_opts co = lg_cell_opts_default(fc->kind, FU);
    co.dtype = fc->dt;
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.return_sequences = true;
    ro.lengths = lengths;
    lg_value states[LG_RNN_MAX_LAYERS * LG_RNN_MAX_STATES];
    int n = 0;
    *ys = x;
    for (int l = 0; l < fc->layers; l++) {
        char name[16];
        snprintf(name, sizeof name, "layer%d", l);
        co.seed = 5 + (uint64_t)l;
        lg_cell *cell = lg_cell_new(g, name, l ? FU : FF, co);
        ck_assert_ptr_nonnull(cell);
        if (fc->lengths) {
            lg_loop_opts lo = lg_loop_opts_default();
            lo.reverse = fc->backwards;
            lo.lengths = lengths;
            lg_loop *loop = lg_loop_new(g, name, lo);
            lg_value s[LG_RNN_MAX_STATES], next[LG_RNN_MAX_STATES], y, fin[LG_RNN_MAX_STATES];
            int ns = lg_cell_state_count(cell);
            for (int k = 0; k < ns; k++) { /* random, differentiated: each layer's own h0, c0 */
                char sn[24];
                snprintf(sn, sizeof sn, "%s/%s", name, k ? "c0" : "h0");
                lg_value s0 = lg_param(g, sn, fc->dt, lg_shape_of(2, FB, FU));
                ck_assert_int_eq(lg_init_uniform(lg_param_tensor(s0), -0.5, 0.5, 13, (uint64_t)(2 * l + k)), LG_OK);
                s[k] = lg_loop_state(loop, s0);
            }
            lg_cell_step(cell, loop, lg_loop_seq(loop, *ys), s, lg_value_invalid(), lg_value_invalid(), next, &y);
            for (int k = 0; k < ns; k++) lg_loop_next(loop, s[k], next[k]);
            lg_loop_emit(loop, y);
            ck_assert_msg(lg_loop_end(loop, fin, ys) == LG_OK, "%s", lg_last_error());
            for (int k = 0; k < ns; k++) states[n++] = fin[k];
            lg_cell_free(cell);
            continue;
        }
        lg_rnn_result r;
        ck_assert_msg(lg_rnn(g, name, cell, *ys, ro, &r) == LG_OK, "%s", lg_last_error());
        *ys = r.output;
        for (int k = 0; k < r.n_states; k++) states[n++] = r.states[k];
        lg_cell_free(cell);
    }
    *h = lg_concat(states, n, 1);
}

/* The case's layer over x [B, T, F]: ys [B, T, U] and the final h [B, U]. */
static void fused_layer(lg_graph *g, const fused_case *fc, lg_value x, lg_value lengths, lg_value *ys, lg_value *h)
{
    if (fc->bidir) {
        bidir_layer(g, fc, x, lengths, ys, h);
        return;
    }
    if (fc->layers > 1) {
        stacked_layers(g, fc, x, lengths, ys, h);
        return;
    }
    if (fc->hand) {
        hand_lstm cell = hand_lstm_new(g, "hand", FF, FU, fc->dt);
        ck_assert_int_eq(lg_init_uniform(lg_param_tensor(cell.kernel), -0.4, 0.4, 11, 1), LG_OK);
        ck_assert_int_eq(lg_init_uniform(lg_param_tensor(cell.recurrent_kernel), -0.4, 0.4, 11, 2), LG_OK);
        ck_assert_int_eq(lg_init_uniform(lg_param_tensor(cell.bias), -0.2, 0.2, 11, 3), LG_OK);
        lg_loop_opts lo = lg_loop_opts_default();
        lo.lengths = lengths;
        ck_assert_msg(hand_lstm_sequence(g, &cell, x, lo, ys, h) == LG_OK, "%s", lg_last_error());
        return;
    }
    lg_cell_opts co = lg_cell_opts_default(fc->kind, FU);
    co.seed = 5;
    co.dtype = fc->dt;
    if (fc->kind == LG_CELL_SIMPLE_RNN) co.activation = fc->act;
    if (fc->reset_before) co.reset_after = false;
    lg_cell *cell = lg_cell_new(g, "rnn", FF, co);
    ck_assert_ptr_nonnull(cell);
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.return_sequences = true;
    ro.go_backwards = fc->backwards;
    ro.lengths = lengths;
    lg_rnn_result r;
    ck_assert_msg(lg_rnn(g, NULL, cell, x, ro, &r) == LG_OK, "%s", lg_last_error());
    *ys = r.output;
    *h = r.states[0];
    lg_cell_free(cell);
}

/* Fetched values (ys, h, then the gradients) of the case on dev, as
 * doubles, and the program's report. */
static double *fused_run(const fused_case *fc, const char *dev, int *n_out, char **report)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", fc->dt, lg_shape_of(3, FB, FT, FF)), lengths = lg_value_invalid();
    if (fc->lengths) lengths = lg_input(g, "lengths", LG_I32, lg_shape_of(1, FB));
    lg_value ys, h;
    fused_layer(g, fc, x, lengths, &ys, &h);
    lg_tensor *rt = lg_test_uniform(fc->dt, lg_value_shape(ys), 21, 1, -1, 1),
              *st = lg_test_uniform(fc->dt, lg_value_shape(h), 21, 2, -1, 1);
    lg_value loss = lg_add(lg_sum(lg_mul(ys, lg_constant(g, "R", rt)), NULL, 0, false),
                           lg_sum(lg_mul(h, lg_constant(g, "S", st)), NULL, 0, false));
    int np = lg_graph_param_count(g);
    lg_value fetch[32];
    fetch[0] = ys, fetch[1] = h;
    lg_value wrt[29];
    ck_assert_int_lt(np, 29);
    for (int i = 0; i < np; i++) wrt[i] = lg_graph_param(g, i);
    wrt[np] = x;
    ck_assert_int_eq(lg_grad(g, loss, wrt, np + 1, fetch + 2), LG_OK);
    ck_assert_ptr_null(lg_graph_error(g));
    int n_fetch = 3 + np;
    lg_tensor *xt = lg_test_uniform(fc->dt, lg_shape_of(3, FB, FT, FF), 21, 3, -1, 1), *lt = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, FB), &lt), LG_OK);
    static const int lens[FB] = {FT, 3, 1, FT - 1, 5};
    for (int b = 0; b < FB; b++) lg_tensor_set(lt, b, lens[b]);
    lg_feed feeds[2] = {{x, xt}, {lengths, lt}};
    lg_compile_opts o = lg_compile_opts_default();
    o.device = dev;
    o.passes_off = dev ? NULL : "merge_rnn"; /* the reference: each loop's own fused kernels */
    lg_program *p = NULL;
    lg_status s = lg_program_compile_opts(g, feeds, fc->lengths ? 2 : 1, fetch, n_fetch, o, &p);
    ck_assert_msg(s == LG_OK, "%s on %s: %s", fc->what, dev ? dev : "cpu", lg_last_error());
    *report = lg_program_report(p);
    lg_tensor *out[32] = {NULL};
    s = lg_program_run(p, feeds, fc->lengths ? 2 : 1, out);
    ck_assert_msg(s == LG_OK, "%s on %s: %s", fc->what, dev ? dev : "cpu", lg_last_error());
    int n = 0;
    for (int i = 0; i < n_fetch; i++) n += (int)lg_tensor_numel(out[i]);
    double *v = malloc((size_t)n * sizeof *v);
    n = 0;
    for (int i = 0; i < n_fetch; i++) {
        for (int64_t k = 0; k < lg_tensor_numel(out[i]); k++) v[n++] = lg_tensor_get(out[i], k);
        lg_tensor_free(out[i]);
    }
    *n_out = n;
    lg_program_free(p);
    lg_tensor_free(xt), lg_tensor_free(lt), lg_tensor_free(rt), lg_tensor_free(st);
    lg_graph_free(g);
    return v;
}

START_TEST(fused_rnn_on_cudnn_against_cpu)
{
    const fused_case *fc = &fused_cases[_i];
    int n_cpu = 0, n_gpu = 0;
    char *rep_cpu = NULL, *rep_gpu = NULL;
    backend_opened = true;
    double *cpu = fused_run(fc, NULL, &n_cpu, &rep_cpu), *gpu = fused_run(fc, "cuda:0", &n_gpu, &rep_gpu);
    ck_assert_int_eq(n_cpu, n_gpu);
    double tol = fc->dt == LG_F32 ? 2e-4 : 1e-9;
    for (int i = 0; i < n_cpu; i++)
        ck_assert_msg(fabs(gpu[i] - cpu[i]) <= tol * fmax(1, fabs(cpu[i])), "%s: value %d: cuda %.17g, cpu %.17g",
                      fc->what, i, gpu[i], cpu[i]);
    ck_assert_msg(strstr(rep_cpu, "fused as"), "%s: the CPU did not fuse it:\n%s", fc->what, rep_cpu);
    if (fc->reset_before)
        ck_assert_msg(strstr(rep_gpu, "not fused: the cuda:0 backend") && strstr(rep_gpu, "reset_after"),
                      "%s: no reason from cuDNN:\n%s", fc->what, rep_gpu);
    else
        ck_assert_msg(strstr(rep_gpu, "fused as") && !strstr(rep_gpu, "not fused"), "%s: not fused on cuda:0:\n%s",
                      fc->what, rep_gpu);
    if (fc->bidir) {
        char stacked[64];
        snprintf(stacked, sizeof stacked, "one stacked bidirectional node (%d layers)", fc->layers);
        bool stack = fc->layers > 1 && !fc->no_stack;
        int pairs = 0;
        for (const char *at = rep_gpu; (at = strstr(at, "one bidirectional node")); at++) pairs++;
        ck_assert_msg(stack ? strstr(rep_gpu, stacked) && pairs == 0 : pairs == fc->layers,
                      "%s: not %s on cuda:0:\n%s", fc->what, stack ? stacked : "one bidirectional node per layer",
                      rep_gpu);
        snprintf(stacked, sizeof stacked, "bidirectional, %d layers, saved for its gradient", fc->layers);
        ck_assert_msg(!stack || strstr(rep_gpu, stacked), "%s: not run as one node:\n%s", fc->what, rep_gpu);
        ck_assert_msg(!fc->no_stack || (strstr(rep_gpu, "not stacked on") && strstr(rep_gpu, fc->no_stack)),
                      "%s: no reason why not stacked:\n%s", fc->what, rep_gpu);
    }
    if (fc->layers > 1 && !fc->bidir)
        ck_assert_msg(strstr(rep_gpu, "one stacked node"), "%s: the layers not merged on cuda:0:\n%s", fc->what,
                      rep_gpu);
    free(cpu), free(gpu), free(rep_cpu), free(rep_gpu);
}
END_TEST

/* ---- cuda:0 with entries replaced ---------------------------------------------
 * A test of what programs do when the device refuses or fails registers a
 * device kind of its own ("cudasync") whose "<kind>:0" is cuda:0's table
 * (and context) with some entries replaced by the test's, which reach
 * cuda:0's own through `cuda0`. Each test runs in a process of its own
 * (Check's fork mode), so one table serves them all. */
static const lg_backend *cuda0;
static lg_backend wrapped;
static char wrapped_kind[24], wrapped_name[32];
static void (*wrapped_edit)(lg_backend *b);

/* Opened with the registry's lock held: cuda:0 is opened before. */
static lg_status open_wrapped(int index, const lg_backend **out)
{
    if (index != 0) return lg_fail(LG_ERR_INVALID_ARGUMENT, "%s:%d: only %s:0 is made", wrapped_kind, index, wrapped_kind);
    wrapped = *cuda0;
    snprintf(wrapped_name, sizeof wrapped_name, "%s:0", wrapped_kind);
    wrapped.name = wrapped_name;
    wrapped_edit(&wrapped);
    *out = &wrapped;
    return LG_OK;
}

/* Register kind as cuda:0 changed by edit. */
static void register_wrapped(const char *kind, void (*edit)(lg_backend *b))
{
    backend_opened = true;
    ck_assert_msg(lg_backend_get("cuda:0", &cuda0) == LG_OK, "%s", lg_last_error());
    snprintf(wrapped_kind, sizeof wrapped_kind, "%s", kind);
    wrapped_edit = edit;
    ck_assert_int_eq(lg_backend_register(kind, open_wrapped), LG_OK);
}

/* "cudanostack:0": cuda:0 whose rnn_plan takes no stacked bidirectional
 * call (as a backend or cuDNN version might not): the stack's pairs are
 * then one bidirectional node each, the report says why, and the values
 * are still the CPU's. */

static bool plan_no_bidir_stack(const lg_backend *b, const lg_rnn_desc *d, lg_rnn_sizes *train,
                                lg_rnn_sizes *forward, char *why, size_t len)
{
    (void)b;
    if ((d->flags & LG_RNN_BIDIR) && (d->flags & LG_RNN_STACK)) {
        snprintf(why, len, "loop '%s': no stacked bidirectional calls here", d->name);
        return false;
    }
    return cuda0->rnn_plan(cuda0, d, train, forward, why, len);
}

static void no_bidir_stack(lg_backend *b) { b->rnn_plan = plan_no_bidir_stack; }

START_TEST(bidirectional_stack_refused_by_the_plan)
{
    register_wrapped("cudanostack", no_bidir_stack);
    const fused_case *fc = NULL;
    for (size_t i = 0; i < N_FUSED_CASES; i++)
        if (!strcmp(fused_cases[i].what, "2 stacked bidirectional GRU f64, lengths")) fc = &fused_cases[i];
    ck_assert_ptr_nonnull(fc);
    int n_cpu = 0, n_gpu = 0;
    char *rep_cpu = NULL, *rep_gpu = NULL;
    double *cpu = fused_run(fc, NULL, &n_cpu, &rep_cpu), *gpu = fused_run(fc, "cudanostack:0", &n_gpu, &rep_gpu);
    ck_assert_int_eq(n_cpu, n_gpu);
    for (int i = 0; i < n_cpu; i++)
        ck_assert_msg(fabs(gpu[i] - cpu[i]) <= 1e-9 * fmax(1, fabs(cpu[i])), "value %d: cuda %.17g, cpu %.17g", i,
                      gpu[i], cpu[i]);
    int pairs = 0;
    for (const char *at = rep_gpu; (at = strstr(at, "one bidirectional node")); at++) pairs++;
    ck_assert_msg(pairs == 2 &&
                      strstr(rep_gpu, "/backward/loop': not merged: the cudanostack:0 backend: loop "
                                      "'bidirectional_forward0/forward/loop': no stacked bidirectional calls here") &&
                      !strstr(rep_gpu, "layers, saved"),
                  "%s", rep_gpu);
    free(cpu), free(gpu), free(rep_cpu), free(rep_gpu);
}
END_TEST

/* Two losses of one fused LSTM loop, dev against the CPU: with grads, each
 * differentiated on its own, so their rnn_grad nodes read one workspace
 * (LG_RNN_SHARED_WS), and cudnnRNNBackwardData_v8 writes into the reserve
 * space it is given (in/out in cuDNN's reference), so each must work on a
 * copy; without, the loop runs forward only (CUDNN_FWD_MODE_INFERENCE, no
 * reserve space). The losses (and every gradient) as doubles. */
static double *two_losses_run(const char *dev, bool grads, int *n_out, char **report)
{
    enum { B = 3, T = 5, F = 4, U = 6 };
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, U);
    co.dtype = LG_F64;
    co.seed = 11;
    lg_cell *cell = lg_cell_new(g, "lstm", F, co);
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.return_sequences = true;
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, ro, &r), LG_OK);
    int np = lg_graph_param_count(g), n_fetch = 0;
    lg_value wrt[8], fetch[2 * 9];
    ck_assert_int_lt(np, 8);
    for (int i = 0; i < np; i++) wrt[i] = lg_graph_param(g, i);
    wrt[np] = x;
    lg_tensor *w[2];
    for (int k = 0; k < 2; k++) {
        w[k] = lg_test_uniform(LG_F64, lg_value_shape(r.output), 31, (uint64_t)k, -1, 1);
        lg_value loss = lg_sum(lg_mul(r.output, lg_constant(g, "w", w[k])), NULL, 0, false);
        fetch[n_fetch++] = loss;
        if (!grads) continue;
        ck_assert_int_eq(lg_grad(g, loss, wrt, np + 1, fetch + n_fetch), LG_OK);
        n_fetch += np + 1;
    }
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 31, 3, -1, 1);
    lg_feed feeds[1] = {{x, xt}};
    lg_compile_opts o = lg_compile_opts_default();
    o.device = dev;
    lg_program *p = NULL;
    ck_assert_msg(lg_program_compile_opts(g, feeds, 1, fetch, n_fetch, o, &p) == LG_OK, "%s", lg_last_error());
    *report = lg_program_report(p);
    lg_tensor *out[2 * 9] = {NULL};
    ck_assert_msg(lg_program_run(p, feeds, 1, out) == LG_OK, "%s", lg_last_error());
    int n = 0;
    for (int i = 0; i < n_fetch; i++) n += (int)lg_tensor_numel(out[i]);
    double *v = malloc((size_t)n * sizeof *v);
    n = 0;
    for (int i = 0; i < n_fetch; i++) {
        for (int64_t e = 0; e < lg_tensor_numel(out[i]); e++) v[n++] = lg_tensor_get(out[i], e);
        lg_tensor_free(out[i]);
    }
    *n_out = n;
    lg_program_free(p);
    lg_tensor_free(xt), lg_tensor_free(w[0]), lg_tensor_free(w[1]);
    lg_cell_free(cell), lg_graph_free(g);
    return v;
}

/* _i 0: forward only; 1: two gradients. */
START_TEST(two_losses_on_cudnn_against_cpu)
{
    int n_cpu = 0, n_gpu = 0;
    char *rep_cpu = NULL, *rep_gpu = NULL;
    backend_opened = true;
    double *cpu = two_losses_run(NULL, _i, &n_cpu, &rep_cpu), *gpu = two_losses_run("cuda:0", _i, &n_gpu, &rep_gpu);
    ck_assert_int_eq(n_cpu, _i ? 2 * (1 + 4 * 6 * (4 + 6 + 1) + 3 * 5 * 4) : 2);
    ck_assert_int_eq(n_cpu, n_gpu);
    for (int i = 0; i < n_cpu; i++)
        ck_assert_msg(fabs(gpu[i] - cpu[i]) <= 1e-9 * fmax(1, fabs(cpu[i])), "value %d: cuda %.17g, cpu %.17g", i,
                      gpu[i], cpu[i]);
    ck_assert_msg(strstr(rep_gpu, "fused as lstm") && !strstr(rep_gpu, "not fused"), "%s", rep_gpu);
    free(cpu), free(gpu), free(rep_cpu), free(rep_gpu);
}
END_TEST

/* rnn_plan's sizes: the workspace holds cuDNN's weight and reserve spaces
 * (and y), so it is at least that large; forward-only keeps no reserve. */
START_TEST(rnn_plan_sizes_from_cudnn)
{
    const lg_backend *b = NULL;
    backend_opened = true;
    ck_assert_int_eq(lg_backend_get("cuda:0", &b), LG_OK);
    lg_rnn_desc d = {.cell = LG_RNN_LSTM, .flags = LG_RNN_BIAS, .dtype = LG_F32, .T = 100, .B = 64, .I = 512, .H = 512,
                     .name = "lstm"};
    lg_rnn_sizes train = {0}, fwd = {0};
    char why[256] = "";
    ck_assert_msg(b->rnn_plan(b, &d, &train, &fwd, why, sizeof why), "%s", why);
    int64_t weights = 4 * 512 * (512 + 512 + 2);
    ck_assert_int_ge(train.ws_width * 100 * 64, weights + 100 * 64 * 512);
    ck_assert_int_gt(train.ws_width, fwd.ws_width);
    ck_assert_int_ge(fwd.ws_width * 100 * 64, weights);
    ck_assert_int_ge(train.scratch, weights);
    /* several gradients of the loop: rnn_grad's scratch holds a copy of the reserve space too */
    lg_rnn_sizes shared = {0}, shared_fwd = {0};
    d.flags |= LG_RNN_SHARED_WS;
    ck_assert_msg(b->rnn_plan(b, &d, &shared, &shared_fwd, why, sizeof why), "%s", why);
    ck_assert_int_gt(shared.scratch, train.scratch);
    ck_assert_int_eq(shared.ws_width, train.ws_width);
    d.flags &= ~(unsigned)LG_RNN_SHARED_WS;
    d.cell = LG_RNN_GRU_RESET_BEFORE;
    ck_assert(!b->rnn_plan(b, &d, &train, &fwd, why, sizeof why));
    ck_assert_msg(strstr(why, "reset_after") && strstr(why, "lstm"), "%s", why);
    d.cell = LG_RNN_LSTM;
    d.flags |= LG_RNN_MASK;
    ck_assert(!b->rnn_plan(b, &d, &train, &fwd, why, sizeof why));
    ck_assert_msg(strstr(why, "per-example lengths"), "%s", why);
    d.mask_by_lengths = true;
    ck_assert_msg(b->rnn_plan(b, &d, &train, &fwd, why, sizeof why), "%s", why);
    /* masked steps that repeat h (Keras 3's zero_output_for_mask false): cuDNN writes 0 past each length, so a
     * forward loop is refused; a reversed one runs them before any valid step, where the output is 0 too */
    lg_rnn_sizes rep = {0}, rep_fwd = {0};
    d.flags |= LG_RNN_REPEAT;
    ck_assert(!b->rnn_plan(b, &d, &rep, &rep_fwd, why, sizeof why));
    ck_assert_msg(strstr(why, "zero_output_for_mask"), "%s", why);
    d.flags |= LG_RNN_REVERSE;
    ck_assert_msg(b->rnn_plan(b, &d, &rep, &rep_fwd, why, sizeof why), "%s", why);
    d.flags &= ~(unsigned)(LG_RNN_REPEAT | LG_RNN_REVERSE);
    /* a merged pair: direction 0's spaces hold both directions' weights,
     * y [T, B, 2H] and, in scratch, dy [T, B, 2H] */
    lg_rnn_sizes bi_train = {0}, bi_fwd = {0};
    d.flags |= LG_RNN_BIDIR;
    ck_assert_msg(b->rnn_plan(b, &d, &bi_train, &bi_fwd, why, sizeof why), "%s", why);
    ck_assert_int_ge(bi_train.ws_width * 100 * 64, 2 * weights + 100 * 64 * 2 * 512);
    ck_assert_int_ge(bi_fwd.ws_width * 100 * 64, 2 * weights + 100 * 64 * 2 * 512);
    ck_assert_int_gt(bi_train.ws_width, train.ws_width);
    ck_assert_int_ge(bi_train.scratch, 2 * weights + 100 * 64 * 2 * 512);
    /* a stack of 3 layers: layer 0's spaces hold every layer's weights,
     * the top layer's y and the states [3, B, H] (h, c in and out); its
     * scratch the weight gradients and hx, cx, dhy, dcy, dhx, dcx */
    lg_rnn_sizes st_train = {0}, st_fwd = {0};
    d.flags = (d.flags & ~(unsigned)LG_RNN_BIDIR) | LG_RNN_STACK;
    d.layers = 3;
    ck_assert_msg(b->rnn_plan(b, &d, &st_train, &st_fwd, why, sizeof why), "%s", why);
    int64_t states = 3 * 64 * 512;
    ck_assert_int_ge(st_train.ws_width * 100 * 64, 3 * weights + 100 * 64 * 512 + 4 * states);
    ck_assert_int_ge(st_fwd.ws_width * 100 * 64, 3 * weights + 4 * states);
    ck_assert_int_gt(st_train.ws_width, st_fwd.ws_width);
    ck_assert_int_ge(st_train.scratch, 3 * weights + 6 * states);
    /* a stack of 2 bidirectional layers: layer 0's spaces hold all four
     * pseudo-layers' weights (layer 1's reading [T, B, 2H]), the top
     * layer's y [T, B, 2H] and the states [4, B, H] */
    lg_rnn_sizes bs_train = {0}, bs_fwd = {0};
    d.flags |= LG_RNN_BIDIR;
    d.layers = 2;
    ck_assert_msg(b->rnn_plan(b, &d, &bs_train, &bs_fwd, why, sizeof why), "%s", why);
    int64_t upper = 4 * 512 * (1024 + 512 + 2), bstates = 4 * 64 * 512;
    ck_assert_int_ge(bs_train.ws_width * 100 * 64, 2 * weights + 2 * upper + 100 * 64 * 2 * 512 + 4 * bstates);
    ck_assert_int_ge(bs_fwd.ws_width * 100 * 64, 2 * weights + 2 * upper + 4 * bstates);
    ck_assert_int_ge(bs_train.scratch, 2 * weights + 2 * upper + 100 * 64 * 2 * 512 + 6 * bstates);
    /* pseudo-layers past what one call takes here: 5 bidirectional layers are 10 */
    d.layers = 5;
    ck_assert(!b->rnn_plan(b, &d, &bs_train, &bs_fwd, why, sizeof why));
    ck_assert_msg(strstr(why, "a stack of 5 layers; one cuDNN call takes 1 to 4 here"), "%s", why);
    d.flags &= ~(unsigned)LG_RNN_BIDIR;
    d.layers = 3;
    /* layers that cuDNN cannot stack are refused with the reason */
    d.cell = LG_RNN_GRU_RESET_BEFORE;
    ck_assert(!b->rnn_plan(b, &d, &st_train, &st_fwd, why, sizeof why));
    ck_assert_msg(strstr(why, "reset_after"), "%s", why);
}
END_TEST

/* ---- programs on "cuda:0" (backends/backend.h) ----------------------------- */

/* Four training steps of an LSTM with a dense head (f64, Adam, clipnorm),
 * compiled for dev: the loss per step and every parameter and optimizer
 * state after, as doubles. The loop is fused on both: the CPU's kernels,
 * cuDNN on cuda:0. */
static double *train_steps(const char *dev, int *n_out, char **report)
{
    enum { B = 8, T = 6, F = 5, U = 7, C = 3 };
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F)), y = lg_input(g, "y", LG_I32, lg_shape_of(1, B));
    lg_cell_opts co = lg_cell_opts_default(LG_CELL_LSTM, U);
    co.seed = 7;
    co.dtype = LG_F64;
    lg_cell *cell = lg_cell_new(g, "lstm", F, co);
    lg_rnn_result r;
    ck_assert_int_eq(lg_rnn(g, NULL, cell, x, lg_rnn_opts_default(), &r), LG_OK);
    lg_dense_opts d = lg_dense_opts_default();
    d.seed = 3;
    lg_value loss = lg_sparse_categorical_crossentropy(y, lg_dense(g, "out", r.output, C, d), true);
    ck_assert_ptr_null(lg_graph_error(g));
    int np = lg_graph_param_count(g);
    lg_value wrt[8], fetch[9];
    for (int i = 0; i < np; i++) wrt[i] = lg_graph_param(g, i);
    lg_adam_opts ao = lg_adam_opts_default();
    ao.learning_rate = 0.01, ao.clip.clipnorm = 0.5;
    lg_optimizer *opt = NULL;
    ck_assert_int_eq(lg_optimizer_adam(g, wrt, np, ao, &opt), LG_OK);
    fetch[0] = loss;
    ck_assert_int_eq(lg_grad(g, loss, wrt, np, fetch + 1), LG_OK);
    lg_tensor *out[9] = {NULL}, *const *grads = lg_optimizer_grads(opt);
    for (int i = 0; i < np; i++) out[1 + i] = grads[i];
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 5, 1, -1, 1), *yt = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, B), &yt), LG_OK);
    for (int i = 0; i < B; i++) lg_tensor_set(yt, i, i % C);
    lg_feed feeds[2] = {{x, xt}, {y, yt}};
    lg_compile_opts o = lg_compile_opts_default();
    o.device = dev;
    lg_program *p = NULL;
    lg_status st = lg_program_compile_opts(g, feeds, 2, fetch, 1 + np, o, &p);
    ck_assert_msg(st == LG_OK, "%s", lg_last_error());
    *report = lg_program_report(p);
    double *v = malloc(4096 * sizeof *v);
    int n = 0;
    for (int s = 0; s < 4; s++) {
        st = lg_program_run(p, feeds, 2, out);
        ck_assert_msg(st == LG_OK, "%s", lg_last_error());
        v[n++] = lg_tensor_get(out[0], 0);
        lg_tensor_free(out[0]), out[0] = NULL;
        ck_assert_int_eq(lg_optimizer_step(opt), LG_OK);
    }
    for (int i = 0; i < np + lg_optimizer_state_count(opt); i++) {
        lg_tensor *t = NULL;
        const char *name;
        if (i < np) t = lg_param_tensor(wrt[i]);
        else ck_assert_int_eq(lg_optimizer_state(opt, i - np, &name, &t), LG_OK);
        for (int64_t k = 0; k < lg_tensor_numel(t) && n < 4096; k++) v[n++] = lg_tensor_get(t, k);
    }
    *n_out = n;
    lg_program_free(p);
    lg_tensor_free(xt), lg_tensor_free(yt);
    lg_optimizer_free(opt), lg_cell_free(cell), lg_graph_free(g);
    return v;
}

/* lg_allow_tf32 (program.h), the public opt-in: programs on cuda:0 run f32
 * matmuls in FP32 by default and say so in their report; switched on, the
 * report says TF32 and the product stays within TF32's rounding of the
 * CPU's; switched off again, FP32. */
START_TEST(tf32_for_programs)
{
    enum { M = 64, K = 256, N = 64 };
    backend_opened = true;
    lg_graph *g = lg_graph_new();
    lg_value a = lg_input(g, "a", LG_F32, lg_shape_of(2, M, K)), b = lg_input(g, "b", LG_F32, lg_shape_of(2, K, N));
    lg_value y = lg_matmul(a, b, false, false);
    lg_tensor *at = lg_test_uniform(LG_F32, lg_shape_of(2, M, K), 3, 1, -1, 1);
    lg_tensor *bt = lg_test_uniform(LG_F32, lg_shape_of(2, K, N), 3, 2, -1, 1);
    lg_feed f[2] = {{a, at}, {b, bt}};
    lg_program *cpu = NULL, *gpu = NULL;
    lg_compile_opts o = lg_compile_opts_default();
    ck_assert_int_eq(lg_program_compile_opts(g, f, 2, &y, 1, o, &cpu), LG_OK);
    o.device = "cuda:0";
    ck_assert_msg(lg_program_compile_opts(g, f, 2, &y, 1, o, &gpu) == LG_OK, "%s", lg_last_error());
    lg_tensor *ref = NULL;
    ck_assert_int_eq(lg_program_run(cpu, f, 2, &ref), LG_OK);
    ck_assert(!lg_tf32_allowed());
    for (int k = 0; k < 3; k++) {
        bool tf32 = k == 1;
        lg_allow_tf32(tf32);
        ck_assert(lg_tf32_allowed() == tf32);
        char *rep = lg_program_report(gpu);
        ck_assert_msg(strstr(rep, tf32 ? "f32 matmuls may use TF32" : "f32 matmuls in FP32"), "%s", rep);
        free(rep);
        lg_tensor *got = NULL;
        ck_assert_msg(lg_program_run(gpu, f, 2, &got) == LG_OK, "%s", lg_last_error());
        expect_close(tf32 ? "program matmul with TF32" : "program matmul in FP32", LG_F32, lg_tensor_data(got),
                     lg_tensor_data(ref), M * N, tf32 ? 2e-2 : 1e-4);
        lg_tensor_free(got);
    }
    /* captured with TF32 on (run 2): the last run, in FP32, is not that graph */
    char *rep = lg_program_report(gpu);
    ck_assert_msg(strstr(rep, "CUDA graph: captured on run 2") && strstr(rep, "kernel by kernel on 1"), "%s", rep);
    free(rep);
    lg_tensor_free(ref), lg_tensor_free(at), lg_tensor_free(bt);
    lg_program_free(cpu), lg_program_free(gpu);
    lg_graph_free(g);
}
END_TEST

START_TEST(program_on_cuda_against_cpu)
{
    int n_cpu = 0, n_gpu = 0;
    char *rep_cpu = NULL, *rep_gpu = NULL;
    backend_opened = true;
    double *cpu = train_steps(NULL, &n_cpu, &rep_cpu), *gpu = train_steps("cuda:0", &n_gpu, &rep_gpu);
    ck_assert_int_eq(n_cpu, n_gpu);
    for (int i = 0; i < n_cpu; i++)
        ck_assert_msg(fabs(gpu[i] - cpu[i]) <= 1e-9 * fmax(1, fabs(cpu[i])), "value %d: cuda %.17g, cpu %.17g", i,
                      gpu[i], cpu[i]);
    ck_assert_msg(strstr(rep_gpu, "on cuda:0") && strstr(rep_gpu, "MiB free"), "%s", rep_gpu);
    if (cudnn_refused) /* the fake cuDNN refuses: the loop runs step by step, the report says why */
        ck_assert_msg(strstr(rep_gpu, "not fused") && strstr(rep_gpu, "cuDNN could not set it up: cudnnCreate") &&
                          strstr(rep_gpu, "CUDNN_STATUS_NOT_SUPPORTED"),
                      "%s", rep_gpu);
    else
        ck_assert_msg(strstr(rep_gpu, "fused as lstm"), "%s", rep_gpu);
    free(cpu), free(gpu), free(rep_cpu), free(rep_gpu);
}
END_TEST

/* ---- programs replayed as CUDA Graphs (backend.h's capture hooks) -------- */

enum { CG_B = 4, CG_T = 5, CG_F = 3, CG_U = 6, CG_RUNS = 4 };

/* CG_RUNS runs of a hand-built recurrent cell that fuse_rnn matches to no
 * pattern, h' = sigmoid(x_t W) * tanh(h U) + h / 2 over x [B, T, F], with
 * the gradient of mean(hs^2) (so a forward and a gradient loop), compiled
 * for dev with passes_off `off`. Every run feeds new x and h0 values of the
 * same shapes, and after each the parameters take a gradient step on the
 * host (lg_param_tensor), so neither feeds nor parameters can be built into
 * a replay. Per run: the loss, h_last and both gradients, as doubles; the
 * report after the last run. */
static double *cell_runs(const char *dev, const char *off, int *n_out, char **report)
{
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, CG_B, CG_T, CG_F));
    lg_value h0 = lg_input(g, "h0", LG_F64, lg_shape_of(2, CG_B, CG_U));
    lg_value w = lg_param(g, "w", LG_F64, lg_shape_of(2, CG_F, CG_U)), u = lg_param(g, "u", LG_F64, lg_shape_of(2, CG_U, CG_U));
    ck_assert_int_eq(lg_init_uniform(lg_param_tensor(w), -1, 1, 11, 1), LG_OK);
    ck_assert_int_eq(lg_init_uniform(lg_param_tensor(u), -1, 1, 11, 2), LG_OK);
    lg_loop *l = lg_loop_new(g, "gated", lg_loop_opts_default());
    lg_value x_t = lg_loop_seq(l, x), h = lg_loop_state(l, h0);
    lg_value wb = lg_loop_invariant(l, w), ub = lg_loop_invariant(l, u);
    lg_value h_next = lg_add(lg_mul(lg_sigmoid(lg_matmul(x_t, wb, false, false)), lg_tanh(lg_matmul(h, ub, false, false))),
                             lg_scale(h, 0.5));
    lg_loop_next(l, h, h_next);
    lg_loop_emit(l, h_next);
    lg_value h_last, hs;
    ck_assert_msg(lg_loop_end(l, &h_last, &hs) == LG_OK, "%s", lg_last_error());
    lg_value loss = lg_mean(lg_square(hs), NULL, 0, false), wrt[2] = {w, u}, fetch[4] = {loss, h_last};
    ck_assert_int_eq(lg_grad(g, loss, wrt, 2, fetch + 2), LG_OK);
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, CG_B, CG_T, CG_F), 100, 1, -1, 1);
    lg_tensor *ht = lg_test_uniform(LG_F64, lg_shape_of(2, CG_B, CG_U), 200, 1, -0.5, 0.5);
    lg_feed feeds[2] = {{x, xt}, {h0, ht}};
    lg_compile_opts o = lg_compile_opts_default();
    o.device = dev;
    o.passes_off = off;
    lg_program *p = NULL;
    ck_assert_msg(lg_program_compile_opts(g, feeds, 2, fetch, 4, o, &p) == LG_OK, "%s", lg_last_error());
    double *v = malloc(CG_RUNS * (1 + CG_B * CG_U + CG_F * CG_U + CG_U * CG_U) * sizeof *v);
    int n = 0;
    for (int r = 0; r < CG_RUNS; r++) {
        lg_tensor_free(xt), lg_tensor_free(ht);
        feeds[0].tensor = xt = lg_test_uniform(LG_F64, lg_shape_of(3, CG_B, CG_T, CG_F), 100 + r, 1, -1, 1);
        feeds[1].tensor = ht = lg_test_uniform(LG_F64, lg_shape_of(2, CG_B, CG_U), 200 + r, 1, -0.5, 0.5);
        lg_tensor *out[4] = {NULL};
        ck_assert_msg(lg_program_run(p, feeds, 2, out) == LG_OK, "run %d on %s: %s", r + 1, dev ? dev : "cpu",
                      lg_last_error());
        for (int i = 0; i < 4; i++) {
            for (int64_t k = 0; k < lg_tensor_numel(out[i]); k++) v[n++] = lg_tensor_get(out[i], k);
            if (i >= 2) { /* a step on the host copy: the device copy is refreshed before the next run */
                lg_tensor *pt = lg_param_tensor(wrt[i - 2]);
                for (int64_t k = 0; k < lg_tensor_numel(pt); k++)
                    lg_tensor_set(pt, k, lg_tensor_get(pt, k) - 0.5 * lg_tensor_get(out[i], k));
            }
            lg_tensor_free(out[i]);
        }
    }
    *report = lg_program_report(p);
    *n_out = n;
    lg_program_free(p);
    lg_tensor_free(xt), lg_tensor_free(ht);
    lg_graph_free(g);
    return v;
}

static void expect_runs_equal(const char *what, const double *gpu, const double *cpu, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(gpu[i] - cpu[i]) <= 1e-9 * fmax(1, fabs(cpu[i])), "%s: value %d (run %d): cuda %.17g, cpu %.17g",
                      what, i, 1 + i * CG_RUNS / n, gpu[i], cpu[i]);
}

/* ---- training on the device ------------------------------------------------- */

/* lg_fit with .device "cuda:0" against the CPU (the path behind issue 12's
 * "the fit loop runs on the GPU with one option" and the Fashion-MNIST
 * line): dist_model.h's classifiers, 3 epochs of 72 shuffled examples in
 * batches of 16 with a last batch of 8; per epoch the training loss and
 * the validation loss, then every parameter and the evaluation, agree
 * (f64: 1e-8 relative, f32: 1e-3: 3 epochs of updates compound the
 * summation-order differences); a checkpoint saved from the device's model
 * loads on the CPU to its parameters bit for bit. The models: an LSTM with
 * Adam (a fused loop: cuDNN where it starts), a GRU with dropout and
 * recurrent dropout, which cuDNN cannot take, and batch norm (a loop run
 * step by step, its training program a CUDA graph from the second batch
 * on), with SGD and momentum; f64 and f32. */
static const dm_spec fit_specs[] = {
    {LG_CELL_LSTM, true, LG_F64, 0, false, 3},  {LG_CELL_GRU, false, LG_F64, 0.2, true, 4},
    {LG_CELL_LSTM, true, LG_F32, 0, false, 5},  {LG_CELL_GRU, false, LG_F32, 0.2, true, 6},
};
enum { FIT_EPOCHS = 3, FIT_PARAMS = 512 };

typedef struct fit_run {
    double loss[FIT_EPOCHS], val_loss[FIT_EPOCHS], params[FIT_PARAMS], eval_loss;
    int n_params;
} fit_run;

static void fit_on(const char *device, dm_spec sp, const char *checkpoint, fit_run *r)
{
    dm_model m = dm_new(sp);
    lg_dataset *ds = dm_data(sp.dtype, 72, 16), *val = dm_data(sp.dtype, 24, 16);
    lg_fit_opts o = lg_fit_opts_default();
    o.epochs = FIT_EPOCHS, o.verbose = 0, o.seed = 9, o.device = device;
    lg_status st = lg_fit(m.tr, ds, val, o);
    ck_assert_msg(st == LG_OK, "fit on %s: %s", device ? device : "cpu", lg_last_error());
    for (int e = 0; e < FIT_EPOCHS; e++) {
        r->loss[e] = lg_trainer_history(m.tr, e)->loss;
        r->val_loss[e] = lg_trainer_history(m.tr, e)->val_loss;
    }
    lg_eval_result ev;
    ck_assert_msg(lg_evaluate(m.tr, val, &ev) == LG_OK, "%s", lg_last_error());
    r->eval_loss = ev.loss;
    r->n_params = dm_params(&m, r->params, FIT_PARAMS);
    if (checkpoint) ck_assert_msg(lg_checkpoint_save(checkpoint, m.g, m.opt) == LG_OK, "%s", lg_last_error());
    lg_dataset_free(ds), lg_dataset_free(val);
    dm_free(&m);
}

START_TEST(fit_on_cuda_against_cpu)
{
    backend_opened = true;
    dm_spec sp = fit_specs[_i];
    double tol = sp.dtype == LG_F64 ? 1e-8 : 1e-3;
    char path[] = "/tmp/lg_cuda_fit_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    fit_run cpu, gpu;
    fit_on(NULL, sp, NULL, &cpu);
    fit_on("cuda:0", sp, path, &gpu);
    for (int e = 0; e < FIT_EPOCHS; e++) {
        ck_assert(isfinite(cpu.loss[e]));
        ck_assert_msg(fabs(gpu.loss[e] - cpu.loss[e]) <= tol * fmax(1, fabs(cpu.loss[e])),
                      "epoch %d loss: cuda %.17g, cpu %.17g", e + 1, gpu.loss[e], cpu.loss[e]);
        ck_assert_msg(fabs(gpu.val_loss[e] - cpu.val_loss[e]) <= tol * fmax(1, fabs(cpu.val_loss[e])),
                      "epoch %d val_loss: cuda %.17g, cpu %.17g", e + 1, gpu.val_loss[e], cpu.val_loss[e]);
    }
    ck_assert(cpu.loss[FIT_EPOCHS - 1] < cpu.loss[0]);
    ck_assert_int_eq(gpu.n_params, cpu.n_params);
    double worst = dm_max_rel(gpu.params, cpu.params, cpu.n_params);
    ck_assert_msg(worst <= tol, "parameters: worst relative difference %g", worst);
    ck_assert_msg(fabs(gpu.eval_loss - cpu.eval_loss) <= tol * fmax(1, fabs(cpu.eval_loss)),
                  "evaluate: cuda %.17g, cpu %.17g", gpu.eval_loss, cpu.eval_loss);
    dm_model m = dm_new(sp);
    ck_assert_msg(lg_checkpoint_load(path, m.g, m.opt, lg_checkpoint_opts_default()) == LG_OK, "%s", lg_last_error());
    double loaded[FIT_PARAMS];
    ck_assert_int_eq(dm_params(&m, loaded, FIT_PARAMS), gpu.n_params);
    ck_assert_msg(dm_bit_equal(loaded, gpu.params, gpu.n_params), "the device's checkpoint loads other values");
    dm_free(&m);
    unlink(path);
}
END_TEST

/* A loop the executor runs step by step: its second run captured, the
 * later ones replayed, each with new feeds and parameters and equal to the
 * CPU; switched off (graph_capture in passes_off), the same values and a
 * report that says so. */
START_TEST(loop_program_replayed_as_a_graph)
{
    backend_opened = true;
    int n_cpu = 0, n_gpu = 0, n_off = 0;
    char *rep_cpu = NULL, *rep_gpu = NULL, *rep_off = NULL;
    double *cpu = cell_runs(NULL, NULL, &n_cpu, &rep_cpu), *gpu = cell_runs("cuda:0", NULL, &n_gpu, &rep_gpu);
    double *off = cell_runs("cuda:0", "graph_capture", &n_off, &rep_off);
    ck_assert_int_eq(n_cpu, n_gpu);
    ck_assert_int_eq(n_cpu, n_off);
    expect_runs_equal("captured", gpu, cpu, n_cpu);
    expect_runs_equal("capture switched off", off, cpu, n_cpu);
    ck_assert_msg(strstr(rep_gpu, "loop 'gated'") && !strstr(rep_gpu, "fused as"), "%s", rep_gpu);
    ck_assert_msg(strstr(rep_gpu, "CUDA graph: captured on run 2") && strstr(rep_gpu, "launched on 3 runs, kernel by kernel on 0"),
                  "%s", rep_gpu);
    ck_assert_msg(strstr(rep_off, "CUDA graph: not captured: switched off"), "%s", rep_off);
    ck_assert_msg(!strstr(rep_cpu, "CUDA graph"), "%s", rep_cpu);
    free(cpu), free(gpu), free(off), free(rep_cpu), free(rep_gpu), free(rep_off);
}
END_TEST

/* A loop with a stop condition reads its flag back after every step: not
 * captured, the report says why, and runs with feeds that stop it at
 * different steps equal the CPU's. */
static double *stop_runs(const char *dev, int *n_out, char **report)
{
    enum { B = 2, T = 6, F = 3 };
    lg_graph *g = lg_graph_new();
    lg_value x = lg_input(g, "x", LG_F64, lg_shape_of(3, B, T, F)), s0 = lg_input(g, "s0", LG_F64, lg_shape_of(2, B, F));
    lg_loop *l = lg_loop_new(g, "until", lg_loop_opts_default());
    lg_value x_t = lg_loop_seq(l, x), s = lg_loop_state(l, s0);
    lg_value s_next = lg_add(s, lg_square(x_t));
    lg_loop_next(l, s, s_next);
    lg_loop_emit(l, lg_tanh(s_next));
    lg_loop_until(l, lg_compare(lg_sum(s_next, NULL, 0, false), lg_scalar(lg_loop_body(l), LG_F64, 4.0), LG_CMP_GT));
    lg_value fetch[2];
    ck_assert_msg(lg_loop_end(l, &fetch[0], &fetch[1]) == LG_OK, "%s", lg_last_error());
    lg_tensor *xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 300, 1, -1, 1);
    lg_tensor *st = lg_test_uniform(LG_F64, lg_shape_of(2, B, F), 400, 1, 0, 0.5);
    lg_feed feeds[2] = {{x, xt}, {s0, st}};
    lg_compile_opts o = lg_compile_opts_default();
    o.device = dev;
    lg_program *p = NULL;
    ck_assert_msg(lg_program_compile_opts(g, feeds, 2, fetch, 2, o, &p) == LG_OK, "%s", lg_last_error());
    double *v = malloc(CG_RUNS * (B * F + B * T * F) * sizeof *v);
    int n = 0;
    for (int r = 0; r < CG_RUNS; r++) {
        lg_tensor_free(xt);
        feeds[0].tensor = xt = lg_test_uniform(LG_F64, lg_shape_of(3, B, T, F), 300 + r, 1, -0.5 - r, 0.5 + r);
        lg_tensor *out[2] = {NULL};
        ck_assert_msg(lg_program_run(p, feeds, 2, out) == LG_OK, "run %d: %s", r + 1, lg_last_error());
        for (int i = 0; i < 2; i++) {
            for (int64_t k = 0; k < lg_tensor_numel(out[i]); k++) v[n++] = lg_tensor_get(out[i], k);
            lg_tensor_free(out[i]);
        }
    }
    *report = lg_program_report(p);
    *n_out = n;
    lg_program_free(p);
    lg_tensor_free(xt), lg_tensor_free(st);
    lg_graph_free(g);
    return v;
}

START_TEST(stop_condition_not_captured)
{
    backend_opened = true;
    int n_cpu = 0, n_gpu = 0;
    char *rep_cpu = NULL, *rep_gpu = NULL;
    double *cpu = stop_runs(NULL, &n_cpu, &rep_cpu), *gpu = stop_runs("cuda:0", &n_gpu, &rep_gpu);
    ck_assert_int_eq(n_cpu, n_gpu);
    expect_runs_equal("stop condition", gpu, cpu, n_cpu);
    ck_assert_msg(strstr(rep_gpu, "CUDA graph: not captured: loop 'until' has a stop condition"), "%s", rep_gpu);
    free(cpu), free(gpu), free(rep_cpu), free(rep_gpu);
}
END_TEST

/* A gather launched from a replayed graph still reports a bad index at the
 * run's sync, naming its node (the graph puts back its kernels' error
 * sites), once: the next run is fine again. Another program's gather,
 * captured too, runs between them on the same context (as a validation
 * program between training runs), so the sites must be put back, not
 * found where the capture left them. */
START_TEST(replayed_gather_names_a_bad_index)
{
    backend_opened = true;
    lg_graph *g = lg_graph_new();
    lg_value table = lg_input(g, "table", LG_F32, lg_shape_of(2, 5, 3)), idx = lg_input(g, "idx", LG_I32, lg_shape_of(1, 4));
    lg_value other_idx = lg_input(g, "other_idx", LG_I32, lg_shape_of(1, 2));
    lg_value y = lg_tanh(lg_gather(table, idx));
    lg_scope_push(g, "other");
    lg_value other = lg_gather(table, other_idx);
    lg_scope_pop(g);
    const char *gather_name = g->nodes[g->nodes[y.node].in[0].node].name;
    lg_tensor *tt = lg_test_uniform(LG_F32, lg_shape_of(2, 5, 3), 500, 1, -1, 1), *it = NULL, *ot = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, 4), &it), LG_OK);
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, 2), &ot), LG_OK);
    lg_feed feeds[2] = {{table, tt}, {idx, it}}, other_feeds[2] = {{table, tt}, {other_idx, ot}};
    lg_compile_opts o = lg_compile_opts_default();
    o.device = "cuda:0";
    lg_program *p = NULL, *q = NULL;
    ck_assert_msg(lg_program_compile_opts(g, feeds, 2, &y, 1, o, &p) == LG_OK, "%s", lg_last_error());
    ck_assert_msg(lg_program_compile_opts(g, other_feeds, 2, &other, 1, o, &q) == LG_OK, "%s", lg_last_error());
    static const int32_t runs[5][4] = {{0, 1, 2, 3}, {4, 3, 2, 1}, {1, 1, 4, 0}, {0, 4, 7, 1}, {2, 0, 3, 4}};
    for (int r = 0; r < 5; r++) {
        lg_tensor *got = NULL;
        if (r > 0) { /* after p's run r: q is captured after p and writes its own sites over p's */
            lg_tensor_set(ot, 0, r), lg_tensor_set(ot, 1, 4 - r);
            ck_assert_msg(lg_program_run(q, other_feeds, 2, &got) == LG_OK, "the other program, run %d: %s", r,
                          lg_last_error());
            ck_assert(lg_tensor_get(got, 3) == lg_tensor_get(tt, (4 - r) * 3));
            lg_tensor_free(got), got = NULL;
        }
        for (int k = 0; k < 4; k++) lg_tensor_set(it, k, runs[r][k]);
        lg_status st = lg_program_run(p, feeds, 2, &got);
        if (r == 3) {
            ck_assert_int_eq(st, LG_ERR_RUNTIME);
            char want[160];
            snprintf(want, sizeof want, "gather '%s': index 7 outside [0, 5)", gather_name);
            ck_assert_msg(strstr(lg_last_error(), want), "'%s' lacks '%s'", lg_last_error(), want);
            ck_assert_ptr_null(got);
            continue;
        }
        ck_assert_msg(st == LG_OK, "run %d: %s", r + 1, lg_last_error());
        for (int k = 0; k < 4; k++)
            for (int c = 0; c < 3; c++) {
                double want = tanh(lg_tensor_get(tt, runs[r][k] * 3 + c)), have = lg_tensor_get(got, k * 3 + c);
                ck_assert_msg(fabs(have - want) <= 1e-6, "run %d [%d, %d]: %.9g, want %.9g", r + 1, k, c, have, want);
            }
        lg_tensor_free(got);
    }
    char *rep = lg_program_report(p);
    ck_assert_msg(strstr(rep, "CUDA graph: captured on run 2") && strstr(rep, "launched on 4 runs"), "%s", rep);
    free(rep);
    rep = lg_program_report(q);
    ck_assert_msg(strstr(rep, "CUDA graph: captured on run 2") && strstr(rep, "launched on 3 runs"), "%s", rep);
    free(rep);
    lg_program_free(p), lg_program_free(q);
    lg_tensor_free(tt), lg_tensor_free(it), lg_tensor_free(ot);
    lg_graph_free(g);
}
END_TEST

/* A feed that lives in a mirror (here a parameter's tensor) is read where
 * the mirror keeps it, so feeding another such tensor moves the feed: that
 * run goes kernel by kernel, and the graph is kept for runs at the
 * addresses it was captured with. */
START_TEST(moved_feed_runs_kernel_by_kernel)
{
    backend_opened = true;
    lg_graph *g = lg_graph_new();
    lg_value a = lg_param(g, "a", LG_F32, lg_shape_of(1, 6)), b = lg_param(g, "b", LG_F32, lg_shape_of(1, 6));
    lg_value x = lg_input(g, "x", LG_F32, lg_shape_of(1, 6)), y = lg_add(x, x);
    for (int k = 0; k < 6; k++) lg_tensor_set(lg_param_tensor(a), k, k), lg_tensor_set(lg_param_tensor(b), k, 10 + k);
    lg_feed feed = {x, lg_param_tensor(a)};
    lg_compile_opts o = lg_compile_opts_default();
    o.device = "cuda:0";
    lg_program *p = NULL;
    ck_assert_msg(lg_program_compile_opts(g, &feed, 1, &y, 1, o, &p) == LG_OK, "%s", lg_last_error());
    static const bool from_b[5] = {false, false, true, false, true};
    for (int r = 0; r < 5; r++) {
        feed.tensor = lg_param_tensor(from_b[r] ? b : a);
        lg_tensor *got = NULL;
        ck_assert_msg(lg_program_run(p, &feed, 1, &got) == LG_OK, "run %d: %s", r + 1, lg_last_error());
        for (int k = 0; k < 6; k++)
            ck_assert_msg(lg_tensor_get(got, k) == 2.0 * (from_b[r] ? 10 + k : k), "run %d [%d]: %g", r + 1, k,
                          lg_tensor_get(got, k));
        lg_tensor_free(got);
    }
    char *rep = lg_program_report(p);
    ck_assert_msg(strstr(rep, "CUDA graph: captured on run 2") && strstr(rep, "launched on 2 runs, kernel by kernel on 2"),
                  "%s", rep);
    free(rep);
    lg_program_free(p);
    lg_graph_free(g);
}
END_TEST

/* "cudasync:0": cuda:0 that waits for the device after every kernel (as a
 * debugging mode would), which no capture allows. */

static lg_status run_then_sync(const lg_backend *b, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)b;
    lg_status st = cuda0->run_op(cuda0, n, in, out);
    return st ? st : cuda0->sync(cuda0);
}

static void sync_after_each_kernel(lg_backend *b) { b->run_op = run_then_sync; }

/* A run whose kernels sync cannot be captured: the capture fails, the run
 * and the later ones go on kernel by kernel, equal to the CPU, and the
 * report says what failed. */
START_TEST(failed_capture_runs_plainly)
{
    register_wrapped("cudasync", sync_after_each_kernel);
    int n_cpu = 0, n_gpu = 0;
    char *rep_cpu = NULL, *rep_gpu = NULL;
    double *cpu = cell_runs(NULL, NULL, &n_cpu, &rep_cpu), *gpu = cell_runs("cudasync:0", NULL, &n_gpu, &rep_gpu);
    ck_assert_int_eq(n_cpu, n_gpu);
    expect_runs_equal("after a failed capture", gpu, cpu, n_cpu);
    ck_assert_msg(strstr(rep_gpu, "CUDA graph: not captured: capture failed: ") && strstr(rep_gpu, "cudaStreamSynchronize") &&
                      strstr(rep_gpu, "cudaErrorStreamCaptureUnsupported"),
                  "%s", rep_gpu);
    free(cpu), free(gpu), free(rep_cpu), free(rep_gpu);
}
END_TEST

/* "cudafail:0": cuda:0 whose tanh kernels fail on the host, as a launch or a
 * library call can, after the kernels before them were queued. */

static lg_status run_or_fail(const lg_backend *b, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)b;
    if (n->op == LG_OP_TANH) return lg_fail(LG_ERR_RUNTIME, "tanh '%s': an injected failure", n->name);
    return cuda0->run_op(cuda0, n, in, out);
}

static void fail_tanh(lg_backend *b) { b->run_op = run_or_fail; }

/* A gather records a bad index, then the run fails before its sync, and its
 * program is freed. The run reports its own failure, freeing keeps that
 * message, and the next program's run on the same device neither reports
 * the freed program's bad index as its own nor reads its freed nodes. */
START_TEST(failed_run_leaves_nothing_behind)
{
    register_wrapped("cudafail", fail_tanh);
    lg_tensor *tt = lg_test_uniform(LG_F32, lg_shape_of(2, 5, 3), 501, 1, -1, 1), *it = NULL, *got = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, 4), &it), LG_OK);
    static const int32_t bad[4] = {0, 4, 7, 1}, good[4] = {3, 0, 4, 2};
    for (int pass = 0; pass < 2; pass++) {
        lg_graph *g = lg_graph_new();
        lg_value table = lg_input(g, "table", LG_F32, lg_shape_of(2, 5, 3)), idx = lg_input(g, "idx", LG_I32, lg_shape_of(1, 4));
        lg_value y = lg_tanh(lg_gather(table, idx));
        lg_feed feeds[2] = {{table, tt}, {idx, it}};
        lg_compile_opts o = lg_compile_opts_default();
        o.device = pass == 0 ? "cudafail:0" : "cuda:0";
        lg_program *p = NULL;
        ck_assert_msg(lg_program_compile_opts(g, feeds, 2, &y, 1, o, &p) == LG_OK, "%s", lg_last_error());
        for (int k = 0; k < 4; k++) lg_tensor_set(it, k, pass == 0 ? bad[k] : good[k]);
        lg_status st = lg_program_run(p, feeds, 2, &got);
        lg_program_free(p);
        lg_graph_free(g);
        if (pass == 0) {
            ck_assert_int_eq(st, LG_ERR_RUNTIME);
            ck_assert_msg(strstr(lg_last_error(), "an injected failure"), "%s", lg_last_error());
            ck_assert_ptr_null(got);
            continue;
        }
        ck_assert_msg(st == LG_OK, "the next program's run: %s", lg_last_error());
        for (int k = 0; k < 4; k++)
            for (int c = 0; c < 3; c++) {
                double want = tanh(lg_tensor_get(tt, good[k] * 3 + c)), have = lg_tensor_get(got, k * 3 + c);
                ck_assert_msg(fabs(have - want) <= 1e-6, "[%d, %d]: %.9g, want %.9g", k, c, have, want);
            }
    }
    lg_tensor_free(got), lg_tensor_free(tt), lg_tensor_free(it);
}
END_TEST

/* The context's capture (cuda_graph.c): a sync inside it is refused and
 * breaks it, ending it reports that and leaves the stream usable; a good
 * capture replays its memset on every launch. */
START_TEST(capture_refuses_a_sync)
{
    float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    void *d = dev_copy(ones, sizeof ones);
    lg_cuda_graph *graph = (lg_cuda_graph *)1;
    size_t nodes = 1;
    ck_assert_int_eq(lg_cuda_capture_begin(ctx), LG_OK);
    ck_assert_int_eq(lg_cuda_memset0(ctx, d, sizeof ones), LG_OK);
    ck_assert_int_eq(lg_cuda_sync(ctx), LG_ERR_RUNTIME);
    ck_assert_msg(strstr(lg_last_error(), "cudaErrorStreamCaptureUnsupported"), "%s", lg_last_error());
    ck_assert_int_ne(lg_cuda_capture_end(ctx, true, &graph, &nodes), LG_OK);
    ck_assert_msg(strstr(lg_last_error(), "cudaStreamEndCapture") && strstr(lg_last_error(), "cudaErrorStreamCaptureInvalidated"),
                  "%s", lg_last_error());
    ck_assert_ptr_null(graph);
    ck_assert_int_eq(nodes, 0);
    ck_assert_msg(lg_cuda_sync(ctx) == LG_OK, "%s", lg_last_error());
    float *h = host_from(d, sizeof ones);
    ck_assert(h[0] == 1 && h[7] == 1); /* the memset was captured, not run */
    free(h);
    ck_assert_int_eq(lg_cuda_capture_begin(ctx), LG_OK);
    ck_assert_int_eq(lg_cuda_memset0(ctx, d, sizeof ones), LG_OK);
    ck_assert_msg(lg_cuda_capture_end(ctx, true, &graph, &nodes) == LG_OK, "%s", lg_last_error());
    ck_assert_ptr_nonnull(graph);
    ck_assert_int_eq(nodes, 1);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(lg_cuda_copy_h2d(ctx, d, ones, sizeof ones), LG_OK);
        ck_assert_int_eq(lg_cuda_graph_launch(ctx, graph), LG_OK);
        h = host_from(d, sizeof ones);
        ck_assert(h[0] == 0 && h[7] == 0);
        free(h);
    }
    lg_cuda_graph_free(graph);
    lg_cuda_free(ctx, d);
}
END_TEST

/* ---- every gradcheck row on "cuda:0" (gradcheck_rows.h) ------------------- */

/* Row `row` with its gradients, compiled for dev and run once on the row's
 * feeds: the loss, then d loss / d wrt[i] for each i in row order, every
 * element as a double (*n_out of them). A row the device refuses fails the
 * test, naming the row and the error: no row is skipped. */
static double *gradcheck_row_run(int row, const char *dev, int *n_out)
{
    const char *name = gc_row_name(row), *where = dev ? dev : "cpu";
    gc_built b;
    gc_row_build(row, &b);
    ck_assert_msg(!lg_graph_error(b.graph), "%s: graph error: %s", name, lg_graph_error(b.graph));
    lg_value fetch[1 + GC_MAX_IN];
    fetch[0] = b.loss;
    lg_status st = lg_grad(b.graph, b.loss, b.wrt, b.n_wrt, fetch + 1);
    ck_assert_msg(st == LG_OK, "%s: lg_grad: %s", name, lg_last_error());
    lg_compile_opts o = lg_compile_opts_default();
    o.device = dev;
    lg_program *p = NULL;
    st = lg_program_compile_opts(b.graph, b.feeds, b.n_feeds, fetch, 1 + b.n_wrt, o, &p);
    ck_assert_msg(st == LG_OK, "%s: compiling for %s: %s: %s", name, where, lg_status_name(st), lg_last_error());
    lg_tensor *out[1 + GC_MAX_IN] = {NULL};
    st = lg_program_run(p, b.feeds, b.n_feeds, out);
    ck_assert_msg(st == LG_OK, "%s: running on %s: %s: %s", name, where, lg_status_name(st), lg_last_error());
    ck_assert_msg(lg_tensor_numel(out[0]) == 1, "%s: the loss has %lld elements", name,
                  (long long)lg_tensor_numel(out[0]));
    double *v = malloc((size_t)(1 + b.wrt_elems) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    long long n = 0;
    for (int i = 0; i <= b.n_wrt; i++) {
        for (int64_t k = 0; k < lg_tensor_numel(out[i]) && n <= b.wrt_elems; k++) v[n++] = lg_tensor_get(out[i], k);
        lg_tensor_free(out[i]);
    }
    ck_assert_msg(n == 1 + b.wrt_elems, "%s on %s: %lld values fetched, expected the loss and %lld gradient elements",
                  name, where, n, b.wrt_elems);
    *n_out = (int)n;
    lg_program_free(p);
    gc_built_free(&b);
    return v;
}

/* Row _i's loss and every gradient element on cuda:0 against the CPU, in
 * f64: each row builds the same graph, parameters and feeds every time. */
START_TEST(gradcheck_rows_against_cpu)
{
    const char *name = gc_row_name(_i);
    int n_cpu = 0, n_gpu = 0;
    backend_opened = true;
    double *cpu = gradcheck_row_run(_i, NULL, &n_cpu), *gpu = gradcheck_row_run(_i, "cuda:0", &n_gpu);
    ck_assert_int_eq(n_cpu, n_gpu);
    for (int i = 0; i < n_cpu; i++)
        ck_assert_msg(fabs(gpu[i] - cpu[i]) <= 1e-10 * fmax(1, fabs(cpu[i])),
                      "%s: %s %d: cuda %.17g, cpu %.17g (value 0 is the loss, then the gradients in wrt order)", name,
                      i == 0 ? "loss, value" : "gradient, value", i, gpu[i], cpu[i]);
    free(cpu), free(gpu);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("ops");
    tcase_add_checked_fixture(tc, ctx_setup, ctx_teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, every_op_against_cpu, 0, (int)N_ROWS);
    tcase_add_test(tc, every_kernel_has_a_row);
    tcase_add_test(tc, tf32_opt_in);
    tcase_add_test(tc, out_of_memory_names_the_bytes);
    tcase_add_test(tc, no_such_device);
    tcase_add_test(tc, bad_gather_index_reported_at_sync);
    tcase_add_test(tc, bad_label_reported_at_sync);
    tcase_add_loop_test(tc, optimizers_against_cpu, 0, OPT_COUNT);
    tcase_add_test(tc, global_norm);
    if (!cudnn_refused) {
        tcase_add_loop_test(tc, cudnn_rnn_against_cpu, 0, (int)N_RNN_CASES);
        tcase_add_test(tc, cudnn_backward_needs_a_training_forward);
        tcase_add_test(tc, cudnn_refuses_sizes_past_int);
    }
    tcase_add_test(tc, program_on_cuda_against_cpu);
    tcase_add_test(tc, tf32_for_programs);
    tcase_add_test(tc, capture_refuses_a_sync);
    tcase_add_test(tc, loop_program_replayed_as_a_graph);
    tcase_add_test(tc, stop_condition_not_captured);
    tcase_add_test(tc, replayed_gather_names_a_bad_index);
    tcase_add_test(tc, moved_feed_runs_kernel_by_kernel);
    tcase_add_test(tc, failed_capture_runs_plainly);
    tcase_add_test(tc, failed_run_leaves_nothing_behind);
    tcase_add_loop_test(tc, fit_on_cuda_against_cpu, 0, (int)(sizeof fit_specs / sizeof fit_specs[0]));
    if (!cudnn_refused) {
        tcase_add_loop_test(tc, fused_rnn_on_cudnn_against_cpu, 0, (int)N_FUSED_CASES);
        tcase_add_test(tc, bidirectional_stack_refused_by_the_plan);
        tcase_add_test(tc, rnn_plan_sizes_from_cudnn);
        tcase_add_loop_test(tc, two_losses_on_cudnn_against_cpu, 0, 2);
    }
    tcase_add_loop_test(tc, gradcheck_rows_against_cpu, 0, gc_row_count());
    suite_add_tcase(s, tc);
    return s;
}

/* ---- host side: runs on every machine with the toolkit ---------------------- */

/* CUDA results as statuses: the call and purpose named, plain words for a
 * missing GPU or driver, out of memory as LG_ERR_OUT_OF_MEMORY. */
START_TEST(cuda_errors_as_status)
{
    ck_assert_int_eq(lg_cuda_status(cudaSuccess, "cudaMalloc", "x"), LG_OK);
    ck_assert_int_eq(lg_cuda_status(cudaErrorNoDevice, "cudaGetDeviceCount", "looking for GPUs"), LG_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(lg_last_error(), "cudaGetDeviceCount (looking for GPUs): no CUDA-capable GPU is present"),
                  "%s", lg_last_error());
    ck_assert_int_eq(lg_cuda_status(cudaErrorInsufficientDriver, "cudaSetDevice", "cuda:0"), LG_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(lg_last_error(), "cudaSetDevice (cuda:0): the NVIDIA driver is missing or older"), "%s",
                  lg_last_error());
    ck_assert_int_eq(lg_cuda_status(cudaErrorMemoryAllocation, "cudaMallocAsync", "4096 bytes"), LG_ERR_OUT_OF_MEMORY);
    ck_assert_msg(strstr(lg_last_error(), "4096 bytes") && strstr(lg_last_error(), "out of device memory"), "%s",
                  lg_last_error());
    ck_assert_int_eq(lg_cuda_status(cudaErrorIllegalAddress, "cudaStreamSynchronize", "cuda:0"), LG_ERR_RUNTIME);
    ck_assert_msg(strstr(lg_last_error(), "cudaStreamSynchronize (cuda:0): cudaErrorIllegalAddress"), "%s",
                  lg_last_error());
    lg_graph *g = lg_graph_new();
    lg_value v = lg_tanh(lg_input(g, "h", LG_F32, lg_shape_of(1, 3)));
    ck_assert_int_eq(lg_cuda_launched(cudaErrorInvalidConfiguration, &g->nodes[v.node]), LG_ERR_RUNTIME);
    ck_assert_msg(strstr(lg_last_error(), g->nodes[v.node].name) && strstr(lg_last_error(), "cudaErrorInvalidConfiguration"),
                  "%s", lg_last_error());
    lg_graph_free(g);
}
END_TEST

/* Without a GPU (or driver) the context refuses, saying so plainly. */
START_TEST(no_gpu_refusal)
{
    int count = 0;
    if (cudaGetDeviceCount(&count) == cudaSuccess && count > 0) return; /* the 'cuda' suite covers this machine */
    lg_cuda_ctx *c = (lg_cuda_ctx *)1;
    ck_assert_int_eq(lg_cuda_ctx_new(0, &c), LG_ERR_UNSUPPORTED);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(lg_last_error(), "cudaGetDeviceCount") &&
                      (strstr(lg_last_error(), "no CUDA-capable GPU") || strstr(lg_last_error(), "NVIDIA driver is missing")),
                  "%s", lg_last_error());
}
END_TEST

/* cuBLAS (about 210 MB with cuBLASLt) is not mapped until a device asks
 * for it (cuda_cublas.h), and a library that is missing, or is not cuBLAS,
 * is refused naming it. */
START_TEST(cublas_opened_on_demand)
{
#define STR_(x) #x
#define STR(x) STR_(x)
    const char *soname = "libcublas.so." STR(CUBLAS_VER_MAJOR);
    ck_assert_msg(!dlopen(soname, RTLD_NOW | RTLD_NOLOAD), "%s is loaded before any device asked for it", soname);
    lg_cublas_api api;
    ck_assert_int_eq(lg_cublas_open(&api, NULL), LG_OK);
    ck_assert(api.create && api.destroy && api.set_stream && api.gemm_strided_batched && api.status_string);
    ck_assert_str_eq(api.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
    ck_assert_msg(dlopen(soname, RTLD_NOW | RTLD_NOLOAD), "%s is not loaded after lg_cublas_open", soname);

    ck_assert_int_eq(lg_cublas_open(&api, "libcublas_absent.so.0"), LG_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(lg_last_error(), "cuBLAS could not be loaded") && strstr(lg_last_error(), "libcublas_absent.so.0"),
                  "%s", lg_last_error());
    ck_assert_ptr_null(api.create);
    ck_assert_int_eq(lg_cublas_open(&api, "libm.so.6"), LG_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(lg_last_error(), "lacks cublasCreate_v2"), "%s", lg_last_error());
    ck_assert_ptr_null(api.create);
#undef STR
#undef STR_
}
END_TEST

static Suite *host_suite(void)
{
    Suite *s = suite_create("cuda_host");
    TCase *tc = tcase_create("host");
    tcase_add_test(tc, cuda_errors_as_status);
    tcase_add_test(tc, no_gpu_refusal);
    tcase_add_test(tc, cublas_opened_on_demand);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--host") == 0) return lg_check_run(host_suite());
    /* Is there a GPU? Ask before Check runs anything, and say why not. */
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        printf("SKIP: the CUDA suite needs a GPU and its driver; cudaGetDeviceCount: %s\n",
               e == cudaSuccess ? "no CUDA device found" : cudaGetErrorString(e));
        return 77;
    }
    const char *refuse = getenv("LG_CUDA_EMU_CUDNN");
    cudnn_refused = cuda_emulated && refuse && strcmp(refuse, "refuse") == 0;
    if (cuda_emulated)
        printf("CUDA emulation (tests/cuda_emu): kernels as host code, fake cudart/cuBLAS, %s\n",
               cudnn_refused ? "a cuDNN that refuses to start, so cudnn_rnn_against_cpu, "
                               "cudnn_backward_needs_a_training_forward, fused_rnn_on_cudnn_against_cpu and "
                               "rnn_plan_sizes_from_cudnn are not run"
                             : "a host model of cuDNN's RNN API");
    SRunner *sr = srunner_create(suite());
    srunner_set_fork_status(sr, CK_NOFORK); /* CUDA contexts do not survive fork() */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
