/*
 * emu_capture.h — part of the CUDA host emulation (README.md here): stream
 * capture, shared by the fake runtime and cuBLAS (fake_cuda.c) and the
 * launches (emu_rt.cpp, which keeps the capture and the graphs).
 */
#ifndef LG_EMU_CAPTURE_H
#define LG_EMU_CAPTURE_H
#include <cuda_runtime.h>
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
/* Asynchronous work on stream s: run(args) now, or, while this thread
 * captures s, record a copy of args[0..bytes) to run at each launch of the
 * graph. While it captures, work on another stream, or on s after the
 * capture was invalidated, fails (and invalidates it). */
cudaError_t lg_emu_enqueue(cudaStream_t s, void (*run)(const void *args), const void *args, size_t bytes);
/* A call that waits for the device or allocates: while this thread
 * captures, cudaErrorStreamCaptureUnsupported, and the capture is
 * invalidated (as under cudaStreamCaptureModeThreadLocal). */
cudaError_t lg_emu_unsafe(void);
#ifdef __cplusplus
}
#endif
#endif
