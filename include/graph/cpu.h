/*
 * cpu.h — what the CPU backend runs its matrix products on, and why.
 *
 * The CPU backend multiplies matrices with one of two providers: OpenBLAS
 * (cblas_sgemm/cblas_dgemm) or, where the build found it, oneDNN
 * (dnnl_sgemm; oneDNN has no f64 product, so f64 always runs on OpenBLAS).
 * At the first matrix product of the process it decides, once:
 *
 *   provider for f32: LG_GEMM=openblas or LG_GEMM=onednn if set. Otherwise
 *     oneDNN when OpenBLAS runs kernels for an older instruction set than
 *     the CPU has (OpenBLAS's core name against cpuid: a Debian OpenBLAS
 *     that does not know a new CPU falls back to "Prescott", SSE3, on an
 *     AVX-512 machine), OpenBLAS otherwise. The tiers: SSE (Prescott,
 *     Nehalem, Core2, Atom, ... and any name not listed below) < AVX
 *     (Sandybridge, Bulldozer family) < AVX2 (Haswell, Zen) < AVX-512
 *     (SkylakeX, Cooperlake, SapphireRapids). oneDNN picks its own kernels
 *     by cpuid, so it never falls back this way.
 *   threads: LG_NUM_THREADS if set; otherwise what the provider would use
 *     left alone, read at that first product: OpenBLAS's pool size
 *     (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, or openblas_set_num_threads
 *     called before), and OpenMP's limit for oneDNN (OMP_NUM_THREADS). A
 *     product of fewer than 2^24 flops (2 m n k) runs on one thread, where
 *     waking a pool costs more than it saves; larger ones use them all.
 *     loopgrad never leaves another thread count set behind the application:
 *     a call that needs another count sets it for that call only (see
 *     src/backends/cpu/gemm_openblas.c).
 *   The fused recurrent kernels (fuse_rnn) use the same thread count
 *     another way: they split the batch rows of every step (and their
 *     weight gradients' columns) across that many threads of the backend's
 *     own, each running its products on one thread, where a part's
 *     recurrent product is at least 2^18 flops and 4 rows. Its workers
 *     sleep between kernels. Split or not, the results are the same bits
 *     (tests/test_rnn_fused.c).
 *
 * The two thread pools: with oneDNN serving f32, OpenBLAS runs only f64
 * products, so in an f32 model its pool stays asleep while oneDNN's OpenMP
 * threads work, and the reverse with OpenBLAS serving f32. OpenMP's threads
 * spin a while at each barrier (libgomp reads OMP_WAIT_POLICY when the
 * process starts; it cannot be set later): on a machine whose cores are
 * all busy with other work, set OMP_WAIT_POLICY=PASSIVE or LG_NUM_THREADS=1.
 *
 * An application that runs graphs on several threads of its own should set
 * OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1 (or LG_NUM_THREADS=1): each of
 * its threads then has a core, and no pool spins against another.
 *
 * Fused recurrent layers (the fuse_rnn pass) run on the CPU either on
 * loopgrad's own fused kernels or, in builds with oneDNN, on oneDNN's RNN
 * primitives: f32 layers without lengths whose cell measured faster there
 * (LSTM of 32 units or more, both GRUs) where the fused kernels would run
 * them on one thread (a thread budget of 1, or a step too small to split;
 * with two or more threads the fused kernels split each step over their
 * worker pool and were faster); the rest, f64, masked layers and SimpleRNN
 * stay on the fused kernels (the table is in
 * src/backends/cpu/cpu_rnn_select.c).
 * LG_RNN_IMPL=fused or LG_RNN_IMPL=onednn, read when the first such layer is
 * compiled, overrides the table; another value, or onednn in a build
 * without it, fails compiling such a layer with a message that names it.
 *
 *     printf("%s\n", lg_cpu_gemm_summary());
 *     // GEMM: openblas (SkylakeX), 2 threads; f64: openblas (SkylakeX), 2 threads; OpenBLAS's SkylakeX kernels ...
 */
#ifndef LG_CPU_INFO_H
#define LG_CPU_INFO_H

#include "api.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

typedef struct lg_cpu_gemm_info {
    const char *provider;     /* serving f32 products: "openblas" or "onednn" */
    const char *core;         /* its kernels: OpenBLAS's core name ("SkylakeX") or oneDNN's ISA ("avx512_core") */
    int threads;              /* the most threads one product uses */
    const char *f64_provider; /* serving f64 products: "openblas" */
    const char *f64_core;
    int f64_threads;
    const char *reason;       /* why this provider, in words */
} lg_cpu_gemm_info;

/* Makes the decision if no product has yet, and describes it. The strings
 * are static. LG_ERR_INVALID_ARGUMENT for a NULL out or an LG_GEMM or
 * LG_NUM_THREADS value that is not one of those above, LG_ERR_UNSUPPORTED
 * when LG_GEMM names a provider this build lacks; every product
 * then fails with the same status and message. */
lg_status lg_cpu_gemm_info_get(lg_cpu_gemm_info *out);

/* The same on one line, for headers and reports (static text; on a failed
 * decision, the reason it failed). */
const char *lg_cpu_gemm_summary(void);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
