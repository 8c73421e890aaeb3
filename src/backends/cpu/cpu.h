/*
 * cpu.h — CPU kernels, one per compute op, defined in the file of their op
 * family (cpu_<family>.c). Private to the library.
 */
#ifndef LG_CPU_H
#define LG_CPU_H

#include "backends/backend.h"

#define LG_X_DECL(ID, name) lg_status lg_cpu_##name(const lg_node *n, const lg_buf *in, lg_buf *out);
LG_COMPUTE_OPS(LG_X_DECL)
LG_FUSED_OPS(LG_X_DECL)
#undef LG_X_DECL

/* The optimizer updates, clipping and gradient norm over host blocks
 * (cpu_optim.c), with backend.h's contract. */
lg_status lg_cpu_sgd_update(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *momentum_slot,
                            double lr, double momentum, bool nesterov);
lg_status lg_cpu_adam_update(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                             double lr, double beta_1, double beta_2, double epsilon, bool amsgrad, int64_t t);
lg_status lg_cpu_rmsprop_update(const lg_backend *b, lg_dtype dt, int64_t n, void *p, const void *g, void *const *slots,
                                double lr, double rho, double momentum, double epsilon, bool centered);
lg_status lg_cpu_clip_grads(const lg_backend *b, lg_dtype dt, void *g, const int64_t *offsets, int n_params,
                            double clipvalue, double clipnorm, double global_clipnorm);
lg_status lg_cpu_grad_norm(const lg_backend *b, lg_dtype dt, const void *g, int64_t n, double *norm);

static inline int64_t lg_buf_numel(const lg_buf *b) { return lg_shape_numel(b->shape); }

/* Row-major strides of a shape, in elements. */
void lg_strides(lg_shape s, int64_t *strides);

/* Broadcasting: the element offsets in each input for an output index.
 * same: every input has the output's shape (offset = index). */
typedef struct lg_bcast {
    int rank, n_in;
    bool same;
    int64_t numel;
    int64_t dims[LG_MAX_RANK];
    int64_t strides[3][LG_MAX_RANK]; /* 0 along broadcast dims */
} lg_bcast;

void lg_bcast_init(lg_bcast *b, lg_shape out, const lg_buf *in, int n_in);
/* Walking the output row by row (rows of the last dim), starting from a
 * zeroed lg_bcast_rows: off[k] is input k's element offset at the start of
 * the current row. lg_bcast_rows_next steps the row
 * index over the outer dims like an odometer, with no division. */
typedef struct lg_bcast_rows {
    int64_t idx[LG_MAX_RANK];
    int64_t off[3];
} lg_bcast_rows;
void lg_bcast_rows_next(const lg_bcast *b, lg_bcast_rows *r);

/* C = alpha op(A) op(B) + beta C, row-major, f32 or f64, op = transpose
 * when ta / tb (no copies), through gemm.h (provider and threads decided
 * there). Its failure (an unusable LG_GEMM, say) comes back with gemm.h's
 * message. */
lg_status lg_cpu_gemm(lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
                      int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);

#endif
