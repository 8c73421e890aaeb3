/*
 * test_tensor.c — the tensor module (tensor.h, status.h) through its public
 * API: creation, copies, element access per dtype, shape helpers, and the
 * errors each call documents.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "graph/loopgrad.h"

/* ---- creation and lifetime ----------------------------------------------- */

START_TEST(test_new_is_zero_filled)
{
    static const lg_dtype dtypes[] = {LG_F32, LG_F64, LG_I32};
    for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++) {
        lg_tensor *t = NULL;
        ck_assert_int_eq(lg_tensor_new(dtypes[k], lg_shape_of(2, 3, 4), &t), LG_OK);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(lg_tensor_dtype(t), dtypes[k]);
        ck_assert(lg_shape_equal(lg_tensor_shape(t), lg_shape_of(2, 3, 4)));
        ck_assert_int_eq(lg_tensor_numel(t), 12);
        ck_assert_uint_eq(lg_tensor_bytes(t), 12 * lg_dtype_size(dtypes[k]));
        const unsigned char *bytes = lg_tensor_cdata(t);
        ck_assert_ptr_nonnull(bytes);
        for (size_t i = 0; i < lg_tensor_bytes(t); i++) ck_assert_uint_eq(bytes[i], 0);
        for (int64_t i = 0; i < 12; i++) ck_assert(lg_tensor_get(t, i) == 0.0);
        lg_tensor_free(t);
    }
}
END_TEST

START_TEST(test_rank0_tensor)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(0), &t), LG_OK);
    ck_assert_int_eq(lg_tensor_shape(t).rank, 0);
    ck_assert_int_eq(lg_tensor_numel(t), 1);
    ck_assert_uint_eq(lg_tensor_bytes(t), sizeof(double));
    lg_tensor_set(t, 0, 2.5);
    ck_assert(lg_tensor_get(t, 0) == 2.5);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_max_rank_ok)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(6, 1, 2, 1, 3, 1, 2), &t), LG_OK);
    ck_assert_int_eq(lg_tensor_shape(t).rank, 6);
    ck_assert_int_eq(lg_tensor_numel(t), 12);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_free_null)
{
    lg_tensor_free(NULL);
    ck_assert(1); /* reaching here is the assertion */
}
END_TEST

START_TEST(test_clone_is_deep)
{
    lg_tensor *a = NULL, *b = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(2, 2, 3), &a), LG_OK);
    for (int i = 0; i < 6; i++) lg_tensor_set(a, i, i + 0.5);
    ck_assert_int_eq(lg_tensor_clone(a, &b), LG_OK);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_ne(lg_tensor_data(a), lg_tensor_data(b));
    ck_assert_int_eq(lg_tensor_dtype(b), LG_F32);
    ck_assert(lg_shape_equal(lg_tensor_shape(b), lg_shape_of(2, 2, 3)));
    for (int i = 0; i < 6; i++) ck_assert(lg_tensor_get(b, i) == i + 0.5);
    /* changing the original leaves the clone alone */
    lg_tensor_set(a, 0, 99.0);
    ck_assert(lg_tensor_get(b, 0) == 0.5);
    lg_tensor_free(a);
    lg_tensor_free(b);
}
END_TEST

START_TEST(test_clone_null)
{
    lg_tensor *b = (lg_tensor *)1; /* must be reset to NULL on failure */
    ck_assert_int_eq(lg_tensor_clone(NULL, &b), LG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(b);
}
END_TEST

/* ---- fill and copies ------------------------------------------------------ */

START_TEST(test_fill_converts)
{
    lg_tensor *f = NULL, *d = NULL, *i = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(1, 5), &f), LG_OK);
    ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(2, 2, 2), &d), LG_OK);
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, 3), &i), LG_OK);
    ck_assert_int_eq(lg_tensor_fill(f, 1.25), LG_OK);
    ck_assert_int_eq(lg_tensor_fill(d, -3.5), LG_OK);
    ck_assert_int_eq(lg_tensor_fill(i, 7.0), LG_OK);
    const float *pf = lg_tensor_data(f);
    const double *pd = lg_tensor_data(d);
    const int32_t *pi = lg_tensor_data(i);
    for (int k = 0; k < 5; k++) ck_assert(pf[k] == 1.25f);
    for (int k = 0; k < 4; k++) ck_assert(pd[k] == -3.5);
    for (int k = 0; k < 3; k++) ck_assert_int_eq(pi[k], 7);
    lg_tensor_free(f);
    lg_tensor_free(d);
    lg_tensor_free(i);
}
END_TEST

/* Filling or setting an i32 tensor from any double is defined (tensor.h):
 * truncated, saturated, NaN as 0. A plain C conversion is undefined for
 * these; x86 gives INT32_MIN for each of NaN, 1e10 and inf. */
START_TEST(test_fill_i32_saturates)
{
    const double v[] = {NAN, 1e10, -1e10, INFINITY, -INFINITY, 2147483647.99, -2147483648.99, -7.9, 0.5};
    const int32_t want[] = {0, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX, INT32_MIN, -7, 0};
    const int32_t want_neg[] = {0, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX, -INT32_MAX, INT32_MAX, 7, 0};
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, 3), &t), LG_OK);
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        ck_assert_int_eq(lg_tensor_fill(t, v[k]), LG_OK);
        for (int i = 0; i < 3; i++) ck_assert_msg(lg_tensor_get(t, i) == want[k], "fill %g: %g", v[k], lg_tensor_get(t, i));
        lg_tensor_set(t, 1, -v[k]);
        ck_assert_int_eq(((const int32_t *)lg_tensor_cdata(t))[1], want_neg[k]);
    }
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_copy_in_out)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(2, 2, 2), &t), LG_OK);
    const double src[4] = {1, -2, 3.5, 1e10};
    ck_assert_int_eq(lg_tensor_copy_in(t, src, sizeof src), LG_OK);
    ck_assert(lg_tensor_get(t, 3) == 1e10);
    double dst[4] = {0};
    ck_assert_int_eq(lg_tensor_copy_out(t, dst, sizeof dst), LG_OK);
    ck_assert_mem_eq(src, dst, sizeof src);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_copy_wrong_bytes)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(1, 4), &t), LG_OK);
    lg_tensor_fill(t, 5.0);
    float buf[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    ck_assert_int_ne(lg_tensor_copy_in(t, buf, 3 * sizeof(float)), LG_OK);
    ck_assert_int_ne(lg_tensor_copy_in(t, buf, 8 * sizeof(float)), LG_OK);
    /* a refused copy leaves the contents alone */
    for (int i = 0; i < 4; i++) ck_assert(lg_tensor_get(t, i) == 5.0);
    float out[8] = {0};
    ck_assert_int_ne(lg_tensor_copy_out(t, out, 2 * sizeof(float)), LG_OK);
    ck_assert_int_ne(lg_tensor_copy_out(t, out, 5 * sizeof(float)), LG_OK);
    ck_assert_int_eq(lg_tensor_copy_in(t, buf, 4 * sizeof(float)), LG_OK);
    ck_assert_str_ne(lg_last_error(), "");
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_copy_in_out_null)
{
    float buf[2] = {0};
    ck_assert_int_eq(lg_tensor_copy_in(NULL, buf, sizeof buf), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_tensor_copy_out(NULL, buf, sizeof buf), LG_ERR_INVALID_ARGUMENT);
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(1, 2), &t), LG_OK);
    ck_assert_int_ne(lg_tensor_copy_in(t, NULL, sizeof buf), LG_OK);
    ck_assert_int_ne(lg_tensor_copy_out(t, NULL, sizeof buf), LG_OK);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_tensor_copy)
{
    lg_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(2, 2, 3), &a), LG_OK);
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(2, 2, 3), &b), LG_OK);
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(2, 3, 2), &c), LG_OK);
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(2, 2, 3), &d), LG_OK);
    for (int i = 0; i < 6; i++) lg_tensor_set(a, i, 10 * i);
    ck_assert_int_eq(lg_tensor_copy(b, a), LG_OK);
    for (int i = 0; i < 6; i++) ck_assert(lg_tensor_get(b, i) == 10 * i);
    /* same element count, different shape: refused */
    ck_assert_int_ne(lg_tensor_copy(c, a), LG_OK);
    for (int i = 0; i < 6; i++) ck_assert(lg_tensor_get(c, i) == 0);
    /* same shape, different dtype: refused */
    ck_assert_int_ne(lg_tensor_copy(d, a), LG_OK);
    for (int i = 0; i < 6; i++) ck_assert(lg_tensor_get(d, i) == 0);
    ck_assert_int_eq(lg_tensor_copy(NULL, a), LG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(lg_tensor_copy(b, NULL), LG_ERR_INVALID_ARGUMENT);
    lg_tensor_free(a);
    lg_tensor_free(b);
    lg_tensor_free(c);
    lg_tensor_free(d);
}
END_TEST

/* ---- element access -------------------------------------------------------- */

START_TEST(test_get_set_f32)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(2, 2, 2), &t), LG_OK);
    lg_tensor_set(t, 0, 0.1);
    lg_tensor_set(t, 3, -7.0);
    const float *p = lg_tensor_data(t);
    ck_assert(p[0] == 0.1f);
    ck_assert(p[3] == -7.0f);
    ck_assert(p[1] == 0.0f && p[2] == 0.0f);
    /* the value goes through float: get returns the rounded value */
    ck_assert(lg_tensor_get(t, 0) == (double)0.1f);
    ck_assert(lg_tensor_get(t, 3) == -7.0);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_get_set_f64)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(1, 3), &t), LG_OK);
    lg_tensor_set(t, 2, 0.1);
    const double *p = lg_tensor_data(t);
    ck_assert(p[2] == 0.1);
    ck_assert(lg_tensor_get(t, 2) == 0.1);
    ck_assert(lg_tensor_get(t, 1) == 0.0);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_get_set_i32)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_I32, lg_shape_of(1, 4), &t), LG_OK);
    lg_tensor_set(t, 0, 42);
    lg_tensor_set(t, 1, -5);
    lg_tensor_set(t, 2, 2147483647.0);
    const int32_t *p = lg_tensor_data(t);
    ck_assert_int_eq(p[0], 42);
    ck_assert_int_eq(p[1], -5);
    ck_assert_int_eq(p[2], INT32_MAX);
    ck_assert(lg_tensor_get(t, 0) == 42.0);
    ck_assert(lg_tensor_get(t, 1) == -5.0);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_get_set_out_of_range)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(1, 3), &t), LG_OK);
    lg_tensor_fill(t, 1.0);
    ck_assert(isnan(lg_tensor_get(t, 3)));
    ck_assert(isnan(lg_tensor_get(t, -1)));
    lg_tensor_set(t, 3, 9.0);
    lg_tensor_set(t, -1, 9.0);
    for (int i = 0; i < 3; i++) ck_assert(lg_tensor_get(t, i) == 1.0);
    lg_tensor_free(t);
}
END_TEST

/* ---- shapes ---------------------------------------------------------------- */

START_TEST(test_shape_of)
{
    lg_shape s = lg_shape_of(3, 2, -1, 5);
    ck_assert_int_eq(s.rank, 3);
    ck_assert_int_eq(s.dims[0], 2);
    ck_assert_int_eq(s.dims[1], -1);
    ck_assert_int_eq(s.dims[2], 5);
    ck_assert_int_eq(lg_shape_of(0).rank, 0);
    ck_assert_int_eq(lg_shape_of(7, 1, 1, 1, 1, 1, 1, 1).rank, -1);
}
END_TEST

START_TEST(test_shape_numel)
{
    ck_assert_int_eq(lg_shape_numel(lg_shape_of(0)), 1);
    ck_assert_int_eq(lg_shape_numel(lg_shape_of(3, 2, 3, 4)), 24);
    ck_assert_int_eq(lg_shape_numel(lg_shape_of(2, 0, 3)), 0);
    ck_assert_int_eq(lg_shape_numel(lg_shape_of(2, -1, 3)), -1);
    ck_assert_int_eq(lg_shape_numel(lg_shape_of(2, 3, -1)), -1);
    /* large dims built directly: no int overflow */
    lg_shape big = {.rank = 2, .dims = {1LL << 20, 1LL << 20}};
    ck_assert_int_eq(lg_shape_numel(big), 1LL << 40);
}
END_TEST

/* The size rule (tensor.h): the product of the nonzero dims must fit int64
 * wherever a zero stands. Before, [2^62, 2^62, 0] was -1 and
 * [0, 2^62, 2^62] was 0. */
START_TEST(test_shape_numel_zero_anywhere)
{
    const int64_t H = 1LL << 62;
    const lg_shape refused[] = {{3, {H, H, 0}}, {3, {0, H, H}}, {3, {H, 0, H}}, {4, {0, INT64_MAX, 2, 0}}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ck_assert_int_eq(lg_shape_numel(refused[i]), -1);
        ck_assert(!lg_shape_bytes(refused[i], LG_F32, NULL));
    }
    const lg_shape empty[] = {{2, {0, INT64_MAX}}, {2, {INT64_MAX, 0}}, {3, {H, 0, 1}}, {2, {0, 0}}};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        ck_assert_int_eq(lg_shape_numel(empty[i]), 0);
        size_t bytes = 1;
        ck_assert(lg_shape_bytes(empty[i], LG_F64, &bytes));
        ck_assert_uint_eq(bytes, 0);
    }
    ck_assert_int_eq(lg_shape_numel((lg_shape){2, {INT64_MAX, 1}}), INT64_MAX);
}
END_TEST

/* lg_shape_bytes: elements times the dtype's size, at most LG_MAX_BYTES. */
START_TEST(test_shape_bytes)
{
    size_t bytes = 0;
    ck_assert(lg_shape_bytes(lg_shape_of(2, 3, 4), LG_F64, &bytes));
    ck_assert_uint_eq(bytes, 96);
    ck_assert(lg_shape_bytes(lg_shape_of(0), LG_I32, &bytes));
    ck_assert_uint_eq(bytes, 4);
    ck_assert(lg_shape_bytes((lg_shape){1, {1LL << 60}}, LG_F32, &bytes)); /* 2^62: fits */
    ck_assert_uint_eq(bytes, (size_t)1 << 62);
    ck_assert(lg_shape_bytes((lg_shape){1, {(1LL << 60) - 1}}, LG_F64, &bytes)); /* 2^63 - 8 */
    ck_assert(!lg_shape_bytes((lg_shape){1, {1LL << 60}}, LG_F64, NULL));         /* 2^63 */
    ck_assert(!lg_shape_bytes((lg_shape){2, {1LL << 61, 2}}, LG_F32, NULL));      /* 2^64: wrapped to 0 */
    ck_assert(!lg_shape_bytes(lg_shape_of(2, -1, 3), LG_F32, NULL));
    ck_assert(!lg_shape_bytes(lg_shape_of(1, 3), LG_DTYPE_COUNT, NULL));
    ck_assert(!lg_shape_bytes(lg_shape_of(7, 1, 1, 1, 1, 1, 1, 1), LG_F32, NULL));
}
END_TEST

START_TEST(test_shape_equal)
{
    ck_assert(lg_shape_equal(lg_shape_of(2, 3, 4), lg_shape_of(2, 3, 4)));
    ck_assert(!lg_shape_equal(lg_shape_of(2, 3, 4), lg_shape_of(2, 4, 3)));
    ck_assert(!lg_shape_equal(lg_shape_of(2, 3, 4), lg_shape_of(3, 3, 4, 1)));
    ck_assert(!lg_shape_equal(lg_shape_of(1, 1), lg_shape_of(0)));
    ck_assert(lg_shape_equal(lg_shape_of(0), lg_shape_of(0)));
    ck_assert(lg_shape_equal(lg_shape_of(2, -1, 3), lg_shape_of(2, -1, 3)));
    ck_assert(!lg_shape_equal(lg_shape_of(2, -1, 3), lg_shape_of(2, 4, 3)));
    /* dims past the rank are not compared */
    lg_shape a = {.rank = 1, .dims = {5, 1, 2}};
    lg_shape b = {.rank = 1, .dims = {5, 9, 9}};
    ck_assert(lg_shape_equal(a, b));
}
END_TEST

START_TEST(test_shape_str)
{
    char buf[64];
    ck_assert_str_eq(lg_shape_str(lg_shape_of(2, 3, 4), buf, sizeof buf), "[3, 4]");
    ck_assert_str_eq(lg_shape_str(lg_shape_of(2, 3, -1), buf, sizeof buf), "[3, ?]");
    ck_assert_str_eq(lg_shape_str(lg_shape_of(1, 7), buf, sizeof buf), "[7]");
    ck_assert_str_eq(lg_shape_str(lg_shape_of(0), buf, sizeof buf), "[]");
    ck_assert_str_eq(lg_shape_str(lg_shape_of(3, -1, 0, 2), buf, sizeof buf), "[?, 0, 2]");
    ck_assert_ptr_eq(lg_shape_str(lg_shape_of(1, 1), buf, sizeof buf), buf);
    /* a small buffer is truncated and still terminated */
    char small[4];
    memset(small, 'x', sizeof small);
    lg_shape_str(lg_shape_of(2, 1000, 2000), small, sizeof small);
    ck_assert_int_lt(strlen(small), sizeof small);
}
END_TEST

START_TEST(test_dtype_helpers)
{
    ck_assert_str_eq(lg_dtype_name(LG_F32), "f32");
    ck_assert_str_eq(lg_dtype_name(LG_F64), "f64");
    ck_assert_str_eq(lg_dtype_name(LG_I32), "i32");
    ck_assert_uint_eq(lg_dtype_size(LG_F32), 4);
    ck_assert_uint_eq(lg_dtype_size(LG_F64), 8);
    ck_assert_uint_eq(lg_dtype_size(LG_I32), 4);
}
END_TEST

/* ---- bad input --------------------------------------------------------------- */

START_TEST(test_new_bad_rank)
{
    lg_tensor *t = (lg_tensor *)1;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(7, 1, 1, 1, 1, 1, 1, 1), &t), LG_ERR_SHAPE);
    ck_assert_ptr_null(t);
    t = (lg_tensor *)1;
    lg_shape s = {.rank = 7};
    ck_assert_int_eq(lg_tensor_new(LG_F32, s, &t), LG_ERR_SHAPE);
    ck_assert_ptr_null(t);
    t = (lg_tensor *)1;
    s.rank = -2;
    ck_assert_int_eq(lg_tensor_new(LG_F32, s, &t), LG_ERR_SHAPE);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_new_negative_dim)
{
    lg_tensor *t = (lg_tensor *)1;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(2, -1, 3), &t), LG_ERR_SHAPE);
    ck_assert_ptr_null(t);
    t = (lg_tensor *)1;
    ck_assert_int_eq(lg_tensor_new(LG_F64, lg_shape_of(1, -5), &t), LG_ERR_SHAPE);
    ck_assert_ptr_null(t);
    /* the message names the dim and its value, which the shape string shows as '?' */
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "dim 0 is -5"));
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(3, 2, 4, -1), &t), LG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(lg_last_error(), "dim 2 is -1"));
}
END_TEST

START_TEST(test_new_bad_dtype)
{
    lg_tensor *t = (lg_tensor *)1;
    ck_assert_int_eq(lg_tensor_new(LG_DTYPE_COUNT, lg_shape_of(1, 2), &t), LG_ERR_DTYPE);
    ck_assert_ptr_null(t);
    t = (lg_tensor *)1;
    ck_assert_int_eq(lg_tensor_new((lg_dtype)-1, lg_shape_of(1, 2), &t), LG_ERR_DTYPE);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_new_null_out)
{
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(1, 2), NULL), LG_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_null_accessors)
{
    ck_assert_int_eq(lg_tensor_fill(NULL, 1.0), LG_ERR_INVALID_ARGUMENT);
    ck_assert(isnan(lg_tensor_get(NULL, 0)));
    lg_tensor_set(NULL, 0, 1.0);
    ck_assert_ptr_null(lg_tensor_data(NULL));
    ck_assert_ptr_null(lg_tensor_cdata(NULL));
    ck_assert_int_eq(lg_tensor_bytes(NULL), 0);
}
END_TEST

START_TEST(test_zero_size_dims)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(2, 0, 3), &t), LG_OK);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(lg_tensor_numel(t), 0);
    ck_assert_uint_eq(lg_tensor_bytes(t), 0);
    ck_assert(lg_shape_equal(lg_tensor_shape(t), lg_shape_of(2, 0, 3)));
    ck_assert_ptr_null(lg_tensor_data(t));
    ck_assert_int_eq(lg_tensor_fill(t, 3.0), LG_OK);
    ck_assert_int_eq(lg_tensor_copy_in(t, NULL, 0), LG_OK);
    ck_assert_int_eq(lg_tensor_copy_out(t, NULL, 0), LG_OK);
    ck_assert(isnan(lg_tensor_get(t, 0)));
    lg_tensor *c = NULL;
    ck_assert_int_eq(lg_tensor_clone(t, &c), LG_OK);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(lg_tensor_numel(c), 0);
    ck_assert(lg_shape_equal(lg_tensor_shape(c), lg_shape_of(2, 0, 3)));
    lg_tensor_free(c);
    lg_tensor_free(t);
}
END_TEST

/* ---- status -------------------------------------------------------------------- */

START_TEST(test_status_names)
{
    static const struct {
        lg_status s;
        const char *name;
    } rows[] = {
        {LG_OK, "LG_OK"},
        {LG_ERR_INVALID_ARGUMENT, "LG_ERR_INVALID_ARGUMENT"},
        {LG_ERR_SHAPE, "LG_ERR_SHAPE"},
        {LG_ERR_DTYPE, "LG_ERR_DTYPE"},
        {LG_ERR_GRAPH, "LG_ERR_GRAPH"},
        {LG_ERR_FEED, "LG_ERR_FEED"},
        {LG_ERR_RUNTIME, "LG_ERR_RUNTIME"},
        {LG_ERR_UNSUPPORTED, "LG_ERR_UNSUPPORTED"},
        {LG_ERR_OUT_OF_MEMORY, "LG_ERR_OUT_OF_MEMORY"},
        {LG_ERR_IO, "LG_ERR_IO"},
    };
    _Static_assert(sizeof rows / sizeof rows[0] == LG_STATUS_COUNT, "a status code has no row");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ck_assert_ptr_nonnull(lg_status_name(rows[i].s));
        ck_assert_str_eq(lg_status_name(rows[i].s), rows[i].name);
    }
    /* out of range still gives a string */
    ck_assert_ptr_nonnull(lg_status_name(LG_STATUS_COUNT));
    ck_assert_ptr_nonnull(lg_status_name((lg_status)-1));
}
END_TEST

START_TEST(test_last_error_after_failure)
{
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, lg_shape_of(1, -3), &t), LG_ERR_SHAPE);
    const char *msg = lg_last_error();
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_gt(strlen(msg), 0);
    ck_assert_int_eq(lg_tensor_new(LG_DTYPE_COUNT, lg_shape_of(1, 3), &t), LG_ERR_DTYPE);
    ck_assert_int_gt(strlen(lg_last_error()), 0);
}
END_TEST

/* A zero dim does not make any other dims fine (the size rule): before,
 * [0, 2^62, 2^62] made an empty tensor and [2^62, 2^62, 0] failed. */
START_TEST(test_new_zero_dim_with_huge_dims)
{
    const int64_t H = 1LL << 62;
    const lg_shape refused[] = {{3, {0, H, H}}, {3, {H, H, 0}}};
    for (int i = 0; i < 2; i++) {
        lg_tensor *t = (lg_tensor *)1;
        ck_assert_int_eq(lg_tensor_new(LG_F32, refused[i], &t), LG_ERR_SHAPE);
        ck_assert_ptr_null(t);
        ck_assert_ptr_nonnull(strstr(lg_last_error(), "too many elements"));
    }
    lg_tensor *t = NULL;
    ck_assert_int_eq(lg_tensor_new(LG_F32, (lg_shape){2, {0, H}}, &t), LG_OK);
    ck_assert_int_eq(lg_tensor_numel(t), 0);
    lg_tensor_free(t);
}
END_TEST

START_TEST(test_new_overflowing_shape)
{
    /* element counts past int64 / size_t must be refused, not wrapped */
    lg_tensor *t = (lg_tensor *)1;
    lg_shape huge = {.rank = 3, .dims = {1LL << 40, 1LL << 40, 1LL << 40}};
    lg_status s = lg_tensor_new(LG_F32, huge, &t);
    ck_assert_msg(s == LG_ERR_SHAPE || s == LG_ERR_OUT_OF_MEMORY, "got %s", lg_status_name(s));
    ck_assert_ptr_null(t);
    t = (lg_tensor *)1;
    lg_shape bytes_overflow = {.rank = 2, .dims = {1LL << 62, 8}};
    s = lg_tensor_new(LG_F64, bytes_overflow, &t);
    ck_assert_msg(s == LG_ERR_SHAPE || s == LG_ERR_OUT_OF_MEMORY, "got %s", lg_status_name(s));
    ck_assert_ptr_null(t);
}
END_TEST

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("create");
    tcase_add_test(tc, test_new_is_zero_filled);
    tcase_add_test(tc, test_rank0_tensor);
    tcase_add_test(tc, test_max_rank_ok);
    tcase_add_test(tc, test_free_null);
    tcase_add_test(tc, test_clone_is_deep);
    tcase_add_test(tc, test_clone_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("copy");
    tcase_add_test(tc, test_fill_converts);
    tcase_add_test(tc, test_fill_i32_saturates);
    tcase_add_test(tc, test_copy_in_out);
    tcase_add_test(tc, test_copy_wrong_bytes);
    tcase_add_test(tc, test_copy_in_out_null);
    tcase_add_test(tc, test_tensor_copy);
    suite_add_tcase(s, tc);

    tc = tcase_create("access");
    tcase_add_test(tc, test_get_set_f32);
    tcase_add_test(tc, test_get_set_f64);
    tcase_add_test(tc, test_get_set_i32);
    tcase_add_test(tc, test_get_set_out_of_range);
    suite_add_tcase(s, tc);

    tc = tcase_create("shape");
    tcase_add_test(tc, test_shape_of);
    tcase_add_test(tc, test_shape_numel);
    tcase_add_test(tc, test_shape_numel_zero_anywhere);
    tcase_add_test(tc, test_shape_bytes);
    tcase_add_test(tc, test_shape_equal);
    tcase_add_test(tc, test_shape_str);
    tcase_add_test(tc, test_dtype_helpers);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_new_bad_rank);
    tcase_add_test(tc, test_new_negative_dim);
    tcase_add_test(tc, test_new_bad_dtype);
    tcase_add_test(tc, test_new_null_out);
    tcase_add_test(tc, test_null_accessors);
    tcase_add_test(tc, test_zero_size_dims);
    tcase_add_test(tc, test_new_overflowing_shape);
    tcase_add_test(tc, test_new_zero_dim_with_huge_dims);
    tcase_add_test(tc, test_status_names);
    tcase_add_test(tc, test_last_error_after_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lg_check_run(tensor_suite());
}
