/*
 * cuda_cublas.h — the cuBLAS calls the CUDA backend makes, resolved from
 * libcublas when a device is opened rather than linked into libloopgrad.
 *
 * cuBLAS and the cuBLASLt it loads map about 210 MB and take about 0.3 s to
 * load and relocate. Linked, every process that loads a CUDA-enabled
 * libloopgrad paid that, CPU-only programs and `--help` included; opened
 * here, only a program that opens "cuda:N" does.
 *
 *     lg_cublas_api api;
 *     if (lg_cublas_open(&api, NULL) != LG_OK) ...;   // libcublas.so.N
 *     api.create(&handle);
 *
 * The library stays mapped until the process exits: CUDA's libraries are
 * not made to be unloaded (dlclose leaves their C++ runtimes' pools behind,
 * which LeakSanitizer reports), and a second open finds it loaded.
 *
 * tests/cuda_emu links its own lg_cublas_open, which hands out its fakes.
 */
#ifndef LG_CUDA_CUBLAS_H
#define LG_CUDA_CUBLAS_H

#include <cublas_v2.h>

#include "graph/status.h"

typedef struct lg_cublas_api {
    cublasStatus_t (*create)(cublasHandle_t *handle);
    cublasStatus_t (*destroy)(cublasHandle_t handle);
    cublasStatus_t (*set_stream)(cublasHandle_t handle, cudaStream_t stream);
    cublasStatus_t (*gemm_strided_batched)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                           int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype,
                                           int lda, long long strideA, const void *B, cudaDataType Btype, int ldb,
                                           long long strideB, const void *beta, void *C, cudaDataType Ctype, int ldc,
                                           long long strideC, int batchCount, cublasComputeType_t computeType,
                                           cublasGemmAlgo_t algo);
    const char *(*status_name)(cublasStatus_t status);
    const char *(*status_string)(cublasStatus_t status);
} lg_cublas_api;

/* Opens `library` (a file name dlopen searches for, or a path; NULL for the
 * libcublas.so.N of the cuBLAS this was built against, looked for by name
 * and then in the toolkit's library directory) and resolves the calls above.
 * LG_ERR_UNSUPPORTED, with dlopen's or dlsym's reason, when it cannot be
 * loaded or lacks a call; *api is then zeroed. */
lg_status lg_cublas_open(lg_cublas_api *api, const char *library);

#endif
