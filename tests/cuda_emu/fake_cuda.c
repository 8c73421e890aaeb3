/*
 * fake_cuda.c — part of the CUDA host emulation (README.md here): the CUDA
 * runtime and cuBLAS calls the backend's host code makes, on host memory.
 * One device, "host emulation", 64 GiB; cudaMalloc fills new memory with
 * 0xA5 bytes, as a GPU leaves it unzeroed, so a kernel reading what nothing
 * wrote shows up as wrong values; copies and memsets are synchronous.
 * cublasGemmStridedBatchedEx checks that A, B and C share a type that
 * matches the compute type and that every leading dimension is at least its
 * rows (as cuBLAS does, answering CUBLAS_STATUS_INVALID_VALUE), then
 * multiplies in double with plain loops.
 * Capture (emu_capture.h, kept by emu_rt.cpp): the asynchronous copies,
 * memsets and GEMMs go through lg_emu_enqueue, so a capture records them;
 * cudaMalloc, cudaFree, the synchronous copies and memsets and the
 * synchronizations go through lg_emu_unsafe, so a capture refuses them.
 * Copies to or from host memory are refused in a capture too (pageable
 * memory; the executor never captures them).
 * lg_cublas_open (cuda_cublas.h, whose dlopen loader is left out here)
 * hands out these cuBLAS functions.
 */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "emu_capture.h"
#include "backends/cuda/cuda_cublas.h"
static size_t live;
cudaError_t cudaMalloc(void **p, size_t n) {
    cudaError_t e = lg_emu_unsafe(); if (e) return e;
    if (n > ((size_t)64 << 30)) return cudaErrorMemoryAllocation;
    *p = malloc(n ? n : 1); if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, 0xA5, n); /* device memory is not zeroed: poison */
    live += n; return cudaSuccess;
}
cudaError_t cudaFree(void *p) { cudaError_t e = lg_emu_unsafe(); if (e) return e; free(p); return cudaSuccess; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d) { memset(p, 0, sizeof *p); strcpy(p->name, "host emulation"); p->major = 9; return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
const char *cudaGetErrorName(cudaError_t e) {
    if (e == cudaErrorStreamCaptureUnsupported) return "cudaErrorStreamCaptureUnsupported"; /* the capture's, by name */
    if (e == cudaErrorStreamCaptureInvalidated) return "cudaErrorStreamCaptureInvalidated";
    static char b[32]; snprintf(b, 32, "cudaError%d", (int)e); return b;
}
const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *t = (size_t)64 << 30; *f = *t - live; return cudaSuccess; }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind k) { (void)k; cudaError_t e = lg_emu_unsafe(); if (e) return e; memmove(d, s, n); return cudaSuccess; }
/* A 2-D copy of h rows of w bytes (a plain copy: h 1); queued work runs it from a copy of this. */
typedef struct copy_args { void *d; const void *s; size_t dp, sp, w, h; } copy_args;
static void run_copy(const void *a) {
    const copy_args *c = a;
    for (size_t r = 0; r < c->h; r++) memmove((char *)c->d + r * c->dp, (const char *)c->s + r * c->sp, c->w);
}
static cudaError_t queue_copy(copy_args c, enum cudaMemcpyKind k, cudaStream_t st) {
    if (k != cudaMemcpyDeviceToDevice) { cudaError_t e = lg_emu_unsafe(); if (e) return e; run_copy(&c); return cudaSuccess; }
    return lg_emu_enqueue(st, run_copy, &c, sizeof c);
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k, cudaStream_t st) {
    return queue_copy((copy_args){d, s, n, n, n, 1}, k, st);
}
cudaError_t cudaMemcpy2DAsync(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h, enum cudaMemcpyKind k, cudaStream_t st) {
    if (w > dp || w > sp) return cudaErrorInvalidPitchValue;
    return queue_copy((copy_args){d, s, dp, sp, w, h}, k, st);
}
cudaError_t cudaMemset(void *d, int v, size_t n) { cudaError_t e = lg_emu_unsafe(); if (e) return e; memset(d, v, n); return cudaSuccess; }
typedef struct set_args { void *d; int v; size_t n; } set_args;
static void run_set(const void *a) { const set_args *m = a; memset(m->d, m->v, m->n); }
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st) { return lg_emu_enqueue(st, run_set, &(set_args){d, v, n}, sizeof(set_args)); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned f) { (void)f; *s = (cudaStream_t)malloc(8); return cudaSuccess; }
cudaError_t cudaStreamCreate(cudaStream_t *s) { *s = (cudaStream_t)malloc(8); return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { free(s); return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t s) { (void)s; return lg_emu_unsafe(); }
cudaError_t cudaDeviceSynchronize(void) { return lg_emu_unsafe(); }
cudaError_t cudaDeviceReset(void) { return cudaSuccess; }

/* A handle holds its stream, which GEMMs are queued on. */
cublasStatus_t cublasCreate_v2(cublasHandle_t *h) { *h = (cublasHandle_t)calloc(1, sizeof(cudaStream_t)); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) { *(cudaStream_t *)h = s; return CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusName(cublasStatus_t s) { (void)s; return "CUBLAS_STATUS_?"; }
const char *cublasGetStatusString(cublasStatus_t s) { (void)s; return "emulated"; }
typedef struct gemm_args {
    cublasOperation_t ta, tb; int m, n, k; const void *A; int lda; long long sa; const void *B; int ldb; long long sb;
    void *C; int ldc; long long sc; int batch, f32; double alpha, beta;
} gemm_args;
static void run_gemm(const void *arg);
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
    const void *alpha, const void *A, cudaDataType at, int lda, long long sa, const void *B, cudaDataType bt, int ldb,
    long long sb, const void *beta, void *C, cudaDataType ct, int ldc, long long sc, int batch, cublasComputeType_t comp,
    cublasGemmAlgo_t algo) {
    (void)h; (void)algo; 
    int f32 = at == CUDA_R_32F;
    if (at != bt || at != ct || (f32 ? (comp != CUBLAS_COMPUTE_32F && comp != CUBLAS_COMPUTE_32F_FAST_TF32) : (at != CUDA_R_64F || comp != CUBLAS_COMPUTE_64F))) { fprintf(stderr, "EMU gemm: bad types %d %d %d comp %d\n", at, bt, ct, comp); return CUBLAS_STATUS_INVALID_VALUE; }
    int ra = ta == CUBLAS_OP_N ? m : k, rb = tb == CUBLAS_OP_N ? k : n;
    if (lda < (ra > 1 ? ra : 1) || ldb < (rb > 1 ? rb : 1) || ldc < (m > 1 ? m : 1)) { fprintf(stderr, "EMU gemm: bad ld %d %d %d (m %d n %d k %d)\n", lda, ldb, ldc, m, n, k); return CUBLAS_STATUS_INVALID_VALUE; }
    /* alpha and beta are read now (host pointer mode), as cuBLAS does */
    gemm_args g = {ta, tb, m, n, k, A, lda, sa, B, ldb, sb, C, ldc, sc, batch, f32,
                   f32 ? *(const float *)alpha : *(const double *)alpha, f32 ? *(const float *)beta : *(const double *)beta};
    return lg_emu_enqueue(*(cudaStream_t *)h, run_gemm, &g, sizeof g) == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}
static void run_gemm(const void *arg) {
    const gemm_args *g = arg;
    cublasOperation_t ta = g->ta, tb = g->tb;
    int m = g->m, n = g->n, k = g->k, lda = g->lda, ldb = g->ldb, ldc = g->ldc, batch = g->batch, f32 = g->f32;
    long long sa = g->sa, sb = g->sb, sc = g->sc;
    const void *A = g->A, *B = g->B;
    void *C = g->C;
    for (int b = 0; b < batch; b++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double acc = 0;
                for (int p = 0; p < k; p++) {
                    long long ia = ta == CUBLAS_OP_N ? (long long)p * lda + i : (long long)i * lda + p;
                    long long ib = tb == CUBLAS_OP_N ? (long long)j * ldb + p : (long long)p * ldb + j;
                    double av = f32 ? ((const float *)A)[b * sa + ia] : ((const double *)A)[b * sa + ia];
                    double bv = f32 ? ((const float *)B)[b * sb + ib] : ((const double *)B)[b * sb + ib];
                    acc += av * bv;
                }
                long long ic = b * sc + (long long)j * ldc + i;
                if (f32) { float be = (float)g->beta; float *c = (float *)C + ic; *c = (float)((float)g->alpha * acc + (be != 0 ? be * *c : 0)); }
                else { double be = g->beta; double *c = (double *)C + ic; *c = g->alpha * acc + (be != 0 ? be * *c : 0); }
            }
}

/* cuda_cublas.h's loader: the fakes above for cuBLAS (library NULL), and
 * any other library refused as dlopen would refuse a missing one. */
lg_status lg_cublas_open(lg_cublas_api *api, const char *library) {
    memset(api, 0, sizeof *api);
    if (library) return lg_fail(LG_ERR_UNSUPPORTED, "cuBLAS could not be loaded, and the CUDA backend needs it: %s: emulated, no such library", library);
    *api = (lg_cublas_api){cublasCreate_v2, cublasDestroy_v2, cublasSetStream_v2, cublasGemmStridedBatchedEx,
                           cublasGetStatusName, cublasGetStatusString};
    return LG_OK;
}
