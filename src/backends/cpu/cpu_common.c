/* cpu_common.c — the CPU backend's table and helpers its kernels share. */
#include "backends/cpu/cpu.h"

static const lg_kernel_fn cpu_kernels[] = {
#define LG_X_NONE(ID, name) [LG_OP_##ID] = NULL,
#define LG_X_KERNEL(ID, name) [LG_OP_##ID] = lg_cpu_##name,
    LG_SOURCE_OPS(LG_X_NONE) LG_COMPUTE_OPS(LG_X_KERNEL) LG_FUSED_OPS(LG_X_KERNEL) LG_CONTROL_OPS(LG_X_NONE)
#undef LG_X_NONE
#undef LG_X_KERNEL
};
_Static_assert(LG_ARRAY_LEN(cpu_kernels) == LG_OP_COUNT, "the CPU kernel table is out of step with op_list.h");

static const lg_backend cpu_backend = {"cpu", cpu_kernels};

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
