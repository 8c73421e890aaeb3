/*
 * cpu_rnn.c — CPU kernels of the fused recurrent op pair (src/ops/rnn.h).
 *
 * Forward: the input projection x W + b of every step is one GEMM into the
 * workspace's gate plane; each step then adds h_{t-1} U with one GEMM
 * (beta = 1, straight into that step's gate block) and one pass over the
 * [B, G H] block applies the activations (vector sigmoid/tanh for f32) and
 * the state update. Backward walks the steps in reverse, turning each
 * step's cotangent into pre-activation gate gradients (kept for all steps in
 * rnn_grad's scratch) and dh_{t-1} with one GEMM against U^T; then dW, dU,
 * db and dx are one GEMM or one column sum each over all T B rows. Every
 * GEMM reads its operands in place through gemm.h's transpose flags.
 * LSTMs and GRUs of RNN_COL_UNITS units or more run their steps split by
 * units instead, with products of their own (see cpu_rnn_kernels.h).
 * The kernels themselves are cpu_rnn_impl.h, built once per element type
 * (cpu_rnn_f32.c, cpu_rnn_f64.c); this file builds a node's context and
 * runs merged nodes (both directions, stacks) part by part.
 *
 * Workspace planes, each [T, B, width H], at these offsets (in H units, times
 * T B H elements):
 *   SimpleRNN  gate 0 (h' after the activation), hprev 1
 *   LSTM       gate 0 (i, f, c~, o after activation), cprev 4, hprev 5,
 *              tanhc 6 (tanh of the new c)
 *   GRU        gate 0 (z, r, h~ activated), hg 3 (h U + b_rec: r multiplies
 *              its h block; the unit split writes only that block), hprev 6
 *   GRU reset before   gate 0, rh 3 (r * h_{t-1}, U_h's input), hprev 4
 */
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_rnn_kernels.h"
#include "backends/cpu/cpu_rnn_select.h"

static const lg_rnn_planes planes_of[] = {
    [LG_RNN_SIMPLE_TANH] = {.gate = 0, .hprev = 1},
    [LG_RNN_SIMPLE_RELU] = {.gate = 0, .hprev = 1},
    [LG_RNN_LSTM] = {.gate = 0, .cprev = 4, .hprev = 5, .tanhc = 6},
    [LG_RNN_GRU] = {.gate = 0, .hg = 3, .hprev = 6},
    [LG_RNN_GRU_RESET_BEFORE] = {.gate = 0, .rh = 3, .hprev = 4},
};
_Static_assert(LG_ARRAY_LEN(planes_of) == LG_RNN_CELL_COUNT, "a planes_of row per lg_rnn_cell");

/* c->first for LG_RNN_REPEAT (freed by the caller); LG_OK without. */
static lg_status first_valid(lg_rnn_ctx *c, unsigned flags)
{
    if (!(flags & LG_RNN_REPEAT)) return LG_OK;
    c->first = malloc((size_t)(c->B > 0 ? c->B : 1) * sizeof *c->first);
    if (!c->first) return lg_fail(LG_ERR_OUT_OF_MEMORY, "rnn '%s': out of memory", c->name);
    for (int64_t b = 0; b < c->B; b++) {
        int64_t s = 0;
        while (s < c->steps && !rnn_valid(c, c->reverse ? c->steps - 1 - s : s, b)) s++;
        c->first[b] = s;
    }
    return LG_OK;
}

/* Parts to split the batch into: the thread budget, where each part's
 * step (its recurrent GEMM) is worth a wake-up: at least RNN_PART_FLOPS
 * and RNN_PART_ROWS rows. A forced count (tests) is taken as it is. */
enum { RNN_PART_FLOPS = 1 << 18, RNN_PART_ROWS = 4 };

/* Whether a cell of H units splits its units (above). */
static bool rnn_cols(lg_rnn_cell cell, int64_t H)
{
    return (cell == LG_RNN_LSTM || cell == LG_RNN_GRU) && H >= RNN_COL_UNITS;
}

/* Parts for a thread count n (see above). */
static int parts_of(const lg_rnn_ctx *c, int n)
{
    if (c->cols) return (int)(n < rnn_tiles(c) ? n : rnn_tiles(c));
    while (n > 1 && (c->B / n < RNN_PART_ROWS || 2.0 * (double)(c->B / n) * (double)c->GH * (double)c->H < RNN_PART_FLOPS))
        n--;
    return n;
}

static int parts_for(const lg_rnn_ctx *c, lg_dtype dt)
{
    int forced = lg_cpu_threads_forced();
    if (!forced) return parts_of(c, lg_cpu_threads(dt));
    if (c->cols) return parts_of(c, forced);
    return (int)(forced < c->B ? forced : c->B > 0 ? c->B : 1);
}

/* The context of an rnn node, or of an rnn_grad node (grad). */
static lg_rnn_ctx ctx_of(const lg_node *n, const lg_buf *in, bool grad)
{
    lg_rnn_ctx c = {.name = n->name, .cell = lg_rnn_node_cell(n)};
    unsigned flags = lg_rnn_node_flags(n);
    c.L = lg_rnn_layout_of(c.cell, flags);
    c.reverse = flags & LG_RNN_REVERSE;
    c.forward_only = flags & LG_RNN_FORWARD_ONLY;
    c.steps = in[c.L.x].shape.dims[0];
    c.B = in[c.L.x].shape.dims[1];
    c.I = in[c.L.x].shape.dims[2];
    c.H = in[c.L.u].shape.dims[0];
    c.GH = in[c.L.u].shape.dims[1];
    c.scratch = lg_rnn_scratch_width(c.cell);
    c.ws_width = (int64_t)lg_rnn_ws_planes(c.cell) * c.H;
    c.planes = planes_of[c.cell];
    int mask_at = grad ? c.L.g_mask : c.L.mask, hmask_at = grad ? c.L.g_hmask : c.L.hmask;
    c.mask = mask_at >= 0 ? &in[mask_at] : NULL;
    c.hmask = hmask_at >= 0 ? in[hmask_at].data : NULL;
    c.cols = rnn_cols(c.cell, c.H);
    c.parts = parts_for(&c, in[c.L.x].dtype);
    return c;
}

int lg_cpu_rnn_parts(lg_rnn_cell cell, lg_dtype dt, int64_t B, int64_t H)
{
    lg_rnn_ctx c = {.cell = cell, .B = B, .H = H, .GH = (int64_t)lg_rnn_cell_gates(cell) * H};
    c.cols = rnn_cols(cell, H);
    return parts_of(&c, lg_gemm_budget(dt));
}

static lg_status rnn_one(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_rnn_ctx c = ctx_of(n, in, false);
    lg_rnn_impl impl; /* cpu_rnn_select.c: these kernels or oneDNN's */
    lg_status st = lg_cpu_rnn_impl_of(n, in, &out[c.L.ws], &impl);
    if (st) return st;
#ifdef LG_HAVE_ONEDNN
    if (impl == LG_RNN_IMPL_ONEDNN) return lg_rnn_onednn_forward(n, in, out);
#endif
    c.h0 = in[c.L.h0].data;
    c.c0 = c.L.c0 >= 0 ? in[c.L.c0].data : NULL;
    st = first_valid(&c, lg_rnn_node_flags(n));
    if (!st) st = out[c.L.ys].dtype == LG_F32 ? lg_cpu_rnn_forward_f32(&c, in, out) : lg_cpu_rnn_forward_f64(&c, in, out);
    free(c.first);
    return st;
}

static lg_status rnn_grad_one(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    lg_rnn_ctx c = ctx_of(n, in, true);
    lg_rnn_impl impl;
    lg_status st = lg_cpu_rnn_impl_of(n, in, &in[c.L.g_ws], &impl);
    if (st) return st;
#ifdef LG_HAVE_ONEDNN
    if (impl == LG_RNN_IMPL_ONEDNN) return lg_rnn_onednn_backward(n, in, out);
#endif
    c.dh_T = in[c.L.g_dh].data;
    c.dc_T = c.L.g_dc >= 0 ? in[c.L.g_dc].data : NULL;
    st = first_valid(&c, lg_rnn_node_flags(n));
    if (!st) st = out[c.L.g_dx].dtype == LG_F32 ? lg_cpu_rnn_backward_f32(&c, in, out) : lg_cpu_rnn_backward_f64(&c, in, out);
    free(c.first);
    return st;
}

/* A join's value (rnn.h's lg_rnn_join: [T, B, H] side by side, or half
 * of a sum) in a buffer of its own, which the caller frees. */
static lg_status join(const lg_node *n, const lg_rnn_join *j, const lg_buf *a, const lg_buf *b, lg_buf *out)
{
    lg_port port;
    bool ok = lg_rnn_join_port(j, (lg_port){a->dtype, a->shape}, (lg_port){b->dtype, b->shape}, &port);
    LG_ASSERT(ok); /* inferred so */
    size_t es = lg_dtype_size(port.dtype);
    int64_t rows = port.shape.dims[0] * port.shape.dims[1], w = port.shape.dims[2];
    *out = (lg_buf){malloc((size_t)(rows * w) * es + 1), port.dtype, port.shape};
    if (!out->data) return lg_fail(LG_ERR_OUT_OF_MEMORY, "rnn '%s': out of memory joining its layers", n->name);
    char *y = out->data;
    const char *pa = a->data, *pb = b->data;
    for (int64_t r = 0; r < rows; r++) {
        if (j->half < 0) { /* a's row, then b's */
            int64_t wa = a->shape.dims[2];
            memcpy(y + (size_t)(r * w) * es, pa + (size_t)(r * wa) * es, (size_t)wa * es);
            memcpy(y + (size_t)(r * w + wa) * es, pb + (size_t)(r * (w - wa)) * es, (size_t)(w - wa) * es);
            continue;
        }
        int64_t at = r * 2 * w + j->half * w;
        for (int64_t i = 0; i < w; i++)
            if (port.dtype == LG_F32)
                ((float *)y)[r * w + i] = ((const float *)pa)[at + i] + ((const float *)pb)[at + i];
            else
                ((double *)y)[r * w + i] = ((const double *)pa)[at + i] + ((const double *)pb)[at + i];
    }
    return LG_OK;
}

/* A merged node (rnn.h) runs as its parts in turn: both directions, the
 * layers, or a bidirectional stack's directions layer by layer (a stacked
 * gradient from the top down), its joins made as each part needs them. */
static lg_status parts(const lg_node *n, const lg_buf *in, lg_buf *out, bool grad, lg_kernel_fn one)
{
    unsigned flags = lg_rnn_node_flags(n);
    if (!(flags & (LG_RNN_BIDIR | LG_RNN_STACK))) return one(n, in, out);
    int count = lg_rnn_parts(&n->attrs);
    lg_status st = LG_OK;
    for (int i = 0; i < count && !st; i++) {
        int64_t ints[4];
        lg_rnn_part p = lg_rnn_part_of(n, grad, lg_rnn_part_order(flags, grad, i, count), ints);
        lg_buf pin[LG_ARRAY_LEN(p.in)], joined[2] = {{0}};
        for (int j = 0; j < p.node.n_in; j++)
            if (p.in[j] != LG_RNN_JOINED) pin[j] = p.in[j] >= 0 ? in[p.in[j]] : out[-1 - p.in[j]];
        for (int k = 0; k < 2 && !st; k++) {
            const lg_rnn_join *jn = &p.join[k];
            if (jn->at < 0) continue;
            const lg_buf *a = jn->from[0] >= 0 ? &in[jn->from[0]] : &out[-1 - jn->from[0]];
            const lg_buf *b = jn->from[1] >= 0 ? &in[jn->from[1]] : &out[-1 - jn->from[1]];
            st = join(n, jn, a, b, &joined[k]);
            pin[jn->at] = joined[k];
        }
        if (!st) st = one(&p.node, pin, out + p.out);
        free(joined[0].data), free(joined[1].data);
    }
    return st;
}

lg_status lg_cpu_rnn(const lg_node *n, const lg_buf *in, lg_buf *out) { return parts(n, in, out, false, rnn_one); }

lg_status lg_cpu_rnn_grad(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    return parts(n, in, out, true, rnn_grad_one);
}
