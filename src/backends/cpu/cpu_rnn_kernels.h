/*
 * cpu_rnn_kernels.h — what the fused RNN kernels' two element types share:
 * cpu_rnn.c builds the context of a node (lg_rnn_ctx) and calls the
 * kernels, which cpu_rnn_f32.c and cpu_rnn_f64.c instantiate from
 * cpu_rnn_impl.h, one translation unit per type so the two compile at once.
 * Private to src/backends/cpu/.
 */
#ifndef LG_CPU_RNN_KERNELS_H
#define LG_CPU_RNN_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "backends/cpu/cpu.h"
#include "backends/cpu/cpu_pool.h"
#include "backends/cpu/gemm.h"
#include "ops/rnn.h"

/* The kernels in AVX-512 and AVX2 clones too, picked at load time on x86-64,
 * so the gate math's vectors (cpu_rnn_impl.h) use the machine's width (as in
 * cpu_vmath.c). */
/* Not under ThreadSanitizer: an ifunc resolver runs before its runtime is
 * up, and an instrumented one crashes the process at load. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define LG_RNN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LG_RNN_CLONES
#endif

typedef struct lg_rnn_planes {
    int64_t gate, hprev, cprev, tanhc, hg, rh;
} lg_rnn_planes;

typedef struct lg_rnn_ctx {
    const char *name;
    lg_rnn_cell cell;
    bool reverse, forward_only;
    int64_t steps, B, I, H, GH, scratch, ws_width; /* ws_width: K H */
    lg_rnn_layout L;
    lg_rnn_planes planes;
    const lg_buf *mask;         /* NULL: every step valid */
    const void *hmask;          /* [B, H] recurrent dropout (rnn.h), or NULL */
    int64_t *first;             /* LG_RNN_REPEAT: per row, the run-order index of its first
                                   valid step (steps if none); else NULL */
    const void *h0, *c0;       /* rnn: the initial states */
    const void *dh_T, *dc_T;   /* rnn_grad: the final states' cotangents */
    int parts;                 /* the batch rows split in parts run at once (1: all on this thread) */
    bool cols;                 /* the parts split the units instead (rnn_cols) */
} lg_rnn_ctx;

static inline bool rnn_valid(const lg_rnn_ctx *c, int64_t t, int64_t b)
{
    if (!c->mask) return true;
    int64_t i = t * c->B + b;
    switch (c->mask->dtype) {
    case LG_F32: return ((const float *)c->mask->data)[i] != 0;
    case LG_F64: return ((const double *)c->mask->data)[i] != 0;
    default: return ((const int32_t *)c->mask->data)[i] != 0;
    }
}

/* What row b's output is at run-order step s (time t): the step's h, zeros,
 * or (LG_RNN_REPEAT) the state h kept from the last valid step. */
typedef enum lg_rnn_out { LG_RNN_OUT_STEP, LG_RNN_OUT_ZERO, LG_RNN_OUT_REPEAT } lg_rnn_out;

static inline lg_rnn_out rnn_out_of(const lg_rnn_ctx *c, int64_t s, int64_t t, int64_t b)
{
    if (rnn_valid(c, t, b)) return LG_RNN_OUT_STEP;
    return c->first && s > c->first[b] ? LG_RNN_OUT_REPEAT : LG_RNN_OUT_ZERO;
}

/* LSTMs and GRUs (reset_after) of at least RNN_COL_UNITS units, whatever
 * the thread count, split the units (every gate's columns, h and c) in
 * tiles of RNN_COL_TILE instead of the batch rows, and the parts take whole
 * tiles: each part packs its columns of U (and, forward, of W: x_t W joins
 * each step's product) once per call for its per-step products (pgemm in
 * cpu_rnn_impl.h; with row parts every part's GEMMs pack all of U, every
 * step) and multiplies all rows; the parts meet at a barrier per step.
 * Every element of those products sums in the same order for any split.
 * The reset-before GRU keeps the row split: its U_h multiplies r h, which
 * needs every unit's r first. */
enum { RNN_COL_UNITS = 256, RNN_COL_TILE = 128 };

static inline int64_t rnn_tiles(const lg_rnn_ctx *c) { return (c->H + RNN_COL_TILE - 1) / RNN_COL_TILE; }

/* The first unit of part k of n: a tile boundary. */
static inline int64_t rnn_col_split(const lg_rnn_ctx *c, int k, int n)
{
    int64_t u = rnn_tiles(c) * k / n * RNN_COL_TILE;
    return u < c->H ? u : c->H;
}

/* Where part k of n of `rows` rows starts: at a multiple of RNN_ROW_ALIGN. */
enum { RNN_ROW_ALIGN = 16 };

static inline int64_t rnn_split(int64_t rows, int k, int n)
{
    int64_t r = (rows * k / n + RNN_ROW_ALIGN - 1) / RNN_ROW_ALIGN * RNN_ROW_ALIGN;
    return r < rows ? r : rows;
}

/* C = alpha op(A) op(B) + beta C on this thread alone (gemm.h's one-thread
 * products). */
static inline lg_status rnn_gemm_one(lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                                     const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *cc,
                                     int64_t ldc)
{
    if (m == 0 || n == 0) return LG_OK;
    lg_gemm_args g = {.trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc};
    if (dt == LG_F32) return lg_gemm_f32_one(&g, (float)alpha, a, b, (float)beta, cc);
    return lg_gemm_f64_one(&g, alpha, a, b, beta, cc);
}

/* C = alpha op(A) op(B) + beta C inside the steps: on one thread when the
 * steps run in parts (cpu_pool.h), lg_cpu_gemm's choice otherwise. */
static inline lg_status rnn_gemm(const lg_rnn_ctx *c, lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                          double alpha, const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *cc,
                          int64_t ldc)
{
    if (c->parts == 1) return lg_cpu_gemm(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc);
    return rnn_gemm_one(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc);
}

/* The products over all T B rows (the forward's input projection; the
 * backward's dW, dU, db, dx) come in blocks whose shapes follow from the
 * layer's shape alone, never from the thread count (rnn_wg_width), each
 * one GEMM on one thread, the parts running whole blocks (rnn_blocks_run).
 * OpenBLAS's bits for an element can depend on where its product's rows
 * and columns end (Haswell's sgemm does, and a multithreaded GEMM cuts its
 * product where its threads' shares end), so shapes that followed the
 * split would change bits with the thread count. */
static inline int64_t rnn_blocks(int64_t n, int64_t block) { return (n + block - 1) / block; }

/* The block for n rows or columns of such a product: about an eighth of
 * them, a multiple of 16 from 64 to 512 (enough blocks to share, few
 * enough that packing the other operand once per block costs little). */
static inline int64_t rnn_wg_width(int64_t n)
{
    int64_t w = ((n + 7) / 8 + 15) / 16 * 16;
    return w < 64 ? 64 : w > 512 ? 512 : w;
}

/* Runs task over a product's `blocks` blocks, `madds` multiply-adds in
 * all, in as many parts as the thread budget for dt allows and there are
 * blocks; one part on this thread, as for a GEMM under LG_GEMM_SMALL_FLOPS
 * (waking the pool would cost more than it saves; the blocks are the same,
 * so are the bits). */
static inline lg_status rnn_blocks_run(lg_dtype dt, int64_t blocks, double madds, lg_cpu_task task, void *arg)
{
    int n = 2 * madds < LG_GEMM_SMALL_FLOPS ? 1 : lg_cpu_threads(dt);
    if (n > blocks) n = (int)blocks;
    return n <= 1 ? task(arg, 0, 1) : lg_cpu_parallel(n, task, arg);
}

/* The backward's blocks, in order: dW's column blocks (db's columns with
 * them), dU's, then dx's row blocks; the unit split's steps did dW, db and
 * dx, so there dU's only. The reset-before GRU's dU is two products,
 * columns below 2 H (z and r, from h_{t-1}) and from 2 H (h~, from r h),
 * each in blocks from its own first column. */
typedef enum lg_rnn_wg_kind { LG_RNN_WG_DW, LG_RNN_WG_DU, LG_RNN_WG_DU_RH, LG_RNN_WG_DX } lg_rnn_wg_kind;

typedef struct lg_rnn_wg_block {
    lg_rnn_wg_kind kind;
    int64_t lo, hi; /* columns of the gradient (dx: rows) */
    double cost;    /* multiply-adds */
} lg_rnn_wg_block;

/* Block i into *b; false past the last. */
static inline bool rnn_wg_block(const lg_rnn_ctx *c, int64_t i, lg_rnn_wg_block *b)
{
    int64_t H = c->H, GH = c->GH, TB = c->steps * c->B;
    bool rb = c->cell == LG_RNN_GRU_RESET_BEFORE;
    int64_t span = rb ? 2 * H : GH;
    struct {
        lg_rnn_wg_kind kind;
        int64_t first, end, width;
        double per; /* multiply-adds per column (dx: per row) */
    } runs[4] = {{LG_RNN_WG_DW, 0, c->cols ? 0 : GH, rnn_wg_width(GH), (double)c->I * (double)TB},
                 {LG_RNN_WG_DU, 0, span, rnn_wg_width(span), (double)H * (double)TB},
                 {LG_RNN_WG_DU_RH, 2 * H, rb ? GH : 2 * H, rnn_wg_width(H), (double)H * (double)TB},
                 {LG_RNN_WG_DX, 0, c->cols ? 0 : TB, rnn_wg_width(TB), (double)GH * (double)c->I}};
    for (int r = 0; r < 4; r++) {
        int64_t n = runs[r].end > runs[r].first ? rnn_blocks(runs[r].end - runs[r].first, runs[r].width) : 0;
        if (i >= n) {
            i -= n;
            continue;
        }
        b->kind = runs[r].kind;
        b->lo = runs[r].first + i * runs[r].width;
        b->hi = b->lo + runs[r].width < runs[r].end ? b->lo + runs[r].width : runs[r].end;
        b->cost = runs[r].per * (double)(b->hi - b->lo);
        return true;
    }
    return false;
}

/* The backward's block count, and their multiply-adds in *madds. */
static inline int64_t rnn_wg_count(const lg_rnn_ctx *c, double *madds)
{
    int64_t n = 0;
    *madds = 0;
    for (lg_rnn_wg_block b; rnn_wg_block(c, n, &b);) n++, *madds += b.cost;
    return n;
}

/* Whether part k of n runs block i: each block in order goes to the part
 * with the least work so far (the lowest such part), so the parts' shares
 * balance whatever the blocks' sizes. Callers walk i from 0 with load[n]
 * zeroed. */
static inline bool rnn_wg_mine(double *load, int k, int n, double cost)
{
    int least = 0;
    for (int p = 1; p < n; p++)
        if (load[p] < load[least]) least = p;
    load[least] += cost;
    return least == k;
}

/* Runs a kernel's step loop `task` in c->parts parts: with split units,
 * all at once meeting at bar, or as one part on this thread when they
 * cannot run at once (the same bits); with split rows, as lg_cpu_parallel. */
static inline lg_status rnn_steps(const lg_rnn_ctx *c, lg_cpu_task task, void *arg, lg_cpu_barrier *bar)
{
    lg_cpu_barrier_init(bar, c->parts);
    if (c->parts == 1) return task(arg, 0, 1);
    if (!c->cols) return lg_cpu_parallel(c->parts, task, arg);
    bool ran;
    lg_status st = lg_cpu_parallel_together(c->parts, task, arg, &ran);
    if (ran) return st;
    lg_cpu_barrier_init(bar, 1);
    return task(arg, 0, 1);
}

/* The kernels for f32 and f64 (cpu_rnn_impl.h): an rnn node's forward over
 * its inputs in[] into out[], and an rnn_grad node's backward; c from
 * cpu_rnn.c. */
lg_status lg_cpu_rnn_forward_f32(const lg_rnn_ctx *c, const lg_buf *in, lg_buf *out);
lg_status lg_cpu_rnn_forward_f64(const lg_rnn_ctx *c, const lg_buf *in, lg_buf *out);
lg_status lg_cpu_rnn_backward_f32(const lg_rnn_ctx *c, const lg_buf *in, lg_buf *out);
lg_status lg_cpu_rnn_backward_f64(const lg_rnn_ctx *c, const lg_buf *in, lg_buf *out);

#endif
