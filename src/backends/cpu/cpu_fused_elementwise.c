/*
 * cpu_fused_elementwise.c — the CPU kernel of the fused elementwise op
 * (src/ops/fused_elementwise.h).
 *
 * The output is computed CHUNK elements at a time: the program runs over
 * the chunk with a stack of CHUNK-element temporaries (on the C stack, in
 * L1), so the values between the fused ops never go to memory. An input
 * operand is read where it lies: a pointer with step 1, or step 0 where it
 * broadcasts along the last dim (a scalar; a [B, 1] column within a row).
 * The last op writes the output directly. Each op's expression is the one
 * its own kernel uses (cpu_elementwise.h, and cpu_vmath.h's vector
 * functions for f32 exp, sigmoid and tanh), so results are bit-identical to
 * the ops run one by one.
 *
 * When every input is the output's size or a scalar, the output is walked
 * as one flat array; otherwise row by row (rows of the last dim, offsets
 * stepped like an odometer), chunks within a row. Reading each element of
 * the chunk before writing it, the kernel may write over an input of the
 * output's shape (the executor's in-place elementwise rule).
 */
#include <string.h>
#include <tgmath.h>

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
#define BINARY_LOOP(TYPE, EXPR)                                                             \
    do {                                                                                 \
        typedef TYPE T;                                                                  \
        const T *A = va.p, *B = vb.p;                                                    \
        if (va.step && vb.step)                                                          \
            for (int64_t i = 0; i < len; i++) {                                          \
                T a = A[i], b = B[i];                                                    \
                y[i] = (EXPR);                                                           \
            }                                                                            \
        else if (va.step)                                                                \
            for (int64_t i = 0; i < len; i++) {                                          \
                T a = A[i], b = B[0];                                                    \
                y[i] = (EXPR);                                                           \
            }                                                                            \
        else if (vb.step)                                                                \
            for (int64_t i = 0; i < len; i++) {                                          \
                T a = A[0], b = B[i];                                                    \
                y[i] = (EXPR);                                                           \
            }                                                                            \
        else                                                                             \
            for (int64_t i = 0; i < len; i++) {                                          \
                T a = A[0], b = B[0];                                                    \
                y[i] = (EXPR);                                                           \
            }                                                                            \
    } while (0)

/* y[i] = mask[i] != 0 ? b[i] : c[i], the mask of type TM. */
#define WHERE_LOOP(TYPE, TM)                                                                \
    do {                                                                                 \
        typedef TYPE T;                                                                  \
        const TM *M = vm.p;                                                              \
        const T *Bp = vb.p, *Cp = vc.p;                                                  \
        for (int64_t i = 0; i < len; i++) {                                              \
            TM a = M[i * vm.step];                                                       \
            T b = Bp[i * vb.step], c = Cp[i * vc.step];                                  \
            y[i] = LG_CPU_WHERE_EXPR(a, b, c);                                           \
        }                                                                                \
    } while (0)

/* y[i] = EXPR(x[i]); x has step 1 (unary ops see splats expanded). */
#define UNARY_LOOP(TYPE, EXPR)                                                              \
    do {                                                                                 \
        typedef TYPE T;                                                                  \
        const T *X = vx.p;                                                               \
        for (int64_t i = 0; i < len; i++) {                                              \
            T x = X[i];                                                                  \
            (void)x;                                                                     \
            y[i] = (T)(EXPR);                                                            \
        }                                                                                \
    } while (0)

/* One op of the program over the chunk: operands v[0 .. arity), result to
 * y (len elements of type T). */
#define APPLY_OP(T)                                                                             \
    static void apply_##T(const lg_node *n, const operand *v, T *y, int64_t len)               \
    {                                                                                           \
        double r0 = n->attrs.real[0], r1 = n->attrs.real[1];                                    \
        (void)r0, (void)r1;                                                                     \
        if (n->op == LG_OP_WHERE) {                                                             \
            operand vm = v[0], vb = v[1], vc = v[2];                                            \
            switch (vm.dt) {                                                                    \
            case LG_I32: WHERE_LOOP(T, int32_t); break;                                         \
            case LG_F32: WHERE_LOOP(T, float); break;                                           \
            default: WHERE_LOOP(T, double); break;                                              \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        if (lg_few_arity(n->op) == 2) {                                                         \
            operand va = v[0], vb = v[1];                                                       \
            switch (n->op) {                                                                    \
                LG_CPU_BINARY_OPS(BINARY_CASE_##T)                                              \
            default: break;                                                                     \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        operand vx = v[0];                                                                      \
        if (!vx.step) { /* a splat: expand it into y, then work in place */                     \
            T s = *(const T *)vx.p;                                                             \
            for (int64_t i = 0; i < len; i++) y[i] = s;                                         \
            vx = (operand){y, 1, vx.dt};                                                        \
        }                                                                                       \
        switch (n->op) {                                                                        \
            LG_CPU_UNARY_OPS(UNARY_CASE_##T)                                                    \
            LG_CPU_VMATH_OPS(VMATH_CASE_##T)                                                    \
        default: break;                                                                         \
        }                                                                                       \
    }

#define BINARY_CASE_float(ID, name, EXPR) \
    case LG_OP_##ID: BINARY_LOOP(float, EXPR); break;
#define BINARY_CASE_double(ID, name, EXPR) \
    case LG_OP_##ID: BINARY_LOOP(double, EXPR); break;
#define UNARY_CASE_float(ID, name, EXPR, IEXPR) \
    case LG_OP_##ID: UNARY_LOOP(float, EXPR); break;
#define UNARY_CASE_double(ID, name, EXPR, IEXPR) \
    case LG_OP_##ID: UNARY_LOOP(double, EXPR); break;
#define VMATH_CASE_float(ID, name, VEC, EXPR) \
    case LG_OP_##ID: VEC(vx.p, y, len); break;
#define VMATH_CASE_double(ID, name, VEC, EXPR) \
    case LG_OP_##ID: UNARY_LOOP(double, EXPR); break;

APPLY_OP(float)
APPLY_OP(double)

/* An instruction, decoded: load input `load`, or (load < 0) run op. */
typedef struct instr {
    int load;
    lg_node op;
} instr;

/* The program over one chunk: in[k] is input k's operand at the chunk's
 * start; the result (type T, dtype DT) goes to y. A value pushed at depth
 * d lives in tmp[d] (or in its input), so an op's result may overwrite
 * its first operand, element by element, and nothing else. */
#define RUN_CHUNK(T, DT)                                                                        \
    static void run_chunk_##T(const instr *code, int n_code, const operand *in, T *y, int64_t len) \
    {                                                                                           \
        T tmp[LG_FEW_MAX_DEPTH][CHUNK];                                                         \
        operand stack[LG_FEW_MAX_DEPTH];                                                        \
        int depth = 0;                                                                          \
        for (int i = 0; i < n_code; i++) {                                                      \
            if (code[i].load >= 0) {                                                            \
                stack[depth++] = in[code[i].load];                                              \
                continue;                                                                       \
            }                                                                                   \
            depth -= lg_few_arity(code[i].op.op);                                               \
            T *dst = i == n_code - 1 ? y : tmp[depth];                                          \
            apply_##T(&code[i].op, &stack[depth], dst, len);                                    \
            stack[depth++] = (operand){dst, 1, DT};                                             \
        }                                                                                       \
    }

RUN_CHUNK(float, LG_F32)
RUN_CHUNK(double, LG_F64)

static void run_chunk(lg_dtype dt, const instr *code, int n_code, const operand *in, void *y, int64_t len)
{
    if (dt == LG_F32) run_chunk_float(code, n_code, in, y, len);
    else run_chunk_double(code, n_code, in, y, len);
}

lg_status lg_cpu_fused_elementwise(const lg_node *n, const lg_buf *in, lg_buf *out)
{
    int n_code = n->attrs.n_ints / LG_FEW_WIDTH, n_in = n->n_in;
    instr code[n_code];
    for (int i = 0; i < n_code; i++) {
        const int64_t *ins = &n->attrs.ints[i * LG_FEW_WIDTH];
        code[i] = (instr){.load = ins[0] == LG_OP_INPUT ? (int)ins[1] : -1, .op = lg_few_decode(ins)};
    }
    lg_dtype dt = out[0].dtype;
    size_t esz = dtype_size(dt);
    lg_shape s = out[0].shape;
    int64_t numel = lg_shape_numel(s);
    operand at[n_in];
    bool flat = true;
    for (int k = 0; k < n_in; k++) {
        int64_t m = lg_shape_numel(in[k].shape);
        flat = flat && (m == 1 || m == numel);
    }
    if (flat) {
        for (int64_t i0 = 0; i0 < numel; i0 += CHUNK) {
            for (int k = 0; k < n_in; k++) {
                int64_t step = lg_shape_numel(in[k].shape) == numel && numel > 1;
                at[k] = (operand){(const char *)in[k].data + (size_t)(i0 * step) * dtype_size(in[k].dtype), step, in[k].dtype};
            }
            run_chunk(dt, code, n_code, at, (char *)out[0].data + (size_t)i0 * esz, numel - i0 < CHUNK ? numel - i0 : CHUNK);
        }
        return LG_OK;
    }
    /* row by row: strides[k][d] is input k's step along output dim d (0
     * where it broadcasts), off[k] its offset at the current row's start */
    int rank = s.rank;
    int64_t strides[n_in][LG_MAX_RANK], off[n_in], idx[LG_MAX_RANK] = {0};
    for (int k = 0; k < n_in; k++) {
        int64_t st[LG_MAX_RANK];
        lg_strides(in[k].shape, st);
        int shift = rank - in[k].shape.rank;
        for (int d = 0; d < rank; d++) {
            int j = d - shift;
            strides[k][d] = j >= 0 && in[k].shape.dims[j] != 1 ? st[j] : 0;
        }
        off[k] = 0;
    }
    int64_t last = s.dims[rank - 1], rows = numel / last;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j0 = 0; j0 < last; j0 += CHUNK) {
            for (int k = 0; k < n_in; k++) {
                int64_t step = strides[k][rank - 1];
                at[k] = (operand){(const char *)in[k].data + (size_t)(off[k] + j0 * step) * dtype_size(in[k].dtype), step,
                                  in[k].dtype};
            }
            run_chunk(dt, code, n_code, at, (char *)out[0].data + (size_t)(r * last + j0) * esz,
                      last - j0 < CHUNK ? last - j0 : CHUNK);
        }
        for (int d = rank - 2; d >= 0; d--) { /* the odometer: next row */
            for (int k = 0; k < n_in; k++) off[k] += strides[k][d];
            if (++idx[d] < s.dims[d]) break;
            for (int k = 0; k < n_in; k++) off[k] -= s.dims[d] * strides[k][d];
            idx[d] = 0;
        }
    }
    return LG_OK;
}
