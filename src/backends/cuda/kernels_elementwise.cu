/*
 * kernels_elementwise.cu — binary ops with broadcasting, where, broadcast,
 * the unary ops, cast and fill, with the arithmetic of cpu_elementwise.c.
 */
#include <math.h>

#include "backends/cuda/kernels_common.cuh"

using namespace lg_cuda;

/* Offsets into each input of output element i. */
__device__ inline void bcast_offsets(const lg_cuda_bcast &b, int64_t i, int64_t *off)
{
    off[0] = off[1] = off[2] = 0;
    for (int d = b.rank - 1; d >= 0; d--) {
        int64_t c = i % b.dims[d];
        i /= b.dims[d];
        for (int k = 0; k < b.n_in; k++) off[k] += c * b.strides[k][d];
    }
}

template <typename T> __device__ inline T binary(int op, T a, T b)
{
    switch (op) {
    case LG_CUDA_ADD: return a + b;
    case LG_CUDA_SUB: return a - b;
    case LG_CUDA_MUL: return a * b;
    case LG_CUDA_DIV: return a / b;
    case LG_CUDA_GT: return a > b;
    case LG_CUDA_GE: return a >= b;
    case LG_CUDA_LT: return a < b;
    case LG_CUDA_LE: return a <= b;
    case LG_CUDA_EQ: return a == b;
    default: return a != b;
    }
}

template <typename T, int OP>
__global__ void binary_kernel(lg_cuda_bcast bc, const T *a, const T *b, T *y)
{
    LG_CUDA_FOR(i, bc.numel)
    {
        if (bc.same) {
            y[i] = binary<T>(OP, a[i], b[i]);
        } else {
            int64_t off[3];
            bcast_offsets(bc, i, off);
            y[i] = binary<T>(OP, a[off[0]], b[off[1]]);
        }
    }
}

template <typename T, int OP> static cudaError_t launch_binary_t(cudaStream_t s, const lg_cuda_bcast *bc, const void *a, const void *b, void *y)
{
    binary_kernel<T, OP><<<blocks_for(bc->numel), threads, 0, s>>>(*bc, (const T *)a, (const T *)b, (T *)y);
    return cudaGetLastError();
}

template <int OP> static cudaError_t launch_binary_op(cudaStream_t s, lg_dtype dt, const lg_cuda_bcast *bc, const void *a, const void *b, void *y)
{
    switch (dt) {
    case LG_F32: return launch_binary_t<float, OP>(s, bc, a, b, y);
    case LG_F64: return launch_binary_t<double, OP>(s, bc, a, b, y);
    default: return launch_binary_t<int32_t, OP>(s, bc, a, b, y);
    }
}

extern "C" cudaError_t lg_cuda_launch_binary(cudaStream_t s, lg_cuda_binary_op op, lg_dtype dt,
                                             const lg_cuda_bcast *bc, const void *a, const void *b, void *y)
{
    if (bc->numel == 0) return cudaSuccess;
    switch (op) {
    case LG_CUDA_ADD: return launch_binary_op<LG_CUDA_ADD>(s, dt, bc, a, b, y);
    case LG_CUDA_SUB: return launch_binary_op<LG_CUDA_SUB>(s, dt, bc, a, b, y);
    case LG_CUDA_MUL: return launch_binary_op<LG_CUDA_MUL>(s, dt, bc, a, b, y);
    case LG_CUDA_DIV: return launch_binary_op<LG_CUDA_DIV>(s, dt, bc, a, b, y);
    case LG_CUDA_GT: return launch_binary_op<LG_CUDA_GT>(s, dt, bc, a, b, y);
    case LG_CUDA_GE: return launch_binary_op<LG_CUDA_GE>(s, dt, bc, a, b, y);
    case LG_CUDA_LT: return launch_binary_op<LG_CUDA_LT>(s, dt, bc, a, b, y);
    case LG_CUDA_LE: return launch_binary_op<LG_CUDA_LE>(s, dt, bc, a, b, y);
    case LG_CUDA_EQ: return launch_binary_op<LG_CUDA_EQ>(s, dt, bc, a, b, y);
    default: return launch_binary_op<LG_CUDA_NE>(s, dt, bc, a, b, y);
    }
}

template <typename M, typename T>
__global__ void where_kernel(lg_cuda_bcast bc, const M *mask, const T *b, const T *c, T *y)
{
    LG_CUDA_FOR(i, bc.numel)
    {
        int64_t off[3] = {i, i, i};
        if (!bc.same) bcast_offsets(bc, i, off);
        y[i] = mask[off[0]] != 0 ? b[off[1]] : c[off[2]];
    }
}

template <typename T> static cudaError_t launch_where_t(cudaStream_t s, lg_dtype mask_dt, const lg_cuda_bcast *bc, const void *m, const void *b, const void *c, void *y)
{
    unsigned g = blocks_for(bc->numel);
    if (mask_dt == LG_I32) where_kernel<int32_t, T><<<g, threads, 0, s>>>(*bc, (const int32_t *)m, (const T *)b, (const T *)c, (T *)y);
    else if (mask_dt == LG_F32) where_kernel<float, T><<<g, threads, 0, s>>>(*bc, (const float *)m, (const T *)b, (const T *)c, (T *)y);
    else where_kernel<double, T><<<g, threads, 0, s>>>(*bc, (const double *)m, (const T *)b, (const T *)c, (T *)y);
    return cudaGetLastError();
}

extern "C" cudaError_t lg_cuda_launch_where(cudaStream_t s, lg_dtype mask_dt, lg_dtype dt, const lg_cuda_bcast *bc,
                                            const void *mask, const void *b, const void *c, void *y)
{
    if (bc->numel == 0) return cudaSuccess;
    switch (dt) {
    case LG_F32: return launch_where_t<float>(s, mask_dt, bc, mask, b, c, y);
    case LG_F64: return launch_where_t<double>(s, mask_dt, bc, mask, b, c, y);
    default: return launch_where_t<int32_t>(s, mask_dt, bc, mask, b, c, y);
    }
}

template <typename T> __global__ void broadcast_kernel(lg_cuda_bcast bc, const T *x, T *y)
{
    LG_CUDA_FOR(i, bc.numel)
    {
        int64_t off[3];
        bcast_offsets(bc, i, off);
        y[i] = x[off[0]];
    }
}

extern "C" cudaError_t lg_cuda_launch_broadcast(cudaStream_t s, size_t es, const lg_cuda_bcast *bc, const void *x,
                                                void *y)
{
    if (bc->numel == 0) return cudaSuccess;
    unsigned g = blocks_for(bc->numel);
    if (es == 8) broadcast_kernel<int64_t><<<g, threads, 0, s>>>(*bc, (const int64_t *)x, (int64_t *)y);
    else broadcast_kernel<int32_t><<<g, threads, 0, s>>>(*bc, (const int32_t *)x, (int32_t *)y);
    return cudaGetLastError();
}

/* ---- unary ------------------------------------------------------------------ */

template <typename T> __device__ inline T unary(int op, T x, T r0, T r1)
{
    switch (op) {
    case LG_CUDA_NEG: return -x;
    case LG_CUDA_EXP: return exp(x);
    case LG_CUDA_LOG: return log(x);
    case LG_CUDA_SQRT: return sqrt(x);
    case LG_CUDA_SQUARE: return x * x;
    case LG_CUDA_POW: return pow(x, r0);
    case LG_CUDA_ABS: return fabs(x);
    case LG_CUDA_SIGMOID: return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case LG_CUDA_HARD_SIGMOID: return x <= -3 ? T(0) : x >= 3 ? T(1) : x / 6 + T(0.5);
    case LG_CUDA_TANH: return tanh(x);
    case LG_CUDA_RELU: return x > 0 ? x : T(0);
    case LG_CUDA_ELU: return x > 0 ? x : r0 * expm1(x);
    case LG_CUDA_SOFTPLUS: return (x > 0 ? x : T(0)) + log1p(exp(-fabs(x)));
    case LG_CUDA_SOFTSIGN: return x / (1 + fabs(x));
    case LG_CUDA_CLIP: return x < r0 ? r0 : x > r1 ? r1 : x;
    default: return x;
    }
}

template <typename T, int OP> __global__ void unary_kernel(int64_t n, const T *x, T *y, T r0, T r1)
{
    LG_CUDA_FOR(i, n) y[i] = unary<T>(OP, x[i], r0, r1);
}

/* i32: neg, abs and identity. */
__global__ void unary_i32_kernel(int op, int64_t n, const int32_t *x, int32_t *y)
{
    LG_CUDA_FOR(i, n)
    {
        int32_t v = x[i];
        y[i] = op == LG_CUDA_NEG ? -v : op == LG_CUDA_ABS ? (v < 0 ? -v : v) : v;
    }
}

template <typename T, int OP> static cudaError_t launch_unary_t(cudaStream_t s, int64_t n, const void *x, void *y, double r0, double r1)
{
    unary_kernel<T, OP><<<blocks_for(n), threads, 0, s>>>(n, (const T *)x, (T *)y, (T)r0, (T)r1);
    return cudaGetLastError();
}

template <int OP> static cudaError_t launch_unary_op(cudaStream_t s, lg_dtype dt, int64_t n, const void *x, void *y, double r0, double r1)
{
    return dt == LG_F32 ? launch_unary_t<float, OP>(s, n, x, y, r0, r1) : launch_unary_t<double, OP>(s, n, x, y, r0, r1);
}

extern "C" cudaError_t lg_cuda_launch_unary(cudaStream_t s, lg_cuda_unary_op op, lg_dtype dt, int64_t n,
                                            const void *x, void *y, double r0, double r1)
{
    if (n == 0) return cudaSuccess;
    if (dt == LG_I32) {
        unary_i32_kernel<<<blocks_for(n), threads, 0, s>>>(op, n, (const int32_t *)x, (int32_t *)y);
        return cudaGetLastError();
    }
    switch (op) {
#define CASE(OP) \
    case OP: return launch_unary_op<OP>(s, dt, n, x, y, r0, r1);
        CASE(LG_CUDA_NEG)
        CASE(LG_CUDA_EXP)
        CASE(LG_CUDA_LOG)
        CASE(LG_CUDA_SQRT)
        CASE(LG_CUDA_SQUARE)
        CASE(LG_CUDA_POW)
        CASE(LG_CUDA_ABS)
        CASE(LG_CUDA_SIGMOID)
        CASE(LG_CUDA_HARD_SIGMOID)
        CASE(LG_CUDA_TANH)
        CASE(LG_CUDA_RELU)
        CASE(LG_CUDA_ELU)
        CASE(LG_CUDA_SOFTPLUS)
        CASE(LG_CUDA_SOFTSIGN)
        CASE(LG_CUDA_CLIP)
#undef CASE
    default: return launch_unary_op<LG_CUDA_IDENTITY>(s, dt, n, x, y, r0, r1);
    }
}

/* lg_i32_saturate (internal.h). */
__device__ inline int32_t i32_saturate(double x)
{
    if (x != x) return 0;
    if (x >= 2147483647.0) return INT32_MAX;
    if (x <= -2147483648.0) return INT32_MIN;
    return (int32_t)x;
}

template <typename TI, typename TO> __global__ void cast_kernel(int64_t n, const TI *x, TO *y)
{
    LG_CUDA_FOR(i, n) y[i] = (TO)x[i];
}

template <typename TI> __global__ void cast_i32_kernel(int64_t n, const TI *x, int32_t *y)
{
    LG_CUDA_FOR(i, n) y[i] = i32_saturate((double)x[i]);
}

template <typename TI> static cudaError_t launch_cast_from(cudaStream_t s, lg_dtype to, int64_t n, const void *x, void *y)
{
    unsigned g = blocks_for(n);
    const TI *xi = (const TI *)x;
    if (to == LG_F32) cast_kernel<TI, float><<<g, threads, 0, s>>>(n, xi, (float *)y);
    else if (to == LG_F64) cast_kernel<TI, double><<<g, threads, 0, s>>>(n, xi, (double *)y);
    else cast_i32_kernel<TI><<<g, threads, 0, s>>>(n, xi, (int32_t *)y);
    return cudaGetLastError();
}

extern "C" cudaError_t lg_cuda_launch_cast(cudaStream_t s, lg_dtype from, lg_dtype to, int64_t n, const void *x,
                                           void *y)
{
    if (n == 0) return cudaSuccess;
    if (from == LG_F32) return launch_cast_from<float>(s, to, n, x, y);
    if (from == LG_F64) return launch_cast_from<double>(s, to, n, x, y);
    return launch_cast_from<int32_t>(s, to, n, x, y);
}

template <typename T> __global__ void fill_kernel(int64_t n, T *y, T v)
{
    LG_CUDA_FOR(i, n) y[i] = v;
}

extern "C" cudaError_t lg_cuda_launch_fill(cudaStream_t s, lg_dtype dt, int64_t n, void *y, double v)
{
    if (n == 0) return cudaSuccess;
    unsigned g = blocks_for(n);
    if (dt == LG_F32) fill_kernel<float><<<g, threads, 0, s>>>(n, (float *)y, (float)v);
    else if (dt == LG_F64) fill_kernel<double><<<g, threads, 0, s>>>(n, (double *)y, v);
    else fill_kernel<int32_t><<<g, threads, 0, s>>>(n, (int32_t *)y, (int32_t)v);
    return cudaGetLastError();
}

/* ---- the fused elementwise op ----------------------------------------------- */

template <typename T> __device__ inline T few_load(const lg_cuda_few &p, int k, int64_t off, lg_dtype dt)
{
    if (p.in_dt[k] == dt) return ((const T *)p.in[k])[off];
    double m = p.in_dt[k] == LG_I32 ? (double)((const int32_t *)p.in[k])[off]
               : p.in_dt[k] == LG_F32 ? (double)((const float *)p.in[k])[off]
                                      : ((const double *)p.in[k])[off];
    return m != 0 ? T(1) : T(0); /* a where's mask: only != 0 is read */
}

template <typename T> __global__ void fused_kernel(const lg_cuda_few p, lg_dtype dt)
{
    LG_CUDA_FOR(i, p.numel)
    {
        int64_t c[LG_MAX_RANK], rem = i;
        for (int d = p.rank - 1; d >= 0 && !p.all_full; d--) { /* coordinates, for broadcast offsets */
            c[d] = rem % p.dims[d];
            rem /= p.dims[d];
        }
        T st[LG_CUDA_FEW_DEPTH];
        int sp = 0;
        int64_t put_at = p.put_w ? i / p.put_w * p.put_W + i % p.put_w : 0; /* element i's place in output 0, column 0 */
        for (int j = 0; j < p.n_code; j++) {
            const lg_cuda_few_ins &ins = p.code[j];
            switch (ins.kind) {
            case LG_CUDA_FEW_LOAD: {
                int64_t off = p.all_full ? i : 0;
                for (int d = 0; d < p.rank && !p.all_full; d++) off += c[d] * p.strides[ins.arg][d];
                st[sp++] = few_load<T>(p, ins.arg, off, dt);
                break;
            }
            case LG_CUDA_FEW_STORE: ((T *)p.out[ins.arg])[i] = st[sp - 1]; break;
            case LG_CUDA_FEW_RELOAD: st[sp++] = ((const T *)p.out[ins.arg])[i]; break;
            case LG_CUDA_FEW_PUT: ((T *)p.out[0])[put_at + (int64_t)ins.r0] = st[--sp]; break;
            case LG_CUDA_FEW_UNARY: st[sp - 1] = unary<T>(ins.arg, st[sp - 1], (T)ins.r0, (T)ins.r1); break;
            case LG_CUDA_FEW_BINARY:
                sp--;
                st[sp - 1] = binary<T>(ins.arg, st[sp - 1], st[sp]);
                break;
            default: /* where: mask, b, c */
                sp -= 2;
                st[sp - 1] = st[sp - 1] != 0 ? st[sp] : st[sp + 1];
                break;
            }
        }
        if (!p.put_w) ((T *)p.out[0])[i] = st[0];
    }
}

extern "C" cudaError_t lg_cuda_launch_fused(cudaStream_t s, lg_dtype dt, const lg_cuda_few *p)
{
    if (p->numel == 0) return cudaSuccess;
    unsigned g = blocks_for(p->numel);
    if (dt == LG_F32) fused_kernel<float><<<g, threads, 0, s>>>(*p, dt);
    else fused_kernel<double><<<g, threads, 0, s>>>(*p, dt);
    return cudaGetLastError();
}
