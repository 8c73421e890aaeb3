/*
 * gemm_onednn.c — the oneDNN provider (dnnl_sgemm; oneDNN has no dgemm).
 *
 * oneDNN picks its kernels from the instruction sets cpuid reports and
 * JIT-compiles them, so it is fast on CPUs that a given OpenBLAS build does
 * not know. Debian's build threads with OpenMP: a call uses
 * omp_get_max_threads() threads of the calling thread's OpenMP team, a
 * setting that belongs to the calling thread. A call that wants another
 * count sets it for the call and puts the caller's back, so it touches no
 * other thread's setting and needs no lock.
 */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include "backends/cpu/gemm.h"

static const char *onednn_core(void)
{
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "no JIT ISA";
    }
}

static int onednn_threads(void) { return omp_get_max_threads(); }

static lg_status onednn_sgemm(const lg_gemm_args *g, float alpha, const float *a, const float *b, float beta,
                              float *c, int threads)
{
    int caller = omp_get_max_threads();
    if (threads != caller) omp_set_num_threads(threads);
    dnnl_status_t s = dnnl_sgemm(g->trans_a ? 'T' : 'N', g->trans_b ? 'T' : 'N', g->m, g->n, g->k, alpha, a, g->lda,
                                 b, g->ldb, beta, c, g->ldc);
    if (threads != caller) omp_set_num_threads(caller);
    if (s == dnnl_success) return LG_OK;
    return lg_fail(s == dnnl_out_of_memory ? LG_ERR_OUT_OF_MEMORY : LG_ERR_RUNTIME,
                   "oneDNN sgemm %lld x %lld x %lld failed (dnnl status %d)", (long long)g->m, (long long)g->n,
                   (long long)g->k, (int)s);
}

const lg_gemm_ops lg_gemm_onednn = {
    .name = "onednn",
    .core = onednn_core,
    .default_threads = onednn_threads,
    .sgemm = onednn_sgemm,
    .dgemm = NULL,
};
