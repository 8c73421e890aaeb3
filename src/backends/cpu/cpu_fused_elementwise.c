/*
 * cpu_fused_elementwise.c — the CPU kernel of the fused elementwise op
 * (src/ops/fused_elementwise.h).
 *
 * The output is computed CHUNK elements at a time: the program runs over
 * the chunk with a stack of CHUNK-element temporaries (on the C stack, in
 * L1), so the values between the fused ops never go to memory. The last op
 * writes output 0 directly, and an op whose value is stored (an output
 * from 1) writes that output directly. Each op's expression is the one
 * its own kernel uses (cpu_elementwise.h, and cpu_vmath.h's vector
 * functions for f32 exp, sigmoid and tanh), so results are bit-identical to
 * the ops run one by one.
 *
 * The output is walked as one flat array, so chunks span rows however short
 * the rows are (an LSTM of 16 units has rows of 16). An input of the
 * output's size is read in place, a scalar as a splat; any other broadcast
 * (a bias row [H] of [B, H], a [B, 1] mask column, a window of a split's
 * input) is gathered into a chunk buffer first. Reading each element of
 * the chunk before writing it, the kernel may write output 0 over an input
 * of the output's shape (the executor's in-place elementwise rule; outputs
 * from 1 never share, nor does a program that puts, whose pieces are
 * scattered into output 0's windows row by row).
 */
#include <string.h>
#include <tgmath.h>

/* The per-op loops over a chunk vectorise only with GCC's dynamic cost
 * model (-O2's very cheap one refuses a loop of unknown count); each loop
 * is "ivdep": element i reads only element i of its operands, so writing
 * over an operand (in place) is no dependence. Vector +, -, *, / and
 * selects round as the scalar ones do (no contraction under -std=c11). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")
#define LG_IVDEP _Pragma("GCC ivdep")
#else
#define LG_IVDEP
#endif

#include "backends/cpu/cpu.h"
#include "backends/cpu/cpu_elementwise.h"
#include "backends/cpu/cpu_vmath.h"
#include "ops/fused_elementwise.h"

enum { CHUNK = 256 };

/* A stack value over the chunk: element i is p[i * step], step 0 or 1. */
typedef struct operand {
    const void *p;
    int64_t step;
    lg_dtype dt;
} operand;

static size_t dtype_size(lg_dtype dt) { return dt == LG_F64 ? 8 : 4; }

/* y[i] = EXPR(a, b) over len elements, a and b of type T with steps sa, sb. */
#define BINARY_LOOP(TYPE, EXPR)                                                                     \
    do {                                                                                            \
        typedef TYPE T;                                                                             \
        const T *A = va.p, *B = vb.p;                                                               \
        if (va.step && vb.step)                                                                     \
            LG_IVDEP for (int64_t i = 0; i < len; i++) {                                            \
                T a = A[i], b = B[i];                                                               \
                y[i] = (EXPR);                                                                      \
            }                                                                                       \
        else if (va.step)                                                                           \
            LG_IVDEP for (int64_t i = 0; i < len; i++) {                                            \
                T a = A[i], b = B[0];                                                               \
                y[i] = (EXPR);                                                                      \
            }                                                                                       \
        else if (vb.step)                                                                           \
            LG_IVDEP for (int64_t i = 0; i < len; i++) {                                            \
                T a = A[0], b = B[i];                                                               \
                y[i] = (EXPR);                                                                      \
            }                                                                                       \
        else                                                                                        \
            LG_IVDEP for (int64_t i = 0; i < len; i++) {                                            \
                T a = A[0], b = B[0];                                                               \
                y[i] = (EXPR);                                                                      \
            }                                                                                       \
    } while (0)

/* y[i] = mask[i] != 0 ? b[i] : c[i], the mask of type TM. */
#define WHERE_LOOP(TYPE, TM)                                                                        \
    do {                                                                                            \
        typedef TYPE T;                                                                             \
        const TM *M = vm.p;                                                                         \
        const T *Bp = vb.p, *Cp = vc.p;                                                             \
        LG_IVDEP for (int64_t i = 0; i < len; i++) {                                                \
            TM a = M[i * vm.step];                                                                  \
            T b = Bp[i * vb.step], c = Cp[i * vc.step];                                             \
            y[i] = LG_CPU_WHERE_EXPR(a, b, c);                                                      \
        }                                                                                           \
    } while (0)

/* y[i] = EXPR(x[i]); x has step 1 (unary ops see splats expanded). */
#define UNARY_LOOP(TYPE, EXPR)                                                                      \
    do {                                                                                            \
        typedef TYPE T;                                                                             \
        const T *X = vx.p;                                                                          \
        LG_IVDEP for (int64_t i = 0; i < len; i++) {                                                \
            T x = X[i];                                                                             \
            (void)x;                                                                                \
            y[i] = (T)(EXPR);                                                                       \
        }                                                                                           \
    } while (0)

/* One op of the program over the chunk: operands v[0 .. arity), result to
 * y (len elements of type T). */
#define APPLY_OP(T)                                                                                 \
    static void apply_##T(const lg_node *n, const operand *v, T *y, int64_t len)                    \
    {                                                                                               \
        double r0 = n->attrs.real[0], r1 = n->attrs.real[1];                                        \
        (void)r0, (void)r1;                                                                         \
        if (n->op == LG_OP_WHERE) {                                                                 \
            operand vm = v[0], vb = v[1], vc = v[2];                                                \
            switch (vm.dt) {                                                                        \
            case LG_I32: WHERE_LOOP(T, int32_t); break;                                             \
            case LG_F32: WHERE_LOOP(T, float); break;                                               \
            default: WHERE_LOOP(T, double); break;                                                  \
            }                                                                                       \
            return;                                                                                 \
        }                                                                                           \
        if (lg_few_arity(n->op) == 2) {                                                             \
            operand va = v[0], vb = v[1];                                                           \
            switch (n->op) {                                                                        \
                LG_CPU_BINARY_OPS(BINARY_CASE_##T)                                                  \
            default: break;                                                                         \
            }                                                                                       \
            return;                                                                                 \
        }                                                                                           \
        operand vx = v[0];                                                                          \
        if (!vx.step) { /* a splat: expand it into y, then work in place */                         \
            T s = *(const T *)vx.p;                                                                 \
            LG_IVDEP for (int64_t i = 0; i < len; i++) y[i] = s;                                    \
            vx = (operand){y, 1, vx.dt};                                                            \
        }                                                                                           \
        switch (n->op) {                                                                            \
            LG_CPU_UNARY_OPS(UNARY_CASE_##T)                                                        \
            LG_CPU_VMATH_OPS(VMATH_CASE_##T)                                                        \
        default: break;                                                                             \
        }                                                                                           \
    }

#define BINARY_CASE_float(ID, name, EXPR)                                                           \
    case LG_OP_##ID: BINARY_LOOP(float, EXPR); break;
#define BINARY_CASE_double(ID, name, EXPR)                                                          \
    case LG_OP_##ID: BINARY_LOOP(double, EXPR); break;
#define UNARY_CASE_float(ID, name, EXPR, IEXPR)                                                     \
    case LG_OP_##ID: UNARY_LOOP(float, EXPR); break;
#define UNARY_CASE_double(ID, name, EXPR, IEXPR)                                                    \
    case LG_OP_##ID: UNARY_LOOP(double, EXPR); break;
#define VMATH_CASE_float(ID, name, VEC, EXPR)                                                       \
    case LG_OP_##ID: VEC(vx.p, y, len); break;
#define VMATH_CASE_double(ID, name, VEC, EXPR)                                                      \
    case LG_OP_##ID: UNARY_LOOP(double, EXPR); break;

APPLY_OP(float)
APPLY_OP(double)

/* n elements of esz bytes from src, step sl (0 or 1), to dst: inline
 * loops, as the runs are often short (a row of an LSTM's gate window). */
static void copy_run(char *dst, const char *src, int64_t n, size_t esz, int64_t sl)
{
    if (esz == 8) {
        uint64_t *d = (uint64_t *)dst;
        const uint64_t *x = (const uint64_t *)src;
        if (sl) LG_IVDEP for (int64_t j = 0; j < n; j++) d[j] = x[j];
        else LG_IVDEP for (int64_t j = 0; j < n; j++) d[j] = x[0];
    } else {
        uint32_t *d = (uint32_t *)dst;
        const uint32_t *x = (const uint32_t *)src;
        if (sl) LG_IVDEP for (int64_t j = 0; j < n; j++) d[j] = x[j];
        else LG_IVDEP for (int64_t j = 0; j < n; j++) d[j] = x[0];
    }
}

/* Where a program that puts writes: output 0 at base, of last dim W, for
 * the chunk from element i0 of the pieces' shape (last dim w). */
typedef struct put_to {
    char *base;
    int64_t i0, w, W;
} put_to;

/* Value v (len elements of esz bytes) into output 0's window from column
 * c0: element i0 + e of the pieces is output element (row, c0 + col). */
static void scatter(const put_to *pt, int64_t c0, operand v, int64_t len, size_t esz)
{
    int64_t row = pt->i0 / pt->w, col = pt->i0 % pt->w;
    for (int64_t e = 0; e < len; row++, col = 0) {
        int64_t run = pt->w - col < len - e ? pt->w - col : len - e;
        copy_run(pt->base + (size_t)(row * pt->W + c0 + col) * esz, (const char *)v.p + (size_t)(e * v.step) * esz,
                 run, esz, v.step);
        e += run;
    }
}

/* An instruction, decoded: load input arg, store to or reload output arg,
 * put into output 0 from column arg, or run op. */
typedef struct instr {
    enum { LOAD, STORE, RELOAD, PUT, OP } kind;
    int arg;
    lg_node op;
} instr;

/* The program over one chunk: in[k] is input k's operand at the chunk's
 * start, y[k] output k's elements there (type T, dtype DT). A value pushed
 * at depth d lives in tmp[d] (or in its input, or in the output it is
 * stored to: an op followed by a store writes there directly, and the last
 * op into y[0]), so an op's result may overwrite its first operand,
 * element by element, and nothing else. */
#define RUN_CHUNK(T, DT)                                                                            \
    static void run_chunk_##T(const instr *code, int n_code, const operand *in, T *const *y, const put_to *pt, \
                              int64_t len)                                                          \
    {                                                                                               \
        T tmp[LG_FEW_MAX_DEPTH][CHUNK];                                                             \
        operand stack[LG_FEW_MAX_DEPTH];                                                            \
        int depth = 0;                                                                              \
        for (int i = 0; i < n_code; i++) {                                                          \
            const instr *c = &code[i];                                                              \
            if (c->kind == LOAD || c->kind == RELOAD) {                                             \
                stack[depth++] = c->kind == LOAD ? in[c->arg] : (operand){y[c->arg], 1, DT};        \
                continue;                                                                           \
            }                                                                                       \
            if (c->kind == STORE) continue; /* the op before it wrote there */                      \
            if (c->kind == PUT) {                                                                   \
                scatter(pt, c->arg, stack[--depth], len, sizeof(T));                                \
                continue;                                                                           \
            }                                                                                       \
            depth -= lg_few_arity(c->op.op);                                                        \
            T *dst = i == n_code - 1 ? y[0] : code[i + 1].kind == STORE ? y[code[i + 1].arg] : tmp[depth]; \
            apply_##T(&c->op, &stack[depth], dst, len);                                             \
            stack[depth++] = (operand){dst, 1, DT};                                                 \
        }                                                                                           \
    }

RUN_CHUNK(float, LG_F32)
RUN_CHUNK(double, LG_F64)

static void run_chunk(lg_dtype dt, const instr *code, int n_code, const operand *in, void *const *y, const put_to *pt,
                      int64_t len)
{
    if (dt == LG_F32) run_chunk_float(code, n_code, in, (float *const *)y, pt, len);
    else run_chunk_double(code, n_code, in, (double *const *)y, pt, len);
}

/* Input k's elements for output elements [i0, i0 + len) into dst, where
 * it broadcasts along some dims (steps[d] 0) or is read in a window, but
 * is neither the output's size nor a scalar: walked in runs along the
 * last dim. */
static void gather(const char *src, size_t esz, const int64_t *steps, lg_shape s, int64_t i0, int64_t len, char *dst)
{
    int r = s.rank;
    int64_t idx[LG_MAX_RANK], rem = i0, off = 0;
    for (int d = r - 1; d >= 0; d--) {
        idx[d] = rem % s.dims[d];
        rem /= s.dims[d];
        off += idx[d] * steps[d];
    }
    int64_t last = s.dims[r - 1], sl = steps[r - 1];
    for (int64_t e = 0; e < len;) {
        int64_t run = last - idx[r - 1] < len - e ? last - idx[r - 1] : len - e;
        copy_run(dst + (size_t)e * esz, src + (size_t)off * esz, run, esz, sl);
        e += run, off += run * sl, idx[r - 1] += run;
        if (idx[r - 1] < last) break; /* the chunk ended inside the row */
        off -= last * sl, idx[r - 1] = 0;
        for (int d = r - 2; d >= 0; d--) { /* the odometer: next row */
            off += steps[d];
            if (++idx[d] < s.dims[d]) break;
            off -= s.dims[d] * steps[d];
            idx[d] = 0;
        }
    }
}

lg_status lg_cpu_fused_elementwise(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int n_code = n->attrs.n_ints / LG_FEW_WIDTH, n_in = n->n_in;
    instr code[n_code];
    int64_t c0[n_in > 0 ? n_in : 1]; /* per input: where its window starts along the last dim */
    memset(c0, 0, sizeof c0);
    for (int i = 0; i < n_code; i++) {
        const int64_t *ins = &n->attrs.ints[i * LG_FEW_WIDTH];
        if (ins[0] == LG_OP_INPUT) c0[ins[1]] = ins[2];
        code[i] = ins[0] == LG_OP_INPUT    ? (instr){LOAD, (int)ins[1], {0}}
                  : ins[0] == LG_FEW_STORE  ? (instr){STORE, (int)ins[1], {0}}
                  : ins[0] == LG_FEW_RELOAD ? (instr){RELOAD, (int)ins[1], {0}}
                  : ins[0] == LG_FEW_PUT    ? (instr){PUT, (int)ins[1], {0}}
                                            : (instr){OP, 0, lg_few_decode(ins)};
    }
    lg_dtype dt = out[0].dtype;
    size_t esz = dtype_size(dt);
    /* the shape the program runs over: output 0's, with last dim w for a
     * program that puts */
    lg_shape s = out[0].shape;
    put_to pt = {out[0].data, 0, 1, 1};
    if (lg_few_puts(n)) {
        s.dims[s.rank - 1] = pt.w = n->attrs.axis;
        pt.W = out[0].shape.dims[s.rank - 1];
    }
    int64_t numel = lg_shape_numel(s);
    /* per input: its elements' steps along the output's dims (0 where it
     * broadcasts), and a chunk buffer where it needs gathering (a window
     * always does) */
    enum { FULL, SPLAT, GATHER } kind[n_in > 0 ? n_in : 1];
    int64_t steps[n_in > 0 ? n_in : 1][LG_MAX_RANK];
    int n_gather = 0;
    for (int k = 0; k < n_in; k++) {
        int64_t m = lg_shape_numel(in[k].shape);
        const lg_shape *sk = &in[k].shape;
        bool window = c0[k] || (sk->rank && s.rank && sk->dims[sk->rank - 1] != s.dims[s.rank - 1]);
        kind[k] = m == numel && !window ? FULL : m == 1 ? SPLAT : GATHER;
        if (kind[k] != GATHER) continue;
        n_gather++;
        int64_t st[LG_MAX_RANK];
        lg_strides(in[k].shape, st);
        int shift = s.rank - in[k].shape.rank;
        for (int d = 0; d < s.rank; d++) {
            int j = d - shift;
            steps[k][d] = j >= 0 && in[k].shape.dims[j] != 1 ? st[j] : 0;
        }
    }
    double gathered[n_gather > 0 ? n_gather : 1][CHUNK]; /* room for any dtype */
    operand at[n_in > 0 ? n_in : 1];
    void *y[LG_FEW_MAX_OUTPUTS];
    for (int64_t i0 = 0; i0 < numel; i0 += CHUNK) {
        int64_t len = numel - i0 < CHUNK ? numel - i0 : CHUNK;
        for (int k = 0, g = 0; k < n_in; k++) {
            size_t ek = dtype_size(in[k].dtype);
            const char *data = (const char *)in[k].data + (size_t)c0[k] * ek;
            if (kind[k] == FULL) at[k] = (operand){data + (size_t)i0 * ek, 1, in[k].dtype};
            else if (kind[k] == SPLAT) at[k] = (operand){data, 0, in[k].dtype};
            else {
                gather(data, ek, steps[k], s, i0, len, (char *)gathered[g]);
                at[k] = (operand){gathered[g++], 1, in[k].dtype};
            }
        }
        for (int o = 0; o < n->n_out; o++) y[o] = (char *)out[o].data + (size_t)i0 * esz;
        pt.i0 = i0;
        run_chunk(dt, code, n_code, at, y, &pt, len);
    }
    return LG_OK;
}
