/*
 * cuda_cublas.c — cuBLAS opened with dlopen when a device is (cuda_cublas.h).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "backends/cuda/cuda_cublas.h"

#define STR_(x) #x
#define STR(x) STR_(x)
/* The soname of the cuBLAS whose headers this is compiled against. */
#define CUBLAS_SONAME "libcublas.so." STR(CUBLAS_VER_MAJOR)

/* One symbol into *fn (a function pointer), or why not. */
static lg_status resolve(void *lib, const char *library, const char *symbol, void *fn)
{
    dlerror();
    void *p = dlsym(lib, symbol);
    if (!p) return lg_fail(LG_ERR_UNSUPPORTED, "cuBLAS (%s) lacks %s: %s", library, symbol, dlerror());
    memcpy(fn, &p, sizeof p); /* POSIX: a data pointer from dlsym converts to a function pointer */
    return LG_OK;
}

lg_status lg_cublas_open(lg_cublas_api *api, const char *library)
{
    memset(api, 0, sizeof *api);
    const char *name = library ? library : CUBLAS_SONAME;
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
#ifdef LG_CUDA_LIBDIR
    /* Not on the loader's path (no ldconfig entry, no LD_LIBRARY_PATH):
     * the toolkit's directory meson found it in. */
    if (!lib && !library) lib = dlopen(LG_CUDA_LIBDIR "/" CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
#endif
    if (!lib)
        return lg_fail(LG_ERR_UNSUPPORTED, "cuBLAS could not be loaded, and the CUDA backend needs it: %s", dlerror());
    lg_status st = resolve(lib, name, "cublasCreate_v2", &api->create);
    if (!st) st = resolve(lib, name, "cublasDestroy_v2", &api->destroy);
    if (!st) st = resolve(lib, name, "cublasSetStream_v2", &api->set_stream);
    if (!st) st = resolve(lib, name, "cublasGemmStridedBatchedEx", &api->gemm_strided_batched);
    if (!st) st = resolve(lib, name, "cublasGetStatusName", &api->status_name);
    if (!st) st = resolve(lib, name, "cublasGetStatusString", &api->status_string);
    if (st) {
        dlclose(lib); /* not cuBLAS: safe to unload */
        memset(api, 0, sizeof *api);
        return st;
    }
    return LG_OK; /* lib stays open (cuda_cublas.h) */
}
