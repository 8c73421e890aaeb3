/* no_cuda.c — the CUDA opener of a build without CUDA (backend.h). */
#include "backends/backend.h"

lg_status lg_backend_cuda_open(int index, const lg_backend **out)
{
    *out = NULL;
    return lg_fail(LG_ERR_UNSUPPORTED,
                   "device 'cuda:%d': this build of loopgrad has no CUDA backend (configure it with -Dcuda=enabled "
                   "where the CUDA toolkit and cuDNN are installed)", index);
}
