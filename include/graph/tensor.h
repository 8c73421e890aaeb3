/*
 * tensor.h — dense host tensors.
 *
 * A tensor is an opaque handle to a row-major (C order) block of f32, f64 or
 * i32 values with a shape of rank 0..LG_MAX_RANK. Tensors carry data into and
 * out of programs (feeds and fetches) and hold parameter values.
 *
 *     lg_tensor *x = NULL;
 *     lg_tensor_new(LG_F32, lg_shape_of(2, 3, 4), &x);  // [3, 4] zeros
 *     lg_tensor_fill(x, 1.0);
 *     float *p = lg_tensor_data(x);                     // 12 floats
 *     lg_tensor_free(x);
 *
 * Ownership: lg_tensor_new() gives the caller a tensor to free with
 * lg_tensor_free(). Accessors never transfer ownership.
 */
#ifndef LG_TENSOR_H
#define LG_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif
LG_API_BEGIN

#define LG_MAX_RANK 6

typedef enum lg_dtype { LG_F32, LG_F64, LG_I32, LG_DTYPE_COUNT } lg_dtype;

/* A shape passed by value. In a graph a dim may be -1 ("not known until
 * compile": batch or time); a tensor's dims are always >= 0. */
typedef struct lg_shape {
    int rank;
    int64_t dims[LG_MAX_RANK];
} lg_shape;

/* lg_shape_of(rank, d0, d1, ...): a shape from its dims, passed as int
 * (rank <= LG_MAX_RANK; a larger rank gives rank -1, which every consumer
 * rejects). Build a lg_shape directly for dims beyond INT_MAX. */
lg_shape lg_shape_of(int rank, ...);
/* The size rule, the same for every shape loopgrad takes (builders, feeds,
 * tensors, files): the product of the dims that are not zero must fit
 * int64_t, and the bytes (elements times the dtype's size) must not exceed
 * LG_MAX_BYTES. Zero dims are left out of the product, so the answer does
 * not depend on where a zero stands: [0, 2^62, 2^62] and [2^62, 2^62, 0]
 * are both refused although they hold no elements, while [0, 2^62] is an
 * empty tensor of 0 bytes. */
#define LG_MAX_BYTES ((size_t)PTRDIFF_MAX)

/* Elements in a shape with all dims known: -1 if a dim is unknown or
 * negative, or the product of the nonzero dims overflows int64 (the size
 * rule above); otherwise the product of all dims (0 with a zero dim). */
int64_t lg_shape_numel(lg_shape s);
/* Whether dtype t in shape s keeps the size rule above; if so and bytes is
 * not NULL, *bytes = numel * lg_dtype_size(t). False for an unknown or
 * negative dim or an invalid dtype. */
bool lg_shape_bytes(lg_shape s, lg_dtype t, size_t *bytes);
bool lg_shape_equal(lg_shape a, lg_shape b);
/* Writes "[3, 4]" (unknown dims as "?") into buf, returns buf. */
char *lg_shape_str(lg_shape s, char *buf, size_t size);

const char *lg_dtype_name(lg_dtype t); /* "f32", "f64", "i32" */
size_t lg_dtype_size(lg_dtype t);      /* bytes per element */

typedef struct lg_tensor lg_tensor;

/* A new zero-filled tensor. Errors: LG_ERR_DTYPE, LG_ERR_SHAPE (rank outside
 * 0..LG_MAX_RANK, a negative dim, or a shape lg_shape_bytes refuses),
 * LG_ERR_OUT_OF_MEMORY. *out is NULL on failure. */
lg_status lg_tensor_new(lg_dtype dtype, lg_shape shape, lg_tensor **out);
/* A new tensor with the same dtype, shape and contents as src. */
lg_status lg_tensor_clone(const lg_tensor *src, lg_tensor **out);
void lg_tensor_free(lg_tensor *t); /* NULL is fine */

lg_dtype lg_tensor_dtype(const lg_tensor *t);
lg_shape lg_tensor_shape(const lg_tensor *t);
int64_t lg_tensor_numel(const lg_tensor *t);
size_t lg_tensor_bytes(const lg_tensor *t);
/* The contiguous element block (NULL for an empty tensor). */
void *lg_tensor_data(lg_tensor *t);
const void *lg_tensor_cdata(const lg_tensor *t);

/* Every element set to value, converted to the tensor's dtype; to i32 as
 * lg_cast does (truncated toward zero, saturated to INT32_MIN..INT32_MAX,
 * NaN as 0). */
lg_status lg_tensor_fill(lg_tensor *t, double value);
/* Copy bytes in or out; bytes must equal lg_tensor_bytes(t). */
lg_status lg_tensor_copy_in(lg_tensor *t, const void *src, size_t bytes);
lg_status lg_tensor_copy_out(const lg_tensor *t, void *dst, size_t bytes);
/* Copy src into dst; dtypes and shapes must match. */
lg_status lg_tensor_copy(lg_tensor *dst, const lg_tensor *src);

/* Element access by flat (row-major) index, converted through double (to
 * i32 as in lg_tensor_fill). Meant for tests and small glue code; an index
 * out of range returns NaN / is ignored. */
double lg_tensor_get(const lg_tensor *t, int64_t flat_index);
void lg_tensor_set(lg_tensor *t, int64_t flat_index, double value);

LG_API_END
#ifdef __cplusplus
}
#endif
#endif
