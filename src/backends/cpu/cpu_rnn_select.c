/*
 * cpu_rnn_select.c — which implementation serves a fused recurrent op pair
 * on the CPU (cpu_rnn_select.h), decided here and nowhere else.
 *
 * The rule: f64, masked (lengths) problems, recurrent dropout (hmask) and
 * builds without oneDNN go to the hand-fused kernels (cpu_rnn.c). An f32
 * problem without masks goes to oneDNN's primitives (cpu_rnn_onednn.c)
 * where the table below says oneDNN was faster for its cell, the fused
 * kernels would run it on one thread (lg_cpu_rnn_parts: a thread budget of
 * 1, or a step too small to split), and oneDNN can build primitives for it;
 * to the fused kernels otherwise.
 * LG_RNN_IMPL=fused or LG_RNN_IMPL=onednn, read at the first plan, replaces
 * the table and the thread condition (onednn still only where oneDNN can
 * take the problem).
 *
 * Why the thread condition: on one thread oneDNN's primitives took
 * 0.72-0.87 of the fused kernels' time (bench/dnnl_rnn.c). Where the fused
 * kernels split a step over the worker pool they were faster in wall time
 * than oneDNN on one thread (idle 2-core Xeon, bench/rnn_bench: LSTM(64)
 * rows 2.5 against 4.2 ms a training step, LSTM(32) 20 against 35, GRU(32)
 * x2 40 against 66), and oneDNN on two OpenMP threads synchronises its team
 * at every step, which on a busy 2-core machine made LSTM(256) and
 * LSTM(512) steps 4-8 times slower.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "backends/cpu/cpu_rnn_select.h"

static const char *const impl_names[LG_RNN_IMPL_COUNT] = {[LG_RNN_IMPL_FUSED] = "fused",
                                                          [LG_RNN_IMPL_ONEDNN] = "onednn"};
_Static_assert(LG_ARRAY_LEN(impl_names) == LG_RNN_IMPL_COUNT, "a name per lg_rnn_impl");

/* Per cell: oneDNN serves f32 problems of at least min_units units when
 * `onednn`. From bench/dnnl_rnn.c (one layer's training step, median of 7,
 * CPU time and wall, 1 and 2 threads) and bench/rnn.sh, on a Xeon with
 * AVX-512 (oneDNN 2.6.3 JIT avx512_core_amx, OpenBLAS SkylakeX); see
 * bench/README.md for the tables. */
static const struct {
    bool onednn;
    int64_t min_units;
} table[] = {
    [LG_RNN_SIMPLE_TANH] = {false, 0},
    [LG_RNN_SIMPLE_RELU] = {false, 0},
    [LG_RNN_LSTM] = {true, 32},
    [LG_RNN_GRU] = {true, 0},
    [LG_RNN_GRU_RESET_BEFORE] = {true, 0},
};
_Static_assert(LG_ARRAY_LEN(table) == LG_RNN_CELL_COUNT, "a table row per lg_rnn_cell");

static struct {
    pthread_once_t once;
    lg_status status;
    char why[200];
    int env; /* an lg_rnn_impl, or LG_RNN_IMPL_COUNT for the table */
} env = {.once = PTHREAD_ONCE_INIT};

static _Atomic int forced = LG_RNN_IMPL_COUNT;

const char *lg_rnn_impl_name(lg_rnn_impl impl) { return (unsigned)impl < LG_RNN_IMPL_COUNT ? impl_names[impl] : "?"; }

static bool built(lg_rnn_impl impl)
{
#ifdef LG_HAVE_ONEDNN
    (void)impl;
    return true;
#else
    return impl != LG_RNN_IMPL_ONEDNN;
#endif
}

static void env_read(void)
{
    env.env = LG_RNN_IMPL_COUNT;
    const char *s = getenv("LG_RNN_IMPL");
    if (!s || !*s) return;
    for (int i = 0; i < LG_RNN_IMPL_COUNT; i++)
        if (!strcasecmp(s, impl_names[i])) {
            env.env = i;
            if (!built((lg_rnn_impl)i)) {
                env.status = LG_ERR_UNSUPPORTED;
                snprintf(env.why, sizeof env.why, "LG_RNN_IMPL=%s: this build has no onednn (meson option onednn)", s);
            }
            return;
        }
    env.status = LG_ERR_INVALID_ARGUMENT;
    snprintf(env.why, sizeof env.why, "LG_RNN_IMPL='%s': expected fused or onednn", s);
}

lg_status lg_cpu_rnn_impl_force(lg_rnn_impl impl)
{
    if ((unsigned)impl > LG_RNN_IMPL_COUNT) return lg_fail(LG_ERR_INVALID_ARGUMENT, "no rnn implementation %d", (int)impl);
    if (impl != LG_RNN_IMPL_COUNT && !built(impl))
        return lg_fail(LG_ERR_UNSUPPORTED, "this build has no %s (meson option onednn)", impl_names[impl]);
    atomic_store(&forced, (int)impl);
    return LG_OK;
}

static bool one_thread(const lg_rnn_problem *p) { return lg_cpu_rnn_parts(p->cell, p->dtype, p->B, p->H) == 1; }

lg_status lg_cpu_rnn_plan(const lg_rnn_problem *p, lg_rnn_impl *impl, int64_t *ws_width, int64_t *scratch)
{
    pthread_once(&env.once, env_read);
    if (env.status) return lg_fail(env.status, "%s", env.why);
    int64_t rows = p->T * p->B;
    *impl = LG_RNN_IMPL_FUSED;
    *ws_width = (p->flags & LG_RNN_FORWARD_ONLY) ? 0 : (int64_t)lg_rnn_ws_planes(p->cell) * p->H;
    *scratch = rows * lg_rnn_scratch_width(p->cell) * p->H + p->B * p->H;
    int want = atomic_load(&forced);
    if (want == LG_RNN_IMPL_COUNT) want = env.env;
    if (want == LG_RNN_IMPL_COUNT)
        want = table[p->cell].onednn && p->H >= table[p->cell].min_units && one_thread(p) ? LG_RNN_IMPL_ONEDNN
                                                                                          : LG_RNN_IMPL_FUSED;
    if (want != LG_RNN_IMPL_ONEDNN || p->dtype != LG_F32 || (p->flags & (LG_RNN_MASK | LG_RNN_HMASK))) return LG_OK;
#ifdef LG_HAVE_ONEDNN
    int64_t w, s;
    lg_status st = lg_rnn_onednn_sizes(p, &w, &s);
    if (st == LG_ERR_UNSUPPORTED) return LG_OK; /* oneDNN refused the shape: the fused kernels take it */
    if (st) return st;
    *impl = LG_RNN_IMPL_ONEDNN, *ws_width = w, *scratch = s;
#endif
    return LG_OK;
}

lg_status lg_cpu_rnn_impl_of(const lg_node *n, const lg_buf *in, const lg_buf *ws, lg_rnn_impl *impl)
{
    lg_rnn_cell c = lg_rnn_node_cell(n);
    unsigned flags = lg_rnn_node_flags(n);
    lg_rnn_layout L = lg_rnn_layout_of(c, flags);
    const lg_shape *x = &in[L.x].shape;
    lg_rnn_problem p = {c, flags, in[L.x].dtype, x->dims[0], x->dims[1], x->dims[2], in[L.u].shape.dims[0]};
    int64_t width, scratch;
    lg_status st = lg_cpu_rnn_plan(&p, impl, &width, &scratch);
    if (st) return st;
    if (ws->shape.dims[2] != width)
        return lg_fail(LG_ERR_SHAPE,
                       "rnn '%s': the workspace is %lld wide, the %s implementation needs %lld (compiled under "
                       "another LG_RNN_IMPL?)",
                       n->name ? n->name : "?", (long long)ws->shape.dims[2], impl_names[*impl], (long long)width);
    return LG_OK;
}

lg_status lg_rnn_cpu_sizes(lg_rnn_cell c, unsigned flags, lg_dtype dt, int64_t T, int64_t B, int64_t I, int64_t H,
                           int64_t *ws_width, int64_t *scratch)
{
    *ws_width = *scratch = -1;
    if (T < 0 || B < 0 || I < 0 || H < 0) return LG_OK;
    lg_rnn_impl impl;
    return lg_cpu_rnn_plan(&(lg_rnn_problem){c, flags, dt, T, B, I, H}, &impl, ws_width, scratch);
}
