/* cpu_common.c — the CPU backend's table and helpers its kernels share. */
#include <string.h>

#include "backends/cpu/cpu.h"
#include "graph/cpu.h"

static const lg_kernel_fn cpu_kernels[] = {
#define LG_X_NONE(ID, name) [LG_OP_##ID] = NULL,
#define LG_X_KERNEL(ID, name) [LG_OP_##ID] = lg_cpu_##name,
    LG_SOURCE_OPS(LG_X_NONE) LG_COMPUTE_OPS(LG_X_KERNEL) LG_FUSED_OPS(LG_X_KERNEL) LG_CONTROL_OPS(LG_X_NONE)
#undef LG_X_NONE
#undef LG_X_KERNEL
};
_Static_assert(LG_ARRAY_LEN(cpu_kernels) == LG_OP_COUNT, "the CPU kernel table is out of step with op_list.h");

/* Host memory: buffers are 64-byte aligned for the vector kernels. */
static lg_status cpu_alloc(const lg_backend *b, size_t bytes, void **out)
{
    (void)b;
    *out = NULL;
    if (bytes == 0) return LG_OK;
    *out = aligned_alloc(64, (bytes + 63) / 64 * 64);
    return *out ? LG_OK : lg_fail(LG_ERR_OUT_OF_MEMORY, "cpu: cannot allocate %zu bytes", bytes);
}

static void cpu_free(const lg_backend *b, void *p)
{
    (void)b;
    free(p);
}

static lg_status cpu_copy(const lg_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    if (bytes) memmove(dst, src, bytes);
    return LG_OK;
}

static lg_status cpu_zero(const lg_backend *b, void *dst, size_t bytes)
{
    (void)b;
    if (bytes) memset(dst, 0, bytes);
    return LG_OK;
}

static lg_status cpu_sync(const lg_backend *b)
{
    (void)b;
    return LG_OK;
}

static bool cpu_supports_op(const lg_backend *b, const lg_node *n)
{
    (void)b;
    return (unsigned)n->op < LG_OP_COUNT && cpu_kernels[n->op];
}

static lg_status cpu_run_op(const lg_backend *b, const lg_node *n, const lg_buf *in, lg_buf *out)
{
    (void)b;
    return cpu_kernels[n->op](n, in, out);
}

static void cpu_report(const lg_backend *b, FILE *out)
{
    (void)b;
    fprintf(out, "device cpu: host memory\n%s\n", lg_cpu_gemm_summary());
}

static const lg_backend cpu_backend = {
    .name = "cpu",
    .host_memory = true,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_h2d = cpu_copy,
    .copy_d2h = cpu_copy,
    .copy_d2d = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .supports_op = cpu_supports_op,
    .run_op = cpu_run_op,
    .sgd_update = lg_cpu_sgd_update,
    .adam_update = lg_cpu_adam_update,
    .rmsprop_update = lg_cpu_rmsprop_update,
    .clip_grads = lg_cpu_clip_grads,
    .grad_norm = lg_cpu_grad_norm,
    .report = cpu_report,
};

const lg_backend *lg_backend_cpu(void) { return &cpu_backend; }

void lg_strides(lg_shape s, int64_t *strides)
{
    int64_t st = 1;
    for (int i = s.rank - 1; i >= 0; i--) {
        strides[i] = st;
        st *= s.dims[i];
    }
}

void lg_bcast_init(lg_bcast *b, lg_shape out, const lg_buf *in, int n_in)
{
    b->rank = out.rank;
    b->n_in = n_in;
    b->numel = lg_shape_numel(out);
    b->same = true;
    for (int k = 0; k < n_in; k++) b->same = b->same && lg_shape_equal(in[k].shape, out);
    for (int k = 0; k < n_in; k++) {
        int64_t st[LG_MAX_RANK];
        lg_strides(in[k].shape, st);
        int off = out.rank - in[k].shape.rank;
        for (int i = 0; i < out.rank; i++) {
            int j = i - off;
            b->strides[k][i] = (j >= 0 && in[k].shape.dims[j] != 1) ? st[j] : 0;
        }
    }
    for (int i = 0; i < out.rank; i++) b->dims[i] = out.dims[i];
}

void lg_bcast_rows_next(const lg_bcast *b, lg_bcast_rows *r)
{
    for (int d = b->rank - 2; d >= 0; d--) {
        for (int k = 0; k < b->n_in; k++) r->off[k] += b->strides[k][d];
        if (++r->idx[d] < b->dims[d]) return;
        for (int k = 0; k < b->n_in; k++) r->off[k] -= b->dims[d] * b->strides[k][d];
        r->idx[d] = 0;
    }
}
